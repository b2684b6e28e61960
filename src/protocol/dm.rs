//! Direct messages on the wire (`/meshchat/dm/2`): a request-response protocol straight between
//! two peers over their Noise-encrypted connection. The request carries the sender's certificate
//! and one message; the response is the delivery receipt, or the reason it was refused.
//!
//! The connection already proves which peer sent the request, so the request needs no signature
//! of its own: the receiver checks that the certificate names that peer ([`check_request`]).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::account::AccountId;
use crate::cert::{AuthorityKey, CLOCK_SKEW_SECS, CertCache, Certificate};
use crate::room::event::MAX_TEXT_BYTES;

/// The protocol name.
pub const PROTOCOL: &str = "/meshchat/dm/2";
/// The largest request accepted, in bytes (a certificate and 4 KiB of text fit well below).
pub const MAX_REQUEST_BYTES: u64 = 16 * 1024;
/// The largest answer accepted, in bytes.
pub const MAX_RESPONSE_BYTES: u64 = 1024;
/// The longest message id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 64;

/// One direct message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmRequest {
    /// The sender's certificate: it must name the peer the request came from.
    pub certificate: Certificate,
    /// The account the sender means to reach (whatever it is called now).
    pub to: AccountId,
    /// Numbers the sender's messages to this receiver: 1, 2, 3, …
    pub seq: u64,
    /// Unique per message, chosen by the sender.
    pub id: String,
    /// Milliseconds since the Unix epoch, by the sender's clock.
    pub ts_ms: u64,
    pub text: String,
}

/// Why a receiver refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Error)]
pub enum DmRefusal {
    #[error("nobody is logged in there")]
    NotLoggedIn,
    #[error("the account there is another one")]
    WrongRecipient,
    #[error("the sender's certificate does not check out")]
    BadCertificate,
    #[error("the message is too long")]
    TooLong,
    #[error("the message id is malformed")]
    BadId,
    #[error("the message is older than one already received")]
    Stale,
    #[error("the receiver cannot store messages right now")]
    Unavailable,
    /// Added after the others: a sender that does not know it fails to read the answer, and
    /// its message stays in its outbox all the same.
    #[error("the message is dated more than 5 minutes ahead of the receiver's clock")]
    FromTheFuture,
}

/// The receiver's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DmResponse {
    /// The receipt: the message is stored on the receiver's side (or was already).
    Delivered,
    Refused(DmRefusal),
}

/// A request that passed [`check_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedDm {
    /// The sender's account, from the verified certificate.
    pub account: AccountId,
    /// The sender's username in that certificate.
    pub from: String,
    /// That certificate's serial.
    pub serial: u64,
}

/// Checks a request that came from the peer with binary id `peer`, for the account `me`
/// (`None`: nobody logged in), at `now` (Unix seconds): the certificate is signed by
/// `authority`, names `peer` and is valid now; the request is addressed to `me` (an account
/// that took a name `me` once had is someone else); id and text are within their limits; the
/// message is dated no further ahead of `now` than [`CLOCK_SKEW_SECS`] (however old: a message
/// may wait in its sender's outbox for days).
pub fn check_request(
    request: &DmRequest,
    peer: &[u8],
    me: Option<AccountId>,
    certs: &mut CertCache,
    authority: &AuthorityKey,
    now: u64,
) -> Result<CheckedDm, DmRefusal> {
    let me = me.ok_or(DmRefusal::NotLoggedIn)?;
    let from = certs.verify(&request.certificate, authority, peer, now).map_err(|_| DmRefusal::BadCertificate)?;
    if request.to != me {
        return Err(DmRefusal::WrongRecipient);
    }
    if request.text.len() > MAX_TEXT_BYTES {
        return Err(DmRefusal::TooLong);
    }
    if request.id.is_empty()
        || request.id.len() > MAX_ID_BYTES
        || !request.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(DmRefusal::BadId);
    }
    if request.ts_ms > now.saturating_add(CLOCK_SKEW_SECS).saturating_mul(1000) {
        return Err(DmRefusal::FromTheFuture);
    }
    Ok(CheckedDm { account: from.account, from: from.username.clone(), serial: from.serial })
}

/// What a receiver does with a checked message, given whether its id is stored already and the
/// highest sequence number stored from that sender on that peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// New and in order: store it, show it, confirm it.
    New,
    /// Seen before (a retry whose receipt was lost): confirm it again, show nothing.
    Duplicate,
    /// A new id with a number at or below one already received: refuse it.
    Stale,
}

/// The highest sequence number a receiver keeps (SQLite's integers are signed): a message
/// numbered beyond it is refused as stale, or it would be kept as a negative number that lets
/// lower numbers in again.
pub const MAX_SEQ: u64 = i64::MAX as u64;

/// Classifies a message with sequence number `seq` (see [`Arrival`]).
pub fn arrival(known_id: bool, seq: u64, last_seq: Option<u64>) -> Arrival {
    if known_id {
        Arrival::Duplicate
    } else if seq > MAX_SEQ || last_seq.is_some_and(|last| seq <= last) {
        Arrival::Stale
    } else {
        Arrival::New
    }
}

/// A fresh message id: 128 random bits in hex.
pub fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::Authority;
    use crate::testing::account_of;

    const NOW: u64 = 1_800_000_000;

    fn request(authority: &Authority, user: &str, peer: &[u8], to: &str) -> DmRequest {
        DmRequest {
            certificate: authority.issue(account_of(user), user, peer, NOW - 10, 1),
            to: account_of(to),
            seq: 1,
            id: new_id(),
            ts_ms: NOW * 1000,
            text: "hi".into(),
        }
    }

    /// Checks `req` as it came from `peer`, for the account of `me`, at `NOW`.
    fn check(req: &DmRequest, peer: &[u8], me: &str, authority: &Authority) -> Result<CheckedDm, DmRefusal> {
        check_request(req, peer, Some(account_of(me)), &mut CertCache::default(), &authority.public(), NOW)
    }

    #[test]
    fn a_certificate_naming_the_sending_peer_is_accepted() {
        let authority = Authority::from_secret(&[7; 32]);
        let req = request(&authority, "alice", b"peer-a", "Bob");
        let checked = check(&req, b"peer-a", "bob", &authority).unwrap();
        assert_eq!(checked.from, "alice");
    }

    #[test]
    fn a_certificate_of_another_peer_is_refused() {
        // mallory sends from her own peer with alice's certificate.
        let authority = Authority::from_secret(&[7; 32]);
        let req = request(&authority, "alice", b"peer-a", "bob");
        let refusal = check(&req, b"peer-m", "bob", &authority);
        assert_eq!(refusal, Err(DmRefusal::BadCertificate));
    }

    #[test]
    fn a_certificate_from_another_authority_is_refused() {
        let authority = Authority::from_secret(&[7; 32]);
        let forger = Authority::from_secret(&[9; 32]);
        let req = request(&forger, "alice", b"peer-a", "bob");
        let refusal = check(&req, b"peer-a", "bob", &authority);
        assert_eq!(refusal, Err(DmRefusal::BadCertificate));
    }

    #[test]
    fn an_expired_certificate_is_refused() {
        let authority = Authority::from_secret(&[7; 32]);
        let req = request(&authority, "alice", b"peer-a", "bob");
        let refusal = check_request(
            &req,
            b"peer-a",
            Some(account_of("bob")),
            &mut CertCache::default(),
            &authority.public(),
            NOW + 365 * 24 * 3600,
        );
        assert_eq!(refusal, Err(DmRefusal::BadCertificate));
    }

    #[test]
    fn requests_for_someone_else_or_nobody_are_refused() {
        let authority = Authority::from_secret(&[7; 32]);
        let req = request(&authority, "alice", b"peer-a", "bob");
        let key = authority.public();
        assert_eq!(check(&req, b"peer-a", "carol", &authority), Err(DmRefusal::WrongRecipient));
        assert_eq!(
            check_request(&req, b"peer-a", None, &mut CertCache::default(), &key, NOW),
            Err(DmRefusal::NotLoggedIn)
        );
    }

    #[test]
    fn oversized_text_and_bad_ids_are_refused() {
        let authority = Authority::from_secret(&[7; 32]);
        let mut req = request(&authority, "alice", b"peer-a", "bob");
        req.text = "x".repeat(MAX_TEXT_BYTES + 1);
        assert_eq!(check(&req, b"peer-a", "bob", &authority), Err(DmRefusal::TooLong));
        let mut req = request(&authority, "alice", b"peer-a", "bob");
        req.id = "\x1b[2J".into();
        assert_eq!(check(&req, b"peer-a", "bob", &authority), Err(DmRefusal::BadId));
        req.id = String::new();
        assert_eq!(check(&req, b"peer-a", "bob", &authority), Err(DmRefusal::BadId));
    }

    #[test]
    fn a_message_dated_ahead_of_the_clock_skew_is_refused_and_an_old_one_kept() {
        let authority = Authority::from_secret(&[7; 32]);
        let mut req = request(&authority, "alice", b"peer-a", "bob");
        let at = |ts_ms: u64| DmRequest { ts_ms, ..req.clone() };
        let skew_ms = CLOCK_SKEW_SECS * 1000;
        assert!(check(&at(NOW * 1000 + skew_ms), b"peer-a", "bob", &authority).is_ok(), "within the skew");
        for ahead in [NOW * 1000 + skew_ms + 1, NOW * 1000 + 24 * 3600 * 1000, i64::MAX as u64 + 1, u64::MAX] {
            assert_eq!(check(&at(ahead), b"peer-a", "bob", &authority), Err(DmRefusal::FromTheFuture), "{ahead}");
        }
        // Kept in an outbox for weeks, or from a sender whose clock was wrong the other way.
        req.ts_ms = NOW * 1000 - 30 * 24 * 3600 * 1000;
        assert!(check(&req, b"peer-a", "bob", &authority).is_ok());
        req.ts_ms = 0;
        assert!(check(&req, b"peer-a", "bob", &authority).is_ok());
        let refusal = DmRefusal::FromTheFuture.to_string();
        assert!(refusal.contains("ahead") && refusal.contains("clock"), "{refusal}");
    }

    #[test]
    fn arrivals_are_shown_once_and_in_order() {
        assert_eq!(arrival(false, 1, None), Arrival::New);
        assert_eq!(arrival(false, 2, Some(1)), Arrival::New);
        assert_eq!(arrival(false, 9, Some(1)), Arrival::New);
        assert_eq!(arrival(true, 2, Some(2)), Arrival::Duplicate);
        assert_eq!(arrival(false, 2, Some(2)), Arrival::Stale);
        assert_eq!(arrival(false, 1, Some(5)), Arrival::Stale);
        assert_eq!(arrival(false, MAX_SEQ + 1, Some(5)), Arrival::Stale, "beyond what can be kept");
        assert_eq!(arrival(false, MAX_SEQ, Some(5)), Arrival::New);
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::cert::{Authority, CERT_LIFETIME_SECS, CLOCK_SKEW_SECS};
    use crate::testing::{
        DECODE_MEMORY_LIMIT, account_of, any_bytes, any_certificate, any_text, deep_nesting, huge_length_inputs,
        mutated, peak_memory,
    };

    const NOW: u64 = 1_800_000_000;
    const ISSUER: [u8; 32] = [7; 32];
    const FORGER: [u8; 32] = [9; 32];
    const PEERS: &[&[u8]] = &[b"peer-a", b"peer-b", b""];
    const USERS: &[&str] = &["alice", "Bob", "bob", "BOB", "b\u{f6}b", ""];

    /// Who signed a request's certificate.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Signer {
        Issuer,
        Forger,
        Nobody,
    }

    fn any_id() -> impl Strategy<Value = String> {
        prop_oneof![Just(new_id()), "[a-zA-Z0-9-]{0,70}", any_text(20),]
    }

    /// Times around the check's clock, and any.
    fn any_ts_ms() -> impl Strategy<Value = u64> {
        prop_oneof![any::<u64>(), 0..(NOW + 2 * CERT_LIFETIME_SECS) * 1000]
    }

    /// Texts around the length limit too, in one- and multi-byte characters.
    fn any_message_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any_text(20),
            (MAX_TEXT_BYTES - 4..MAX_TEXT_BYTES + 4).prop_map(|n| "x".repeat(n)),
            (MAX_TEXT_BYTES / 2 - 2..MAX_TEXT_BYTES / 2 + 2).prop_map(|n| "\u{e9}".repeat(n)),
        ]
    }

    /// A request whose certificate was issued by the authority, by another one, or is noise;
    /// with the certificate's peer, user and issue time.
    fn any_request() -> impl Strategy<Value = (DmRequest, Signer)> {
        let signer = prop_oneof![Just(Signer::Issuer), Just(Signer::Forger), Just(Signer::Nobody)];
        (
            signer,
            prop::sample::select(PEERS),
            prop::sample::select(USERS),
            NOW - CERT_LIFETIME_SECS..NOW + CERT_LIFETIME_SECS,
            any_certificate(),
            (prop::sample::select(USERS), any::<u64>(), any_id(), any_ts_ms(), any_message_text()),
        )
            .prop_map(|(signer, peer, user, issued_at, noise, (to, seq, id, ts_ms, text))| {
                let certificate = match signer {
                    Signer::Issuer => Authority::from_secret(&ISSUER).issue(account_of(user), user, peer, issued_at, 1),
                    Signer::Forger => Authority::from_secret(&FORGER).issue(account_of(user), user, peer, issued_at, 1),
                    Signer::Nobody => noise,
                };
                (DmRequest { certificate, to: account_of(to), seq, id, ts_ms, text }, signer)
            })
    }

    fn encode<T: Serialize>(value: &T) -> Vec<u8> {
        cbor4ii::serde::to_vec(Vec::new(), value).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn only_requests_certified_for_their_peer_and_within_limits_are_accepted(
            (request, signer) in any_request(),
            peer in prop::sample::select(PEERS),
            me in prop::option::of(prop::sample::select(USERS)),
            now in prop_oneof![
                NOW - 2 * CERT_LIFETIME_SECS..NOW + 2 * CERT_LIFETIME_SECS,
                Just(u64::MAX),
                any::<u64>(),
            ],
        ) {
            let authority = Authority::from_secret(&ISSUER).public();
            let mut certs = CertCache::default();
            let me = me.map(account_of);
            let result = check_request(&request, peer, me, &mut certs, &authority, now);
            let cert = &request.certificate.body;
            let expected = me.is_some()
                && signer == Signer::Issuer
                && cert.peer_id == peer
                && now < cert.expires_at
                && cert.issued_at <= now.saturating_add(CLOCK_SKEW_SECS)
                && me == Some(request.to)
                && request.text.len() <= MAX_TEXT_BYTES
                && !request.id.is_empty()
                && request.id.len() <= MAX_ID_BYTES
                && request.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && request.ts_ms <= now.saturating_add(CLOCK_SKEW_SECS).saturating_mul(1000);
            prop_assert_eq!(result.is_ok(), expected, "{:?}", result);
            if let Ok(checked) = result {
                prop_assert_eq!(checked.from, cert.username.clone());
            }
            // The cache, now warm, answers the same.
            let again = check_request(&request, peer, me, &mut certs, &authority, now);
            prop_assert_eq!(again.is_ok(), expected);
        }

        #[test]
        fn any_bytes_decode_without_panicking(
            bytes in prop_oneof![
                any_bytes(512),
                any_request().prop_flat_map(|(request, _)| mutated(encode(&request))),
                prop_oneof![
                    Just(DmResponse::Delivered),
                    Just(DmResponse::Refused(DmRefusal::Stale)),
                    Just(DmResponse::Refused(DmRefusal::BadId)),
                ]
                .prop_flat_map(|response| mutated(encode(&response))),
            ],
        ) {
            if let Ok(request) = cbor4ii::serde::from_slice::<DmRequest>(&bytes) {
                prop_assert_eq!(cbor4ii::serde::from_slice::<DmRequest>(&encode(&request)).ok(), Some(request.clone()));
                let authority = Authority::from_secret(&ISSUER).public();
                let _ = check_request(&request, b"peer-a", Some(account_of("bob")), &mut CertCache::default(), &authority, NOW);
            }
            if let Ok(response) = cbor4ii::serde::from_slice::<DmResponse>(&bytes) {
                prop_assert_eq!(cbor4ii::serde::from_slice::<DmResponse>(&encode(&response)).ok(), Some(response));
            }
        }
    }

    #[test]
    fn huge_announced_lengths_fail_fast_and_small() {
        let fields = ["certificate", "to", "id", "text", "body", "signature", "Refused"];
        for input in huge_length_inputs(&fields).into_iter().chain(deep_nesting("certificate", 10_000)) {
            let (decoded, peak) = peak_memory(|| cbor4ii::serde::from_slice::<DmRequest>(&input));
            assert!(decoded.is_err(), "{input:x?}");
            assert!(peak < DECODE_MEMORY_LIMIT, "{peak} bytes for {input:x?}");
            let (decoded, peak) = peak_memory(|| cbor4ii::serde::from_slice::<DmResponse>(&input));
            assert!(decoded.is_err(), "{input:x?}");
            assert!(peak < DECODE_MEMORY_LIMIT, "{peak} bytes for {input:x?}");
        }
    }

    #[test]
    fn a_full_size_request_is_bounded() {
        // The largest request the codec reads, as a certificate signature of one-byte integers.
        let size = MAX_REQUEST_BYTES as usize;
        let mut bytes = vec![0xa1];
        bytes.extend(crate::testing::cbor_text("certificate"));
        bytes.extend_from_slice(&[0xa1]);
        bytes.extend(crate::testing::cbor_text("signature"));
        let count = size - bytes.len() - 9;
        bytes.extend(crate::testing::cbor_head(4, count as u64));
        bytes.resize(size, 0x01);
        let (decoded, peak) = peak_memory(|| cbor4ii::serde::from_slice::<DmRequest>(&bytes));
        assert!(decoded.is_err());
        assert!(peak < 4 * size, "{peak}");
    }
}
