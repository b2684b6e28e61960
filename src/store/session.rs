//! The login and the names in the node database: the saved session (certificate and
//! nickname), the nickname each account last used here, the usernames accounts were seen with
//! (newest certificate wins), and the rooms and users this user muted.
//!
//! Only SQL and rows here: whether a session is valid, or a name is taken, is the session
//! engine's and the bootstrap's decision.

use rusqlite::{OptionalExtension, params};

use super::{NodeStore, Session, StoreError, sql_int};
use crate::account::AccountId;

impl NodeStore {
    /// The saved session, if any.
    pub fn session(&self) -> Result<Option<Session>, StoreError> {
        let row: Option<(Vec<u8>, String)> = self
            .row("SELECT certificate, nick FROM session WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((bytes, nick)) = row else { return Ok(None) };
        let certificate =
            cbor4ii::serde::from_slice(&bytes).map_err(|e| StoreError::Corrupt(format!("saved certificate: {e}")))?;
        Ok(Some(Session { certificate, nick }))
    }

    /// Saves the session, replacing any other.
    pub fn save_session(&self, session: &Session) -> Result<(), StoreError> {
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &session.certificate)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode certificate: {e}")))?;
        self.exec(
            "INSERT INTO session (id, certificate, nick) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET certificate = excluded.certificate, nick = excluded.nick",
            params![bytes, session.nick],
        )?;
        Ok(())
    }

    /// The nickname each account last used on this node.
    pub fn nicknames(&self) -> Result<Vec<(AccountId, String)>, StoreError> {
        let mut statement = self.conn().prepare_cached("SELECT account_id, nick FROM nicknames")?;
        let rows = statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, nick) = row?;
            let id = AccountId::from_hex(&id).ok_or_else(|| StoreError::Corrupt(format!("account id {id}")))?;
            out.push((id, nick));
        }
        Ok(out)
    }

    /// Remembers `account`'s nickname for later logins.
    pub fn save_nickname(&self, account: &AccountId, nick: &str) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO nicknames (account_id, nick) VALUES (?1, ?2)
             ON CONFLICT (account_id) DO UPDATE SET nick = excluded.nick",
            params![account.to_hex(), nick],
        )?;
        Ok(())
    }

    /// Remembers that `account` goes by `username` (from its certificate of serial `serial`).
    pub fn save_label(&self, account: &AccountId, username: &str, serial: u64) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO accounts_seen (account_id, username, serial) VALUES (?1, ?2, ?3)
             ON CONFLICT (account_id) DO UPDATE SET username = excluded.username, serial = excluded.serial
             WHERE excluded.serial > accounts_seen.serial",
            params![account.to_hex(), username, sql_int(serial)],
        )?;
        Ok(())
    }

    /// Remembers that `account`'s certificate of serial `serial` names peer `peer` (binary).
    pub fn save_account_peer(&self, account: &AccountId, peer: &[u8], serial: u64) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO account_peers (account_id, peer, serial) VALUES (?1, ?2, ?3)
             ON CONFLICT (account_id) DO UPDATE SET peer = excluded.peer, serial = excluded.serial
             WHERE excluded.serial > account_peers.serial",
            params![account.to_hex(), peer, sql_int(serial)],
        )?;
        Ok(())
    }

    /// The peer (binary) of each account's newest certificate seen, with its serial.
    pub fn account_peers(&self) -> Result<Vec<(AccountId, Vec<u8>, u64)>, StoreError> {
        let mut statement = self.conn().prepare_cached("SELECT account_id, peer, serial FROM account_peers")?;
        let rows =
            statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, i64>(2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, peer, serial) = row?;
            let id = AccountId::from_hex(&id).ok_or_else(|| StoreError::Corrupt(format!("account id {id}")))?;
            out.push((id, peer, serial.max(0) as u64));
        }
        Ok(out)
    }

    /// Every account seen, with its last known username and that certificate's serial.
    pub fn labels(&self) -> Result<Vec<(AccountId, String, u64)>, StoreError> {
        let mut statement = self.conn().prepare_cached("SELECT account_id, username, serial FROM accounts_seen")?;
        let rows =
            statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, username, serial) = row?;
            let id = AccountId::from_hex(&id).ok_or_else(|| StoreError::Corrupt(format!("account id {id}")))?;
            out.push((id, username, serial.max(0) as u64));
        }
        Ok(out)
    }

    /// Forgets the session (logout).
    pub fn clear_session(&self) -> Result<(), StoreError> {
        self.exec("DELETE FROM session", [])?;
        Ok(())
    }

    /// The muted targets (`#room`, `@user`).
    pub fn mutes(&self) -> Result<Vec<String>, StoreError> {
        let mut statement = self.conn().prepare_cached("SELECT target FROM mutes ORDER BY target")?;
        let rows = statement.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Mutes or unmutes `target`.
    pub fn set_muted(&self, target: &str, muted: bool) -> Result<(), StoreError> {
        if muted {
            self.exec("INSERT OR IGNORE INTO mutes (target) VALUES (?1)", params![target])?;
        } else {
            self.exec("DELETE FROM mutes WHERE target = ?1", params![target])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::Authority;
    use crate::testing::account_of;

    #[test]
    fn a_session_survives_reopening_and_can_be_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let cert = Authority::from_secret(&[1; 32]).issue(account_of("alice"), "alice", b"peer", 100, 1);
        let session = Session { certificate: cert, nick: "Alice".into() };
        {
            let store = NodeStore::open(dir.path()).unwrap();
            assert_eq!(store.session().unwrap(), None);
            store.save_session(&session).unwrap();
        }
        let store = NodeStore::open(dir.path()).unwrap();
        assert_eq!(store.session().unwrap(), Some(session.clone()));
        let renamed = Session { nick: "A".into(), ..session };
        store.save_session(&renamed).unwrap();
        assert_eq!(store.session().unwrap(), Some(renamed));
        store.clear_session().unwrap();
        assert_eq!(store.session().unwrap(), None);
    }

    #[test]
    fn mutes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = NodeStore::open(dir.path()).unwrap();
            store.set_muted("#lobby", true).unwrap();
            store.set_muted("@bob", true).unwrap();
            store.set_muted("@bob", false).unwrap();
        }
        let store = NodeStore::open(dir.path()).unwrap();
        assert_eq!(store.mutes().unwrap(), vec!["#lobby".to_string()]);
    }

    #[test]
    fn nicknames_are_remembered_per_account() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        let alice = account_of("alice");
        assert_eq!(store.nicknames().unwrap(), vec![]);
        store.save_nickname(&alice, "Alice W").unwrap();
        store.save_nickname(&alice, "Alice X").unwrap();
        assert_eq!(store.nicknames().unwrap(), vec![(alice, "Alice X".to_string())]);
    }

    #[test]
    fn the_names_of_accounts_follow_their_newest_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let alice = account_of("alice");
        {
            let store = NodeStore::open(dir.path()).unwrap();
            store.save_label(&alice, "alice", 3).unwrap();
            store.save_label(&alice, "alicia", 5).unwrap();
            store.save_label(&alice, "alice", 4).unwrap();
        }
        let store = NodeStore::open(dir.path()).unwrap();
        assert_eq!(store.labels().unwrap(), vec![(alice, "alicia".to_string(), 5)]);
    }
}
