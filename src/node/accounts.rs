//! The node's side of accounts: the saved session, the trusted bootstrap node, and account
//! requests in flight, to a bootstrap node in reach or to the account worker this node hosts.
//!
//! A bootstrap node whose key is not pinned is *unconfirmed*: it is reported with its key, and
//! `/register` and `/login` fail with `bootstrap_unconfirmed` (nothing is sent) until the user
//! confirms a key with `/trust`; then the bootstrap nodes in reach with that key are found.
//!
//! A request with no bootstrap in reach waits [`NO_BOOTSTRAP_WAIT`] for one to appear, then
//! fails with `no_bootstrap`. Certificates are renewed while a bootstrap is in reach once less
//! than a third of their lifetime is left; a saved session resumes at start without a password.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};

use super::CommandError;
use super::client::Done;
use super::direct::{AfterLookup, Lookup};
use super::event::{ErrorCode, UiEvent};
use super::event_loop::EventLoop;
use crate::account::AccountId;
use crate::bootstrap::AuthWorker;
use crate::cert::{AuthorityKey, CertBody, CertError};
use crate::clock::unix_now;
use crate::directory::{Directory, Learnt};
use crate::presence::{NICK_MAX_CHARS, valid_nick};
use crate::protocol::auth::{AuthRequest, AuthResponse, Refusal};
use crate::store::{NodeStore, Session};
use crate::trust::{Trust, grouped};

/// How long an account request waits for a bootstrap node to come into reach.
pub const NO_BOOTSTRAP_WAIT: Duration = Duration::from_secs(3);
/// How long an expired saved session waits for a bootstrap node to renew it.
pub const RESUME_WAIT: Duration = Duration::from_secs(60);
/// Renew a certificate once less than this part of its lifetime is left.
pub const RENEW_WHEN_LEFT_DIVISOR: u64 = 3;

/// Whether a certificate with `left` of its `lifetime` seconds left is due for renewal.
pub fn renewal_due(left: u64, lifetime: u64) -> bool {
    left < lifetime / RENEW_WHEN_LEFT_DIVISOR
}

/// Tags a request to the hosted account worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthTicket {
    /// A peer's request, answered on the response channel kept under this number.
    Inbound(u64),
    /// This node's own request.
    Own(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Register,
    Login,
    Rename,
    Renew,
    /// Renewing an expired saved session at start.
    Resume,
    Logout,
    /// Whether a user exists, before a direct message to them.
    Lookup,
}

impl Kind {
    fn of(request: &AuthRequest) -> Kind {
        match request {
            AuthRequest::Register { .. } => Kind::Register,
            AuthRequest::Login { .. } => Kind::Login,
            AuthRequest::Rename { .. } => Kind::Rename,
            AuthRequest::Renew => Kind::Renew,
            AuthRequest::Logout => Kind::Logout,
            AuthRequest::Lookup { .. } => Kind::Lookup,
        }
    }
}

/// An own request in flight.
struct Pending {
    kind: Kind,
    reply: Option<Done>,
    /// The nickname to keep (renewals).
    nick: Option<String>,
    /// What a lookup was for.
    after: Option<AfterLookup>,
    /// The expired certificate a resumed session had (its account and username).
    previous: Option<(AccountId, String)>,
}

impl Pending {
    fn answer(self, result: Result<(), CommandError>) {
        if let Some(reply) = self.reply {
            let _ = reply.send(result);
        }
    }
}

struct Waiting {
    request: AuthRequest,
    pending: Pending,
    deadline: Instant,
}

/// Account state of the node.
pub(super) struct Accounts {
    pub(super) local: PeerId,
    store: NodeStore,
    pub(super) trust: Trust,
    worker: Option<AuthWorker<AuthTicket>>,
    session: Option<Session>,
    /// Trusted bootstrap nodes connected now, first found first.
    pub(super) bootstraps: Vec<PeerId>,
    /// Bootstrap nodes refused (and said so) while connected.
    pub(super) refused: HashSet<PeerId>,
    /// Bootstrap nodes connected now whose key is not confirmed, first met first.
    pub(super) unconfirmed: Vec<(PeerId, AuthorityKey)>,
    next_ticket: u64,
    inbound: HashMap<u64, ResponseChannel<AuthResponse>>,
    own_local: HashMap<u64, Pending>,
    own_remote: HashMap<OutboundRequestId, Pending>,
    waiting: Vec<Waiting>,
    renewing: bool,
    /// Renew at the next chance, due or not: after a start, or when a rename's answer was lost,
    /// the bootstrap may have renamed the account without this node knowing.
    renew_soon: bool,
    /// Which username each account goes by, from the newest certificates seen.
    directory: Directory,
}

impl Accounts {
    pub(super) fn new(local: PeerId, store: NodeStore, trust: Trust, worker: Option<AuthWorker<AuthTicket>>) -> Self {
        let mut directory = Directory::new();
        match store.labels() {
            Ok(labels) => labels.into_iter().for_each(|(account, name, serial)| {
                directory.learn_label(account, &name, serial);
            }),
            Err(error) => tracing::error!(%error, "cannot read the accounts seen"),
        }
        Accounts {
            local,
            store,
            trust,
            worker,
            session: None,
            bootstraps: Vec::new(),
            refused: HashSet::new(),
            unconfirmed: Vec::new(),
            next_ticket: 0,
            inbound: HashMap::new(),
            own_local: HashMap::new(),
            own_remote: HashMap::new(),
            waiting: Vec::new(),
            renewing: false,
            renew_soon: false,
            directory,
        }
    }

    /// Takes in what a verified certificate says of its account; what changed.
    pub(super) fn learn(&mut self, body: &CertBody) -> Learnt {
        self.learn_label(body.account, &body.username, body.serial)
    }

    /// Takes in that `account` goes by `username` in its verified certificate of serial `serial`.
    pub(super) fn learn_label(&mut self, account: AccountId, username: &str, serial: u64) -> Learnt {
        let learnt = self.directory.learn_label(account, username, serial);
        if learnt != Learnt::Nothing
            && let Err(error) = self.store.save_label(&account, username, serial)
        {
            tracing::error!(%error, "cannot keep an account's name");
        }
        learnt
    }

    /// The username `account` goes by (a short id when not known).
    pub(super) fn name_of(&self, account: &AccountId) -> String {
        match self.account() {
            Some(me) if me == *account => self.username().map(str::to_string).unwrap_or_default(),
            _ => self.directory.name_of(account),
        }
    }

    /// The account known here to go by `username` (any case), without asking anyone.
    pub(super) fn known_account(&self, username: &str) -> Option<AccountId> {
        match (self.account(), self.username()) {
            (Some(me), Some(name)) if crate::account::same_name(name, username) => Some(me),
            _ => self.directory.find(username),
        }
    }

    /// The account this node is logged in as.
    pub(super) fn account(&self) -> Option<AccountId> {
        self.session.as_ref().map(|s| s.certificate.body.account)
    }

    pub(super) fn store(&self) -> &NodeStore {
        &self.store
    }

    pub(super) fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    pub(super) fn username(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.certificate.body.username.as_str())
    }

    pub(super) fn trusted_key(&self) -> Option<AuthorityKey> {
        self.trust.key()
    }

    /// The authority key, when this node hosts the bootstrap.
    pub(super) fn hosted_authority(&self) -> Option<AuthorityKey> {
        self.worker.as_ref().map(AuthWorker::authority_key)
    }

    /// The bootstrap node requests go to: this node, or the first trusted one in reach.
    pub(super) fn bootstrap_peer(&self) -> Option<PeerId> {
        if self.worker.is_some() { Some(self.local) } else { self.bootstraps.first().copied() }
    }

    /// The keys of the unconfirmed bootstrap nodes in reach, each once, first met first.
    pub(super) fn unconfirmed_keys(&self) -> Vec<AuthorityKey> {
        let mut keys: Vec<AuthorityKey> = Vec::new();
        for (_, key) in &self.unconfirmed {
            if !keys.contains(key) {
                keys.push(*key);
            }
        }
        keys
    }

    /// Why a password must not leave this node now, if it must not: no key is trusted and an
    /// unconfirmed bootstrap node is in reach.
    fn unconfirmed_refusal(&self) -> Option<CommandError> {
        if self.worker.is_some() || self.trust.key().is_some() {
            return None;
        }
        let keys = self.unconfirmed_keys();
        let first = keys.first()?;
        let listed: Vec<String> = keys.iter().map(|k| grouped(&k.to_hex())).collect();
        let message = if keys.len() == 1 {
            format!(
                "the bootstrap node in reach has key {}, which this node does not trust yet; nothing was sent. \
                 Compare it with the key the bootstrap node printed at its start, then /trust KEY",
                listed[0]
            )
        } else {
            format!(
                "{} bootstrap nodes in reach with keys this node does not trust yet: {}; nothing was sent. \
                 Compare them with the key the real bootstrap node printed at its start, then /trust KEY",
                keys.len(),
                listed.join("; ")
            )
        };
        Some(CommandError::new(ErrorCode::BootstrapUnconfirmed, message).with_key(first.to_hex()))
    }

    fn ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    /// Saves the session, and the nickname for the user's later logins on this node.
    fn save(&self, session: &Session) {
        let saved = self
            .store
            .save_session(session)
            .and_then(|()| self.store.save_nickname(&session.certificate.body.account, &session.nick));
        if let Err(error) = saved {
            tracing::error!(%error, "cannot save the session");
        }
    }

    /// The nickname `account` last used here, else its username.
    fn remembered_nick(&self, account: &AccountId, username: &str) -> String {
        self.store.nickname(account).ok().flatten().unwrap_or_else(|| username.to_string())
    }

    fn forget_saved_session(&self) {
        if let Err(error) = self.store.clear_session() {
            tracing::error!(%error, "cannot clear the saved session");
        }
    }
}

fn refusal_code(refusal: Refusal) -> ErrorCode {
    match refusal {
        Refusal::InvalidUsername => ErrorCode::InvalidUsername,
        Refusal::UsernameTaken => ErrorCode::UsernameTaken,
        Refusal::WeakPassword => ErrorCode::WeakPassword,
        Refusal::WrongCredentials => ErrorCode::WrongCredentials,
        Refusal::RateLimited => ErrorCode::RateLimited,
        Refusal::NotLoggedIn => ErrorCode::NotLoggedIn,
        Refusal::Internal => ErrorCode::Internal,
    }
}

fn no_bootstrap(detail: &str) -> CommandError {
    CommandError::new(
        ErrorCode::NoBootstrap,
        format!("{detail}: registering, logging in and renaming need the bootstrap node (chat goes on without it)"),
    )
}

impl EventLoop {
    /// Restores the saved session at start: at once when its certificate is valid, through a
    /// renewal when it expired.
    pub(super) async fn resume_session(&mut self) {
        let saved = match self.accounts.store.session() {
            Ok(saved) => saved,
            Err(error) => {
                self.emit(UiEvent::info(format!("the saved session cannot be read ({error}); log in again"))).await;
                return;
            }
        };
        let Some(saved) = saved else { return };
        let Some(key) = self.accounts.trust.key() else {
            self.accounts.forget_saved_session();
            return;
        };
        match saved.certificate.verify(&key, &self.accounts.local.to_bytes(), unix_now()) {
            Ok(body) => {
                let body = body.clone();
                self.accounts.learn(&body);
                let event = UiEvent::LoggedIn { user: body.username, nick: saved.nick.clone(), resumed: true };
                self.accounts.session = Some(saved);
                // A fresh certificate as soon as a bootstrap is in reach: it brings a rename whose
                // answer this node lost (a crash, a time-out) at once.
                self.accounts.renew_soon = true;
                self.emit(event).await;
                self.enter_rooms();
                self.announce();
            }
            Err(CertError::Expired) => {
                let body = &saved.certificate.body;
                let pending = Pending {
                    kind: Kind::Resume,
                    reply: None,
                    nick: Some(saved.nick),
                    after: None,
                    previous: Some((body.account, body.username.clone())),
                };
                self.accounts.renewing = true;
                self.send_or_wait(AuthRequest::Renew, pending, RESUME_WAIT);
            }
            Err(error) => {
                self.accounts.forget_saved_session();
                self.emit(UiEvent::info(format!("the saved session is not valid ({error}); log in again"))).await;
            }
        }
    }

    /// `/register`, `/login`, `/rename`.
    pub(super) async fn account_request(&mut self, request: AuthRequest, reply: Done) {
        let kind = Kind::of(&request);
        let check = match (kind, self.accounts.username()) {
            (Kind::Register | Kind::Login, Some(user)) => {
                Err(CommandError::new(ErrorCode::Usage, format!("already logged in as {user}; /logout first")))
            }
            (Kind::Rename, None) => Err(CommandError::new(ErrorCode::NotLoggedIn, "log in first: /login NAME")),
            (Kind::Register | Kind::Login, None) => self.accounts.unconfirmed_refusal().map_or(Ok(()), Err),
            _ => Ok(()),
        };
        if let Err(error) = check {
            let _ = reply.send(Err(error));
            return;
        }
        self.send_or_wait(
            request,
            Pending { kind, reply: Some(reply), nick: None, after: None, previous: None },
            NO_BOOTSTRAP_WAIT,
        );
    }

    /// Sends `request` to the bootstrap node, or keeps it until one is in reach (for `wait`).
    fn send_or_wait(&mut self, request: AuthRequest, pending: Pending, wait: Duration) {
        let local = self.accounts.local;
        if self.accounts.worker.is_some() {
            let id = self.accounts.ticket();
            let accepted =
                self.accounts.worker.as_ref().is_some_and(|w| w.submit(local.to_bytes(), request, AuthTicket::Own(id)));
            if accepted {
                self.accounts.own_local.insert(id, pending);
            } else {
                pending.answer(Err(CommandError::new(ErrorCode::Internal, "the account service is busy; try again")));
            }
        } else if let Some(bootstrap) = self.accounts.bootstraps.first().copied() {
            let id = self.swarm.behaviour_mut().auth.send_request(&bootstrap, request);
            self.accounts.own_remote.insert(id, pending);
        } else {
            self.accounts.waiting.push(Waiting { request, pending, deadline: Instant::now() + wait });
        }
    }

    /// Asks the bootstrap node whether `username` exists, then carries on with `after`.
    pub(super) fn lookup_user(&mut self, username: &str, after: AfterLookup) {
        let pending = Pending { kind: Kind::Lookup, reply: None, nick: None, after: Some(after), previous: None };
        self.send_or_wait(AuthRequest::Lookup { username: username.to_string() }, pending, NO_BOOTSTRAP_WAIT);
    }

    /// Fails the requests that waited too long for a bootstrap node.
    pub(super) async fn expire_waiting_for_bootstrap(&mut self) {
        let now = Instant::now();
        let (expired, keep): (Vec<Waiting>, Vec<Waiting>) =
            std::mem::take(&mut self.accounts.waiting).into_iter().partition(|w| w.deadline <= now);
        self.accounts.waiting = keep;
        for waiting in expired {
            if waiting.pending.kind == Kind::Resume {
                self.accounts.renewing = false;
                self.emit(UiEvent::info(
                    "the saved session expired and no bootstrap node is in reach to renew it; log in again later",
                ))
                .await;
            }
            if let Some(after) = waiting.pending.after {
                self.finish_lookup(after, Lookup::NoAnswer).await;
                continue;
            }
            waiting.pending.answer(Err(no_bootstrap("no bootstrap node in reach")));
        }
    }

    pub(super) fn flush_waiting(&mut self) {
        for waiting in std::mem::take(&mut self.accounts.waiting) {
            let left = waiting.deadline.saturating_duration_since(Instant::now());
            self.send_or_wait(waiting.request, waiting.pending, left);
        }
    }

    /// Renews the certificate when it runs low and a bootstrap node is in reach.
    pub(super) fn renew_if_due(&mut self) {
        if self.accounts.renewing || self.accounts.bootstrap_peer().is_none() {
            return;
        }
        let Some(session) = &self.accounts.session else { return };
        let due = renewal_due(session.certificate.remaining(unix_now()), session.certificate.lifetime());
        if !due && !self.accounts.renew_soon {
            return;
        }
        self.accounts.renewing = true;
        self.accounts.renew_soon = false;
        let pending =
            Pending { kind: Kind::Renew, reply: None, nick: Some(session.nick.clone()), after: None, previous: None };
        self.send_or_wait(AuthRequest::Renew, pending, NO_BOOTSTRAP_WAIT);
    }

    /// `/logout`: leaves presence, forgets the session, tells the bootstrap if it is in reach.
    pub(super) async fn logout(&mut self) -> Result<(), CommandError> {
        let Some(user) = self.accounts.username().map(str::to_string) else {
            return Err(CommandError::new(ErrorCode::NotLoggedIn, "not logged in"));
        };
        self.announce_offline();
        self.exit_rooms();
        if self.attention.logged_out() {
            self.emit(UiEvent::Unfocused).await;
        }
        if self.accounts.bootstrap_peer().is_some() {
            self.send_or_wait(
                AuthRequest::Logout,
                Pending { kind: Kind::Logout, reply: None, nick: None, after: None, previous: None },
                Duration::ZERO,
            );
        }
        self.accounts.session = None;
        self.accounts.forget_saved_session();
        self.emit(UiEvent::LoggedOut { user }).await;
        Ok(())
    }

    /// `/nick`.
    pub(super) async fn change_nick(&mut self, nick: &str) -> Result<(), CommandError> {
        let nick = nick.trim();
        if !valid_nick(nick) {
            return Err(CommandError::new(
                ErrorCode::Usage,
                format!("a nickname is 1–{NICK_MAX_CHARS} printable characters"),
            ));
        }
        let Some(session) = &mut self.accounts.session else {
            return Err(CommandError::new(ErrorCode::NotLoggedIn, "log in first: /login NAME"));
        };
        session.nick = nick.to_string();
        let session = session.clone();
        self.accounts.save(&session);
        self.announce();
        self.emit(UiEvent::Nick { user: session.certificate.body.username, nick: session.nick }).await;
        Ok(())
    }

    /// Registrations and logins waiting for a bootstrap node fail now that an unconfirmed one
    /// is in reach: their passwords must not go to it.
    pub(super) fn fail_waiting_for_confirmation(&mut self) {
        let Some(refusal) = self.accounts.unconfirmed_refusal() else { return };
        let (accounts, keep): (Vec<Waiting>, Vec<Waiting>) = std::mem::take(&mut self.accounts.waiting)
            .into_iter()
            .partition(|w| matches!(w.pending.kind, Kind::Register | Kind::Login));
        self.accounts.waiting = keep;
        for waiting in accounts {
            waiting.pending.answer(Err(refusal.clone()));
        }
    }

    /// A peer asks this node's bootstrap service.
    pub(super) fn on_auth_request(
        &mut self,
        peer: PeerId,
        request: AuthRequest,
        channel: ResponseChannel<AuthResponse>,
    ) {
        let id = self.accounts.ticket();
        let Some(worker) = &self.accounts.worker else { return };
        if worker.submit(peer.to_bytes(), request, AuthTicket::Inbound(id)) {
            self.accounts.inbound.insert(id, channel);
        } else {
            let busy = AuthResponse::Refused {
                refusal: Refusal::RateLimited,
                message: "the account server is busy; try again in a few seconds".into(),
            };
            let _ = self.swarm.behaviour_mut().auth.send_response(channel, busy);
        }
    }

    /// The hosted worker answered.
    pub(super) async fn on_worker_answer(&mut self, ticket: AuthTicket, answer: AuthResponse) {
        match ticket {
            AuthTicket::Inbound(id) => {
                if let Some(channel) = self.accounts.inbound.remove(&id)
                    && self.swarm.behaviour_mut().auth.send_response(channel, answer).is_err()
                {
                    tracing::debug!("a peer left before its account answer");
                }
            }
            AuthTicket::Own(id) => {
                if let Some(pending) = self.accounts.own_local.remove(&id) {
                    self.on_own_answer(pending, answer).await;
                }
            }
        }
    }

    /// A bootstrap node answered one of this node's requests.
    pub(super) async fn on_auth_response(&mut self, id: OutboundRequestId, answer: AuthResponse) {
        if let Some(pending) = self.accounts.own_remote.remove(&id) {
            self.on_own_answer(pending, answer).await;
        }
    }

    /// A request to a bootstrap node failed on the way.
    pub(super) async fn on_auth_failure(&mut self, id: OutboundRequestId, error: String) {
        let Some(pending) = self.accounts.own_remote.remove(&id) else { return };
        match pending.kind {
            Kind::Renew | Kind::Resume => self.accounts.renewing = false,
            // The bootstrap may have renamed the account all the same: the next renewal says.
            Kind::Rename => self.accounts.renew_soon = true,
            _ => {}
        }
        if let Some(after) = pending.after {
            self.finish_lookup(after, Lookup::NoAnswer).await;
            return;
        }
        pending.answer(Err(no_bootstrap(&format!("the bootstrap node did not answer ({error})"))));
    }

    async fn on_own_answer(&mut self, mut pending: Pending, answer: AuthResponse) {
        if matches!(pending.kind, Kind::Renew | Kind::Resume) {
            self.accounts.renewing = false;
        }
        if let Some(after) = pending.after.take() {
            let found = match answer {
                AuthResponse::User { account: Some(found) } => Lookup::Exists(found.account, found.username),
                AuthResponse::User { account: None } => Lookup::Unknown,
                _ => Lookup::NoAnswer,
            };
            self.finish_lookup(after, found).await;
            return;
        }
        match answer {
            AuthResponse::Granted { certificate, renamed } => {
                let verified = match self.accounts.trust.key() {
                    Some(key) => certificate
                        .verify(&key, &self.accounts.local.to_bytes(), unix_now())
                        .cloned()
                        .map_err(|e| e.to_string()),
                    None => Err("no bootstrap key is trusted".to_string()),
                };
                let body = match verified {
                    Ok(body) => body,
                    Err(reason) => {
                        let message =
                            format!("the bootstrap node sent a certificate this node cannot accept: {reason}");
                        pending.answer(Err(CommandError::new(ErrorCode::Internal, message)));
                        return;
                    }
                };
                let username = body.username.clone();
                let same_account = self.accounts.account() == Some(body.account);
                if matches!(pending.kind, Kind::Renew | Kind::Rename) && !same_account {
                    // The user logged out (or in as someone else) while it was on its way.
                    pending.answer(Err(CommandError::new(ErrorCode::NotLoggedIn, "logged out meanwhile")));
                    return;
                }
                let old = self.accounts.session.take();
                // The same account under another name: a rename, this node's own or one whose
                // answer was lost (the bootstrap hands the latest rename out again).
                let old_name = old
                    .as_ref()
                    .map(|s| (s.certificate.body.account, s.certificate.body.username.clone()))
                    .or_else(|| pending.previous.clone())
                    .filter(|(account, name)| *account == body.account && *name != body.username)
                    .map(|(_, name)| name);
                let nick = pending
                    .nick
                    .clone()
                    .or_else(|| old.as_ref().filter(|_| pending.kind == Kind::Rename).map(|s| s.nick.clone()))
                    .unwrap_or_else(|| self.accounts.remembered_nick(&body.account, &username));
                // A nickname that was just the old username follows the rename.
                let nick = if old_name.as_deref() == Some(nick.as_str()) { username.clone() } else { nick };
                let session = Session { certificate, nick: nick.clone() };
                self.accounts.save(&session);
                self.accounts.session = Some(session);
                self.accounts.learn(&body);
                if let Some(note) = &renamed {
                    tracing::debug!(old = note.old, new = note.new, at = note.at, "the account's latest rename");
                }
                match pending.kind {
                    Kind::Register => {
                        self.emit(UiEvent::Registered { user: username.clone() }).await;
                        self.emit(UiEvent::LoggedIn { user: username, nick, resumed: false }).await;
                    }
                    Kind::Login => self.emit(UiEvent::LoggedIn { user: username, nick, resumed: false }).await,
                    Kind::Resume => self.emit(UiEvent::LoggedIn { user: username, nick, resumed: true }).await,
                    Kind::Rename | Kind::Renew | Kind::Logout | Kind::Lookup => {}
                }
                if let Some(old) = old_name {
                    self.emit(UiEvent::Renamed { old, new: body.username.clone() }).await;
                }
                self.enter_rooms();
                self.announce();
                self.pump_all_outboxes().await;
                pending.answer(Ok(()));
            }
            AuthResponse::LoggedOut => pending.answer(Ok(())),
            AuthResponse::User { .. } => pending
                .answer(Err(CommandError::new(ErrorCode::Internal, "the bootstrap node answered another question"))),
            AuthResponse::Refused { refusal, message } => {
                if pending.kind == Kind::Resume {
                    self.accounts.forget_saved_session();
                    self.emit(UiEvent::info(format!(
                        "the saved session could not be renewed ({message}); log in again"
                    )))
                    .await;
                }
                pending.answer(Err(CommandError::new(refusal_code(refusal), message)));
            }
        }
    }
}
