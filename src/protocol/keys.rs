//! Room keys on the wire (`/meshchat/keys/1`): a request-response protocol straight between two
//! members over their Noise-encrypted connection, which carries the keys of group sessions
//! ([`crate::e2e::RoomKey`]). A member gives its own session's key to the others
//! ([`KeysRequest::Give`]); a member missing a key asks one who may hold it
//! ([`KeysRequest::Ask`]), who answers with what it holds and may pass on.
//!
//! As with direct messages, the connection proves which peer sent the request, and the request
//! carries that peer's certificate ([`check_request`]). Whether the asker may have a key (a
//! member now, in a state that knows what the session's author knew) is the node's to decide
//! from the room's fold, never here.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::cert::{AuthorityKey, CertCache, Certificate};
use crate::e2e::{MAX_SESSION_ID_BYTES, RoomKey};
use crate::protocol::dm::CheckedDm;
use crate::room::EventId;

/// The protocol name.
pub const PROTOCOL: &str = "/meshchat/keys/1";
/// The most keys a request gives, or an answer carries.
pub const MAX_KEYS: usize = 64;
/// The most sessions one request asks for.
pub const MAX_ASKED: usize = 64;
/// The largest request or answer accepted, in bytes (64 keys with their bounds fit below).
pub const MAX_REQUEST_BYTES: u64 = 128 * 1024;
pub const MAX_RESPONSE_BYTES: u64 = 128 * 1024;

/// What a member sends another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeysRequest {
    /// The keys of the sender's own sessions: the receiver is a member they are for.
    Give { certificate: Certificate, keys: Vec<RoomKey> },
    /// The sender misses the keys of these sessions in `room`.
    Ask { certificate: Certificate, room: EventId, sessions: Vec<String> },
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeysResponse {
    /// The keys given were taken (or known).
    Taken,
    /// Of the keys asked for, those held and the asker may have (maybe none).
    Keys(Vec<RoomKey>),
    Refused(KeysRefusal),
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Error)]
pub enum KeysRefusal {
    #[error("nobody is logged in there")]
    NotLoggedIn,
    #[error("the sender's certificate does not check out")]
    BadCertificate,
    #[error("too many keys, or a key out of bounds")]
    TooMany,
    #[error("a key given is not the giver's own")]
    NotTheAuthor,
    #[error("the asker is not a member of the room there")]
    NotMember,
    #[error("the room is not known there")]
    NoSuchRoom,
}

impl KeysRequest {
    fn certificate(&self) -> &Certificate {
        match self {
            KeysRequest::Give { certificate, .. } | KeysRequest::Ask { certificate, .. } => certificate,
        }
    }
}

/// Checks a request that came from the peer with binary id `peer`, at `now` (Unix seconds):
/// the certificate is signed by `authority`, names `peer` and is valid now; counts and sizes
/// are within their bounds; the keys given are the sender's own. The sender.
pub fn check_request(
    request: &KeysRequest,
    peer: &[u8],
    certs: &mut CertCache,
    authority: &AuthorityKey,
    now: u64,
) -> Result<CheckedDm, KeysRefusal> {
    let from = certs.verify(request.certificate(), authority, peer, now).map_err(|_| KeysRefusal::BadCertificate)?;
    let sender = CheckedDm { account: from.account, from: from.username.clone(), serial: from.serial };
    match request {
        KeysRequest::Give { keys, .. } => {
            if keys.len() > MAX_KEYS || !keys.iter().all(RoomKey::in_bounds) {
                return Err(KeysRefusal::TooMany);
            }
            if keys.iter().any(|key| key.author != sender.account) {
                return Err(KeysRefusal::NotTheAuthor);
            }
        }
        KeysRequest::Ask { sessions, .. } => {
            if sessions.len() > MAX_ASKED || sessions.iter().any(|s| s.len() > MAX_SESSION_ID_BYTES) {
                return Err(KeysRefusal::TooMany);
            }
        }
    }
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::Authority;
    use crate::e2e::{MAX_KEY_BYTES, MAX_SINCE};
    use crate::testing::account_of;

    const NOW: u64 = 1_800_000_000;

    fn key_of(author: &str) -> RoomKey {
        RoomKey {
            room: EventId::from_bytes([1; 32]),
            author: account_of(author),
            session: "s".into(),
            since: vec![EventId::from_bytes([1; 32])],
            index: 0,
            key: vec![0; 165],
        }
    }

    fn check(request: &KeysRequest, peer: &[u8], authority: &Authority) -> Result<CheckedDm, KeysRefusal> {
        check_request(request, peer, &mut CertCache::default(), &authority.public(), NOW)
    }

    #[test]
    fn a_member_gives_its_own_keys_only_and_within_bounds() {
        let authority = Authority::from_secret(&[7; 32]);
        let certificate = authority.issue(account_of("alice"), "alice", b"peer-a", NOW - 10, 1);
        let give = |keys| KeysRequest::Give { certificate: certificate.clone(), keys };
        assert_eq!(check(&give(vec![key_of("alice")]), b"peer-a", &authority).unwrap().from, "alice");
        assert_eq!(check(&give(vec![key_of("bob")]), b"peer-a", &authority), Err(KeysRefusal::NotTheAuthor));
        assert_eq!(check(&give(vec![key_of("alice")]), b"peer-m", &authority), Err(KeysRefusal::BadCertificate));
        let many = vec![key_of("alice"); MAX_KEYS + 1];
        assert_eq!(check(&give(many), b"peer-a", &authority), Err(KeysRefusal::TooMany));
        let large = RoomKey { key: vec![0; MAX_KEY_BYTES + 1], ..key_of("alice") };
        assert_eq!(check(&give(vec![large]), b"peer-a", &authority), Err(KeysRefusal::TooMany));
        let ask = |sessions| KeysRequest::Ask { certificate: certificate.clone(), room: key_of("a").room, sessions };
        assert!(check(&ask(vec!["s".into()]), b"peer-a", &authority).is_ok());
        assert_eq!(check(&ask(vec!["s".into(); MAX_ASKED + 1]), b"peer-a", &authority), Err(KeysRefusal::TooMany));
    }

    #[test]
    fn the_largest_request_fits_its_bound() {
        let authority = Authority::from_secret(&[7; 32]);
        let certificate = authority.issue(account_of("alice"), "alice", b"peer-a", NOW - 10, 1);
        let key = RoomKey {
            session: "s".repeat(MAX_SESSION_ID_BYTES),
            since: vec![EventId::from_bytes([1; 32]); MAX_SINCE],
            key: vec![0; MAX_KEY_BYTES],
            ..key_of("alice")
        };
        let request = KeysRequest::Give { certificate, keys: vec![key.clone(); MAX_KEYS] };
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &request).unwrap();
        assert!(bytes.len() as u64 <= MAX_REQUEST_BYTES, "{} bytes", bytes.len());
        let answer = cbor4ii::serde::to_vec(Vec::new(), &KeysResponse::Keys(vec![key; MAX_KEYS])).unwrap();
        assert!(answer.len() as u64 <= MAX_RESPONSE_BYTES, "{} bytes", answer.len());
    }
}
