//! The account service: answers [`AuthRequest`]s from peers with certificates or refusals.
//!
//! [`AuthWorker`] runs one [`AuthService`] on a thread of its own, so argon2 never blocks the
//! network, and requests are served one at a time, so at most one hash runs at once.

use std::path::Path;

use thiserror::Error;
use tokio::sync::mpsc;

use super::accounts::{AccountError, AccountStore};
use super::password::{self, CredentialError, HashError, Hasher};
use super::throttle;
use crate::cert::{Authority, AuthorityKey, CERT_LIFETIME_SECS};
use crate::protocol::auth::{AuthRequest, AuthResponse, Refusal};

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
        })
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
            AuthRequest::Lookup { username } => {
                self.accounts.find(&username).map(|a| AuthResponse::User { username: a.map(|a| a.username) })
            }
        };
        result.unwrap_or_else(|e| {
            tracing::error!(request = kind, error = %e, "account service failed");
            match e {
                AccountError::Taken(name) => refused(Refusal::UsernameTaken, format!("username '{name}' is taken")),
                other => refused(Refusal::Internal, format!("the account server failed: {other}")),
            }
        })
    }

    /// Logs `peer` in as `username` (forgetting the failure records under `forget`) and issues
    /// its certificate.
    fn grant(
        &mut self,
        peer: &[u8],
        username: &str,
        forget: &[String],
        now: u64,
    ) -> Result<AuthResponse, AccountError> {
        let serial = self.accounts.begin_session(peer, username, forget)?;
        Ok(AuthResponse::Granted { certificate: self.authority.issue_for(username, peer, now, serial, self.lifetime) })
    }

    fn register(&mut self, peer: &[u8], username: &str, pw: &str, now: u64) -> Result<AuthResponse, AccountError> {
        if let Err(e) = password::check_username(username).and_then(|()| password::check_strength(pw, username)) {
            return Ok(e.into());
        }
        if self.accounts.exists(username)? {
            return Ok(refused(Refusal::UsernameTaken, format!("username '{username}' is taken")));
        }
        let hash = match self.hasher.hash(pw) {
            Ok(hash) => hash,
            Err(e) => return Ok(refused(Refusal::Internal, e.to_string())),
        };
        self.accounts.create(username, &hash, now)?;
        self.grant(peer, username, &[], now)
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
            Some(account) if password_ok => self.grant(peer, &account.username, &keys, now),
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
            Some(account) => self.grant(peer, &account.username, &[], now),
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
        let same_name = password::username_key(&account.username) == password::username_key(new);
        if !same_name && self.accounts.exists(new)? {
            return Ok(refused(Refusal::UsernameTaken, format!("username '{new}' is taken")));
        }
        self.accounts.rename(&account.username, new)?;
        let proof = self.authority.attest_rename(&account.username, new, peer, now);
        match self.grant(peer, new, &[], now)? {
            AuthResponse::Granted { certificate } => Ok(AuthResponse::Renamed { certificate, proof }),
            other => Ok(other),
        }
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
        let AuthResponse::Granted { certificate } = register(&mut s, b"peer-a", "alice", GOOD) else { panic!() };
        assert_eq!(certificate.verify(&s.authority_key(), b"peer-a", NOW), Ok("alice"));
        let AuthResponse::Granted { certificate: second } = login(&mut s, b"peer-b", "ALICE", GOOD) else { panic!() };
        assert_eq!(second.verify(&s.authority_key(), b"peer-b", NOW), Ok("alice"));
        assert!(second.body.serial > certificate.body.serial);
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
    fn rename_and_renew_follow_the_session() {
        let (_dir, mut s) = service();
        register(&mut s, b"p", "alice", GOOD);
        register(&mut s, b"q", "bob", GOOD);
        let taken = s.handle(b"p", AuthRequest::Rename { new_username: "BOB".into() }, NOW);
        assert_eq!(refusal(&taken), Some(Refusal::UsernameTaken));
        let AuthResponse::Renamed { certificate, proof } =
            s.handle(b"p", AuthRequest::Rename { new_username: "alicia".into() }, NOW)
        else {
            panic!()
        };
        assert_eq!(certificate.body.username, "alicia");
        assert_eq!((proof.old.as_str(), proof.new.as_str(), proof.peer_id.as_slice()), ("alice", "alicia", &b"p"[..]));
        assert_eq!(proof.verify(&s.authority_key()), Ok(()));
        let AuthResponse::Granted { certificate } = s.handle(b"p", AuthRequest::Renew, NOW) else { panic!() };
        assert_eq!(certificate.body.username, "alicia");
        assert!(matches!(register(&mut s, b"r", "alice", GOOD), AuthResponse::Granted { .. }), "old name is free");
        assert_eq!(s.handle(b"p", AuthRequest::Logout, NOW), AuthResponse::LoggedOut);
        assert_eq!(refusal(&s.handle(b"p", AuthRequest::Renew, NOW)), Some(Refusal::NotLoggedIn));
    }

    #[test]
    fn lookup_finds_accounts_in_any_case() {
        let (_dir, mut s) = service();
        register(&mut s, b"p", "Alice", GOOD);
        let lookup =
            |s: &mut AuthService, name: &str| s.handle(b"q", AuthRequest::Lookup { username: name.into() }, NOW);
        assert_eq!(lookup(&mut s, "alice"), AuthResponse::User { username: Some("Alice".into()) });
        assert_eq!(lookup(&mut s, "nobody"), AuthResponse::User { username: None });
    }
}
