//! The node's data directory: its exclusive lock and the node's persistent ed25519 key.
//!
//! Two nodes must never share a data directory (they would share a PeerId and a database), so
//! a node holds an OS file lock on `lock` for as long as it runs. The key lives in `node.key`
//! (mode 0600) so the PeerId survives restarts.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use libp2p::identity::Keypair;
use thiserror::Error;

/// File name of the lock inside the data directory.
pub const LOCK_FILE: &str = "lock";
/// File name of the node's key inside the data directory.
pub const KEY_FILE: &str = "node.key";

/// Problems with the data directory or the key.
#[derive(Debug, Error)]
pub enum IdentityError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("data directory {path} is in use by another meshchat process{}; give each node its own --data-dir", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    InUse { path: PathBuf, pid: Option<u32> },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: std::io::Error },
    #[error("cannot read or write the node key {path}: {source}")]
    KeyIo { path: PathBuf, source: std::io::Error },
    #[error("the node key {path} is damaged ({reason}); move it away to start with a new identity")]
    KeyCorrupt { path: PathBuf, reason: String },
}

/// An open data directory, locked for this process until dropped.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates the directory if needed (mode 0700) and takes its lock.
    ///
    /// # Errors
    /// [`IdentityError::InUse`] when another process holds the lock.
    pub fn open(path: &Path) -> Result<DataDir, IdentityError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|source| IdentityError::CreateDir { path: path.to_path_buf(), source })?;
        let lock_path = path.join(LOCK_FILE);
        let lock_err = |source| IdentityError::Lock { path: lock_path.clone(), source };
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(lock_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid = lock.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
                return Err(IdentityError::InUse { path: path.to_path_buf(), pid });
            }
            Err(TryLockError::Error(source)) => return Err(lock_err(source)),
        }
        lock.set_len(0).map_err(lock_err)?;
        writeln!(lock, "{}", std::process::id()).map_err(lock_err)?;
        Ok(DataDir { path: path.to_path_buf(), _lock: lock })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the node key, creating it (mode 0600) on first start.
    pub fn node_key(&self) -> Result<Keypair, IdentityError> {
        load_or_create_key(&self.path.join(KEY_FILE))
    }
}

fn load_or_create_key(path: &Path) -> Result<Keypair, IdentityError> {
    let io_err = |source| IdentityError::KeyIo { path: path.to_path_buf(), source };
    match fs::read(path) {
        Ok(bytes) => {
            let mode = fs::metadata(path).map_err(io_err)?.permissions().mode();
            if mode & 0o077 != 0 {
                fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err)?;
            }
            Keypair::from_protobuf_encoding(&bytes)
                .map_err(|e| IdentityError::KeyCorrupt { path: path.to_path_buf(), reason: e.to_string() })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keypair = Keypair::generate_ed25519();
            let bytes = keypair
                .to_protobuf_encoding()
                .map_err(|e| IdentityError::KeyCorrupt { path: path.to_path_buf(), reason: e.to_string() })?;
            let tmp = path.with_extension("key.tmp");
            let mut file =
                OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io_err)?;
            file.write_all(&bytes).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
            fs::rename(&tmp, path).map_err(io_err)?;
            Ok(keypair)
        }
        Err(e) => Err(io_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDir::open(dir.path()).unwrap().node_key().unwrap();
        let second = DataDir::open(dir.path()).unwrap().node_key().unwrap();
        assert_eq!(first.public().to_peer_id(), second.public().to_peer_id());
        let mode = fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_held_directory_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let _held = DataDir::open(dir.path()).unwrap();
        let err = DataDir::open(dir.path()).unwrap_err();
        match &err {
            IdentityError::InUse { pid, .. } => assert_eq!(*pid, Some(std::process::id())),
            other => panic!("expected InUse, got {other:?}"),
        }
        assert!(err.to_string().contains("in use by another meshchat process"));
    }

    #[test]
    fn a_damaged_key_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), b"garbage").unwrap();
        let err = DataDir::open(dir.path()).unwrap().node_key().unwrap_err();
        assert!(matches!(err, IdentityError::KeyCorrupt { .. }), "{err:?}");
    }
}
