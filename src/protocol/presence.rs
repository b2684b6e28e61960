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

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{
        DECODE_MEMORY_LIMIT, any_bytes, any_certificate, any_text, deep_nesting, huge_length_inputs, mutated,
        peak_memory,
    };

    fn any_presence() -> impl Strategy<Value = Presence> {
        (
            any_certificate(),
            any_text(24),
            prop_oneof![Just(PresenceState::Online), Just(PresenceState::Offline)],
            any::<u64>(),
            prop::collection::vec(any_text(12), 0..6),
        )
            .prop_map(|(certificate, nick, state, seq, rooms)| Presence {
                certificate,
                nick,
                state,
                seq,
                rooms,
            })
    }

    fn any_input() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![any_bytes(MAX_BYTES + 16), any_presence().prop_flat_map(|presence| mutated(presence.encode())),]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn decoding_any_bytes_never_panics(bytes in any_input()) {
            if let Some(presence) = Presence::decode(&bytes) {
                prop_assert!(bytes.len() <= MAX_BYTES);
                // What decodes encodes again to something that decodes the same.
                prop_assert_eq!(Presence::decode(&presence.encode()), Some(presence));
            }
        }

        #[test]
        fn presence_round_trips(presence in any_presence()) {
            let bytes = presence.encode();
            prop_assume!(bytes.len() <= MAX_BYTES);
            prop_assert_eq!(Presence::decode(&bytes), Some(presence));
        }
    }

    #[test]
    fn huge_announced_lengths_fail_fast_and_small() {
        let fields = ["certificate", "body", "signature", "nick", "rooms", "username", "peer_id"];
        for input in huge_length_inputs(&fields).into_iter().chain(deep_nesting("rooms", 10_000)) {
            let (decoded, peak) = peak_memory(|| Presence::decode(&input));
            assert_eq!(decoded, None, "{input:x?}");
            assert!(peak < DECODE_MEMORY_LIMIT, "{peak} bytes for {input:x?}");
        }
    }

    #[test]
    fn a_long_room_list_within_the_byte_limit_is_bounded() {
        // The most rooms a presence can carry: one byte each, as many as fit in MAX_BYTES.
        let mut bytes = vec![0xa1];
        bytes.extend(crate::testing::cbor_text("rooms"));
        bytes.extend(crate::testing::cbor_head(4, MAX_BYTES as u64));
        bytes.resize(MAX_BYTES, 0x60);
        let (decoded, peak) = peak_memory(|| Presence::decode(&bytes));
        assert_eq!(decoded, None);
        assert!(peak < DECODE_MEMORY_LIMIT, "{peak}");
    }
}
