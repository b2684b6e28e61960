//! The node's own database (`node.db` in its data directory): the login session (certificate
//! and nickname), nicknames seen, room events and messages, mutes, and (in [`dms`]) direct
//! messages with their outbox.
//!
//! All SQL of the node lives here; callers get typed methods.
//!
//! One connection writes: the node's store worker (`node/store_worker.rs`) owns it, and runs
//! what the event loop queues in batches, one transaction each ([`NodeStore::begin`],
//! [`NodeStore::commit`]); the methods here join a transaction that is open. Catch-up answers
//! are read beside it with a read-only [`StoreReader`].

mod checkpoint;
mod dms;
mod mailbox;
mod messages;
mod reader;
mod rooms;
mod schema;
mod search;
mod session;
pub mod sqlite;

pub use crate::dm::StoredDm;
pub use mailbox::LeftLetter;
pub use messages::{Readable, StoredMessage};
pub use reader::{CatchUpSource, StoreReader};
pub use search::Found;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::Connection;
use thiserror::Error;

/// File name of the node database inside the data directory.
pub const NODE_DB: &str = "node.db";

/// A number as SQLite keeps it (numbers beyond `i64::MAX` are refused before they get here;
/// clamped, never wrapped).
pub(super) fn sql_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

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

/// A saved login (the type is the session engine's).
pub use crate::session::Session;

/// The node database.
#[derive(Debug)]
pub struct NodeStore {
    conn: Connection,
    /// The data directory the database is in (for [`NodeStore::reader`]).
    dir: PathBuf,
    checkpoints: RefCell<checkpoint::CheckpointClock>,
}

/// Prepared statements kept for reuse: every statement of the node, with room to spare.
const STATEMENT_CACHE: usize = 64;

impl NodeStore {
    /// Opens `node.db` in `dir`.
    pub fn open(dir: &Path) -> Result<NodeStore, StoreError> {
        let conn = sqlite::open(&dir.join(NODE_DB), sqlite::Durability::Normal, schema::MIGRATIONS)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Not in exclusive locking mode: a `StoreReader` beside the event loop reads it too.
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint::AUTO_CHECKPOINT_PAGES)?;
        Ok(NodeStore { conn, dir: dir.to_path_buf(), checkpoints: RefCell::default() })
    }

    /// A read-only connection to this database, for a thread beside the event loop.
    pub fn reader(&self) -> Result<StoreReader, StoreError> {
        StoreReader::open(&self.dir)
    }

    fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` in one transaction; inside a batch ([`Self::begin`]) `f` just joins it.
    fn transaction<T>(&self, f: impl FnOnce() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        if !self.conn.is_autocommit() {
            return f();
        }
        self.conn.execute_batch("BEGIN")?;
        let result = f().and_then(|value| self.conn.execute_batch("COMMIT").map(|()| value));
        if result.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        result
    }

    /// Runs a statement, prepared once and cached.
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.conn().prepare_cached(sql)?.execute(params)
    }

    /// Runs a query for one row, prepared once and cached.
    fn row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.conn().prepare_cached(sql)?.query_row(params, f)
    }

    /// Copies the write-ahead log back into the database when writes have gone quiet (see
    /// [`checkpoint`]); called from time to time. Whether it did.
    pub fn checkpoint_if_quiet(&self, now: Instant) -> bool {
        let changes = self.conn.total_changes();
        let mut clock = self.checkpoints.borrow_mut();
        if !clock.due(changes, now) {
            return false;
        }
        // Tried once per quiet spell: a failure is not tried again on every tick, but after
        // the next writes (SQLite's own checkpoint still bounds the log).
        clock.done(changes);
        let done = self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        if let Err(error) = &done {
            tracing::warn!(%error, "cannot copy the write-ahead log into the database");
        }
        done.is_ok()
    }

    /// Starts a batch of writes, committed together by [`Self::commit`] (much faster than one
    /// commit each).
    pub fn begin(&self) -> Result<(), StoreError> {
        self.exec("BEGIN", [])?;
        Ok(())
    }

    /// Commits the batch started by [`Self::begin`].
    pub fn commit(&self) -> Result<(), StoreError> {
        self.exec("COMMIT", [])?;
        Ok(())
    }

    /// Gives up the batch started by [`Self::begin`] (after a failed commit), if still open.
    pub fn rollback(&self) {
        if !self.conn.is_autocommit()
            && let Err(error) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::error!(%error, "cannot roll back");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::room::EventId;
    use crate::testing::account_of;

    /// An id or room id named by `text`.
    pub(crate) fn id_of(text: &str) -> EventId {
        use sha2::Digest;
        EventId::from_bytes(sha2::Sha256::digest(text.as_bytes()).into())
    }

    /// Message `i` of `room`, written from `peer`, with id `id`.
    pub(crate) fn stored(id: &str, room: &str, i: u64, peer: &[u8]) -> StoredMessage {
        StoredMessage {
            id: id_of(id),
            room: id_of(room),
            account: account_of("bob"),
            author: "bob".into(),
            nick: "B".into(),
            text: format!("hi {i}"),
            ts_ms: 1000 + i,
            depth: i,
            peer: peer.to_vec(),
            seq: i,
            session: "s".into(),
            readable: Readable::Read,
        }
    }

    #[test]
    fn the_log_is_copied_into_the_database_once_writes_are_quiet() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        let db_size = || std::fs::metadata(dir.path().join(NODE_DB)).unwrap().len();
        let start = Instant::now();
        assert!(!store.checkpoint_if_quiet(start));
        for i in 0..50 {
            assert!(store.save_message(&stored(&format!("m{i}"), "lobby", i, b"pb"), &[7; 300]).unwrap());
        }
        let before = db_size();
        assert!(!store.checkpoint_if_quiet(start), "just written");
        assert!(store.checkpoint_if_quiet(start + checkpoint::QUIET));
        assert!(db_size() > before, "the messages' pages are in the database file now");
        assert!(!store.checkpoint_if_quiet(start + checkpoint::QUIET * 3), "nothing written since");
        assert_eq!(store.recent_messages(&id_of("lobby"), 100).unwrap().len(), 50);
    }

    #[test]
    fn a_batch_rolled_back_keeps_nothing_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        let message = stored("m1", "lobby", 1, b"pb");
        store.begin().unwrap();
        assert!(store.save_message(&message, b"m").unwrap());
        store.rollback();
        assert!(store.recent_messages(&id_of("lobby"), 10).unwrap().is_empty());
        store.begin().unwrap();
        assert!(store.save_message(&message, b"m").unwrap());
        store.commit().unwrap();
        assert_eq!(store.recent_messages(&id_of("lobby"), 10).unwrap(), vec![message]);
    }
}
