//! Full-text search of the node database's messages (`/search`): room messages of the rooms
//! given and one local user's direct messages, each found through its FTS5 index (kept by the
//! triggers of [`super::schema`]), best match first, the newest first among equals; and the
//! messages around one found (`/history around N`).
//!
//! Only SQL and rows here: the query comes written for FTS5 ([`crate::search::SearchQuery`]),
//! and which rooms and conversations a user may search is the node's decision.

use rusqlite::{ToSql, params, params_from_iter};

use super::dms::row_to_dm;
use super::messages::message_row;
use super::{NodeStore, StoreError, StoredMessage, sql_int};
use crate::account::AccountId;
use crate::dm::StoredDm;
use crate::room::EventId;
use crate::search::{MARK_END, MARK_START};

/// A message found, with its text as FTS5's `highlight()` marks it and its bm25 score (lower
/// is better).
#[derive(Debug, Clone, PartialEq)]
pub struct Found<T> {
    pub item: T,
    pub marked: String,
    pub score: f64,
}

/// Rooms named in one statement, well below SQLite's limit of bound values.
const ROOMS_PER_STATEMENT: usize = 500;

const MESSAGE_HIT_COLUMNS: &str = "m.id, m.room, m.account, m.author, m.nick, m.text, m.ts_ms, m.depth, m.peer,
     m.seq, m.session, m.sealed";
const DM_HIT_COLUMNS: &str =
    "d.id, d.owner_key, d.other_key, d.sender, d.recipient, d.text, d.ts_ms, d.seq, d.outgoing, d.delivered";

impl NodeStore {
    /// Puts the text of room message `rowid`, just kept, in the index (in the statement's
    /// transaction).
    pub(super) fn index_message(&self, rowid: i64, text: &str) -> rusqlite::Result<()> {
        self.exec("INSERT INTO messages_search (rowid, text) VALUES (?1, ?2)", params![rowid, text]).map(drop)
    }

    /// Room message `rowid`'s text changed from `old` to `new` (it was opened): so does the
    /// index.
    pub(super) fn reindex_message(&self, rowid: i64, old: &str, new: &str) -> rusqlite::Result<()> {
        self.exec(
            "INSERT INTO messages_search (messages_search, rowid, text) VALUES ('delete', ?1, ?2)",
            params![rowid, old],
        )?;
        self.index_message(rowid, new)
    }

    /// Puts the text of direct message `rowid`, just kept, in the index.
    pub(super) fn index_dm(&self, rowid: i64, text: &str) -> rusqlite::Result<()> {
        self.exec("INSERT INTO dms_search (rowid, text) VALUES (?1, ?2)", params![rowid, text]).map(drop)
    }

    /// The best `limit` room messages of `rooms` that match `fts` (FTS5 syntax), written by
    /// `from` if given.
    pub fn search_messages(
        &self,
        fts: &str,
        rooms: &[EventId],
        from: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<Found<StoredMessage>>, StoreError> {
        let mut found = Vec::new();
        for chunk in rooms.chunks(ROOMS_PER_STATEMENT) {
            let places: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 6)).collect();
            let places = places.join(", ");
            let sql = format!(
                "SELECT {MESSAGE_HIT_COLUMNS}, highlight(messages_search, 0, ?1, ?2), bm25(messages_search)
                 FROM messages_search JOIN messages m ON m.rowid = messages_search.rowid
                 WHERE messages_search MATCH ?3 AND (?4 IS NULL OR m.account = ?4) AND m.room IN ({places})
                 ORDER BY rank, m.ts_ms DESC LIMIT ?5"
            );
            let (start, end) = (MARK_START.to_string(), MARK_END.to_string());
            let from = from.map(|a| a.as_bytes().to_vec());
            let limit = sql_int(limit as u64);
            let mut values: Vec<&dyn ToSql> = vec![&start, &end, &fts, &from, &limit];
            let room_bytes: Vec<&[u8]> = chunk.iter().map(|r| &r.as_bytes()[..]).collect();
            values.extend(room_bytes.iter().map(|r| r as &dyn ToSql));
            let mut statement = self.conn().prepare_cached(&sql)?;
            let rows = statement.query_map(params_from_iter(values), |r| {
                Ok(Found { item: message_row(r)?, marked: r.get(12)?, score: r.get(13)? })
            })?;
            for row in rows {
                found.push(row?);
            }
        }
        Ok(best(found, limit, |m| m.ts_ms))
    }

    /// The best `limit` direct messages of `owner`'s conversations (with `other` only, if given)
    /// that match `fts` (FTS5 syntax), written by `from` if given.
    pub fn search_dms(
        &self,
        fts: &str,
        owner: &AccountId,
        other: Option<&AccountId>,
        from: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<Found<StoredDm>>, StoreError> {
        let mut statement = self.conn().prepare_cached(&format!(
            "SELECT {DM_HIT_COLUMNS}, highlight(dms_search, 0, ?1, ?2), bm25(dms_search)
             FROM dms_search JOIN dms d ON d.rowid = dms_search.rowid
             WHERE dms_search MATCH ?3 AND d.owner_key = ?4 AND (?5 IS NULL OR d.other_key = ?5)
               AND (?6 IS NULL OR (CASE WHEN d.outgoing THEN d.owner_key ELSE d.other_key END) = ?6)
             ORDER BY rank, d.ts_ms DESC LIMIT ?7"
        ))?;
        let rows = statement.query_map(
            params![
                MARK_START.to_string(),
                MARK_END.to_string(),
                fts,
                owner.to_hex(),
                other.map(AccountId::to_hex),
                from.map(AccountId::to_hex),
                sql_int(limit as u64),
            ],
            |r| Ok(Found { item: row_to_dm(r)?, marked: r.get(10)?, score: r.get(11)? }),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Message `id` of `room` with up to `each` messages before and after it, oldest first;
    /// empty when it is not kept.
    pub fn messages_around(&self, room: &EventId, id: &EventId, each: usize) -> Result<Vec<StoredMessage>, StoreError> {
        let cols = super::messages::MESSAGE_COLUMNS;
        let at = params![&room.as_bytes()[..], &id.as_bytes()[..], sql_int(each as u64)];
        let mut before = self.conn().prepare_cached(&format!(
            "SELECT {cols} FROM messages WHERE room = ?1 AND (depth, ts_ms, id) <
                 (SELECT depth, ts_ms, id FROM messages WHERE id = ?2 AND room = ?1)
             ORDER BY depth DESC, ts_ms DESC, id DESC LIMIT ?3"
        ))?;
        let mut messages: Vec<StoredMessage> = before.query_map(at, message_row)?.collect::<Result<_, _>>()?;
        messages.reverse();
        let mut after = self.conn().prepare_cached(&format!(
            "SELECT {cols} FROM messages WHERE room = ?1 AND (depth, ts_ms, id) >=
                 (SELECT depth, ts_ms, id FROM messages WHERE id = ?2 AND room = ?1)
             ORDER BY depth, ts_ms, id LIMIT ?3 + 1"
        ))?;
        let later: Vec<StoredMessage> = after.query_map(at, message_row)?.collect::<Result<_, _>>()?;
        if later.is_empty() {
            return Ok(Vec::new());
        }
        messages.extend(later);
        Ok(messages)
    }

    /// Direct message `id` of `owner`'s conversation with `other` with up to `each` messages
    /// before and after it, oldest first; empty when it is not kept.
    pub fn dms_around(
        &self,
        owner: &AccountId,
        other: &AccountId,
        id: &str,
        each: usize,
    ) -> Result<Vec<StoredDm>, StoreError> {
        let cols = super::dms::COLUMNS;
        let at = params![owner.to_hex(), other.to_hex(), id, sql_int(each as u64)];
        let target = "(SELECT rowid FROM dms WHERE id = ?3 AND owner_key = ?1 AND other_key = ?2)";
        let mut before = self.conn().prepare_cached(&format!(
            "SELECT {cols} FROM dms WHERE owner_key = ?1 AND other_key = ?2 AND rowid < {target}
             ORDER BY rowid DESC LIMIT ?4"
        ))?;
        let mut dms: Vec<StoredDm> = before.query_map(at, row_to_dm)?.collect::<Result<_, _>>()?;
        dms.reverse();
        let mut after = self.conn().prepare_cached(&format!(
            "SELECT {cols} FROM dms WHERE owner_key = ?1 AND other_key = ?2 AND rowid >= {target}
             ORDER BY rowid LIMIT ?4 + 1"
        ))?;
        let later: Vec<StoredDm> = after.query_map(at, row_to_dm)?.collect::<Result<_, _>>()?;
        if later.is_empty() {
            return Ok(Vec::new());
        }
        dms.extend(later);
        Ok(dms)
    }
}

/// The best `limit` of `found`: lowest score first, the newest first among equals.
fn best<T>(mut found: Vec<Found<T>>, limit: usize, ts: impl Fn(&T) -> u64) -> Vec<Found<T>> {
    found.sort_by(|a, b| a.score.total_cmp(&b.score).then_with(|| ts(&b.item).cmp(&ts(&a.item))));
    found.truncate(limit);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{SearchLine, matched_ranges};
    use crate::store::Readable;
    use crate::store::tests::{id_of, stored};
    use crate::testing::account_of;

    fn fts(line: &str) -> String {
        SearchLine::parse(line).unwrap().query.unwrap().fts_match()
    }

    fn said(store: &NodeStore, n: u64, room: &str, text: &str) -> StoredMessage {
        let mut message = stored(&format!("{room}-{n}"), room, n, b"p");
        message.text = text.into();
        assert!(store.save_message(&message, b"e").unwrap());
        message
    }

    fn texts(found: &[Found<StoredMessage>]) -> Vec<&str> {
        found.iter().map(|f| f.item.text.as_str()).collect()
    }

    #[test]
    fn words_prefixes_phrases_and_diacritics_in_the_rooms_given() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        said(&store, 1, "ops", "we deployed the release on friday");
        said(&store, 2, "ops", "Deploy again? The RELEASE notes say no");
        said(&store, 3, "ops", "Café crème, s'il vous plaît");
        said(&store, 4, "ops", "Привет, мир");
        said(&store, 5, "secret", "deploy the secret thing");
        let ops = [id_of("ops")];
        let find = |line: &str| store.search_messages(&fts(line), &ops, None, 20).unwrap();
        assert_eq!(texts(&find("deploy")), ["Deploy again? The RELEASE notes say no"]);
        assert_eq!(find("deploy*").len(), 2);
        assert_eq!(texts(&find(r#""release notes""#)), ["Deploy again? The RELEASE notes say no"]);
        assert!(find(r#""notes release""#).is_empty(), "a phrase keeps its order");
        assert_eq!(texts(&find("cafe creme")), ["Café crème, s'il vous plaît"], "diacritics folded");
        assert_eq!(texts(&find("привет")), ["Привет, мир"], "any script, any case");
        // Only the rooms given.
        let both = [id_of("ops"), id_of("secret")];
        assert_eq!(store.search_messages(&fts("secret"), &both, None, 20).unwrap().len(), 1);
        assert!(find("secret").is_empty());
        assert!(store.search_messages(&fts("deploy"), &[], None, 20).unwrap().is_empty());
        // The matched words come back marked.
        let hit = &find("deploy*")[0];
        let ranges = matched_ranges(&hit.marked, &hit.item.text);
        assert_eq!(ranges.len(), 1, "{hit:?}");
    }

    #[test]
    fn best_first_then_newest_and_by_author() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        for n in 1..=5 {
            said(&store, n, "ops", &format!("lunch number {n} is a long message about many other things"));
        }
        said(&store, 6, "ops", "lunch lunch");
        let mut carol = stored("ops-7", "ops", 7, b"q");
        carol.account = account_of("carol");
        carol.text = "lunch at noon with everyone here today".into();
        store.save_message(&carol, b"e").unwrap();
        let ops = [id_of("ops")];
        let found = store.search_messages(&fts("lunch"), &ops, None, 3).unwrap();
        // bm25: the word twice in a short message, then once in a shorter message, then the
        // equally good long ones, newest first.
        let order: Vec<u64> = found.iter().map(|f| f.item.seq).collect();
        assert_eq!(order, [6, 7, 5], "{found:?}");
        let by_carol = store.search_messages(&fts("lunch"), &ops, Some(&account_of("carol")), 20).unwrap();
        assert_eq!(texts(&by_carol), ["lunch at noon with everyone here today"]);
    }

    #[test]
    fn a_message_opened_later_is_found_then_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        let mut sealed = stored("m1", "ops", 1, b"p");
        sealed.text = String::new();
        sealed.readable = Readable::AwaitingKey;
        store.save_message(&sealed, b"e").unwrap();
        let ops = [id_of("ops")];
        assert!(store.search_messages(&fts("kettle"), &ops, None, 20).unwrap().is_empty());
        store.open_message(&sealed.id, Some("put the kettle on")).unwrap();
        assert_eq!(store.search_messages(&fts("kettle"), &ops, None, 20).unwrap().len(), 1);
        assert!(store.search_messages(&fts("sealed"), &ops, None, 20).unwrap().is_empty());
    }

    #[test]
    fn a_database_kept_before_the_index_is_indexed_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = NodeStore::open(dir.path()).unwrap();
            said(&store, 1, "ops", "an old message about kettles");
        }
        // As a database of the schema before the index: no index, the old version.
        let conn = rusqlite::Connection::open(dir.path().join(crate::store::NODE_DB)).unwrap();
        let migrations = super::super::schema::MIGRATIONS;
        let before = migrations.iter().position(|m| m.contains("CREATE VIRTUAL TABLE messages_search")).unwrap();
        // What that migration and the later ones made.
        conn.execute_batch(
            "DROP TABLE messages_search; DROP TABLE dms_search; DROP TABLE letters; DROP TABLE account_peers;",
        )
        .unwrap();
        conn.pragma_update(None, "user_version", before as i64).unwrap();
        drop(conn);
        let store = NodeStore::open(dir.path()).unwrap();
        assert_eq!(store.search_messages(&fts("kettles"), &[id_of("ops")], None, 20).unwrap().len(), 1);
    }

    #[test]
    fn direct_messages_of_one_owner_and_the_messages_around_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        let (alice, bob, carol) = (account_of("alice"), account_of("bob"), account_of("carol"));
        let dm = |id: &str, owner: AccountId, other: AccountId, outgoing: bool, text: &str| StoredDm {
            id: id.into(),
            owner,
            other,
            from: String::new(),
            to: String::new(),
            text: text.into(),
            ts_ms: 1,
            seq: 1,
            outgoing,
            delivered: true,
        };
        for (i, text) in ["one", "two tea", "three", "four tea", "five"].iter().enumerate() {
            store.save_dm(&dm(&format!("ab{i}"), alice, bob, i % 2 == 0, text)).unwrap();
        }
        store.save_dm(&dm("ac", alice, carol, true, "tea with carol")).unwrap();
        store.save_dm(&dm("ba", bob, alice, true, "tea as bob")).unwrap();
        let find = |other: Option<&AccountId>, from: Option<&AccountId>| {
            let found = store.search_dms(&fts("tea"), &alice, other, from, 20).unwrap();
            let mut ids: Vec<String> = found.into_iter().map(|f| f.item.id).collect();
            ids.sort();
            ids
        };
        assert_eq!(find(None, None), ["ab1", "ab3", "ac"], "only alice's own conversations");
        assert_eq!(find(Some(&bob), None), ["ab1", "ab3"]);
        assert_eq!(find(None, Some(&bob)), ["ab1", "ab3"], "received from bob");
        assert_eq!(find(None, Some(&alice)), ["ac"], "written by alice");

        let around: Vec<String> = store.dms_around(&alice, &bob, "ab2", 1).unwrap().into_iter().map(|d| d.id).collect();
        assert_eq!(around, ["ab1", "ab2", "ab3"]);
        assert!(store.dms_around(&alice, &carol, "ab2", 1).unwrap().is_empty(), "not that conversation");

        for n in 1..=6 {
            said(&store, n, "ops", &format!("m{n}"));
        }
        let around = store.messages_around(&id_of("ops"), &id_of("ops-1"), 2).unwrap();
        assert_eq!(texts_of(&around), ["m1", "m2", "m3"]);
        let around = store.messages_around(&id_of("ops"), &id_of("ops-4"), 2).unwrap();
        assert_eq!(texts_of(&around), ["m2", "m3", "m4", "m5", "m6"]);
        assert!(store.messages_around(&id_of("other"), &id_of("ops-4"), 2).unwrap().is_empty());
    }

    fn texts_of(messages: &[StoredMessage]) -> Vec<&str> {
        messages.iter().map(|m| m.text.as_str()).collect()
    }
}
