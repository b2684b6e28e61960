//! The node's own database (`node.db` in its data directory): the login session (certificate
//! and nickname) for now; rooms, messages, outbox and mutes join it as they arrive.
//!
//! All SQL of the node lives here; callers get typed methods.

pub mod sqlite;

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use thiserror::Error;

use crate::cert::Certificate;

/// File name of the node database inside the data directory.
pub const NODE_DB: &str = "node.db";

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE session (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        certificate BLOB NOT NULL,
        nick TEXT NOT NULL
    );",
    "CREATE TABLE nicknames (
        username_key TEXT PRIMARY KEY,
        nick TEXT NOT NULL
    );",
];

/// A failed store operation.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    Open(#[from] sqlite::OpenError),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

/// A saved login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub certificate: Certificate,
    pub nick: String,
}

/// The node database.
#[derive(Debug)]
pub struct NodeStore {
    conn: Connection,
}

impl NodeStore {
    /// Opens `node.db` in `dir`.
    pub fn open(dir: &Path) -> Result<NodeStore, StoreError> {
        Ok(NodeStore { conn: sqlite::open(&dir.join(NODE_DB), MIGRATIONS)? })
    }

    /// The saved session, if any.
    pub fn session(&self) -> Result<Option<Session>, StoreError> {
        let row: Option<(Vec<u8>, String)> = self
            .conn
            .query_row("SELECT certificate, nick FROM session WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((bytes, nick)) = row else { return Ok(None) };
        let certificate =
            cbor4ii::serde::from_slice(&bytes).map_err(|e| StoreError::Corrupt(format!("saved certificate: {e}")))?;
        Ok(Some(Session { certificate, nick }))
    }

    /// Saves the session, replacing any other.
    pub fn save_session(&self, session: &Session) -> Result<(), StoreError> {
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &session.certificate)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode certificate: {e}")))?;
        self.conn.execute(
            "INSERT INTO session (id, certificate, nick) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET certificate = excluded.certificate, nick = excluded.nick",
            params![bytes, session.nick],
        )?;
        Ok(())
    }

    /// The nickname last used on this node by `username` (any case).
    pub fn nickname(&self, username: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT nick FROM nicknames WHERE username_key = ?1",
                params![username.to_ascii_lowercase()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Remembers `username`'s nickname for later logins.
    pub fn save_nickname(&self, username: &str, nick: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO nicknames (username_key, nick) VALUES (?1, ?2)
             ON CONFLICT (username_key) DO UPDATE SET nick = excluded.nick",
            params![username.to_ascii_lowercase(), nick],
        )?;
        Ok(())
    }

    /// Forgets the session (logout).
    pub fn clear_session(&self) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM session", [])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::Authority;

    #[test]
    fn a_session_survives_reopening_and_can_be_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let cert = Authority::from_secret(&[1; 32]).issue("alice", b"peer", 100, 1);
        let session = Session { certificate: cert, nick: "Alice".into() };
        {
            let store = NodeStore::open(dir.path()).unwrap();
            assert_eq!(store.session().unwrap(), None);
            store.save_session(&session).unwrap();
        }
        let store = NodeStore::open(dir.path()).unwrap();
        assert_eq!(store.session().unwrap(), Some(session.clone()));
        let renamed = Session { nick: "A".into(), ..session };
        store.save_session(&renamed).unwrap();
        assert_eq!(store.session().unwrap(), Some(renamed));
        store.clear_session().unwrap();
        assert_eq!(store.session().unwrap(), None);
    }

    #[test]
    fn nicknames_are_remembered_per_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        assert_eq!(store.nickname("alice").unwrap(), None);
        store.save_nickname("Alice", "Alice W").unwrap();
        store.save_nickname("alice", "Alice X").unwrap();
        assert_eq!(store.nickname("ALICE").unwrap(), Some("Alice X".into()));
    }
}
