//! A second connection to the node database, read-only, for a thread beside the event loop:
//! the reads a peer's catch-up request asks for (the signed bytes of control events by id, the
//! messages beyond the asker's marks) run there, so the event loop never waits for them.
//!
//! Never writes, and never decides what a peer may have: the room engine chose the events and
//! the bounds before the request gets here. It reads what was committed when its read began,
//! so the node writes what it took in before it hands a read over.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{NODE_DB, StoreError, messages, rooms};
use crate::protocol::sync::Mark;
use crate::room::EventId;

/// A read-only connection to a node's `node.db`.
pub struct StoreReader {
    conn: Connection,
}

impl std::fmt::Debug for StoreReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreReader").finish_non_exhaustive()
    }
}

impl StoreReader {
    /// Opens the database of data directory `dir`, which [`super::NodeStore::open`] made.
    pub fn open(dir: &Path) -> Result<StoreReader, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(dir.join(NODE_DB), flags)?;
        conn.busy_timeout(super::sqlite::BUSY_TIMEOUT)?;
        Ok(StoreReader { conn })
    }
}

/// The reads a catch-up answer needs, on a [`StoreReader`] or the node's own connection.
pub trait CatchUpSource {
    /// The connection the reads run on (the node's with what it took in written first). For
    /// the two reads below only: all other SQL stays in the store's own methods.
    fn connection(&self) -> &Connection;

    /// The signed bytes of the control events `ids`, in that order (those not kept left out).
    fn room_event_bytes(&self, ids: &[EventId]) -> Result<Vec<Vec<u8>>, StoreError> {
        rooms::room_event_bytes(self.connection(), ids)
    }

    /// The signed bytes of the messages of `room` beyond `marks` (a machine without a mark:
    /// all of its messages), in (machine, number) order after `after`, at most `limit`, of
    /// depth at most `max_depth`; and whether more may remain.
    fn messages_beyond(
        &self,
        room: &EventId,
        marks: &[Mark],
        after: Option<&Mark>,
        limit: usize,
        max_depth: Option<u64>,
    ) -> Result<(Vec<Vec<u8>>, bool), StoreError> {
        messages::messages_beyond(self.connection(), room, marks, after, limit, max_depth)
    }
}

impl CatchUpSource for StoreReader {
    fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl CatchUpSource for super::NodeStore {
    fn connection(&self) -> &Connection {
        self.conn()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NodeStore;
    use crate::store::tests::stored;

    #[test]
    fn a_reader_sees_what_the_node_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        let reader = StoreReader::open(dir.path()).unwrap();
        let room = crate::store::tests::id_of("lobby");
        let event = EventId::from_bytes([5; 32]);
        store.save_room_event(&room, &event, 0, b"create").unwrap();
        assert_eq!(reader.room_event_bytes(&[event]).unwrap(), vec![b"create".to_vec()]);
        store.begin().unwrap();
        store.save_message(&stored("m1", "lobby", 1, b"p"), b"m1").unwrap();
        assert_eq!(reader.messages_beyond(&room, &[], None, 10, None).unwrap(), (vec![], false), "not committed yet");
        store.commit().unwrap();
        assert_eq!(reader.messages_beyond(&room, &[], None, 10, None).unwrap(), (vec![b"m1".to_vec()], false));
    }
}
