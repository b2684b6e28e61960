//! The presence state of the node: the presence engine, the presence topic and this node's
//! announcement counter, with how often and at which phase this node announces itself.
//!
//! Only state and its own bookkeeping live here: this module never imports the event loop nor an
//! adapter file, never touches the swarm and never emits an event; the adapter that opens
//! announcements, feeds the engine and publishes is `node/presence.rs`.

use std::time::Duration;

use libp2p::PeerId;
use libp2p::gossipsub::{IdentTopic, TopicHash};

use crate::clock::now_ms;
use crate::presence::PresenceEngine;

/// How often a logged-in node announces itself.
pub(crate) const PRESENCE_INTERVAL: Duration = Duration::from_secs(10);
/// Where in [`PRESENCE_INTERVAL`] a node's heartbeats fall: a random point, so that nodes
/// started together (machines after a power cut, many nodes on one host) do not all announce
/// themselves, and all check each other's announcements, at the same moment. Logging in
/// announces at once whatever the phase.
pub(crate) fn heartbeat_phase() -> Duration {
    PRESENCE_INTERVAL.mul_f64(rand::random::<f64>())
}

/// The presence engine and this node's announcement counter.
pub(crate) struct PresenceState {
    pub(crate) topic: IdentTopic,
    pub(crate) engine: PresenceEngine,
    last_seq: u64,
}

impl PresenceState {
    pub(crate) fn new(topic: IdentTopic, local: PeerId) -> Self {
        PresenceState { topic, engine: PresenceEngine::new(local), last_seq: 0 }
    }

    pub(crate) fn topic_hash(&self) -> TopicHash {
        self.topic.hash()
    }

    /// Increasing across restarts too: milliseconds since the epoch, or one more than last.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.last_seq = now_ms().max(self.last_seq + 1);
        self.last_seq
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
