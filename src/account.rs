//! Who a person is: the stable account id the bootstrap node gives an account at registration,
//! the form a username must have, and the one canonical form in which usernames are compared.
//!
//! Everything that refers to a person — room memberships, admins and bans, conversations, the
//! outbox, mutes — refers to the [`AccountId`]; the username is its current label, shown on
//! screen and changed by a rename. Pure code: no I/O.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// How many bytes an account id has.
pub const ACCOUNT_ID_BYTES: usize = 16;

/// A stable, random account id (16 bytes; shown as 32 lower-case hex digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId([u8; ACCOUNT_ID_BYTES]);

impl AccountId {
    /// A fresh random id (the bootstrap node's, at registration).
    pub fn random() -> AccountId {
        AccountId(rand::random())
    }

    /// From its bytes.
    pub const fn from_bytes(bytes: [u8; ACCOUNT_ID_BYTES]) -> AccountId {
        AccountId(bytes)
    }

    /// From a byte slice of the right length.
    pub fn from_slice(bytes: &[u8]) -> Option<AccountId> {
        bytes.try_into().ok().map(AccountId)
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8; ACCOUNT_ID_BYTES] {
        &self.0
    }

    /// 32 lower-case hex digits: the form kept in SQLite and room state.
    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }

    /// Parses [`Self::to_hex`]'s form.
    pub fn from_hex(text: &str) -> Option<AccountId> {
        crate::hex::decode(text).map(AccountId)
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.to_hex())
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Usernames: this many characters at least…
pub const USERNAME_MIN: usize = 3;
/// …and at most.
pub const USERNAME_MAX: usize = 24;

/// A username of the wrong form (the name, cut short).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("'{0}' is not a valid username: use {USERNAME_MIN}–{USERNAME_MAX} of a-z, 0-9, _ and -")]
pub struct InvalidUsername(pub String);

/// Checks a username's form: 3–24 of `a-z 0-9 _ -` (capitals are accepted and keep their
/// case; uniqueness ignores case).
pub fn check_username(name: &str) -> Result<(), InvalidUsername> {
    let ok_len = (USERNAME_MIN..=USERNAME_MAX).contains(&name.len());
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok_len && ok_chars { Ok(()) } else { Err(InvalidUsername(name.chars().take(USERNAME_MAX + 8).collect())) }
}

/// The canonical form of a username: how two spellings are compared everywhere (case-folded).
/// Usernames are ASCII (`a-z 0-9 _ -` in any case), so ASCII folding is complete.
pub fn canonical(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// Whether two usernames name the same account label.
pub fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

impl Serialize for AccountId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::bytes::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<AccountId, D::Error> {
        crate::bytes::deserialize_array(deserializer).map(AccountId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_hex_and_cbor() {
        let id = AccountId::random();
        assert_eq!(AccountId::from_hex(&id.to_hex()), Some(id));
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &id).unwrap();
        assert_eq!(bytes.len(), 1 + ACCOUNT_ID_BYTES, "a CBOR byte string");
        assert_eq!(cbor4ii::serde::from_slice::<AccountId>(&bytes).unwrap(), id);
        assert_ne!(AccountId::random(), id);
    }

    #[test]
    fn malformed_ids_are_refused() {
        assert_eq!(AccountId::from_hex("zz"), None);
        assert_eq!(AccountId::from_hex(&"+1".repeat(16)), None);
        assert_eq!(AccountId::from_hex(&"é".repeat(16)), None);
        assert_eq!(AccountId::from_slice(&[1; 15]), None);
        let short = cbor4ii::serde::to_vec(Vec::new(), &serde_bytes_of(&[1; 15])).unwrap();
        assert!(cbor4ii::serde::from_slice::<AccountId>(&short).is_err());
    }

    #[test]
    fn names_compare_case_folded() {
        assert!(same_name("Bob", "bob"));
        assert!(!same_name("bob", "bobby"));
        assert_eq!(canonical("Bob_1-X"), "bob_1-x");
    }

    /// A byte string of any length, as CBOR writes one.
    fn serde_bytes_of(bytes: &[u8]) -> impl Serialize + '_ {
        struct Bytes<'a>(&'a [u8]);
        impl Serialize for Bytes<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        Bytes(bytes)
    }
}
