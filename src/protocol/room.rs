//! Rooms on the wire: each room is the gossipsub topic `meshchat/room/2/NAME`, carrying
//! [`Envelope`]s: a control event or a chat message, signed by its author's peer key and
//! carrying the author's certificate, so that any node can verify it on its own, also later,
//! when it arrives through catch-up (`/meshchat/sync/2`) rather than gossip.

use libp2p::PeerId;
use libp2p::identity::{Keypair, PublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::account::AccountId;
use crate::cert::{AuthorityKey, CLOCK_SKEW_SECS, CertCache, Certificate};
use crate::hex::encode as hex;
use crate::room::Action;

/// Topic names are this prefix and the room name.
pub const TOPIC_PREFIX: &str = "meshchat/room/2/";
/// The catch-up protocol.
pub const SYNC_PROTOCOL: &str = "/meshchat/sync/2";
/// The longest message text, in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;
/// The largest envelope accepted, in bytes.
pub const MAX_ENVELOPE_BYTES: usize = 16 * 1024;
/// How many messages one catch-up answer (a page) carries at most.
pub const SYNC_MESSAGES: usize = 500;
/// How many control events a catch-up answer carries at most.
pub const SYNC_EVENTS: usize = 10_000;
/// The largest catch-up answer accepted, in bytes.
pub const MAX_SYNC_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;
/// Domain separation for room signatures.
const SIGNING_CONTEXT: &[u8] = b"meshchat room envelope v1\0";

/// The topic of room `name`.
pub fn topic_name(room: &str) -> String {
    format!("{TOPIC_PREFIX}{room}")
}

/// What an envelope carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    Control(Action),
    Message { text: String },
}

/// The signed part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    pub room: String,
    pub lamport: u64,
    /// Milliseconds since the Unix epoch, by the author's clock.
    pub ts_ms: u64,
    /// Random, so that bodies are unique.
    pub nonce: u64,
    pub payload: Payload,
    /// For messages: the author's number for it in this room, from this peer (1, 2, 3, …), so
    /// receivers show them in the order written. 0 for control events.
    #[serde(default)]
    pub seq: u64,
}

/// A signed body with the author's certificate and public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub body: Vec<u8>,
    pub certificate: Certificate,
    /// The author's libp2p public key, protobuf-encoded.
    pub public_key: Vec<u8>,
    pub signature: Vec<u8>,
}

/// An envelope that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Unique per envelope.
    pub id: String,
    /// The author's account, from the verified certificate.
    pub account: AccountId,
    /// The author's username in that certificate (a label).
    pub author: String,
    /// The serial of that certificate (newer ones have higher serials).
    pub serial: u64,
    pub peer: PeerId,
    pub body: Body,
}

/// Why an envelope is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvelopeError {
    #[error("malformed envelope")]
    Malformed,
    #[error("the envelope is too large")]
    TooLarge,
    #[error("the message is longer than {MAX_TEXT_BYTES} bytes")]
    TextTooLong,
    #[error("bad signature")]
    BadSignature,
    #[error("certificate: {0}")]
    Certificate(#[from] crate::cert::CertError),
    #[error("the envelope is dated in the future")]
    FromTheFuture,
}

fn signed_bytes(body: &[u8]) -> Vec<u8> {
    [SIGNING_CONTEXT, body].concat()
}

impl Envelope {
    /// Signs `body` with the author's key.
    pub fn seal(key: &Keypair, certificate: &Certificate, body: &Body) -> Option<Envelope> {
        let body = cbor4ii::serde::to_vec(Vec::new(), body).ok()?;
        let signature = key.sign(&signed_bytes(&body)).ok()?;
        Some(Envelope { body, certificate: certificate.clone(), public_key: key.public().encode_protobuf(), signature })
    }

    /// CBOR bytes.
    pub fn encode(&self) -> Vec<u8> {
        cbor4ii::serde::to_vec(Vec::new(), self).unwrap_or_default()
    }

    /// Parses CBOR bytes.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge);
        }
        cbor4ii::serde::from_slice(bytes).map_err(|_| EnvelopeError::Malformed)
    }

    /// Checks the signature, that the certificate was valid for the author's peer when the
    /// envelope was made, and the size of any text. `now_ms` bounds how far in the future the
    /// envelope may be dated.
    pub fn verify(&self, authority: &AuthorityKey, now_ms: u64) -> Result<Verified, EnvelopeError> {
        self.check(&mut CertCache::default(), authority, now_ms, None)
    }

    /// [`Self::verify`], with the certificate checked through `certs`. `signed_by` is a peer
    /// known to have signed these very bytes (this node, which has just sealed them); when it is
    /// the author, the signature is not checked again.
    pub fn check(
        &self,
        certs: &mut CertCache,
        authority: &AuthorityKey,
        now_ms: u64,
        signed_by: Option<PeerId>,
    ) -> Result<Verified, EnvelopeError> {
        if self.body.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge);
        }
        let public = PublicKey::try_decode_protobuf(&self.public_key).map_err(|_| EnvelopeError::Malformed)?;
        let peer = public.to_peer_id();
        if signed_by != Some(peer) && !public.verify(&signed_bytes(&self.body), &self.signature) {
            return Err(EnvelopeError::BadSignature);
        }
        let body: Body = cbor4ii::serde::from_slice(&self.body).map_err(|_| EnvelopeError::Malformed)?;
        if body.ts_ms > now_ms.saturating_add(CLOCK_SKEW_SECS * 1000) {
            return Err(EnvelopeError::FromTheFuture);
        }
        let peer_bytes = peer.to_bytes();
        let holder = certs.verify(&self.certificate, authority, &peer_bytes, body.ts_ms / 1000)?;
        let (account, author, serial) = (holder.account, holder.username.clone(), holder.serial);
        if let Payload::Message { text } = &body.payload
            && text.len() > MAX_TEXT_BYTES
        {
            return Err(EnvelopeError::TextTooLong);
        }
        let id = envelope_id(&peer_bytes, &self.body);
        Ok(Verified { id, account, author, serial, peer, body })
    }

    /// The id the envelope has once verified ([`Verified::id`]), worked out without checking
    /// anything: for telling envelopes already taken in from new ones before paying for a
    /// signature check. `None` when the author's key is malformed. The id covers the author's
    /// peer and the signed body, so an envelope with a known id but a bad signature carries
    /// nothing new.
    pub fn id(&self) -> Option<String> {
        let public = PublicKey::try_decode_protobuf(&self.public_key).ok()?;
        Some(envelope_id(&public.to_peer_id().to_bytes(), &self.body))
    }

    /// Where the envelope's message sits in the order ([`Cursor::of`] once verified), read
    /// without checking anything; `None` when malformed.
    pub fn cursor(&self) -> Option<Cursor> {
        let body: Body = cbor4ii::serde::from_slice(&self.body).ok()?;
        Some(Cursor { lamport: body.lamport, ts_ms: body.ts_ms, id: self.id()? })
    }
}

/// An envelope's id: a hash of its author's peer and its body.
fn envelope_id(peer_bytes: &[u8], body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(peer_bytes);
    hasher.update(body);
    hex(&hasher.finalize()[..16])
}

/// "Send me what you have of this room": its events and its newest messages, or (with
/// `before`) the page of messages just older than that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub room: String,
    #[serde(default)]
    pub before: Option<Cursor>,
    /// What the asking node has of the room (first page only): when the answering node has the
    /// very same, it answers with nothing.
    #[serde(default)]
    pub have: Option<RoomDigest>,
}

/// A summary of what a node has of a room: how many control events and messages, and the XOR
/// of a hash of each one's id. Two nodes with equal digests have the same events and messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomDigest {
    pub events: u64,
    pub messages: u64,
    pub hash: [u8; 16],
}

impl RoomDigest {
    /// Counts in a control event.
    pub fn add_event(&mut self, id: &str) {
        self.events += 1;
        self.mix(id);
    }

    /// Counts in a message.
    pub fn add_message(&mut self, id: &str) {
        self.messages += 1;
        self.mix(id);
    }

    fn mix(&mut self, id: &str) {
        let hash = Sha256::digest(id.as_bytes());
        for (mine, new) in self.hash.iter_mut().zip(&hash[..16]) {
            *mine ^= new;
        }
    }
}

impl Verified {
    /// The control event this envelope makes, if any.
    pub fn control(&self) -> Option<Action> {
        match &self.body.payload {
            Payload::Message { .. } => None,
            Payload::Control(action) => Some(action.clone()),
        }
    }
}

/// A place in a room's messages, which are ordered by (lamport, ts_ms, id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cursor {
    pub lamport: u64,
    pub ts_ms: u64,
    pub id: String,
}

impl Cursor {
    /// Where a verified message is.
    pub fn of(message: &Verified) -> Cursor {
        Cursor { lamport: message.body.lamport, ts_ms: message.body.ts_ms, id: message.id.clone() }
    }
}

/// The room's control events (on the first page only) and one page of messages, oldest first;
/// `more` when older messages remain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SyncResponse {
    /// Events beyond [`SYNC_EVENTS`] are skipped while they are read.
    #[serde(deserialize_with = "super::bounded::first::<_, _, SYNC_EVENTS>")]
    pub events: Vec<Envelope>,
    /// Messages beyond [`SYNC_MESSAGES`] are skipped while they are read.
    #[serde(deserialize_with = "super::bounded::first::<_, _, SYNC_MESSAGES>")]
    pub messages: Vec<Envelope>,
    #[serde(default)]
    pub more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::Authority;

    const NOW_MS: u64 = 1_800_000_000_000;

    fn setup() -> (Authority, Keypair, Certificate) {
        let authority = Authority::from_secret(&[5; 32]);
        let key = Keypair::generate_ed25519();
        let cert = authority.issue(
            AccountId::from_bytes([0xa1; 16]),
            "alice",
            &key.public().to_peer_id().to_bytes(),
            NOW_MS / 1000 - 10,
            1,
        );
        (authority, key, cert)
    }

    fn body(text: &str) -> Body {
        Body {
            room: "lobby".into(),
            lamport: 3,
            ts_ms: NOW_MS,
            nonce: 42,
            payload: Payload::Message { text: text.into() },
            seq: 1,
        }
    }

    #[test]
    fn digests_agree_exactly_when_the_same_ids_are_in_whatever_the_order() {
        let mut a = RoomDigest::default();
        let mut b = RoomDigest::default();
        for id in ["e1", "e2"] {
            a.add_event(id);
        }
        for id in ["e2", "e1"] {
            b.add_event(id);
        }
        a.add_message("m1");
        a.add_message("m2");
        b.add_message("m2");
        assert_ne!(a, b);
        b.add_message("m1");
        assert_eq!(a, b);
        let mut c = b;
        c.add_message("m3");
        assert_ne!(b, c);
        // The same id counted as an event rather than a message differs too.
        let (mut d, mut e) = (RoomDigest::default(), RoomDigest::default());
        d.add_event("x");
        e.add_message("x");
        assert_ne!(d, e);
    }

    #[test]
    fn an_envelope_knows_its_id_before_it_is_checked() {
        let (authority, key, cert) = setup();
        let envelope = Envelope::seal(&key, &cert, &body("hi")).unwrap();
        let verified = envelope.verify(&authority.public(), NOW_MS).unwrap();
        assert_eq!(envelope.cursor(), Some(Cursor::of(&verified)));
        assert_eq!(envelope.id(), Some(verified.id));
        let other = Envelope::seal(&key, &cert, &body("ho")).unwrap();
        assert_ne!(other.id(), envelope.id());
        let broken = Envelope { public_key: vec![1, 2, 3], ..envelope };
        assert_eq!(broken.id(), None);
    }

    #[test]
    fn a_sealed_envelope_verifies_with_its_author() {
        let (authority, key, cert) = setup();
        let envelope = Envelope::seal(&key, &cert, &body("hi")).unwrap();
        let decoded = Envelope::decode(&envelope.encode()).unwrap();
        let verified = decoded.verify(&authority.public(), NOW_MS).unwrap();
        assert_eq!(verified.author, "alice");
        assert_eq!(verified.peer, key.public().to_peer_id());
        assert_eq!(verified.body, body("hi"));
        assert_eq!(verified.id.len(), 32);
    }

    #[test]
    fn tampering_and_foreign_certificates_are_refused() {
        let (authority, key, cert) = setup();
        let mut envelope = Envelope::seal(&key, &cert, &body("hi")).unwrap();
        let last = envelope.body.len() - 1;
        envelope.body[last] ^= 1;
        assert_eq!(envelope.verify(&authority.public(), NOW_MS), Err(EnvelopeError::BadSignature));

        // Someone else's certificate on my key.
        let other = Keypair::generate_ed25519();
        let stolen = authority.issue(
            AccountId::from_bytes([0xb0; 16]),
            "bob",
            &other.public().to_peer_id().to_bytes(),
            NOW_MS / 1000,
            2,
        );
        let envelope = Envelope::seal(&key, &stolen, &body("hi")).unwrap();
        assert!(matches!(envelope.verify(&authority.public(), NOW_MS), Err(EnvelopeError::Certificate(_))));

        // A certificate from another authority.
        let envelope = Envelope::seal(&key, &cert, &body("hi")).unwrap();
        let stranger = Authority::from_secret(&[6; 32]);
        assert!(matches!(envelope.verify(&stranger.public(), NOW_MS), Err(EnvelopeError::Certificate(_))));
    }

    #[test]
    fn a_signature_checked_by_the_transport_is_not_checked_twice_but_only_for_its_author() {
        let (authority, key, cert) = setup();
        let mut envelope = Envelope::seal(&key, &cert, &body("hi")).unwrap();
        envelope.signature = vec![0; 64];
        let mut certs = CertCache::default();
        let author = key.public().to_peer_id();
        assert!(envelope.check(&mut certs, &authority.public(), NOW_MS, Some(author)).is_ok());
        let someone_else = Keypair::generate_ed25519().public().to_peer_id();
        assert_eq!(
            envelope.check(&mut certs, &authority.public(), NOW_MS, Some(someone_else)),
            Err(EnvelopeError::BadSignature)
        );
        assert_eq!(envelope.check(&mut certs, &authority.public(), NOW_MS, None), Err(EnvelopeError::BadSignature));
    }

    #[test]
    fn oversized_and_future_envelopes_are_refused() {
        let (authority, key, cert) = setup();
        let long = Envelope::seal(&key, &cert, &body(&"x".repeat(MAX_TEXT_BYTES + 1))).unwrap();
        assert_eq!(long.verify(&authority.public(), NOW_MS), Err(EnvelopeError::TextTooLong));
        let fine = Envelope::seal(&key, &cert, &body(&"x".repeat(MAX_TEXT_BYTES))).unwrap();
        assert!(fine.verify(&authority.public(), NOW_MS).is_ok());
        let future = Envelope::seal(&key, &cert, &Body { ts_ms: NOW_MS + 3_600_000, ..body("hi") }).unwrap();
        assert_eq!(future.verify(&authority.public(), NOW_MS), Err(EnvelopeError::FromTheFuture));
        assert_eq!(Envelope::decode(&vec![0u8; MAX_ENVELOPE_BYTES + 1]), Err(EnvelopeError::TooLarge));
        assert_eq!(Envelope::decode(b"garbage"), Err(EnvelopeError::Malformed));
        // A local clock at the end of time does not overflow the future check.
        let envelope = Envelope::seal(&key, &cert, &body("hi")).unwrap();
        assert!(envelope.verify(&authority.public(), u64::MAX).is_ok());
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::cert::{Authority, CERT_LIFETIME_SECS};
    use crate::testing::{
        DECODE_MEMORY_LIMIT, any_bytes, any_certificate, any_text, cbor_head, cbor_text, deep_nesting,
        huge_length_inputs, mutated, peak_memory,
    };

    const NOW_MS: u64 = 1_800_000_000_000;
    const ISSUED: u64 = NOW_MS / 1000 - 10;

    /// The authority, an author's key and the certificate it issued for that key.
    fn setup() -> (Authority, Keypair, Certificate) {
        let authority = Authority::from_secret(&[5; 32]);
        let key = Keypair::ed25519_from_bytes([8; 32]).unwrap();
        let cert = authority.issue(
            AccountId::from_bytes([0xa1; 16]),
            "alice",
            &key.public().to_peer_id().to_bytes(),
            ISSUED,
            1,
        );
        (authority, key, cert)
    }

    fn any_action() -> impl Strategy<Value = Action> {
        prop_oneof![
            Just(Action::Create),
            Just(Action::Join),
            Just(Action::Leave),
            any::<[u8; 16]>().prop_map(|id| Action::Kick(AccountId::from_bytes(id))),
            any::<[u8; 16]>().prop_map(|id| Action::Ban(AccountId::from_bytes(id))),
            any::<[u8; 16]>().prop_map(|id| Action::Unban(AccountId::from_bytes(id))),
            any::<[u8; 16]>().prop_map(|id| Action::Op(AccountId::from_bytes(id))),
        ]
    }

    fn any_payload() -> impl Strategy<Value = Payload> {
        prop_oneof![
            any_action().prop_map(Payload::Control),
            any_text(40).prop_map(|text| Payload::Message { text }),
            (MAX_TEXT_BYTES - 2..MAX_TEXT_BYTES + 2).prop_map(|n| Payload::Message { text: "x".repeat(n) }),
            (MAX_TEXT_BYTES / 2 - 1..MAX_TEXT_BYTES / 2 + 2)
                .prop_map(|n| Payload::Message { text: "\u{e9}".repeat(n) }),
        ]
    }

    /// Bodies dated around now and the certificate's lifetime, and at any time at all.
    fn any_body() -> impl Strategy<Value = Body> {
        let ts_ms = prop_oneof![
            NOW_MS - 60_000..NOW_MS + 2 * CLOCK_SKEW_SECS * 1000,
            (ISSUED - 2 * CLOCK_SKEW_SECS) * 1000..(ISSUED + CERT_LIFETIME_SECS + 10) * 1000,
            any::<u64>(),
        ];
        (any_text(12), any::<u64>(), ts_ms, any::<u64>(), any_payload(), any::<u64>())
            .prop_map(|(room, lamport, ts_ms, nonce, payload, seq)| Body { room, lamport, ts_ms, nonce, payload, seq })
    }

    fn small_body() -> Body {
        Body {
            room: "lobby".into(),
            lamport: 1,
            ts_ms: NOW_MS,
            nonce: 7,
            payload: Payload::Message { text: "hi".into() },
            seq: 1,
        }
    }

    /// Envelopes with any fields: noise, or a real public key with a noise signature.
    fn any_envelope() -> impl Strategy<Value = Envelope> {
        let public_key = prop_oneof![
            any_bytes(48),
            any::<[u8; 32]>().prop_map(|seed| Keypair::ed25519_from_bytes(seed).unwrap().public().encode_protobuf()),
            Just(setup().1.public().encode_protobuf()),
        ];
        let body = prop_oneof![any_bytes(64), any_body().prop_map(|b| cbor4ii::serde::to_vec(Vec::new(), &b).unwrap())];
        let signature = prop_oneof![any_bytes(80), prop::collection::vec(any::<u8>(), 64)];
        let certificate = prop_oneof![any_certificate(), Just(setup().2)];
        (body, certificate, public_key, signature).prop_map(|(body, certificate, public_key, signature)| Envelope {
            body,
            certificate,
            public_key,
            signature,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn decoding_any_bytes_never_panics(
            bytes in prop_oneof![
                any_bytes(256),
                (MAX_ENVELOPE_BYTES - 2..MAX_ENVELOPE_BYTES + 3, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
                any_body().prop_flat_map(|body| {
                    let (_, key, cert) = setup();
                    mutated(Envelope::seal(&key, &cert, &body).unwrap().encode())
                }),
            ],
        ) {
            if let Ok(envelope) = Envelope::decode(&bytes) {
                prop_assert!(bytes.len() <= MAX_ENVELOPE_BYTES);
                let (authority, ..) = setup();
                let _ = envelope.verify(&authority.public(), NOW_MS);
            }
            let _ = cbor4ii::serde::from_slice::<SyncResponse>(&bytes);
            let _ = cbor4ii::serde::from_slice::<SyncRequest>(&bytes);
        }

        #[test]
        fn envelopes_not_sealed_by_their_author_are_refused(
            envelope in any_envelope(),
            now_ms in prop_oneof![Just(NOW_MS), Just(u64::MAX), any::<u64>()],
            other in any::<[u8; 32]>(),
        ) {
            let (authority, ..) = setup();
            let authority = authority.public();
            let mut certs = CertCache::default();
            prop_assert!(envelope.verify(&authority, now_ms).is_err());
            prop_assert!(envelope.check(&mut certs, &authority, now_ms, None).is_err());
            // A transport signature by another peer does not vouch for this author.
            let other = Keypair::ed25519_from_bytes(other).unwrap().public().to_peer_id();
            let author = PublicKey::try_decode_protobuf(&envelope.public_key).ok().map(|key| key.to_peer_id());
            prop_assume!(author != Some(other));
            prop_assert!(envelope.check(&mut certs, &authority, now_ms, Some(other)).is_err());
        }

        #[test]
        fn any_sealed_body_verifies_exactly_when_it_should(
            body in any_body(),
            now_ms in prop_oneof![Just(NOW_MS), Just(u64::MAX), any::<u64>()],
        ) {
            let (authority, key, cert) = setup();
            let envelope = Envelope::seal(&key, &cert, &body).unwrap();
            let result = Envelope::decode(&envelope.encode()).and_then(|e| e.verify(&authority.public(), now_ms));
            let cert_time = body.ts_ms / 1000;
            let expected = if body.ts_ms > now_ms.saturating_add(CLOCK_SKEW_SECS * 1000) {
                Err(EnvelopeError::FromTheFuture)
            } else if cert_time >= cert.body.expires_at {
                Err(EnvelopeError::Certificate(crate::cert::CertError::Expired))
            } else if cert.body.issued_at > cert_time + CLOCK_SKEW_SECS {
                Err(EnvelopeError::Certificate(crate::cert::CertError::NotYetValid))
            } else if matches!(&body.payload, Payload::Message { text } if text.len() > MAX_TEXT_BYTES) {
                Err(EnvelopeError::TextTooLong)
            } else {
                Ok(("alice".to_string(), key.public().to_peer_id(), body))
            };
            prop_assert_eq!(result.map(|v| (v.author, v.peer, v.body)), expected);
        }

        #[test]
        fn sealed_envelopes_decode_exactly_up_to_the_size_limit(extra in 0usize..40) {
            // A room name of 'x's: one byte each in the body, two in the envelope, whose body is an
            // array of integers.
            let (authority, key, cert) = setup();
            let base = Envelope::seal(&key, &cert, &Body { room: String::new(), ..small_body() }).unwrap().encode().len();
            let room = "x".repeat((MAX_ENVELOPE_BYTES - base) / 2 + extra - 20);
            let bytes = Envelope::seal(&key, &cert, &Body { room, ..small_body() }).unwrap().encode();
            let decoded = Envelope::decode(&bytes);
            prop_assert!(bytes.len().abs_diff(MAX_ENVELOPE_BYTES) < 100, "{} bytes", bytes.len());
            prop_assert_eq!(decoded.is_ok(), bytes.len() <= MAX_ENVELOPE_BYTES, "{} bytes", bytes.len());
            if let Ok(envelope) = decoded {
                prop_assert!(envelope.verify(&authority.public(), NOW_MS).is_ok());
            }
        }

        #[test]
        fn any_signed_body_bytes_are_checked_without_panicking(bytes in any_bytes(300)) {
            let (authority, key, cert) = setup();
            let signature = key.sign(&signed_bytes(&bytes)).unwrap();
            let public_key = key.public().encode_protobuf();
            let envelope = Envelope { body: bytes, certificate: cert, public_key, signature };
            if let Ok(verified) = envelope.verify(&authority.public(), NOW_MS) {
                prop_assert_eq!(verified.author, "alice");
                prop_assert_eq!(cbor4ii::serde::from_slice::<Body>(&envelope.body).ok(), Some(verified.body));
            }
        }

        #[test]
        fn flipping_any_byte_forges_nothing(
            body in any_body(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 6),
        ) {
            let (authority, key, cert) = setup();
            let authority = authority.public();
            let bytes = Envelope::seal(&key, &cert, &body).unwrap().encode();
            let genuine = Envelope::decode(&bytes).and_then(|e| e.verify(&authority, NOW_MS));
            for (at, xor) in flips {
                let mut flipped = bytes.clone();
                let at = at.index(flipped.len());
                flipped[at] ^= xor;
                let Ok(envelope) = Envelope::decode(&flipped) else { continue };
                let Ok(verified) = envelope.verify(&authority, NOW_MS) else { continue };
                // It verifies only if the change did not touch what was signed or who signed it.
                let genuine = genuine.clone();
                prop_assert!(genuine.is_ok(), "byte {} made an invalid envelope valid", at);
                let genuine = genuine.unwrap();
                prop_assert_eq!(&verified.author, &genuine.author);
                prop_assert_eq!(verified.peer, genuine.peer);
                prop_assert_eq!(&verified.body, &genuine.body);
                prop_assert_eq!(&verified.id, &genuine.id);
            }
        }
    }

    #[test]
    fn every_single_byte_flip_of_an_envelope_forges_nothing() {
        let (authority, key, cert) = setup();
        let authority = authority.public();
        let body = Body {
            room: "lobby".into(),
            lamport: 3,
            ts_ms: NOW_MS,
            nonce: 42,
            payload: Payload::Message { text: "hi".into() },
            seq: 1,
        };
        let bytes = Envelope::seal(&key, &cert, &body).unwrap().encode();
        for at in 0..bytes.len() {
            for xor in [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff] {
                let mut flipped = bytes.clone();
                flipped[at] ^= xor;
                if let Ok(verified) = Envelope::decode(&flipped).and_then(|e| e.verify(&authority, NOW_MS)) {
                    assert_eq!((verified.author.as_str(), &verified.body), ("alice", &body), "byte {at} ^ {xor:#x}");
                    assert_eq!(verified.peer, key.public().to_peer_id());
                }
            }
        }
    }

    #[test]
    fn huge_announced_lengths_fail_fast_and_small() {
        let fields = ["body", "certificate", "public_key", "signature", "events", "messages", "room", "payload"];
        for input in huge_length_inputs(&fields).into_iter().chain(deep_nesting("events", 10_000)) {
            let (decoded, peak) = peak_memory(|| Envelope::decode(&input));
            assert!(decoded.is_err(), "{input:x?}");
            assert!(peak < DECODE_MEMORY_LIMIT, "{peak} bytes for {input:x?}");
            let (decoded, peak) = peak_memory(|| cbor4ii::serde::from_slice::<SyncResponse>(&input));
            assert!(decoded.is_err(), "{input:x?}");
            assert!(peak < DECODE_MEMORY_LIMIT, "{peak} bytes for {input:x?}");
            let (decoded, peak) = peak_memory(|| cbor4ii::serde::from_slice::<Body>(&input));
            assert!(decoded.is_err(), "{input:x?}");
            assert!(peak < DECODE_MEMORY_LIMIT, "{peak} bytes for {input:x?}");
        }
    }

    /// The smallest envelope: empty body, certificate, key and signature.
    fn tiny_envelope() -> Vec<u8> {
        let body = crate::cert::CertBody {
            account: AccountId::from_bytes([0; 16]),
            username: String::new(),
            peer_id: vec![],
            issued_at: 0,
            expires_at: 0,
            serial: 0,
        };
        let certificate = Certificate { body, signature: vec![] };
        Envelope { body: vec![], certificate, public_key: vec![], signature: vec![] }.encode()
    }

    /// A full-size catch-up answer of the smallest envelopes holds a fraction of its size: what
    /// is over the limits is skipped while it is read.
    #[test]
    fn a_full_size_catch_up_answer_of_tiny_envelopes_is_bounded() {
        let size = MAX_SYNC_RESPONSE_BYTES as usize;
        let mut bytes = vec![0xa2];
        bytes.extend(cbor_text("events"));
        let tiny = tiny_envelope();
        let count = (size - bytes.len() - 9) / tiny.len();
        bytes.extend(cbor_head(4, count as u64));
        for _ in 0..count {
            bytes.extend_from_slice(&tiny);
        }
        bytes.extend(cbor_text("messages"));
        bytes.push(0x80);
        let (decoded, peak) = peak_memory(|| cbor4ii::serde::from_slice::<SyncResponse>(&bytes));
        let decoded = decoded.unwrap();
        assert_eq!(decoded.events.len(), SYNC_EVENTS);
        assert!(peak < size / 4, "{peak} bytes for {} input bytes", bytes.len());
    }
}
