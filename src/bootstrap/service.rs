//! The account service: answers [`AuthRequest`]s from peers with certificates or refusals,
//! applying the throttling policy of [`super::throttle`] before any hashing.
//!
//! [`AuthWorker`] runs one [`AuthService`] on a plain thread of its own, so argon2 never blocks
//! the network, and requests are served one at a time, so at most one hash runs at once. A
//! request is classed and queued in the [`JobQueue`] the moment it is submitted (with a
//! connection of its own that only reads and never waits), so the queue's rules (strangers give
//! way, room kept for quick requests) hold while a hash runs. The thread serves quick requests
//! first, then known machines, then strangers (one host's strangers taking a bounded share of
//! the room); what it cannot serve within [`QUEUE_WAIT_MAX`] is answered `rate_limited` without
//! hashing. Nothing here panics on a peer's input.
//!
//! Each request comes with its asker's host: the IP address of the connection it came on, which
//! the caller finds (the service knows no network types beyond `std`'s [`IpAddr`]). Limits that
//! could hold back someone else are kept per host (see [`host_key`]), never per peer id alone.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use thiserror::Error;
use tokio::sync::mpsc;

use super::accounts::{Account, AccountError, AccountStore, CERTIFIED_MACHINES_MAX};
use super::password::{self, CredentialError, HashError, Hasher};
use super::queue::{Class, JobQueue, Next, Pushed, QUEUE_MAX_JOBS, QUEUE_WAIT_MAX};
use super::throttle::{self, Backoff, Rate, Windows};
use crate::account::AccountId;
use crate::cert::{Authority, AuthorityKey, CERT_LIFETIME_SECS};
use crate::hex::encode as hex;
use crate::protocol::auth::{AuthRequest, AuthResponse, KnownAccount, Refusal, RenameNote};

/// How long a name freed by a rename stays reserved to its account (30 days).
pub const NAME_HOLD_SECS: u64 = 30 * 24 * 60 * 60;

/// The service could not start.
#[derive(Debug, Error)]
pub enum ServiceError {
    #[error(transparent)]
    Accounts(#[from] AccountError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("cannot start the account worker: {0}")]
    Thread(std::io::Error),
}

/// Issues certificates for registered accounts.
pub struct AuthService {
    accounts: AccountStore,
    authority: Authority,
    hasher: Hasher,
    /// How long certificates are valid, in seconds.
    lifetime: u64,
    /// How long a name freed by a rename stays reserved to its account, in seconds.
    name_hold: u64,
    /// Registrations, renames and look-ups counted per peer (or account), per host and overall;
    /// logins per (account, peer), per (account, host) and per account; renewals per peer.
    windows: Windows,
    /// Failures recorded since stale failure records were last pruned.
    failures_since_prune: u32,
}

/// Prune stale failure records after this many failures recorded.
pub const PRUNE_EVERY_FAILURES: u32 = 64;

fn refused(refusal: Refusal, message: impl Into<String>) -> AuthResponse {
    AuthResponse::Refused { refusal, message: message.into() }
}

fn rate_limited(message: String) -> AuthResponse {
    refused(Refusal::RateLimited, message)
}

/// How urgent `request` from `peer` is for the worker: quick when it does not hash and `peer`
/// has a session; known for a login from a machine that held a certificate of the account it
/// names; else a stranger's (every registration: it names an account nobody held yet; and a
/// request of a peer with no session, which can only be refused). A database error counts as
/// a stranger.
pub fn class_of(accounts: &AccountStore, peer: &[u8], request: &AuthRequest) -> Class {
    let class = match request {
        AuthRequest::Login { username, .. } => login_from_known_machine(accounts, peer, username)
            .map(|known| if known { Class::Known } else { Class::Stranger }),
        AuthRequest::Register { .. } => Ok(Class::Stranger),
        AuthRequest::Renew | AuthRequest::Rename { .. } | AuthRequest::Logout | AuthRequest::Lookup { .. } => {
            accounts.session(peer).map(|session| if session.is_some() { Class::Quick } else { Class::Stranger })
        }
    };
    class.unwrap_or_else(|error| {
        tracing::warn!(%error, "cannot class an account request; it waits as a stranger's");
        Class::Stranger
    })
}

/// Whether `peer` held a certificate of the account called `username`.
fn login_from_known_machine(accounts: &AccountStore, peer: &[u8], username: &str) -> Result<bool, AccountError> {
    match accounts.find(username)? {
        Some(account) => accounts.held(account.id, peer),
        None => Ok(false),
    }
}

/// Failures of `peer` on account `account`.
fn pair_key(account: AccountId, peer: &[u8]) -> String {
    format!("pair:{account}:{}", hex(peer))
}

/// Failures on account `account` of the peers that never held its certificate.
fn strangers_key(account: AccountId) -> String {
    format!("strangers:{account}")
}

/// Failures on account `account` of the peers of host `host` (a [`host_key`]) that never held
/// its certificate.
fn host_strangers_key(account: AccountId, host: &str) -> String {
    format!("strangers:{account}:{host}")
}

/// What [`host_key`] calls this machine.
const LOOPBACK_HOST: &str = "loopback";

/// How the service names a host, the address a request came from. An IPv4 address is a host;
/// so is an IPv6 /64, since one machine may take any address of its network's /64 at will (an
/// IPv4-mapped address is its IPv4 one). Every loopback address is one host, `loopback`: this
/// machine itself, whatever its processes call themselves. An unknown address is one host too,
/// `relayed`: a request through a relay comes from the relay's address, which says nothing of
/// who asks, so all such askers share the limits of one host rather than each getting a fresh
/// one (or taking the relay's from the people who connect to it directly).
pub fn host_key(host: Option<IpAddr>) -> String {
    match host.map(|ip| ip.to_canonical()) {
        None => "relayed".to_string(),
        Some(ip) if ip.is_loopback() => LOOPBACK_HOST.to_string(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// Failures of `peer` with names that do not exist.
fn unknown_name_key(peer: &[u8]) -> String {
    format!("unknown:{}", hex(peer))
}

/// Failures of the peers of host `host` (a [`host_key`]) with names that do not exist.
fn unknown_name_host_key(host: &str) -> String {
    format!("unknown-host:{host}")
}

/// The answer to a request the worker could not serve in time.
fn busy() -> AuthResponse {
    rate_limited(format!("the account server is busy; try again in {} s", QUEUE_WAIT_MAX.as_secs().max(1)))
}

impl From<CredentialError> for AuthResponse {
    fn from(e: CredentialError) -> Self {
        let refusal = match e {
            CredentialError::InvalidUsername(_) => Refusal::InvalidUsername,
            CredentialError::WeakPassword(_) => Refusal::WeakPassword,
        };
        refused(refusal, e.to_string())
    }
}

impl AuthService {
    /// Opens the account database in `dir`; certificates are signed by `authority`.
    pub fn open(dir: &Path, authority: Authority) -> Result<AuthService, ServiceError> {
        Ok(AuthService {
            accounts: AccountStore::open(dir)?,
            authority,
            hasher: Hasher::new()?,
            lifetime: CERT_LIFETIME_SECS,
            name_hold: NAME_HOLD_SECS,
            windows: Windows::new(),
            failures_since_prune: 0,
        })
    }

    /// Keeps names freed by a rename reserved for `secs` seconds instead of [`NAME_HOLD_SECS`].
    pub fn with_name_hold(mut self, secs: u64) -> Self {
        self.name_hold = secs;
        self
    }

    /// Issues certificates valid for `secs` seconds instead of [`CERT_LIFETIME_SECS`].
    pub fn with_lifetime(mut self, secs: u64) -> Self {
        self.lifetime = secs;
        self
    }

    /// The key certificates are signed with.
    pub fn authority_key(&self) -> AuthorityKey {
        self.authority.public()
    }

    /// Answers `request` from peer `peer` on host `host` (the address it asks from; `None`
    /// when unknown, as through a relay) at `now` (Unix seconds). Never panics on input.
    pub fn handle(&mut self, peer: &[u8], host: Option<IpAddr>, request: AuthRequest, now: u64) -> AuthResponse {
        let kind = request.kind();
        let host = host_key(host);
        let result = match request {
            AuthRequest::Register { username, password } => self.register(peer, &host, &username, &password, now),
            AuthRequest::Login { username, password } => self.login(peer, &host, &username, &password, now),
            AuthRequest::Renew => self.renew(peer, now),
            AuthRequest::Rename { new_username } => self.rename(peer, &host, &new_username, now),
            AuthRequest::Logout => self.accounts.end_session(peer).map(|()| AuthResponse::LoggedOut),
            AuthRequest::Lookup { username } => self.lookup(peer, &host, &username, now),
        };
        result.unwrap_or_else(|e| {
            tracing::error!(request = kind, error = %e, "account service failed");
            match e {
                AccountError::Taken(name) => refused(Refusal::UsernameTaken, format!("username '{name}' is taken")),
                other => refused(Refusal::Internal, format!("the account server failed: {other}")),
            }
        })
    }

    /// Logs `peer` in as `account` (forgetting the failure records under `forget`) and issues
    /// its certificate, with the account's latest rename.
    fn grant(
        &mut self,
        peer: &[u8],
        account: &Account,
        forget: &[String],
        now: u64,
    ) -> Result<AuthResponse, AccountError> {
        let serial = self.accounts.begin_session(peer, account.id, forget, now)?;
        let certificate = self.authority.issue_for(account.id, &account.username, peer, now, serial, self.lifetime);
        let renamed = self.accounts.latest_rename(account.id)?.map(|r| RenameNote { old: r.old, new: r.new, at: r.at });
        Ok(AuthResponse::Granted { certificate, renamed })
    }

    /// How urgent `request` from `peer` is for the worker ([`class_of`]).
    pub fn class_of(&self, peer: &[u8], request: &AuthRequest) -> Class {
        class_of(&self.accounts, peer, request)
    }

    /// The windows a `kind` request of `asker` (a peer, or an account) on host `host` counts
    /// in: `per_asker`, `per_host` and `overall`.
    fn limits<'r>(
        kind: &str,
        asker: &[u8],
        host: &str,
        [per_asker, per_host, overall]: [&'r Rate; 3],
    ) -> [(String, &'r Rate); 3] {
        [
            (format!("{kind}:{}", hex(asker)), per_asker),
            (format!("{kind}-host:{host}"), per_host),
            (format!("{kind}:*"), overall),
        ]
    }

    /// Counts one request under each of `limits`; the refusal (about too many `plural`) when
    /// any is full, counting it in none.
    fn admit(&mut self, plural: &str, limits: &[(String, &Rate)], now: u64) -> Option<AuthResponse> {
        let admitted = self.windows.admit(limits, now);
        admitted.err().map(|wait| rate_limited(format!("too many {plural}; try again in {wait} s")))
    }

    /// Registers: the checks that cost no hashing (the name's form, the password's strength,
    /// a name already held) come first and count against nothing, so requests that could never
    /// succeed do not use up the registration budgets; only a request that would be hashed is
    /// counted, per peer, per host and overall.
    fn register(
        &mut self,
        peer: &[u8],
        host: &str,
        username: &str,
        pw: &str,
        now: u64,
    ) -> Result<AuthResponse, AccountError> {
        if let Err(e) = password::check_username(username).and_then(|()| password::check_strength(pw, username)) {
            return Ok(e.into());
        }
        if self.accounts.holder(username, now)?.is_some() {
            return Ok(refused(Refusal::UsernameTaken, format!("username '{username}' is taken")));
        }
        let rates = [&throttle::REGISTER_PER_PEER, &throttle::REGISTER_PER_HOST, &throttle::REGISTER_OVERALL];
        let [per_peer, per_host, overall] = Self::limits("register", peer, host, rates);
        // This machine's own peers register per peer and overall only: whoever runs nodes here
        // (many at once, say) can do more than any host's share anyway.
        let limits = if host == LOOPBACK_HOST { vec![per_peer, overall] } else { vec![per_peer, per_host, overall] };
        if let Some(refusal) = self.admit("registrations", &limits, now) {
            return Ok(refusal);
        }
        let hash = match self.hasher.hash(pw) {
            Ok(hash) => hash,
            Err(e) => return Ok(refused(Refusal::Internal, e.to_string())),
        };
        let id = self.accounts.create(username, &hash, now)?;
        let account = Account { id, username: username.to_string(), password_hash: hash };
        self.grant(peer, &account, &[], now)
    }

    /// Who holds `username`: asked only by logged-in peers (a node looks a name up before a
    /// direct message), so only they count against the look-up budgets, each account's peers
    /// together (an account logged in on many peers has one budget), each host's accounts
    /// together, and all together.
    fn lookup(&mut self, peer: &[u8], host: &str, username: &str, now: u64) -> Result<AuthResponse, AccountError> {
        let Some(asker) = self.accounts.session(peer)? else {
            return Ok(refused(Refusal::NotLoggedIn, "log in first"));
        };
        let rates = [&throttle::LOOKUP_PER_ACCOUNT, &throttle::LOOKUP_PER_HOST, &throttle::LOOKUP_OVERALL];
        if let Some(refusal) = self.admit("look-ups", &Self::limits("lookup", asker.id.as_bytes(), host, rates), now) {
            return Ok(refusal);
        }
        let found = self.accounts.holder(username, now)?;
        Ok(AuthResponse::User { account: found.map(|a| KnownAccount { account: a.id, username: a.username }) })
    }

    /// Logs in: failures throttled per (account, peer), and for strangers also per (account,
    /// host) and per account, before any hashing; then every login that gets as far as hashing,
    /// right or wrong, counted per (account, peer) and per account (its known machines apart
    /// from other peers, and those per host as well). A name that does not exist counts against
    /// the asking peer and its host (those logins hash too, against a dummy hash).
    fn login(
        &mut self,
        peer: &[u8],
        host: &str,
        username: &str,
        pw: &str,
        now: u64,
    ) -> Result<AuthResponse, AccountError> {
        if let Err(e) = password::check_username(username) {
            return Ok(e.into());
        }
        let Some(account) = self.accounts.find(username)? else {
            let (key, host_key) = (unknown_name_key(peer), unknown_name_host_key(host));
            for key in [&key, &host_key] {
                if let Err(wait) = throttle::check(self.accounts.failures(key)?.as_ref(), now) {
                    return Ok(rate_limited(format!("too many failed logins; try again in {wait} s")));
                }
            }
            // Hash all the same, so that timing does not tell which names exist.
            self.hasher.verify(pw, None);
            self.fail(&[(key, &throttle::UNKNOWN_NAME), (host_key, &throttle::UNKNOWN_NAME_PER_HOST)], now)?;
            return Ok(refused(Refusal::WrongCredentials, "wrong username or password"));
        };
        let known = self.accounts.held(account.id, peer)?;
        let pair = pair_key(account.id, peer);
        if let Err(wait) = throttle::check(self.accounts.failures(&pair)?.as_ref(), now) {
            return Ok(rate_limited(format!("too many failed logins from this machine; try again in {wait} s")));
        }
        let host_strangers = host_strangers_key(account.id, host);
        let strangers = strangers_key(account.id);
        if !known {
            let from_host = throttle::check(self.accounts.failures(&host_strangers)?.as_ref(), now).err();
            let from_all = throttle::check(self.accounts.failures(&strangers)?.as_ref(), now).err();
            let whence = if from_host.is_some() { "from this host" } else { "from several hosts" };
            if let Some(wait) = from_host.or(from_all) {
                return Ok(rate_limited(format!(
                    "too many failed logins to this account {whence} by machines it has not used; try again in \
                     {wait} s (a machine this account logged in from before is not held back)"
                )));
            }
        }
        let pair_window = format!("login:{}:{}", account.id, hex(peer));
        let mut limits = vec![(pair_window, &throttle::LOGIN_PER_PAIR)];
        if known {
            limits.push((format!("login-known:{}", account.id), &throttle::LOGIN_KNOWN_PER_ACCOUNT));
        } else {
            limits.push((format!("login-strangers:{}:{host}", account.id), &throttle::LOGIN_STRANGERS_PER_HOST));
            limits.push((format!("login-strangers:{}", account.id), &throttle::LOGIN_STRANGERS_PER_ACCOUNT));
        }
        if let Err(wait) = self.windows.admit(&limits, now) {
            return Ok(rate_limited(format!("too many logins to this account; try again in {wait} s")));
        }
        if self.hasher.verify(pw, Some(account.password_hash.as_str())) {
            if let Some(refusal) = self.too_many_machines(peer, &account, now)? {
                return Ok(refusal);
            }
            return self.grant(peer, &account, &[pair], now);
        }
        let mut records = vec![(pair, &throttle::PAIR)];
        if !known {
            records.push((host_strangers, &throttle::HOST));
            records.push((strangers, &throttle::STRANGERS));
        }
        self.fail(&records, now)?;
        Ok(refused(Refusal::WrongCredentials, "wrong username or password"))
    }

    /// The refusal of a certificate for `peer` when [`CERTIFIED_MACHINES_MAX`] other machines
    /// of `account` hold ones that are still valid: with how long until the oldest expires.
    fn too_many_machines(
        &self,
        peer: &[u8],
        account: &Account,
        now: u64,
    ) -> Result<Option<AuthResponse>, AccountError> {
        let others = self.accounts.others_certified_after(account.id, peer, now.saturating_sub(self.lifetime))?;
        let Some(excess) = others.len().checked_sub(CERTIFIED_MACHINES_MAX) else { return Ok(None) };
        let frees_at = others.get(excess).map_or(now, |at| at.saturating_add(self.lifetime));
        let wait = frees_at.saturating_sub(now).max(1);
        Ok(Some(rate_limited(format!(
            "this account's certificate is held by {CERTIFIED_MACHINES_MAX} other machines already; \
             log in from one of them, or from this one in {wait} s (when the oldest expires)"
        ))))
    }

    /// Records a failure under each key with its policy, pruning stale records now and then.
    fn fail(&mut self, records: &[(String, &Backoff)], now: u64) -> Result<(), AccountError> {
        for (key, policy) in records {
            let record = throttle::record_failure(policy, self.accounts.failures(key)?, now);
            self.accounts.set_failures(key, &record)?;
        }
        self.failures_since_prune = self.failures_since_prune.saturating_add(1);
        if self.failures_since_prune >= PRUNE_EVERY_FAILURES {
            self.failures_since_prune = 0;
            self.accounts.prune_failures(now, throttle::FAILURE_RECORDS_KEPT_SECS)?;
        }
        Ok(())
    }

    /// Renews `peer`'s certificate: counted per peer, and a peer over its limit is refused from
    /// memory, before the service reads or writes the database (a renewal is a transaction on
    /// disk and a signature). Only peers with a session get a window.
    fn renew(&mut self, peer: &[u8], now: u64) -> Result<AuthResponse, AccountError> {
        let window = format!("renew:{}", hex(peer));
        let too_many = |wait: u64| rate_limited(format!("too many renewals; try again in {wait} s"));
        if let Err(wait) = self.windows.check(&window, &throttle::RENEW_PER_PEER, now) {
            return Ok(too_many(wait));
        }
        let Some(account) = self.accounts.session(peer)? else {
            return Ok(refused(Refusal::NotLoggedIn, "this peer has no session; log in again"));
        };
        if let Err(wait) = self.windows.admit(&[(&window, &throttle::RENEW_PER_PEER)], now) {
            return Ok(too_many(wait));
        }
        self.grant(peer, &account, &[], now)
    }

    /// Renames the account of `peer`'s session: counted per peer, per host and overall, but
    /// only once it is carried out, so renames refused (the name taken, renamed too often) use
    /// up no one's budget; a full window refuses it before anything is done.
    fn rename(&mut self, peer: &[u8], host: &str, new: &str, now: u64) -> Result<AuthResponse, AccountError> {
        if let Err(e) = password::check_username(new) {
            return Ok(e.into());
        }
        let Some(account) = self.accounts.session(peer)? else {
            return Ok(refused(Refusal::NotLoggedIn, "log in first"));
        };
        let rates = [&throttle::RENAME_PER_PEER, &throttle::RENAME_PER_HOST, &throttle::RENAME_OVERALL];
        let limits = Self::limits("rename", peer, host, rates);
        if let Err(wait) = self.windows.check_all(&limits, now) {
            return Ok(rate_limited(format!("too many renames; try again in {wait} s")));
        }
        if self.accounts.holder(new, now)?.is_some_and(|holder| holder.id != account.id) {
            return Ok(refused(Refusal::UsernameTaken, format!("username '{new}' is taken")));
        }
        match self.accounts.rename(account.id, new, now, self.name_hold, self.lifetime) {
            Ok(_) => {}
            Err(e @ AccountError::RenamedTooOften { .. }) => return Ok(refused(Refusal::RateLimited, e.to_string())),
            Err(e) => return Err(e),
        }
        // Checked just above, and nothing counted since: this is admitted.
        if let Err(wait) = self.windows.admit(&limits, now) {
            tracing::warn!(wait, "a rename was carried out past its window");
        }
        let renamed = Account { username: new.to_string(), ..account };
        self.grant(peer, &renamed, &[], now)
    }
}

struct Job<T> {
    peer: Vec<u8>,
    host: Option<IpAddr>,
    request: AuthRequest,
    ticket: T,
}

/// The jobs waiting for the worker thread, shared by [`AuthWorker::submit`] (which queues) and
/// the thread (which serves).
struct Waiting<T> {
    state: Mutex<WaitingState<T>>,
    /// Signalled when a job is queued or gives way, and when the handle is dropped.
    changed: Condvar,
}

struct WaitingState<T> {
    queue: JobQueue<Job<T>>,
    /// Jobs that gave way to more urgent ones, for the thread to answer `rate_limited`.
    displaced: Vec<Job<T>>,
    /// Whether the handle still exists: jobs may still come.
    open: bool,
    /// Whether the thread still serves (it stops when nobody listens for answers).
    serving: bool,
}

impl<T> Waiting<T> {
    /// The state, even if a thread panicked while holding it (every change to it is whole).
    fn lock(&self) -> MutexGuard<'_, WaitingState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A handle to the worker thread running an [`AuthService`]. Answers come back on the channel
/// given to [`AuthWorker::spawn`], tagged with the caller's ticket. Dropping it lets the thread
/// serve what waits, then end.
pub struct AuthWorker<T> {
    waiting: Arc<Waiting<T>>,
    /// The account database, to class requests as they are submitted.
    accounts: Mutex<AccountStore>,
    authority: AuthorityKey,
}

impl<T> std::fmt::Debug for AuthWorker<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthWorker").field("authority", &self.authority.to_hex()).finish()
    }
}

impl<T> Drop for AuthWorker<T> {
    fn drop(&mut self) {
        self.waiting.lock().open = false;
        self.waiting.changed.notify_all();
    }
}

/// What the worker thread does next.
enum Turn<T> {
    /// Answer these jobs that gave way, then do `next`.
    Work { displaced: Vec<Job<T>>, next: Option<Next<Job<T>>> },
    /// Nothing waits and nothing more will come.
    Done,
}

/// The next turn of the worker thread: waits until there is something to do.
fn next_turn<T>(waiting: &Waiting<T>) -> Turn<T> {
    let mut state = waiting.lock();
    loop {
        let displaced = std::mem::take(&mut state.displaced);
        let next = state.queue.next(Instant::now());
        if !displaced.is_empty() || next.is_some() {
            return Turn::Work { displaced, next };
        }
        if !state.open {
            return Turn::Done;
        }
        state = waiting.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
    }
}

/// The worker thread: answers the jobs that gave way, then serves or refuses the next one,
/// until the handle is dropped and nothing is left, or nobody listens for answers.
fn work<T>(mut service: AuthService, waiting: &Waiting<T>, answers: mpsc::Sender<(T, AuthResponse)>) {
    let answer = |ticket: T, response: AuthResponse| answers.blocking_send((ticket, response)).is_ok();
    while let Turn::Work { displaced, next } = next_turn(waiting) {
        let mut delivered = displaced.into_iter().all(|job| answer(job.ticket, busy()));
        delivered &= match next {
            Some(Next::Serve(Job { peer, host, request, ticket })) => {
                let response = service.handle(&peer, host, request, unix_now());
                answer(ticket, response)
            }
            Some(Next::TooLate(job)) => {
                tracing::debug!(request = job.request.kind(), "an account request waited too long");
                answer(job.ticket, busy())
            }
            None => true,
        };
        if !delivered {
            break;
        }
    }
    let mut state = waiting.lock();
    state.serving = false;
    state.queue = JobQueue::new(0, QUEUE_WAIT_MAX);
    state.displaced.clear();
}

impl<T: Send + 'static> AuthWorker<T> {
    /// Runs `service` on its own thread; answers go to `answers`.
    pub fn spawn(service: AuthService, answers: mpsc::Sender<(T, AuthResponse)>) -> Result<Self, ServiceError> {
        let authority = service.authority_key();
        let accounts = Mutex::new(service.accounts.reader()?);
        let waiting = Arc::new(Waiting {
            state: Mutex::new(WaitingState {
                queue: JobQueue::new(QUEUE_MAX_JOBS, QUEUE_WAIT_MAX),
                displaced: Vec::new(),
                open: true,
                serving: true,
            }),
            changed: Condvar::new(),
        });
        let served = Arc::clone(&waiting);
        std::thread::Builder::new()
            .name("meshchat-accounts".into())
            .spawn(move || work(service, &served, answers))
            .map_err(ServiceError::Thread)?;
        Ok(AuthWorker { waiting, accounts, authority })
    }

    /// The key the service signs with.
    pub fn authority_key(&self) -> AuthorityKey {
        self.authority
    }

    /// Classes and queues a request of `peer` from `host` (the address of the connection it
    /// came on; `None` when unknown, as through a relay); `false` when it is refused (its asker
    /// has too many waiting, or the queue is full of requests at least as urgent) or the worker
    /// is gone. A stranger's request that gives way to it is answered `rate_limited` by the
    /// worker.
    pub fn submit(&self, peer: Vec<u8>, host: Option<IpAddr>, request: AuthRequest, ticket: T) -> bool {
        let class = class_of(&self.accounts.lock().unwrap_or_else(PoisonError::into_inner), &peer, &request);
        let mut state = self.waiting.lock();
        if !state.serving {
            return false;
        }
        let (asker, host_name) = (peer.clone(), host_key(host));
        match state.queue.push(Job { peer, host, request, ticket }, class, &asker, &host_name, Instant::now()) {
            Pushed::Queued => {}
            Pushed::Displaced(job) => state.displaced.push(job),
            Pushed::Refused(_) => return false,
        }
        drop(state);
        self.waiting.changed.notify_one();
        true
    }
}

use crate::clock::unix_now;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
