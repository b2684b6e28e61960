//! The session engine: a node's side of the login session as a state machine without I/O.
//!
//! [`SessionEngine::handle`] takes an [`Input`] (the saved session read at start, a user's
//! account command with the ticket its answer goes to, a look-up of a user, a bootstrap node
//! found, unconfirmed, trusted or gone, an answer or a failure of a request on its way, a tick)
//! and returns [`Output`]s — send this request to the bootstrap node, answer this ticket, save
//! or forget the session, learn this certificate, enter the session, show this — that the node
//! carries out in their order. It owns the session, the bootstrap nodes in reach, the requests
//! on their way and those waiting for a bootstrap node. It must never import tokio, the libp2p
//! swarm or rusqlite, never reads a clock (the time comes as [`Now`]) and never reads the
//! store: what the node must read (the saved session, a remembered nickname) comes in inputs.
//!
//! Rules:
//! - `/register` and `/login` fail while logged in, and with `bootstrap_unconfirmed` (nothing is
//!   sent) while no key is trusted and an unconfirmed bootstrap node is in reach; `/rename`
//!   fails while logged out;
//! - a request goes to the hosted account worker, else to the first trusted bootstrap node in
//!   reach; with neither it waits [`NO_BOOTSTRAP_WAIT`] ([`RESUME_WAIT`] for an expired saved
//!   session) for one, then fails with `no_bootstrap`. Registrations and logins waiting fail
//!   when an unconfirmed bootstrap node comes into reach;
//! - the certificate is renewed once less than a third of its lifetime is left
//!   ([`renewal_due`]), or at the first chance after a resumed session or a rename whose
//!   answer was lost; one renewal at a time;
//! - a nickname kept from before (the saved session's, one remembered) that others would
//!   refuse now ([`crate::presence::check_nick`]) gives way to the username;
//! - every ticket is answered exactly once: at once when the command is refused, else when its
//!   request is answered, fails or waited too long.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::{Code, Failure, Flight, Lookup, Now, Session, Show, Ticket, Via};
use crate::account::AccountId;
use crate::cert::{AuthorityKey, CertBody, CertError};
use crate::pinned_key::grouped;
use crate::presence::{check_nick, valid_nick};
use crate::protocol::auth::{AuthRequest, AuthResponse};

/// How long an account request waits for a bootstrap node to come into reach.
pub const NO_BOOTSTRAP_WAIT: Duration = Duration::from_secs(3);
/// How long an expired saved session waits for a bootstrap node to renew it.
pub const RESUME_WAIT: Duration = Duration::from_secs(60);
/// Renew a certificate once less than this part of its lifetime is left.
pub const RENEW_WHEN_LEFT_DIVISOR: u64 = 3;
/// Unconfirmed bootstrap nodes kept at most: any peer may claim to be one, and each is listed
/// to the user.
pub const MAX_UNCONFIRMED: usize = 16;

/// Whether a certificate with `left` of its `lifetime` seconds left is due for renewal.
pub fn renewal_due(left: u64, lifetime: u64) -> bool {
    left < lifetime / RENEW_WHEN_LEFT_DIVISOR
}

fn no_bootstrap(detail: &str) -> Failure {
    Failure::new(
        Code::NoBootstrap,
        format!("{detail}: registering, logging in and renaming need the bootstrap node (chat goes on without it)"),
    )
}

/// What happened.
#[derive(Debug, Clone)]
pub enum Input {
    /// At start: the saved session (`Err`: it could not be read).
    Resume(Result<Option<Session>, String>),
    /// `/register`, `/login` or `/rename`, answered on `ticket`.
    Command { ticket: Ticket, request: AuthRequest },
    /// Whether `username` exists, before a direct message to them: [`Output::Found`] on `ticket`.
    Lookup { ticket: Ticket, username: String },
    /// `/logout`. The node has announced the user offline and left the rooms' topics already.
    Logout { ticket: Ticket },
    /// `/nick`.
    Nick { ticket: Ticket, nick: String },
    /// A bootstrap node with the trusted key is in reach.
    BootstrapFound(PeerId),
    /// A bootstrap node with a key nobody confirmed is in reach.
    BootstrapUnconfirmed { peer: PeerId, key: AuthorityKey },
    /// The user confirmed `key` (`/trust`).
    KeyTrusted(AuthorityKey),
    /// The last connection to this peer closed.
    PeerGone(PeerId),
    /// `flight` was answered; `remembered`: the nickname the account a granted certificate
    /// names last used on this node, if any.
    Answer { flight: Flight, answer: AuthResponse, remembered: Option<String> },
    /// `flight` got no answer (the connection failed, timed out, or never was).
    Failed { flight: Flight, error: String },
    /// The hosted account worker could not take `flight`: it is busy.
    Busy { flight: Flight },
    /// The fast timer: requests that waited too long for a bootstrap node fail.
    Tick,
    /// The presence timer: the certificate is renewed if due.
    CheckRenewal,
}

/// What the node should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `request` as `flight`; tell the engine its [`Input::Answer`], [`Input::Failed`] or
    /// [`Input::Busy`].
    Send {
        flight: Flight,
        via: Via,
        request: AuthRequest,
    },
    /// Answer the command of `ticket`.
    Reply {
        ticket: Ticket,
        result: Result<(), Failure>,
    },
    /// Answer the look-up of `ticket`.
    Found {
        ticket: Ticket,
        lookup: Lookup,
    },
    /// Keep this session, and its nickname for the user's later logins on this node.
    Save(Session),
    /// Forget the saved session.
    Forget,
    /// Learn what this verified certificate says of its account.
    Learn(CertBody),
    /// Logged in (or the certificate renewed): enter the rooms' topics, announce the user, and
    /// with `pump` look at the outboxes.
    Enter {
        pump: bool,
    },
    /// The user's announcement changed (a nickname).
    Announce,
    /// A trusted bootstrap node is in reach: say so, and check the announcements held.
    BootstrapFound(PeerId),
    /// A bootstrap node in reach has key `key`, not the pinned one: refuse it.
    Refuse {
        peer: PeerId,
        key: AuthorityKey,
        pinned: AuthorityKey,
    },
    Show(Show),
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

/// An own request, on its way or waiting.
#[derive(Debug, Clone)]
struct Pending {
    kind: Kind,
    /// Where its answer goes (a look-up's: [`Output::Found`]).
    ticket: Option<Ticket>,
    /// The nickname to keep (renewals).
    nick: Option<String>,
    /// The expired certificate a resumed session had (its account and username).
    previous: Option<(AccountId, String)>,
}

impl Pending {
    fn new(kind: Kind, ticket: Option<Ticket>) -> Self {
        Pending { kind, ticket, nick: None, previous: None }
    }

    fn answer(&self, result: Result<(), Failure>, out: &mut Vec<Output>) {
        match (self.kind, self.ticket) {
            (_, None) => {}
            (Kind::Lookup, Some(ticket)) => out.push(Output::Found { ticket, lookup: Lookup::NoAnswer }),
            (_, Some(ticket)) => out.push(Output::Reply { ticket, result }),
        }
    }

    fn renewal(&self) -> bool {
        matches!(self.kind, Kind::Renew | Kind::Resume)
    }
}

#[derive(Debug, Clone)]
struct Waiting {
    request: AuthRequest,
    pending: Pending,
    deadline: Instant,
}

/// The login session of a node.
#[derive(Debug)]
pub struct SessionEngine {
    local: PeerId,
    /// Whether this node hosts the account worker.
    hosted: bool,
    trusted: Option<AuthorityKey>,
    session: Option<Session>,
    /// Trusted bootstrap nodes in reach, first found first.
    bootstraps: Vec<PeerId>,
    /// Bootstrap nodes in reach whose key is not confirmed, first met first.
    unconfirmed: Vec<(PeerId, AuthorityKey)>,
    next_flight: u64,
    in_flight: HashMap<Flight, Pending>,
    waiting: Vec<Waiting>,
    /// Renew at the next chance, due or not: after a start, or when a rename's answer was lost,
    /// the bootstrap may have renamed the account without this node knowing.
    renew_soon: bool,
}

impl SessionEngine {
    /// The engine of node `local`, which trusts `trusted` and hosts the account worker if
    /// `hosted`.
    pub fn new(local: PeerId, trusted: Option<AuthorityKey>, hosted: bool) -> Self {
        SessionEngine {
            local,
            hosted,
            trusted,
            session: None,
            bootstraps: Vec::new(),
            unconfirmed: Vec::new(),
            next_flight: 0,
            in_flight: HashMap::new(),
            waiting: Vec::new(),
            renew_soon: false,
        }
    }

    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The account this node is logged in as.
    pub fn account(&self) -> Option<AccountId> {
        self.session.as_ref().map(|s| s.certificate.body.account)
    }

    pub fn username(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.certificate.body.username.as_str())
    }

    /// The bootstrap node requests go to: this node, or the first trusted one in reach.
    pub fn bootstrap_peer(&self) -> Option<PeerId> {
        if self.hosted { Some(self.local) } else { self.bootstraps.first().copied() }
    }

    /// Whether `peer` is a bootstrap node in reach with the trusted key.
    pub fn is_trusted_bootstrap(&self, peer: &PeerId) -> bool {
        self.bootstraps.contains(peer)
    }

    /// The keys of the unconfirmed bootstrap nodes in reach, each once, first met first.
    pub fn unconfirmed_keys(&self) -> Vec<AuthorityKey> {
        let mut keys: Vec<AuthorityKey> = Vec::new();
        for (_, key) in &self.unconfirmed {
            if !keys.contains(key) {
                keys.push(*key);
            }
        }
        keys
    }

    /// Requests on their way, and requests waiting for a bootstrap node.
    pub fn pending(&self) -> (usize, usize) {
        (self.in_flight.len(), self.waiting.len())
    }

    /// When the first request waiting for a bootstrap node runs out of time.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.waiting.iter().map(|w| w.deadline).min()
    }

    /// Whether a renewal is on its way or waiting.
    pub fn renewing(&self) -> bool {
        self.in_flight.values().chain(self.waiting.iter().map(|w| &w.pending)).any(Pending::renewal)
    }

    /// Takes in `input`; what the node should do, in order.
    pub fn handle(&mut self, input: Input, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Resume(saved) => self.resume(saved, now, &mut out),
            Input::Command { ticket, request } => self.command(ticket, request, now, &mut out),
            Input::Lookup { ticket, username } => {
                let pending = Pending::new(Kind::Lookup, Some(ticket));
                self.send_or_wait(AuthRequest::Lookup { username }, pending, now.at + NO_BOOTSTRAP_WAIT, &mut out);
            }
            Input::Logout { ticket } => self.logout(ticket, now, &mut out),
            Input::Nick { ticket, nick } => self.nick(ticket, &nick, &mut out),
            Input::BootstrapFound(peer) => self.found(peer, now, &mut out),
            Input::BootstrapUnconfirmed { peer, key } => {
                if self.unconfirmed.len() < MAX_UNCONFIRMED && !self.unconfirmed.iter().any(|(p, _)| *p == peer) {
                    self.unconfirmed.push((peer, key));
                    out.push(Output::Show(Show::BootstrapUnconfirmed { peer, key }));
                    self.fail_waiting_for_confirmation(&mut out);
                }
            }
            Input::KeyTrusted(key) => {
                self.trusted = Some(key);
                for (peer, seen) in std::mem::take(&mut self.unconfirmed) {
                    if seen == key {
                        self.found(peer, now, &mut out);
                    } else {
                        out.push(Output::Refuse { peer, key: seen, pinned: key });
                    }
                }
            }
            Input::PeerGone(peer) => {
                self.unconfirmed.retain(|(p, _)| *p != peer);
                if let Some(pos) = self.bootstraps.iter().position(|p| *p == peer) {
                    self.bootstraps.remove(pos);
                    out.push(Output::Show(Show::BootstrapLost(peer)));
                }
            }
            Input::Answer { flight, answer, remembered } => {
                if let Some(pending) = self.in_flight.remove(&flight) {
                    self.on_answer(pending, answer, remembered, now, &mut out);
                }
            }
            Input::Failed { flight, error } => {
                if let Some(pending) = self.in_flight.remove(&flight) {
                    // The bootstrap may have renamed the account all the same: the next renewal
                    // says.
                    if pending.kind == Kind::Rename {
                        self.renew_soon = true;
                    }
                    pending
                        .answer(Err(no_bootstrap(&format!("the bootstrap node did not answer ({error})"))), &mut out);
                }
            }
            Input::Busy { flight } => {
                if let Some(pending) = self.in_flight.remove(&flight) {
                    pending
                        .answer(Err(Failure::new(Code::Internal, "the account service is busy; try again")), &mut out);
                }
            }
            Input::Tick => self.expire(now, &mut out),
            Input::CheckRenewal => self.renew_if_due(now, &mut out),
        }
        out
    }

    /// Restores the saved session: at once when its certificate is valid, through a renewal
    /// when it expired.
    fn resume(&mut self, saved: Result<Option<Session>, String>, now: Now, out: &mut Vec<Output>) {
        let saved = match saved {
            Ok(Some(saved)) => saved,
            Ok(None) => return,
            Err(error) => {
                out.push(Output::Show(Show::Info(format!("the saved session cannot be read ({error}); log in again"))));
                return;
            }
        };
        let Some(key) = self.trusted else {
            out.push(Output::Forget);
            return;
        };
        match saved.certificate.verify(&key, &self.local.to_bytes(), now.unix) {
            Ok(body) => {
                let body = body.clone();
                let mut saved = saved;
                if !valid_nick(&saved.nick) {
                    // Kept under older rules that allowed it: others would refuse it now.
                    saved.nick = body.username.clone();
                }
                out.push(Output::Learn(body.clone()));
                out.push(Output::Show(Show::LoggedIn { user: body.username, nick: saved.nick.clone(), resumed: true }));
                out.push(Output::Enter { pump: false });
                self.session = Some(saved);
                // A fresh certificate as soon as a bootstrap is in reach: it brings a rename whose
                // answer this node lost (a crash, a time-out) at once.
                self.renew_soon = true;
            }
            Err(CertError::Expired) => {
                let body = &saved.certificate.body;
                let pending = Pending {
                    kind: Kind::Resume,
                    ticket: None,
                    nick: Some(saved.nick.clone()),
                    previous: Some((body.account, body.username.clone())),
                };
                self.send_or_wait(AuthRequest::Renew, pending, now.at + RESUME_WAIT, out);
            }
            Err(error) => {
                out.push(Output::Forget);
                out.push(Output::Show(Show::Info(format!("the saved session is not valid ({error}); log in again"))));
            }
        }
    }

    /// `/register`, `/login`, `/rename`.
    fn command(&mut self, ticket: Ticket, request: AuthRequest, now: Now, out: &mut Vec<Output>) {
        let kind = Kind::of(&request);
        let check = match (kind, self.username()) {
            (Kind::Register | Kind::Login, Some(user)) => {
                Err(Failure::new(Code::Usage, format!("already logged in as {user}; /logout first")))
            }
            (Kind::Rename, None) => Err(Failure::new(Code::NotLoggedIn, "log in first: /login NAME")),
            (Kind::Register | Kind::Login, None) => self.unconfirmed_refusal().map_or(Ok(()), Err),
            _ => Ok(()),
        };
        if let Err(failure) = check {
            out.push(Output::Reply { ticket, result: Err(failure) });
            return;
        }
        self.send_or_wait(request, Pending::new(kind, Some(ticket)), now.at + NO_BOOTSTRAP_WAIT, out);
    }

    /// `/logout`: forgets the session, tells the bootstrap if it is in reach.
    fn logout(&mut self, ticket: Ticket, now: Now, out: &mut Vec<Output>) {
        let Some(session) = self.session.take() else {
            out.push(Output::Reply { ticket, result: Err(Failure::new(Code::NotLoggedIn, "not logged in")) });
            return;
        };
        if self.bootstrap_peer().is_some() {
            self.send_or_wait(AuthRequest::Logout, Pending::new(Kind::Logout, None), now.at, out);
        }
        out.push(Output::Forget);
        out.push(Output::Show(Show::LoggedOut { user: session.certificate.body.username }));
        out.push(Output::Reply { ticket, result: Ok(()) });
    }

    /// `/nick`.
    fn nick(&mut self, ticket: Ticket, nick: &str, out: &mut Vec<Output>) {
        let nick = nick.trim();
        if let Err(e) = check_nick(nick) {
            out.push(Output::Reply { ticket, result: Err(Failure::new(Code::Usage, e.to_string())) });
            return;
        }
        let Some(session) = &mut self.session else {
            let failure = Failure::new(Code::NotLoggedIn, "log in first: /login NAME");
            out.push(Output::Reply { ticket, result: Err(failure) });
            return;
        };
        session.nick = nick.to_string();
        out.push(Output::Save(session.clone()));
        out.push(Output::Announce);
        out.push(Output::Show(Show::Nick { user: session.certificate.body.username.clone(), nick: nick.to_string() }));
        out.push(Output::Reply { ticket, result: Ok(()) });
    }

    /// A trusted bootstrap node is in reach: what waited for one goes to it, and the
    /// certificate is renewed if due.
    fn found(&mut self, peer: PeerId, now: Now, out: &mut Vec<Output>) {
        if self.bootstraps.contains(&peer) {
            return;
        }
        self.bootstraps.push(peer);
        out.push(Output::BootstrapFound(peer));
        for waiting in std::mem::take(&mut self.waiting) {
            self.send_or_wait(waiting.request, waiting.pending, waiting.deadline, out);
        }
        self.renew_if_due(now, out);
    }

    /// Why a password must not leave this node now, if it must not: no key is trusted and an
    /// unconfirmed bootstrap node is in reach.
    fn unconfirmed_refusal(&self) -> Option<Failure> {
        if self.hosted || self.trusted.is_some() {
            return None;
        }
        let keys = self.unconfirmed_keys();
        let first = *keys.first()?;
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
        Some(Failure { code: Code::BootstrapUnconfirmed, message, key: Some(first) })
    }

    /// Registrations and logins waiting for a bootstrap node fail now that an unconfirmed one
    /// is in reach: their passwords must not go to it.
    fn fail_waiting_for_confirmation(&mut self, out: &mut Vec<Output>) {
        let Some(refusal) = self.unconfirmed_refusal() else { return };
        let (accounts, keep): (Vec<Waiting>, Vec<Waiting>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| matches!(w.pending.kind, Kind::Register | Kind::Login));
        self.waiting = keep;
        for waiting in accounts {
            waiting.pending.answer(Err(refusal.clone()), out);
        }
    }

    /// Sends `request` to the bootstrap node, or keeps it until one is in reach (until
    /// `deadline`).
    fn send_or_wait(&mut self, request: AuthRequest, pending: Pending, deadline: Instant, out: &mut Vec<Output>) {
        let via = self.bootstrap_peer().map(|peer| if self.hosted { Via::Hosted } else { Via::Peer(peer) });
        match via {
            Some(via) => {
                self.next_flight += 1;
                let flight = Flight(self.next_flight);
                self.in_flight.insert(flight, pending);
                out.push(Output::Send { flight, via, request });
            }
            None => self.waiting.push(Waiting { request, pending, deadline }),
        }
    }

    /// Fails the requests that waited too long for a bootstrap node.
    fn expire(&mut self, now: Now, out: &mut Vec<Output>) {
        let (expired, keep): (Vec<Waiting>, Vec<Waiting>) =
            std::mem::take(&mut self.waiting).into_iter().partition(|w| w.deadline <= now.at);
        self.waiting = keep;
        for waiting in expired {
            if waiting.pending.kind == Kind::Resume {
                out.push(Output::Show(Show::Info(
                    "the saved session expired and no bootstrap node is in reach to renew it; log in again later"
                        .into(),
                )));
            }
            waiting.pending.answer(Err(no_bootstrap("no bootstrap node in reach")), out);
        }
    }

    /// Renews the certificate when it runs low and a bootstrap node is in reach.
    fn renew_if_due(&mut self, now: Now, out: &mut Vec<Output>) {
        if self.renewing() || self.bootstrap_peer().is_none() {
            return;
        }
        let Some(session) = &self.session else { return };
        let due = renewal_due(session.certificate.remaining(now.unix), session.certificate.lifetime());
        if !due && !self.renew_soon {
            return;
        }
        self.renew_soon = false;
        let pending = Pending { nick: Some(session.nick.clone()), ..Pending::new(Kind::Renew, None) };
        self.send_or_wait(AuthRequest::Renew, pending, now.at + NO_BOOTSTRAP_WAIT, out);
    }

    fn on_answer(
        &mut self,
        pending: Pending,
        answer: AuthResponse,
        remembered: Option<String>,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        if let (Kind::Lookup, Some(ticket)) = (pending.kind, pending.ticket) {
            let lookup = match answer {
                AuthResponse::User { account: Some(found) } => Lookup::Exists(found.account, found.username),
                AuthResponse::User { account: None } => Lookup::Unknown,
                _ => Lookup::NoAnswer,
            };
            out.push(Output::Found { ticket, lookup });
            return;
        }
        match answer {
            AuthResponse::Granted { certificate, .. } => {
                let verified = match self.trusted {
                    Some(key) => {
                        certificate.verify(&key, &self.local.to_bytes(), now.unix).cloned().map_err(|e| e.to_string())
                    }
                    None => Err("no bootstrap key is trusted".to_string()),
                };
                let body = match verified {
                    Ok(body) => body,
                    Err(reason) => {
                        let message =
                            format!("the bootstrap node sent a certificate this node cannot accept: {reason}");
                        pending.answer(Err(Failure::new(Code::Internal, message)), out);
                        return;
                    }
                };
                let username = body.username.clone();
                if matches!(pending.kind, Kind::Renew | Kind::Rename) && self.account() != Some(body.account) {
                    // The user logged out (or in as someone else) while it was on its way.
                    pending.answer(Err(Failure::new(Code::NotLoggedIn, "logged out meanwhile")), out);
                    return;
                }
                let old = self.session.take();
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
                    .or(remembered)
                    // One kept under older rules that allowed it: others would refuse it now.
                    .filter(|nick| valid_nick(nick))
                    .unwrap_or_else(|| username.clone());
                // A nickname that was just the old username follows the rename.
                let nick = if old_name.as_deref() == Some(nick.as_str()) { username.clone() } else { nick };
                let session = Session { certificate, nick: nick.clone() };
                out.push(Output::Save(session.clone()));
                self.session = Some(session);
                out.push(Output::Learn(body.clone()));
                match pending.kind {
                    Kind::Register => {
                        out.push(Output::Show(Show::Registered { user: username.clone() }));
                        out.push(Output::Show(Show::LoggedIn { user: username, nick, resumed: false }));
                    }
                    Kind::Login => out.push(Output::Show(Show::LoggedIn { user: username, nick, resumed: false })),
                    Kind::Resume => out.push(Output::Show(Show::LoggedIn { user: username, nick, resumed: true })),
                    Kind::Rename | Kind::Renew | Kind::Logout | Kind::Lookup => {}
                }
                if let Some(old) = old_name {
                    out.push(Output::Show(Show::Renamed { old, new: body.username }));
                }
                out.push(Output::Enter { pump: true });
                pending.answer(Ok(()), out);
            }
            AuthResponse::LoggedOut => pending.answer(Ok(()), out),
            AuthResponse::User { .. } => {
                let failure = Failure::new(Code::Internal, "the bootstrap node answered another question");
                pending.answer(Err(failure), out);
            }
            AuthResponse::Refused { refusal, message } => {
                if pending.kind == Kind::Resume {
                    out.push(Output::Forget);
                    out.push(Output::Show(Show::Info(format!(
                        "the saved session could not be renewed ({message}); log in again"
                    ))));
                }
                pending.answer(Err(Failure::new(Code::Refused(refusal), message)), out);
            }
        }
    }
}
