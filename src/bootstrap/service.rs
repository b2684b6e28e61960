//! The account service: answers [`AuthRequest`]s from peers with certificates or refusals.
//!
//! [`AuthWorker`] runs one [`AuthService`] on a thread of its own, so argon2 never blocks the
//! network, and requests are served one at a time, so at most one hash runs at once.

use std::path::Path;

use thiserror::Error;
use tokio::sync::mpsc;

use super::accounts::{Account, AccountError, AccountStore};
use super::password::{self, CredentialError, HashError, Hasher};
use super::throttle;
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
}

fn refused(refusal: Refusal, message: impl Into<String>) -> AuthResponse {
    AuthResponse::Refused { refusal, message: message.into() }
}

fn peer_key(peer: &[u8]) -> String {
    let hex: String = peer.iter().map(|b| format!("{b:02x}")).collect();
    format!("peer:{hex}")
}

fn user_key(username: &str) -> String {
    format!("user:{}", password::username_key(username))
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
            AuthRequest::Lookup { username } => self.accounts.holder(&username, now).map(|a| AuthResponse::User {
                account: a.map(|a| KnownAccount { account: a.id, username: a.username }),
            }),
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
        let serial = self.accounts.begin_session(peer, &account.username, forget)?;
        let certificate = self.authority.issue_for(account.id, &account.username, peer, now, serial, self.lifetime);
        let renamed = self.accounts.latest_rename(account.id)?.map(|r| RenameNote { old: r.old, new: r.new, at: r.at });
        Ok(AuthResponse::Granted { certificate, renamed })
    }

    fn register(&mut self, peer: &[u8], username: &str, pw: &str, now: u64) -> Result<AuthResponse, AccountError> {
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

    fn login(&mut self, peer: &[u8], username: &str, pw: &str, now: u64) -> Result<AuthResponse, AccountError> {
        if let Err(e) = password::check_username(username) {
            return Ok(e.into());
        }
        let keys = [user_key(username), peer_key(peer)];
        for key in &keys {
            if let Err(wait) = throttle::check(self.accounts.failures(key)?.as_ref(), now) {
                return Ok(refused(Refusal::RateLimited, format!("too many failed logins; try again in {wait} s")));
            }
        }
        let account = self.accounts.find(username)?;
        let password_ok = self.hasher.verify(pw, account.as_ref().map(|a| a.password_hash.as_str()));
        match account {
            Some(account) if password_ok => self.grant(peer, &account, &keys, now),
            _ => {
                for key in &keys {
                    let record = throttle::record_failure(self.accounts.failures(key)?, now);
                    self.accounts.set_failures(key, &record)?;
                }
                Ok(refused(Refusal::WrongCredentials, "wrong username or password"))
            }
        }
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

/// Capacity of the queue of requests waiting for the worker.
pub const AUTH_QUEUE: usize = 256;

struct Job<T> {
    peer: Vec<u8>,
    request: AuthRequest,
    ticket: T,
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

impl<T: Send + 'static> AuthWorker<T> {
    /// Runs `service` on its own thread; answers go to `answers`.
    pub fn spawn(mut service: AuthService, answers: mpsc::Sender<(T, AuthResponse)>) -> Result<Self, ServiceError> {
        let authority = service.authority_key();
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job<T>>(AUTH_QUEUE);
        std::thread::Builder::new()
            .name("meshchat-accounts".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    let response = service.handle(&job.peer, job.request, unix_now());
                    if answers.blocking_send((job.ticket, response)).is_err() {
                        return;
                    }
                }
            })
            .map_err(ServiceError::Thread)?;
        Ok(AuthWorker { jobs, authority })
    }

    /// The key the service signs with.
    pub fn authority_key(&self) -> AuthorityKey {
        self.authority
    }

    /// Queues a request; `false` when the queue is full or the worker is gone.
    pub fn submit(&self, peer: Vec<u8>, request: AuthRequest, ticket: T) -> bool {
        self.jobs.try_send(Job { peer, request, ticket }).is_ok()
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::throttle::FREE_FAILURES;

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
        assert!(answers[..FREE_FAILURES as usize - 1].iter().all(|r| *r == Some(Refusal::WrongCredentials)));
        assert_eq!(answers[11], Some(Refusal::RateLimited));
        // Blocked before hashing: even the right password is refused now.
        assert_eq!(refusal(&login(&mut s, b"mallory", "alice", GOOD)), Some(Refusal::RateLimited));
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
