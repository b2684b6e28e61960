//! Certificates that bind an account (its stable id and its current username) to a peer: issued
//! by the bootstrap node's authority key, verified offline by every node. Pure code: no I/O, no clock (the time is passed in).
//!
//! The signature covers a fixed, length-prefixed binary encoding of the body with a domain
//! prefix, so no serialisation library's choices can change what is signed.

use std::collections::HashMap;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use libp2p::PeerId;
use libp2p::identity::PublicKey;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::account::AccountId;

/// How long a certificate is valid after it is issued, in seconds (12 hours).
pub const CERT_LIFETIME_SECS: u64 = 12 * 60 * 60;
/// Certificates issued this many seconds in the future are still accepted (clock skew).
pub const CLOCK_SKEW_SECS: u64 = 5 * 60;
/// Domain separation for the signed bytes.
const SIGNING_CONTEXT: &[u8] = b"meshchat certificate v2\0";
/// Usernames in certificates are at most this long (bytes); peer ids at most this long.
const MAX_FIELD_BYTES: usize = 128;

/// What a certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertBody {
    /// The account's stable id: what everything that refers to a person keys on.
    pub account: AccountId,
    /// The account's username when the certificate was issued: a label.
    pub username: String,
    /// The peer's id, in its binary form.
    pub peer_id: Vec<u8>,
    /// Seconds since the Unix epoch.
    pub issued_at: u64,
    pub expires_at: u64,
    /// Unique per authority, increasing.
    pub serial: u64,
}

impl CertBody {
    fn signing_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SIGNING_CONTEXT.len() + 64 + self.username.len() + self.peer_id.len());
        out.extend_from_slice(SIGNING_CONTEXT);
        for field in [self.account.as_bytes(), self.username.as_bytes(), &self.peer_id[..]] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field);
        }
        for number in [self.issued_at, self.expires_at, self.serial] {
            out.extend_from_slice(&number.to_be_bytes());
        }
        out
    }
}

/// A signed [`CertBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub body: CertBody,
    pub signature: Vec<u8>,
}

/// Why a certificate is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertError {
    #[error("the certificate's signature is not the bootstrap node's")]
    BadSignature,
    #[error("the certificate was issued to another peer")]
    WrongPeer,
    #[error("the certificate expired")]
    Expired,
    #[error("the certificate is not valid yet")]
    NotYetValid,
    #[error("the certificate is malformed")]
    Malformed,
}

/// The public half of an authority key: what nodes pin and verify against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthorityKey(VerifyingKey);

impl AuthorityKey {
    /// From the 32 bytes of an ed25519 public key.
    pub fn from_bytes(bytes: &[u8]) -> Option<AuthorityKey> {
        let bytes: [u8; 32] = bytes.try_into().ok()?;
        VerifyingKey::from_bytes(&bytes).ok().map(AuthorityKey)
    }

    /// The authority key of a peer whose libp2p key is `key` (a bootstrap node signs with its
    /// node key), when it is an ed25519 key.
    pub fn of_peer(key: &PublicKey) -> Option<AuthorityKey> {
        key.clone().try_into_ed25519().ok().and_then(|k| AuthorityKey::from_bytes(&k.to_bytes()))
    }

    /// Checks that this key made `signature` over `bytes`.
    fn check(&self, bytes: &[u8], signature: &[u8]) -> Result<(), CertError> {
        let signature: [u8; 64] = signature.try_into().map_err(|_| CertError::Malformed)?;
        self.0.verify_strict(bytes, &Signature::from_bytes(&signature)).map_err(|_| CertError::BadSignature)
    }

    /// The 32 bytes of the key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Lower-case hex, as in `authority.pub` files and `ready` events.
    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0.to_bytes())
    }

    /// Parses [`Self::to_hex`]'s form (surrounding white space allowed).
    pub fn from_hex(text: &str) -> Option<AuthorityKey> {
        let bytes: [u8; 32] = crate::hex::decode(text.trim())?;
        Self::from_bytes(&bytes)
    }
}

/// The signing side: held by the bootstrap node only.
pub struct Authority {
    key: SigningKey,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").field("public", &self.public().to_hex()).finish_non_exhaustive()
    }
}

impl Authority {
    /// From the 32-byte ed25519 secret key.
    pub fn from_secret(secret: &[u8; 32]) -> Authority {
        Authority { key: SigningKey::from_bytes(secret) }
    }

    /// The key nodes verify against.
    pub fn public(&self) -> AuthorityKey {
        AuthorityKey(self.key.verifying_key())
    }

    /// Issues a certificate for account `account`, now called `username`, on peer `peer_id`,
    /// valid from `now` for [`CERT_LIFETIME_SECS`].
    pub fn issue(&self, account: AccountId, username: &str, peer_id: &[u8], now: u64, serial: u64) -> Certificate {
        self.issue_for(account, username, peer_id, now, serial, CERT_LIFETIME_SECS)
    }

    /// [`Self::issue`], valid for `lifetime` seconds.
    pub fn issue_for(
        &self,
        account: AccountId,
        username: &str,
        peer_id: &[u8],
        now: u64,
        serial: u64,
        lifetime: u64,
    ) -> Certificate {
        let body = CertBody {
            account,
            username: username.to_string(),
            peer_id: peer_id.to_vec(),
            issued_at: now,
            expires_at: now.saturating_add(lifetime),
            serial,
        };
        let signature = self.key.sign(&body.signing_bytes()).to_bytes().to_vec();
        Certificate { body, signature }
    }
}

impl Certificate {
    /// Checks that `authority` signed this certificate for peer `peer_id` and that it is valid
    /// at `now`. Returns what it vouches for.
    pub fn verify(&self, authority: &AuthorityKey, peer_id: &[u8], now: u64) -> Result<&CertBody, CertError> {
        if self.body.username.len() > MAX_FIELD_BYTES || self.body.peer_id.len() > MAX_FIELD_BYTES {
            return Err(CertError::Malformed);
        }
        authority.check(&self.body.signing_bytes(), &self.signature)?;
        self.check_use(peer_id, now)
    }

    /// The checks besides the signature: the certificate names `peer_id` and is valid at `now`.
    fn check_use(&self, peer_id: &[u8], now: u64) -> Result<&CertBody, CertError> {
        if self.body.peer_id != peer_id {
            return Err(CertError::WrongPeer);
        }
        if now >= self.body.expires_at {
            return Err(CertError::Expired);
        }
        if self.body.issued_at > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(CertError::NotYetValid);
        }
        Ok(&self.body)
    }

    /// Seconds until expiry at `now` (0 when expired).
    pub fn remaining(&self, now: u64) -> u64 {
        self.body.expires_at.saturating_sub(now)
    }

    /// How long the certificate was issued for, in seconds.
    pub fn lifetime(&self) -> u64 {
        self.body.expires_at.saturating_sub(self.body.issued_at)
    }
}

/// How many certificates (and as many keys) a [`CertCache`] remembers before it starts afresh.
pub const CERT_CACHE_SIZE: usize = 4096;

/// Certificates whose authority signature checked out already, and the public keys peers sign
/// with, decoded already. A peer presents the same certificate and key with every message;
/// checking the signature and decoding the key (a point decompression) once is enough. What
/// depends on the use — the peer, the time, each message's own signature — is still checked
/// every time.
#[derive(Debug, Default)]
pub struct CertCache {
    /// By signature: the authority that signed and the body it signed.
    checked: HashMap<Vec<u8>, ([u8; 32], CertBody)>,
    /// By their protobuf encoding: peers' public keys and the peer ids they give.
    keys: HashMap<Vec<u8>, (PublicKey, PeerId)>,
}

impl CertCache {
    /// [`Certificate::verify`], skipping the signature when this very certificate was checked
    /// against `authority` before.
    pub fn verify<'c>(
        &mut self,
        certificate: &'c Certificate,
        authority: &AuthorityKey,
        peer_id: &[u8],
        now: u64,
    ) -> Result<&'c CertBody, CertError> {
        let authority_bytes = authority.to_bytes();
        let known = self
            .checked
            .get(&certificate.signature)
            .is_some_and(|(signer, body)| *signer == authority_bytes && *body == certificate.body);
        if known {
            return certificate.check_use(peer_id, now);
        }
        let body = certificate.verify(authority, peer_id, now)?;
        if self.checked.len() >= CERT_CACHE_SIZE {
            self.checked.clear();
        }
        self.checked.insert(certificate.signature.clone(), (authority_bytes, certificate.body.clone()));
        Ok(body)
    }

    /// The public key a peer's protobuf `encoded` bytes hold, and its peer id; `None` when they
    /// do not decode.
    pub fn peer_key(&mut self, encoded: &[u8]) -> Option<(PublicKey, PeerId)> {
        if let Some(known) = self.keys.get(encoded) {
            return Some(known.clone());
        }
        let public = PublicKey::try_decode_protobuf(encoded).ok()?;
        let peer = public.to_peer_id();
        if self.keys.len() >= CERT_CACHE_SIZE {
            self.keys.clear();
        }
        self.keys.insert(encoded.to_vec(), (public.clone(), peer));
        Some((public, peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn the_cache_checks_use_every_time_and_signatures_once() {
        let a = authority(1);
        let cert = a.issue(ALICE, "alice", b"peer-a", NOW, 1);
        let mut cache = CertCache::default();
        assert_eq!(cache.verify(&cert, &a.public(), b"peer-a", NOW), Ok(&cert.body));
        assert_eq!(cache.verify(&cert, &a.public(), b"peer-a", NOW + 1), Ok(&cert.body));
        // Still checked on every use: the peer, the time.
        assert_eq!(cache.verify(&cert, &a.public(), b"peer-b", NOW), Err(CertError::WrongPeer));
        assert_eq!(cache.verify(&cert, &a.public(), b"peer-a", NOW + CERT_LIFETIME_SECS), Err(CertError::Expired));
        // Another authority, or a body changed under a known signature, is checked in full.
        let b = authority(2);
        assert_eq!(cache.verify(&cert, &b.public(), b"peer-a", NOW), Err(CertError::BadSignature));
        let mut forged = cert.clone();
        forged.body.username = "mallory".into();
        assert_eq!(cache.verify(&forged, &a.public(), b"peer-a", NOW), Err(CertError::BadSignature));
    }

    fn authority(seed: u8) -> Authority {
        Authority::from_secret(&[seed; 32])
    }

    const ALICE: AccountId = AccountId::from_bytes([0xa1; 16]);

    #[test]
    fn a_certificate_verifies_for_its_peer() {
        let auth = authority(1);
        let cert = auth.issue(ALICE, "alice", b"peer-a", NOW, 7);
        assert_eq!(cert.verify(&auth.public(), b"peer-a", NOW + 60), Ok(&cert.body));
        assert_eq!(cert.body.expires_at, NOW + CERT_LIFETIME_SECS);
        assert_eq!(cert.remaining(NOW + 60), CERT_LIFETIME_SECS - 60);
    }

    #[test]
    fn another_authority_is_refused() {
        let cert = authority(1).issue(ALICE, "alice", b"peer-a", NOW, 1);
        assert_eq!(cert.verify(&authority(2).public(), b"peer-a", NOW), Err(CertError::BadSignature));
    }

    #[test]
    fn another_peer_is_refused() {
        let auth = authority(1);
        let cert = auth.issue(ALICE, "alice", b"peer-a", NOW, 1);
        assert_eq!(cert.verify(&auth.public(), b"peer-b", NOW), Err(CertError::WrongPeer));
    }

    #[test]
    fn expired_and_future_certificates_are_refused() {
        let auth = authority(1);
        let cert = auth.issue(ALICE, "alice", b"peer-a", NOW, 1);
        assert_eq!(cert.verify(&auth.public(), b"peer-a", NOW + CERT_LIFETIME_SECS), Err(CertError::Expired));
        assert_eq!(cert.verify(&auth.public(), b"peer-a", NOW - CLOCK_SKEW_SECS - 1), Err(CertError::NotYetValid));
        assert!(cert.verify(&auth.public(), b"peer-a", NOW - CLOCK_SKEW_SECS + 1).is_ok());
    }

    #[test]
    fn any_altered_byte_is_refused() {
        let auth = authority(1);
        let cert = auth.issue(ALICE, "alice", b"peer-a", NOW, 1);
        let mut altered = cert.clone();
        altered.body.username = "alicf".into();
        assert_eq!(altered.verify(&auth.public(), b"peer-a", NOW), Err(CertError::BadSignature));
        let mut altered = cert.clone();
        altered.body.account = AccountId::from_bytes([0xb0; 16]);
        assert_eq!(altered.verify(&auth.public(), b"peer-a", NOW), Err(CertError::BadSignature));
        let mut altered = cert.clone();
        altered.body.expires_at += 1;
        assert_eq!(altered.verify(&auth.public(), b"peer-a", NOW), Err(CertError::BadSignature));
        let mut altered = cert.clone();
        altered.body.serial ^= 1;
        assert_eq!(altered.verify(&auth.public(), b"peer-a", NOW), Err(CertError::BadSignature));
        for i in 0..cert.signature.len() {
            let mut altered = cert.clone();
            altered.signature[i] ^= 0x01;
            assert!(altered.verify(&auth.public(), b"peer-a", NOW).is_err(), "signature byte {i}");
        }
        let mut altered = cert.clone();
        altered.signature.pop();
        assert_eq!(altered.verify(&auth.public(), b"peer-a", NOW), Err(CertError::Malformed));
    }

    #[test]
    fn length_prefixes_keep_fields_apart() {
        // "ab" + "c" and "a" + "bc" must not sign the same bytes.
        let a = CertBody {
            account: ALICE,
            username: "ab".into(),
            peer_id: b"c".to_vec(),
            issued_at: 0,
            expires_at: 0,
            serial: 0,
        };
        let b = CertBody {
            account: ALICE,
            username: "a".into(),
            peer_id: b"bc".to_vec(),
            issued_at: 0,
            expires_at: 0,
            serial: 0,
        };
        assert_ne!(a.signing_bytes(), b.signing_bytes());
    }

    #[test]
    fn authority_keys_round_trip_through_hex() {
        let key = authority(3).public();
        assert_eq!(AuthorityKey::from_hex(&format!("{}\n", key.to_hex())), Some(key));
        assert_eq!(AuthorityKey::from_hex("zz"), None);
        assert_eq!(AuthorityKey::from_hex(&"g".repeat(64)), None);
        let signed = format!("+{}", &key.to_hex()[1..]);
        assert_eq!(AuthorityKey::from_hex(&signed), None, "{signed}");
    }

    #[test]
    fn the_end_of_time_is_refused_not_a_panic() {
        let auth = authority(1);
        let cert = auth.issue(ALICE, "alice", b"peer-a", u64::MAX - 1, 1);
        assert_eq!(cert.body.expires_at, u64::MAX);
        assert_eq!(cert.verify(&auth.public(), b"peer-a", u64::MAX - 1), Ok(&cert.body));
        assert_eq!(cert.verify(&auth.public(), b"peer-a", u64::MAX), Err(CertError::Expired));
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{any_bytes, any_certificate, any_text};

    /// Signs any body, also ones [`Authority::issue`] would not make.
    fn sign(authority: &Authority, body: CertBody) -> Certificate {
        let signature = authority.key.sign(&body.signing_bytes()).to_bytes().to_vec();
        Certificate { body, signature }
    }

    fn any_body() -> impl Strategy<Value = CertBody> {
        (any::<[u8; 16]>(), any_text(8), any_bytes(40), 0u64..1 << 40, 1u64..1 << 20, any::<u64>()).prop_map(
            |(account, username, peer_id, issued_at, lifetime, serial)| CertBody {
                account: AccountId::from_bytes(account),
                username,
                peer_id,
                issued_at,
                expires_at: issued_at + lifetime,
                serial,
            },
        )
    }

    /// One field of a certificate changed: which one, and entropy for the new value.
    #[derive(Debug, Clone)]
    enum Change {
        Account([u8; 16]),
        Username(String),
        PeerId(Vec<u8>),
        IssuedAt(u64),
        ExpiresAt(u64),
        Serial(u64),
        SignatureByte(usize, u8),
    }

    fn any_change() -> impl Strategy<Value = Change> {
        prop_oneof![
            any::<[u8; 16]>().prop_map(Change::Account),
            any_text(8).prop_map(Change::Username),
            any_bytes(40).prop_map(Change::PeerId),
            any::<u64>().prop_map(Change::IssuedAt),
            any::<u64>().prop_map(Change::ExpiresAt),
            any::<u64>().prop_map(Change::Serial),
            (0usize..64, 1u8..=255).prop_map(|(at, xor)| Change::SignatureByte(at, xor)),
        ]
    }

    /// Applies `change`; `false` when it would leave the certificate as it was.
    fn apply(cert: &mut Certificate, change: Change) -> bool {
        let body = &mut cert.body;
        match change {
            Change::Account(id) if AccountId::from_bytes(id) != body.account => {
                body.account = AccountId::from_bytes(id)
            }
            Change::Username(name) if name != body.username => body.username = name,
            Change::PeerId(peer) if peer != body.peer_id => body.peer_id = peer,
            Change::IssuedAt(n) if n != body.issued_at => body.issued_at = n,
            Change::ExpiresAt(n) if n != body.expires_at => body.expires_at = n,
            Change::Serial(n) if n != body.serial => body.serial = n,
            Change::SignatureByte(at, xor) => cert.signature[at] ^= xor,
            _ => return false,
        }
        true
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_certificates_never_verify(
            cert in any_certificate(),
            seed in any::<u8>(),
            peer in any_bytes(48),
            now in any::<u64>(),
        ) {
            let authority = Authority::from_secret(&[seed; 32]).public();
            prop_assert!(cert.verify(&authority, &peer, now).is_err());
            prop_assert!(cert.verify(&authority, &cert.body.peer_id, now).is_err());
            let mut cache = CertCache::default();
            let genuine = Authority::from_secret(&[seed; 32]).issue(AccountId::from_bytes([1; 16]), "alice", &peer, now / 2, 1);
            prop_assert!(cache.verify(&genuine, &authority, &peer, now / 2).is_ok());
            prop_assert!(cache.verify(&cert, &authority, &cert.body.peer_id, now).is_err());
            prop_assert!(cache.verify(&cert, &authority, &cert.body.peer_id, now).is_err());
        }

        #[test]
        fn a_certificate_changed_after_signing_never_verifies(
            body in any_body(),
            change in any_change(),
            at in 0u64..1 << 20,
        ) {
            let authority = Authority::from_secret(&[3; 32]);
            let key = authority.public();
            let genuine = sign(&authority, body);
            let now = genuine.body.issued_at + at % (genuine.body.expires_at - genuine.body.issued_at);
            let mut cache = CertCache::default();
            prop_assert_eq!(genuine.verify(&key, &genuine.body.peer_id, now), Ok(&genuine.body));
            prop_assert!(cache.verify(&genuine, &key, &genuine.body.peer_id, now).is_ok());

            let mut changed = genuine.clone();
            prop_assume!(apply(&mut changed, change));
            // Whatever peer and time the changed certificate is used with.
            for (peer, now) in [
                (&changed.body.peer_id, now),
                (&genuine.body.peer_id, now),
                (&changed.body.peer_id, changed.body.issued_at),
            ] {
                prop_assert!(changed.verify(&key, peer, now).is_err());
                // Also when the cache holds the genuine certificate under the same signature.
                prop_assert!(cache.verify(&changed, &key, peer, now).is_err());
            }
        }

        #[test]
        fn checks_never_panic_at_any_time(
            cert in any_certificate(),
            now in prop_oneof![Just(u64::MAX), Just(0), any::<u64>()],
            expires_at in prop_oneof![Just(u64::MAX), any::<u64>()],
        ) {
            let authority = Authority::from_secret(&[4; 32]);
            let genuine = sign(&authority, CertBody { expires_at, ..cert.body.clone() });
            let _ = genuine.verify(&authority.public(), &cert.body.peer_id, now);
            let _ = CertCache::default().verify(&genuine, &authority.public(), &cert.body.peer_id, now);
            let _ = genuine.remaining(now);
            let _ = authority.issue(cert.body.account, &cert.body.username, &cert.body.peer_id, now, cert.body.serial);
        }

        #[test]
        fn authority_keys_parse_any_text_without_panicking(text in any_text(80), bytes in any_bytes(40)) {
            if let Some(key) = AuthorityKey::from_hex(&text) {
                prop_assert_eq!(key.to_hex(), text.trim().to_ascii_lowercase());
            }
            if let Some(key) = AuthorityKey::from_bytes(&bytes) {
                prop_assert_eq!(&key.to_bytes()[..], &bytes[..]);
            }
        }

        #[test]
        fn authority_keys_parse_only_hex_digits(
            digits in prop::collection::vec(prop::sample::select(&b"0123456789abcdefABCDEF"[..]), 64),
            at in 0usize..64,
            odd in prop::sample::select(vec!["+", "-", "g", " ", "\u{e9}", "\u{0}"]),
        ) {
            let mut text = String::from_utf8(digits).unwrap();
            if let Some(key) = AuthorityKey::from_hex(&text) {
                prop_assert_eq!(key.to_hex(), text.to_ascii_lowercase());
            }
            text.replace_range(at..at + 1, odd);
            prop_assert_eq!(AuthorityKey::from_hex(&text), None, "{:?}", text);
        }

        #[test]
        fn authority_keys_round_trip(seed in any::<[u8; 32]>()) {
            let key = Authority::from_secret(&seed).public();
            prop_assert_eq!(AuthorityKey::from_hex(&key.to_hex()), Some(key));
            prop_assert_eq!(AuthorityKey::from_hex(&format!(" {}\n", key.to_hex().to_uppercase())), Some(key));
            prop_assert_eq!(AuthorityKey::from_bytes(&key.to_bytes()), Some(key));
        }
    }
}
