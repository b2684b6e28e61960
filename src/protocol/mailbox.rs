//! Mailboxes on the wire (`/meshchat/mailbox/1`): a request-response protocol between a node and
//! a mailbox (the bootstrap node, or a node run with `--mailbox`). A sender leaves a sealed
//! letter for a recipient who is offline ([`MailboxRequest::Leave`]); the recipient collects
//! its letters when it comes online ([`MailboxRequest::Collect`], page after page, each after
//! the position the last ended at) and says which it took
//! ([`MailboxRequest::Taken`]), and the mailbox deletes those.
//!
//! As with direct messages, the connection proves which peer asks, and every request carries
//! that peer's certificate ([`check_request`]): the mailbox hands letters only to the account
//! they are for, and counts what each sender left. The letters are sealed
//! ([`crate::mailbox::letter`]): the mailbox sees who wrote to whom and when, never the text.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::bounded;
use crate::account::AccountId;
use crate::cert::{AuthorityKey, CertCache, Certificate};
use crate::mailbox::letter::MAX_SEALED_BYTES;
use crate::protocol::dm::{CheckedDm, MAX_ID_BYTES};

/// The protocol name.
pub const PROTOCOL: &str = "/meshchat/mailbox/1";
/// The most letters one answer hands over (the rest wait for the next collection).
pub const MAX_LETTERS: usize = 16;
/// The most ids one `Taken` names.
pub const MAX_TAKEN: usize = 64;
/// The largest request accepted, in bytes (a certificate and a sealed letter fit below).
pub const MAX_REQUEST_BYTES: u64 = MAX_SEALED_BYTES as u64 + 8 * 1024;
/// The largest answer accepted, in bytes ([`MAX_LETTERS`] letters fit below).
pub const MAX_RESPONSE_BYTES: u64 = (MAX_LETTERS * (MAX_SEALED_BYTES + 256)) as u64;

/// What a node asks a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MailboxRequest {
    /// Keep this letter for `to`; the message inside was written at `written_ms` and has id
    /// `id` (the same as when it goes straight to `to`).
    Leave {
        certificate: Certificate,
        to: AccountId,
        id: String,
        written_ms: u64,
        #[serde(with = "crate::bytes")]
        sealed: Vec<u8>,
    },
    /// Hand over the letters kept for the certificate's account, oldest first, from those left
    /// after position `after` (0: from the first; else the `next` of the answer before).
    Collect {
        certificate: Certificate,
        #[serde(default)]
        after: u64,
    },
    /// These letters of the certificate's account were taken: delete them.
    Taken {
        certificate: Certificate,
        #[serde(deserialize_with = "bounded::first::<_, _, MAX_TAKEN>")]
        ids: Vec<String>,
    },
}

/// A letter as a mailbox hands it over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Letter {
    pub id: String,
    #[serde(with = "crate::bytes")]
    pub sealed: Vec<u8>,
}

/// A mailbox's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MailboxResponse {
    /// The letter is kept (or was already).
    Kept,
    /// Letters for the asker, oldest first; `more`: others wait behind them, handed over when
    /// collected after position `next` (letters left there for now do not hide them).
    Letters {
        #[serde(deserialize_with = "bounded::first::<_, _, MAX_LETTERS>")]
        letters: Vec<Letter>,
        more: bool,
        #[serde(default)]
        next: u64,
    },
    /// The letters named are deleted.
    Deleted,
    Refused(MailboxRefusal),
}

/// Why a mailbox refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Error)]
pub enum MailboxRefusal {
    #[error("the mailbox does not accept the sender's certificate")]
    BadCertificate,
    #[error("the mailbox does not know the recipient")]
    UnknownRecipient,
    #[error(
        "the mailbox keeps no more letters from this sender (to this recipient, or to all) until some are collected"
    )]
    SenderQuota,
    #[error("the mailbox keeps no more letters for this recipient until they collect theirs")]
    RecipientQuota,
    #[error("the message is older than the 14 days a mailbox keeps letters, or dated in the future")]
    TooOld,
    #[error("the letter is too large or its id malformed")]
    Malformed,
    /// Also when the account asked more often than the mailbox answers it.
    #[error("the mailbox cannot take the request right now (it is busy, or asked too often)")]
    Unavailable,
}

impl MailboxRequest {
    fn certificate(&self) -> &Certificate {
        match self {
            MailboxRequest::Leave { certificate, .. }
            | MailboxRequest::Collect { certificate, .. }
            | MailboxRequest::Taken { certificate, .. } => certificate,
        }
    }
}

/// Whether `id` is a message id as senders make them.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_BYTES && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Checks a request that came from the peer with binary id `peer`, at `now` (Unix seconds): the
/// certificate is signed by `authority`, names `peer` and is valid now; a letter and its id are
/// within their bounds. The asker.
pub fn check_request(
    request: &MailboxRequest,
    peer: &[u8],
    certs: &mut CertCache,
    authority: &AuthorityKey,
    now: u64,
) -> Result<CheckedDm, MailboxRefusal> {
    let from = certs.verify(request.certificate(), authority, peer, now).map_err(|_| MailboxRefusal::BadCertificate)?;
    let asker = CheckedDm { account: from.account, from: from.username.clone(), serial: from.serial };
    match request {
        MailboxRequest::Leave { id, sealed, .. } if !valid_id(id) || sealed.len() > MAX_SEALED_BYTES => {
            Err(MailboxRefusal::Malformed)
        }
        MailboxRequest::Taken { ids, .. } if !ids.iter().all(|id| valid_id(id)) => Err(MailboxRefusal::Malformed),
        _ => Ok(asker),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::Authority;
    use crate::testing::account_of;

    const NOW: u64 = 1_800_000_000;

    fn certificate(authority: &Authority, peer: &[u8]) -> Certificate {
        authority.issue(account_of("alice"), "alice", peer, NOW, 1)
    }

    #[test]
    fn only_a_certified_asker_within_bounds_is_heard() {
        let authority = Authority::from_secret(&[5; 32]);
        let key = authority.public();
        let mut certs = CertCache::default();
        let leave = |certificate: Certificate, id: &str, sealed: Vec<u8>| MailboxRequest::Leave {
            certificate,
            to: account_of("bob"),
            id: id.into(),
            written_ms: NOW * 1000,
            sealed,
        };
        let good = leave(certificate(&authority, b"peer-a"), "m-1", vec![0; 100]);
        assert_eq!(check_request(&good, b"peer-a", &mut certs, &key, NOW).unwrap().account, account_of("alice"));
        assert_eq!(check_request(&good, b"peer-b", &mut certs, &key, NOW), Err(MailboxRefusal::BadCertificate));
        let other = Authority::from_secret(&[6; 32]);
        let forged = leave(certificate(&other, b"peer-a"), "m-1", vec![0; 100]);
        assert_eq!(check_request(&forged, b"peer-a", &mut certs, &key, NOW), Err(MailboxRefusal::BadCertificate));
        let big = leave(certificate(&authority, b"peer-a"), "m-1", vec![0; MAX_SEALED_BYTES + 1]);
        assert_eq!(check_request(&big, b"peer-a", &mut certs, &key, NOW), Err(MailboxRefusal::Malformed));
        let bad_id = leave(certificate(&authority, b"peer-a"), "m 1; DROP", vec![0; 10]);
        assert_eq!(check_request(&bad_id, b"peer-a", &mut certs, &key, NOW), Err(MailboxRefusal::Malformed));
        let taken = MailboxRequest::Taken { certificate: certificate(&authority, b"peer-a"), ids: vec!["".into()] };
        assert_eq!(check_request(&taken, b"peer-a", &mut certs, &key, NOW), Err(MailboxRefusal::Malformed));
    }

    #[test]
    fn a_long_list_of_ids_is_cut_as_it_is_read() {
        let authority = Authority::from_secret(&[5; 32]);
        let ids: Vec<String> = (0..MAX_TAKEN * 3).map(|i| format!("m-{i}")).collect();
        let request = MailboxRequest::Taken { certificate: certificate(&authority, b"peer-a"), ids };
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &request).unwrap();
        let MailboxRequest::Taken { ids, .. } = cbor4ii::serde::from_slice(&bytes).unwrap() else { panic!() };
        assert_eq!(ids.len(), MAX_TAKEN);
    }

    #[test]
    fn a_collection_without_a_position_starts_from_the_first_letter() {
        // As nodes that knew no positions wrote them.
        #[derive(Serialize)]
        enum OldRequest {
            Collect { certificate: Certificate },
        }
        #[derive(Serialize)]
        enum OldResponse {
            Letters { letters: Vec<Letter>, more: bool },
        }
        let authority = Authority::from_secret(&[5; 32]);
        let certificate = certificate(&authority, b"peer-a");
        let bytes =
            cbor4ii::serde::to_vec(Vec::new(), &OldRequest::Collect { certificate: certificate.clone() }).unwrap();
        let request: MailboxRequest = cbor4ii::serde::from_slice(&bytes).unwrap();
        assert_eq!(request, MailboxRequest::Collect { certificate, after: 0 });
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &OldResponse::Letters { letters: vec![], more: true }).unwrap();
        let response: MailboxResponse = cbor4ii::serde::from_slice(&bytes).unwrap();
        assert_eq!(response, MailboxResponse::Letters { letters: vec![], more: true, next: 0 });
    }
}
