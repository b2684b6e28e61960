//! Who is online: a roster folded from verified presence announcements, peer disconnections and
//! silence. Pure state: no I/O, the time is passed in. The node verifies certificates before it
//! calls [`Roster::announce`]; usernames here always come from verified certificates.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The longest nickname, in characters.
pub const NICK_MAX_CHARS: usize = 32;

/// A nickname is 1–32 printable characters (no control characters), not only spaces.
pub fn valid_nick(nick: &str) -> bool {
    let count = nick.chars().count();
    (1..=NICK_MAX_CHARS).contains(&count) && !nick.trim().is_empty() && !nick.chars().any(char::is_control)
}

/// A user seen online.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineUser {
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
    seq: u64,
    last_heard: Instant,
}

/// The users online, by the peer (binary peer id) they are on.
#[derive(Debug, Default)]
pub struct Roster {
    entries: HashMap<Vec<u8>, Entry>,
}

impl Roster {
    /// An empty roster.
    pub fn new() -> Self {
        Self::default()
    }

    /// `peer` announced that `user` is online there, with announcement number `seq`.
    pub fn announce(&mut self, peer: &[u8], user: OnlineUser, seq: u64, now: Instant) -> Option<RosterChange> {
        let Some(entry) = self.entries.get_mut(peer) else {
            self.entries.insert(peer.to_vec(), Entry { user: user.clone(), seq, last_heard: now });
            return Some(RosterChange::Arrived(user));
        };
        if seq < entry.seq {
            return None;
        }
        entry.seq = seq;
        entry.last_heard = now;
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

    /// Whether an announcement numbered `seq` from `peer` is older than one already taken in
    /// (a copy that came the long way round): what it says is out of date.
    pub fn is_stale(&self, peer: &[u8], seq: u64) -> bool {
        self.entries.get(peer).is_some_and(|entry| seq < entry.seq)
    }

    /// `peer` announced that its user left (logout), with announcement number `seq`.
    pub fn leave(&mut self, peer: &[u8], seq: u64) -> Option<RosterChange> {
        match self.entries.get(peer) {
            Some(entry) if entry.seq <= seq => self.entries.remove(peer).map(|e| RosterChange::Left(e.user)),
            _ => None,
        }
    }

    /// The connection to `peer` is gone.
    pub fn peer_gone(&mut self, peer: &[u8]) -> Option<RosterChange> {
        self.entries.remove(peer).map(|e| RosterChange::Left(e.user))
    }

    /// Removes users not heard from for longer than `timeout`.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<RosterChange> {
        let stale: Vec<Vec<u8>> = self
            .entries
            .iter()
            .filter(|(_, e)| now.duration_since(e.last_heard) > timeout)
            .map(|(p, _)| p.clone())
            .collect();
        stale.iter().filter_map(|p| self.peer_gone(p)).collect()
    }

    /// The user on `peer`, if online.
    pub fn user_on(&self, peer: &[u8]) -> Option<&OnlineUser> {
        self.entries.get(peer).map(|e| &e.user)
    }

    /// The peers `username` (any case) is online on, the most recently heard first.
    pub fn peers_of(&self, username: &str) -> Vec<Vec<u8>> {
        let mut found: Vec<(&Vec<u8>, &Entry)> =
            self.entries.iter().filter(|(_, e)| e.user.username.eq_ignore_ascii_case(username)).collect();
        found.sort_by_key(|(_, e)| std::cmp::Reverse(e.last_heard));
        found.into_iter().map(|(peer, _)| peer.clone()).collect()
    }

    /// The online user called `username` (any case).
    pub fn find(&self, username: &str) -> Option<&OnlineUser> {
        self.entries.values().map(|e| &e.user).find(|u| u.username.eq_ignore_ascii_case(username))
    }

    /// Everyone online, sorted by username, each username once.
    pub fn online(&self) -> Vec<OnlineUser> {
        let mut users: Vec<OnlineUser> = self.entries.values().map(|e| e.user.clone()).collect();
        users.sort_by(|a, b| a.username.cmp(&b.username).then(a.nick.cmp(&b.nick)));
        users.dedup_by(|a, b| a.username == b.username);
        users
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, nick: &str) -> OnlineUser {
        OnlineUser { username: name.into(), nick: nick.into() }
    }

    #[test]
    fn only_announcements_older_than_the_last_are_stale() {
        let now = Instant::now();
        let mut r = Roster::new();
        assert!(!r.is_stale(b"p", 5));
        r.announce(b"p", user("alice", "A"), 5, now);
        assert!(r.is_stale(b"p", 4));
        assert!(!r.is_stale(b"p", 5));
        assert!(!r.is_stale(b"p", 6));
        assert!(!r.is_stale(b"q", 1));
    }

    #[test]
    fn arrivals_renames_and_nicks_are_told_once() {
        let now = Instant::now();
        let mut r = Roster::new();
        assert_eq!(r.announce(b"p", user("alice", "A"), 1, now), Some(RosterChange::Arrived(user("alice", "A"))));
        assert_eq!(r.announce(b"p", user("alice", "A"), 2, now), None);
        assert_eq!(r.announce(b"p", user("alice", "Al"), 3, now), Some(RosterChange::Nick(user("alice", "Al"))));
        assert_eq!(
            r.announce(b"p", user("alicia", "Al"), 4, now),
            Some(RosterChange::Renamed { old: "alice".into(), new: "alicia".into() })
        );
        assert_eq!(r.announce(b"p", user("alice", "old copy"), 2, now), None, "late copies are ignored");
        assert_eq!(r.online(), vec![user("alicia", "Al")]);
    }

    #[test]
    fn users_leave_by_logout_disconnect_or_silence() {
        let now = Instant::now();
        let mut r = Roster::new();
        r.announce(b"a", user("alice", "A"), 1, now);
        r.announce(b"b", user("bob", "B"), 1, now);
        r.announce(b"c", user("carol", "C"), 1, now + Duration::from_secs(20));
        assert_eq!(r.leave(b"a", 0), None, "an older logout does not count");
        assert_eq!(r.leave(b"a", 2), Some(RosterChange::Left(user("alice", "A"))));
        assert_eq!(r.peer_gone(b"a"), None);
        let gone = r.expire(now + Duration::from_secs(31), Duration::from_secs(30));
        assert_eq!(gone, vec![RosterChange::Left(user("bob", "B"))]);
        assert_eq!(r.online(), vec![user("carol", "C")]);
        assert_eq!(r.peer_gone(b"c"), Some(RosterChange::Left(user("carol", "C"))));
        assert!(r.online().is_empty());
    }

    #[test]
    fn nicknames_are_short_and_printable() {
        assert!(valid_nick("Alice in Wonderland"));
        assert!(valid_nick("Zoë 🌸"));
        assert!(!valid_nick(""));
        assert!(!valid_nick("   "));
        assert!(!valid_nick(&"x".repeat(33)));
        assert!(!valid_nick("evil\x1b[2J"));
    }

    #[test]
    fn one_user_on_two_peers_is_listed_once() {
        let now = Instant::now();
        let mut r = Roster::new();
        r.announce(b"a", user("alice", "A"), 1, now);
        r.announce(b"b", user("alice", "A"), 1, now);
        assert_eq!(r.online().len(), 1);
        assert_eq!(r.user_on(b"b"), Some(&user("alice", "A")));
    }
}
