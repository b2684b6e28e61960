//! The node's side of presence: announcing this user on the presence topic, verifying others'
//! announcements, and reporting arrivals, departures, renames and nickname changes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::gossipsub::{IdentTopic, MessageAcceptance, TopicHash};

use super::CommandError;
use super::event::{ErrorCode, OnlineState, OnlineUser, UiEvent};
use super::event_loop::EventLoop;
use crate::account::AccountId;
use crate::clock::{now_ms, unix_now};
use crate::presence::{OnlineUser as RosterUser, Roster, RosterChange, valid_nick};
use crate::protocol::presence::{Presence, PresenceState as WireState};

/// How often a logged-in node announces itself.
pub(super) const PRESENCE_INTERVAL: Duration = Duration::from_secs(10);
/// Where in [`PRESENCE_INTERVAL`] a node's heartbeats fall: a random point, so that nodes
/// started together (machines after a power cut, many nodes on one host) do not all announce
/// themselves, and all check each other's announcements, at the same moment. Logging in
/// announces at once whatever the phase.
pub(super) fn heartbeat_phase() -> Duration {
    PRESENCE_INTERVAL.mul_f64(rand::random::<f64>())
}

/// A user not heard from for this long is taken as gone.
pub(super) const PRESENCE_TIMEOUT: Duration = Duration::from_secs(35);

/// Announcements kept while no bootstrap key is trusted yet, at most this many peers'.
const MAX_UNVERIFIED: usize = 256;

/// The roster and this node's announcement counter.
pub(super) struct PresenceState {
    topic: IdentTopic,
    roster: Roster,
    last_seq: u64,
    /// The latest announcement of each peer heard before any bootstrap key was trusted (its
    /// certificate cannot be checked yet): taken in once a key is.
    unverified: HashMap<PeerId, Presence>,
}

impl PresenceState {
    pub(super) fn new(topic: IdentTopic) -> Self {
        PresenceState { topic, roster: Roster::new(), last_seq: 0, unverified: HashMap::new() }
    }

    pub(super) fn topic_hash(&self) -> TopicHash {
        self.topic.hash()
    }

    /// Increasing across restarts too: milliseconds since the epoch, or one more than last.
    fn next_seq(&mut self) -> u64 {
        self.last_seq = now_ms().max(self.last_seq + 1);
        self.last_seq
    }
}

fn change_event(change: RosterChange) -> UiEvent {
    match change {
        RosterChange::Arrived(u) => UiEvent::Presence { user: u.username, nick: u.nick, state: OnlineState::Online },
        RosterChange::Left(u) => UiEvent::Presence { user: u.username, nick: u.nick, state: OnlineState::Offline },
        RosterChange::Renamed { old, new } => UiEvent::Renamed { old, new },
        RosterChange::Nick(u) => UiEvent::Nick { user: u.username, nick: u.nick },
    }
}

impl EventLoop {
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
        self.publish_presence(WireState::Online);
    }

    /// Tells everyone this user is leaving.
    pub(super) fn announce_offline(&mut self) {
        self.publish_presence(WireState::Offline);
    }

    /// Periodic: announce, and forget users who went silent.
    pub(super) async fn presence_heartbeat(&mut self) {
        self.announce();
        for change in self.presence.roster.expire(Instant::now(), PRESENCE_TIMEOUT) {
            self.emit(change_event(change)).await;
        }
    }

    /// Whether `peer`'s user is online.
    pub(super) fn presence_knows(&self, peer: &PeerId) -> bool {
        self.presence.roster.user_on(&peer.to_bytes()).is_some()
    }

    /// The account online on `peer`.
    pub(super) fn presence_account(&self, peer: &PeerId) -> Option<AccountId> {
        self.presence.roster.user_on(&peer.to_bytes()).map(|u| u.account)
    }

    /// The username online on `peer`.
    pub(super) fn presence_user(&self, peer: &PeerId) -> Option<String> {
        self.presence.roster.user_on(&peer.to_bytes()).map(|u| u.username.clone())
    }

    /// The nickname of account `author`, called `username`, writing from `peer` (the username
    /// when unknown).
    pub(super) fn nick_of(&self, peer: &PeerId, author: &AccountId, username: &str) -> String {
        if self.accounts.account() == Some(*author) {
            return self.accounts.session().map_or_else(|| username.to_string(), |s| s.nick.clone());
        }
        match self.presence.roster.user_on(&peer.to_bytes()) {
            Some(user) if user.account == *author => user.nick.clone(),
            _ => username.to_string(),
        }
    }

    /// The peer `account` is online on, if any.
    pub(super) fn peer_of_account(&self, account: &AccountId) -> Option<PeerId> {
        self.presence.roster.peers_of(account).iter().find_map(|bytes| PeerId::from_bytes(bytes).ok())
    }

    /// The account of the online user called `username` (any case).
    pub(super) fn online_account(&self, username: &str) -> Option<AccountId> {
        self.presence.roster.find(username).map(|u| u.account)
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
        self.peer_rooms_gone(&peer);
        if let Some(change) = self.presence.roster.peer_gone(&peer.to_bytes()) {
            self.emit(change_event(change)).await;
        }
    }

    /// Validates a sealed presence message, updates the roster, and says whether gossipsub
    /// should pass it on.
    pub(super) async fn on_presence_message(&mut self, data: &[u8]) -> MessageAcceptance {
        let Some((source, presence)) = Presence::open(data) else {
            tracing::debug!("malformed or badly signed presence refused");
            return MessageAcceptance::Reject;
        };
        if source == *self.swarm.local_peer_id() {
            // This node's own words, heard back (an earlier run's, still going round): it knows
            // its own state better.
            return MessageAcceptance::Ignore;
        }
        if self.accounts.trusted_key().is_none() {
            // No bootstrap trusted yet: the certificate cannot be checked, so the announcement
            // is neither shown nor passed on now, but kept until a key is trusted.
            let newer = self.presence.unverified.get(&source).is_none_or(|kept| kept.seq < presence.seq);
            if newer
                && (self.presence.unverified.len() < MAX_UNVERIFIED || self.presence.unverified.contains_key(&source))
            {
                self.presence.unverified.insert(source, presence);
            }
            return MessageAcceptance::Ignore;
        }
        self.take_presence(source, presence).await
    }

    /// Takes in the announcements heard before a bootstrap key was trusted (now one is).
    pub(super) async fn take_unverified_presence(&mut self) {
        for (source, presence) in std::mem::take(&mut self.presence.unverified) {
            // A peer gone meanwhile is not online.
            if self.swarm.is_connected(&source) {
                self.take_presence(source, presence).await;
            }
        }
    }

    /// Checks `source`'s announcement against the trusted key and updates the roster.
    async fn take_presence(&mut self, source: PeerId, presence: Presence) -> MessageAcceptance {
        let Some(authority) = self.accounts.trusted_key() else { return MessageAcceptance::Ignore };
        let peer = source.to_bytes();
        let holder = match self.certs.verify(&presence.certificate, &authority, &peer, unix_now()) {
            Ok(body) => body.clone(),
            Err(error) => {
                tracing::info!(%source, %error, "presence with an invalid certificate refused");
                return MessageAcceptance::Reject;
            }
        };
        if !valid_nick(&presence.nick) {
            return MessageAcceptance::Reject;
        }
        if self.presence.roster.is_stale(&peer, presence.seq, holder.serial) {
            // Out of date (a late copy, or a replay): it must change nothing, its rooms must not
            // replace those of a later announcement, and it is not passed on.
            return MessageAcceptance::Ignore;
        }
        self.accounts.learn(&holder);
        let change = match presence.state {
            WireState::Online => {
                let user =
                    RosterUser { account: holder.account, username: holder.username.clone(), nick: presence.nick };
                self.presence.roster.announce(&peer, user, presence.seq, holder.serial, Instant::now())
            }
            WireState::Offline => self.presence.roster.leave(&peer, presence.seq, holder.serial),
        };
        if let Some(change) = change {
            self.emit(change_event(change)).await;
        }
        match presence.state {
            WireState::Online => {
                self.peer_rooms(source, presence.rooms).await;
                self.pump_outbox(&holder.account).await;
            }
            WireState::Offline => self.peer_rooms_gone(&source),
        }
        MessageAcceptance::Accept
    }

    /// Everyone online, this user included.
    pub(super) fn who(&self) -> Vec<OnlineUser> {
        let online = self.presence.roster.online();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_fall_at_random_points_of_the_interval() {
        let phases: Vec<Duration> = (0..100).map(|_| heartbeat_phase()).collect();
        assert!(phases.iter().all(|p| *p < PRESENCE_INTERVAL));
        let earliest = phases.iter().min().copied().unwrap_or_default();
        let latest = phases.iter().max().copied().unwrap_or_default();
        assert!(latest - earliest > PRESENCE_INTERVAL / 2, "100 phases spread over {:?}", latest - earliest);
    }
}
