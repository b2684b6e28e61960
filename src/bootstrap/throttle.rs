//! How password guessing is slowed down: a pure policy over failure records, with the time
//! passed in. The account database stores the records, per account and per peer.
//!
//! Up to [`FREE_FAILURES`] failures within [`WINDOW_SECS`] cost nothing; each failure after
//! that blocks further attempts for a back-off that doubles, from [`FIRST_BLOCK_SECS`] up to
//! [`MAX_BLOCK_SECS`]. While blocked, attempts are refused before any hashing and change nothing.

/// Failures allowed within the window before blocking starts.
pub const FREE_FAILURES: u32 = 5;
/// The window failures are counted in (10 minutes).
pub const WINDOW_SECS: u64 = 10 * 60;
/// The first block.
pub const FIRST_BLOCK_SECS: u64 = 30;
/// The longest block.
pub const MAX_BLOCK_SECS: u64 = 15 * 60;

/// Failures of one account or one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRecord {
    pub failures: u32,
    pub window_start: u64,
    pub blocked_until: u64,
}

/// Whether an attempt may proceed at `now`; `Err(seconds)` to wait when blocked.
pub fn check(record: Option<&FailureRecord>, now: u64) -> Result<(), u64> {
    match record {
        Some(r) if r.blocked_until > now => Err(r.blocked_until - now),
        _ => Ok(()),
    }
}

/// The record after a failed attempt at `now`.
pub fn record_failure(record: Option<FailureRecord>, now: u64) -> FailureRecord {
    let fresh = FailureRecord { failures: 1, window_start: now, blocked_until: 0 };
    let Some(mut r) = record else { return fresh };
    if now.saturating_sub(r.window_start) > WINDOW_SECS && r.blocked_until <= now {
        return fresh;
    }
    r.failures = r.failures.saturating_add(1);
    if r.failures >= FREE_FAILURES {
        let doublings = (r.failures - FREE_FAILURES).min(16);
        let block = FIRST_BLOCK_SECS.saturating_mul(1 << doublings).min(MAX_BLOCK_SECS);
        r.blocked_until = now + block;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failures_are_free_then_blocks_grow() {
        let mut record = None;
        let now = 1000;
        for i in 1..FREE_FAILURES {
            let r = record_failure(record, now);
            assert_eq!(r.failures, i);
            assert_eq!(check(Some(&r), now), Ok(()));
            record = Some(r);
        }
        let r = record_failure(record, now);
        assert_eq!(check(Some(&r), now), Err(FIRST_BLOCK_SECS));
        let r2 = record_failure(Some(r), now + FIRST_BLOCK_SECS);
        assert_eq!(check(Some(&r2), now + FIRST_BLOCK_SECS), Err(2 * FIRST_BLOCK_SECS));
        let mut r = r2;
        for _ in 0..20 {
            r = record_failure(Some(r), now);
        }
        assert_eq!(check(Some(&r), now), Err(MAX_BLOCK_SECS));
    }

    #[test]
    fn failures_outside_the_window_start_over() {
        let r = record_failure(None, 0);
        let r = record_failure(Some(r), 1);
        let later = record_failure(Some(r), WINDOW_SECS + 10);
        assert_eq!(later.failures, 1);
        assert_eq!(later.window_start, WINDOW_SECS + 10);
    }

    #[test]
    fn no_record_means_free() {
        assert_eq!(check(None, 5), Ok(()));
    }
}
