//! The node's own database (`node.db` in its data directory): the login session (certificate
//! and nickname), nicknames seen, room events and messages, mutes, and (in [`dms`]) direct
//! messages with their outbox.
//!
//! All SQL of the node lives here; callers get typed methods.
//!
//! Room messages heard live are written behind: [`NodeStore::keep_message_soon`] takes a message
//! in at once (and says whether it is new), and the messages taken in are written together in
//! one transaction a moment later ([`WRITE_BEHIND`]), or as soon as anything else reads or writes
//! the database, so every query sees them. A node killed in that moment loses them from its own
//! history only: they are in the other members' histories, and the next catch-up brings them
//! back. Receipts of direct messages ([`NodeStore::mark_delivered_soon`]) are written behind
//! with them: a receipt lost so leaves its message in the outbox, to be sent again and confirmed
//! again by its receiver, who does not show it twice.

mod checkpoint;
mod dms;
mod messages;
mod reader;
mod rooms;
mod schema;
mod session;
pub mod sqlite;

pub use crate::dm::StoredDm;
pub use messages::StoredMessage;
pub use reader::{CatchUpSource, StoreReader};

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use thiserror::Error;

use crate::room::EventId;

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

/// How long a room message taken in waits to be written with the next ones: at a message every
/// few milliseconds (a busy room), several share one transaction rather than each paying for
/// its own; this node's own messages are shown once written, so this is also their echo.
pub const WRITE_BEHIND: Duration = Duration::from_millis(20);
/// Messages waiting beyond this many are written at once.
const MAX_UNWRITTEN: usize = 256;

/// Room messages and receipts taken in and not written yet.
#[derive(Debug, Default)]
struct Unwritten {
    messages: Vec<(StoredMessage, Vec<u8>)>,
    ids: HashSet<EventId>,
    /// Ids of direct messages whose receipt came.
    receipts: Vec<String>,
    since: Option<Instant>,
}

/// The node database.
#[derive(Debug)]
pub struct NodeStore {
    conn: Connection,
    /// The data directory the database is in (for [`NodeStore::reader`]).
    dir: PathBuf,
    unwritten: RefCell<Unwritten>,
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
        Ok(NodeStore { conn, dir: dir.to_path_buf(), unwritten: RefCell::default(), checkpoints: RefCell::default() })
    }

    /// A read-only connection to this database, for a thread beside the event loop.
    pub fn reader(&self) -> Result<StoreReader, StoreError> {
        StoreReader::open(&self.dir)
    }

    /// The connection, with every message taken in written first.
    fn conn(&self) -> &Connection {
        self.write_unwritten();
        &self.conn
    }

    /// Runs `f` in one transaction, after writing what was taken in into it: one commit instead
    /// of two. Inside a batch ([`Self::begin`]) `f` just joins it. Should `f` fail, what was taken
    /// in is rolled back with it, as a failed [`Self::write_unwritten`] would.
    fn transaction<T>(&self, f: impl FnOnce() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        if !self.conn.is_autocommit() {
            return f();
        }
        self.conn.execute_batch("BEGIN")?;
        self.write_unwritten();
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

    /// When the messages taken in are due to be written ([`Self::write_unwritten`]); `None`
    /// when none wait.
    pub fn write_due(&self) -> Option<Instant> {
        self.unwritten.borrow().since.map(|since| since + WRITE_BEHIND)
    }

    /// Writes the messages and receipts taken in, in one transaction (or in the one already
    /// open). A failure is logged: those messages come back with the next catch-up, and those
    /// direct messages are sent again.
    pub fn write_unwritten(&self) {
        let (messages, receipts) = {
            let mut unwritten = self.unwritten.borrow_mut();
            if unwritten.messages.is_empty() && unwritten.receipts.is_empty() {
                return;
            }
            unwritten.ids.clear();
            unwritten.since = None;
            (std::mem::take(&mut unwritten.messages), std::mem::take(&mut unwritten.receipts))
        };
        let outer = self.conn.is_autocommit();
        let written = (|| -> rusqlite::Result<()> {
            if outer {
                self.conn.execute_batch("BEGIN")?;
            }
            for (message, event) in &messages {
                self.insert_message(message, event)?;
            }
            for id in &receipts {
                self.conn.prepare_cached(dms::MARK_DELIVERED)?.execute(params![id])?;
            }
            if outer {
                self.conn.execute_batch("COMMIT")?;
            }
            Ok(())
        })();
        if let Err(error) = written {
            if outer && !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            tracing::error!(
                %error,
                messages = messages.len(),
                receipts = receipts.len(),
                "cannot keep room messages and receipts"
            );
        }
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
}

impl Drop for NodeStore {
    fn drop(&mut self) {
        self.write_unwritten();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::account_of;

    /// An id or room id named by `text`.
    pub(super) fn id_of(text: &str) -> EventId {
        use sha2::Digest;
        EventId::from_bytes(sha2::Sha256::digest(text.as_bytes()).into())
    }

    /// Message `i` of `room`, written from `peer`, with id `id`.
    pub(super) fn stored(id: &str, room: &str, i: u64, peer: &[u8]) -> StoredMessage {
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
    fn messages_kept_soon_are_seen_by_every_query_and_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let message = |i: u64| stored(&format!("m{i}"), "lobby", i, b"pb");
        {
            let store = NodeStore::open(dir.path()).unwrap();
            assert!(store.save_message(&message(1), b"m").unwrap());
            assert_eq!(store.write_due(), None);
            assert!(!store.keep_message_soon(message(1), b"m".to_vec()).unwrap(), "already written");
            assert!(store.keep_message_soon(message(2), b"m".to_vec()).unwrap());
            assert!(!store.keep_message_soon(message(2), b"m".to_vec()).unwrap(), "already waiting");
            assert!(store.write_due().is_some_and(|due| due <= Instant::now() + WRITE_BEHIND));
            // Any query writes what waits first.
            assert_eq!(store.last_message_seq(&id_of("lobby"), b"pb").unwrap(), 2);
            assert_eq!(store.write_due(), None);
            assert!(!store.save_message(&message(2), b"m").unwrap());
            assert!(store.knows_message(&id_of("m2")).unwrap());
            assert!(!store.knows_message(&id_of("m3")).unwrap());
            assert!(store.keep_message_soon(message(3), b"m".to_vec()).unwrap());
            store.write_unwritten();
            assert_eq!(store.write_due(), None);
            assert!(store.keep_message_soon(message(4), b"m".to_vec()).unwrap());
            assert!(store.knows_message(&id_of("m4")).unwrap());
            // Dropped with a message waiting: written on the way out.
        }
        let store = NodeStore::open(dir.path()).unwrap();
        assert_eq!(store.recent_messages(&id_of("lobby"), 10).unwrap(), (1..=4).map(message).collect::<Vec<_>>());
    }

    #[test]
    fn a_batch_open_when_messages_are_written_takes_them_in() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        let message = stored("m1", "lobby", 1, b"pb");
        store.begin().unwrap();
        assert!(store.keep_message_soon(message.clone(), b"m".to_vec()).unwrap());
        store.commit().unwrap();
        assert_eq!(store.write_due(), None);
        assert_eq!(store.recent_messages(&id_of("lobby"), 10).unwrap(), vec![message]);
    }
}
