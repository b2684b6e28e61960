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
            let Some(pushed_out) = self.room_for(letter, pair_count, size)? else {
                return Ok(Err(MailboxRefusal::RecipientQuota));
            };
            for rowid in pushed_out {
                self.exec("DELETE FROM letters WHERE rowid = ?1", params![rowid])?;
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

    /// Room for `letter` (`size` bytes) among its recipient's letters, whose sender has
    /// `mine` waiting there: the letters to delete for it, or `None` when it is refused.
    ///
    /// Within the recipient's quota it fits as it is. Past it, a sender with fewer letters
    /// waiting than another pushes out that other's newest (of whoever has the most): a few
    /// accounts filling a recipient's quota keep nobody else's letters out, and letters are
    /// never pushed out by a sender who would end up with more than their owner has left. A
    /// letter pushed out is no loss: every letter is a copy of a message its sender's outbox
    /// keeps until the receipt comes.
    fn room_for(&self, letter: &LeftLetter, mine: i64, size: i64) -> rusqlite::Result<Option<Vec<i64>>> {
        let recipient = &letter.recipient.as_bytes()[..];
        let (mut count, mut bytes): (i64, i64) = self.row(
            "SELECT COUNT(*), COALESCE(SUM(length(sealed)), 0) FROM letters WHERE recipient = ?1",
            params![recipient],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let fits = |count: i64, bytes: i64| {
            count < sql_int(MAX_LETTERS_PER_RECIPIENT) && bytes.saturating_add(size) <= sql_int(MAX_BYTES_PER_RECIPIENT)
        };
        if fits(count, bytes) {
            return Ok(Some(Vec::new()));
        }
        // Each other sender's count and bytes waiting for the recipient (at most the recipient's
        // quota of rows), and how many of theirs are pushed out so far.
        let mut statement = self.conn().prepare_cached(
            "SELECT sender, COUNT(*), SUM(length(sealed)) FROM letters WHERE recipient = ?1 AND sender != ?2
             GROUP BY sender",
        )?;
        let mut others: Vec<(Vec<u8>, i64, i64, i64)> = statement
            .query_map(params![recipient, &letter.sender.as_bytes()[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, 0)))?
            .collect::<Result<_, _>>()?;
        let mut pushed_out = Vec::new();
        while !fits(count, bytes) {
            let Some(most) = others.iter_mut().max_by_key(|(_, count, bytes, _)| (*count, *bytes)) else {
                return Ok(None);
            };
            if most.1 <= mine.saturating_add(1) {
                return Ok(None);
            }
            let (rowid, length): (i64, i64) = self.row(
                "SELECT rowid, length(sealed) FROM letters WHERE recipient = ?1 AND sender = ?2
                 ORDER BY rowid DESC LIMIT 1 OFFSET ?3",
                params![recipient, most.0, most.3],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            pushed_out.push(rowid);
            most.1 -= 1;
            most.2 = most.2.saturating_sub(length);
            most.3 += 1;
            count -= 1;
            bytes = bytes.saturating_sub(length);
        }
        Ok(Some(pushed_out))
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

    fn ids_for(store: &NodeStore, recipient: &str) -> Vec<String> {
        let (letters, _, _) = store.letters_for(&account_of(recipient), 0, 10_000).unwrap();
        letters.into_iter().map(|l| l.id).collect()
    }

    #[test]
    fn accounts_filling_a_recipients_quota_keep_nobody_else_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        // Sixteen accounts leave their full share each for bob: more than his quota holds.
        let senders = MAX_LETTERS_PER_RECIPIENT.div_ceil(MAX_LETTERS_PER_PAIR);
        for s in 0..senders {
            for i in 0..MAX_LETTERS_PER_PAIR {
                let _ = store.leave_letter(&letter(&format!("s{s}"), "bob", &format!("s{s}-{i}"), 10), NOW).unwrap();
            }
        }
        let full = ids_for(&store, "bob");
        assert_eq!(full.len() as u64, MAX_LETTERS_PER_RECIPIENT);
        // Carol's letter still gets in, and pushes out the newest of someone who has the most.
        assert_eq!(store.leave_letter(&letter("carol", "bob", "c-0", 10), NOW).unwrap(), Ok(()));
        let after = ids_for(&store, "bob");
        assert_eq!(after.len() as u64, MAX_LETTERS_PER_RECIPIENT);
        assert!(after.contains(&"c-0".to_string()));
        let gone: Vec<&String> = full.iter().filter(|id| !after.contains(id)).collect();
        assert_eq!(gone.len(), 1, "{gone:?}");
        let newest_of = format!("-{}", MAX_LETTERS_PER_PAIR - 1);
        assert!(gone[0].ends_with(&newest_of), "the newest of its sender: {gone:?}");
        // Whose letter that was cannot push hers out again: they still have more than she has.
        let pushed = gone[0].split('-').next().unwrap().to_string();
        let again = letter(&pushed, "bob", "again", 10);
        assert_eq!(store.leave_letter(&again, NOW).unwrap(), Err(MailboxRefusal::RecipientQuota));
        // Carol keeps leaving until she has as many as those she pushes out have left.
        let mut carols = 1;
        while store.leave_letter(&letter("carol", "bob", &format!("c-{carols}"), 10), NOW).unwrap().is_ok() {
            carols += 1;
            assert!(carols <= MAX_LETTERS_PER_PAIR, "carol past her own share");
        }
        let kept = ids_for(&store, "bob");
        assert_eq!(kept.len() as u64, MAX_LETTERS_PER_RECIPIENT);
        let per_sender = |name: &str| kept.iter().filter(|id| id.starts_with(&format!("{name}-"))).count() as u64;
        let fewest = (0..senders).map(|s| per_sender(&format!("s{s}"))).min().unwrap();
        assert_eq!(per_sender("c"), carols);
        assert!(carols >= fewest && carols <= fewest + 1, "carol {carols}, the others at least {fewest}");
        assert!(carols >= MAX_LETTERS_PER_RECIPIENT / (senders + 1), "a fair share: {carols}");
        // Every sender kept its oldest letters: only the newest are pushed out.
        for s in 0..senders {
            let n = per_sender(&format!("s{s}"));
            assert!((0..n).all(|i| kept.contains(&format!("s{s}-{i}"))), "s{s} lost an early one");
        }
    }

    #[test]
    fn a_refused_letter_pushes_nothing_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        let senders = MAX_LETTERS_PER_RECIPIENT / 10;
        for s in 0..senders {
            for i in 0..10 {
                store.leave_letter(&letter(&format!("s{s}"), "bob", &format!("s{s}-{i}"), 10), NOW).unwrap().unwrap();
            }
        }
        // Everyone has 10: one more from any of them would leave its sender ahead of the one it
        // pushed out. It is refused, and bob's letters stay as they are.
        let before = ids_for(&store, "bob");
        assert_eq!(
            store.leave_letter(&letter("s0", "bob", "s0-x", 10), NOW).unwrap(),
            Err(MailboxRefusal::RecipientQuota)
        );
        assert_eq!(ids_for(&store, "bob"), before);
        // A newcomer with none gets in, at the cost of one letter of someone with 10.
        assert_eq!(store.leave_letter(&letter("carol", "bob", "c-0", 10), NOW).unwrap(), Ok(()));
        assert_eq!(ids_for(&store, "bob").len(), before.len());
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
