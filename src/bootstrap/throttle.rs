//! How guessing and flooding are slowed down: pure policy, with the time passed in (Unix
//! seconds). It owns the numbers and the arithmetic; the account database stores the failure
//! records and the service keeps the request windows. It never reads a clock, touches storage
//! or decides who is who: the caller says whether a peer is known to an account, and which host
//! (the network address a request came from) it asks from.
//!
//! Peer ids cost nothing, so no limit that may hold back someone else is keyed on them alone:
//! such limits are kept per host as well (a host's peers together), and what all hosts share is
//! a ceiling several hosts' worth above what one host may use.
//!
//! **Failed logins** are kept per (account, peer) — [`PAIR`] — so one guesser's failures block
//! only that guesser. Failures of peers that never held the account's certificate (strangers)
//! also count per (account, host) — [`HOST`] — which stops a host's strangers together, and in
//! one record per account — [`STRANGERS`] — with an allowance more than two hosts' worth, which
//! bounds guessing from many hosts. One host's failures never block another host, and neither
//! record ever applies to the owner's known machines. Failed logins for names that do not exist
//! count per asking peer — [`UNKNOWN_NAME`] — and per host — [`UNKNOWN_NAME_PER_HOST`]. Each
//! record allows `free_failures` within
//! `window_secs`; from the last free failure on, each failure blocks further attempts for a
//! back-off that doubles from `first_block_secs` up to `max_block_secs`. While blocked, attempts
//! are refused before any hashing and change nothing.
//!
//! **Registrations, renames and look-ups** are counted in fixed windows per peer (per account
//! for look-ups, which only logged-in peers may ask), per host and overall
//! ([`REGISTER_PER_PEER`], [`REGISTER_PER_HOST`], [`REGISTER_OVERALL`], [`LOOKUP_PER_ACCOUNT`],
//! …), in [`Windows`]. Each overall window admits [`HOSTS_FOR_A_CEILING`] hosts' worth.
//!
//! **Renewals** are counted per peer — [`RENEW_PER_PEER`] — and a peer over its limit is refused
//! from memory, with nothing written.
//!
//! **Every login that would be hashed**, whether its password turns out right or wrong, is
//! counted per (account, peer) — [`LOGIN_PER_PAIR`] — and per account, the account's known
//! machines together — [`LOGIN_KNOWN_PER_ACCOUNT`] — and apart from them all other peers, per
//! host — [`LOGIN_STRANGERS_PER_HOST`] — and together — [`LOGIN_STRANGERS_PER_ACCOUNT`]: knowing
//! a password never buys unlimited hashing, and nobody but the account's own machines can use up
//! what its own machines may ask.

use std::collections::HashMap;

/// A back-off policy for failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failures within the window before blocking starts (the last of them starts it).
    pub free_failures: u32,
    /// The window failures are counted in, in seconds.
    pub window_secs: u64,
    /// The first block, in seconds.
    pub first_block_secs: u64,
    /// The longest block, in seconds.
    pub max_block_secs: u64,
}

/// Failures allowed to one peer on one account within [`FAILURE_WINDOW_SECS`].
pub const PAIR_FREE_FAILURES: u32 = 5;
/// Failures allowed to the strangers of one host together on one account within
/// [`HOST_WINDOW_SECS`].
pub const HOST_FREE_FAILURES: u32 = 10;
/// Failures allowed to all strangers together on one account within [`HOST_WINDOW_SECS`]: more
/// than two hosts trying as fast as [`HOST`] lets them make in that time (17 each).
pub const STRANGERS_FREE_FAILURES: u32 = 50;
/// The window a peer's failures are counted in (10 minutes).
pub const FAILURE_WINDOW_SECS: u64 = 10 * 60;
/// The window strangers' failures are counted in (an hour), per host and per account: long
/// enough that one host's failures never add up to the account's allowance.
pub const HOST_WINDOW_SECS: u64 = 60 * 60;
/// The first block.
pub const FIRST_BLOCK_SECS: u64 = 30;
/// How long a failure record that blocks nothing is kept: the longest window.
pub const FAILURE_RECORDS_KEPT_SECS: u64 =
    if HOST_WINDOW_SECS > FAILURE_WINDOW_SECS { HOST_WINDOW_SECS } else { FAILURE_WINDOW_SECS };
/// The longest block (15 minutes).
pub const MAX_BLOCK_SECS: u64 = 15 * 60;

/// Failed logins of one peer on one account.
pub const PAIR: Backoff = Backoff {
    free_failures: PAIR_FREE_FAILURES,
    window_secs: FAILURE_WINDOW_SECS,
    first_block_secs: FIRST_BLOCK_SECS,
    max_block_secs: MAX_BLOCK_SECS,
};

/// Failed logins of the strangers of one host together on one account: at most 17 in any
/// hour.
pub const HOST: Backoff = Backoff {
    free_failures: HOST_FREE_FAILURES,
    window_secs: HOST_WINDOW_SECS,
    first_block_secs: FIRST_BLOCK_SECS,
    max_block_secs: MAX_BLOCK_SECS,
};

/// Failed logins of all strangers together on one account, whatever hosts they come from:
/// fewer than 60 in any hour (OWASP ASVS 4.0.3 V2.2.1 asks for no more than 100), and never
/// reached by one host or two.
pub const STRANGERS: Backoff = Backoff {
    free_failures: STRANGERS_FREE_FAILURES,
    window_secs: HOST_WINDOW_SECS,
    first_block_secs: FIRST_BLOCK_SECS,
    max_block_secs: MAX_BLOCK_SECS,
};

/// Failed logins of one peer for names that do not exist.
pub const UNKNOWN_NAME: Backoff = PAIR;

/// Failed logins of one host's peers together for names that do not exist: such a login is
/// hashed (so that timing does not tell which names exist), and fresh peer ids cost nothing.
/// They hold back nobody's logins to an account that exists.
pub const UNKNOWN_NAME_PER_HOST: Backoff = HOST;

/// How many requests a window admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub max_requests: u32,
    pub window_secs: u64,
}

impl Rate {
    /// `hosts` times this rate: a ceiling for all hosts together.
    pub const fn times(self, hosts: u32) -> Rate {
        Rate { max_requests: self.max_requests.saturating_mul(hosts), window_secs: self.window_secs }
    }
}

/// How many hosts, each asking all its own window admits, fill an overall window: what all hosts
/// share is never used up by a few.
pub const HOSTS_FOR_A_CEILING: u32 = 50;

/// Registrations one peer may ask for per hour (a person registers once).
pub const REGISTER_PER_PEER: Rate = Rate { max_requests: 20, window_secs: 60 * 60 };
/// Registrations one host's peers together may ask for per hour.
pub const REGISTER_PER_HOST: Rate = Rate { max_requests: 20, window_secs: 60 * 60 };
/// Registrations all hosts together may ask for per hour (1000).
pub const REGISTER_OVERALL: Rate = REGISTER_PER_HOST.times(HOSTS_FOR_A_CEILING);
/// Look-ups one account may ask for per minute, all its peers together (a person looks up a
/// few names a minute).
pub const LOOKUP_PER_ACCOUNT: Rate = Rate { max_requests: 30, window_secs: 60 };
/// Look-ups one host's accounts together may ask for per minute (a few people sharing a
/// machine).
pub const LOOKUP_PER_HOST: Rate = Rate { max_requests: 120, window_secs: 60 };
/// Look-ups all hosts together may ask for per minute (6000).
pub const LOOKUP_OVERALL: Rate = LOOKUP_PER_HOST.times(HOSTS_FOR_A_CEILING);
/// Renewals one peer may ask for per minute: a burst of 10, then one per 6 s on average. A node
/// asks for one at a time, on a 10 s timer, once a third of its certificate's lifetime is left
/// (certificates live 30 s at the shortest), and at once after it starts.
pub const RENEW_PER_PEER: Rate = Rate { max_requests: 10, window_secs: 60 };
/// Hashing logins one peer may ask for on one account per 10 minutes, right or wrong (a person
/// logs in a few times an hour at most).
pub const LOGIN_PER_PAIR: Rate = Rate { max_requests: 10, window_secs: 10 * 60 };
/// Hashing logins an account's known machines together may ask for per 10 minutes.
pub const LOGIN_KNOWN_PER_ACCOUNT: Rate = Rate { max_requests: 30, window_secs: 10 * 60 };
/// Hashing logins to one account that the other peers of one host together may ask for per 10
/// minutes (a person logs in from a new machine now and then; strangers' failures are bounded
/// below this by [`HOST`] already).
pub const LOGIN_STRANGERS_PER_HOST: Rate = Rate { max_requests: 20, window_secs: 10 * 60 };
/// Hashing logins to one account that all peers but its known machines together may ask for
/// per 10 minutes: five hosts' worth.
pub const LOGIN_STRANGERS_PER_ACCOUNT: Rate = LOGIN_STRANGERS_PER_HOST.times(5);
/// Renames one peer may ask for per hour (each holds the old name for a while).
pub const RENAME_PER_PEER: Rate = Rate { max_requests: 10, window_secs: 60 * 60 };
/// Renames one host's peers together may ask for per hour.
pub const RENAME_PER_HOST: Rate = Rate { max_requests: 20, window_secs: 60 * 60 };
/// Renames all hosts together may ask for per hour (1000).
pub const RENAME_OVERALL: Rate = RENAME_PER_HOST.times(HOSTS_FOR_A_CEILING);

/// Failures under one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRecord {
    pub failures: u32,
    pub window_start: u64,
    pub blocked_until: u64,
}

/// Whether an attempt may proceed at `now`; `Err(seconds)` to wait when blocked.
pub fn check(record: Option<&FailureRecord>, now: u64) -> Result<(), u64> {
    match record {
        Some(r) if r.blocked_until > now => Err(r.blocked_until.saturating_sub(now)),
        _ => Ok(()),
    }
}

/// The record after a failed attempt at `now` under `policy`.
pub fn record_failure(policy: &Backoff, record: Option<FailureRecord>, now: u64) -> FailureRecord {
    let fresh = FailureRecord { failures: 1, window_start: now, blocked_until: 0 };
    let Some(mut r) = record else { return fresh.blocked_if_due(policy, now) };
    if now.saturating_sub(r.window_start) > policy.window_secs && r.blocked_until <= now {
        return fresh.blocked_if_due(policy, now);
    }
    r.failures = r.failures.saturating_add(1);
    r.blocked_if_due(policy, now)
}

/// Whether a record is of no more use at `now`: its window is over and it blocks nothing.
pub fn stale(policy: &Backoff, record: &FailureRecord, now: u64) -> bool {
    record.blocked_until <= now && now.saturating_sub(record.window_start) > policy.window_secs
}

impl FailureRecord {
    fn blocked_if_due(mut self, policy: &Backoff, now: u64) -> FailureRecord {
        if let Some(beyond) = self.failures.checked_sub(policy.free_failures) {
            let doublings = beyond.min(16);
            let block = policy.first_block_secs.saturating_mul(1u64 << doublings).min(policy.max_block_secs);
            self.blocked_until = now.saturating_add(block);
        }
        self
    }
}

/// A fixed window of counted requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    pub count: u32,
    pub window_start: u64,
}

/// Whether one more request fits `rate` at `now`: the window with it counted, or
/// `Err(seconds)` until the window ends.
pub fn admit(rate: &Rate, window: Option<RateWindow>, now: u64) -> Result<RateWindow, u64> {
    match window {
        Some(w) if now.saturating_sub(w.window_start) < rate.window_secs => {
            if w.count >= rate.max_requests {
                Err(w.window_start.saturating_add(rate.window_secs).saturating_sub(now).max(1))
            } else {
                Ok(RateWindow { count: w.count.saturating_add(1), ..w })
            }
        }
        _ if rate.max_requests == 0 => Err(rate.window_secs.max(1)),
        _ => Ok(RateWindow { count: 1, window_start: now }),
    }
}

/// Request windows per key (in memory; a restart starts them over). A key gets a window only
/// when a request is admitted, and admissions are bounded in all: by an overall limit, by a
/// login's hashing (the worker does one at a time), or by the sessions (a renewal is counted
/// only for a peer logged in). So the map holds at most about as many windows as are admitted
/// per window, or as there are sessions.
#[derive(Debug, Default)]
pub struct Windows {
    /// Each window, with the length of the rate it counts for (what pruning goes by).
    windows: HashMap<String, (RateWindow, u64)>,
}

/// Prune the windows map of ended windows once it holds this many.
pub const WINDOWS_PRUNE_AT: usize = 1024;

impl Windows {
    pub fn new() -> Windows {
        Windows::default()
    }

    /// Admits one request under every `(key, rate)` of `limits`, counting it in all, or in
    /// none when any is full: `Err(seconds)` until the last of the full ones ends.
    pub fn admit<K: AsRef<str>>(&mut self, limits: &[(K, &Rate)], now: u64) -> Result<(), u64> {
        let mut counted = Vec::with_capacity(limits.len());
        let mut wait = None;
        for (key, rate) in limits {
            let key = key.as_ref();
            match admit(rate, self.windows.get(key).map(|(w, _)| *w), now) {
                Ok(window) => counted.push((key, window, rate.window_secs)),
                Err(secs) => wait = Some(wait.map_or(secs, |w: u64| w.max(secs))),
            }
        }
        if let Some(secs) = wait {
            return Err(secs);
        }
        if self.windows.len() >= WINDOWS_PRUNE_AT {
            // Each window by its own rate's length: a short rate's call never ends a long one.
            self.windows.retain(|_, (w, secs)| now.saturating_sub(w.window_start) < *secs);
        }
        for (key, window, secs) in counted {
            self.windows.insert(key.to_string(), (window, secs));
        }
        Ok(())
    }

    /// Whether one more request would be admitted under every `(key, rate)` of `limits` at
    /// `now`, counting nothing: `Err(seconds)` until the last of the full ones ends.
    pub fn check_all<K: AsRef<str>>(&self, limits: &[(K, &Rate)], now: u64) -> Result<(), u64> {
        let waits = limits.iter().filter_map(|(key, rate)| self.check(key.as_ref(), rate, now).err());
        waits.max().map_or(Ok(()), Err)
    }

    /// Whether one more request under `rate` (key `key`) would be admitted at `now`, counting
    /// nothing: `Err(seconds)` until its window ends when it is full.
    pub fn check(&self, key: &str, rate: &Rate, now: u64) -> Result<(), u64> {
        admit(rate, self.windows.get(key).map(|(w, _)| *w), now).map(|_| ())
    }

    /// How many windows are kept.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_for_a_short_rate_never_ends_a_long_window() {
        let hourly = Rate { max_requests: 1, window_secs: 3600 };
        let open_hour = Rate { max_requests: u32::MAX, window_secs: 3600 };
        let minutely = Rate { max_requests: u32::MAX, window_secs: 60 };
        let mut windows = Windows::new();
        windows.admit(&[("register:p", &hourly), ("register:*", &open_hour)], 0).unwrap();
        for i in 0..WINDOWS_PRUNE_AT {
            windows.admit(&[(format!("lookup:{i}").as_str(), &minutely), ("lookup:*", &minutely)], 100).unwrap();
        }
        assert!(windows.admit(&[("register:p", &hourly), ("register:*", &open_hour)], 200).is_err());
    }

    #[test]
    fn the_first_failures_are_free_then_blocks_grow() {
        let mut record = None;
        let now = 1000;
        for i in 1..PAIR_FREE_FAILURES {
            let r = record_failure(&PAIR, record, now);
            assert_eq!(r.failures, i);
            assert_eq!(check(Some(&r), now), Ok(()));
            record = Some(r);
        }
        let r = record_failure(&PAIR, record, now);
        assert_eq!(check(Some(&r), now), Err(FIRST_BLOCK_SECS));
        let r2 = record_failure(&PAIR, Some(r), now + FIRST_BLOCK_SECS);
        assert_eq!(check(Some(&r2), now + FIRST_BLOCK_SECS), Err(2 * FIRST_BLOCK_SECS));
        let mut r = r2;
        for _ in 0..20 {
            r = record_failure(&PAIR, Some(r), now);
        }
        assert_eq!(check(Some(&r), now), Err(MAX_BLOCK_SECS));
    }

    #[test]
    fn failures_outside_the_window_start_over() {
        let r = record_failure(&PAIR, None, 0);
        let r = record_failure(&PAIR, Some(r), 1);
        assert!(!stale(&PAIR, &r, FAILURE_WINDOW_SECS));
        assert!(stale(&PAIR, &r, FAILURE_WINDOW_SECS + 10));
        let later = record_failure(&PAIR, Some(r), FAILURE_WINDOW_SECS + 10);
        assert_eq!(later.failures, 1);
        assert_eq!(later.window_start, FAILURE_WINDOW_SECS + 10);
    }

    #[test]
    fn no_record_means_free() {
        assert_eq!(check(None, 5), Ok(()));
    }

    #[test]
    fn a_policy_with_no_free_failures_blocks_at_once() {
        let none = Backoff { free_failures: 0, ..PAIR };
        assert!(check(Some(&record_failure(&none, None, 7)), 7).is_err());
        let near_the_end = FailureRecord { failures: u32::MAX, window_start: u64::MAX - 2, blocked_until: 0 };
        let extreme = record_failure(&PAIR, Some(near_the_end), u64::MAX - 1);
        assert_eq!(extreme.blocked_until, u64::MAX, "saturates instead of overflowing");
    }

    /// When the failures an attacker who tries every second gets past `policy` in `secs`
    /// seconds happen.
    fn admitted_failures(policy: &Backoff, secs: u64) -> Vec<u64> {
        let (mut record, mut admitted) = (None, Vec::new());
        for now in 1_000..1_000 + secs {
            if check(record.as_ref(), now).is_ok() {
                record = Some(record_failure(policy, record, now));
                admitted.push(now);
            }
        }
        admitted
    }

    /// The most failures in any hour among `times` (sorted).
    fn busiest_hour(times: &[u64]) -> usize {
        (0..times.len()).map(|i| times[i..].iter().take_while(|t| **t < times[i] + 3600).count()).max().unwrap_or(0)
    }

    #[test]
    fn no_account_sees_60_stranger_failures_in_any_hour() {
        // OWASP ASVS 4.0.3 V2.2.1: no more than 100 failed attempts per hour on one account.
        let strangers = admitted_failures(&STRANGERS, 24 * 3600);
        assert!(busiest_hour(&strangers) < 60, "{}", busiest_hour(&strangers));
        assert!(busiest_hour(&admitted_failures(&PAIR, 24 * 3600)) < 40);
        let host = admitted_failures(&HOST, 24 * 3600);
        assert!(busiest_hour(&host) <= 17, "{}", busiest_hour(&host));
    }

    #[test]
    fn one_host_or_two_trying_every_second_never_block_the_account_for_other_hosts() {
        // Two hosts fail in step, each as often as its own record lets it, for a day: the
        // account-wide record counts both and never blocks.
        let host = admitted_failures(&HOST, 24 * 3600);
        let mut account = None;
        for now in host {
            for _ in 0..2 {
                assert_eq!(check(account.as_ref(), now), Ok(()), "at {now}");
                account = Some(record_failure(&STRANGERS, account, now));
            }
        }
        assert_eq!(account.map(|a| a.blocked_until), Some(0));
    }

    #[test]
    fn the_overall_windows_are_many_hosts_worth() {
        for (per_host, overall) in [
            (REGISTER_PER_HOST, REGISTER_OVERALL),
            (LOOKUP_PER_HOST, LOOKUP_OVERALL),
            (RENAME_PER_HOST, RENAME_OVERALL),
        ] {
            assert_eq!(per_host.window_secs, overall.window_secs);
            assert_eq!(overall.max_requests, HOSTS_FOR_A_CEILING * per_host.max_requests);
        }
    }

    #[test]
    fn windows_admit_up_to_their_rate_then_refuse_until_the_window_ends() {
        let rate = Rate { max_requests: 3, window_secs: 60 };
        let mut w = None;
        for n in 1..=3 {
            let next = admit(&rate, w, 100).unwrap();
            assert_eq!(next.count, n);
            w = Some(next);
        }
        assert_eq!(admit(&rate, w, 130), Err(30));
        assert_eq!(admit(&rate, w, 160).map(|w| (w.count, w.window_start)), Ok((1, 160)));
        assert!(admit(&Rate { max_requests: 0, window_secs: 60 }, None, 0).is_err());
    }

    #[test]
    fn windows_count_per_peer_and_overall_and_a_refusal_counts_nowhere() {
        let per_peer = Rate { max_requests: 2, window_secs: 60 };
        let overall = Rate { max_requests: 3, window_secs: 60 };
        let mut windows = Windows::new();
        let ask = |w: &mut Windows, peer: &str, now| w.admit(&[(peer, &per_peer), ("all", &overall)], now);
        assert_eq!(ask(&mut windows, "a", 0), Ok(()));
        assert_eq!(ask(&mut windows, "a", 0), Ok(()));
        assert_eq!(ask(&mut windows, "a", 10), Err(50), "a's own limit");
        assert_eq!(ask(&mut windows, "b", 10), Ok(()));
        assert_eq!(ask(&mut windows, "c", 10), Err(50), "the overall limit");
        assert_eq!(windows.len(), 3, "c got no window");
        assert_eq!(ask(&mut windows, "c", 60), Ok(()));
    }

    #[test]
    fn a_check_counts_nothing() {
        let rate = Rate { max_requests: 1, window_secs: 60 };
        let mut windows = Windows::new();
        assert_eq!(windows.check("p", &rate, 0), Ok(()));
        assert_eq!(windows.check("p", &rate, 0), Ok(()));
        assert!(windows.is_empty());
        windows.admit(&[("p", &rate)], 0).unwrap();
        assert_eq!(windows.check("p", &rate, 10), Err(50));
        assert_eq!(windows.check("p", &rate, 60), Ok(()));
    }

    #[test]
    fn ended_windows_are_pruned() {
        let rate = Rate { max_requests: 1, window_secs: 10 };
        let overall = Rate { max_requests: u32::MAX, window_secs: 10 };
        let mut windows = Windows::new();
        for i in 0..WINDOWS_PRUNE_AT {
            windows.admit(&[(format!("p{i}").as_str(), &rate), ("all", &overall)], 0).unwrap();
        }
        windows.admit(&[("late", &rate), ("all", &overall)], 100).unwrap();
        assert_eq!(windows.len(), 2);
    }
}
