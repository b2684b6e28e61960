//! Who is online: a roster folded from verified presence announcements, peer disconnections and
//! silence. Pure state: no I/O, the time is passed in. The node verifies certificates before it
//! calls [`Roster::announce`]; accounts and usernames here always come from verified
//! certificates.
//!
//! Announcements are fresh or ignored: for each peer the roster remembers the highest
//! announcement number and certificate serial it took in, also after that peer's user logged
//! out or went away, so a copy of an older announcement (a replay) changes nothing, and neither
//! does one resting on a certificate older than one that peer already used.
//!
//! [`engine`] is the presence engine around the roster: what to take in, hold, publish and show
//! (it also ignores an announcement whose number is far from this node's clock, which a mark
//! cannot do for a peer never heard from);
//! the node's adapter that carries it out is `node/presence.rs`. Never tokio, the libp2p swarm
//! or rusqlite here, and no clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::account::{AccountId, same_name};
use crate::protocol::presence::RoomRef;

pub mod engine;

pub use engine::{Heard, Input, Now, Output, PresenceEngine, Verdict};

/// At most this many peers' high-water marks are remembered.
pub const MAX_REMEMBERED_PEERS: usize = 10_000;

/// The longest nickname, in characters.
pub const NICK_MAX_CHARS: usize = 32;

/// Why a nickname cannot be used; each message also says what a nickname may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum InvalidNick {
    #[error("a nickname is 1–{max} characters, not only spaces", max = NICK_MAX_CHARS)]
    Length,
    #[error("a nickname may not begin or end with a space")]
    Spaces,
    #[error(
        "a nickname may not contain {shown} (U+{code:04X}): it may not hold < > ( ) [ ], control characters \
         or invisible formatting characters",
        shown = if is_format(*.0) || .0.is_control() { "an invisible character".to_string() } else { format!("'{}'", .0) },
        code = u32::from(*.0)
    )]
    Char(char),
}

/// Unicode format characters (general category Cf, Unicode 16): invisible, some reorder the
/// text around them.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{890}'..='\u{891}'
            | '\u{8e2}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0001}'
            | '\u{e0020}'..='\u{e007f}'
    )
}

/// Characters a nickname may not hold: the brackets a name is framed in on screen
/// (`<nick (user)>`), so a nickname cannot pass for the frame and a message, control
/// characters, and format characters.
fn forbidden_in_nick(c: char) -> bool {
    matches!(c, '<' | '>' | '(' | ')' | '[' | ']') || c.is_control() || is_format(c)
}

/// Checks a nickname: 1–32 characters, not only spaces, no space at either end, none of
/// `< > ( ) [ ]`, no control or format characters. Checked when this user sets one and on
/// every announcement taken in.
pub fn check_nick(nick: &str) -> Result<(), InvalidNick> {
    let count = nick.chars().count();
    if !(1..=NICK_MAX_CHARS).contains(&count) || nick.trim().is_empty() {
        return Err(InvalidNick::Length);
    }
    if nick.trim() != nick {
        return Err(InvalidNick::Spaces);
    }
    match nick.chars().find(|c| forbidden_in_nick(*c)) {
        Some(c) => Err(InvalidNick::Char(c)),
        None => Ok(()),
    }
}

/// Whether `nick` passes [`check_nick`].
pub fn valid_nick(nick: &str) -> bool {
    check_nick(nick).is_ok()
}

/// A user seen online.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineUser {
    pub account: AccountId,
    pub username: String,
    pub nick: String,
}

/// What changed, for the user to see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterChange {
    Arrived(OnlineUser),
    Left(OnlineUser),
    Renamed { old: String, new: String },
    Nick(OnlineUser),
}

#[derive(Debug, Clone)]
struct Entry {
    user: OnlineUser,
    last_heard: Instant,
    /// The rooms the peer named in its last announcement taken in.
    rooms: Vec<RoomRef>,
}

/// The newest announcement taken in from one peer: its number and its certificate's serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    seq: u64,
    serial: u64,
}

/// The users online, by the peer (binary peer id) they are on, with the rooms each named.
#[derive(Debug, Default)]
pub struct Roster {
    entries: HashMap<Vec<u8>, Entry>,
    /// Per peer, what was taken in last: kept after the user left, so replays stay out.
    marks: HashMap<Vec<u8>, Mark>,
}

impl Roster {
    /// An empty roster.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in that `peer` made announcement `seq` on a certificate of serial `serial`; `false`
    /// (and nothing remembered) when it is not newer than what that peer announced before.
    fn take_mark(&mut self, peer: &[u8], seq: u64, serial: u64) -> bool {
        if self.is_stale(peer, seq, serial) {
            return false;
        }
        if self.marks.len() >= MAX_REMEMBERED_PEERS && !self.marks.contains_key(peer) {
            // Forget the offline peer heard from longest ago (announcement numbers are times):
            // its replays could come in again, as after a restart.
            let oldest = self
                .marks
                .iter()
                .filter(|(p, _)| !self.entries.contains_key(*p))
                .min_by_key(|(_, mark)| mark.seq)
                .map(|(p, _)| p.clone());
            if let Some(oldest) = oldest {
                self.marks.remove(&oldest);
            }
        }
        self.marks.insert(peer.to_vec(), Mark { seq, serial });
        true
    }

    /// `peer` announced that `user` is online there, with announcement number `seq`, on a
    /// certificate of serial `serial`. A stale announcement changes nothing.
    pub fn announce(
        &mut self,
        peer: &[u8],
        user: OnlineUser,
        seq: u64,
        serial: u64,
        now: Instant,
    ) -> Option<RosterChange> {
        if !self.take_mark(peer, seq, serial) {
            return None;
        }
        let Some(entry) = self.entries.get_mut(peer) else {
            self.entries.insert(peer.to_vec(), Entry { user: user.clone(), last_heard: now, rooms: Vec::new() });
            return Some(RosterChange::Arrived(user));
        };
        entry.last_heard = now;
        if entry.user.account != user.account {
            // Another account logged in on that peer.
            entry.user = user.clone();
            return Some(RosterChange::Arrived(user));
        }
        let change = if entry.user.username != user.username {
            Some(RosterChange::Renamed { old: entry.user.username.clone(), new: user.username.clone() })
        } else if entry.user.nick != user.nick {
            Some(RosterChange::Nick(user.clone()))
        } else {
            None
        };
        entry.user = user;
        change
    }

    /// Whether an announcement numbered `seq` from `peer`, on a certificate of serial `serial`,
    /// is not newer than one already taken in from that peer (a late copy, or a replay): what it
    /// says is out of date.
    pub fn is_stale(&self, peer: &[u8], seq: u64, serial: u64) -> bool {
        self.marks.get(peer).is_some_and(|mark| seq <= mark.seq || serial < mark.serial)
    }

    /// `peer` announced that its user left (logout), with announcement number `seq` on a
    /// certificate of serial `serial`.
    pub fn leave(&mut self, peer: &[u8], seq: u64, serial: u64) -> Option<RosterChange> {
        if !self.take_mark(peer, seq, serial) {
            return None;
        }
        self.entries.remove(peer).map(|e| RosterChange::Left(e.user))
    }

    /// The connection to `peer` is gone.
    pub fn peer_gone(&mut self, peer: &[u8]) -> Option<RosterChange> {
        self.entries.remove(peer).map(|e| RosterChange::Left(e.user))
    }

    /// Removes users not heard from for longer than `timeout`: each peer forgotten, with what
    /// changed.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<(Vec<u8>, RosterChange)> {
        let stale: Vec<Vec<u8>> = self
            .entries
            .iter()
            .filter(|(_, e)| now.duration_since(e.last_heard) > timeout)
            .map(|(p, _)| p.clone())
            .collect();
        stale.into_iter().filter_map(|p| self.peer_gone(&p).map(|change| (p, change))).collect()
    }

    /// The user on `peer`, if online.
    pub fn user_on(&self, peer: &[u8]) -> Option<&OnlineUser> {
        self.entries.get(peer).map(|e| &e.user)
    }

    /// Whether an announcement that `user` is online on `peer`, in `rooms`, would change what
    /// is shown or known: someone arriving, another name or nickname, other rooms.
    pub fn would_change(&self, peer: &[u8], user: &OnlineUser, rooms: &[RoomRef]) -> bool {
        self.entries.get(peer).is_none_or(|e| e.user != *user || e.rooms != rooms)
    }

    /// Notes the rooms the user online on `peer` named; forgotten with the user.
    pub fn name_rooms(&mut self, peer: &[u8], rooms: Vec<RoomRef>) {
        if let Some(entry) = self.entries.get_mut(peer) {
            entry.rooms = rooms;
        }
    }

    /// How many peers' rooms are known (none named included): those of the users online.
    #[cfg(test)]
    pub(crate) fn rooms_named(&self) -> usize {
        self.entries.len()
    }

    /// The peers `account` is online on, the most recently heard first.
    pub fn peers_of(&self, account: &AccountId) -> Vec<Vec<u8>> {
        let mut found: Vec<(&Vec<u8>, &Entry)> =
            self.entries.iter().filter(|(_, e)| e.user.account == *account).collect();
        found.sort_by_key(|(_, e)| std::cmp::Reverse(e.last_heard));
        found.into_iter().map(|(peer, _)| peer.clone()).collect()
    }

    /// The online user called `username` (any case).
    pub fn find(&self, username: &str) -> Option<&OnlineUser> {
        self.entries.values().map(|e| &e.user).find(|u| same_name(&u.username, username))
    }

    /// Everyone online, sorted by username, each account once.
    pub fn online(&self) -> Vec<OnlineUser> {
        let mut users: Vec<OnlineUser> = self.entries.values().map(|e| e.user.clone()).collect();
        // Each account once, whatever names its peers announced it under, then by username.
        users.sort_by(|a, b| a.account.cmp(&b.account).then(a.username.cmp(&b.username)).then(a.nick.cmp(&b.nick)));
        users.dedup_by(|a, b| a.account == b.account);
        users.sort_by(|a, b| a.username.cmp(&b.username).then(a.nick.cmp(&b.nick)));
        users
    }
}

#[cfg(test)]
mod tests;
