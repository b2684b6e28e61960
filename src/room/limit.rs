//! Per-user rate limits on room messages: a token bucket for each user, which every node
//! applies to what it receives (and to what its own user sends), so one flooding member cannot
//! drown a room. Pure: the time is passed in.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

/// Beyond this many buckets, full ones (users quiet for a while) are forgotten.
const MAX_BUCKETS: usize = 10_000;

/// Token buckets by key.
#[derive(Debug)]
pub struct RateLimit<K> {
    burst: f64,
    per_sec: f64,
    buckets: HashMap<K, (f64, Instant)>,
}

impl<K: Eq + Hash> RateLimit<K> {
    /// At most `burst` messages at once, refilled at `per_sec` messages a second.
    pub fn new(burst: u32, per_sec: u32) -> Self {
        RateLimit { burst: f64::from(burst), per_sec: f64::from(per_sec), buckets: HashMap::new() }
    }

    /// Whether `key` may send one more message at `now` (and counts it if so).
    pub fn allow(&mut self, key: K, now: Instant) -> bool {
        if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(&key) {
            let (burst, per_sec) = (self.burst, self.per_sec);
            self.buckets.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * per_sec < burst);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
