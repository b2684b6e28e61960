//! Presence (`meshchat/presence/1` gossipsub topic): each logged-in node announces its
//! certificate, nickname and state now and then, and when these change. gossipsub signs every
//! message with the sender's peer key (StrictSign), so the receiving node checks that the
//! certificate names the peer that signed.

use serde::{Deserialize, Serialize};

use crate::cert::Certificate;

/// The gossipsub topic.
pub const TOPIC: &str = "meshchat/presence/1";
/// The largest presence message accepted, in bytes.
pub const MAX_BYTES: usize = 4 * 1024;

/// Online or leaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PresenceState {
    Online,
    Offline,
}

/// One announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub certificate: Certificate,
    pub nick: String,
    pub state: PresenceState,
    /// Increases with every announcement of one node, so late copies are ignored.
    pub seq: u64,
    /// The rooms the user is a member of (the room directory is built from these).
    #[serde(default)]
    pub rooms: Vec<String>,
}

impl Presence {
    /// CBOR bytes.
    pub fn encode(&self) -> Vec<u8> {
        cbor4ii::serde::to_vec(Vec::new(), self).unwrap_or_default()
    }

    /// Parses CBOR bytes; `None` when malformed or too large.
    pub fn decode(bytes: &[u8]) -> Option<Presence> {
        if bytes.len() > MAX_BYTES {
            return None;
        }
        cbor4ii::serde::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::Authority;

    #[test]
    fn presence_round_trips_and_garbage_is_refused() {
        let presence = Presence {
            certificate: Authority::from_secret(&[1; 32]).issue("alice", b"p", 1, 1),
            nick: "Alice".into(),
            state: PresenceState::Online,
            seq: 3,
            rooms: vec!["lobby".into()],
        };
        assert_eq!(Presence::decode(&presence.encode()), Some(presence));
        assert_eq!(Presence::decode(b"\xff\x00garbage"), None);
        assert_eq!(Presence::decode(&vec![0u8; MAX_BYTES + 1]), None);
    }
}
