//! Opening a SQLite database the one way meshchat does: WAL, a chosen [`Durability`], a busy
//! time-out, foreign keys on, and the schema brought up to date by numbered migrations recorded
//! in `PRAGMA user_version`.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use thiserror::Error;

/// How long a statement waits for a lock held by another connection.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How much a commit waits for the disk. Both survive a crash of the process (`kill -9`) with
/// the database intact; they differ on power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: a commit is on disk when it returns (accounts).
    Full,
    /// `synchronous=NORMAL`: the last commits may be lost on power loss, never corrupted; no
    /// fsync per message (chat history on a node).
    Normal,
}

/// A database that could not be opened or migrated.
#[derive(Debug, Error)]
pub enum OpenError {
    #[error("cannot open database {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("cannot migrate database {path} to schema version {version}: {source}")]
    Migrate { path: String, version: usize, source: rusqlite::Error },
    #[error("database {path} has schema version {found}, newer than this meshchat knows ({known}); upgrade meshchat")]
    TooNew { path: String, found: usize, known: usize },
}

/// Opens (creating if needed) the database at `path` and applies `migrations[v..]`, where `v`
/// is the schema version it has. Each migration runs in its own transaction.
pub fn open(path: &Path, durability: Durability, migrations: &[&str]) -> Result<Connection, OpenError> {
    let name = path.display().to_string();
    let open_err = |source| OpenError::Open { path: name.clone(), source };
    let mut conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(open_err)?;
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous).map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(open_err)?;
    let version: usize = conn
        .pragma_query_value(None, "user_version", |row| row.get::<_, i64>(0))
        .map_err(open_err)?
        .try_into()
        .unwrap_or(0);
    if version > migrations.len() {
        return Err(OpenError::TooNew { path: name, found: version, known: migrations.len() });
    }
    for (index, sql) in migrations.iter().enumerate().skip(version) {
        let target = index + 1;
        let migrate_err = |source| OpenError::Migrate { path: name.clone(), version: target, source };
        let tx = conn.transaction().map_err(migrate_err)?;
        tx.execute_batch(sql).map_err(migrate_err)?;
        tx.pragma_update(None, "user_version", target as i64).map_err(migrate_err)?;
        tx.commit().map_err(migrate_err)?;
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "CREATE TABLE t (a INTEGER);";
    const V2: &str = "ALTER TABLE t ADD COLUMN b TEXT;";

    #[test]
    fn migrations_apply_once_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let conn = open(&path, Durability::Full, &[V1]).unwrap();
        conn.execute("INSERT INTO t (a) VALUES (1)", []).unwrap();
        drop(conn);
        let conn = open(&path, Durability::Normal, &[V1, V2]).unwrap();
        let (a, b): (i64, Option<String>) =
            conn.query_row("SELECT a, b FROM t", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!((a, b), (1, None));
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        drop(open(&path, Durability::Full, &[V1, V2]).unwrap());
        assert!(matches!(open(&path, Durability::Full, &[V1]), Err(OpenError::TooNew { found: 2, known: 1, .. })));
    }
}
