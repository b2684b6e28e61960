//! Which bootstrap node this node trusts: the authority key it pinned (`bootstrap.pub` in the
//! data directory, hex), or one given with `--bootstrap-key FILE`. The first bootstrap met is
//! pinned; a bootstrap with another key later is refused.

use std::fs;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::cert::AuthorityKey;

/// File name of the pinned key inside the data directory.
pub const PIN_FILE: &str = "bootstrap.pub";
/// File name under which a bootstrap node publishes its own key in its data directory.
pub const AUTHORITY_FILE: &str = "authority.pub";

/// A key file that cannot be used.
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
}

/// What [`Trust::consider`] decided about a bootstrap node's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The key is the trusted one.
    Trusted,
    /// Nothing was trusted yet: this key is pinned from now on.
    PinnedNow,
    /// Another key is trusted: refuse this bootstrap.
    Refused { pinned: AuthorityKey },
}

/// The trusted bootstrap key, if any, and where it is pinned.
#[derive(Debug)]
pub struct Trust {
    pin_path: PathBuf,
    key: Option<AuthorityKey>,
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
        Ok(Trust { pin_path, key })
    }

    /// The trusted key, if any.
    pub fn key(&self) -> Option<AuthorityKey> {
        self.key
    }

    /// Where the key is pinned.
    pub fn pin_path(&self) -> &Path {
        &self.pin_path
    }

    /// Decides about a bootstrap node with authority key `key`, pinning it if none is trusted.
    pub fn consider(&mut self, key: AuthorityKey) -> Result<Verdict, TrustError> {
        match self.key {
            Some(pinned) if pinned == key => Ok(Verdict::Trusted),
            Some(pinned) => Ok(Verdict::Refused { pinned }),
            None => {
                write_key_file(&self.pin_path, &key)?;
                self.key = Some(key);
                Ok(Verdict::PinnedNow)
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
    fn the_first_key_is_pinned_and_others_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut trust = Trust::load(dir.path(), None).unwrap();
        assert_eq!(trust.key(), None);
        assert_eq!(trust.consider(key(1)).unwrap(), Verdict::PinnedNow);
        assert_eq!(trust.consider(key(1)).unwrap(), Verdict::Trusted);
        assert_eq!(trust.consider(key(2)).unwrap(), Verdict::Refused { pinned: key(1) });
        let again = Trust::load(dir.path(), None).unwrap();
        assert_eq!(again.key(), Some(key(1)), "the pin survives restarts");
    }

    #[test]
    fn a_given_key_must_agree_with_the_pin() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Trust::load(dir.path(), Some(key(1))).unwrap().key(), Some(key(1)));
        assert!(matches!(Trust::load(dir.path(), Some(key(2))), Err(TrustError::Conflict { .. })));
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
