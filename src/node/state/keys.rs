//! The node's room keys: the [`Keyring`] (its own group sessions and the keys it holds), the
//! messages that wait to be shown until their key comes ([`KeyWait`]), the keys asked for and
//! given, and who holds this user's own sessions.
//!
//! Bookkeeping only: whom to ask, what to give and when to give up waiting is decided by the
//! adapter (`node/room_keys.rs`) with these bounds; nothing here touches the swarm or the store.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::request_response::OutboundRequestId;

use super::key_wait::{KeyWait, MAX_WAITING, Sealing};
use crate::account::AccountId;
use crate::e2e::Keyring;
use crate::room::EventId;

/// A session's key is asked for again (of someone else, if anyone) after this long.
pub(crate) const ASK_AGAIN: Duration = Duration::from_secs(3);
/// The most sessions remembered as asked for.
pub(crate) const MAX_ASKED: usize = 10_000;
/// How long a message noted as awaiting its key may go unshown before it is forgotten: far
/// beyond any wait on the way to the screen (the sender's order holds a gap 2 s, the store
/// answers in milliseconds), even on a loaded machine.
pub(crate) const FORGET_AWAITING: Duration = Duration::from_secs(120);
/// The most sealed messages of a session opened at a time, once its key comes.
pub(crate) const OPEN_BATCH: usize = 500;

/// A message taken in that could not be read, not shown yet.
#[derive(Debug)]
pub(crate) struct Awaiting {
    /// When it was taken in.
    pub(crate) since: Instant,
    pub(crate) sealing: Sealing,
    /// Its text, when its key came before it was shown: (`None`: it cannot be read).
    pub(crate) opened: Option<Option<String>>,
}

/// A session's key asked for.
#[derive(Debug, Default)]
pub(crate) struct Asked {
    pub(crate) last: Option<Instant>,
    /// The peers asked, in turn.
    pub(crate) peers: Vec<PeerId>,
}

/// Room keys and what waits for them.
#[derive(Debug, Default)]
pub(crate) struct RoomKeys {
    pub(crate) ring: Keyring,
    /// Messages taken in that cannot be read yet, to wait for their key when they are shown,
    /// by message id (hex).
    pub(crate) awaiting: HashMap<String, Awaiting>,
    /// The text of this user's message being taken in, by event id, so that it is not
    /// decrypted again (empty but while it is).
    pub(crate) own_texts: HashMap<EventId, String>,
    /// Messages held back from the screen until their key comes.
    pub(crate) wait: KeyWait,
    /// The sessions asked for, by room and session id.
    pub(crate) asked: HashMap<(EventId, String), Asked>,
    /// The requests in flight that ask for keys: the room and the sessions asked for.
    pub(crate) asks: HashMap<OutboundRequestId, (EventId, Vec<String>)>,
    /// The requests in flight that give keys: to whom, and the sessions given.
    pub(crate) gives: HashMap<OutboundRequestId, (AccountId, Vec<(EventId, String)>)>,
    /// Who said they took the key of this user's current session in each room: the session's
    /// id and the accounts.
    pub(crate) holders: HashMap<EventId, (String, BTreeSet<AccountId>)>,
}

impl RoomKeys {
    /// Whether `session` of `room` may be asked for now (not asked for within [`ASK_AGAIN`]);
    /// if so, it counts as asked.
    pub(crate) fn may_ask(&mut self, room: EventId, session: &str, now: Instant) -> bool {
        if self.asked.len() >= MAX_ASKED {
            self.asked
                .retain(|_, asked| asked.last.is_some_and(|last| now.saturating_duration_since(last) < ASK_AGAIN));
        }
        let asked = self.asked.entry((room, session.to_string())).or_default();
        if asked.last.is_some_and(|last| now.saturating_duration_since(last) < ASK_AGAIN) {
            return false;
        }
        asked.last = Some(now);
        true
    }

    /// Notes that `account` holds the keys of `sessions`, when they are this user's current
    /// ones (who held an earlier session is forgotten).
    pub(crate) fn held_by(&mut self, account: AccountId, sessions: &[(EventId, String)]) {
        for (room, session) in sessions {
            if self.ring.own_session(room).as_deref() != Some(session.as_str()) {
                continue;
            }
            let (held, holders) = self.holders.entry(*room).or_default();
            if held != session {
                *held = session.clone();
                holders.clear();
            }
            holders.insert(account);
        }
    }

    /// Who holds this user's current session in `room`, as they said (`None`: no session runs).
    pub(crate) fn holders_of(&self, room: &EventId) -> Option<BTreeSet<AccountId>> {
        let session = self.ring.own_session(room)?;
        let holders = self.holders.get(room).filter(|(held, _)| *held == session);
        Some(holders.map(|(_, holders)| holders.clone()).unwrap_or_default())
    }

    /// Ends this user's session in `room`; who held it is forgotten.
    pub(crate) fn end_own(&mut self, room: &EventId) {
        self.ring.end_own(room);
        self.holders.remove(room);
    }

    /// Ends every session of this user.
    pub(crate) fn end_all_own(&mut self) {
        self.ring.end_all_own();
        self.holders.clear();
    }

    /// Notes that message `id` (hex), sealed as `sealing` says, cannot be read yet: shown, it
    /// waits for the key. Whether it was noted now: not when another copy of it noted it first
    /// (that one is on its way to be shown, and its note, maybe opened since, stays as it is),
    /// nor beyond the bound (it is shown as unreadable).
    pub(crate) fn await_key(&mut self, id: String, sealing: Sealing, now: Instant) -> bool {
        if self.awaiting.len() >= MAX_WAITING || self.awaiting.contains_key(&id) {
            return false;
        }
        self.awaiting.insert(id, Awaiting { since: now, sealing, opened: None });
        true
    }

    /// Forgets the messages noted [`FORGET_AWAITING`] ago or more that were never shown (a
    /// message the sender's order dropped as a repeat of its number), so that they do not fill
    /// the bound.
    pub(crate) fn forget_stale(&mut self, now: Instant) {
        self.awaiting.retain(|_, awaiting| now.saturating_duration_since(awaiting.since) < FORGET_AWAITING);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_copy_of_a_message_leaves_the_first_copys_note_of_its_key_wait_as_it_is() {
        let mut keys = RoomKeys::default();
        let now = Instant::now();
        let sealing = || Sealing { session: "s".into(), author: PeerId::random() };
        assert!(keys.await_key("m".into(), sealing(), now), "the first copy notes it");
        keys.awaiting.get_mut("m").expect("noted").opened = Some(Some("hello".into()));
        assert!(!keys.await_key("m".into(), sealing(), now), "a second copy does not");
        assert_eq!(keys.awaiting["m"].opened, Some(Some("hello".into())), "what its key opened stays");
    }
}
