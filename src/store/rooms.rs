//! Rooms in the node database: each room's control events (the signed bytes, by room id and
//! depth), from which the rooms are taken in again at start. Their messages are
//! [`super::messages`]'s.
//!
//! Only SQL and rows here: whether an event may be kept is the room engine's
//! decision, made before it gets here.

use rusqlite::{Connection, OptionalExtension, params};

use super::{NodeStore, StoreError, sql_int};
use crate::room::EventId;

impl NodeStore {
    /// Keeps a room's control event (a known id is left alone).
    pub fn save_room_event(&self, room: &EventId, id: &EventId, depth: u64, event: &[u8]) -> Result<(), StoreError> {
        self.exec(
            "INSERT OR IGNORE INTO room_events (id, room, depth, event) VALUES (?1, ?2, ?3, ?4)",
            params![&id.as_bytes()[..], &room.as_bytes()[..], sql_int(depth), event],
        )?;
        Ok(())
    }

    /// Every room's control events, room by room, each room's in (depth, id) order: an order in
    /// which they can be taken in again.
    pub fn room_events(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self.room_events_in_rows()?.into_iter().map(|(_, event)| event).collect())
    }

    /// [`NodeStore::room_events`], each with the row it was kept in: rows are numbered in the
    /// order events were kept.
    pub fn room_events_in_rows(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut statement =
            self.conn().prepare_cached("SELECT rowid, event FROM room_events ORDER BY room, depth, id")?;
        let rows = statement.query_map([], |r| Ok((u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0), r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// [`super::CatchUpSource::room_event_bytes`] on `conn` (the node's connection or a reader's).
pub(super) fn room_event_bytes(conn: &Connection, ids: &[EventId]) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut statement = conn.prepare_cached("SELECT event FROM room_events WHERE id = ?1")?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(bytes) = statement.query_row(params![&id.as_bytes()[..]], |r| r.get(0)).optional()? {
            out.push(bytes);
        }
    }
    Ok(out)
}
