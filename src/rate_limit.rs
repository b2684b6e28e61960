//! Rate limits: a token bucket for each key. The room engine holds each member's messages and
//! changes to one, on arrival and when sending, so one flooding member cannot drown a room; the
//! direct-message engine holds each sender to one, the presence engine each peer, a mailbox each
//! account's requests, the redialer what peers tell of others. Pure: the time is passed in; never I/O.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::recent::forget_least_recent;

/// The most buckets kept. At this many, to make room for another key, full buckets (keys quiet
/// for a while) are forgotten and, if that leaves more than [`KEPT_WHEN_FULL`], those last used
/// longest ago: memory stays bounded whatever keys come (peers make new ones at will), and one
/// clear-out makes room for the next many keys rather than costing a pass over every bucket
/// each. Forgetting a bucket only gives its key a full one again, which any new key has too.
const MAX_BUCKETS: usize = 10_000;
/// What a clear-out leaves at most.
const KEPT_WHEN_FULL: usize = MAX_BUCKETS / 4 * 3;

/// Token buckets by key.
#[derive(Debug)]
pub struct RateLimit<K> {
    burst: f64,
    per_sec: f64,
    buckets: HashMap<K, (f64, Instant)>,
}

impl<K: Eq + Hash + Clone> RateLimit<K> {
    /// At most `burst` messages at once, refilled at `per_sec` messages a second.
    pub fn new(burst: u32, per_sec: u32) -> Self {
        RateLimit { burst: f64::from(burst), per_sec: f64::from(per_sec), buckets: HashMap::new() }
    }

    /// At most `burst` at once, refilled at one every `interval`.
    pub fn every(burst: u32, interval: Duration) -> Self {
        let per_sec = if interval.is_zero() { f64::MAX } else { 1.0 / interval.as_secs_f64() };
        RateLimit { burst: f64::from(burst), per_sec, buckets: HashMap::new() }
    }

    /// The limit of `burst` and `per_sec` as seen where the messages arrive, each up to `jitter`
    /// late (any that waited in a queue come in close together): a sender held to
    /// [`RateLimit::new`]`(burst, per_sec)` is never refused here. The burst grows by what
    /// `jitter` refills.
    pub fn on_arrival(burst: u32, per_sec: u32, jitter: Duration) -> Self {
        let mut limit = RateLimit::new(burst, per_sec);
        limit.burst += limit.per_sec * jitter.as_secs_f64();
        limit
    }

    /// Whether `key` may send one more message at `now` (and counts it if so).
    pub fn allow(&mut self, key: K, now: Instant) -> bool {
        if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(&key) {
            self.clear_out(now);
        }
        let (tokens, at) = self.buckets.entry(key).or_insert((self.burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether `key` would be allowed one more at `now`, counting nothing: to look before costly
    /// work whose sender is not known for sure yet (it is counted once it is).
    pub fn would_allow(&self, key: &K, now: Instant) -> bool {
        self.buckets.get(key).is_none_or(|(tokens, at)| {
            (*tokens + now.saturating_duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst) >= 1.0
        })
    }

    /// Gives `key` back one it was allowed (what it was spent on turned out not to count), up
    /// to the burst.
    pub fn give_back(&mut self, key: &K) {
        if let Some((tokens, _)) = self.buckets.get_mut(key) {
            *tokens = (*tokens + 1.0).min(self.burst);
        }
    }

    /// Forgets the full buckets, then, while more than [`KEPT_WHEN_FULL`] are left, those
    /// last used longest ago.
    fn clear_out(&mut self, now: Instant) {
        let (burst, per_sec) = (self.burst, self.per_sec);
        self.buckets
            .retain(|_, (tokens, at)| *tokens + now.saturating_duration_since(*at).as_secs_f64() * per_sec < burst);
        forget_least_recent(&mut self.buckets, KEPT_WHEN_FULL, |(_, at)| *at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let t = Instant::now();
        let mut limit = RateLimit::new(5, 10);
        assert!((0..5).all(|_| limit.allow("bob", t)));
        assert!(!limit.allow("bob", t), "the burst is spent");
        assert!(limit.allow("carol", t), "each user has their own bucket");
        assert!(limit.allow("bob", t + Duration::from_millis(100)), "one token back after 100 ms");
        assert!(!limit.allow("bob", t + Duration::from_millis(100)));
        assert!((0..5).all(|_| limit.allow("bob", t + Duration::from_secs(60))), "refilled up to the burst");
        assert!(!limit.allow("bob", t + Duration::from_secs(60)));
    }

    #[test]
    fn looking_counts_nothing() {
        let t = Instant::now();
        let mut limit = RateLimit::new(2, 1);
        assert!((0..10).all(|_| limit.would_allow(&"bob", t)), "a key never seen has a full bucket");
        assert!(limit.allow("bob", t) && limit.allow("bob", t));
        assert!(!limit.would_allow(&"bob", t), "the burst is spent");
        assert!(limit.would_allow(&"bob", t + Duration::from_secs(1)), "refilled");
        assert!(limit.allow("bob", t + Duration::from_secs(1)), "looking took nothing");
    }

    #[test]
    fn what_is_given_back_is_allowed_again_up_to_the_burst() {
        let t = Instant::now();
        let mut limit = RateLimit::new(2, 1);
        limit.give_back(&"bob");
        assert!(limit.allow("bob", t) && limit.allow("bob", t));
        assert!(!limit.allow("bob", t), "nothing was given to a key never seen");
        limit.give_back(&"bob");
        assert!(limit.allow("bob", t));
        assert!(!limit.allow("bob", t));
        limit.give_back(&"bob");
        limit.give_back(&"bob");
        limit.give_back(&"bob");
        assert!(limit.allow("bob", t) && limit.allow("bob", t));
        assert!(!limit.allow("bob", t), "never more than the burst");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the sender's own limit let through, sent at any pace, arriving in order and
        /// each at most the jitter late, the arrival limit lets through too.
        #[test]
        fn what_the_sender_may_send_arrives_within_the_arrival_limit(
            // Up to 250 a second: the sender's own limit runs dry and refuses some.
            gaps_ms in proptest::collection::vec(0u64..8, 1..1500),
            delays_ms in proptest::collection::vec(prop_oneof![Just(0u64), Just(1000), 0u64..=1000], 1500),
        ) {
            let start = Instant::now();
            let mut sender = RateLimit::new(500, 100);
            let mut receiver = RateLimit::on_arrival(500, 100, Duration::from_secs(1));
            let mut sent_at = start;
            let mut last_arrival = start;
            for (gap, delay) in gaps_ms.iter().zip(&delays_ms) {
                sent_at += Duration::from_millis(*gap);
                if !sender.allow("alice", sent_at) {
                    continue;
                }
                // One connection keeps a sender's messages in order.
                let arrival = (sent_at + Duration::from_millis(*delay)).max(last_arrival);
                last_arrival = arrival;
                prop_assert!(receiver.allow("alice", arrival), "refused on arrival");
            }
        }
    }

    #[test]
    fn ever_new_keys_none_quiet_keep_the_buckets_bounded_and_the_latest_still_limited() {
        let t = Instant::now();
        let mut limit = RateLimit::new(2, 1);
        // Each key spends its burst: no bucket is full, so none is forgotten as quiet.
        for i in 0..MAX_BUCKETS * 3 {
            let at = t + Duration::from_micros(i as u64);
            assert!(limit.allow(i, at) && limit.allow(i, at), "a new key has its burst");
            assert!(!limit.allow(i, at), "and then nothing");
            assert!(limit.buckets.len() <= MAX_BUCKETS, "{} buckets after {i} keys", limit.buckets.len());
        }
        let now = t + Duration::from_micros(MAX_BUCKETS as u64 * 3);
        assert!(!limit.allow(MAX_BUCKETS * 3 - 1, now), "the latest key is still held to its limit");
        assert!(limit.allow(0, now), "the first, forgotten long since, starts afresh");
    }

    #[test]
    fn quiet_users_are_forgotten_when_there_are_too_many() {
        let t = Instant::now();
        let mut limit = RateLimit::new(2, 1);
        for i in 0..MAX_BUCKETS {
            limit.allow(i, t);
        }
        assert!(limit.allow(MAX_BUCKETS, t + Duration::from_secs(10)));
        assert!(limit.buckets.len() <= 2, "{}", limit.buckets.len());
    }
}
