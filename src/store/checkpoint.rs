//! When the node copies its write-ahead log back into the database file (a checkpoint).
//!
//! SQLite does it by itself every [`AUTO_CHECKPOINT_PAGES`] pages written, in the middle of
//! whatever write crosses that line: a few milliseconds of copying and two `fsync`s, during
//! which the node's task (showing a message, answering a receipt) waits. The node does it
//! instead once nothing has been written for [`QUIET`]; the automatic one, at a much larger
//! size, only bounds the log of a node that never falls quiet.

use std::time::{Duration, Instant};

/// How long after the last write the node checkpoints.
pub const QUIET: Duration = Duration::from_millis(500);
/// The log size (pages) at which SQLite checkpoints by itself, quiet or not (32 MiB of 4 KiB
/// pages).
pub const AUTO_CHECKPOINT_PAGES: u32 = 8192;

/// Follows the database's count of changed rows, seen from time to time, to tell when the
/// writes since the last checkpoint have gone quiet.
#[derive(Debug, Default)]
pub struct CheckpointClock {
    /// The count when last seen, and when it was first seen at that value (`None` before the
    /// first look).
    seen: u64,
    seen_since: Option<Instant>,
    /// The count at the last checkpoint.
    checkpointed: u64,
}

impl CheckpointClock {
    /// Takes in the count of changed rows at `now`; whether a checkpoint is due: something was
    /// written since the last one, and nothing for [`QUIET`].
    pub fn due(&mut self, changes: u64, now: Instant) -> bool {
        match self.seen_since {
            Some(since) if changes == self.seen => changes != self.checkpointed && now.duration_since(since) >= QUIET,
            _ => {
                self.seen = changes;
                self.seen_since = Some(now);
                false
            }
        }
    }

    /// A checkpoint was made (or tried) with the count at `changes`.
    pub fn done(&mut self, changes: u64) {
        self.checkpointed = changes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_once_writes_have_been_quiet_for_a_while() {
        let start = Instant::now();
        let mut clock = CheckpointClock::default();
        assert!(!clock.due(0, start), "nothing written");
        assert!(!clock.due(0, start + QUIET * 2), "nothing written");
        assert!(!clock.due(3, start + QUIET * 2), "just written");
        assert!(!clock.due(3, start + QUIET * 2 + QUIET / 2), "not quiet long enough");
        assert!(!clock.due(5, start + QUIET * 3), "written again");
        assert!(clock.due(5, start + QUIET * 4));
        clock.done(5);
        assert!(!clock.due(5, start + QUIET * 10), "nothing new since the checkpoint");
        assert!(!clock.due(6, start + QUIET * 11));
        assert!(clock.due(6, start + QUIET * 12));
    }
}
