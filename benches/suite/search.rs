//! Figure 10: `/search` over a room of 100,000 stored messages. A node database is filled with
//! chat lines of a Zipf-distributed vocabulary (as words in real chat are), with a signed
//! event's worth of bytes beside each as the node keeps it, in batches of 512 per transaction as
//! the store worker writes. Then one page of results (`NodeStore::search_messages`, the FTS5
//! index, best first) is timed for a rare, a middling and a common word, beside a
//! `LIKE '%word%'` scan of the same table (newest first) on the same file. And storing a message
//! is timed as the store does it (the row, then its text in the index) beside the row alone
//! (the same statement through a connection of the same settings), each into a fresh database.
//! One thread, no network.

use std::time::Instant;

use meshchat::account::AccountId;
use meshchat::room::EventId;
use meshchat::search::SearchLine;
use meshchat::store::{NODE_DB, NodeStore, Readable, StoredMessage};
use sha2::{Digest, Sha256};

use super::report::{Better, Row, Runs};

/// Messages in the searched room.
const MESSAGES: u64 = 100_000;
/// Messages stored per run of the storing figure.
const STORED: u64 = 20_000;
/// Messages per transaction, as the store worker batches them.
const BATCH: u64 = 512;
/// Distinct words.
const VOCABULARY: usize = 5_000;
/// Searches timed per word per run.
const SEARCHES: usize = 20;
/// Bytes of the signed event kept beside each message (a sealed message's event is about this).
const EVENT_BYTES: usize = 560;

/// A small deterministic generator (xorshift64*): the same messages in every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Word `rank` of the vocabulary: a pronounceable made-up word, unique per rank.
fn word(rank: usize) -> String {
    const SYLLABLES: &[&str] = &["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "pa", "do", "fe", "gu", "hi"];
    let mut n = rank;
    let mut out = String::new();
    loop {
        out.push_str(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
        if n == 0 {
            break;
        }
    }
    out.push('n');
    out
}

/// Lines of 6 to 14 words drawn with Zipf's law (exponent 1) over the vocabulary.
struct Lines {
    rng: Rng,
    cumulative: Vec<f64>,
}

impl Lines {
    fn new() -> Lines {
        let weights: Vec<f64> = (1..=VOCABULARY).map(|r| 1.0 / r as f64).collect();
        let total: f64 = weights.iter().sum();
        let mut sum = 0.0;
        let cumulative = weights.iter().map(|w| {
            sum += w / total;
            sum
        });
        Lines { rng: Rng(0x9e37_79b9_7f4a_7c15), cumulative: cumulative.collect() }
    }

    fn line(&mut self) -> String {
        let words = 6 + (self.rng.next() % 9) as usize;
        let picked: Vec<String> = (0..words)
            .map(|_| {
                let u = self.rng.unit();
                word(self.cumulative.partition_point(|&c| c < u).min(VOCABULARY - 1))
            })
            .collect();
        picked.join(" ")
    }
}

/// Message `n` of the figure. Its id is a SHA-256, as a node's are (the hash of the signed
/// event): ids in no order, as they come into the table's key.
fn message(room: EventId, n: u64, text: String) -> StoredMessage {
    let id: [u8; 32] = Sha256::digest(n.to_be_bytes()).into();
    StoredMessage {
        id: EventId::from_bytes(id),
        room,
        account: AccountId::from_bytes([(n % 8) as u8; 16]),
        author: format!("user{}", n % 8),
        nick: format!("User {}", n % 8),
        text,
        ts_ms: 1_700_000_000_000 + n * 1_000,
        depth: 3,
        peer: vec![(n % 8) as u8; 38],
        seq: n / 8 + 1,
        session: "sessionsessionsessionsessionsessionsessionx".into(),
        readable: Readable::Read,
    }
}

/// Stores `count` messages into `store` in batches; microseconds per message.
fn fill(store: &NodeStore, room: EventId, first: u64, count: u64, lines: &mut Lines) -> f64 {
    let event = vec![0x5a; EVENT_BYTES];
    let messages: Vec<StoredMessage> = (first..first + count).map(|n| message(room, n, lines.line())).collect();
    let started = Instant::now();
    for batch in messages.chunks(BATCH as usize) {
        store.begin().expect("begin");
        for m in batch {
            store.save_message(m, &event).expect("a message kept");
        }
        store.commit().expect("commit");
    }
    started.elapsed().as_secs_f64() * 1e6 / count as f64
}

/// Stores `count` messages into the node database at `path` as [`NodeStore::save_message`] does
/// (the same statement, pragmas and batches) but without writing the search index;
/// microseconds per message.
fn fill_unindexed(path: &std::path::Path, room: EventId, count: u64, lines: &mut Lines) -> f64 {
    let conn = rusqlite::Connection::open(path).expect("the database");
    conn.pragma_update(None, "journal_mode", "WAL").expect("WAL");
    conn.pragma_update(None, "synchronous", "NORMAL").expect("NORMAL");
    conn.pragma_update(None, "wal_autocheckpoint", 8192).expect("the checkpoint interval");
    let event = vec![0x5au8; EVENT_BYTES];
    let messages: Vec<StoredMessage> = (0..count).map(|n| message(room, n, lines.line())).collect();
    let started = Instant::now();
    for batch in messages.chunks(BATCH as usize) {
        conn.execute_batch("BEGIN").expect("begin");
        for m in batch {
            let mut statement = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO messages
                     (id, room, account, author, nick, text, ts_ms, depth, peer, seq, event, session, sealed)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
                .expect("the statement");
            statement
                .execute(rusqlite::params![
                    &m.id.as_bytes()[..],
                    &m.room.as_bytes()[..],
                    &m.account.as_bytes()[..],
                    m.author,
                    m.nick,
                    m.text,
                    m.ts_ms as i64,
                    m.depth as i64,
                    m.peer,
                    m.seq as i64,
                    &event,
                    m.session,
                    0i64,
                ])
                .expect("a message kept");
        }
        conn.execute_batch("COMMIT").expect("commit");
    }
    started.elapsed().as_secs_f64() * 1e6 / count as f64
}

/// Milliseconds per search of `fts` and per `LIKE` scan for `word`, medians of [`SEARCHES`].
fn time_word(store: &NodeStore, like: &rusqlite::Connection, room: EventId, word: &str) -> (f64, f64, usize) {
    let fts = SearchLine::parse(word).expect("a query").query.expect("words").fts_match();
    let mut fts_ms = Vec::new();
    let mut found = 0;
    for _ in 0..SEARCHES {
        let started = Instant::now();
        let page = store.search_messages(&fts, &[room], None, 21).expect("a search");
        fts_ms.push(started.elapsed().as_secs_f64() * 1e3);
        found = page.len();
        std::hint::black_box(page);
    }
    let mut statement = like
        .prepare(
            "SELECT id, author, text, ts_ms FROM messages WHERE room = ?1 AND text LIKE ?2
             ORDER BY ts_ms DESC LIMIT 21",
        )
        .expect("a LIKE statement");
    let mut like_ms = Vec::new();
    for _ in 0..SEARCHES.min(5) {
        let started = Instant::now();
        let rows: Vec<String> = statement
            .query_map(rusqlite::params![&room.as_bytes()[..], format!("%{word}%")], |r| r.get::<_, String>(2))
            .expect("a scan")
            .collect::<Result<_, _>>()
            .expect("rows");
        like_ms.push(started.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(rows);
    }
    (Runs::new(fts_ms).median(), Runs::new(like_ms).median(), found)
}

/// How many of the messages hold `word`.
fn holding(like: &rusqlite::Connection, word: &str) -> u64 {
    like.query_row(
        "SELECT COUNT(*) FROM messages_search WHERE messages_search MATCH ?1",
        [format!("\"{word}\"")],
        |r| r.get::<_, i64>(0),
    )
    .map_or(0, |n| n.max(0) as u64)
}

/// The words searched: a rare, a middling and a common one (by rank in the vocabulary).
const RANKS: [(usize, &str); 3] = [(3_000, "rare"), (150, "middling"), (5, "common")];

pub fn run(reps: usize) -> Vec<Row> {
    let room = EventId::from_bytes([3; 32]);
    let dir = tempfile::tempdir().expect("a temporary dir");
    let store = NodeStore::open(dir.path()).expect("a node database");
    let mut lines = Lines::new();
    let filled = fill(&store, room, 0, MESSAGES, &mut lines);
    eprintln!("  {MESSAGES} messages stored ({filled:.1} µs each)");
    let like = rusqlite::Connection::open(dir.path().join(NODE_DB)).expect("a second connection");
    let mut rows = Vec::new();
    for (rank, which) in RANKS {
        let w = word(rank);
        let count = holding(&like, &w);
        let (mut fts_runs, mut like_runs) = (Vec::new(), Vec::new());
        let mut found = 0;
        for _ in 0..reps {
            let (fts, scan, page) = time_word(&store, &like, room, &w);
            eprintln!("  {which} word {w:?} (in {count} messages): FTS5 {fts:.2} ms, LIKE {scan:.1} ms");
            fts_runs.push(fts);
            like_runs.push(scan);
            found = page;
        }
        let fts = Runs::new(fts_runs);
        let met = fts.median() < 50.0;
        rows.push(Row {
            figure: 10,
            what: format!("search: one page of results for a {which} word among {MESSAGES} messages (in {count})"),
            unit: "ms".into(),
            meshchat: fts,
            anchor_name: "LIKE '%word%' scan of the same table".into(),
            anchor: Some(Runs::new(like_runs)),
            better: Better::Lower,
            goal: "< 50 ms".into(),
            met: Some(met),
            note: format!(
                "FTS5 (unicode61, diacritics folded), best first (bm25) then newest, {found} of the page of 21 filled; \
                 median of {SEARCHES} searches per run (LIKE: of 5), one thread"
            ),
        });
    }
    drop(like);
    drop(store);

    let (mut with_index, mut without) = (Vec::new(), Vec::new());
    let (mut bytes_with, mut bytes_without) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let dir = tempfile::tempdir().expect("a temporary dir");
        let path = dir.path().join(NODE_DB);
        let store = NodeStore::open(dir.path()).expect("a node database");
        let empty = database_bytes(&path);
        let us = fill(&store, room, 0, STORED, &mut Lines::new());
        drop(store);
        let per_message = (database_bytes(&path) - empty) / STORED as f64;
        eprintln!("  storing {STORED} messages with the index: {us:.2} µs and {per_message:.0} bytes each");
        with_index.push(us);
        bytes_with.push(per_message);
        let dir = tempfile::tempdir().expect("a temporary dir");
        let path = dir.path().join(NODE_DB);
        drop(NodeStore::open(dir.path()).expect("a node database"));
        let empty = database_bytes(&path);
        let us = fill_unindexed(&path, room, STORED, &mut Lines::new());
        let per_message = (database_bytes(&path) - empty) / STORED as f64;
        eprintln!("  storing {STORED} messages without it: {us:.2} µs and {per_message:.0} bytes each");
        without.push(us);
        bytes_without.push(per_message);
    }
    let (with_index, without) = (Runs::new(with_index), Runs::new(without));
    let overhead = with_index.median() / without.median() - 1.0;
    rows.push(Row {
        figure: 10,
        what: "storing one room message, kept in the search index (in its transaction)".into(),
        unit: "µs".into(),
        meshchat: with_index,
        anchor_name: "the same without the index".into(),
        anchor: Some(without),
        better: Better::Lower,
        goal: "< 10 % more".into(),
        met: Some(overhead < 0.10),
        note: format!(
            "{STORED} messages of 6–14 words with a {EVENT_BYTES}-byte event each, {BATCH} per transaction, into a fresh \
             database; the index costs {:+.1} %",
            overhead * 100.0
        ),
    });
    let (bytes_with, bytes_without) = (Runs::new(bytes_with), Runs::new(bytes_without));
    rows.push(Row {
        figure: 10,
        what: "database bytes per room message stored, kept in the search index".into(),
        unit: "bytes".into(),
        meshchat: bytes_with.clone(),
        anchor_name: "the same without the index".into(),
        anchor: Some(bytes_without.clone()),
        better: Better::Lower,
        goal: String::new(),
        met: None,
        note: format!(
            "the same {STORED} messages, the file's growth after a checkpoint; the index takes {:+.1} %",
            (bytes_with.median() / bytes_without.median() - 1.0) * 100.0
        ),
    });
    rows
}

/// The size of the database at `path` once its write-ahead log is checkpointed into it.
fn database_bytes(path: &std::path::Path) -> f64 {
    let conn = rusqlite::Connection::open(path).expect("the database");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).expect("a checkpoint");
    drop(conn);
    std::fs::metadata(path).expect("the database file").len() as f64
}
