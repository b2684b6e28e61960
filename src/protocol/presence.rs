//! Presence (`meshchat/presence/4` gossipsub topic): each logged-in node announces its
//! certificate, nickname and state now and then, and when these change. Each announcement is
//! sealed: signed with the announcing peer's key, which travels with it, so the receiving node
//! knows which peer speaks and checks that the certificate names that peer.

use libp2p::PeerId;
use libp2p::identity::{Keypair, PublicKey};
use serde::{Deserialize, Serialize};

use crate::account::AccountId;
use crate::cert::Certificate;
use crate::room::EventId;

/// The gossipsub topic.
pub const TOPIC: &str = "meshchat/presence/4";
/// The largest presence message accepted, in bytes.
pub const MAX_BYTES: usize = 12 * 1024;
/// At most this many rooms are read from one presence.
pub const MAX_ROOMS: usize = 64;
/// Prefixed to the signed bytes, so that a signature over a presence never passes for anything
/// else a peer signs.
const SIGNING_CONTEXT: &[u8] = b"meshchat presence v1\0";

/// A presence as sent: its bytes, the announcing peer's public key (protobuf-encoded) and that
/// key's signature over the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Sealed {
    presence: Vec<u8>,
    public_key: Vec<u8>,
    signature: Vec<u8>,
}

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
    #[serde(default, deserialize_with = "super::bounded::first::<_, _, MAX_ROOMS>")]
    pub rooms: Vec<RoomRef>,
}

/// A room as presence names it: its id (its create event's), name and creator.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoomRef {
    pub id: EventId,
    pub name: String,
    pub creator: AccountId,
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

    /// Signs the presence with the announcing peer's `key`: the bytes to publish.
    pub fn seal(&self, key: &Keypair) -> Option<Vec<u8>> {
        let presence = self.encode();
        let signature = key.sign(&[SIGNING_CONTEXT, &presence].concat()).ok()?;
        let sealed = Sealed { presence, public_key: key.public().encode_protobuf(), signature };
        cbor4ii::serde::to_vec(Vec::new(), &sealed).ok()
    }

    /// Opens sealed bytes: the peer that signed them and its presence; `None` when malformed,
    /// too large or not signed by the key that came with them.
    pub fn open(bytes: &[u8]) -> Option<(PeerId, Presence)> {
        Presence::unseal(bytes)?.open()
    }

    /// Reads sealed bytes up to their signature, which is not checked yet (see
    /// [`Unopened::open`]); `None` when malformed, too large, or encoded otherwise than a node
    /// seals them: the same announcement in another encoding would be another message to
    /// gossipsub, and so a way to have every node check one signature again and again.
    pub fn unseal(bytes: &[u8]) -> Option<Unopened> {
        if bytes.len() > MAX_BYTES {
            return None;
        }
        let sealed: Sealed = cbor4ii::serde::from_slice(bytes).ok()?;
        if cbor4ii::serde::to_vec(Vec::new(), &sealed).ok()?.as_slice() != bytes {
            return None;
        }
        let presence = Presence::decode(&sealed.presence)?;
        let public = PublicKey::try_decode_protobuf(&sealed.public_key).ok()?;
        Some(Unopened { peer: public.to_peer_id(), public, sealed, presence })
    }
}

/// A presence read, its signature not yet checked: what it says may be looked at (to drop a
/// stale one, or one of a peer announcing too fast, before the signature costs anything), not
/// believed.
#[derive(Debug, Clone)]
pub struct Unopened {
    peer: PeerId,
    public: PublicKey,
    sealed: Sealed,
    presence: Presence,
}

impl Unopened {
    /// The peer whose key came with it (not proven until [`Self::open`]).
    pub fn claimed_peer(&self) -> PeerId {
        self.peer
    }

    /// Its number (its author's clock).
    pub fn seq(&self) -> u64 {
        self.presence.seq
    }

    /// Checks the signature: the peer that signed it and its presence, or `None`.
    pub fn open(self) -> Option<(PeerId, Presence)> {
        let signed = [SIGNING_CONTEXT, &self.sealed.presence].concat();
        self.public.verify(&signed, &self.sealed.signature).then_some((self.peer, self.presence))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::Authority;

    #[test]
    fn presence_round_trips_and_garbage_is_refused() {
        let presence = Presence {
            certificate: Authority::from_secret(&[1; 32]).issue(
                crate::testing::account_of("alice"),
                "alice",
                b"p",
                1,
                1,
            ),
            nick: "Alice".into(),
            state: PresenceState::Online,
            seq: 3,
            rooms: vec![RoomRef {
                id: EventId::from_bytes([3; 32]),
                name: "lobby".into(),
                creator: crate::testing::account_of("alice"),
            }],
        };
        assert_eq!(Presence::decode(&presence.encode()), Some(presence));
        assert_eq!(Presence::decode(b"\xff\x00garbage"), None);
        assert_eq!(Presence::decode(&vec![0u8; MAX_BYTES + 1]), None);
    }

    /// An announcement of alice's, numbered 3.
    fn alices() -> Presence {
        Presence {
            certificate: Authority::from_secret(&[1; 32]).issue(
                crate::testing::account_of("alice"),
                "alice",
                b"p",
                1,
                1,
            ),
            nick: "Alice".into(),
            state: PresenceState::Online,
            seq: 3,
            rooms: vec![],
        }
    }

    #[test]
    fn a_sealed_presence_opens_as_its_signer_and_nothing_else_does() {
        let key = Keypair::generate_ed25519();
        let presence = alices();
        let sealed = presence.seal(&key).unwrap();
        assert_eq!(Presence::open(&sealed), Some((key.public().to_peer_id(), presence.clone())));
        // Unsealed bytes, another key's claim, and a changed byte are all refused.
        assert_eq!(Presence::open(&presence.encode()), None);
        let mut forged: Sealed = cbor4ii::serde::from_slice(&sealed).unwrap();
        forged.public_key = Keypair::generate_ed25519().public().encode_protobuf();
        assert_eq!(Presence::open(&cbor4ii::serde::to_vec(Vec::new(), &forged).unwrap()), None);
        for i in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 0x01;
            assert_eq!(Presence::open(&flipped), None, "byte {i} flipped");
        }
    }

    /// The same announcement in another encoding (a field gossipsub would not know is
    /// padding) is refused before its signature is checked; the node's own encoding is read.
    #[test]
    fn only_the_encoding_a_node_seals_is_read() {
        #[derive(Serialize)]
        struct Padded {
            presence: Vec<u8>,
            public_key: Vec<u8>,
            signature: Vec<u8>,
            padding: u64,
        }
        let key = Keypair::generate_ed25519();
        let presence = alices();
        let sealed = presence.seal(&key).unwrap();
        let unopened = Presence::unseal(&sealed).expect("read");
        assert_eq!((unopened.claimed_peer(), unopened.seq()), (key.public().to_peer_id(), 3));
        assert_eq!(unopened.open(), Some((key.public().to_peer_id(), presence)));
        let Sealed { presence, public_key, signature } = cbor4ii::serde::from_slice(&sealed).unwrap();
        for padding in [0, 1, u64::MAX] {
            let padded = Padded {
                presence: presence.clone(),
                public_key: public_key.clone(),
                signature: signature.clone(),
                padding,
            };
            let bytes = cbor4ii::serde::to_vec(Vec::new(), &padded).unwrap();
            let read: Sealed = cbor4ii::serde::from_slice(&bytes).expect("decodes, the padding skipped");
            assert_eq!(read.signature, signature);
            assert!(Presence::unseal(&bytes).is_none(), "padded with {padding}: read");
        }
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
            prop::collection::vec(
                (any::<[u8; 32]>(), any_text(12), any::<[u8; 16]>()).prop_map(|(id, name, creator)| RoomRef {
                    id: EventId::from_bytes(id),
                    name,
                    creator: AccountId::from_bytes(creator),
                }),
                0..6,
            ),
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
        fn opening_any_bytes_never_panics(bytes in any_bytes(MAX_BYTES + 16)) {
            if Presence::open(&bytes).is_some() {
                prop_assert!(bytes.len() <= MAX_BYTES);
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
        // The most rooms a presence can name: as many as fit in MAX_BYTES, one byte each.
        let mut bytes = vec![0xa1];
        bytes.extend(crate::testing::cbor_text("rooms"));
        bytes.extend(crate::testing::cbor_head(4, MAX_BYTES as u64));
        bytes.resize(MAX_BYTES, 0x60);
        let (decoded, peak) = peak_memory(|| Presence::decode(&bytes));
        assert_eq!(decoded, None);
        assert!(peak < DECODE_MEMORY_LIMIT, "{peak}");
    }

    #[test]
    fn rooms_beyond_the_cap_are_skipped() {
        let room = |i: u8| RoomRef {
            id: EventId::from_bytes([i; 32]),
            name: "r".into(),
            creator: crate::testing::account_of("alice"),
        };
        let presence = Presence {
            certificate: crate::cert::Authority::from_secret(&[1; 32]).issue(
                crate::testing::account_of("alice"),
                "alice",
                b"p",
                1,
                1,
            ),
            nick: "Alice".into(),
            state: PresenceState::Online,
            seq: 1,
            rooms: (0..=MAX_ROOMS as u8).map(room).collect(),
        };
        let decoded = Presence::decode(&presence.encode()).unwrap();
        assert_eq!(decoded.rooms.len(), MAX_ROOMS);
    }
}
