//! The account database (`accounts.db` in the bootstrap's data directory): accounts with their
//! stable ids and argon2id hashes, names freed by a rename (reserved to their account for a
//! while) and each account's latest rename, which peer is logged in as whom, failure records for
//! throttling, and the certificate serial counter. Every query is parameterised.
//!
//! A name is *held* by an account while it is that account's username, or while a reservation
//! left by the account's rename lasts: nobody else may register it or rename to it then.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use thiserror::Error;

use super::password::username_key;
use super::throttle::FailureRecord;
use crate::account::AccountId;
use crate::store::sqlite::{self, OpenError};

/// File name of the account database inside the bootstrap's data directory.
pub const ACCOUNTS_DB: &str = "accounts.db";

const MIGRATIONS: &[&str] = &[
    "
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
",
    "
    ALTER TABLE accounts ADD COLUMN account_id BLOB;
    UPDATE accounts SET account_id = randomblob(16) WHERE account_id IS NULL;
    CREATE UNIQUE INDEX accounts_by_id ON accounts (account_id);
    CREATE TABLE reserved_names (
        username_key TEXT PRIMARY KEY,
        account_id BLOB NOT NULL,
        until INTEGER NOT NULL
    );
    CREATE TABLE renames (
        account_id BLOB PRIMARY KEY,
        old TEXT NOT NULL,
        new TEXT NOT NULL,
        at INTEGER NOT NULL
    );
",
];

/// The latest rename of an account, kept so that a node whose answer was lost learns of it with
/// its next certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenameRecord {
    pub old: String,
    pub new: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

/// A failed account operation.
#[derive(Debug, Error)]
pub enum AccountError {
    #[error("username '{0}' is taken")]
    Taken(String),
    #[error("no account '{0}'")]
    NoSuchAccount(String),
    #[error("the account database holds a malformed account id")]
    BadAccountId,
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("account database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// A registered account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Stable for the account's whole life.
    pub id: AccountId,
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

/// An account from a row of (account_id, username, password_hash).
fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Account, AccountError>> {
    let id: Vec<u8> = r.get(0)?;
    let (username, password_hash) = (r.get(1)?, r.get(2)?);
    Ok(AccountId::from_slice(&id).map(|id| Account { id, username, password_hash }).ok_or(AccountError::BadAccountId))
}

/// The account a name is reserved to at `now`, if any (names held as usernames are not looked at).
fn reserved_for(conn: &Connection, username: &str, now: u64) -> Result<Option<AccountId>, AccountError> {
    let id: Option<Vec<u8>> = conn
        .query_row(
            "SELECT account_id FROM reserved_names WHERE username_key = ?1 AND until > ?2",
            params![username_key(username), now as i64],
            |r| r.get(0),
        )
        .optional()?;
    id.map(|id| AccountId::from_slice(&id).ok_or(AccountError::BadAccountId)).transpose()
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
        self.conn
            .query_row(
                "SELECT account_id, username, password_hash FROM accounts WHERE username_key = ?1",
                params![username_key(username)],
                account_row,
            )
            .optional()?
            .transpose()
    }

    /// The account that holds `username` (any case) at `now`: the one called so, else the one
    /// whose rename left the name reserved.
    pub fn holder(&self, username: &str, now: u64) -> Result<Option<Account>, AccountError> {
        if let Some(account) = self.find(username)? {
            return Ok(Some(account));
        }
        self.conn
            .query_row(
                "SELECT a.account_id, a.username, a.password_hash FROM reserved_names r
                 JOIN accounts a ON a.account_id = r.account_id
                 WHERE r.username_key = ?1 AND r.until > ?2",
                params![username_key(username), now as i64],
                account_row,
            )
            .optional()?
            .transpose()
    }

    /// Adds an account with a fresh id; [`AccountError::Taken`] if the name is held by anyone
    /// at `now` (in any case).
    pub fn create(&mut self, username: &str, password_hash: &str, now: u64) -> Result<AccountId, AccountError> {
        let id = AccountId::random();
        let tx = self.conn.transaction()?;
        if reserved_for(&tx, username, now)?.is_some() {
            return Err(AccountError::Taken(username.to_string()));
        }
        tx.execute(
            "INSERT INTO accounts (username_key, username, password_hash, created_at, account_id)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![username_key(username), username, password_hash, now as i64, &id.as_bytes()[..]],
        )
        .map_err(|e| if is_unique_violation(&e) { AccountError::Taken(username.to_string()) } else { e.into() })?;
        tx.commit()?;
        Ok(id)
    }

    /// Renames account `id` to `new` at `now`, atomically: sessions follow, the old name stays
    /// reserved to the account until `now + hold_secs`, and the rename is kept as the account's
    /// latest. [`AccountError::Taken`] when another account holds `new`. A name the account
    /// itself reserved may be taken back.
    pub fn rename(&mut self, id: AccountId, new: &str, now: u64, hold_secs: u64) -> Result<String, AccountError> {
        let tx = self.conn.transaction()?;
        let old: Option<String> = tx
            .query_row("SELECT username FROM accounts WHERE account_id = ?1", params![&id.as_bytes()[..]], |r| r.get(0))
            .optional()?;
        let Some(old) = old else { return Err(AccountError::NoSuchAccount(id.to_hex())) };
        if reserved_for(&tx, new, now)?.is_some_and(|holder| holder != id) {
            return Err(AccountError::Taken(new.to_string()));
        }
        tx.execute(
            "UPDATE accounts SET username_key = ?1, username = ?2 WHERE account_id = ?3",
            params![username_key(new), new, &id.as_bytes()[..]],
        )
        .map_err(|e| if is_unique_violation(&e) { AccountError::Taken(new.to_string()) } else { e.into() })?;
        tx.execute("DELETE FROM reserved_names WHERE username_key = ?1", params![username_key(new)])?;
        if username_key(&old) != username_key(new) {
            let until = now.saturating_add(hold_secs).min(i64::MAX as u64);
            tx.execute(
                "INSERT INTO reserved_names (username_key, account_id, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (username_key) DO UPDATE SET account_id = excluded.account_id, until = excluded.until",
                params![username_key(&old), &id.as_bytes()[..], until as i64],
            )?;
        }
        tx.execute(
            "INSERT INTO renames (account_id, old, new, at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (account_id) DO UPDATE SET old = excluded.old, new = excluded.new, at = excluded.at",
            params![&id.as_bytes()[..], old, new, now as i64],
        )?;
        tx.commit()?;
        Ok(old)
    }

    /// The latest rename of account `id`.
    pub fn latest_rename(&self, id: AccountId) -> Result<Option<RenameRecord>, AccountError> {
        Ok(self
            .conn
            .query_row("SELECT old, new, at FROM renames WHERE account_id = ?1", params![&id.as_bytes()[..]], |r| {
                Ok(RenameRecord { old: r.get(0)?, new: r.get(1)?, at: r.get::<_, i64>(2)?.max(0) as u64 })
            })
            .optional()?)
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
        self.conn
            .query_row(
                "SELECT a.account_id, a.username, a.password_hash FROM sessions s JOIN accounts a USING (username_key)
                 WHERE s.peer_id = ?1",
                params![peer_id],
                account_row,
            )
            .optional()?
            .transpose()
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
        let (_dir, mut store) = store();
        let id = store.create("Alice", "$argon2id$x", 1).unwrap();
        assert!(matches!(store.create("alice", "$argon2id$y", 2), Err(AccountError::Taken(_))));
        assert!(matches!(store.create("ALICE", "$argon2id$y", 2), Err(AccountError::Taken(_))));
        let account = store.find("aLiCe").unwrap().unwrap();
        assert_eq!((account.id, account.username.as_str()), (id, "Alice"));
    }

    #[test]
    fn a_renamed_account_keeps_its_id_and_holds_its_old_name_for_a_while() {
        const HOLD: u64 = 100;
        let (_dir, mut store) = store();
        let alice = store.create("alice", "h1", 1).unwrap();
        let bob = store.create("bob", "h2", 1).unwrap();
        assert_ne!(alice, bob);
        store.begin_session(b"peer-a", "alice", &[]).unwrap();
        assert!(matches!(store.rename(alice, "BOB", 10, HOLD), Err(AccountError::Taken(_))));
        assert_eq!(store.rename(alice, "alicia", 10, HOLD).unwrap(), "alice");
        let session = store.session(b"peer-a").unwrap().unwrap();
        assert_eq!((session.id, session.username.as_str()), (alice, "alicia"));
        assert_eq!(store.latest_rename(alice).unwrap().unwrap().old, "alice");
        // Held by alicia's account until the reservation ends: nobody else registers it or
        // renames to it, and a look-up finds her.
        assert!(store.find("alice").unwrap().is_none());
        assert_eq!(store.holder("ALICE", 50).unwrap().map(|a| a.id), Some(alice));
        assert!(matches!(store.create("Alice", "h3", 50), Err(AccountError::Taken(_))));
        assert!(matches!(store.rename(bob, "alice", 50, HOLD), Err(AccountError::Taken(_))));
        // Afterwards the name is free.
        assert_eq!(store.holder("alice", 10 + HOLD).unwrap(), None);
        let newcomer = store.create("alice", "h3", 10 + HOLD).unwrap();
        assert!(newcomer != alice && newcomer != bob);
        assert!(matches!(store.rename(AccountId::random(), "x-y-z", 1, HOLD), Err(AccountError::NoSuchAccount(_))));
    }

    #[test]
    fn an_account_may_take_back_the_name_it_reserved() {
        let (_dir, mut store) = store();
        let alice = store.create("alice", "h1", 1).unwrap();
        store.rename(alice, "alicia", 10, 100).unwrap();
        store.rename(alice, "Alice", 20, 100).unwrap();
        assert_eq!(store.find("alice").unwrap().map(|a| (a.id, a.username)), Some((alice, "Alice".into())));
        assert_eq!(store.holder("alicia", 30).unwrap().map(|a| a.id), Some(alice), "alicia is held now");
        assert_eq!(store.latest_rename(alice).unwrap().map(|r| r.new), Some("Alice".into()));
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
