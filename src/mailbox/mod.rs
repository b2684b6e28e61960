//! Mailboxes: a direct message left, sealed, at a node that keeps it for its recipient while
//! recipient and sender are both away (the bootstrap node, or a node run with `--mailbox`).
//!
//! - [`letter`]: a message sealed so that only its recipient's node can read it, and signed
//!   inside by the sender's node, so that nobody but the sender can have written it — the
//!   mailbox sees who wrote to whom and when, never the text.
//! - The rules a mailbox keeps letters by ([`MAX_LETTERS_PER_RECIPIENT`] and the rest below):
//!   pure numbers the store and the node apply.
//!
//! Pure: never I/O, never a clock (times come in), never the swarm.

pub mod letter;

/// How long a mailbox keeps a letter, and the oldest message it takes, in milliseconds: 14 days.
pub const KEEP_MS: u64 = 14 * 24 * 60 * 60 * 1000;
/// The most letters a mailbox keeps for one recipient. Past it, a letter from a sender with
/// fewer waiting for that recipient than another has pushes out that other's newest, so
/// accounts filling a recipient's quota keep nobody else's letters out.
pub const MAX_LETTERS_PER_RECIPIENT: u64 = 500;
/// The most bytes of letters a mailbox keeps for one recipient.
pub const MAX_BYTES_PER_RECIPIENT: u64 = 4 * 1024 * 1024;
/// The most letters one sender may have waiting in a mailbox, for all recipients together.
pub const MAX_LETTERS_PER_SENDER: u64 = 200;
/// The most letters one sender may have waiting in a mailbox for one recipient: no sender fills
/// a recipient's quota alone.
pub const MAX_LETTERS_PER_PAIR: u64 = 32;
/// The most bytes of letters one sender may have waiting in a mailbox for one recipient.
pub const MAX_BYTES_PER_PAIR: u64 = 256 * 1024;
/// How far ahead of the mailbox's clock a letter's time may be, in milliseconds.
pub const MAX_AHEAD_MS: u64 = 5 * 60 * 1000;

/// Whether a message written at `written_ms` may still be left at a mailbox, or taken from one,
/// at `now_ms`: not older than [`KEEP_MS`], not further ahead than [`MAX_AHEAD_MS`].
pub fn fresh(written_ms: u64, now_ms: u64) -> bool {
    written_ms <= now_ms.saturating_add(MAX_AHEAD_MS) && now_ms.saturating_sub(written_ms) <= KEEP_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_letter_is_fresh_for_fourteen_days_and_not_from_the_future() {
        let now = 100 * KEEP_MS;
        assert!(fresh(now, now));
        assert!(fresh(now - KEEP_MS, now));
        assert!(!fresh(now - KEEP_MS - 1, now));
        assert!(fresh(now + MAX_AHEAD_MS, now));
        assert!(!fresh(now + MAX_AHEAD_MS + 1, now));
        assert!(!fresh(u64::MAX, 0));
        assert!(fresh(0, 0));
    }
}
