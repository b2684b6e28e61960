//! Room messages held back from the screen until their group session's key comes: in a queue
//! per sender in each room, in the order they were to be shown, so that one waiting for its key
//! holds back those of the same sender after it (a sender's messages are shown in their order).
//!
//! Bookkeeping only, bounded by [`MAX_WAITING`]: it never asks for a key nor opens a message;
//! it is told what was opened, and says what is ready to be shown, and what waited
//! [`KEY_WAIT`] (shown as a message that cannot be decrypted).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use libp2p::PeerId;

use crate::account::AccountId;
use crate::node::event::ChatMessage;
use crate::room::EventId;
use crate::room::engine::{MESSAGE_BURST, MESSAGES_PER_SEC};

/// How long a message whose key has not come waits to be shown; then it is shown as one that
/// cannot be decrypted.
pub(crate) const KEY_WAIT: Duration = Duration::from_secs(10);
/// The most messages of one sender held (in a room), so that one sender sealing messages with
/// sessions whose keys never come cannot take every place: beyond, theirs are shown as they are
/// (unreadable, or out of their order). As many as a sender may send at once and in the five
/// seconds after: a sender's first messages in a session come before its key (which travels
/// on a stream of its own), and under load the key may come seconds behind them.
pub(crate) const MAX_WAITING_PER_SENDER: usize = MESSAGE_BURST as usize + 5 * MESSAGES_PER_SEC as usize;
/// The most messages held; beyond, one is shown as it is. A held message carries no text
/// until it is opened: a few hundred bytes each.
pub(crate) const MAX_WAITING: usize = 10 * MAX_WAITING_PER_SENDER;

/// What a message that cannot be read yet is sealed with: the session, its author's peer (the
/// first to ask for the key) and its author's account (as its signed envelope says: a key that
/// comes for it must be that author's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sealing {
    pub(crate) session: String,
    pub(crate) author: PeerId,
    pub(crate) account: AccountId,
}

/// A message held.
#[derive(Debug)]
struct Held {
    since: Instant,
    /// What it waits for; `None`: it is read (or will never be), and waits only for those
    /// before it.
    sealing: Option<Sealing>,
    message: ChatMessage,
}

/// A sender's messages in a room: the room and the sender's username.
type Stream = (EventId, String);

/// The messages held for their keys.
#[derive(Debug, Default)]
pub(crate) struct KeyWait {
    queues: HashMap<Stream, VecDeque<Held>>,
    /// The stream of each message waiting for its key, by message id (hex).
    sealed: HashMap<String, Stream>,
    held: usize,
}

impl KeyWait {
    /// Holds `message` of `room` back: when it waits for the key of `sealing`, or when one of
    /// its sender's before it waits. Handed back (`Some`) when it is to be shown now: nothing
    /// holds it back, or [`MAX_WAITING`] are held.
    pub(crate) fn hold(
        &mut self,
        room: EventId,
        message: ChatMessage,
        sealing: Option<Sealing>,
        now: Instant,
    ) -> Option<ChatMessage> {
        if sealing.is_none() && self.queues.is_empty() {
            return Some(message);
        }
        let stream = (room, message.from.clone());
        let queued = self.queues.get(&stream).map_or(0, VecDeque::len);
        if (sealing.is_none() && queued == 0) || self.held >= MAX_WAITING || queued >= MAX_WAITING_PER_SENDER {
            return Some(message);
        }
        if sealing.is_some() {
            self.sealed.insert(message.id.clone(), stream.clone());
        }
        self.queues.entry(stream).or_default().push_back(Held { since: now, sealing, message });
        self.held += 1;
        None
    }

    /// Message `id` was opened: its text (`None`: it never will be read). Whether it was held.
    pub(crate) fn opened(&mut self, id: &str, text: Option<String>) -> bool {
        let Some(stream) = self.sealed.remove(id) else { return false };
        let Some(held) = self.queues.get_mut(&stream).and_then(|q| q.iter_mut().find(|h| h.message.id == id)) else {
            return false;
        };
        held.sealing = None;
        held.message.unreadable = text.is_none();
        held.message.text = text.unwrap_or_default();
        true
    }

    /// The messages to be shown now, each sender's in order: the first of each queue that are
    /// read, or that waited [`KEY_WAIT`] for their key (shown as unreadable).
    pub(crate) fn ready(&mut self, now: Instant) -> Vec<(EventId, ChatMessage)> {
        let mut ready = Vec::new();
        self.queues.retain(|(room, _), queue| {
            while let Some(first) = queue.front() {
                let given_up = now.saturating_duration_since(first.since) >= KEY_WAIT;
                if first.sealing.is_some() && !given_up {
                    break;
                }
                let Some(held) = queue.pop_front() else { break };
                if held.sealing.is_some() {
                    self.sealed.remove(&held.message.id);
                    tracing::info!(%room, id = held.message.id, "no key came for a message in {KEY_WAIT:?}");
                }
                self.held = self.held.saturating_sub(1);
                ready.push((*room, held.message));
            }
            !queue.is_empty()
        });
        ready
    }

    /// The sessions messages wait for, each once, with the author of one of them.
    pub(crate) fn sessions(&self) -> Vec<(EventId, Sealing)> {
        let mut sessions: HashMap<(EventId, &str), &Sealing> = HashMap::new();
        for ((room, _), queue) in &self.queues {
            for sealing in queue.iter().filter_map(|held| held.sealing.as_ref()) {
                sessions.entry((*room, sealing.session.as_str())).or_insert(sealing);
            }
        }
        sessions.into_iter().map(|((room, _), sealing)| (room, sealing.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::account_of;

    fn room() -> EventId {
        EventId::from_bytes([1; 32])
    }

    fn message(from: &str, id: &str) -> ChatMessage {
        ChatMessage {
            room: "lobby".into(),
            from: from.into(),
            nick: from.into(),
            text: String::new(),
            id: id.into(),
            ts: 0,
            unreadable: true,
        }
    }

    fn read(from: &str, id: &str) -> ChatMessage {
        ChatMessage { text: format!("text of {id}"), unreadable: false, ..message(from, id) }
    }

    fn sealing(session: &str) -> Option<Sealing> {
        Some(Sealing { session: session.into(), author: PeerId::random(), account: account_of("alice") })
    }

    fn ids(ready: &[(EventId, ChatMessage)]) -> Vec<&str> {
        ready.iter().map(|(_, m)| m.id.as_str()).collect()
    }

    #[test]
    fn a_read_message_is_not_held_unless_one_of_its_senders_waits_before_it() {
        let mut wait = KeyWait::default();
        let now = Instant::now();
        assert!(wait.hold(room(), read("alice", "a1"), None, now).is_some());
        assert_eq!(wait.hold(room(), message("alice", "a2"), sealing("s"), now), None);
        assert_eq!(wait.hold(room(), read("alice", "a3"), None, now), None);
        assert!(wait.hold(room(), read("bob", "b1"), None, now).is_some(), "another sender is not held back");
        assert!(wait.ready(now).is_empty());
        assert_eq!(wait.sessions().len(), 1);

        assert!(wait.opened("a2", Some("hello".into())));
        let ready = wait.ready(now);
        assert_eq!(ids(&ready), ["a2", "a3"]);
        assert_eq!((ready[0].1.text.as_str(), ready[0].1.unreadable), ("hello", false));
        assert!(wait.sessions().is_empty());
        assert!(wait.hold(room(), read("alice", "a4"), None, now).is_some(), "nothing holds alice back now");
    }

    #[test]
    fn a_message_whose_key_does_not_come_is_shown_unreadable_after_the_wait_and_frees_those_after() {
        let mut wait = KeyWait::default();
        let start = Instant::now();
        assert!(wait.hold(room(), message("alice", "a1"), sealing("s"), start).is_none());
        assert!(wait.hold(room(), message("alice", "a2"), sealing("t"), start + KEY_WAIT / 2).is_none());
        assert!(wait.hold(room(), read("alice", "a3"), None, start + KEY_WAIT / 2).is_none());
        assert!(wait.ready(start + KEY_WAIT / 2).is_empty());
        let ready = wait.ready(start + KEY_WAIT);
        assert_eq!(ids(&ready), ["a1"]);
        assert!(ready[0].1.unreadable && ready[0].1.text.is_empty());
        // a2 opened meanwhile, never to be read: shown as such, with a3 after it.
        assert!(wait.opened("a2", None));
        assert!(!wait.opened("a1", Some("late".into())), "given up already");
        let ready = wait.ready(start + KEY_WAIT);
        assert_eq!(ids(&ready), ["a2", "a3"]);
        assert!(ready[0].1.unreadable);
        assert!(!ready[1].1.unreadable);
    }

    #[test]
    fn a_whole_burst_sent_before_its_key_came_waits_for_it_and_is_shown_read_in_order() {
        // A sender's burst and a second more, all sealed with the session whose key is late.
        let sent = MESSAGE_BURST as usize + MESSAGES_PER_SEC as usize;
        let mut wait = KeyWait::default();
        let now = Instant::now();
        for i in 0..sent {
            assert!(wait.hold(room(), message("alice", &format!("a{i}")), sealing("s"), now).is_none(), "{i} held");
        }
        for i in 0..sent {
            assert!(wait.opened(&format!("a{i}"), Some(format!("text {i}"))));
        }
        let ready = wait.ready(now);
        assert_eq!(ready.len(), sent);
        assert!(ready.iter().enumerate().all(|(i, (_, m))| m.text == format!("text {i}") && !m.unreadable));
    }

    #[test]
    fn no_more_than_the_bound_are_held() {
        let mut wait = KeyWait::default();
        let now = Instant::now();
        for i in 0..MAX_WAITING {
            let sender = format!("user{}", i / MAX_WAITING_PER_SENDER);
            assert!(wait.hold(room(), message(&sender, &i.to_string()), sealing("s"), now).is_none());
        }
        assert!(wait.hold(room(), message("alice", "one more"), sealing("s"), now).is_some());
        assert_eq!(wait.ready(now + KEY_WAIT).len(), MAX_WAITING);
        assert_eq!(wait.held, 0);
        assert!(wait.queues.is_empty() && wait.sealed.is_empty());
    }

    #[test]
    fn one_sender_whose_keys_never_come_does_not_take_the_places_of_others() {
        let mut wait = KeyWait::default();
        let now = Instant::now();
        for i in 0..MAX_WAITING {
            let held = wait.hold(room(), message("mallory", &format!("m{i}")), sealing(&format!("s{i}")), now);
            assert_eq!(held.is_none(), i < MAX_WAITING_PER_SENDER, "{i}");
        }
        // Alice's message whose key is a moment late still waits for it, and is shown read.
        assert!(wait.hold(room(), message("alice", "a1"), sealing("sa"), now).is_none());
        assert!(wait.opened("a1", Some("hello".into())));
        let ready = wait.ready(now);
        assert_eq!(ready.len(), 1);
        assert_eq!((ready[0].1.text.as_str(), ready[0].1.unreadable), ("hello", false));
    }
}
