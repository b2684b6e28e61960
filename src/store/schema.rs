//! The node database's tables, as the migrations that made them: each entry is applied once,
//! in order, and the count applied is kept in `PRAGMA user_version` (see [`super::sqlite`]).
//!
//! Only schema here: never a query, never a row.

/// Every migration, oldest first. Never edit an entry that has shipped: add one.
pub(super) const MIGRATIONS: &[&str] = &[
    "CREATE TABLE session (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        certificate BLOB NOT NULL,
        nick TEXT NOT NULL
    );",
    "CREATE TABLE nicknames (
        username_key TEXT PRIMARY KEY,
        nick TEXT NOT NULL
    );",
    "CREATE TABLE room_events (
        id TEXT PRIMARY KEY,
        room TEXT NOT NULL,
        lamport INTEGER NOT NULL,
        author TEXT NOT NULL,
        action BLOB NOT NULL,
        envelope BLOB NOT NULL
    );
    CREATE INDEX room_events_by_room ON room_events (room, lamport);
    CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        room TEXT NOT NULL,
        author TEXT NOT NULL,
        nick TEXT NOT NULL,
        text TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        lamport INTEGER NOT NULL,
        envelope BLOB NOT NULL
    );
    CREATE INDEX messages_by_room ON messages (room, lamport, ts_ms);
    CREATE TABLE mutes (
        target TEXT PRIMARY KEY
    );",
    "CREATE TABLE dms (
        id TEXT PRIMARY KEY,
        owner_key TEXT NOT NULL,
        other_key TEXT NOT NULL,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        text TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        outgoing INTEGER NOT NULL,
        delivered INTEGER NOT NULL
    );
    CREATE INDEX dms_by_conversation ON dms (owner_key, other_key);
    CREATE INDEX dms_outbox ON dms (owner_key, outgoing, delivered);
    CREATE TABLE dm_seen (
        owner_key TEXT NOT NULL,
        sender_key TEXT NOT NULL,
        peer BLOB NOT NULL,
        last_seq INTEGER NOT NULL,
        PRIMARY KEY (owner_key, sender_key, peer)
    );",
    "ALTER TABLE messages ADD COLUMN peer BLOB NOT NULL DEFAULT x'';
    ALTER TABLE messages ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX messages_by_peer ON messages (room, peer, seq);",
    // Accounts have stable ids: room events name them, and what was keyed by names before
    // (room memberships, mutes of users, a certificate without an id) cannot be carried over.
    "DELETE FROM room_events;
    DELETE FROM session;
    DELETE FROM mutes WHERE target LIKE '@%';
    CREATE TABLE accounts_seen (
        account_id TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        serial INTEGER NOT NULL
    );",
    // Nicknames are remembered per account.
    "DELETE FROM nicknames WHERE length(username_key) != 32;
    ALTER TABLE nicknames RENAME COLUMN username_key TO account_id;",
    // Rooms are their create events (room protocol 3): rooms known by name cannot be carried
    // over, nor mutes of them.
    "DROP TABLE room_events;
    DROP TABLE messages;
    DELETE FROM mutes WHERE target LIKE '#%';
    CREATE TABLE room_events (
        id BLOB PRIMARY KEY,
        room BLOB NOT NULL,
        depth INTEGER NOT NULL,
        event BLOB NOT NULL
    );
    CREATE INDEX room_events_by_room ON room_events (room, depth, id);
    CREATE TABLE messages (
        id BLOB PRIMARY KEY,
        room BLOB NOT NULL,
        account BLOB NOT NULL,
        author TEXT NOT NULL,
        nick TEXT NOT NULL,
        text TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        depth INTEGER NOT NULL,
        peer BLOB NOT NULL,
        seq INTEGER NOT NULL,
        event BLOB NOT NULL
    );
    CREATE INDEX messages_by_room ON messages (room, depth, ts_ms, id);
    CREATE INDEX messages_by_peer ON messages (room, peer, seq);",
    // Room messages are sealed (room protocol 4): rooms of protocol 3 cannot be carried over,
    // nor mutes of them. A message whose session key has not come yet is kept with `sealed`
    // set and no text, and opened once it comes; the keys of group sessions are kept too.
    "DROP TABLE room_events;
    DROP TABLE messages;
    DELETE FROM mutes WHERE target LIKE '#%';
    CREATE TABLE room_events (
        id BLOB PRIMARY KEY,
        room BLOB NOT NULL,
        depth INTEGER NOT NULL,
        event BLOB NOT NULL
    );
    CREATE INDEX room_events_by_room ON room_events (room, depth, id);
    CREATE TABLE messages (
        id BLOB PRIMARY KEY,
        room BLOB NOT NULL,
        account BLOB NOT NULL,
        author TEXT NOT NULL,
        nick TEXT NOT NULL,
        text TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        depth INTEGER NOT NULL,
        peer BLOB NOT NULL,
        seq INTEGER NOT NULL,
        event BLOB NOT NULL,
        session TEXT NOT NULL,
        sealed INTEGER NOT NULL
    );
    CREATE INDEX messages_by_room ON messages (room, depth, ts_ms, id);
    CREATE INDEX messages_by_peer ON messages (room, peer, seq);
    CREATE INDEX messages_sealed ON messages (room, session) WHERE sealed = 1;
    CREATE TABLE room_keys (
        room BLOB NOT NULL,
        session TEXT NOT NULL,
        key BLOB NOT NULL,
        PRIMARY KEY (room, session)
    );",
    // Full-text indexes of room messages and direct messages (`/search`), built now from what
    // is kept; from now on the store writes each text to its index in the statement's
    // transaction (`store/search.rs`). Not triggers: a statement that fires a trigger writing
    // to FTS5 opens a savepoint, and FTS5 writes its pending terms out at each one, which made
    // storing a message five times as slow.
    "CREATE VIRTUAL TABLE messages_search USING fts5 (
        text, content = 'messages', tokenize = 'unicode61 remove_diacritics 2'
    );
    INSERT INTO messages_search (messages_search) VALUES ('rebuild');
    CREATE VIRTUAL TABLE dms_search USING fts5 (
        text, content = 'dms', tokenize = 'unicode61 remove_diacritics 2'
    );
    INSERT INTO dms_search (dms_search) VALUES ('rebuild');",
    // Letters this node keeps as a mailbox for recipients who are offline: sealed, never read
    // here; by recipient and id, with their sender, their writing time and when they came. And
    // the peer each account's newest certificate seen names: a letter is sealed to its key.
    "CREATE TABLE letters (
        recipient BLOB NOT NULL,
        id TEXT NOT NULL,
        sender BLOB NOT NULL,
        sealed BLOB NOT NULL,
        written_ms INTEGER NOT NULL,
        kept_ms INTEGER NOT NULL,
        PRIMARY KEY (recipient, id)
    );
    CREATE INDEX letters_by_sender ON letters (sender);
    CREATE INDEX letters_by_age ON letters (kept_ms);
    CREATE TABLE account_peers (
        account_id TEXT PRIMARY KEY,
        peer BLOB NOT NULL,
        serial INTEGER NOT NULL
    );",
    // A direct message's id is its sender's word, unique only within its conversation: `dms`
    // is keyed by owner, other party, direction and id, so another sender reusing an id never
    // hides a message. Rows keep their rowids, which `dms_search` indexes them by.
    "CREATE TABLE dms_keyed (
        id TEXT NOT NULL,
        owner_key TEXT NOT NULL,
        other_key TEXT NOT NULL,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        text TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        outgoing INTEGER NOT NULL,
        delivered INTEGER NOT NULL,
        PRIMARY KEY (owner_key, other_key, outgoing, id)
    );
    INSERT INTO dms_keyed
        (rowid, id, owner_key, other_key, sender, recipient, text, ts_ms, seq, outgoing, delivered)
        SELECT rowid, id, owner_key, other_key, sender, recipient, text, ts_ms, seq, outgoing, delivered FROM dms;
    DROP TABLE dms;
    ALTER TABLE dms_keyed RENAME TO dms;
    CREATE INDEX dms_by_conversation ON dms (owner_key, other_key);
    CREATE INDEX dms_outbox ON dms (owner_key, outgoing, delivered);",
];
