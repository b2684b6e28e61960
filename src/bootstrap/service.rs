//! The account service: answers [`AuthRequest`]s from peers with certificates or refusals,
//! applying the throttling policy of [`super::throttle`] before any hashing.
//!
//! [`AuthWorker`] runs one [`AuthService`] on a plain thread of its own, so argon2 never blocks
//! the network, and requests are served one at a time, so at most one hash runs at once. The
//! thread drains the channel into a [`JobQueue`] and serves quick requests first, then known
//! machines, then strangers; what it cannot serve within [`QUEUE_WAIT_MAX`] is answered
//! `rate_limited` without hashing. Nothing here panics on a peer's input.

use std::path::Path;
use std::time::Instant;

use thiserror::Error;
use tokio::sync::mpsc;

use super::accounts::{Account, AccountError, AccountStore};
use super::password::{self, CredentialError, HashError, Hasher};
use super::queue::{Class, JobQueue, Next, QUEUE_MAX_JOBS, QUEUE_WAIT_MAX};
use super::throttle::{self, Backoff, Windows};
use crate::account::AccountId;
use crate::cert::{Authority, AuthorityKey, CERT_LIFETIME_SECS};
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
    /// Registrations and look-ups counted per peer and overall.
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Failures of `peer` on account `account`.
fn pair_key(account: AccountId, peer: &[u8]) -> String {
    format!("pair:{account}:{}", hex(peer))
}

/// Failures on account `account` of the peers that never held its certificate.
fn strangers_key(account: AccountId) -> String {
    format!("strangers:{account}")
}

/// Failures of `peer` with names that do not exist.
fn unknown_name_key(peer: &[u8]) -> String {
    format!("unknown:{}", hex(peer))
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

    /// Answers `request` from peer `peer` at `now` (Unix seconds). Never panics on input.
    pub fn handle(&mut self, peer: &[u8], request: AuthRequest, now: u64) -> AuthResponse {
        let kind = request.kind();
        let result = match request {
            AuthRequest::Register { username, password } => self.register(peer, &username, &password, now),
            AuthRequest::Login { username, password } => self.login(peer, &username, &password, now),
            AuthRequest::Renew => self.renew(peer, now),
            AuthRequest::Rename { new_username } => self.rename(peer, &new_username, now),
            AuthRequest::Logout => self.accounts.end_session(peer).map(|()| AuthResponse::LoggedOut),
            AuthRequest::Lookup { username } => self.lookup(peer, &username, now),
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

    /// How urgent `request` from `peer` is for the worker: quick when it does not hash, else
    /// known when `peer` held any account's certificate (which covers an account whose
    /// certificate it held), else a stranger's. A database error counts as a stranger.
    pub fn class_of(&self, peer: &[u8], request: &AuthRequest) -> Class {
        match request {
            AuthRequest::Register { .. } | AuthRequest::Login { .. } => match self.accounts.known_machine(peer) {
                Ok(true) => Class::Known,
                Ok(false) => Class::Stranger,
                Err(error) => {
                    tracing::error!(%error, "cannot tell whether a peer is a known machine");
                    Class::Stranger
                }
            },
            AuthRequest::Renew | AuthRequest::Rename { .. } | AuthRequest::Logout | AuthRequest::Lookup { .. } => {
                Class::Quick
            }
        }
    }

    fn register(&mut self, peer: &[u8], username: &str, pw: &str, now: u64) -> Result<AuthResponse, AccountError> {
        let peer_window = format!("register:{}", hex(peer));
        let admitted = self.windows.admit(
            (&peer_window, &throttle::REGISTER_PER_PEER),
            ("register:*", &throttle::REGISTER_OVERALL),
            now,
        );
        if let Err(wait) = admitted {
            return Ok(rate_limited(format!("too many registrations; try again in {wait} s")));
        }
        if let Err(e) = password::check_username(username).and_then(|()| password::check_strength(pw, username)) {
            return Ok(e.into());
        }
        if self.accounts.holder(username, now)?.is_some() {
            return Ok(refused(Refusal::UsernameTaken, format!("username '{username}' is taken")));
        }
        let hash = match self.hasher.hash(pw) {
            Ok(hash) => hash,
            Err(e) => return Ok(refused(Refusal::Internal, e.to_string())),
        };
        let id = self.accounts.create(username, &hash, now)?;
        let account = Account { id, username: username.to_string(), password_hash: hash };
        self.grant(peer, &account, &[], now)
    }

    fn lookup(&mut self, peer: &[u8], username: &str, now: u64) -> Result<AuthResponse, AccountError> {
        let peer_window = format!("lookup:{}", hex(peer));
        let admitted = self.windows.admit(
            (&peer_window, &throttle::LOOKUP_PER_PEER),
            ("lookup:*", &throttle::LOOKUP_OVERALL),
            now,
        );
        if let Err(wait) = admitted {
            return Ok(rate_limited(format!("too many look-ups; try again in {wait} s")));
        }
        let found = self.accounts.holder(username, now)?;
        Ok(AuthResponse::User { account: found.map(|a| KnownAccount { account: a.id, username: a.username }) })
    }

    /// Logs in: throttled per (account, peer), and for strangers also per account, before any
    /// hashing; a name that does not exist counts against the asking peer.
    fn login(&mut self, peer: &[u8], username: &str, pw: &str, now: u64) -> Result<AuthResponse, AccountError> {
        if let Err(e) = password::check_username(username) {
            return Ok(e.into());
        }
        let Some(account) = self.accounts.find(username)? else {
            let key = unknown_name_key(peer);
            if let Err(wait) = throttle::check(self.accounts.failures(&key)?.as_ref(), now) {
                return Ok(rate_limited(format!("too many failed logins; try again in {wait} s")));
            }
            // Hash all the same, so that timing does not tell which names exist.
            self.hasher.verify(pw, None);
            self.fail(&[(key, &throttle::UNKNOWN_NAME)], now)?;
            return Ok(refused(Refusal::WrongCredentials, "wrong username or password"));
        };
        let known = self.accounts.held(account.id, peer)?;
        let pair = pair_key(account.id, peer);
        if let Err(wait) = throttle::check(self.accounts.failures(&pair)?.as_ref(), now) {
            return Ok(rate_limited(format!("too many failed logins from this machine; try again in {wait} s")));
        }
        let strangers = strangers_key(account.id);
        if !known && let Err(wait) = throttle::check(self.accounts.failures(&strangers)?.as_ref(), now) {
            return Ok(rate_limited(format!(
                "too many failed logins to this account from machines it has not used; try again in {wait} s \
                 (a machine this account logged in from before is not held back)"
            )));
        }
        if self.hasher.verify(pw, Some(account.password_hash.as_str())) {
            return self.grant(peer, &account, &[pair], now);
        }
        let mut records = vec![(pair, &throttle::PAIR)];
        if !known {
            records.push((strangers, &throttle::STRANGERS));
        }
        self.fail(&records, now)?;
        Ok(refused(Refusal::WrongCredentials, "wrong username or password"))
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
            self.accounts.prune_failures(now, throttle::FAILURE_WINDOW_SECS)?;
        }
        Ok(())
    }

    fn renew(&mut self, peer: &[u8], now: u64) -> Result<AuthResponse, AccountError> {
        match self.accounts.session(peer)? {
            Some(account) => self.grant(peer, &account, &[], now),
            None => Ok(refused(Refusal::NotLoggedIn, "this peer has no session; log in again")),
        }
    }

    fn rename(&mut self, peer: &[u8], new: &str, now: u64) -> Result<AuthResponse, AccountError> {
        if let Err(e) = password::check_username(new) {
            return Ok(e.into());
        }
        let Some(account) = self.accounts.session(peer)? else {
            return Ok(refused(Refusal::NotLoggedIn, "log in first"));
        };
        if self.accounts.holder(new, now)?.is_some_and(|holder| holder.id != account.id) {
            return Ok(refused(Refusal::UsernameTaken, format!("username '{new}' is taken")));
        }
        self.accounts.rename(account.id, new, now, self.name_hold)?;
        let renamed = Account { username: new.to_string(), ..account };
        self.grant(peer, &renamed, &[], now)
    }
}

/// Capacity of the channel of requests on their way to the worker (which drains it into its
/// own [`JobQueue`] of at most [`QUEUE_MAX_JOBS`]).
pub const AUTH_QUEUE: usize = 256;

struct Job<T> {
    peer: Vec<u8>,
    request: AuthRequest,
    ticket: T,
    /// When it was submitted.
    arrived: Instant,
}

/// A handle to the worker thread running an [`AuthService`]. Answers come back on the channel
/// given to [`AuthWorker::spawn`], tagged with the caller's ticket.
pub struct AuthWorker<T> {
    jobs: std::sync::mpsc::SyncSender<Job<T>>,
    authority: AuthorityKey,
}

impl<T> std::fmt::Debug for AuthWorker<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthWorker").field("authority", &self.authority.to_hex()).finish()
    }
}

/// The worker thread: takes in every job that arrived, then serves or refuses the next one,
/// until the handle is dropped and nothing is left, or nobody listens for answers.
fn work<T>(
    mut service: AuthService,
    channel: std::sync::mpsc::Receiver<Job<T>>,
    answers: mpsc::Sender<(T, AuthResponse)>,
) {
    let mut queue: JobQueue<Job<T>> = JobQueue::new(QUEUE_MAX_JOBS, QUEUE_WAIT_MAX);
    let answer = |ticket: T, response: AuthResponse| answers.blocking_send((ticket, response)).is_ok();
    loop {
        let mut arrived = Vec::new();
        if queue.is_empty() {
            match channel.recv() {
                Ok(job) => arrived.push(job),
                Err(_) => return,
            }
        }
        arrived.extend(channel.try_iter());
        for job in arrived {
            let class = service.class_of(&job.peer, &job.request);
            let at = job.arrived;
            if let Some(refused) = queue.push(job, class, at)
                && !answer(refused.ticket, busy())
            {
                return;
            }
        }
        let delivered = match queue.next(Instant::now()) {
            Some(Next::Serve(Job { peer, request, ticket, .. })) => {
                let response = service.handle(&peer, request, unix_now());
                answer(ticket, response)
            }
            Some(Next::TooLate(job)) => {
                tracing::debug!(request = job.request.kind(), "an account request waited too long");
                answer(job.ticket, busy())
            }
            None => true,
        };
        if !delivered {
            return;
        }
    }
}

impl<T: Send + 'static> AuthWorker<T> {
    /// Runs `service` on its own thread; answers go to `answers`.
    pub fn spawn(service: AuthService, answers: mpsc::Sender<(T, AuthResponse)>) -> Result<Self, ServiceError> {
        let authority = service.authority_key();
        let (jobs, channel) = std::sync::mpsc::sync_channel::<Job<T>>(AUTH_QUEUE);
        std::thread::Builder::new()
            .name("meshchat-accounts".into())
            .spawn(move || work(service, channel, answers))
            .map_err(ServiceError::Thread)?;
        Ok(AuthWorker { jobs, authority })
    }

    /// The key the service signs with.
    pub fn authority_key(&self) -> AuthorityKey {
        self.authority
    }

    /// Queues a request; `false` when the channel is full or the worker is gone.
    pub fn submit(&self, peer: Vec<u8>, request: AuthRequest, ticket: T) -> bool {
        self.jobs.try_send(Job { peer, request, ticket, arrived: Instant::now() }).is_ok()
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::throttle::{
        LOOKUP_OVERALL, LOOKUP_PER_PEER, PAIR_FREE_FAILURES, REGISTER_OVERALL, REGISTER_PER_PEER,
        STRANGERS_FREE_FAILURES,
    };

    const NOW: u64 = 1_800_000_000;
    const GOOD: &str = "correct horse battery staple";

    fn service() -> (tempfile::TempDir, AuthService) {
        let dir = tempfile::tempdir().unwrap();
        let service = AuthService::open(dir.path(), Authority::from_secret(&[9; 32])).unwrap();
        (dir, service)
    }

    fn register(s: &mut AuthService, peer: &[u8], name: &str, pw: &str) -> AuthResponse {
        s.handle(peer, AuthRequest::Register { username: name.into(), password: pw.into() }, NOW)
    }

    fn login(s: &mut AuthService, peer: &[u8], name: &str, pw: &str) -> AuthResponse {
        s.handle(peer, AuthRequest::Login { username: name.into(), password: pw.into() }, NOW)
    }

    fn refusal(r: &AuthResponse) -> Option<Refusal> {
        match r {
            AuthResponse::Refused { refusal, .. } => Some(*refusal),
            _ => None,
        }
    }

    #[test]
    fn register_then_login_grants_verifiable_certificates() {
        let (_dir, mut s) = service();
        let AuthResponse::Granted { certificate, .. } = register(&mut s, b"peer-a", "alice", GOOD) else { panic!() };
        assert_eq!(certificate.verify(&s.authority_key(), b"peer-a", NOW).map(|b| b.username.as_str()), Ok("alice"));
        let AuthResponse::Granted { certificate: second, .. } = login(&mut s, b"peer-b", "ALICE", GOOD) else {
            panic!()
        };
        assert_eq!(second.verify(&s.authority_key(), b"peer-b", NOW).map(|b| b.username.as_str()), Ok("alice"));
        assert!(second.body.serial > certificate.body.serial);
        assert_eq!(second.body.account, certificate.body.account, "one account, one id");
        let AuthResponse::Granted { certificate: bob, .. } = register(&mut s, b"peer-c", "bob", GOOD) else { panic!() };
        assert_ne!(bob.body.account, certificate.body.account);
    }

    #[test]
    fn refusals_have_their_reasons() {
        let (_dir, mut s) = service();
        assert_eq!(refusal(&register(&mut s, b"p", "al", GOOD)), Some(Refusal::InvalidUsername));
        assert_eq!(refusal(&register(&mut s, b"p", "alice", "password1")), Some(Refusal::WeakPassword));
        register(&mut s, b"p", "alice", GOOD);
        assert_eq!(refusal(&register(&mut s, b"q", "Alice", GOOD)), Some(Refusal::UsernameTaken));
        assert_eq!(refusal(&login(&mut s, b"q", "alice", "wrong password")), Some(Refusal::WrongCredentials));
        assert_eq!(refusal(&login(&mut s, b"q", "nobody", GOOD)), Some(Refusal::WrongCredentials));
        assert_eq!(refusal(&s.handle(b"z", AuthRequest::Renew, NOW)), Some(Refusal::NotLoggedIn));
    }

    #[test]
    fn guessing_is_rate_limited_even_with_the_right_password() {
        let (_dir, mut s) = service();
        register(&mut s, b"p", "alice", GOOD);
        let answers: Vec<Option<Refusal>> =
            (0..12).map(|_| refusal(&login(&mut s, b"mallory", "alice", "guess"))).collect();
        assert!(answers[..PAIR_FREE_FAILURES as usize].iter().all(|r| *r == Some(Refusal::WrongCredentials)));
        assert_eq!(answers[11], Some(Refusal::RateLimited));
        // Blocked before hashing: even the right password is refused now.
        assert_eq!(refusal(&login(&mut s, b"mallory", "alice", GOOD)), Some(Refusal::RateLimited));
    }

    fn lookup(s: &mut AuthService, peer: &[u8], name: &str) -> AuthResponse {
        s.handle(peer, AuthRequest::Lookup { username: name.into() }, NOW)
    }

    /// alice registered on her machine `home` and logged out there.
    fn alice_at_home() -> (tempfile::TempDir, AuthService) {
        let (dir, mut s) = service();
        assert!(matches!(register(&mut s, b"home", "alice", GOOD), AuthResponse::Granted { .. }));
        assert_eq!(s.handle(b"home", AuthRequest::Logout, NOW), AuthResponse::LoggedOut);
        (dir, s)
    }

    #[test]
    fn a_guessing_stranger_is_blocked_on_its_own_key_and_the_owner_logs_in() {
        let (_dir, mut s) = alice_at_home();
        let answers: Vec<Option<Refusal>> =
            (0..8).map(|_| refusal(&login(&mut s, b"mallory", "alice", "guess"))).collect();
        assert_eq!(answers[PAIR_FREE_FAILURES as usize], Some(Refusal::RateLimited), "{answers:?}");
        assert_eq!(refusal(&login(&mut s, b"mallory", "alice", GOOD)), Some(Refusal::RateLimited));
        // Another stranger is not held back by mallory's key, nor is the owner's machine.
        assert_eq!(refusal(&login(&mut s, b"eve", "alice", "guess")), Some(Refusal::WrongCredentials));
        assert_eq!(refusal(&login(&mut s, b"home", "alice", GOOD)), None, "the owner logs in");
        assert_eq!(refusal(&login(&mut s, b"mallory", "alice", GOOD)), Some(Refusal::RateLimited));
    }

    #[test]
    fn strangers_together_meet_the_account_wide_limit_and_the_owner_still_logs_in() {
        let (_dir, mut s) = alice_at_home();
        // Each stranger stays under its own limit; together they pass the strangers' one.
        let per_stranger = PAIR_FREE_FAILURES - 1;
        let strangers = STRANGERS_FREE_FAILURES.div_ceil(per_stranger);
        for i in 0..strangers {
            for _ in 0..per_stranger {
                let answer = refusal(&login(&mut s, format!("stranger-{i}").as_bytes(), "alice", "guess"));
                assert!(matches!(answer, Some(Refusal::WrongCredentials | Refusal::RateLimited)), "{answer:?}");
            }
        }
        let fresh = login(&mut s, b"fresh", "alice", GOOD);
        assert_eq!(refusal(&fresh), Some(Refusal::RateLimited), "even the right password waits: {fresh:?}");
        let AuthResponse::Refused { message, .. } = fresh else { unreachable!() };
        assert!(message.contains("machines it has not used"), "{message}");
        // The owner's machine is not a stranger: in at once, even after its own mistake.
        assert_eq!(refusal(&login(&mut s, b"home", "alice", "typo")), Some(Refusal::WrongCredentials));
        assert_eq!(refusal(&login(&mut s, b"home", "alice", GOOD)), None);
        // Other accounts are not affected.
        register(&mut s, b"bob-home", "bob", GOOD);
        assert_eq!(refusal(&login(&mut s, b"fresh", "bob", GOOD)), None);
        // Once the block is over, strangers may try again.
        let later =
            s.handle(b"fresh", AuthRequest::Login { username: "alice".into(), password: GOOD.into() }, NOW + 3600);
        assert_eq!(refusal(&later), None, "{later:?}");
    }

    #[test]
    fn logins_for_names_that_do_not_exist_count_against_the_asking_peer() {
        let (_dir, mut s) = alice_at_home();
        let answers: Vec<Option<Refusal>> =
            (0..=PAIR_FREE_FAILURES).map(|i| refusal(&login(&mut s, b"q", &format!("nobody{i}"), GOOD))).collect();
        assert_eq!(answers[0], Some(Refusal::WrongCredentials));
        assert_eq!(answers[PAIR_FREE_FAILURES as usize], Some(Refusal::RateLimited), "{answers:?}");
        assert_eq!(refusal(&login(&mut s, b"r", "nobody", GOOD)), Some(Refusal::WrongCredentials));
        assert_eq!(refusal(&login(&mut s, b"home", "alice", GOOD)), None);
    }

    #[test]
    fn registrations_are_limited_per_peer_and_overall() {
        let (_dir, mut s) = service();
        // Every request counts, even a refused one: weak passwords cost no hashing here.
        for _ in 0..REGISTER_PER_PEER.max_requests {
            assert_eq!(refusal(&register(&mut s, b"p", "alice", "password1")), Some(Refusal::WeakPassword));
        }
        let limited = register(&mut s, b"p", "alice", GOOD);
        assert_eq!(refusal(&limited), Some(Refusal::RateLimited), "{limited:?}");
        assert!(matches!(register(&mut s, b"q", "alice", GOOD), AuthResponse::Granted { .. }), "another peer");
        let used = REGISTER_PER_PEER.max_requests + 1;
        for i in used..REGISTER_OVERALL.max_requests {
            let answer = register(&mut s, format!("peer-{i}").as_bytes(), "x", GOOD);
            assert_eq!(refusal(&answer), Some(Refusal::InvalidUsername));
        }
        assert_eq!(refusal(&register(&mut s, b"newcomer", "carol", GOOD)), Some(Refusal::RateLimited));
        // A new window, a new chance.
        let later = REGISTER_PER_PEER.window_secs.max(REGISTER_OVERALL.window_secs);
        let again =
            s.handle(b"p", AuthRequest::Register { username: "carol".into(), password: GOOD.into() }, NOW + later);
        assert!(matches!(again, AuthResponse::Granted { .. }), "{again:?}");
    }

    #[test]
    fn look_ups_are_limited_per_peer_and_overall() {
        let (_dir, mut s) = alice_at_home();
        for _ in 0..LOOKUP_PER_PEER.max_requests {
            assert!(matches!(lookup(&mut s, b"p", "alice"), AuthResponse::User { account: Some(_) }));
        }
        assert_eq!(refusal(&lookup(&mut s, b"p", "alice")), Some(Refusal::RateLimited));
        let mut asked = LOOKUP_PER_PEER.max_requests;
        for i in 0.. {
            if asked >= LOOKUP_OVERALL.max_requests {
                break;
            }
            for _ in 0..LOOKUP_PER_PEER.max_requests.min(LOOKUP_OVERALL.max_requests - asked) {
                assert!(matches!(
                    lookup(&mut s, format!("q{i}").as_bytes(), "bob"),
                    AuthResponse::User { account: None }
                ));
                asked += 1;
            }
        }
        assert_eq!(refusal(&lookup(&mut s, b"newcomer", "alice")), Some(Refusal::RateLimited));
        let later = s.handle(b"p", AuthRequest::Lookup { username: "alice".into() }, NOW + LOOKUP_OVERALL.window_secs);
        assert!(matches!(later, AuthResponse::User { account: Some(_) }), "{later:?}");
    }

    #[test]
    fn the_queue_class_follows_the_machines_that_held_a_certificate() {
        let (_dir, mut s) = alice_at_home();
        let login_req = |name: &str| AuthRequest::Login { username: name.into(), password: GOOD.into() };
        assert_eq!(s.class_of(b"home", &login_req("alice")), Class::Known);
        assert_eq!(s.class_of(b"home", &login_req("bob")), Class::Known, "a known machine, whichever account");
        assert_eq!(s.class_of(b"stranger", &login_req("alice")), Class::Stranger);
        let reg = AuthRequest::Register { username: "bob".into(), password: GOOD.into() };
        assert_eq!(s.class_of(b"stranger", &reg), Class::Stranger);
        assert_eq!(s.class_of(b"stranger", &AuthRequest::Renew), Class::Quick);
        assert_eq!(s.class_of(b"stranger", &AuthRequest::Lookup { username: "alice".into() }), Class::Quick);
        login(&mut s, b"stranger", "alice", GOOD);
        assert_eq!(s.class_of(b"stranger", &reg), Class::Known, "it held alice's certificate now");
    }

    #[test]
    fn rename_and_renew_follow_the_session_and_keep_the_account() {
        let (_dir, mut s) = service();
        let granted = |r: AuthResponse| match r {
            AuthResponse::Granted { certificate, renamed } => (certificate, renamed),
            other => panic!("{other:?}"),
        };
        let (first, _) = granted(register(&mut s, b"p", "alice", GOOD));
        register(&mut s, b"q", "bob", GOOD);
        let taken = s.handle(b"p", AuthRequest::Rename { new_username: "BOB".into() }, NOW);
        assert_eq!(refusal(&taken), Some(Refusal::UsernameTaken));
        let (certificate, renamed) =
            granted(s.handle(b"p", AuthRequest::Rename { new_username: "alicia".into() }, NOW));
        assert_eq!((certificate.body.username.as_str(), certificate.body.account), ("alicia", first.body.account));
        assert_eq!(renamed.as_ref().map(|r| (r.old.as_str(), r.new.as_str())), Some(("alice", "alicia")));
        // The renewal hands the rename out again: a node whose rename answer was lost heals.
        let (certificate, renamed_again) = granted(s.handle(b"p", AuthRequest::Renew, NOW + 60));
        assert_eq!(certificate.body.username, "alicia");
        assert_eq!(renamed_again, renamed);
        // The old name stays with alicia's account: nobody registers it; a look-up finds her.
        assert_eq!(refusal(&register(&mut s, b"r", "Alice", GOOD)), Some(Refusal::UsernameTaken));
        let lookup = s.handle(b"r", AuthRequest::Lookup { username: "alice".into() }, NOW);
        let AuthResponse::User { account: Some(found) } = lookup else { panic!("{lookup:?}") };
        assert_eq!((found.account, found.username.as_str()), (first.body.account, "alicia"));
        assert_eq!(s.handle(b"p", AuthRequest::Logout, NOW), AuthResponse::LoggedOut);
        assert_eq!(refusal(&s.handle(b"p", AuthRequest::Renew, NOW)), Some(Refusal::NotLoggedIn));
    }

    #[test]
    fn a_freed_name_goes_to_a_new_account_only_after_the_hold() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = AuthService::open(dir.path(), Authority::from_secret(&[9; 32])).unwrap().with_name_hold(3600);
        let AuthResponse::Granted { certificate: alice, .. } = register(&mut s, b"p", "alice", GOOD) else { panic!() };
        s.handle(b"p", AuthRequest::Rename { new_username: "alicia".into() }, NOW);
        let later = |s: &mut AuthService| {
            s.handle(b"r", AuthRequest::Register { username: "alice".into(), password: GOOD.into() }, NOW + 3600)
        };
        let AuthResponse::Granted { certificate: newcomer, .. } = later(&mut s) else { panic!() };
        assert_ne!(newcomer.body.account, alice.body.account);
        assert_eq!(newcomer.body.username, "alice");
    }

    #[test]
    fn lookup_finds_accounts_in_any_case() {
        let (_dir, mut s) = service();
        register(&mut s, b"p", "Alice", GOOD);
        let lookup =
            |s: &mut AuthService, name: &str| s.handle(b"q", AuthRequest::Lookup { username: name.into() }, NOW);
        let AuthResponse::User { account: Some(found) } = lookup(&mut s, "alice") else { panic!() };
        assert_eq!(found.username, "Alice");
        assert_eq!(lookup(&mut s, "nobody"), AuthResponse::User { account: None });
    }
}

#[cfg(test)]
mod proptests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::account::{AccountId, canonical};
    use crate::cert::Certificate;
    use crate::directory::Directory;

    const NAMES: &[&str] = &["alice", "Alice", "bob", "BOB"];
    const PEERS: usize = 3;
    const HOLD: u64 = 100;
    const GOOD: &str = "correct horse battery staple";
    const START: u64 = 1_800_000_000;

    #[derive(Debug, Clone)]
    enum Op {
        Register(usize, usize),
        Login(usize, usize),
        Rename(usize, usize),
        Renew(usize),
        Logout(usize),
        Wait(u64),
    }

    fn any_op() -> impl Strategy<Value = Op> {
        let peer = 0..PEERS;
        let name = 0..NAMES.len();
        prop_oneof![
            3 => (peer.clone(), name.clone()).prop_map(|(p, n)| Op::Register(p, n)),
            1 => (peer.clone(), name.clone()).prop_map(|(p, n)| Op::Login(p, n)),
            3 => (peer.clone(), name).prop_map(|(p, n)| Op::Rename(p, n)),
            1 => peer.clone().prop_map(Op::Renew),
            1 => peer.prop_map(Op::Logout),
            2 => prop_oneof![0u64..HOLD / 2, HOLD..2 * HOLD].prop_map(Op::Wait),
        ]
    }

    /// Who may be given a name: the account holding it, and since when it is free of it.
    #[derive(Debug, Clone, Copy)]
    struct Holding {
        account: AccountId,
        released_at: Option<u64>,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn no_name_ever_speaks_for_two_accounts(ops in prop::collection::vec(any_op(), 1..14), seed in any::<u64>()) {
            let dir = tempfile::tempdir().unwrap();
            let mut s = AuthService::open(dir.path(), Authority::from_secret(&[9; 32])).unwrap().with_name_hold(HOLD);
            let key = s.authority_key();
            let mut now = START;
            let mut issued: Vec<Certificate> = Vec::new();
            let mut holdings: HashMap<String, Holding> = HashMap::new();
            let mut current: HashMap<AccountId, String> = HashMap::new();
            for op in ops {
                let (peer, request) = match op {
                    Op::Wait(secs) => {
                        now += secs;
                        continue;
                    }
                    Op::Register(p, n) => (p, AuthRequest::Register { username: NAMES[n].into(), password: GOOD.into() }),
                    Op::Login(p, n) => (p, AuthRequest::Login { username: NAMES[n].into(), password: GOOD.into() }),
                    Op::Rename(p, n) => (p, AuthRequest::Rename { new_username: NAMES[n].into() }),
                    Op::Renew(p) => (p, AuthRequest::Renew),
                    Op::Logout(p) => (p, AuthRequest::Logout),
                };
                let peer_id = [b'p', peer as u8];
                let AuthResponse::Granted { certificate, .. } = s.handle(&peer_id, request, now) else { continue };
                let body = certificate.verify(&key, &peer_id, now).expect("a valid certificate").clone();
                let name = canonical(&body.username);
                // Nobody else holds the name, or let go of it less than the hold ago.
                if let Some(h) = holdings.get(&name) {
                    prop_assert!(
                        h.account == body.account || h.released_at.is_some_and(|at| now >= at + HOLD),
                        "{} given to {} while {:?} holds it", name, body.account, h
                    );
                }
                if let Some(old) = current.insert(body.account, name.clone()).filter(|old| *old != name) {
                    holdings.insert(old, Holding { account: body.account, released_at: Some(now) });
                }
                holdings.insert(name.clone(), Holding { account: body.account, released_at: None });
                // One account per canonical name in the database.
                let found = s.accounts.find(&body.username).unwrap().expect("the account");
                prop_assert_eq!(found.id, body.account);
                issued.push(certificate);
            }
            // Whatever order a node hears the certificates in, each account goes by the name of
            // its newest certificate, and a name finds only its newest holder.
            let mut order: Vec<usize> = (0..issued.len()).collect();
            let mut x = seed | 1;
            for i in (1..order.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                order.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut directory = Directory::new();
            for i in order {
                directory.learn(&issued[i].body);
            }
            for (account, name) in &current {
                prop_assert_eq!(canonical(&directory.name_of(account)), name.clone());
                prop_assert_eq!(directory.find(name), Some(*account));
            }
        }
    }
}
