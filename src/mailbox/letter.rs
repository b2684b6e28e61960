//! A letter: a direct message sealed to its recipient's node, for a mailbox to keep.
//!
//! Inside is the message as it would go straight to the recipient ([`DmRequest`]: the sender's
//! certificate, the recipient, number, id, time, text), the sender node's public key, and that
//! key's signature over the message. The whole is a sealed box (libsodium's `crypto_box_seal`,
//! RustCrypto's `crypto_box`: X25519, XSalsa20-Poly1305) to the recipient node's key — its
//! ed25519 peer key in Montgomery form, as libsodium's `crypto_sign_ed25519_pk_to_curve25519`
//! converts it — so the mailbox, which keeps only the sealed bytes, cannot read it.
//!
//! A straight message is vouched for by its connection, which proves the sender's peer; a
//! letter comes from the mailbox, so it carries the signature instead. Opening checks it, and
//! that the certificate was valid when the letter was written and names that key, before any
//! of it is believed ([`open`]). A letter is sealed to the key of the recipient's node as its
//! latest certificate seen names it: a recipient who logged in on another machine since cannot
//! open it there (it still reaches them straight from the sender's outbox).

use libp2p::identity::{Keypair, PublicKey};
use libp2p::{PeerId, multihash::Multihash};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::account::AccountId;
use crate::cert::{AuthorityKey, CertCache};
use crate::protocol::dm::{CheckedDm, DmRefusal, DmRequest, MAX_REQUEST_BYTES, check_request};

/// The largest sealed letter made or opened, in bytes (a message's request, a key and a
/// signature, and the box's 48 bytes).
pub const MAX_SEALED_BYTES: usize = MAX_REQUEST_BYTES as usize + 512;
/// What the sender signs before the message, so no other signature of its key can pass for one.
const SIGNING_TAG: &[u8] = b"meshchat letter 1\0";
/// The multihash code of an identity hash (the key itself), as ed25519 peer ids use.
const IDENTITY_HASH: u64 = 0;

/// A letter that could not be made or opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LetterError {
    #[error("the recipient's peer id holds no ed25519 key to seal to")]
    NoRecipientKey,
    #[error("this node's key is not an ed25519 key")]
    NotEd25519,
    #[error("the letter is larger than {MAX_SEALED_BYTES} bytes")]
    TooLarge,
    #[error("the letter does not open with this node's key")]
    Unsealed,
    #[error("the letter's inside is malformed")]
    Malformed,
    #[error("the sender's signature does not check out")]
    BadSignature,
    #[error("the letter was written more than 14 days ago, or in the future")]
    Stale,
    #[error("the message inside is refused: {0}")]
    Refused(DmRefusal),
    #[error("the letter cannot be sealed: {0}")]
    Seal(String),
}

/// What is sealed.
#[derive(Debug, Serialize, Deserialize)]
struct Inside {
    request: DmRequest,
    /// The sender node's public key (protobuf encoding), which its certificate names.
    #[serde(with = "crate::bytes")]
    public_key: Vec<u8>,
    /// That key's signature over [`SIGNING_TAG`] and the request's encoding.
    #[serde(with = "crate::bytes")]
    signature: Vec<u8>,
}

fn signed_bytes(request: &DmRequest) -> Result<Vec<u8>, LetterError> {
    let mut bytes = SIGNING_TAG.to_vec();
    cbor4ii::serde::to_writer(&mut bytes, request).map_err(|e| LetterError::Seal(e.to_string()))?;
    Ok(bytes)
}

/// The X25519 public key of the node with peer id `peer` (binary), from its ed25519 key.
fn recipient_key(peer: &[u8]) -> Result<crypto_box::PublicKey, LetterError> {
    let peer = PeerId::from_bytes(peer).map_err(|_| LetterError::NoRecipientKey)?;
    let hash: &Multihash<64> = peer.as_ref();
    if hash.code() != IDENTITY_HASH {
        return Err(LetterError::NoRecipientKey);
    }
    let public = PublicKey::try_decode_protobuf(hash.digest()).map_err(|_| LetterError::NoRecipientKey)?;
    let ed25519 = public.try_into_ed25519().map_err(|_| LetterError::NoRecipientKey)?;
    let verifying =
        ed25519_dalek::VerifyingKey::from_bytes(&ed25519.to_bytes()).map_err(|_| LetterError::NoRecipientKey)?;
    Ok(crypto_box::PublicKey::from(verifying.to_montgomery().to_bytes()))
}

/// This node's X25519 secret key, from its ed25519 key.
fn own_key(key: &Keypair) -> Result<crypto_box::SecretKey, LetterError> {
    let ed25519 = key.clone().try_into_ed25519().map_err(|_| LetterError::NotEd25519)?;
    let seed: [u8; 32] = ed25519.secret().as_ref().try_into().map_err(|_| LetterError::NotEd25519)?;
    Ok(crypto_box::SecretKey::from(ed25519_dalek::SigningKey::from_bytes(&seed).to_scalar_bytes()))
}

/// Seals `request`, written by the node with key `sender`, to the node with peer id
/// `recipient_peer` (binary).
pub fn seal(request: &DmRequest, sender: &Keypair, recipient_peer: &[u8]) -> Result<Vec<u8>, LetterError> {
    let recipient = recipient_key(recipient_peer)?;
    let signature = sender.sign(&signed_bytes(request)?).map_err(|e| LetterError::Seal(e.to_string()))?;
    let inside = Inside { request: request.clone(), public_key: sender.public().encode_protobuf(), signature };
    let bytes = cbor4ii::serde::to_vec(Vec::new(), &inside).map_err(|e| LetterError::Seal(e.to_string()))?;
    let sealed = recipient.seal(&mut crypto_box::aead::OsRng, &bytes).map_err(|e| LetterError::Seal(e.to_string()))?;
    if sealed.len() > MAX_SEALED_BYTES {
        return Err(LetterError::TooLarge);
    }
    Ok(sealed)
}

/// A letter opened and checked: the message, its sender, and the sender's peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub request: DmRequest,
    pub sender: CheckedDm,
    pub peer: PeerId,
}

/// Opens `sealed` with this node's key `key`, for its user `me`, at `now_ms`: the sender's
/// signature checks out with the key its certificate names, the certificate (signed by
/// `authority`) was valid when the letter was written, the letter is at most 14 days old, and
/// the message inside is addressed to `me` and within its bounds.
pub fn open(
    sealed: &[u8],
    key: &Keypair,
    me: AccountId,
    certs: &mut CertCache,
    authority: &AuthorityKey,
    now_ms: u64,
) -> Result<Opened, LetterError> {
    if sealed.len() > MAX_SEALED_BYTES {
        return Err(LetterError::TooLarge);
    }
    let bytes = own_key(key)?.unseal(sealed).map_err(|_| LetterError::Unsealed)?;
    let inside: Inside = cbor4ii::serde::from_slice(&bytes).map_err(|_| LetterError::Malformed)?;
    let public = PublicKey::try_decode_protobuf(&inside.public_key).map_err(|_| LetterError::Malformed)?;
    if !public.verify(&signed_bytes(&inside.request)?, &inside.signature) {
        return Err(LetterError::BadSignature);
    }
    let request = inside.request;
    if !super::fresh(request.ts_ms, now_ms) {
        return Err(LetterError::Stale);
    }
    let peer = public.to_peer_id();
    let sender = check_request(&request, &peer.to_bytes(), Some(me), certs, authority, request.ts_ms / 1000)
        .map_err(LetterError::Refused)?;
    Ok(Opened { request, sender, peer })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::Authority;

    const NOW_MS: u64 = 1_700_000_000_000;

    struct World {
        authority: Authority,
        alice: Keypair,
        bob: Keypair,
        alice_account: AccountId,
        bob_account: AccountId,
    }

    fn world() -> World {
        World {
            authority: Authority::from_secret(&[5; 32]),
            alice: Keypair::generate_ed25519(),
            bob: Keypair::generate_ed25519(),
            alice_account: AccountId::from_bytes([1; 16]),
            bob_account: AccountId::from_bytes([2; 16]),
        }
    }

    fn request(w: &World, text: &str) -> DmRequest {
        let peer = w.alice.public().to_peer_id().to_bytes();
        DmRequest {
            certificate: w.authority.issue(w.alice_account, "alice", &peer, NOW_MS / 1000, 1),
            to: w.bob_account,
            seq: 1,
            id: "m-1".into(),
            ts_ms: NOW_MS,
            text: text.into(),
        }
    }

    fn bob_opens(w: &World, sealed: &[u8], now_ms: u64) -> Result<Opened, LetterError> {
        open(sealed, &w.bob, w.bob_account, &mut CertCache::default(), &w.authority.public(), now_ms)
    }

    fn bob_peer(w: &World) -> Vec<u8> {
        w.bob.public().to_peer_id().to_bytes()
    }

    #[test]
    fn only_the_recipient_opens_it_and_the_mailbox_sees_no_text() {
        let w = world();
        let text = "the spare key is under the blue flowerpot";
        let sealed = seal(&request(&w, text), &w.alice, &bob_peer(&w)).unwrap();
        assert!(!sealed.windows(10).any(|win| text.as_bytes().windows(10).any(|t| t == win)));
        let opened = bob_opens(&w, &sealed, NOW_MS + 1000).unwrap();
        assert_eq!(opened.request.text, text);
        assert_eq!(opened.sender.from, "alice");
        assert_eq!(opened.peer, w.alice.public().to_peer_id());
        // Anyone else's node, the mailbox's included, cannot open it.
        let carol = Keypair::generate_ed25519();
        let result = open(&sealed, &carol, w.bob_account, &mut CertCache::default(), &w.authority.public(), NOW_MS);
        assert_eq!(result, Err(LetterError::Unsealed));
    }

    #[test]
    fn a_forged_or_altered_letter_is_refused() {
        let w = world();
        // Mallory holds alice's certificate but not her key: he signs with his own.
        let mallory = Keypair::generate_ed25519();
        let forged = seal(&request(&w, "send me the password"), &mallory, &bob_peer(&w)).unwrap();
        assert_eq!(bob_opens(&w, &forged, NOW_MS), Err(LetterError::Refused(DmRefusal::BadCertificate)));
        // A signature over other bytes.
        let mut inside = Inside {
            request: request(&w, "hello"),
            public_key: w.alice.public().encode_protobuf(),
            signature: w.alice.sign(b"something else").unwrap(),
        };
        let seal_inside = |inside: &Inside| {
            let bytes = cbor4ii::serde::to_vec(Vec::new(), inside).unwrap();
            recipient_key(&bob_peer(&w)).unwrap().seal(&mut crypto_box::aead::OsRng, &bytes).unwrap()
        };
        assert_eq!(bob_opens(&w, &seal_inside(&inside), NOW_MS), Err(LetterError::BadSignature));
        // Signed, then the text changed.
        inside.signature = w.alice.sign(&signed_bytes(&inside.request).unwrap()).unwrap();
        inside.request.text = "changed".into();
        assert_eq!(bob_opens(&w, &seal_inside(&inside), NOW_MS), Err(LetterError::BadSignature));
        // A flipped byte of the box.
        let mut sealed = seal(&request(&w, "hello"), &w.alice, &bob_peer(&w)).unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(bob_opens(&w, &sealed, NOW_MS), Err(LetterError::Unsealed));
        assert_eq!(bob_opens(&w, &[0; 10], NOW_MS), Err(LetterError::Unsealed));
        assert_eq!(bob_opens(&w, &vec![0; MAX_SEALED_BYTES + 1], NOW_MS), Err(LetterError::TooLarge));
    }

    #[test]
    fn a_letter_for_someone_else_or_too_old_is_refused() {
        let w = world();
        let mut to_carol = request(&w, "hi");
        to_carol.to = AccountId::from_bytes([3; 16]);
        let sealed = seal(&to_carol, &w.alice, &bob_peer(&w)).unwrap();
        assert_eq!(bob_opens(&w, &sealed, NOW_MS), Err(LetterError::Refused(DmRefusal::WrongRecipient)));
        let sealed = seal(&request(&w, "hi"), &w.alice, &bob_peer(&w)).unwrap();
        assert_eq!(bob_opens(&w, &sealed, NOW_MS + super::super::KEEP_MS + 1), Err(LetterError::Stale));
        // Its certificate was valid when it was written: opened days later, it still checks out.
        assert!(bob_opens(&w, &sealed, NOW_MS + 3 * 24 * 3600 * 1000).is_ok());
        // A certificate already expired when the letter says it was written does not.
        let mut late = request(&w, "hi");
        late.ts_ms = NOW_MS + 13 * 3600 * 1000;
        let sealed = seal(&late, &w.alice, &bob_peer(&w)).unwrap();
        assert_eq!(bob_opens(&w, &sealed, late.ts_ms), Err(LetterError::Refused(DmRefusal::BadCertificate)));
    }

    #[test]
    fn a_peer_id_without_an_ed25519_key_cannot_be_sealed_to() {
        let w = world();
        assert_eq!(seal(&request(&w, "x"), &w.alice, b"not a peer id"), Err(LetterError::NoRecipientKey));
        let hashed = PeerId::from_multihash(Multihash::wrap(0x12, &[7; 32]).unwrap()).unwrap();
        assert_eq!(seal(&request(&w, "x"), &w.alice, &hashed.to_bytes()), Err(LetterError::NoRecipientKey));
    }
}
