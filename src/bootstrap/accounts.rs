//! The account database (`accounts.db` in the bootstrap's data directory): accounts with their
//! argon2id hashes, which peer is logged in as whom, failure records for throttling, and the
//! certificate serial counter. Every query is parameterised.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use thiserror::Error;

use super::password::username_key;
use super::throttle::FailureRecord;
use crate::store::sqlite::{self, OpenError};

/// File name of the account database inside the bootstrap's data directory.
pub const ACCOUNTS_DB: &str = "accounts.db";

const MIGRATIONS: &[&str] = &["
    CREATE TABLE accounts (
        username_key TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        peer_id BLOB PRIMARY KEY,
        username_key TEXT NOT NULL REFERENCES accounts (username_key) ON UPDATE CASCADE ON DELETE CASCADE
    );
    CREATE TABLE failures (
        key TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        window_start INTEGER NOT NULL,
        blocked_until INTEGER NOT NULL
    );
    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
"];

/// A failed account operation.
#[derive(Debug, Error)]
pub enum AccountError {
    #[error("username '{0}' is taken")]
    Taken(String),
    #[error("no account '{0}'")]
    NoSuchAccount(String),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("account database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// A registered account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// As the user typed it at registration (or rename).
    pub username: String,
    pub password_hash: String,
}

/// The account database.
#[derive(Debug)]
pub struct AccountStore {
    conn: Connection,
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

impl AccountStore {
    /// Opens `accounts.db` in `dir`.
    pub fn open(dir: &Path) -> Result<AccountStore, AccountError> {
        Ok(AccountStore { conn: sqlite::open(&dir.join(ACCOUNTS_DB), sqlite::Durability::Full, MIGRATIONS)? })
    }

    /// Whether a username (any case) is taken.
    pub fn exists(&self, username: &str) -> Result<bool, AccountError> {
        Ok(self.find(username)?.is_some())
    }

    /// The account called `username` (any case).
    pub fn find(&self, username: &str) -> Result<Option<Account>, AccountError> {
        Ok(self
            .conn
            .query_row(
                "SELECT username, password_hash FROM accounts WHERE username_key = ?1",
                params![username_key(username)],
                |r| Ok(Account { username: r.get(0)?, password_hash: r.get(1)? }),
            )
            .optional()?)
    }

    /// Adds an account; [`AccountError::Taken`] if the name exists in any case.
    pub fn create(&self, username: &str, password_hash: &str, now: u64) -> Result<(), AccountError> {
        self.conn
            .execute(
                "INSERT INTO accounts (username_key, username, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![username_key(username), username, password_hash, now as i64],
            )
            .map_err(|e| if is_unique_violation(&e) { AccountError::Taken(username.to_string()) } else { e.into() })?;
        Ok(())
    }

    /// Renames an account atomically: the old name is free afterwards and sessions follow.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<(), AccountError> {
        let tx = self.conn.transaction()?;
        let changed = tx
            .execute(
                "UPDATE accounts SET username_key = ?1, username = ?2 WHERE username_key = ?3",
                params![username_key(new), new, username_key(old)],
            )
            .map_err(|e| if is_unique_violation(&e) { AccountError::Taken(new.to_string()) } else { e.into() })?;
        if changed == 0 {
            return Err(AccountError::NoSuchAccount(old.to_string()));
        }
        tx.commit()?;
        Ok(())
    }

    /// Records in one transaction that `peer_id` is logged in as `username`, forgets the failure
    /// records under `forget` (a login that succeeded), and draws the certificate's serial
    /// number (1, 2, …, durable across restarts).
    pub fn begin_session(&mut self, peer_id: &[u8], username: &str, forget: &[String]) -> Result<u64, AccountError> {
        let tx = self.conn.transaction()?;
        for key in forget {
            tx.execute("DELETE FROM failures WHERE key = ?1", params![key])?;
        }
        tx.execute(
            "INSERT INTO sessions (peer_id, username_key) VALUES (?1, ?2)
             ON CONFLICT (peer_id) DO UPDATE SET username_key = excluded.username_key",
            params![peer_id, username_key(username)],
        )?;
        let serial: i64 = tx.query_row(
            "INSERT INTO counters (name, value) VALUES ('serial', 1)
             ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
            [],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(serial as u64)
    }

    /// The account `peer_id` is logged in as.
    pub fn session(&self, peer_id: &[u8]) -> Result<Option<Account>, AccountError> {
        Ok(self
            .conn
            .query_row(
                "SELECT a.username, a.password_hash FROM sessions s JOIN accounts a USING (username_key)
                 WHERE s.peer_id = ?1",
                params![peer_id],
                |r| Ok(Account { username: r.get(0)?, password_hash: r.get(1)? }),
            )
            .optional()?)
    }

    /// Ends `peer_id`'s session.
    pub fn end_session(&self, peer_id: &[u8]) -> Result<(), AccountError> {
        self.conn.execute("DELETE FROM sessions WHERE peer_id = ?1", params![peer_id])?;
        Ok(())
    }

    /// The failure record under `key`.
    pub fn failures(&self, key: &str) -> Result<Option<FailureRecord>, AccountError> {
        Ok(self
            .conn
            .query_row("SELECT failures, window_start, blocked_until FROM failures WHERE key = ?1", params![key], |r| {
                Ok(FailureRecord {
                    failures: r.get(0)?,
                    window_start: r.get::<_, i64>(1)? as u64,
                    blocked_until: r.get::<_, i64>(2)? as u64,
                })
            })
            .optional()?)
    }

    /// Stores the failure record under `key`.
    pub fn set_failures(&self, key: &str, record: &FailureRecord) -> Result<(), AccountError> {
        self.conn.execute(
            "INSERT INTO failures (key, failures, window_start, blocked_until) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,
                 window_start = excluded.window_start, blocked_until = excluded.blocked_until",
            params![key, record.failures, record.window_start as i64, record.blocked_until as i64],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, AccountStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = AccountStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn names_are_unique_without_regard_to_case() {
        let (_dir, store) = store();
        store.create("Alice", "$argon2id$x", 1).unwrap();
        assert!(matches!(store.create("alice", "$argon2id$y", 2), Err(AccountError::Taken(_))));
        assert!(matches!(store.create("ALICE", "$argon2id$y", 2), Err(AccountError::Taken(_))));
        let account = store.find("aLiCe").unwrap().unwrap();
        assert_eq!(account.username, "Alice");
    }

    #[test]
    fn rename_frees_the_old_name_and_moves_sessions() {
        let (_dir, mut store) = store();
        store.create("alice", "h1", 1).unwrap();
        store.create("bob", "h2", 1).unwrap();
        store.begin_session(b"peer-a", "alice", &[]).unwrap();
        assert!(matches!(store.rename("alice", "BOB"), Err(AccountError::Taken(_))));
        store.rename("alice", "alicia").unwrap();
        assert!(!store.exists("alice").unwrap());
        assert_eq!(store.session(b"peer-a").unwrap().unwrap().username, "alicia");
        store.create("alice", "h3", 2).unwrap();
        assert!(matches!(store.rename("nobody", "x-y-z"), Err(AccountError::NoSuchAccount(_))));
    }

    #[test]
    fn serials_increase_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = AccountStore::open(dir.path()).unwrap();
            store.create("alice", "h1", 1).unwrap();
            assert_eq!(store.begin_session(b"peer-a", "alice", &[]).unwrap(), 1);
            assert_eq!(store.begin_session(b"peer-b", "alice", &[]).unwrap(), 2);
        }
        let mut store = AccountStore::open(dir.path()).unwrap();
        assert_eq!(store.begin_session(b"peer-a", "alice", &[]).unwrap(), 3);
    }

    #[test]
    fn failure_records_round_trip_and_a_session_forgets_them() {
        let (_dir, mut store) = store();
        store.create("alice", "h1", 1).unwrap();
        let record = FailureRecord { failures: 3, window_start: 10, blocked_until: 40 };
        store.set_failures("user:alice", &record).unwrap();
        store.set_failures("peer:a", &record).unwrap();
        store.set_failures("user:bob", &record).unwrap();
        assert_eq!(store.failures("user:alice").unwrap(), Some(record));
        store.begin_session(b"peer-a", "alice", &["user:alice".into(), "peer:a".into()]).unwrap();
        assert_eq!(store.failures("user:alice").unwrap(), None);
        assert_eq!(store.failures("peer:a").unwrap(), None);
        assert_eq!(store.failures("user:bob").unwrap(), Some(record));
        assert_eq!(store.session(b"peer-a").unwrap().unwrap().username, "alice");
    }
}
