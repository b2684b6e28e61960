//! The letters this node keeps as a mailbox (`letters`): sealed direct messages left for
//! recipients who are offline, kept under the quotas of [`crate::mailbox`] and for at most
//! 14 days, handed over oldest first a page at a time (each page after the position the last
//! ended at: letters the recipient leaves there for now never hide those behind them), deleted
//! once the recipient says it took them.
//!
//! Only SQL and rows here: whether a request may be heard (its certificate) is the node's
//! decision; the bytes of a letter are never read.

use rusqlite::{OptionalExtension, params};

use super::{NodeStore, StoreError, sql_int};
use crate::account::AccountId;
use crate::mailbox::{
    KEEP_MS, MAX_BYTES_PER_PAIR, MAX_BYTES_PER_RECIPIENT, MAX_LETTERS_PER_PAIR, MAX_LETTERS_PER_RECIPIENT,
    MAX_LETTERS_PER_SENDER, fresh,
};
use crate::protocol::mailbox::{Letter, MailboxRefusal};

/// A letter as it is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftLetter {
    pub sender: AccountId,
    pub recipient: AccountId,
    pub id: String,
    pub written_ms: u64,
    pub sealed: Vec<u8>,
}

impl NodeStore {
    /// Keeps `letter` at `now_ms`, unless a quota or its age forbids it; a letter kept already
    /// (the same recipient and id) is not kept twice and counts as kept.
    pub fn leave_letter(&self, letter: &LeftLetter, now_ms: u64) -> Result<Result<(), MailboxRefusal>, StoreError> {
        if !fresh(letter.written_ms, now_ms) {
            return Ok(Err(MailboxRefusal::TooOld));
        }
        Ok(self.transaction(|| {
            let recipient = &letter.recipient.as_bytes()[..];
            let known: Option<i64> = self
                .row("SELECT 1 FROM letters WHERE recipient = ?1 AND id = ?2", params![recipient, letter.id], |r| {
                    r.get(0)
                })
                .optional()?;
            if known.is_some() {
                return Ok(Ok(()));
            }
            let from_sender: i64 = self.row(
                "SELECT COUNT(*) FROM letters WHERE sender = ?1",
                params![&letter.sender.as_bytes()[..]],
                |r| r.get(0),
            )?;
            if from_sender >= sql_int(MAX_LETTERS_PER_SENDER) {
                return Ok(Err(MailboxRefusal::SenderQuota));
            }
            let size = i64::try_from(letter.sealed.len()).unwrap_or(i64::MAX);
            let (pair_count, pair_bytes): (i64, i64) = self.row(
                "SELECT COUNT(*), COALESCE(SUM(length(sealed)), 0) FROM letters WHERE sender = ?1 AND recipient = ?2",
                params![&letter.sender.as_bytes()[..], recipient],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if pair_count >= sql_int(MAX_LETTERS_PER_PAIR)
                || pair_bytes.saturating_add(size) > sql_int(MAX_BYTES_PER_PAIR)
            {
                return Ok(Err(MailboxRefusal::SenderQuota));
            }
            let (count, bytes): (i64, i64) = self.row(
                "SELECT COUNT(*), COALESCE(SUM(length(sealed)), 0) FROM letters WHERE recipient = ?1",
                params![recipient],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if count >= sql_int(MAX_LETTERS_PER_RECIPIENT)
                || bytes.saturating_add(size) > sql_int(MAX_BYTES_PER_RECIPIENT)
            {
                return Ok(Err(MailboxRefusal::RecipientQuota));
            }
            self.exec(
                "INSERT INTO letters (recipient, id, sender, sealed, written_ms, kept_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    recipient,
                    letter.id,
                    &letter.sender.as_bytes()[..],
                    letter.sealed,
                    sql_int(letter.written_ms),
                    sql_int(now_ms)
                ],
            )?;
            Ok(Ok(()))
        })?)
    }

    /// The oldest `limit` letters kept for `recipient` after position `after` (0: from the
    /// first), whether more wait behind them, and the position to collect the next page after.
    pub fn letters_for(
        &self,
        recipient: &AccountId,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<Letter>, bool, u64), StoreError> {
        let mut statement = self.conn().prepare_cached(
            "SELECT id, sealed, rowid FROM letters WHERE recipient = ?1 AND rowid > ?2 ORDER BY rowid LIMIT ?3",
        )?;
        let limit_plus_one = sql_int((limit as u64).saturating_add(1));
        let rows = statement.query_map(params![&recipient.as_bytes()[..], sql_int(after), limit_plus_one], |r| {
            Ok((Letter { id: r.get(0)?, sealed: r.get(1)? }, r.get::<_, i64>(2)?))
        })?;
        let mut page: Vec<(Letter, i64)> = rows.collect::<Result<_, _>>()?;
        let more = page.len() > limit;
        page.truncate(limit);
        let next = page.last().map_or(after, |(_, position)| u64::try_from(*position).unwrap_or(after));
        Ok((page.into_iter().map(|(letter, _)| letter).collect(), more, next))
    }

    /// Deletes the letters `ids` of `recipient` (they were taken).
    pub fn take_letters(&self, recipient: &AccountId, ids: &[String]) -> Result<(), StoreError> {
        Ok(self.transaction(|| {
            for id in ids {
                self.exec(
                    "DELETE FROM letters WHERE recipient = ?1 AND id = ?2",
                    params![&recipient.as_bytes()[..], id],
                )?;
            }
            Ok(())
        })?)
    }

    /// Deletes the letters kept longer than 14 days at `now_ms`; how many.
    pub fn expire_letters(&self, now_ms: u64) -> Result<usize, StoreError> {
        let before = sql_int(now_ms.saturating_sub(KEEP_MS));
        Ok(self.exec("DELETE FROM letters WHERE kept_ms < ?1", params![before])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::account_of;

    const NOW: u64 = 1_800_000_000_000;

    fn letter(sender: &str, recipient: &str, id: &str, bytes: usize) -> LeftLetter {
        LeftLetter {
            sender: account_of(sender),
            recipient: account_of(recipient),
            id: id.into(),
            written_ms: NOW,
            sealed: vec![7; bytes],
        }
    }

    #[test]
    fn letters_are_kept_handed_over_in_order_and_deleted_when_taken() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        for i in 0..5 {
            assert_eq!(store.leave_letter(&letter("alice", "bob", &format!("m-{i}"), 100), NOW + i).unwrap(), Ok(()));
        }
        assert_eq!(store.leave_letter(&letter("alice", "bob", "m-2", 100), NOW).unwrap(), Ok(()), "kept once");
        store.leave_letter(&letter("alice", "carol", "c-1", 100), NOW).unwrap().unwrap();
        let (letters, more, _) = store.letters_for(&account_of("bob"), 0, 3).unwrap();
        assert_eq!(letters.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(), ["m-0", "m-1", "m-2"]);
        assert!(more);
        store.take_letters(&account_of("bob"), &["m-0".into(), "m-1".into(), "c-1".into()]).unwrap();
        let (letters, more, _) = store.letters_for(&account_of("bob"), 0, 10).unwrap();
        assert_eq!(letters.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(), ["m-2", "m-3", "m-4"]);
        assert!(!more);
        assert_eq!(store.letters_for(&account_of("carol"), 0, 10).unwrap().0.len(), 1, "only bob's were taken");
    }

    #[test]
    fn quotas_and_age_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        for i in 0..MAX_LETTERS_PER_SENDER {
            let recipient = format!("r{}", i % 8);
            store.leave_letter(&letter("mallory", &recipient, &format!("m-{i}"), 10), NOW).unwrap().unwrap();
        }
        assert_eq!(
            store.leave_letter(&letter("mallory", "dave", "x", 10), NOW).unwrap(),
            Err(MailboxRefusal::SenderQuota)
        );
        assert_eq!(store.leave_letter(&letter("alice", "bob", "a-1", 10), NOW).unwrap(), Ok(()), "others still may");
        let senders = MAX_BYTES_PER_RECIPIENT / MAX_BYTES_PER_PAIR;
        for i in 0..senders {
            let big = letter(&format!("s{i}"), "erin", &format!("b-{i}"), MAX_BYTES_PER_PAIR as usize);
            store.leave_letter(&big, NOW).unwrap().unwrap();
        }
        assert_eq!(
            store.leave_letter(&letter("alice", "erin", "a-2", 1), NOW).unwrap(),
            Err(MailboxRefusal::RecipientQuota)
        );
        let mut old = letter("alice", "bob", "old", 10);
        old.written_ms = NOW - KEEP_MS - 1;
        assert_eq!(store.leave_letter(&old, NOW).unwrap(), Err(MailboxRefusal::TooOld));
        assert_eq!(store.expire_letters(NOW + KEEP_MS).unwrap(), 0);
        let total = (MAX_LETTERS_PER_SENDER + 1 + senders) as usize;
        assert_eq!(store.expire_letters(NOW + KEEP_MS + 1).unwrap(), total, "kept 14 days, then deleted");
    }

    #[test]
    fn one_sender_fills_no_more_than_its_share_of_a_recipients_letters() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        for i in 0..MAX_LETTERS_PER_PAIR {
            store.leave_letter(&letter("mallory", "bob", &format!("m-{i}"), 10), NOW).unwrap().unwrap();
        }
        let refused = store.leave_letter(&letter("mallory", "bob", "m-x", 10), NOW).unwrap();
        assert_eq!(refused, Err(MailboxRefusal::SenderQuota));
        assert!(refused.unwrap_err().to_string().contains("no more letters from this sender"));
        assert_eq!(store.leave_letter(&letter("mallory", "carol", "m-x", 10), NOW).unwrap(), Ok(()), "to others");
        assert_eq!(store.leave_letter(&letter("alice", "bob", "a-1", 10), NOW).unwrap(), Ok(()), "others to bob");
        // Bytes too: a few large letters fill a sender's share for one recipient.
        let half = (MAX_BYTES_PER_PAIR / 2) as usize;
        store.leave_letter(&letter("mallory", "dave", "d-1", half), NOW).unwrap().unwrap();
        store.leave_letter(&letter("mallory", "dave", "d-2", half), NOW).unwrap().unwrap();
        assert_eq!(
            store.leave_letter(&letter("mallory", "dave", "d-3", 1), NOW).unwrap(),
            Err(MailboxRefusal::SenderQuota)
        );
        assert_eq!(store.leave_letter(&letter("alice", "dave", "a-1", half), NOW).unwrap(), Ok(()));
    }

    #[test]
    fn letters_left_for_now_do_not_hide_those_behind_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        let page = crate::protocol::mailbox::MAX_LETTERS;
        // Mallory's letters come first, and bob leaves every one of them there (out of turn).
        for i in 0..page {
            store.leave_letter(&letter("mallory", "bob", &format!("m-{i}"), 10), NOW).unwrap().unwrap();
        }
        store.leave_letter(&letter("alice", "bob", "a-1", 10), NOW + 1).unwrap().unwrap();
        let (first, more, next) = store.letters_for(&account_of("bob"), 0, page).unwrap();
        assert!(first.iter().all(|l| l.id.starts_with("m-")) && more);
        let (second, more, after) = store.letters_for(&account_of("bob"), next, page).unwrap();
        assert_eq!(second.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(), ["a-1"], "alice's comes next");
        assert!(!more);
        let (none, more, end) = store.letters_for(&account_of("bob"), after, page).unwrap();
        assert!(none.is_empty() && !more && end == after);
        // A new round starts from the first again: mallory's are still there.
        assert_eq!(store.letters_for(&account_of("bob"), 0, page).unwrap().0.len(), page);
    }
}
