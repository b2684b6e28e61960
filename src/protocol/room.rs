//! Rooms on the wire: each room is the gossipsub topic `meshchat/room/1/NAME`, carrying
//! [`Envelope`]s: a control event or a chat message, signed by its author's peer key and
//! carrying the author's certificate, so that any node can verify it on its own, also later,
//! when it arrives through catch-up (`/meshchat/sync/1`) rather than gossip.

use libp2p::PeerId;
use libp2p::identity::{Keypair, PublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::cert::{AuthorityKey, CLOCK_SKEW_SECS, CertCache, Certificate};
use crate::room::Action;

/// Topic names are this prefix and the room name.
pub const TOPIC_PREFIX: &str = "meshchat/room/1/";
/// The catch-up protocol.
pub const SYNC_PROTOCOL: &str = "/meshchat/sync/1";
/// The longest message text, in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;
/// The largest envelope accepted, in bytes.
pub const MAX_ENVELOPE_BYTES: usize = 16 * 1024;
/// How many recent messages a catch-up answer carries at most.
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
    /// The username, from the verified certificate.
    pub author: String,
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

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    /// whose signature over these very bytes the transport has checked already (gossipsub's
    /// strict signing); when it is the author, the envelope's own signature is not checked twice.
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
        let author = certs.verify(&self.certificate, authority, &peer_bytes, body.ts_ms / 1000)?.to_string();
        if let Payload::Message { text } = &body.payload
            && text.len() > MAX_TEXT_BYTES
        {
            return Err(EnvelopeError::TextTooLong);
        }
        let mut hasher = Sha256::new();
        hasher.update(&peer_bytes);
        hasher.update(&self.body);
        let id = hex(&hasher.finalize()[..16]);
        Ok(Verified { id, author, peer, body })
    }
}

/// "Send me what you have of this room."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub room: String,
}

/// The room's control events and its recent messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SyncResponse {
    /// Events beyond [`SYNC_EVENTS`] are skipped while they are read.
    #[serde(deserialize_with = "super::bounded::first::<_, _, SYNC_EVENTS>")]
    pub events: Vec<Envelope>,
    /// Messages beyond [`SYNC_MESSAGES`] are skipped while they are read.
    #[serde(deserialize_with = "super::bounded::first::<_, _, SYNC_MESSAGES>")]
    pub messages: Vec<Envelope>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::Authority;

    const NOW_MS: u64 = 1_800_000_000_000;

    fn setup() -> (Authority, Keypair, Certificate) {
        let authority = Authority::from_secret(&[5; 32]);
        let key = Keypair::generate_ed25519();
        let cert = authority.issue("alice", &key.public().to_peer_id().to_bytes(), NOW_MS / 1000 - 10, 1);
        (authority, key, cert)
    }

    fn body(text: &str) -> Body {
        Body {
            room: "lobby".into(),
            lamport: 3,
            ts_ms: NOW_MS,
            nonce: 42,
            payload: Payload::Message { text: text.into() },
        }
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
        let stolen = authority.issue("bob", &other.public().to_peer_id().to_bytes(), NOW_MS / 1000, 2);
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
