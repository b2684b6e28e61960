//! The node's side of presence: the adapter of the presence engine ([`crate::presence::engine`]).
//! It reads sealed announcements, opens those the engine finds worth it, checks their
//! certificates, feeds the engine and carries out
//! what it decides: publishing this user's announcement on the presence topic, reporting
//! arrivals, departures, renames and nickname changes, handing peers' rooms to the room
//! directory, pumping outboxes. It decides nothing about who is online: the engine does.

use std::collections::VecDeque;
use std::time::Instant;

use libp2p::PeerId;
use libp2p::gossipsub::MessageAcceptance;

use super::CommandError;
use super::event::{ErrorCode, OnlineState, OnlineUser, UiEvent};
use super::parts::EventLoop;
use crate::account::AccountId;
use crate::clock::{now_ms, unix_now};
use crate::presence::{Heard, Input, Now, Output, RosterChange, Verdict};
use crate::protocol::presence::{Presence, PresenceState as WireState};

fn change_event(change: RosterChange) -> UiEvent {
    match change {
        RosterChange::Arrived(u) => UiEvent::Presence { user: u.username, nick: u.nick, state: OnlineState::Online },
        RosterChange::Left(u) => UiEvent::Presence { user: u.username, nick: u.nick, state: OnlineState::Offline },
        RosterChange::Renamed { old, new } => UiEvent::Renamed { old, new },
        RosterChange::Nick(u) => UiEvent::Nick { user: u.username, nick: u.nick },
    }
}

/// The time now, for the presence engine.
fn presence_now() -> Now {
    Now { at: Instant::now(), ms: now_ms() }
}

impl EventLoop {
    /// Hands `input` to the presence engine and carries out what it decides; what gossipsub
    /// should do with the announcement handled, if any.
    async fn feed_presence(&mut self, input: Input) -> MessageAcceptance {
        let outputs = self.presence.engine.handle(input, presence_now());
        self.carry_out_presence(outputs).await
    }

    /// Carries out the engine's outputs in their order. A certificate checked goes back to the
    /// engine at once, and what it decides then is carried out next.
    async fn carry_out_presence(&mut self, outputs: Vec<Output>) -> MessageAcceptance {
        let mut queue = VecDeque::from(outputs);
        let mut acceptance = MessageAcceptance::Ignore;
        while let Some(output) = queue.pop_front() {
            match output {
                Output::Check { peer, presence, held } => {
                    // A peer gone meanwhile is not online.
                    if held && !self.swarm.is_connected(&peer) {
                        continue;
                    }
                    match self.check_presence(peer, presence) {
                        Ok(heard) => {
                            let more = self.presence.engine.handle(Input::Checked(heard), presence_now());
                            for output in more.into_iter().rev() {
                                queue.push_front(output);
                            }
                        }
                        Err(refused) => acceptance = refused,
                    }
                }
                Output::Publish(state) => self.publish_presence(state),
                Output::Show(change) => self.emit(change_event(change)).await,
                Output::Learn(holder) => {
                    self.accounts.learn(&holder);
                }
                Output::PeerRooms { peer, rooms } => {
                    // Its certificate checked out: if it offered to keep letters, it may.
                    self.mailbox_vouched(peer);
                    self.peer_rooms(peer, rooms).await;
                }
                Output::PeerRoomsGone(peer) => self.peer_rooms_gone(&peer),
                Output::AccountOnline(account) => self.pump_outbox(&account).await,
                Output::Verdict(verdict) => {
                    acceptance = match verdict {
                        Verdict::Accept => MessageAcceptance::Accept,
                        Verdict::Ignore => MessageAcceptance::Ignore,
                        Verdict::Reject => MessageAcceptance::Reject,
                    }
                }
            }
        }
        acceptance
    }

    /// Checks `source`'s announcement against the trusted key: what it says, or what gossipsub
    /// should do with a message that cannot be taken in.
    fn check_presence(&mut self, source: PeerId, presence: Presence) -> Result<Heard, MessageAcceptance> {
        let Some(authority) = self.accounts.trusted_key() else { return Err(MessageAcceptance::Ignore) };
        let holder = match self.certs.verify(&presence.certificate, &authority, &source.to_bytes(), unix_now()) {
            Ok(body) => body.clone(),
            Err(error) => {
                tracing::info!(%source, %error, "presence with an invalid certificate refused");
                return Err(MessageAcceptance::Reject);
            }
        };
        self.admit_certified(&holder);
        let Presence { nick, state, seq, rooms, .. } = presence;
        Ok(Heard { peer: source, holder, nick, state, seq, rooms })
    }

    fn publish_presence(&mut self, state: WireState) {
        let Some(session) = self.accounts.session() else { return };
        let presence = Presence {
            certificate: session.certificate.clone(),
            nick: session.nick.clone(),
            state,
            seq: self.presence.next_seq(),
            rooms: if state == WireState::Online { self.my_rooms() } else { Vec::new() },
        };
        let Some(sealed) = presence.seal(&self.key) else {
            tracing::error!("cannot sign a presence announcement");
            return;
        };
        let topic = self.presence.topic.clone();
        if let Err(error) = self.swarm.behaviour_mut().gossipsub.publish(topic, sealed) {
            // With no peer subscribed yet there is nobody to tell; the next announcement will.
            tracing::debug!(%error, "presence not published");
        }
    }

    /// Tells everyone this user is online (nothing when logged out).
    pub(super) fn announce(&mut self) {
        self.announce_state(WireState::Online);
    }

    /// Tells everyone this user is leaving.
    pub(super) fn announce_offline(&mut self) {
        self.announce_state(WireState::Offline);
    }

    /// This user's state changed. Kept apart from [`Self::feed_presence`] (not async) so that
    /// the room and account code can call it anywhere: the engine answers it with publishing
    /// only.
    fn announce_state(&mut self, state: WireState) {
        for output in self.presence.engine.handle(Input::Changed(state), presence_now()) {
            match output {
                Output::Publish(state) => self.publish_presence(state),
                other => tracing::error!(?other, "a change of this user's state asked for more than publishing"),
            }
        }
    }

    /// A peer subscribed to the presence topic: it is told who is here (at most once a second
    /// for all newcomers together; see the engine).
    pub(super) async fn presence_newcomer(&mut self) {
        self.feed_presence(Input::Newcomer).await;
    }

    /// The short timer: newcomers owed an announcement are told if it is due.
    pub(super) async fn presence_due(&mut self) {
        self.feed_presence(Input::Due).await;
    }

    /// Periodic: announce, and forget users who went silent.
    pub(super) async fn presence_heartbeat(&mut self) {
        self.feed_presence(Input::Tick).await;
    }

    /// The user online on `peer`, as presence last said.
    fn user_on(&self, peer: &PeerId) -> Option<&crate::presence::OnlineUser> {
        self.presence.engine.roster().user_on(&peer.to_bytes())
    }

    /// Whether `peer`'s user is online.
    pub(super) fn presence_knows(&self, peer: &PeerId) -> bool {
        self.user_on(peer).is_some()
    }

    /// The account online on `peer`.
    pub(super) fn presence_account(&self, peer: &PeerId) -> Option<AccountId> {
        self.user_on(peer).map(|u| u.account)
    }

    /// The username online on `peer`.
    pub(super) fn presence_user(&self, peer: &PeerId) -> Option<String> {
        self.user_on(peer).map(|u| u.username.clone())
    }

    /// The nickname of account `author`, called `username`, writing from `peer` (the username
    /// when unknown).
    pub(super) fn nick_of(&self, peer: &PeerId, author: &AccountId, username: &str) -> String {
        if self.accounts.account() == Some(*author) {
            return self.accounts.session().map_or_else(|| username.to_string(), |s| s.nick.clone());
        }
        match self.user_on(peer) {
            Some(user) if user.account == *author => user.nick.clone(),
            _ => username.to_string(),
        }
    }

    /// The peer `account` is online on, if any.
    pub(super) fn peer_of_account(&self, account: &AccountId) -> Option<PeerId> {
        self.presence.engine.roster().peers_of(account).iter().find_map(|bytes| PeerId::from_bytes(bytes).ok())
    }

    /// The account of the online user called `username` (any case).
    pub(super) fn online_account(&self, username: &str) -> Option<AccountId> {
        self.presence.engine.roster().find(username).map(|u| u.account)
    }

    /// The account called `username` (any case) as this node knows it without asking anyone:
    /// online now, else seen before; `no_such_user` otherwise.
    pub(super) fn account_called(&self, username: &str) -> Result<AccountId, CommandError> {
        self.online_account(username)
            .or_else(|| self.accounts.known_account(username))
            .ok_or_else(|| CommandError::new(ErrorCode::NoSuchUser, format!("nobody called {username} is known here")))
    }

    /// The last connection to `peer` closed: its user is offline.
    pub(super) async fn presence_peer_gone(&mut self, peer: PeerId) {
        self.feed_presence(Input::PeerGone(peer)).await;
    }

    /// Opens a sealed presence message, hands it to the engine, and says whether gossipsub
    /// should pass it on.
    pub(super) async fn on_presence_message(&mut self, data: &[u8]) -> MessageAcceptance {
        let Some(unopened) = Presence::unseal(data) else {
            tracing::debug!("malformed presence refused");
            return MessageAcceptance::Reject;
        };
        // Ignored unopened what would be ignored opened: its signature costs nothing then.
        if !self.presence.engine.worth_opening(&unopened.claimed_peer(), unopened.seq(), presence_now()) {
            return MessageAcceptance::Ignore;
        }
        let Some((peer, presence)) = unopened.open() else {
            tracing::debug!("badly signed presence refused");
            return MessageAcceptance::Reject;
        };
        let key_trusted = self.accounts.trusted_key().is_some();
        self.feed_presence(Input::Opened { peer, presence, key_trusted }).await
    }

    /// Takes in the announcements heard before a bootstrap key was trusted (now one is).
    pub(super) async fn take_unverified_presence(&mut self) {
        self.feed_presence(Input::KeyTrusted).await;
    }

    /// Everyone online, this user included.
    pub(super) fn who(&self) -> Vec<OnlineUser> {
        let online = self.presence.engine.roster().online();
        let me = self.accounts.session().map(|s| (&s.certificate.body, &s.nick));
        let mut users: Vec<OnlineUser> = online
            .iter()
            .filter(|u| me.is_none_or(|(body, _)| body.account != u.account))
            .map(|u| OnlineUser { user: u.username.clone(), nick: u.nick.clone() })
            .collect();
        if let Some((body, nick)) = me {
            users.push(OnlineUser { user: body.username.clone(), nick: nick.clone() });
        }
        users.sort_by(|a, b| a.user.cmp(&b.user));
        users
    }
}
