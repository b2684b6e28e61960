//! Room messages in the node database: what a user sees, the signed bytes, and where each
//! stands in its machine's numbering (for catch-up by marks); written at once or behind (see
//! the store's module documentation).
//!
//! Only SQL and rows here: whether a message may be kept is the room engine's decision, made
//! before it gets here.

use rusqlite::{Connection, OptionalExtension, params};

use super::{NodeStore, StoreError, sql_int};
use crate::account::AccountId;
use crate::protocol::sync::Mark;
use crate::room::EventId;

/// A room message as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: EventId,
    pub room: EventId,
    pub account: AccountId,
    /// The author's username when it arrived.
    pub author: String,
    /// The author's nickname when it arrived.
    pub nick: String,
    pub text: String,
    pub ts_ms: u64,
    /// The depth its citations give it (its place among the room's control events).
    pub depth: u64,
    /// The author's peer (binary id) and its number for the message in this room.
    pub peer: Vec<u8>,
    pub seq: u64,
    /// The group session it is sealed with.
    pub session: String,
    /// Whether its text was read: when not, `text` is empty.
    pub readable: Readable,
}

/// Whether a kept message's text could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readable {
    /// Its text is kept.
    Read,
    /// No key for its session was here: it is opened once one comes.
    AwaitingKey,
    /// Its session's key does not open it: it never will be read.
    Never,
}

impl Readable {
    fn to_sql(self) -> i64 {
        match self {
            Readable::Read => 0,
            Readable::AwaitingKey => 1,
            Readable::Never => 2,
        }
    }

    fn from_sql(n: i64) -> Readable {
        match n {
            0 => Readable::Read,
            1 => Readable::AwaitingKey,
            _ => Readable::Never,
        }
    }
}

const INSERT_MESSAGE: &str =
    "INSERT OR IGNORE INTO messages (id, room, account, author, nick, text, ts_ms, depth, peer, seq, event, session, sealed)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
pub(super) const MESSAGE_COLUMNS: &str =
    "id, room, account, author, nick, text, ts_ms, depth, peer, seq, session, sealed";

pub(super) fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn event_id(bytes: &[u8]) -> rusqlite::Result<EventId> {
    <[u8; 32]>::try_from(bytes).map(EventId::from_bytes).map_err(|_| rusqlite::Error::InvalidQuery)
}

pub(super) fn message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    let account: Vec<u8> = r.get(2)?;
    let account = <[u8; 16]>::try_from(account.as_slice()).map_err(|_| rusqlite::Error::InvalidQuery)?;
    Ok(StoredMessage {
        id: event_id(&r.get::<_, Vec<u8>>(0)?)?,
        room: event_id(&r.get::<_, Vec<u8>>(1)?)?,
        account: AccountId::from_bytes(account),
        author: r.get(3)?,
        nick: r.get(4)?,
        text: r.get(5)?,
        ts_ms: unsigned(r.get(6)?),
        depth: unsigned(r.get(7)?),
        peer: r.get(8)?,
        seq: unsigned(r.get(9)?),
        session: r.get(10)?,
        readable: Readable::from_sql(r.get(11)?),
    })
}

impl NodeStore {
    /// Keeps a message; `false` when its id was known already.
    pub fn save_message(&self, message: &StoredMessage, event: &[u8]) -> Result<bool, StoreError> {
        Ok(self.insert_message(message, event)?)
    }

    fn insert_message(&self, message: &StoredMessage, event: &[u8]) -> rusqlite::Result<bool> {
        self.transaction(|| {
            let inserted = self.insert_message_row(message, event)?;
            if inserted {
                self.index_message(self.conn.last_insert_rowid(), &message.text)?;
            }
            Ok(inserted)
        })
    }

    fn insert_message_row(&self, message: &StoredMessage, event: &[u8]) -> rusqlite::Result<bool> {
        let inserted = self.conn.prepare_cached(INSERT_MESSAGE)?.execute(params![
            &message.id.as_bytes()[..],
            &message.room.as_bytes()[..],
            &message.account.as_bytes()[..],
            message.author,
            message.nick,
            message.text,
            sql_int(message.ts_ms),
            sql_int(message.depth),
            message.peer,
            sql_int(message.seq),
            event,
            message.session,
            message.readable.to_sql(),
        ])?;
        Ok(inserted == 1)
    }

    /// The messages of `room` sealed with `session` whose text could not be read yet (at most
    /// `limit`), with their events.
    pub fn sealed_messages(
        &self,
        room: &EventId,
        session: &str,
        limit: usize,
    ) -> Result<Vec<(StoredMessage, Vec<u8>)>, StoreError> {
        let mut statement = self.conn().prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS}, event FROM messages WHERE room = ?1 AND session = ?2 AND sealed = 1
             ORDER BY depth, ts_ms, id LIMIT ?3"
        ))?;
        let rows = statement.query_map(params![&room.as_bytes()[..], session, sql_int(limit as u64)], |r| {
            Ok((message_row(r)?, r.get::<_, Vec<u8>>(12)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The text of a sealed message, now read (or `None`: its session's key does not open it,
    /// and it never will be read).
    pub fn open_message(&self, id: &EventId, text: Option<&str>) -> Result<(), StoreError> {
        Ok(self.transaction(|| {
            let kept = self
                .conn
                .prepare_cached("SELECT rowid, text FROM messages WHERE id = ?1")?
                .query_row(params![&id.as_bytes()[..]], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .optional()?;
            let Some((rowid, old)) = kept else { return Ok(()) };
            let readable = if text.is_some() { Readable::Read } else { Readable::Never };
            let text = text.unwrap_or_default();
            self.conn
                .prepare_cached("UPDATE messages SET text = ?2, sealed = ?3 WHERE rowid = ?1")?
                .execute(params![rowid, text, readable.to_sql()])?;
            self.reindex_message(rowid, &old, text)
        })?)
    }

    /// Keeps a group session's key (replacing the one kept for that session).
    pub fn save_room_key(&self, key: &crate::e2e::RoomKey) -> Result<(), StoreError> {
        let bytes = cbor4ii::serde::to_vec(Vec::new(), key)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode a room key: {e}")))?;
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO room_keys (room, session, key) VALUES (?1, ?2, ?3)")?
            .execute(params![&key.room.as_bytes()[..], key.session, bytes])?;
        Ok(())
    }

    /// Every group session key kept.
    pub fn room_keys(&self) -> Result<Vec<crate::e2e::RoomKey>, StoreError> {
        let mut statement = self.conn.prepare_cached("SELECT key FROM room_keys")?;
        let rows = statement.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut keys = Vec::new();
        for row in rows {
            let bytes = row?;
            match cbor4ii::serde::from_slice(&bytes) {
                Ok(key) => keys.push(key),
                Err(e) => tracing::error!(error = %e, "a kept room key does not decode"),
            }
        }
        Ok(keys)
    }

    /// Whether a message with this id is kept.
    pub fn knows_message(&self, id: &EventId) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM messages WHERE id = ?1)")?
            .query_row(params![&id.as_bytes()[..]], |r| r.get(0))?)
    }

    /// The highest number of a message kept from `peer` in `room` (0 when none).
    pub fn last_message_seq(&self, room: &EventId, peer: &[u8]) -> Result<u64, StoreError> {
        let last: i64 = self.row(
            "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE room = ?1 AND peer = ?2",
            params![&room.as_bytes()[..], peer],
            |r| r.get(0),
        )?;
        Ok(unsigned(last))
    }

    /// The highest number of a message kept from each peer in each room: (room, peer, number).
    pub fn message_streams(&self) -> Result<Vec<(EventId, Vec<u8>, u64)>, StoreError> {
        let mut statement =
            self.conn.prepare_cached("SELECT room, peer, MAX(seq) FROM messages GROUP BY room, peer")?;
        let rows = statement.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?, r.get(2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (room, peer, seq) = row?;
            let room: [u8; 32] =
                room.try_into().map_err(|_| StoreError::Corrupt("a message's room id is not 32 bytes".into()))?;
            out.push((EventId::from_bytes(room), peer, unsigned(seq)));
        }
        Ok(out)
    }

    /// The last `limit` messages of a room, oldest first, in (depth, time, id) order.
    pub fn recent_messages(&self, room: &EventId, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        let mut statement = self.conn().prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = ?1 ORDER BY depth DESC, ts_ms DESC, id DESC LIMIT ?2"
        ))?;
        let rows = statement.query_map(params![&room.as_bytes()[..], sql_int(limit as u64)], message_row)?;
        let mut messages: Vec<StoredMessage> = rows.collect::<Result<_, _>>()?;
        messages.reverse();
        Ok(messages)
    }

    /// How far each machine's messages in `room` are held without a gap (at most `limit`
    /// machines), by peer.
    pub fn message_marks(&self, room: &EventId, limit: usize) -> Result<Vec<Mark>, StoreError> {
        let conn = self.conn();
        let mut counts = conn.prepare_cached(
            "SELECT peer, COUNT(*), MAX(seq) FROM messages WHERE room = ?1 GROUP BY peer ORDER BY peer LIMIT ?2",
        )?;
        let rows = counts.query_map(params![&room.as_bytes()[..], sql_int(limit as u64)], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        })?;
        let mut marks = Vec::new();
        for row in rows {
            let (peer, count, max) = row?;
            let seq = if count == max { unsigned(max) } else { self.gapless(room, &peer)? };
            marks.push(Mark { peer, seq });
        }
        Ok(marks)
    }

    /// The highest `n` such that messages 1 to `n` of `peer` in `room` are all kept.
    fn gapless(&self, room: &EventId, peer: &[u8]) -> Result<u64, StoreError> {
        let mut statement =
            self.conn.prepare_cached("SELECT DISTINCT seq FROM messages WHERE room = ?1 AND peer = ?2 ORDER BY seq")?;
        let mut rows = statement.query(params![&room.as_bytes()[..], peer])?;
        let mut held = 0u64;
        while let Some(row) = rows.next()? {
            let seq = unsigned(row.get(0)?);
            if held.checked_add(1) != Some(seq) {
                break;
            }
            held = seq;
        }
        Ok(held)
    }
}

/// [`super::CatchUpSource::messages_beyond`] on `conn` (the node's connection or a reader's).
pub(super) fn messages_beyond(
    conn: &Connection,
    room: &EventId,
    marks: &[Mark],
    after: Option<&Mark>,
    limit: usize,
    max_depth: Option<u64>,
) -> Result<(Vec<Vec<u8>>, bool), StoreError> {
    let room_bytes = &room.as_bytes()[..];
    let mut peers_statement =
        conn.prepare_cached("SELECT DISTINCT peer FROM messages WHERE room = ?1 ORDER BY peer")?;
    let peers: Vec<Vec<u8>> =
        peers_statement.query_map(params![room_bytes], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let mut statement = conn.prepare_cached(
        "SELECT event FROM messages WHERE room = ?1 AND peer = ?2 AND seq > ?3 AND depth <= ?4
         ORDER BY seq LIMIT ?5",
    )?;
    let max_depth = sql_int(max_depth.unwrap_or(u64::MAX));
    let mut out = Vec::new();
    for peer in peers {
        let mut from = marks.iter().find(|m| m.peer == peer).map_or(0, |m| m.seq);
        if let Some(after) = after {
            match peer.cmp(&after.peer) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => from = from.max(after.seq),
                std::cmp::Ordering::Greater => {}
            }
        }
        let room_left = limit.saturating_sub(out.len());
        let rows = statement
            .query_map(params![room_bytes, peer, sql_int(from), max_depth, sql_int(room_left as u64)], |r| {
                r.get::<_, Vec<u8>>(0)
            })?;
        for row in rows {
            out.push(row?);
        }
        if out.len() >= limit {
            return Ok((out, true));
        }
    }
    Ok((out, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CatchUpSource;
    use crate::store::tests::{id_of, stored as stored_in};

    fn room() -> EventId {
        id_of("lobby")
    }

    /// Message `i` of the room from `peer`, with an id made of both.
    fn stored(i: u64, peer: u8) -> StoredMessage {
        stored_in(&format!("{peer}-{i}"), "lobby", i, &[peer])
    }

    #[test]
    fn room_events_and_messages_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (e1, e2) = (EventId::from_bytes([1; 32]), EventId::from_bytes([2; 32]));
        {
            let store = NodeStore::open(dir.path()).unwrap();
            store.save_room_event(&room(), &e2, 1, b"second").unwrap();
            store.save_room_event(&room(), &e1, 0, b"first").unwrap();
            store.save_room_event(&room(), &e1, 0, b"first").unwrap();
            for i in 1..=5 {
                assert!(store.save_message(&stored(i, 1), b"m").unwrap());
            }
            assert!(!store.save_message(&stored(3, 1), b"m").unwrap(), "a known id is not kept twice");
        }
        let store = NodeStore::open(dir.path()).unwrap();
        assert_eq!(store.room_events().unwrap(), vec![b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(
            store.room_event_bytes(&[e2, EventId::from_bytes([7; 32]), e1]).unwrap(),
            vec![b"second".to_vec(), b"first".to_vec()]
        );
        assert_eq!(store.recent_messages(&room(), 2).unwrap(), vec![stored(4, 1), stored(5, 1)]);
        assert_eq!(store.last_message_seq(&room(), &[1]).unwrap(), 5);
        assert_eq!(store.last_message_seq(&room(), &[2]).unwrap(), 0);
    }

    #[test]
    fn marks_stop_at_the_first_gap_and_pages_bring_what_is_beyond() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        for i in [1, 2, 3, 5, 6] {
            store.save_message(&stored(i, 1), format!("a{i}").as_bytes()).unwrap();
        }
        for i in 1..=4 {
            store.save_message(&stored(i, 2), format!("b{i}").as_bytes()).unwrap();
        }
        assert_eq!(
            store.message_marks(&room(), 10).unwrap(),
            vec![Mark { peer: vec![1], seq: 3 }, Mark { peer: vec![2], seq: 4 }]
        );
        let marks = [Mark { peer: vec![1], seq: 1 }, Mark { peer: vec![2], seq: 3 }];
        let (page, more) = store.messages_beyond(&room(), &marks, None, 3, None).unwrap();
        assert_eq!(page, vec![b"a2".to_vec(), b"a3".to_vec(), b"a5".to_vec()]);
        assert!(more);
        let after = Mark { peer: vec![1], seq: 5 };
        let (page, more) = store.messages_beyond(&room(), &marks, Some(&after), 3, None).unwrap();
        assert_eq!(page, vec![b"a6".to_vec(), b"b4".to_vec()]);
        assert!(!more);
        let (page, _) = store.messages_beyond(&room(), &[], None, 100, Some(2)).unwrap();
        assert_eq!(page, vec![b"a1".to_vec(), b"a2".to_vec(), b"b1".to_vec(), b"b2".to_vec()], "up to depth 2");
    }
}
