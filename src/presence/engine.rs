//! The presence engine: a node's side of the presence topic as a state machine without I/O.
//!
//! [`PresenceEngine::handle`] takes an [`Input`] (an announcement that opened, one whose
//! certificate then checked out, a bootstrap key trusted at last, a tick, a peer's last
//! connection closed, this user's state changed, a newcomer on the topic, the short timer) and returns [`Output`]s — check this
//! announcement's certificate, publish this user's state, show this change, learn this
//! certificate, this peer's user is in these rooms (or none), this account came online, and
//! what gossipsub should do with the message — that the node carries out in their order. It
//! owns the [`Roster`] and the announcements held until they can be checked. It must never
//! import tokio, the libp2p swarm or rusqlite, never checks a certificate itself (the node does,
//! with its cache and the trusted key) and never reads a clock: the time comes as [`Now`].
//!
//! Rules:
//! - this node's own announcements, heard back, are ignored: it knows its own state better;
//! - an announcement whose number (its author's clock) is further than [`PRESENCE_FRESH`] from
//!   this node's clock, either way, is ignored, before and after its certificate is checked: a
//!   copy kept and sent again later (a replay) never shows a user who is gone, even to a node
//!   that never heard from that peer;
//! - with no bootstrap key trusted, an announcement cannot be checked: it is neither shown nor
//!   passed on, but the newest of each peer is held (at most [`MAX_UNVERIFIED`] peers') and
//!   checked once a key is trusted; the node drops those of peers no longer connected;
//! - a checked announcement with a bad nickname is refused; a stale one (a late copy or a
//!   replay, by [`Roster::is_stale`]) changes nothing and is not passed on; any other is
//!   passed on, its certificate learnt, its change shown, then its rooms handed to the room
//!   directory and the account's outbox looked at (online), or its rooms dropped (offline);
//! - one peer's announcements beyond [`ANNOUNCEMENTS_BURST`] at once, then one every
//!   [`ANNOUNCE_EVERY`], are ignored and not passed on, before their certificates are checked
//!   (a peer announces every few seconds, and for newcomers a few at once, then once a second);
//! - the node asks [`PresenceEngine::worth_opening`] before it checks an announcement's
//!   signature: one that would be ignored once opened (this node's own, not recent, or of a peer
//!   over its rate) is ignored unopened, so copies of old announcements cost no signature check;
//! - a checked announcement that would change what is shown (someone arriving or leaving,
//!   another name or nickname) or the rooms its peer is in beyond [`CHANGES_BURST`] at once,
//!   then one every [`CHANGE_EVERY`], from one peer, is ignored and not passed on;
//! - a newcomer on the topic is told this user's state at once, up to
//!   [`NEWCOMER_ANNOUNCE_BURST`] announcements at once and then one every
//!   [`NEWCOMER_ANNOUNCE_EVERY`]: newcomers beyond it are told together when the next is due
//!   (the short timer), so a peer subscribing again and again does not have this node sign and
//!   send an announcement each time;
//! - a tick publishes this user's state and forgets users silent for [`PRESENCE_TIMEOUT`];
//! - a peer whose last connection closed has no rooms any more, and its user is offline.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::{OnlineUser, Roster, RosterChange, valid_nick};
use crate::account::AccountId;
use crate::cert::{CLOCK_SKEW_SECS, CertBody};
use crate::protocol::presence::{Presence, PresenceState, RoomRef};
use crate::rate_limit::RateLimit;

/// A user not heard from for this long is taken as gone.
pub const PRESENCE_TIMEOUT: Duration = Duration::from_secs(35);

/// How far an announcement's number (its author's clock, milliseconds since the Unix epoch)
/// may be from this node's clock, either way, for it to be taken in: how long a user stays
/// online unheard, plus the clock skew allowed between machines.
pub const PRESENCE_FRESH: Duration = PRESENCE_TIMEOUT.saturating_add(Duration::from_secs(CLOCK_SKEW_SECS));

/// Whether an announcement numbered `seq` is recent by this node's clock, `now_ms`.
fn fresh(seq: u64, now_ms: u64) -> bool {
    let allowed = u64::try_from(PRESENCE_FRESH.as_millis()).unwrap_or(u64::MAX);
    seq.abs_diff(now_ms) <= allowed
}

/// The time an input is handled at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// The monotonic clock: who fell silent.
    pub at: Instant,
    /// The wall clock, milliseconds since the Unix epoch: which announcements are recent.
    pub ms: u64,
}

/// How many changes of what is shown (arriving, leaving, another name or nickname) one peer's
/// announcements may make at once, and then one every [`CHANGE_EVERY`]: a peer flapping
/// between online and offline, or through nicknames, is not shown doing it (nor restarts the
/// catch-ups of the rooms shared with it each time).
pub const CHANGES_BURST: u32 = 10;
pub const CHANGE_EVERY: Duration = Duration::from_secs(10);

/// How many announcements of one peer are taken at once, and then one every
/// [`ANNOUNCE_EVERY`]: a peer announces itself every few seconds and once for each newcomer on
/// the topic, so a newcomer storm stays well within it; a peer announcing without pause is not
/// passed on, nor its announcements' certificates checked, outboxes looked at or rooms handed on.
pub const ANNOUNCEMENTS_BURST: u32 = 64;
pub const ANNOUNCE_EVERY: Duration = Duration::from_millis(250);

/// This node announces itself for newcomers on the topic this many times at once (nodes that
/// start together), then once every [`NEWCOMER_ANNOUNCE_EVERY`]; one who comes meanwhile is
/// told when the next is due.
pub const NEWCOMER_ANNOUNCE_BURST: u32 = 8;
pub const NEWCOMER_ANNOUNCE_EVERY: Duration = Duration::from_secs(1);

/// Announcements held while no bootstrap key is trusted yet, at most this many peers'.
pub const MAX_UNVERIFIED: usize = 256;

/// An announcement whose certificate checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    pub peer: PeerId,
    /// What the checked certificate says.
    pub holder: CertBody,
    pub nick: String,
    pub state: PresenceState,
    pub seq: u64,
    pub rooms: Vec<RoomRef>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An announcement from `peer` opened (its seal is good); `key_trusted` says whether its
    /// certificate can be checked now.
    Opened { peer: PeerId, presence: Presence, key_trusted: bool },
    /// An announcement the engine asked to check ([`Output::Check`]) checked out.
    Checked(Heard),
    /// A bootstrap key is trusted now.
    KeyTrusted,
    /// The presence timer.
    Tick,
    /// The last connection to this peer closed.
    PeerGone(PeerId),
    /// This user's state changed (logged in, new nickname, rooms joined or left:
    /// [`PresenceState::Online`]; logging out: [`PresenceState::Offline`]).
    Changed(PresenceState),
    /// A peer subscribed to the presence topic: it is to be told who is here.
    Newcomer,
    /// The short timer: a newcomer owed an announcement is told now if it is due.
    Due,
}

/// What gossipsub should do with an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it on.
    Accept,
    /// Do not pass it on; the sender did nothing wrong.
    Ignore,
    /// Do not pass it on; the sender sent something wrong.
    Reject,
}

/// What the node is to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Check this announcement's certificate against the trusted key, and hand it back as
    /// [`Input::Checked`] if it holds (refuse the message if not). `held`: it was held until a
    /// key was trusted, so it is dropped if `peer` is no longer connected.
    Check { peer: PeerId, presence: Presence, held: bool },
    /// Tell everyone this user's state (nothing when logged out).
    Publish(PresenceState),
    /// Show this change.
    Show(RosterChange),
    /// Remember this account's username, from its checked certificate.
    Learn(CertBody),
    /// This peer's user is in these rooms (for the room directory).
    PeerRooms { peer: PeerId, rooms: Vec<RoomRef> },
    /// This peer's user is in no room any more.
    PeerRoomsGone(PeerId),
    /// This account came online: look at its outbox.
    AccountOnline(AccountId),
    /// What gossipsub should do with the announcement just handled.
    Verdict(Verdict),
}

/// Who is online, and the announcements held until they can be checked.
#[derive(Debug)]
pub struct PresenceEngine {
    local: PeerId,
    roster: Roster,
    /// The latest announcement of each peer heard before any bootstrap key was trusted.
    unverified: HashMap<PeerId, Presence>,
    /// The announcements each peer made.
    announcements: RateLimit<PeerId>,
    /// The changes each peer's announcements made.
    changes: RateLimit<Vec<u8>>,
    /// The announcements made for newcomers.
    told_newcomers: RateLimit<()>,
    /// A newcomer came since, and is still to be told.
    newcomer_owed: bool,
}

impl PresenceEngine {
    /// The engine of the node on `local`.
    pub fn new(local: PeerId) -> Self {
        PresenceEngine {
            local,
            roster: Roster::new(),
            unverified: HashMap::new(),
            announcements: RateLimit::every(ANNOUNCEMENTS_BURST, ANNOUNCE_EVERY),
            changes: RateLimit::every(CHANGES_BURST, CHANGE_EVERY),
            told_newcomers: RateLimit::every(NEWCOMER_ANNOUNCE_BURST, NEWCOMER_ANNOUNCE_EVERY),
            newcomer_owed: false,
        }
    }

    /// Who is online.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// How many peers' announcements are held until a key is trusted.
    pub fn held(&self) -> usize {
        self.unverified.len()
    }

    /// Whether an announcement that says it is `peer`'s, numbered `seq`, is worth checking the
    /// signature of at `now`: not this node's own, recent, and of a peer not announcing faster
    /// than allowed (looked at, not counted: the claim is not proven yet). One that is not
    /// would be ignored once opened anyway.
    pub fn worth_opening(&self, peer: &PeerId, seq: u64, now: Now) -> bool {
        *peer != self.local && fresh(seq, now.ms) && self.announcements.would_allow(peer, now.at)
    }

    /// Takes in `input` at `now`; what the node is to do, in order.
    pub fn handle(&mut self, input: Input, now: Now) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Opened { peer, .. } if peer == self.local => out.push(Output::Verdict(Verdict::Ignore)),
            Input::Opened { presence, .. } if !fresh(presence.seq, now.ms) => {
                out.push(Output::Verdict(Verdict::Ignore))
            }
            Input::Opened { peer, .. } if !self.announcements.allow(peer, now.at) => {
                // Announcing faster than anyone needs to: as if unheard.
                out.push(Output::Verdict(Verdict::Ignore))
            }
            Input::Opened { peer, presence, key_trusted: false } => {
                self.hold(peer, presence);
                out.push(Output::Verdict(Verdict::Ignore));
            }
            Input::Opened { peer, presence, key_trusted: true } => {
                out.push(Output::Check { peer, presence, held: false });
            }
            Input::Checked(heard) => self.take(heard, now, &mut out),
            Input::KeyTrusted => {
                let mut held: Vec<(PeerId, Presence)> = std::mem::take(&mut self.unverified).into_iter().collect();
                held.sort_by_key(|(_, presence)| presence.seq);
                out.extend(held.into_iter().map(|(peer, presence)| Output::Check { peer, presence, held: true }));
            }
            Input::Tick => {
                // Tells any newcomer too.
                self.newcomer_owed = false;
                out.push(Output::Publish(PresenceState::Online));
                // A peer not heard from is gone, its rooms with it (else every peer ever
                // heard through the topic would stay in the room directory).
                for (peer, change) in self.roster.expire(now.at, PRESENCE_TIMEOUT) {
                    if let Ok(peer) = PeerId::from_bytes(&peer) {
                        out.push(Output::PeerRoomsGone(peer));
                    }
                    out.push(Output::Show(change));
                }
            }
            Input::PeerGone(peer) => {
                out.push(Output::PeerRoomsGone(peer));
                out.extend(self.roster.peer_gone(&peer.to_bytes()).map(Output::Show));
            }
            Input::Changed(state) => out.push(Output::Publish(state)),
            Input::Newcomer => {
                self.newcomer_owed = true;
                self.tell_newcomers(now.at, &mut out);
            }
            Input::Due => self.tell_newcomers(now.at, &mut out),
        }
        out
    }

    /// Announces this user for the newcomers owed it, if one more announcement for newcomers
    /// is due.
    fn tell_newcomers(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.newcomer_owed && self.told_newcomers.allow((), now) {
            self.newcomer_owed = false;
            out.push(Output::Publish(PresenceState::Online));
        }
    }

    /// Holds `peer`'s announcement until a key is trusted, if it is the newest from that peer
    /// and there is room.
    fn hold(&mut self, peer: PeerId, presence: Presence) {
        let newer = self.unverified.get(&peer).is_none_or(|kept| kept.seq < presence.seq);
        if newer && (self.unverified.len() < MAX_UNVERIFIED || self.unverified.contains_key(&peer)) {
            self.unverified.insert(peer, presence);
        }
    }

    /// Takes in a checked announcement.
    fn take(&mut self, heard: Heard, now: Now, out: &mut Vec<Output>) {
        let Heard { peer, holder, nick, state, seq, rooms } = heard;
        if !valid_nick(&nick) {
            out.push(Output::Verdict(Verdict::Reject));
            return;
        }
        if !fresh(seq, now.ms) {
            // Made too long ago (a replay) or too far ahead: it says nothing about now.
            out.push(Output::Verdict(Verdict::Ignore));
            return;
        }
        let bytes = peer.to_bytes();
        if self.roster.is_stale(&bytes, seq, holder.serial) {
            // Out of date (a late copy, or a replay): it must change nothing, its rooms must not
            // replace those of a later announcement, and it is not passed on.
            out.push(Output::Verdict(Verdict::Ignore));
            return;
        }
        let account = holder.account;
        let user = OnlineUser { account, username: holder.username.clone(), nick };
        let changes = match state {
            PresenceState::Online => self.roster.would_change(&bytes, &user, &rooms),
            PresenceState::Offline => self.roster.user_on(&bytes).is_some(),
        };
        if changes && !self.changes.allow(bytes.clone(), now.at) {
            // Too many changes from this peer lately: as if unheard (a later one may be taken).
            out.push(Output::Verdict(Verdict::Ignore));
            return;
        }
        let change = match state {
            PresenceState::Online => self.roster.announce(&bytes, user, seq, holder.serial, now.at),
            PresenceState::Offline => self.roster.leave(&bytes, seq, holder.serial),
        };
        out.push(Output::Learn(holder));
        out.extend(change.map(Output::Show));
        match state {
            PresenceState::Online => {
                self.roster.name_rooms(&bytes, rooms.clone());
                out.push(Output::PeerRooms { peer, rooms });
                out.push(Output::AccountOnline(account));
            }
            PresenceState::Offline => out.push(Output::PeerRoomsGone(peer)),
        }
        out.push(Output::Verdict(Verdict::Accept));
    }
}
