//! Direct messages in the node database: both sides of every conversation of each local user,
//! the outbox (outgoing messages not yet confirmed by a receipt), and the highest sequence number
//! received from each sender on each peer.
//!
//! People are matched by account id, never by name: `owner_key` is the local user's account id
//! (hex), `other_key` the other party's, so a message waiting for someone who renamed reaches
//! them under their new name, and never whoever takes the old one later. A message's id is its
//! sender's, unique only within a conversation and direction: rows are keyed by owner, other
//! party, direction and id, and every look-up by id names the conversation.

use rusqlite::{OptionalExtension, Row, params};

use super::{NodeStore, StoreError};
use crate::account::AccountId;
use crate::dm::StoredDm;

pub(super) const COLUMNS: &str = "id, owner_key, other_key, sender, recipient, text, ts_ms, seq, outgoing, delivered";
/// Marks message `?3` of owner `?1` to `?2` as confirmed by its receiver.
const MARK_DELIVERED: &str =
    "UPDATE dms SET delivered = 1 WHERE owner_key = ?1 AND other_key = ?2 AND outgoing = 1 AND id = ?3";

/// An account id column.
fn account(r: &Row<'_>, column: usize) -> rusqlite::Result<AccountId> {
    let hex: String = r.get(column)?;
    AccountId::from_hex(&hex).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, "not an account id".into())
    })
}

pub(super) fn row_to_dm(r: &Row<'_>) -> rusqlite::Result<StoredDm> {
    Ok(StoredDm {
        id: r.get(0)?,
        owner: account(r, 1)?,
        other: account(r, 2)?,
        from: r.get(3)?,
        to: r.get(4)?,
        text: r.get(5)?,
        ts_ms: r.get::<_, i64>(6)?.max(0) as u64,
        seq: r.get::<_, i64>(7)?.max(0) as u64,
        outgoing: r.get(8)?,
        delivered: r.get(9)?,
    })
}

impl NodeStore {
    /// The number for `owner`'s next message to `other`.
    pub fn next_dm_seq(&self, owner: &AccountId, other: &AccountId) -> Result<u64, StoreError> {
        let last: i64 = self.row(
            "SELECT COALESCE(MAX(seq), 0) FROM dms WHERE owner_key = ?1 AND other_key = ?2 AND outgoing = 1",
            params![owner.to_hex(), other.to_hex()],
            |r| r.get(0),
        )?;
        Ok(last as u64 + 1)
    }

    /// The number of the last message each owner wrote in each conversation: (owner, other,
    /// number).
    pub fn dm_numbers(&self) -> Result<Vec<(AccountId, AccountId, u64)>, StoreError> {
        let mut statement = self.conn().prepare_cached(
            "SELECT owner_key, other_key, MAX(seq) FROM dms WHERE outgoing = 1 GROUP BY owner_key, other_key",
        )?;
        let rows =
            statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (owner, other, seq) = row?;
            let account =
                |hex: &str| AccountId::from_hex(hex).ok_or_else(|| StoreError::Corrupt(format!("account id {hex}")));
            out.push((account(&owner)?, account(&other)?, u64::try_from(seq).unwrap_or(0)));
        }
        Ok(out)
    }

    /// Keeps a message; `false` when its conversation had one of this id and direction already.
    pub fn save_dm(&self, dm: &StoredDm) -> Result<bool, StoreError> {
        Ok(self.transaction(|| self.insert_dm(dm))?)
    }

    fn insert_dm(&self, dm: &StoredDm) -> rusqlite::Result<bool> {
        let inserted = self.insert_dm_row(dm)?;
        if inserted {
            self.index_dm(self.conn().last_insert_rowid(), &dm.text)?;
        }
        Ok(inserted)
    }

    fn insert_dm_row(&self, dm: &StoredDm) -> rusqlite::Result<bool> {
        let inserted = self.exec(
            "INSERT OR IGNORE INTO dms
             (id, owner_key, other_key, sender, recipient, text, ts_ms, seq, outgoing, delivered)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                dm.id,
                dm.owner.to_hex(),
                dm.other.to_hex(),
                dm.from,
                dm.to,
                dm.text,
                dm.ts_ms as i64,
                dm.seq as i64,
                dm.outgoing,
                dm.delivered
            ],
        )?;
        Ok(inserted == 1)
    }

    /// Keeps a received message and the sender's sequence number in one transaction; `false`
    /// when a message of this id was received from this sender already (ids are the sender's:
    /// another sender's message of the same id is another message).
    pub fn save_received_dm(&self, dm: &StoredDm, peer: &[u8]) -> Result<bool, StoreError> {
        Ok(self.transaction(|| self.insert_received(dm, peer))?)
    }

    fn insert_received(&self, dm: &StoredDm, peer: &[u8]) -> rusqlite::Result<bool> {
        let inserted = self.exec(
            "INSERT OR IGNORE INTO dms
             (id, owner_key, other_key, sender, recipient, text, ts_ms, seq, outgoing, delivered)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 1)",
            params![
                dm.id,
                dm.owner.to_hex(),
                dm.other.to_hex(),
                dm.from,
                dm.to,
                dm.text,
                dm.ts_ms as i64,
                dm.seq as i64
            ],
        )? == 1;
        if inserted {
            self.index_dm(self.conn().last_insert_rowid(), &dm.text)?;
        }
        self.exec(
            "INSERT INTO dm_seen (owner_key, sender_key, peer, last_seq) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (owner_key, sender_key, peer) DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq)",
            params![dm.owner.to_hex(), dm.other.to_hex(), peer, dm.seq as i64],
        )?;
        Ok(inserted)
    }

    /// Whether `owner` kept a message of this id received from `sender`.
    pub fn dm_known(&self, owner: &AccountId, sender: &AccountId, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .row(
                "SELECT 1 FROM dms WHERE owner_key = ?1 AND other_key = ?2 AND outgoing = 0 AND id = ?3",
                params![owner.to_hex(), sender.to_hex(), id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The highest number `owner` received from `sender` on `peer`.
    pub fn last_dm_seq(&self, owner: &AccountId, sender: &AccountId, peer: &[u8]) -> Result<Option<u64>, StoreError> {
        let last: Option<i64> = self
            .row(
                "SELECT last_seq FROM dm_seen WHERE owner_key = ?1 AND sender_key = ?2 AND peer = ?3",
                params![owner.to_hex(), sender.to_hex(), peer],
                |r| r.get(0),
            )
            .optional()?;
        Ok(last.map(|v| v as u64))
    }

    /// The oldest message of `owner` to `other` still waiting for its receipt.
    pub fn next_in_outbox(&self, owner: &AccountId, other: &AccountId) -> Result<Option<StoredDm>, StoreError> {
        Ok(self
            .row(
                &format!(
                    "SELECT {COLUMNS} FROM dms WHERE owner_key = ?1 AND other_key = ?2 AND outgoing = 1
                     AND delivered = 0 ORDER BY seq LIMIT 1"
                ),
                params![owner.to_hex(), other.to_hex()],
                row_to_dm,
            )
            .optional()?)
    }

    /// Marks `owner`'s message `id` to `other` as confirmed by its receiver.
    pub fn mark_delivered(&self, owner: &AccountId, other: &AccountId, id: &str) -> Result<(), StoreError> {
        self.exec(MARK_DELIVERED, params![owner.to_hex(), other.to_hex(), id])?;
        Ok(())
    }

    /// How many messages of `owner` wait for their receipts.
    pub fn outbox_len(&self, owner: &AccountId) -> Result<usize, StoreError> {
        let n: i64 = self.row(
            "SELECT COUNT(*) FROM dms WHERE owner_key = ?1 AND outgoing = 1 AND delivered = 0",
            params![owner.to_hex()],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    /// The accounts `owner` has messages waiting for.
    pub fn outbox_recipients(&self, owner: &AccountId) -> Result<Vec<AccountId>, StoreError> {
        let mut statement = self.conn().prepare_cached(
            "SELECT DISTINCT other_key FROM dms WHERE owner_key = ?1 AND outgoing = 1 AND delivered = 0
             ORDER BY other_key",
        )?;
        let rows = statement.query_map(params![owner.to_hex()], |r| account(r, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The last `limit` messages between `owner` and `other`, in the order this node kept them.
    pub fn recent_dms(&self, owner: &AccountId, other: &AccountId, limit: usize) -> Result<Vec<StoredDm>, StoreError> {
        let mut statement = self.conn().prepare_cached(&format!(
            "SELECT {COLUMNS} FROM dms WHERE owner_key = ?1 AND other_key = ?2 ORDER BY rowid DESC LIMIT ?3"
        ))?;
        let rows = statement.query_map(params![owner.to_hex(), other.to_hex(), limit as i64], row_to_dm)?;
        let mut dms: Vec<StoredDm> = rows.collect::<Result<_, _>>()?;
        dms.reverse();
        Ok(dms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::account_of;

    fn dm(id: &str, from: &str, to: &str, seq: u64, outgoing: bool) -> StoredDm {
        let (owner, other) = if outgoing { (from, to) } else { (to, from) };
        StoredDm {
            id: id.into(),
            owner: account_of(owner),
            other: account_of(other),
            from: from.into(),
            to: to.into(),
            text: format!("text {id}"),
            ts_ms: 1000 + seq,
            seq,
            outgoing,
            delivered: !outgoing,
        }
    }

    fn a(name: &str) -> AccountId {
        account_of(name)
    }

    #[test]
    fn the_outbox_goes_out_in_order_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = NodeStore::open(dir.path()).unwrap();
            assert_eq!(store.next_dm_seq(&a("alice"), &a("bob")).unwrap(), 1);
            assert!(store.save_dm(&dm("a1", "alice", "Bob", 1, true)).unwrap());
            assert!(store.save_dm(&dm("a2", "alice", "bob", 2, true)).unwrap());
            assert!(store.save_dm(&dm("c1", "alice", "carol", 1, true)).unwrap());
            assert!(!store.save_dm(&dm("a1", "alice", "Bob", 1, true)).unwrap());
            assert_eq!(store.next_dm_seq(&a("alice"), &a("bob")).unwrap(), 3);
            let mut numbers = store.dm_numbers().unwrap();
            numbers.sort_by_key(|(_, other, _)| other.to_hex());
            let mut expected = vec![(a("alice"), a("bob"), 2), (a("alice"), a("carol"), 1)];
            expected.sort_by_key(|(_, other, _)| other.to_hex());
            assert_eq!(numbers, expected);
        }
        let store = NodeStore::open(dir.path()).unwrap();
        assert_eq!(store.outbox_len(&a("alice")).unwrap(), 3);
        let mut expected = vec![a("bob"), a("carol")];
        expected.sort_by_key(AccountId::to_hex);
        assert_eq!(store.outbox_recipients(&a("alice")).unwrap(), expected);
        assert_eq!(store.next_in_outbox(&a("alice"), &a("bob")).unwrap().unwrap().id, "a1");
        store.mark_delivered(&a("alice"), &a("bob"), "a1").unwrap();
        assert_eq!(store.next_in_outbox(&a("alice"), &a("bob")).unwrap().unwrap().id, "a2");
        store.mark_delivered(&a("alice"), &a("bob"), "a2").unwrap();
        assert_eq!(store.next_in_outbox(&a("alice"), &a("bob")).unwrap(), None);
        assert_eq!(store.outbox_len(&a("alice")).unwrap(), 1);
        assert_eq!(store.outbox_len(&a("bob")).unwrap(), 0);
    }

    #[test]
    fn received_messages_remember_the_senders_numbers_per_peer() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        assert_eq!(store.last_dm_seq(&a("bob"), &a("alice"), b"pa").unwrap(), None);
        assert!(store.save_received_dm(&dm("a1", "alice", "bob", 1, false), b"pa").unwrap());
        assert!(store.save_received_dm(&dm("a2", "Alice", "bob", 2, false), b"pa").unwrap());
        assert!(!store.save_received_dm(&dm("a1", "alice", "bob", 1, false), b"pa").unwrap());
        assert_eq!(store.last_dm_seq(&a("bob"), &a("alice"), b"pa").unwrap(), Some(2));
        assert_eq!(store.last_dm_seq(&a("bob"), &a("alice"), b"other").unwrap(), None);
        assert!(store.dm_known(&a("bob"), &a("alice"), "a2").unwrap());
        assert!(!store.dm_known(&a("bob"), &a("alice"), "zz").unwrap());
    }

    #[test]
    fn a_conversation_keeps_both_sides_in_order_whatever_the_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        store.save_dm(&dm("b1", "bob", "alice", 1, true)).unwrap();
        store.save_received_dm(&dm("a1", "alice", "bob", 1, false), b"pa").unwrap();
        // The same account under a new name is the same conversation.
        let mut renamed = dm("b2", "bob", "alice", 2, true);
        renamed.to = "alicia".into();
        store.save_dm(&renamed).unwrap();
        store.save_dm(&dm("c1", "bob", "carol", 1, true)).unwrap();
        let ids: Vec<String> =
            store.recent_dms(&a("bob"), &a("alice"), 10).unwrap().into_iter().map(|d| d.id).collect();
        assert_eq!(ids, ["b1", "a1", "b2"]);
        let last_two: Vec<String> =
            store.recent_dms(&a("bob"), &a("alice"), 2).unwrap().into_iter().map(|d| d.id).collect();
        assert_eq!(last_two, ["a1", "b2"]);
        assert!(store.recent_dms(&a("bob"), &a("alicia"), 10).unwrap().is_empty(), "another account");
    }

    #[test]
    fn two_senders_may_use_the_same_id_and_both_messages_are_kept_and_shown_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        // Mallory reuses the id of a message Alice is still to send.
        assert!(store.save_received_dm(&dm("x", "mallory", "bob", 1, false), b"pm").unwrap());
        assert!(!store.dm_known(&a("bob"), &a("alice"), "x").unwrap(), "Alice's x is not Mallory's");
        assert!(store.save_received_dm(&dm("x", "alice", "bob", 1, false), b"pa").unwrap(), "Alice's kept too");
        assert!(!store.save_received_dm(&dm("x", "alice", "bob", 1, false), b"pa").unwrap(), "once");
        assert!(store.dm_known(&a("bob"), &a("alice"), "x").unwrap());
        let from = |other: &str| -> Vec<(String, String)> {
            store.recent_dms(&a("bob"), &a(other), 10).unwrap().into_iter().map(|d| (d.from, d.id)).collect()
        };
        assert_eq!(from("alice"), [("alice".to_string(), "x".to_string())]);
        assert_eq!(from("mallory"), [("mallory".to_string(), "x".to_string())]);
        // A receipt for Bob's own x to Alice marks that message only.
        assert!(store.save_dm(&dm("x", "bob", "alice", 1, true)).unwrap(), "the other direction is another message");
        assert!(store.save_dm(&dm("x", "bob", "carol", 1, true)).unwrap());
        store.mark_delivered(&a("bob"), &a("alice"), "x").unwrap();
        assert_eq!(store.outbox_recipients(&a("bob")).unwrap(), [a("carol")]);
    }

    #[test]
    fn messages_kept_before_ids_were_per_conversation_are_carried_over_and_still_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::super::NODE_DB);
        let before = &super::super::schema::MIGRATIONS[..super::super::schema::MIGRATIONS.len() - 1];
        {
            let conn = super::super::sqlite::open(&path, super::super::sqlite::Durability::Normal, before).unwrap();
            for (rowid, (id, owner, other, text, outgoing)) in [
                ("a1", "bob", "alice", "hello tea", 0),
                ("b1", "bob", "alice", "more tea", 1),
                ("c1", "bob", "carol", "coffee", 1),
            ]
            .into_iter()
            .enumerate()
            {
                let rowid = rowid as i64 + 7;
                conn.execute(
                    "INSERT INTO dms (rowid, id, owner_key, other_key, sender, recipient, text, ts_ms, seq, outgoing,
                     delivered) VALUES (?1, ?2, ?3, ?4, 's', 'r', ?5, 1, 1, ?6, 0)",
                    params![rowid, id, a(owner).to_hex(), a(other).to_hex(), text, outgoing],
                )
                .unwrap();
                conn.execute("INSERT INTO dms_search (rowid, text) VALUES (?1, ?2)", params![rowid, text]).unwrap();
            }
        }
        let store = NodeStore::open(dir.path()).unwrap();
        let ids: Vec<String> =
            store.recent_dms(&a("bob"), &a("alice"), 10).unwrap().into_iter().map(|d| d.id).collect();
        assert_eq!(ids, ["a1", "b1"]);
        assert_eq!(store.outbox_recipients(&a("bob")).unwrap().len(), 2);
        let found = store.search_dms("\"tea\"", &a("bob"), None, None, 10).unwrap();
        let mut texts: Vec<String> = found.into_iter().map(|f| f.item.text).collect();
        texts.sort();
        assert_eq!(texts, ["hello tea", "more tea"]);
        assert!(store.save_received_dm(&dm("b1", "alice", "bob", 2, false), b"pa").unwrap(), "b1 was Bob's own");
        let found = store.search_dms("\"coffee\"", &a("bob"), None, None, 10).unwrap();
        assert_eq!(found.len(), 1);
    }
}
