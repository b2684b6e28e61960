//! Room events on the wire (room protocol 4, built on the event graph of [`crate::room::graph`]):
//! a signed body that names its room by the id of the room's create event, cites the heads its
//! author knew, and states the depth that follows from them. Control events and messages alike
//! travel on the room's topic, [`topic_name`], and in catch-up pages ([`crate::protocol::sync`]).
//!
//! An event's id is the SHA-256 of its author's peer id and its signed body bytes, so an id names
//! one content: the graph's refusals of what cites a refused event rely on it. A room's id is
//! its create event's id. No I/O here; decoding and checking never trust a peer.

use libp2p::PeerId;
use libp2p::identity::{Keypair, PublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::graph::{EventId, GraphEvent, MAX_PREV};
use super::{Action, check_room_name};
use crate::account::AccountId;
use crate::cert::{AuthorityKey, CLOCK_SKEW_SECS, CertCache, CertError, Certificate};

/// A message's text is at most this many bytes.
pub const MAX_TEXT_BYTES: usize = 4096;
/// The most a sealed message's ciphertext may take (a text of the largest size, its CBOR
/// framing, Megolm's padding, MAC and signature).
pub const MAX_SEALED_BYTES: usize = MAX_TEXT_BYTES + 512;
/// The most bytes of a group session's id (vodozemac's are 43: an ed25519 key in unpadded
/// base64).
pub const MAX_SESSION_ID_BYTES: usize = 64;

/// A room message's text, sealed with its author's group session (see `crate::e2e`, which
/// makes and opens it; to the room it is opaque bytes under the author's signature).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The group session's id.
    pub session: String,
    /// The Megolm message.
    #[serde(with = "crate::bytes")]
    pub ciphertext: Vec<u8>,
}

/// A signed event is at most this many bytes.
pub const MAX_EVENT_BYTES: usize = 16 * 1024;
/// The most bytes of an author's public key, protobuf-encoded (ed25519's take 36).
pub const MAX_PUBLIC_KEY_BYTES: usize = 128;
/// Topic names are this prefix and the room id in hex.
pub const TOPIC_PREFIX: &str = "meshchat/room/4/";
/// Domain separation for event signatures.
const SIGNING_CONTEXT: &[u8] = b"meshchat room event v4\0";

/// The topic of the room whose create event is `room`.
pub fn topic_name(room: &EventId) -> String {
    format!("{TOPIC_PREFIX}{room}")
}

/// What an event says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventPayload {
    /// The room's first event: its id is the room's id; the name is a label.
    Create {
        name: String,
    },
    Control(Action),
    /// A chat message, the author's `seq`-th in the room from this peer (1, 2, 3, …; at most
    /// `i64::MAX`): its text sealed with the author's group session ([`crate::e2e`]), readable
    /// by the members the session's key was given to.
    Message {
        seq: u64,
        sealed: Sealed,
    },
}

/// The signed part of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventBody {
    /// The author's account: signed, so that no other certificate of the same peer can be
    /// attached to the event to make it someone else's under the same id.
    pub author: AccountId,
    /// The room's id (its create event's); `None` in the create itself.
    pub room: Option<EventId>,
    /// The room's latest control events the author knew: empty for the create only.
    pub prev: Vec<EventId>,
    /// 0 for the create, else 1 + the deepest of `prev`.
    pub depth: u64,
    /// Milliseconds since the Unix epoch, by the author's clock.
    pub ts_ms: u64,
    /// Random, so that bodies are unique.
    pub nonce: u64,
    pub payload: EventPayload,
}

/// A signed body with the author's certificate and public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEvent {
    #[serde(with = "crate::bytes")]
    pub body: Vec<u8>,
    pub certificate: Certificate,
    /// The author's libp2p public key, protobuf-encoded.
    #[serde(with = "crate::bytes")]
    pub public_key: Vec<u8>,
    #[serde(with = "crate::bytes")]
    pub signature: Vec<u8>,
}

/// An event that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent {
    pub id: EventId,
    /// The room: the create event's own id for a create.
    pub room: EventId,
    /// The author's account, username and certificate serial, from the verified certificate.
    pub account: AccountId,
    pub author: String,
    pub serial: u64,
    pub peer: PeerId,
    pub body: EventBody,
}

/// Why an event is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EventError {
    #[error("malformed event")]
    Malformed,
    #[error("the event is too large")]
    TooLarge,
    #[error("bad signature")]
    BadSignature,
    #[error("certificate: {0}")]
    Certificate(#[from] CertError),
    #[error("the event is dated in the future")]
    FromTheFuture,
    #[error("the certificate is not the author's")]
    NotTheAuthor,
    #[error("the sealed message is larger than {MAX_SEALED_BYTES} bytes, or its session id too long")]
    SealedTooLarge,
    #[error("the room name is not valid")]
    BadRoomName,
    #[error("the event cites more than {MAX_PREV} events, or one twice")]
    TooManyPrev,
    #[error("a create event names no room and cites nothing at depth 0; every other event the opposite")]
    BadShape,
    #[error("the signed body holds more than its fields")]
    Padded,
}

/// An event's id: the SHA-256 of its author's peer id and its signed body.
fn event_id(peer: &[u8], body: &[u8]) -> EventId {
    let mut hasher = Sha256::new();
    hasher.update(peer);
    hasher.update(body);
    let mut id = [0u8; 32];
    id.copy_from_slice(&hasher.finalize());
    EventId::from_bytes(id)
}

fn signed_bytes(body: &[u8]) -> Vec<u8> {
    [SIGNING_CONTEXT, body].concat()
}

impl SignedEvent {
    /// Signs `body` with the author's key.
    pub fn seal(key: &Keypair, certificate: &Certificate, body: &EventBody) -> Option<SignedEvent> {
        let body = cbor4ii::serde::to_vec(Vec::new(), body).ok()?;
        let signature = key.sign(&signed_bytes(&body)).ok()?;
        Some(SignedEvent {
            body,
            certificate: certificate.clone(),
            public_key: key.public().encode_protobuf(),
            signature,
        })
    }

    /// CBOR bytes.
    pub fn encode(&self) -> Vec<u8> {
        cbor4ii::serde::to_vec(Vec::new(), self).unwrap_or_default()
    }

    /// Parses CBOR bytes, at most [`MAX_EVENT_BYTES`].
    pub fn decode(bytes: &[u8]) -> Result<SignedEvent, EventError> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(EventError::TooLarge);
        }
        cbor4ii::serde::from_slice(bytes).map_err(|_| EventError::Malformed)
    }

    /// The id the event has once verified, worked out without checking anything (to skip what
    /// is known before paying for a signature); `None` when the author's key is malformed.
    pub fn id(&self) -> Option<EventId> {
        let public = PublicKey::try_decode_protobuf(&self.public_key).ok()?;
        Some(event_id(&public.to_peer_id().to_bytes(), &self.body))
    }

    /// Checks the signature; that the signed body is exactly the encoding of its fields; that
    /// the certificate, through `certs`, was valid for the author's peer when the event was
    /// made; that it is not dated beyond `now_ms` (with the allowed skew); and the event's shape:
    /// a create names no room, cites nothing and has depth 0 and a valid name; every other event
    /// names its room and cites 1 to [`MAX_PREV`] distinct events; a text is within its limit;
    /// the certificate is the signed author's. `signed_by` is a peer known to have signed these
    /// very bytes (this node, which has just sealed them): its signature is not checked again.
    pub fn verify(
        &self,
        certs: &mut CertCache,
        authority: &AuthorityKey,
        now_ms: u64,
        signed_by: Option<PeerId>,
    ) -> Result<VerifiedEvent, EventError> {
        if self.body.len() > MAX_EVENT_BYTES {
            return Err(EventError::TooLarge);
        }
        if self.public_key.len() > MAX_PUBLIC_KEY_BYTES {
            return Err(EventError::Malformed);
        }
        let (public, peer) = certs.peer_key(&self.public_key).ok_or(EventError::Malformed)?;
        if signed_by != Some(peer) && !public.verify(&signed_bytes(&self.body), &self.signature) {
            return Err(EventError::BadSignature);
        }
        let body: EventBody = cbor4ii::serde::from_slice(&self.body).map_err(|_| EventError::Malformed)?;
        // The body is exactly the encoding of what it says: nothing unread rides along in it (a
        // control event padded to the size limit would be kept, served and loaded at every
        // start like any other).
        if cbor4ii::serde::to_vec(Vec::with_capacity(self.body.len()), &body).ok().as_deref() != Some(&self.body[..]) {
            return Err(EventError::Padded);
        }
        if body.ts_ms > now_ms.saturating_add(CLOCK_SKEW_SECS.saturating_mul(1000)) {
            return Err(EventError::FromTheFuture);
        }
        check_shape(&body)?;
        let peer_bytes = peer.to_bytes();
        let holder = certs.verify(&self.certificate, authority, &peer_bytes, body.ts_ms / 1000)?;
        if holder.account != body.author {
            return Err(EventError::NotTheAuthor);
        }
        let (account, author, serial) = (holder.account, holder.username.clone(), holder.serial);
        let id = event_id(&peer_bytes, &self.body);
        let room = body.room.unwrap_or(id);
        Ok(VerifiedEvent { id, room, account, author, serial, peer, body })
    }
}

impl SignedEvent {
    /// An event this node kept after verifying it, read back from its own database: decoded,
    /// not checked again. `None` when it does not decode.
    pub fn open_stored(&self) -> Option<VerifiedEvent> {
        let public = PublicKey::try_decode_protobuf(&self.public_key).ok()?;
        let peer = public.to_peer_id();
        let body: EventBody = cbor4ii::serde::from_slice(&self.body).ok()?;
        let id = event_id(&peer.to_bytes(), &self.body);
        let holder = &self.certificate.body;
        Some(VerifiedEvent {
            id,
            room: body.room.unwrap_or(id),
            account: holder.account,
            author: holder.username.clone(),
            serial: holder.serial,
            peer,
            body,
        })
    }
}

/// The rules of an event's shape (see [`SignedEvent::verify`]).
fn check_shape(body: &EventBody) -> Result<(), EventError> {
    let create = matches!(body.payload, EventPayload::Create { .. });
    let shaped = if create {
        body.room.is_none() && body.prev.is_empty() && body.depth == 0
    } else {
        body.room.is_some() && !body.prev.is_empty() && body.depth > 0
    };
    if !shaped || i64::try_from(body.depth).is_err() {
        return Err(EventError::BadShape);
    }
    let mut prev = body.prev.clone();
    prev.sort();
    prev.dedup();
    if body.prev.len() > MAX_PREV || prev.len() != body.prev.len() {
        return Err(EventError::TooManyPrev);
    }
    match &body.payload {
        EventPayload::Create { name } if check_room_name(name).is_err() => Err(EventError::BadRoomName),
        EventPayload::Message { sealed, .. }
            if sealed.ciphertext.len() > MAX_SEALED_BYTES || sealed.session.len() > MAX_SESSION_ID_BYTES =>
        {
            Err(EventError::SealedTooLarge)
        }
        EventPayload::Message { seq, .. } if *seq == 0 || i64::try_from(*seq).is_err() => Err(EventError::BadShape),
        _ => Ok(()),
    }
}

impl VerifiedEvent {
    /// The event as the room graph folds it: the create and control events; `None` for messages.
    pub fn graph_event(&self) -> Option<GraphEvent> {
        let action = match &self.body.payload {
            EventPayload::Create { .. } => Action::Create,
            EventPayload::Control(action) => action.clone(),
            EventPayload::Message { .. } => return None,
        };
        Some(GraphEvent {
            id: self.id,
            author: self.account,
            prev: self.body.prev.clone(),
            depth: self.body.depth,
            action,
        })
    }
}

#[cfg(test)]
mod tests;
