//! Password strength and password hashing (a username's form is `account.rs`'s).
//!
//! Hashes are argon2id PHC strings with the OWASP parameters (19 MiB, t=2, p=1). Unknown
//! usernames are checked against a dummy hash so that timing does not tell which names exist.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use thiserror::Error;

use crate::account::InvalidUsername;

/// Passwords shorter than this are weak whatever their score.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// zxcvbn score (0–4) a password needs.
pub const PASSWORD_MIN_SCORE: u8 = 3;
/// Longest password accepted (bytes): hashing cost must stay bounded.
pub const PASSWORD_MAX_BYTES: usize = 1024;
/// argon2 memory cost in KiB (OWASP: 19 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// argon2 passes.
pub const ARGON2_PASSES: u32 = 2;
/// argon2 lanes.
pub const ARGON2_LANES: u32 = 1;

/// A username or password that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CredentialError {
    #[error("{0}")]
    InvalidUsername(#[from] InvalidUsername),
    #[error("the password is too weak: {0}")]
    WeakPassword(String),
}

/// Checks a username's form ([`crate::account::check_username`]).
pub fn check_username(name: &str) -> Result<(), CredentialError> {
    crate::account::check_username(name).map_err(CredentialError::from)
}

/// The key a username is unique under.
pub fn username_key(name: &str) -> String {
    crate::account::canonical(name)
}

/// Checks a new password's strength with zxcvbn; the refusal carries zxcvbn's own advice.
pub fn check_strength(password: &str, username: &str) -> Result<(), CredentialError> {
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(CredentialError::WeakPassword(format!("use at most {PASSWORD_MAX_BYTES} bytes")));
    }
    let estimate = zxcvbn::zxcvbn(password, &[username, "meshchat"]);
    let score = u8::from(estimate.score());
    let long_enough = password.chars().count() >= PASSWORD_MIN_CHARS;
    if long_enough && score >= PASSWORD_MIN_SCORE {
        return Ok(());
    }
    let mut advice = Vec::new();
    if !long_enough {
        advice.push(format!("use at least {PASSWORD_MIN_CHARS} characters."));
    }
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            let warning = warning.to_string();
            advice.push(if warning.ends_with('.') { warning } else { format!("{warning}.") });
        }
        advice.extend(feedback.suggestions().iter().map(|s| s.to_string()));
    }
    if advice.is_empty() {
        advice.push("add another word or two; uncommon words are better.".into());
    }
    Err(CredentialError::WeakPassword(format!(
        "strength {score}/4, needs {PASSWORD_MIN_SCORE}/4. {}",
        advice.join(" ")
    )))
}

/// Hashes and verifies passwords.
pub struct Hasher {
    argon2: Argon2<'static>,
    dummy: String,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").finish_non_exhaustive()
    }
}

/// Hashing failed (out of memory, or a stored hash that cannot be parsed).
#[derive(Debug, Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl Hasher {
    /// A hasher with the OWASP parameters.
    pub fn new() -> Result<Hasher, HashError> {
        let params =
            Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES, None).map_err(|e| HashError(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy = argon2
            .hash_password(b"meshchat dummy password for unknown users")
            .map_err(|e| HashError(e.to_string()))?
            .to_string();
        Ok(Hasher { argon2, dummy })
    }

    /// A new PHC string (`$argon2id$…`) for `password`, with a random salt.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        self.argon2.hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| HashError(e.to_string()))
    }

    /// Whether `password` matches `hash`; with `None`, checks against the dummy hash and
    /// returns false, taking the same time as a real check.
    pub fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let target = hash.unwrap_or(&self.dummy);
        let matches = PasswordHash::new(target)
            .map(|parsed| self.argon2.verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false);
        matches && hash.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_rules() {
        for ok in ["bob", "alice_2", "Zed-9", &"a".repeat(24)] {
            assert!(check_username(ok).is_ok(), "{ok}");
        }
        for bad in ["al", &"a".repeat(25), "bob smith", "bob!", "bøb", "", "a\u{1b}b"] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
        assert_eq!(username_key("Alice"), "alice");
    }

    #[test]
    fn weak_passwords_are_refused_with_advice() {
        let err = check_strength("password", "alice").unwrap_err();
        let CredentialError::WeakPassword(advice) = err else { panic!() };
        assert!(advice.contains("needs 3/4"), "{advice}");
        assert!(advice.len() > 30, "advice is given: {advice}");
        assert!(check_strength("short", "alice").is_err());
        assert!(check_strength("alice12345", "alice12345").is_err());
        assert!(check_strength("correct horse battery staple", "alice").is_ok());
        assert!(check_strength("Tr0ub4dor&3-mesh-lantern", "alice").is_ok());
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let hasher = Hasher::new().unwrap();
        let hash = hasher.hash("correct horse battery staple").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify("correct horse battery staple", Some(&hash)));
        assert!(!hasher.verify("wrong", Some(&hash)));
        assert!(!hasher.verify("correct horse battery staple", None));
        assert_ne!(hash, hasher.hash("correct horse battery staple").unwrap(), "salted");
    }
}
