//! Which bootstrap node this node trusts: the authority key it pinned (`bootstrap.pub` in the
//! data directory, hex), or one given with `--bootstrap-key FILE`. Nothing is pinned on its own:
//! a bootstrap key the node has not pinned is *unconfirmed* until the user confirms it (`/trust
//! KEY`, by its 64 hex digits or a unique prefix of at least [`MIN_PREFIX_DIGITS`] of the keys
//! seen), as SSH does with a host key met for the first time. A bootstrap with another key than
//! the pinned one is refused.

use std::fs;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::cert::AuthorityKey;

/// File name of the pinned key inside the data directory.
pub const PIN_FILE: &str = "bootstrap.pub";
/// File name under which a bootstrap node publishes its own key in its data directory.
pub const AUTHORITY_FILE: &str = "authority.pub";
/// The fewest hex digits of a key `/trust` takes.
pub const MIN_PREFIX_DIGITS: usize = 8;
/// Hex digits in a whole key.
pub const KEY_DIGITS: usize = 64;
/// At most this many unconfirmed keys are remembered, the first met: any peer can say it
/// serves accounts under a key of its own, and the one the user means was most likely met
/// before a flood of others. A key met beyond them can still be trusted by its 64 hex digits.
pub const MAX_SEEN: usize = 64;
/// Hex digits per group when a key is shown to a person.
const GROUP_DIGITS: usize = 4;

/// A key file that cannot be used, or a key the user named that cannot be trusted.
#[derive(Debug, Error)]
pub enum TrustError {
    #[error("cannot read the key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write the key file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} does not hold an ed25519 public key in hex (64 hex digits)")]
    Malformed { path: PathBuf },
    #[error(
        "this node trusts the bootstrap key {pinned} ({path}), not {given}; delete that file to trust another bootstrap node"
    )]
    Conflict { path: PathBuf, pinned: String, given: String },
    #[error(
        "'{given}' is not a bootstrap key: give its {KEY_DIGITS} hex digits, or at least {MIN_PREFIX_DIGITS} of them"
    )]
    NotAKey { given: String },
    #[error("no bootstrap key seen starts with {prefix}{}", seen_list(seen))]
    UnknownPrefix { prefix: String, seen: Vec<String> },
    #[error("{prefix} starts several bootstrap keys seen ({}); give more digits", matches.join(", "))]
    AmbiguousPrefix { prefix: String, matches: Vec<String> },
}

fn seen_list(seen: &[String]) -> String {
    if seen.is_empty() { " (none was seen yet)".to_string() } else { format!(" (seen: {})", seen.join(", ")) }
}

/// What [`Trust::consider`] decided about a bootstrap node's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The key is the trusted one.
    Trusted,
    /// Nothing is trusted yet: the user has to confirm this key before any password goes to it.
    Unconfirmed,
    /// Another key is trusted: refuse this bootstrap.
    Refused { pinned: AuthorityKey },
}

/// The trusted bootstrap key, if any, where it is pinned, and the unconfirmed keys seen.
#[derive(Debug)]
pub struct Trust {
    pin_path: PathBuf,
    key: Option<AuthorityKey>,
    /// Keys of bootstrap nodes met while nothing was trusted, first seen first.
    seen: Vec<AuthorityKey>,
}

/// Reads a hex key file.
pub fn read_key_file(path: &Path) -> Result<AuthorityKey, TrustError> {
    let text = fs::read_to_string(path).map_err(|source| TrustError::Read { path: path.to_path_buf(), source })?;
    AuthorityKey::from_hex(&text).ok_or_else(|| TrustError::Malformed { path: path.to_path_buf() })
}

/// Writes a hex key file.
pub fn write_key_file(path: &Path, key: &AuthorityKey) -> Result<(), TrustError> {
    fs::write(path, format!("{}\n", key.to_hex()))
        .map_err(|source| TrustError::Write { path: path.to_path_buf(), source })
}

/// A key in hex as a person compares it: groups of four digits (`3f2a 9c01 …`, 16 groups).
pub fn grouped(hex: &str) -> String {
    let chars: Vec<char> = hex.chars().collect();
    chars.chunks(GROUP_DIGITS).map(|group| group.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

/// The index of the one key in `keys` (hex) that starts with `prefix`.
fn pick_by_prefix(prefix: &str, keys: &[String]) -> Result<usize, TrustError> {
    let matching: Vec<usize> = (0..keys.len()).filter(|&i| keys[i].starts_with(prefix)).collect();
    match matching.as_slice() {
        [one] => Ok(*one),
        [] => Err(TrustError::UnknownPrefix { prefix: prefix.to_string(), seen: keys.to_vec() }),
        several => Err(TrustError::AmbiguousPrefix {
            prefix: prefix.to_string(),
            matches: several.iter().map(|&i| keys[i].clone()).collect(),
        }),
    }
}

impl Trust {
    /// Loads the pin of data directory `dir`; `given` (from `--bootstrap-key`, or the node's own
    /// authority when it hosts the bootstrap) must agree with it and is pinned if nothing is.
    pub fn load(dir: &Path, given: Option<AuthorityKey>) -> Result<Trust, TrustError> {
        let pin_path = dir.join(PIN_FILE);
        let pinned = if pin_path.exists() { Some(read_key_file(&pin_path)?) } else { None };
        let key = match (pinned, given) {
            (Some(p), Some(g)) if p != g => {
                return Err(TrustError::Conflict { path: pin_path, pinned: p.to_hex(), given: g.to_hex() });
            }
            (Some(p), _) => Some(p),
            (None, Some(g)) => {
                write_key_file(&pin_path, &g)?;
                Some(g)
            }
            (None, None) => None,
        };
        Ok(Trust { pin_path, key, seen: Vec::new() })
    }

    /// The trusted key, if any.
    pub fn key(&self) -> Option<AuthorityKey> {
        self.key
    }

    /// Where the key is pinned.
    pub fn pin_path(&self) -> &Path {
        &self.pin_path
    }

    /// The unconfirmed keys seen so far, first seen first.
    pub fn seen(&self) -> &[AuthorityKey] {
        &self.seen
    }

    /// Decides about a bootstrap node with authority key `key`; never pins anything. A key met
    /// while nothing is trusted is remembered for [`Self::choose`] (the first [`MAX_SEEN`]).
    pub fn consider(&mut self, key: AuthorityKey) -> Verdict {
        match self.key {
            Some(pinned) if pinned == key => Verdict::Trusted,
            Some(pinned) => Verdict::Refused { pinned },
            None => {
                if self.seen.len() < MAX_SEEN && !self.seen.contains(&key) {
                    self.seen.push(key);
                }
                Verdict::Unconfirmed
            }
        }
    }

    /// The key the user means by `text`: a whole key in hex (seen or not), or a prefix of at
    /// least [`MIN_PREFIX_DIGITS`] hex digits of exactly one of the keys seen.
    pub fn choose(&self, text: &str) -> Result<AuthorityKey, TrustError> {
        let typed = text.trim().to_ascii_lowercase();
        let hex = typed.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex || typed.len() < MIN_PREFIX_DIGITS || typed.len() > KEY_DIGITS {
            return Err(TrustError::NotAKey { given: text.trim().to_string() });
        }
        if typed.len() == KEY_DIGITS {
            return AuthorityKey::from_hex(&typed).ok_or(TrustError::NotAKey { given: typed });
        }
        let seen: Vec<String> = self.seen.iter().map(AuthorityKey::to_hex).collect();
        let index = pick_by_prefix(&typed, &seen)?;
        Ok(self.seen[index])
    }

    /// The user confirmed `key`: it is pinned from now on. Confirming the pinned key again is
    /// no change; another key than the pinned one is a conflict.
    pub fn confirm(&mut self, key: AuthorityKey) -> Result<(), TrustError> {
        match self.key {
            Some(pinned) if pinned == key => Ok(()),
            Some(pinned) => {
                Err(TrustError::Conflict { path: self.pin_path.clone(), pinned: pinned.to_hex(), given: key.to_hex() })
            }
            None => {
                write_key_file(&self.pin_path, &key)?;
                self.key = Some(key);
                self.seen.clear();
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::Authority;

    fn key(seed: u8) -> AuthorityKey {
        Authority::from_secret(&[seed; 32]).public()
    }

    #[test]
    fn nothing_is_pinned_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut trust = Trust::load(dir.path(), None).unwrap();
        assert_eq!(trust.key(), None);
        assert_eq!(trust.consider(key(1)), Verdict::Unconfirmed);
        assert_eq!(trust.consider(key(2)), Verdict::Unconfirmed);
        assert_eq!(trust.consider(key(1)), Verdict::Unconfirmed);
        assert_eq!(trust.seen(), &[key(1), key(2)]);
        assert_eq!(trust.key(), None);
        assert!(!dir.path().join(PIN_FILE).exists(), "meeting a bootstrap pins nothing");
    }

    /// Peers saying they serve accounts under keys of their own, by the thousand, are not all
    /// remembered: the key met first still is, and one met beyond the bound is still trusted
    /// by its whole hex.
    #[test]
    fn the_keys_remembered_are_bounded_and_the_first_met_stays() {
        let dir = tempfile::tempdir().unwrap();
        let mut trust = Trust::load(dir.path(), None).unwrap();
        let real = key(1);
        assert_eq!(trust.consider(real), Verdict::Unconfirmed);
        let made_up: Vec<AuthorityKey> = (0..5_000u32)
            .map(|n| {
                let mut secret = [7u8; 32];
                secret[..4].copy_from_slice(&n.to_be_bytes());
                Authority::from_secret(&secret).public()
            })
            .collect();
        for key in &made_up {
            assert_eq!(trust.consider(*key), Verdict::Unconfirmed);
        }
        assert_eq!(trust.seen().len(), MAX_SEEN);
        assert_eq!(trust.seen()[0], real);
        assert_eq!(trust.choose(&real.to_hex()[..MIN_PREFIX_DIGITS]).unwrap(), real);
        let late = made_up[4_999];
        assert!(!trust.seen().contains(&late));
        assert_eq!(trust.choose(&late.to_hex()).unwrap(), late, "a whole key is taken, seen or not");
    }

    #[test]
    fn a_whole_key_is_confirmed_pinned_and_survives_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut trust = Trust::load(dir.path(), None).unwrap();
        trust.consider(key(1));
        trust.consider(key(2));
        let chosen = trust.choose(&key(2).to_hex().to_uppercase()).unwrap();
        assert_eq!(chosen, key(2));
        trust.confirm(chosen).unwrap();
        assert_eq!(trust.key(), Some(key(2)));
        assert_eq!(trust.consider(key(2)), Verdict::Trusted);
        assert_eq!(trust.consider(key(1)), Verdict::Refused { pinned: key(2) });
        let mut again = Trust::load(dir.path(), None).unwrap();
        assert_eq!(again.key(), Some(key(2)), "the pin survives restarts");
        assert_eq!(again.consider(key(2)), Verdict::Trusted);
    }

    #[test]
    fn a_whole_key_need_not_have_been_seen() {
        let dir = tempfile::tempdir().unwrap();
        let trust = Trust::load(dir.path(), None).unwrap();
        assert_eq!(trust.choose(&key(3).to_hex()).unwrap(), key(3));
    }

    #[test]
    fn a_unique_prefix_names_a_seen_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut trust = Trust::load(dir.path(), None).unwrap();
        trust.consider(key(1));
        trust.consider(key(2));
        let prefix = &key(1).to_hex()[..MIN_PREFIX_DIGITS];
        assert_eq!(trust.choose(prefix).unwrap(), key(1));
        assert_eq!(trust.choose(&format!("  {}\n", prefix.to_uppercase())).unwrap(), key(1));
    }

    #[test]
    fn short_malformed_and_unknown_prefixes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut trust = Trust::load(dir.path(), None).unwrap();
        let seen = key(1).to_hex();
        trust.consider(key(1));
        assert!(matches!(trust.choose(&seen[..MIN_PREFIX_DIGITS - 1]), Err(TrustError::NotAKey { .. })));
        assert!(matches!(trust.choose("xyz12345678"), Err(TrustError::NotAKey { .. })));
        assert!(matches!(trust.choose(&"a".repeat(KEY_DIGITS + 1)), Err(TrustError::NotAKey { .. })));
        let unknown = if seen.starts_with("00000000") { "11111111" } else { "00000000" };
        let error = trust.choose(unknown).unwrap_err();
        assert!(matches!(&error, TrustError::UnknownPrefix { .. }), "{error}");
        assert!(error.to_string().contains(&seen), "lists the keys seen: {error}");
        let fresh = Trust::load(tempfile::tempdir().unwrap().path(), None).unwrap();
        assert!(fresh.choose(&seen[..MIN_PREFIX_DIGITS]).unwrap_err().to_string().contains("none was seen"));
    }

    #[test]
    fn a_prefix_of_several_keys_is_ambiguous() {
        let keys = vec!["3f2a9c01aa".to_string(), "3f2a9c01bb".to_string(), "77".to_string()];
        assert_eq!(pick_by_prefix("3f2a9c01a", &keys).unwrap(), 0);
        let error = pick_by_prefix("3f2a9c01", &keys).unwrap_err();
        assert!(matches!(&error, TrustError::AmbiguousPrefix { matches, .. } if matches.len() == 2), "{error}");
        assert!(error.to_string().contains("give more digits"), "{error}");
    }

    #[test]
    fn confirming_another_key_than_the_pin_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let mut trust = Trust::load(dir.path(), Some(key(1))).unwrap();
        assert_eq!(trust.consider(key(2)), Verdict::Refused { pinned: key(1) });
        trust.confirm(key(1)).unwrap();
        let error = trust.confirm(key(2)).unwrap_err();
        assert!(matches!(error, TrustError::Conflict { .. }));
        assert!(error.to_string().contains(PIN_FILE), "{error}");
        assert_eq!(Trust::load(dir.path(), None).unwrap().key(), Some(key(1)));
    }

    #[test]
    fn a_given_key_must_agree_with_the_pin() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Trust::load(dir.path(), Some(key(1))).unwrap().key(), Some(key(1)));
        assert!(matches!(Trust::load(dir.path(), Some(key(2))), Err(TrustError::Conflict { .. })));
    }

    #[test]
    fn keys_are_shown_in_groups_of_four() {
        let shown = grouped(&key(1).to_hex());
        assert_eq!(shown.split(' ').count(), 16);
        assert!(shown.split(' ').all(|g| g.len() == 4));
        assert_eq!(shown.replace(' ', ""), key(1).to_hex());
    }

    #[test]
    fn malformed_key_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pub");
        fs::write(&path, "not a key").unwrap();
        assert!(matches!(read_key_file(&path), Err(TrustError::Malformed { .. })));
        write_key_file(&path, &key(4)).unwrap();
        assert_eq!(read_key_file(&path).unwrap(), key(4));
    }
}
