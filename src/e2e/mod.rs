//! End-to-end encryption of room messages, pure: Megolm group sessions from `vodozemac`
//! (Matrix's audited implementation), one per member and room at a time, their keys as they
//! travel between members ([`RoomKey`]), and the [`Keyring`] that holds this node's own
//! sessions and the keys it was given. No I/O, no clock, no network: never tokio, the libp2p
//! swarm or rusqlite; who gets which key, and when, is decided by the node from the room's
//! fold, with the rules here ([`Keyring::seal`] says when a session must be replaced).
//!
//! What is inside the ciphertext: the room, the author's account, the author's number for the
//! message, and the text ([`Plain`]). The author and room are checked against the signed
//! envelope on opening, so that no member can pass another's ciphertext off as its own, or
//! carry it into another room. The envelope's signature covers the ciphertext: forgeries are
//! dropped before anything is decrypted.

mod keyring;

pub use keyring::{Keyring, Opened, Sealing};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use vodozemac::megolm::{InboundGroupSession, SessionConfig, SessionKey};

use crate::account::AccountId;
use crate::room::EventId;
pub use crate::room::event::{MAX_SEALED_BYTES, MAX_SESSION_ID_BYTES, Sealed};

/// The most bytes of a session key (vodozemac's signed ones are 229).
pub const MAX_KEY_BYTES: usize = 512;
/// The most control events a key's `since` cites.
pub const MAX_SINCE: usize = crate::room::MAX_PREV;
/// The most session keys held of one author in one room (a new session begins at each removal
/// from the room and each restart of the author's node): beyond, a member giving keys of
/// sessions made up on the spot could grow the keyring and the database without end.
pub const MAX_SESSIONS_PER_AUTHOR: usize = 4096;

/// What a [`Sealed`] holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plain {
    pub room: EventId,
    pub author: AccountId,
    pub seq: u64,
    pub text: String,
}

/// The key of one member's group session in one room, as it travels and as it is kept: enough
/// to read the session's messages from `index` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomKey {
    pub room: EventId,
    /// Whose session it is.
    pub author: AccountId,
    pub session: String,
    /// The room's control events the session's author knew when it began the session: a
    /// member passes the key on only once it knows them, so that it judges who may have it in
    /// a state at least as late as the author's.
    pub since: Vec<EventId>,
    /// The first message it reads.
    pub index: u32,
    /// The session key as its author made it: the ratchet at `index` and the session's public
    /// key, signed with the session's private key (Megolm's session-sharing format, vodozemac's
    /// `SessionKey`).
    #[serde(with = "crate::bytes")]
    pub key: Vec<u8>,
}

/// Why a key or a sealed message is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("the key is malformed, too large, or not signed by its session")]
    Malformed,
    #[error("the key is not the session it names")]
    WrongSession,
    #[error("the key does not belong to the session known here by that id")]
    Unconnected,
    #[error("too many sessions of this author in this room are held already")]
    TooMany,
}

/// Why a sealed message cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OpenError {
    /// No key for its session here (or none reaching back to its index): it may come.
    #[error("no key for it (yet)")]
    NoKey,
    /// It does not decrypt with the session's key, or does not say what its envelope says: it
    /// never will.
    #[error("it cannot be decrypted: {0}")]
    Broken(&'static str),
}

/// The message index `sealed` says it has in its session (`None`: malformed).
pub fn message_index(sealed: &Sealed) -> Option<u32> {
    vodozemac::megolm::MegolmMessage::from_bytes(&sealed.ciphertext).ok().map(|m| m.message_index())
}

impl RoomKey {
    /// Whether its sizes are within the bounds a key may take.
    pub fn in_bounds(&self) -> bool {
        self.key.len() <= MAX_KEY_BYTES && self.session.len() <= MAX_SESSION_ID_BYTES && self.since.len() <= MAX_SINCE
    }

    /// Checks the key's bounds and that it is the session it names; the inbound session.
    fn open(&self) -> Result<InboundGroupSession, KeyError> {
        if !self.in_bounds() {
            return Err(KeyError::Malformed);
        }
        // Signed by the session's own ed25519 key, whose public half is the session's id: nobody
        // but the session's author can make a key for it, whoever passes it on.
        let signed = SessionKey::from_bytes(&self.key).map_err(|_| KeyError::Malformed)?;
        let session = InboundGroupSession::new(&signed, SessionConfig::version_1());
        if session.session_id() != self.session {
            return Err(KeyError::WrongSession);
        }
        if session.first_known_index() != self.index {
            return Err(KeyError::Malformed);
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests;
