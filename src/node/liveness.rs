//! Which connections are dead. A connection is alive while its pings are answered; a silent
//! link (a cable pulled, a laptop asleep) shows as pings going unanswered, and after
//! [`DEAD_AFTER`] the node closes it so that it redials and catches up.
//!
//! A busy link also delays pings: under a burst of messages a ping waits behind every frame
//! queued before it, in either direction, on the socket and in the peer's task, for seconds.
//! Closing such a connection would throw away everything still queued on it. So a connection
//! whose peer's messages came in over it lately ([`BUSY_GRACE`]) is given that long: the
//! queue the other way may still be draining. This holds when it is the peer's only connection
//! (a message from the peer then came over that very connection; with two connections it may
//! have come over the other one, and only pings tell).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;

/// A connection with no answered ping for this long is dead, unless it is busy.
pub const DEAD_AFTER: Duration = Duration::from_secs(5);
/// A connection over which the peer's messages came within this long is busy, and not dead.
pub const BUSY_GRACE: Duration = Duration::from_secs(15);

/// The connections and when each was last known to be alive.
#[derive(Debug, Default)]
pub struct Liveness {
    /// Each open connection: its peer and its last answered ping (or its opening).
    connections: HashMap<ConnectionId, (PeerId, Instant)>,
    /// When a message last came in from each peer.
    heard: HashMap<PeerId, Instant>,
}

impl Liveness {
    pub fn opened(&mut self, connection: ConnectionId, peer: PeerId, now: Instant) {
        self.connections.insert(connection, (peer, now));
    }

    pub fn closed(&mut self, connection: ConnectionId) {
        if let Some((peer, _)) = self.connections.remove(&connection)
            && !self.connections.values().any(|(other, _)| *other == peer)
        {
            self.heard.remove(&peer);
        }
    }

    /// A ping on `connection` was answered. Its peer when the connection was silent for longer
    /// than [`DEAD_AFTER`] before (kept because it was busy): the link came back, and the peer
    /// may have written what never came over it meanwhile (it is to be caught up from, as after
    /// a reconnection).
    pub fn pinged(&mut self, connection: ConnectionId, now: Instant) -> Option<PeerId> {
        let (peer, seen) = self.connections.get_mut(&connection)?;
        let back = now.saturating_duration_since(*seen) > DEAD_AFTER;
        *seen = now;
        back.then_some(*peer)
    }

    /// A message came in from `peer`.
    pub fn heard_from(&mut self, peer: PeerId, now: Instant) {
        self.heard.insert(peer, now);
    }

    /// Whether `connection` still shows signs of life at `now`: a ping answered within
    /// [`DEAD_AFTER`], or it is busy.
    pub fn alive(&self, connection: ConnectionId, now: Instant) -> bool {
        let Some((_, pinged)) = self.connections.get(&connection) else { return false };
        now.duration_since(*pinged) <= DEAD_AFTER || self.busy(connection, now)
    }

    /// Whether messages from the peer came over `connection` within [`BUSY_GRACE`]: a failed
    /// ping on it then means a queue, not a dead link.
    pub fn busy(&self, connection: ConnectionId, now: Instant) -> bool {
        let Some((peer, _)) = self.connections.get(&connection) else { return false };
        let only_one = self.connections.values().filter(|(other, _)| other == peer).count() == 1;
        only_one && self.heard.get(peer).is_some_and(|heard| now.duration_since(*heard) <= BUSY_GRACE)
    }

    /// The connections dead at `now`, forgotten here; the caller closes them.
    pub fn take_dead(&mut self, now: Instant) -> Vec<ConnectionId> {
        let dead: Vec<ConnectionId> =
            self.connections.keys().copied().filter(|connection| !self.alive(*connection, now)).collect();
        for connection in &dead {
            self.closed(*connection);
        }
        dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_without_answered_pings_is_dead_after_a_while() {
        let start = Instant::now();
        let mut live = Liveness::default();
        let (a, b) = (ConnectionId::new_unchecked(1), ConnectionId::new_unchecked(2));
        live.opened(a, PeerId::random(), start);
        live.opened(b, PeerId::random(), start);
        live.pinged(b, start + Duration::from_secs(4));
        assert!(live.take_dead(start + DEAD_AFTER).is_empty());
        assert_eq!(live.take_dead(start + DEAD_AFTER + Duration::from_millis(100)), vec![a]);
        assert!(!live.alive(a, start), "forgotten once taken");
        assert_eq!(live.take_dead(start + Duration::from_secs(10)), vec![b]);
    }

    #[test]
    fn messages_from_the_peer_keep_its_only_connection_alive() {
        let start = Instant::now();
        let mut live = Liveness::default();
        let (peer, busy) = (PeerId::random(), ConnectionId::new_unchecked(1));
        live.opened(busy, peer, start);
        for second in 1..=20 {
            live.heard_from(peer, start + Duration::from_secs(second));
        }
        let last = start + Duration::from_secs(20);
        assert!(live.take_dead(last + BUSY_GRACE).is_empty(), "messages came within the grace");
        assert_eq!(live.take_dead(last + BUSY_GRACE + Duration::from_secs(1)), vec![busy], "silent too long");
    }

    #[test]
    fn with_two_connections_to_a_peer_only_pings_count() {
        let start = Instant::now();
        let mut live = Liveness::default();
        let peer = PeerId::random();
        let (first, second) = (ConnectionId::new_unchecked(1), ConnectionId::new_unchecked(2));
        live.opened(first, peer, start);
        live.opened(second, peer, start);
        live.pinged(second, start + Duration::from_secs(5));
        live.heard_from(peer, start + Duration::from_secs(6));
        assert_eq!(live.take_dead(start + Duration::from_secs(7)), vec![first]);
        // Now the peer's only connection: its messages count again.
        live.heard_from(peer, start + Duration::from_secs(12));
        assert!(live.take_dead(start + Duration::from_secs(12) + BUSY_GRACE).is_empty());
    }

    #[test]
    fn a_connection_kept_through_silence_says_when_it_comes_back() {
        let start = Instant::now();
        let mut live = Liveness::default();
        let (peer, connection) = (PeerId::random(), ConnectionId::new_unchecked(1));
        live.opened(connection, peer, start);
        assert_eq!(live.pinged(connection, start + Duration::from_secs(2)), None, "an ordinary ping");
        live.heard_from(peer, start + Duration::from_secs(2));
        // Ten seconds without an answer (a cable pulled), kept because the peer was busy.
        assert!(live.take_dead(start + Duration::from_secs(11)).is_empty());
        assert_eq!(live.pinged(connection, start + Duration::from_secs(12)), Some(peer));
        assert_eq!(live.pinged(connection, start + Duration::from_secs(14)), None, "said once");
        assert_eq!(live.pinged(ConnectionId::new_unchecked(9), start), None, "a connection not known");
    }

    #[test]
    fn a_closed_connection_is_forgotten() {
        let start = Instant::now();
        let mut live = Liveness::default();
        let (peer, connection) = (PeerId::random(), ConnectionId::new_unchecked(1));
        live.opened(connection, peer, start);
        live.heard_from(peer, start);
        live.closed(connection);
        assert!(live.take_dead(start + Duration::from_secs(60)).is_empty());
        assert!(live.heard.is_empty());
    }
}
