//! The node's side of accounts: the adapter of the session engine ([`crate::session::engine`]),
//! the account worker this node hosts when it is the bootstrap node, and the directory of the
//! names accounts go by. It turns account commands, bootstrap nodes found and gone, answers of
//! the bootstrap node and of the hosted worker, and the timers into the engine's inputs, and
//! carries out what the engine decides: sending requests, answering commands on their oneshot
//! channels, saving or forgetting the session, entering the rooms, announcing the user,
//! showing events. It decides nothing about the session: the engine does.
//!
//! A bootstrap node whose key is not pinned is *unconfirmed*: it is reported with its key, and
//! `/register` and `/login` fail with `bootstrap_unconfirmed` (nothing is sent) until the user
//! confirms a key with `/trust`; then the bootstrap nodes in reach with that key are found.
//!
//! A request a peer asks of the hosted worker goes with the host it came from ([`remote_ip`](crate::net::reach::remote_ip):
//! the IP address of its connection, unknown through a relay), which the worker keys its limits
//! on; this node's own requests come from this machine, the loopback host.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use libp2p::PeerId;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};
use libp2p::swarm::ConnectionId;

use super::CommandError;
use super::client::Done;
use super::event::{BootstrapState, ErrorCode, UiEvent};
use super::parts::EventLoop;
use super::state::accounts::AuthTicket;
use super::state::direct::AfterLookup;
use super::state::store::Done as StoreDone;
use crate::cert::AuthorityKey;
use crate::clock::unix_now;
use crate::protocol::auth::{AuthRequest, AuthResponse, Refusal};
use crate::session::{Code, Failure, Flight, Input, Now, Output, Show, Ticket, Via};

fn now() -> Now {
    Now { at: Instant::now(), unix: unix_now() }
}

/// A failure of the engine as the command error scripts see.
fn command_error(failure: Failure) -> CommandError {
    let code = match failure.code {
        Code::Usage => ErrorCode::Usage,
        Code::NotLoggedIn => ErrorCode::NotLoggedIn,
        Code::BootstrapUnconfirmed => ErrorCode::BootstrapUnconfirmed,
        Code::NoBootstrap => ErrorCode::NoBootstrap,
        Code::Internal => ErrorCode::Internal,
        Code::Refused(refusal) => refusal_code(refusal),
    };
    let error = CommandError::new(code, failure.message);
    match failure.key {
        Some(key) => error.with_key(key.to_hex()),
        None => error,
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

fn shown(show: Show) -> UiEvent {
    match show {
        Show::Registered { user } => UiEvent::Registered { user },
        Show::LoggedIn { user, nick, resumed } => UiEvent::LoggedIn { user, nick, resumed },
        Show::LoggedOut { user } => UiEvent::LoggedOut { user },
        Show::Renamed { old, new } => UiEvent::Renamed { old, new },
        Show::Nick { user, nick } => UiEvent::Nick { user, nick },
        Show::BootstrapUnconfirmed { peer, key } => UiEvent::Bootstrap {
            peer_id: Some(peer.to_string()),
            state: BootstrapState::Unconfirmed,
            key: Some(key.to_hex()),
        },
        Show::BootstrapLost(peer) => UiEvent::bootstrap(peer, BootstrapState::Lost),
        Show::Info(text) => UiEvent::info(text),
    }
}

impl EventLoop {
    /// Hands `input` to the session engine and carries out what it decides, in order (and what
    /// that brings back: a request the hosted worker is too busy to take).
    ///
    /// Once the session is saved or forgotten, what tells the user (an event, a command's
    /// answer) waits until that is committed: told they are logged in (or out), the user may
    /// stop the node at once, or it may crash, and the next start must find what they were told.
    pub(super) async fn feed_session(&mut self, input: Input) {
        let mut inputs = VecDeque::from([input]);
        let mut held = Vec::new();
        let mut saving = false;
        while let Some(input) = inputs.pop_front() {
            for output in self.accounts.engine.handle(input, now()) {
                saving |= matches!(output, Output::Save(_) | Output::Forget);
                if saving && matches!(output, Output::Show(_) | Output::Reply { .. }) {
                    held.push(output);
                } else if let Some(back) = self.carry_out_session(output).await {
                    inputs.push_back(back);
                }
            }
        }
        if !held.is_empty() {
            self.store.run(move |_| Some(StoreDone::SessionSaved(held)));
        }
    }

    /// The session saved or forgotten is committed: the user is told what waited for it.
    pub(super) async fn session_saved(&mut self, held: Vec<Output>) {
        for output in held {
            // Only events and answers are held: nothing comes back from them.
            let _ = self.carry_out_session(output).await;
        }
    }

    async fn carry_out_session(&mut self, output: Output) -> Option<Input> {
        match output {
            Output::Send { flight, via: Via::Hosted, request } => {
                let local = self.accounts.local.to_bytes();
                let own = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
                let taken = self
                    .accounts
                    .worker
                    .as_ref()
                    .is_some_and(|w| w.submit(local, own, request, AuthTicket::Own(flight.0)));
                if !taken {
                    return Some(Input::Busy { flight });
                }
            }
            Output::Send { flight, via: Via::Peer(peer), request } => {
                let id = self.swarm.behaviour_mut().auth.send_request(&peer, request);
                self.accounts.remote.insert(id, flight);
            }
            Output::Reply { ticket, result } => {
                if let Some(reply) = self.accounts.replies.remove(&ticket) {
                    let _ = reply.send(result.map_err(command_error));
                }
            }
            Output::Found { ticket, lookup } => {
                if let Some(after) = self.accounts.lookups.remove(&ticket) {
                    self.finish_lookup(after, lookup).await;
                }
            }
            Output::Save(session) => self.accounts.save(&session),
            Output::Forget => self.accounts.forget_saved_session(),
            Output::Learn(body) => {
                self.accounts.learn(&body);
            }
            Output::Enter { pump } => {
                self.enter_rooms();
                self.announce();
                // Certified now: a relay that refused this node before takes it at once.
                self.reach.certified(Instant::now());
                if pump {
                    self.pump_all_outboxes().await;
                }
                self.collect_letters();
            }
            Output::Announce => self.announce(),
            Output::BootstrapFound(peer) => {
                self.emit(UiEvent::bootstrap(peer, BootstrapState::Found)).await;
                self.mailbox_vouched(peer);
                self.take_unverified_presence().await;
            }
            Output::Refuse { peer, key, pinned } => self.refuse_bootstrap(peer, key, pinned).await,
            Output::Show(show) => self.emit(shown(show)).await,
        }
        None
    }

    /// Restores the saved session at start: at once when its certificate is valid, through a
    /// renewal when it expired.
    pub(super) async fn resume_session(&mut self) {
        let saved = self.loaded.as_mut().map_or(Ok(None), |loaded| std::mem::replace(&mut loaded.session, Ok(None)));
        self.feed_session(Input::Resume(saved)).await;
    }

    /// `/register`, `/login`, `/rename`.
    pub(super) async fn account_request(&mut self, request: AuthRequest, reply: Done) {
        let ticket = self.accounts.hold(reply);
        self.feed_session(Input::Command { ticket, request }).await;
    }

    /// Asks the bootstrap node whether `username` exists, then carries on with `after`.
    pub(super) async fn lookup_user(&mut self, username: &str, after: AfterLookup) {
        let ticket = Ticket(self.accounts.number());
        self.accounts.lookups.insert(ticket, after);
        self.feed_session(Input::Lookup { ticket, username: username.to_string() }).await;
    }

    /// Fails the requests that waited too long for a bootstrap node.
    pub(super) async fn expire_waiting_for_bootstrap(&mut self) {
        if self.accounts.engine.next_deadline().is_some_and(|d| d <= Instant::now()) {
            self.feed_session(Input::Tick).await;
        }
    }

    /// Renews the certificate when it runs low and a bootstrap node is in reach.
    pub(super) async fn renew_if_due(&mut self) {
        self.feed_session(Input::CheckRenewal).await;
    }

    /// `/logout`: leaves presence and the rooms' topics, forgets the session, tells the
    /// bootstrap if it is in reach.
    pub(super) async fn logout(&mut self, reply: Done) {
        if self.accounts.session().is_some() {
            self.announce_offline();
            self.exit_rooms();
            self.reach.uncertified();
            self.end_sessions();
            if self.attention.logged_out() {
                self.emit(UiEvent::Unfocused).await;
            }
        }
        let ticket = self.accounts.hold(reply);
        self.feed_session(Input::Logout { ticket }).await;
    }

    /// `/nick`.
    pub(super) async fn change_nick(&mut self, nick: String, reply: Done) {
        let ticket = self.accounts.hold(reply);
        self.feed_session(Input::Nick { ticket, nick }).await;
    }

    /// A peer asks this node's bootstrap service, on connection `connection`.
    pub(super) fn on_auth_request(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        request: AuthRequest,
        channel: ResponseChannel<AuthResponse>,
    ) {
        let id = self.accounts.number();
        let host = self.remotes.get(&connection).and_then(crate::net::reach::remote_ip);
        let Some(worker) = &self.accounts.worker else { return };
        if worker.submit(peer.to_bytes(), host, request, AuthTicket::Inbound(id)) {
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
                if let AuthResponse::Granted { certificate, .. } = &answer {
                    // Whom this node certified it knows, as a mailbox too, before any
                    // announcement of theirs comes by.
                    self.accounts.learn(&certificate.body);
                    self.admit_certified(&certificate.body);
                }
                if let Some(channel) = self.accounts.inbound.remove(&id)
                    && self.swarm.behaviour_mut().auth.send_response(channel, answer).is_err()
                {
                    tracing::debug!("a peer left before its account answer");
                }
            }
            AuthTicket::Own(id) => self.on_own_answer(Flight(id), answer).await,
        }
    }

    /// A bootstrap node answered one of this node's requests.
    pub(super) async fn on_auth_response(&mut self, id: OutboundRequestId, answer: AuthResponse) {
        if let Some(flight) = self.accounts.remote.remove(&id) {
            self.on_own_answer(flight, answer).await;
        }
    }

    /// A request to a bootstrap node failed on the way.
    pub(super) async fn on_auth_failure(&mut self, id: OutboundRequestId, error: String) {
        if let Some(flight) = self.accounts.remote.remove(&id) {
            self.feed_session(Input::Failed { flight, error }).await;
        }
    }

    /// An answer to this node's own request, with the nickname the account of a certificate
    /// granted last used here.
    async fn on_own_answer(&mut self, flight: Flight, answer: AuthResponse) {
        if let AuthResponse::Granted { renamed: Some(note), .. } = &answer {
            tracing::debug!(old = note.old, new = note.new, at = note.at, "the account's latest rename");
        }
        let remembered = match &answer {
            AuthResponse::Granted { certificate, .. } => self.accounts.remembered_nickname(&certificate.body.account),
            _ => None,
        };
        self.feed_session(Input::Answer { flight, answer, remembered }).await;
    }

    /// A bootstrap node with the trusted key is in reach.
    pub(super) async fn session_bootstrap_found(&mut self, peer: PeerId) {
        self.feed_session(Input::BootstrapFound(peer)).await;
    }

    /// A bootstrap node with a key nobody confirmed is in reach.
    pub(super) async fn session_bootstrap_unconfirmed(&mut self, peer: PeerId, key: AuthorityKey) {
        self.feed_session(Input::BootstrapUnconfirmed { peer, key }).await;
    }

    /// The user confirmed `key`: the bootstrap nodes in reach with it are found, the others
    /// refused.
    pub(super) async fn session_key_trusted(&mut self, key: AuthorityKey) {
        self.feed_session(Input::KeyTrusted(key)).await;
    }

    /// The last connection to `peer` closed.
    pub(super) async fn session_peer_gone(&mut self, peer: PeerId) {
        self.feed_session(Input::PeerGone(peer)).await;
    }
}
