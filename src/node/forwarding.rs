//! When gossipsub may pass a message on. A node passes each accepted message on to its mesh
//! peers, less those that have told it (IDONTWANT) that they have it already. On a LAN every
//! member is usually connected to the author and gets the message straight from it (flood
//! publishing), and tells its mesh peers so the moment it arrives. A message that came straight
//! from its author is therefore passed on a little later ([`FORWARD_HOLD`]): by then those
//! notices are in, and the copies they make needless are not sent. A message relayed by
//! another peer is passed on at once: this node may be the only way on for it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::gossipsub::MessageId;

/// How long a message that came straight from its author waits before it is passed on. A member
/// not connected to the author gets it this much later; anyone connected to the author has it.
pub const FORWARD_HOLD: Duration = Duration::from_millis(25);
/// Messages held at most; beyond that, messages are passed on at once.
pub const MAX_HELD: usize = 4096;

/// Accepted messages waiting to be passed on, oldest first.
#[derive(Debug, Default)]
pub struct HeldForwards {
    /// (when it may go, the message, the peer it came from).
    queue: VecDeque<(Instant, MessageId, PeerId)>,
}

impl HeldForwards {
    /// Holds the message `id` that came from `source` until [`FORWARD_HOLD`] after `now`.
    /// `false` when too many are held: pass it on now.
    pub fn hold(&mut self, now: Instant, id: MessageId, source: PeerId) -> bool {
        if self.queue.len() >= MAX_HELD {
            return false;
        }
        self.queue.push_back((now + FORWARD_HOLD, id, source));
        true
    }

    /// When the oldest held message may go.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(at, _, _)| *at)
    }

    /// The messages that may go at `now`, oldest first.
    pub fn take_due(&mut self, now: Instant) -> Vec<(MessageId, PeerId)> {
        let due = self.queue.iter().take_while(|(at, _, _)| *at <= now).count();
        self.queue.drain(..due).map(|(_, id, source)| (id, source)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MessageId {
        MessageId::new(&[n])
    }

    #[test]
    fn messages_go_in_order_once_their_hold_is_over() {
        let mut held = HeldForwards::default();
        let start = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        assert_eq!(held.next_due(), None);
        assert!(held.hold(start, id(1), a));
        assert!(held.hold(start + Duration::from_millis(10), id(2), b));
        assert_eq!(held.next_due(), Some(start + FORWARD_HOLD));
        assert!(held.take_due(start + FORWARD_HOLD - Duration::from_millis(1)).is_empty());
        assert_eq!(held.take_due(start + FORWARD_HOLD), vec![(id(1), a)]);
        assert_eq!(held.next_due(), Some(start + Duration::from_millis(10) + FORWARD_HOLD));
        assert_eq!(held.take_due(start + Duration::from_secs(1)), vec![(id(2), b)]);
        assert!(held.take_due(start + Duration::from_secs(2)).is_empty());
        assert_eq!(held.next_due(), None);
    }

    #[test]
    fn a_full_hold_lets_messages_go_at_once() {
        let mut held = HeldForwards::default();
        let now = Instant::now();
        let peer = PeerId::random();
        for n in 0..MAX_HELD {
            assert!(held.hold(now, MessageId::new(&n.to_be_bytes()), peer));
        }
        assert!(!held.hold(now, id(1), peer));
        assert_eq!(held.take_due(now + FORWARD_HOLD).len(), MAX_HELD);
        assert!(held.hold(now, id(1), peer));
    }
}
