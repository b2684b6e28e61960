//! The account database (`accounts.db` in the bootstrap's data directory): accounts with their
//! stable ids and argon2id hashes, names freed by a rename (reserved to their account for a
//! while) and each account's latest rename, which peer is logged in as whom, which peers held
//! each account's certificate (its known machines), failure records for throttling, and the
//! certificate serial counter. Every query is parameterised. It stores what the throttling
//! policy decides and never decides anything itself.
//!
//! A name is *held* by an account while it is that account's username, or while a reservation
//! left by the account's rename lasts: nobody else may register it or rename to it then.

use std::path::{Path, PathBuf};

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
    "
    CREATE TABLE holders (
        account_id BLOB NOT NULL,
        peer_id BLOB NOT NULL,
        last_at INTEGER NOT NULL,
        PRIMARY KEY (account_id, peer_id)
    ) WITHOUT ROWID;
    CREATE INDEX holders_by_peer ON holders (peer_id);
    INSERT OR IGNORE INTO holders (account_id, peer_id, last_at)
        SELECT a.account_id, s.peer_id, CAST(strftime('%s', 'now') AS INTEGER)
        FROM sessions s JOIN accounts a USING (username_key);
    DELETE FROM failures;
",
    "
    CREATE INDEX holders_by_last_at ON holders (last_at);
    CREATE INDEX reserved_names_by_account ON reserved_names (account_id, until);
    DELETE FROM reserved_names WHERE until <= CAST(strftime('%s', 'now') AS INTEGER);
",
    // When each name was let go of; the reservations kept from before count as let go of now.
    "
    ALTER TABLE reserved_names ADD COLUMN freed_at INTEGER NOT NULL DEFAULT 0;
    UPDATE reserved_names SET freed_at = CAST(strftime('%s', 'now') AS INTEGER);
",
];

/// The most names one account holds reserved at once (the latest it let go of): renaming again
/// and again cannot take names away from everyone else. A rename that would free a name let go
/// of so recently that a certificate with it may still be valid is refused instead
/// ([`AccountError::RenamedTooOften`]).
pub const RESERVED_PER_ACCOUNT_MAX: u32 = 3;

/// The reservations of account `?1` beyond the [`RESERVED_PER_ACCOUNT_MAX`] (`?2`) it let go
/// of last.
const RESERVED_BEYOND_MAX: &str = "account_id = ?1 AND username_key NOT IN
     (SELECT username_key FROM reserved_names WHERE account_id = ?1 ORDER BY until DESC LIMIT ?2)";

/// The most machines remembered per account as having held its certificate (the most recent).
pub const HOLDERS_PER_ACCOUNT_MAX: u32 = 32;
/// The most machines that may hold valid certificates of one account at once: a login from
/// another machine waits until the oldest of theirs has expired (a certificate cannot be taken
/// back, so what each peer can sign as an account is bounded only this way).
pub const CERTIFIED_MACHINES_MAX: usize = HOLDERS_PER_ACCOUNT_MAX as usize;
/// A machine that has not held an account's certificate for this long is forgotten (180 days).
pub const HOLDER_MEMORY_SECS: u64 = 180 * 24 * 60 * 60;

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
    #[error(
        "too many renames for now: this one would free a name this account let go of so recently \
         that certificates with it may still be valid; try again in {wait_secs} s"
    )]
    RenamedTooOften { wait_secs: u64 },
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
    /// The directory the database is in (for [`AccountStore::reader`]).
    dir: PathBuf,
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
        let conn = sqlite::open(&dir.join(ACCOUNTS_DB), sqlite::Durability::Full, MIGRATIONS)?;
        Ok(AccountStore { conn, dir: dir.to_path_buf() })
    }

    /// Another connection to the same database, for reads on another thread that must never
    /// wait: a read that meets a lock fails at once instead of waiting for it.
    pub fn reader(&self) -> Result<AccountStore, AccountError> {
        let reader = AccountStore::open(&self.dir)?;
        reader.conn.busy_timeout(std::time::Duration::ZERO)?;
        Ok(reader)
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
    /// reserved to the account until `now + hold_secs` (or `now + certified_secs`, the
    /// certificates' lifetime, if that is later), and the rename is kept as the account's
    /// latest. [`AccountError::Taken`] when another account holds `new`. A name the account
    /// itself reserved may be taken back. Only the [`RESERVED_PER_ACCOUNT_MAX`] names let go of
    /// last stay reserved; [`AccountError::RenamedTooOften`], changing nothing, when the rename
    /// would free one let go of less than `certified_secs` (the certificates' lifetime) ago.
    pub fn rename(
        &mut self,
        id: AccountId,
        new: &str,
        now: u64,
        hold_secs: u64,
        certified_secs: u64,
    ) -> Result<String, AccountError> {
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
            // Held at least as long as a certificate naming it may still be valid: a shorter
            // hold would let another account register it while the old one's still is.
            let until = now.saturating_add(hold_secs.max(certified_secs)).min(i64::MAX as u64);
            let at = now.min(i64::MAX as u64) as i64;
            tx.execute(
                "INSERT INTO reserved_names (username_key, account_id, until, freed_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (username_key) DO UPDATE SET account_id = excluded.account_id, until = excluded.until,
                     freed_at = excluded.freed_at",
                params![username_key(&old), &id.as_bytes()[..], until as i64, at],
            )?;
            // A name still on a valid certificate stays reserved: refuse rather than free it.
            let last_freed: Option<i64> = tx.query_row(
                &format!("SELECT MAX(freed_at) FROM reserved_names WHERE until > ?3 AND {RESERVED_BEYOND_MAX}"),
                params![&id.as_bytes()[..], RESERVED_PER_ACCOUNT_MAX, at],
                |r| r.get(0),
            )?;
            if let Some(last_freed) = last_freed {
                let free_at = (last_freed.max(0) as u64).saturating_add(certified_secs);
                if free_at > now {
                    return Err(AccountError::RenamedTooOften { wait_secs: free_at - now });
                }
            }
            tx.execute(
                &format!("DELETE FROM reserved_names WHERE {RESERVED_BEYOND_MAX}"),
                params![&id.as_bytes()[..], RESERVED_PER_ACCOUNT_MAX],
            )?;
        }
        tx.execute("DELETE FROM reserved_names WHERE until <= ?1", params![now.min(i64::MAX as u64) as i64])?;
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

    /// Records in one transaction that `peer_id` is logged in as account `id` at `now` (and
    /// so holds its certificate: the peer is remembered as one of the account's machines),
    /// forgets the failure records under `forget` (a login that succeeded), and draws the
    /// certificate's serial number (1, 2, …, durable across restarts).
    pub fn begin_session(
        &mut self,
        peer_id: &[u8],
        id: AccountId,
        forget: &[String],
        now: u64,
    ) -> Result<u64, AccountError> {
        let account = &id.as_bytes()[..];
        let at = now.min(i64::MAX as u64) as i64;
        let tx = self.conn.transaction()?;
        for key in forget {
            tx.execute("DELETE FROM failures WHERE key = ?1", params![key])?;
        }
        let inserted = tx.execute(
            "INSERT INTO sessions (peer_id, username_key) SELECT ?1, username_key FROM accounts WHERE account_id = ?2
             ON CONFLICT (peer_id) DO UPDATE SET username_key = excluded.username_key",
            params![peer_id, account],
        )?;
        if inserted == 0 {
            return Err(AccountError::NoSuchAccount(id.to_hex()));
        }
        tx.execute(
            "INSERT INTO holders (account_id, peer_id, last_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (account_id, peer_id) DO UPDATE SET last_at = max(last_at, excluded.last_at)",
            params![account, peer_id, at],
        )?;
        let forgotten: Vec<Vec<u8>> = tx
            .prepare(
                "DELETE FROM holders WHERE account_id = ?1 AND peer_id NOT IN
                     (SELECT peer_id FROM holders WHERE account_id = ?1 ORDER BY last_at DESC LIMIT ?2)
                 RETURNING peer_id",
            )?
            .query_map(params![account, HOLDERS_PER_ACCOUNT_MAX], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        // The account's sessions on the machines forgotten end with them (one account logging
        // in from ever new peers must not grow the database without end): logged out, they log
        // in again.
        for peer in forgotten {
            tx.execute(
                "DELETE FROM sessions WHERE peer_id = ?1
                     AND username_key = (SELECT username_key FROM accounts WHERE account_id = ?2)",
                params![peer, account],
            )?;
        }
        let forgotten_before = now.saturating_sub(HOLDER_MEMORY_SECS).min(i64::MAX as u64) as i64;
        tx.execute("DELETE FROM holders WHERE last_at < ?1", params![forgotten_before])?;
        let serial: i64 = tx.query_row(
            "INSERT INTO counters (name, value) VALUES ('serial', 1)
             ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
            [],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(serial as u64)
    }

    /// Whether `peer_id` held a certificate of account `id` (within [`HOLDER_MEMORY_SECS`]).
    pub fn held(&self, id: AccountId, peer_id: &[u8]) -> Result<bool, AccountError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM holders WHERE account_id = ?1 AND peer_id = ?2)",
            params![&id.as_bytes()[..], peer_id],
            |r| r.get(0),
        )?)
    }

    /// When account `id`'s machines other than `peer_id` were last given its certificate, for
    /// those given one after `since`, oldest first.
    pub fn others_certified_after(&self, id: AccountId, peer_id: &[u8], since: u64) -> Result<Vec<u64>, AccountError> {
        let since = since.min(i64::MAX as u64) as i64;
        let mut statement = self.conn.prepare_cached(
            "SELECT last_at FROM holders WHERE account_id = ?1 AND peer_id != ?2 AND last_at > ?3 ORDER BY last_at",
        )?;
        let times = statement.query_map(params![&id.as_bytes()[..], peer_id, since], |r| r.get::<_, i64>(0))?;
        Ok(times.map(|t| t.map(|t| t.max(0) as u64)).collect::<Result<_, _>>()?)
    }

    /// Whether `peer_id` held a certificate of any account: a known machine.
    pub fn known_machine(&self, peer_id: &[u8]) -> Result<bool, AccountError> {
        Ok(self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM holders WHERE peer_id = ?1)", params![peer_id], |r| r.get(0))?)
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
                    window_start: r.get::<_, i64>(1)?.max(0) as u64,
                    blocked_until: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })
            .optional()?)
    }

    /// Deletes the failure records that block nothing at `now` and whose window of
    /// `window_secs` is over; how many.
    pub fn prune_failures(&self, now: u64, window_secs: u64) -> Result<usize, AccountError> {
        let now_i = now.min(i64::MAX as u64) as i64;
        let window_over = now.saturating_sub(window_secs).min(i64::MAX as u64) as i64;
        Ok(self.conn.execute(
            "DELETE FROM failures WHERE blocked_until <= ?1 AND window_start < ?2",
            params![now_i, window_over],
        )?)
    }

    /// Stores the failure record under `key`.
    pub fn set_failures(&self, key: &str, record: &FailureRecord) -> Result<(), AccountError> {
        self.conn.execute(
            "INSERT INTO failures (key, failures, window_start, blocked_until) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,
                 window_start = excluded.window_start, blocked_until = excluded.blocked_until",
            params![
                key,
                record.failures,
                record.window_start.min(i64::MAX as u64) as i64,
                record.blocked_until.min(i64::MAX as u64) as i64
            ],
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
        store.begin_session(b"peer-a", alice, &[], 1).unwrap();
        assert!(matches!(store.rename(alice, "BOB", 10, HOLD, 0), Err(AccountError::Taken(_))));
        assert_eq!(store.rename(alice, "alicia", 10, HOLD, 0).unwrap(), "alice");
        let session = store.session(b"peer-a").unwrap().unwrap();
        assert_eq!((session.id, session.username.as_str()), (alice, "alicia"));
        assert_eq!(store.latest_rename(alice).unwrap().unwrap().old, "alice");
        // Held by alicia's account until the reservation ends: nobody else registers it or
        // renames to it, and a look-up finds her.
        assert!(store.find("alice").unwrap().is_none());
        assert_eq!(store.holder("ALICE", 50).unwrap().map(|a| a.id), Some(alice));
        assert!(matches!(store.create("Alice", "h3", 50), Err(AccountError::Taken(_))));
        assert!(matches!(store.rename(bob, "alice", 50, HOLD, 0), Err(AccountError::Taken(_))));
        // Afterwards the name is free.
        assert_eq!(store.holder("alice", 10 + HOLD).unwrap(), None);
        let newcomer = store.create("alice", "h3", 10 + HOLD).unwrap();
        assert!(newcomer != alice && newcomer != bob);
        assert!(matches!(store.rename(AccountId::random(), "x-y-z", 1, HOLD, 0), Err(AccountError::NoSuchAccount(_))));
    }

    #[test]
    fn a_name_let_go_of_is_held_while_a_certificate_naming_it_may_be_valid_however_short_the_hold() {
        const CERTIFIED: u64 = 300;
        let (_dir, mut store) = store();
        let alice = store.create("alice", "h1", 1).unwrap();
        assert_eq!(store.rename(alice, "alicia", 10, 5, CERTIFIED).unwrap(), "alice");
        // Her certificate as alice, issued just before, is valid until 10 + CERTIFIED.
        assert!(matches!(store.create("alice", "h2", 100), Err(AccountError::Taken(_))));
        assert_eq!(store.holder("alice", 10 + CERTIFIED - 1).unwrap().map(|a| a.id), Some(alice));
        assert_eq!(store.holder("alice", 10 + CERTIFIED).unwrap(), None);
        assert!(store.create("alice", "h2", 10 + CERTIFIED).is_ok());
    }

    #[test]
    fn an_account_holds_only_the_names_it_let_go_of_last() {
        let (_dir, mut store) = store();
        let alice = store.create("alice", "h1", 1).unwrap();
        for (i, name) in ["alice1", "alice2", "alice3", "alice4"].iter().enumerate() {
            store.rename(alice, name, 10 + i as u64, 100, 0).unwrap();
        }
        // Held: alice1, alice2, alice3 (the last three let go of); alice is free again.
        assert_eq!(store.holder("alice", 20).unwrap(), None);
        for name in ["alice1", "alice2", "alice3"] {
            assert_eq!(store.holder(name, 20).unwrap().map(|a| a.id), Some(alice), "{name}");
        }
        // Reservations that ended are gone from the table at the next rename.
        store.rename(alice, "alice5", 500, 100, 0).unwrap();
        let rows: i64 = store.conn.query_row("SELECT COUNT(*) FROM reserved_names", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 1, "only alice4, let go of now");
    }

    #[test]
    fn a_name_on_a_certificate_that_may_still_be_valid_is_never_freed_by_renaming_again() {
        const CERTIFIED: u64 = 50;
        let (_dir, mut store) = store();
        let alice = store.create("alice", "h1", 1).unwrap();
        for (i, name) in ["alice1", "alice2", "alice3"].iter().enumerate() {
            store.rename(alice, name, 10 + i as u64, 1000, CERTIFIED).unwrap();
        }
        // A fourth rename would free "alice", let go of at 10: refused until 10 + CERTIFIED.
        let early = store.rename(alice, "alice4", 20, 1000, CERTIFIED);
        assert!(matches!(early, Err(AccountError::RenamedTooOften { wait_secs: 40 })), "{early:?}");
        assert!(early.unwrap_err().to_string().contains("try again in 40 s"));
        // Nothing changed: the account is still alice3 and holds alice.
        assert_eq!(store.find("alice3").unwrap().map(|a| a.id), Some(alice));
        assert_eq!(store.holder("alice", 20).unwrap().map(|a| a.id), Some(alice));
        assert!(matches!(store.create("alice", "h2", 20), Err(AccountError::Taken(_))));
        assert_eq!(store.latest_rename(alice).unwrap().map(|r| r.new), Some("alice3".into()));
        // Once no certificate with it can be valid, renaming again frees it.
        assert_eq!(store.rename(alice, "alice4", 10 + CERTIFIED, 1000, CERTIFIED).unwrap(), "alice3");
        assert_eq!(store.holder("alice", 10 + CERTIFIED).unwrap(), None);
    }

    #[test]
    fn reservations_from_before_the_upgrade_count_as_let_go_of_at_the_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ACCOUNTS_DB);
        let old = sqlite::open(&path, sqlite::Durability::Full, &MIGRATIONS[..4]).unwrap();
        old.execute("INSERT INTO reserved_names (username_key, account_id, until) VALUES ('a', x'00', 1)", []).unwrap();
        drop(old);
        let store = AccountStore::open(dir.path()).unwrap();
        let freed_at: i64 = store.conn.query_row("SELECT freed_at FROM reserved_names", [], |r| r.get(0)).unwrap();
        assert!(freed_at > 1_700_000_000, "{freed_at}");
    }

    #[test]
    fn an_account_may_take_back_the_name_it_reserved() {
        let (_dir, mut store) = store();
        let alice = store.create("alice", "h1", 1).unwrap();
        store.rename(alice, "alicia", 10, 100, 0).unwrap();
        store.rename(alice, "Alice", 20, 100, 0).unwrap();
        assert_eq!(store.find("alice").unwrap().map(|a| (a.id, a.username)), Some((alice, "Alice".into())));
        assert_eq!(store.holder("alicia", 30).unwrap().map(|a| a.id), Some(alice), "alicia is held now");
        assert_eq!(store.latest_rename(alice).unwrap().map(|r| r.new), Some("Alice".into()));
    }

    #[test]
    fn serials_increase_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let alice;
        {
            let mut store = AccountStore::open(dir.path()).unwrap();
            alice = store.create("alice", "h1", 1).unwrap();
            assert_eq!(store.begin_session(b"peer-a", alice, &[], 1).unwrap(), 1);
            assert_eq!(store.begin_session(b"peer-b", alice, &[], 1).unwrap(), 2);
        }
        let mut store = AccountStore::open(dir.path()).unwrap();
        assert_eq!(store.begin_session(b"peer-a", alice, &[], 1).unwrap(), 3);
        assert!(store.held(alice, b"peer-b").unwrap(), "known machines survive reopening");
    }

    #[test]
    fn failure_records_round_trip_and_a_session_forgets_them() {
        let (_dir, mut store) = store();
        let alice = store.create("alice", "h1", 1).unwrap();
        let record = FailureRecord { failures: 3, window_start: 10, blocked_until: 40 };
        store.set_failures("user:alice", &record).unwrap();
        store.set_failures("peer:a", &record).unwrap();
        store.set_failures("user:bob", &record).unwrap();
        assert_eq!(store.failures("user:alice").unwrap(), Some(record));
        store.begin_session(b"peer-a", alice, &["user:alice".into(), "peer:a".into()], 20).unwrap();
        assert_eq!(store.failures("user:alice").unwrap(), None);
        assert_eq!(store.failures("peer:a").unwrap(), None);
        assert_eq!(store.failures("user:bob").unwrap(), Some(record));
        assert_eq!(store.session(b"peer-a").unwrap().unwrap().username, "alice");
        // Stale records go; records that still block or count stay.
        store.set_failures("old", &FailureRecord { failures: 1, window_start: 10, blocked_until: 0 }).unwrap();
        store.set_failures("blocking", &FailureRecord { failures: 9, window_start: 10, blocked_until: 5000 }).unwrap();
        store.set_failures("recent", &FailureRecord { failures: 1, window_start: 900, blocked_until: 0 }).unwrap();
        assert_eq!(store.prune_failures(1000, 600).unwrap(), 2, "old and user:bob");
        assert_eq!(store.failures("blocking").unwrap().map(|r| r.failures), Some(9));
        assert_eq!(store.failures("recent").unwrap().map(|r| r.failures), Some(1));
    }

    #[test]
    fn the_machines_that_held_a_certificate_are_remembered_within_bounds() {
        let (_dir, mut store) = store();
        let alice = store.create("alice", "h1", 1).unwrap();
        let bob = store.create("bob", "h2", 1).unwrap();
        assert!(matches!(store.begin_session(b"p", AccountId::random(), &[], 1), Err(AccountError::NoSuchAccount(_))));
        store.begin_session(b"home", alice, &[], 100).unwrap();
        assert!(store.held(alice, b"home").unwrap());
        assert!(!store.held(bob, b"home").unwrap(), "per account");
        assert!(store.known_machine(b"home").unwrap());
        assert!(!store.known_machine(b"stranger").unwrap());
        // The most recent machines are kept, up to the bound.
        for i in 0..HOLDERS_PER_ACCOUNT_MAX {
            store.begin_session(format!("m{i}").as_bytes(), alice, &[], 200 + u64::from(i)).unwrap();
        }
        assert!(!store.held(alice, b"home").unwrap(), "the oldest machine gave way");
        assert!(store.held(alice, b"m0").unwrap());
        // A machine unseen for HOLDER_MEMORY_SECS is forgotten.
        store.begin_session(b"later", bob, &[], 200 + HOLDER_MEMORY_SECS + 100).unwrap();
        assert!(!store.known_machine(b"m0").unwrap());
        assert!(store.held(bob, b"later").unwrap());
    }

    #[test]
    fn one_account_logged_in_on_ever_new_machines_keeps_only_its_latest_sessions() {
        let (_dir, mut store) = store();
        let alice = store.create("alice", "h1", 1).unwrap();
        let bob = store.create("bob", "h2", 1).unwrap();
        store.begin_session(b"bob's", bob, &[], 100).unwrap();
        store.begin_session(b"home", alice, &[], 100).unwrap();
        let machines = 10 * HOLDERS_PER_ACCOUNT_MAX;
        for i in 0..machines {
            store.begin_session(format!("m{i}").as_bytes(), alice, &[], 200 + u64::from(i)).unwrap();
        }
        let sessions: u32 = store.conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0)).unwrap();
        assert_eq!(sessions, HOLDERS_PER_ACCOUNT_MAX + 1, "alice's latest machines, and bob's");
        assert!(store.session(b"home").unwrap().is_none(), "the machine that renewed longest ago logs in again");
        assert_eq!(store.session(format!("m{}", machines - 1).as_bytes()).unwrap().map(|a| a.id), Some(alice));
        assert_eq!(store.session(b"bob's").unwrap().map(|a| a.id), Some(bob), "another account's session stays");
    }
}
