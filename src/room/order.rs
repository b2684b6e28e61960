//! Per-sender order for room messages. Gossip may bring a sender's message 7 before its
//! message 6 (another path was quicker); each sender numbers its messages in a room 1, 2, 3, …,
//! and a [`Sequencer`] holds a message back until those before it are shown, for at most a
//! given wait, after which it gives up on the gap. Pure: the time is passed in.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// One sender's stream.
#[derive(Debug)]
struct Stream<T> {
    /// The number expected next.
    next: u64,
    /// Messages that came early, by number, with when they came.
    held: BTreeMap<u64, (Instant, T)>,
}

/// What [`Sequencer::expire`] gave up waiting for.
#[derive(Debug, PartialEq, Eq)]
pub struct Expired<K, T> {
    /// The messages released, in each stream's order.
    pub ready: Vec<T>,
    /// The streams whose gaps were given up on.
    pub gaps: Vec<K>,
}

/// Releases messages of each stream `K` in the order of their numbers.
#[derive(Debug)]
pub struct Sequencer<K, T> {
    streams: HashMap<K, Stream<T>>,
    wait: Duration,
}

impl<K: Eq + Hash + Clone, T> Sequencer<K, T> {
    /// A sequencer that holds an early message for at most `wait`.
    pub fn new(wait: Duration) -> Self {
        Sequencer { streams: HashMap::new(), wait }
    }

    /// Whether stream `key` has been seen.
    pub fn knows(&self, key: &K) -> bool {
        self.streams.contains_key(key)
    }

    /// Starts stream `key` at number `next` (what was shown of it before), unless it is known.
    pub fn start(&mut self, key: K, next: u64) {
        self.streams.entry(key).or_insert_with(|| Stream { next, held: BTreeMap::new() });
    }

    /// Message number `seq` of stream `key` arrived at `now`: returns what can be shown now, in
    /// order (maybe nothing, when it came early). A stream not [started](Self::start) starts at
    /// its first message; a message from before where the stream is, or a late one whose gap was
    /// given up on, is shown at once.
    pub fn offer(&mut self, key: K, seq: u64, item: T, now: Instant) -> Vec<T> {
        let stream = self.streams.entry(key).or_insert_with(|| Stream { next: seq, held: BTreeMap::new() });
        if seq < stream.next {
            return vec![item];
        }
        if seq > stream.next {
            stream.held.entry(seq).or_insert((now, item));
            return Vec::new();
        }
        stream.next += 1;
        let mut ready = vec![item];
        release_consecutive(stream, &mut ready);
        ready
    }

    /// Stream `key` is known to have reached `seq` (a message that came another way, such as
    /// catch-up): what was held up to there can be shown.
    pub fn reached(&mut self, key: K, seq: u64) -> Vec<T> {
        let Some(stream) = self.streams.get_mut(&key) else {
            self.streams.insert(key, Stream { next: seq + 1, held: BTreeMap::new() });
            return Vec::new();
        };
        let mut ready = Vec::new();
        if seq >= stream.next {
            stream.next = seq + 1;
            let before: Vec<u64> = stream.held.range(..=seq).map(|(k, _)| *k).collect();
            ready.extend(before.into_iter().filter_map(|k| stream.held.remove(&k)).map(|(_, item)| item));
        }
        release_consecutive(stream, &mut ready);
        ready
    }

    /// Gives up on gaps that held a message back for longer than the wait: releases, in order,
    /// every stream whose oldest held message waited too long, and says which streams those
    /// were (what their gaps lack is still to be fetched).
    pub fn expire(&mut self, now: Instant) -> Expired<K, T> {
        let mut expired = Expired { ready: Vec::new(), gaps: Vec::new() };
        for (key, stream) in &mut self.streams {
            let overdue = stream.held.values().any(|(since, _)| now.duration_since(*since) >= self.wait);
            if !overdue {
                continue;
            }
            let held = std::mem::take(&mut stream.held);
            if let Some(last) = held.keys().next_back() {
                stream.next = last + 1;
            }
            expired.ready.extend(held.into_values().map(|(_, item)| item));
            expired.gaps.push(key.clone());
        }
        expired
    }

    /// Whether any message is held back.
    pub fn is_holding(&self) -> bool {
        self.streams.values().any(|s| !s.held.is_empty())
    }
}

fn release_consecutive<T>(stream: &mut Stream<T>, ready: &mut Vec<T>) {
    while let Some((_, item)) = stream.held.remove(&stream.next) {
        ready.push(item);
        stream.next += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WAIT: Duration = Duration::from_secs(1);

    #[test]
    fn an_early_message_waits_for_the_one_before_it() {
        let t = Instant::now();
        let mut s = Sequencer::new(WAIT);
        assert_eq!(s.offer("bob", 5, 5, t), vec![5]);
        assert_eq!(s.offer("bob", 7, 7, t), Vec::<u64>::new());
        assert_eq!(s.offer("bob", 8, 8, t), Vec::<u64>::new());
        assert!(s.is_holding());
        assert_eq!(s.offer("carol", 1, 1, t), vec![1], "streams are independent");
        assert_eq!(s.offer("bob", 6, 6, t), vec![6, 7, 8]);
        assert!(!s.is_holding());
    }

    #[test]
    fn a_started_stream_waits_for_its_next_number() {
        let t = Instant::now();
        let mut s = Sequencer::new(WAIT);
        assert!(!s.knows(&"bob"));
        s.start("bob", 1);
        assert!(s.knows(&"bob"));
        assert_eq!(s.offer("bob", 2, 2, t), Vec::<u64>::new());
        assert_eq!(s.offer("bob", 1, 1, t), vec![1, 2]);
        s.start("bob", 1);
        assert_eq!(s.offer("bob", 3, 3, t), vec![3], "starting a known stream changes nothing");
    }

    #[test]
    fn a_gap_is_given_up_on_after_the_wait() {
        let t = Instant::now();
        let mut s = Sequencer::new(WAIT);
        s.offer("bob", 1, 1, t);
        s.offer("bob", 3, 3, t);
        s.offer("bob", 4, 4, t + Duration::from_millis(500));
        s.offer("carol", 1, 1, t);
        assert_eq!(s.expire(t + Duration::from_millis(900)), Expired { ready: vec![], gaps: vec![] });
        assert_eq!(s.expire(t + WAIT), Expired { ready: vec![3, 4], gaps: vec!["bob"] });
        assert_eq!(s.offer("bob", 2, 2, t + WAIT), vec![2], "late, shown at once");
        assert_eq!(s.offer("bob", 5, 5, t + WAIT), vec![5]);
    }

    #[test]
    fn catch_up_releases_what_it_covers() {
        let t = Instant::now();
        let mut s = Sequencer::new(WAIT);
        s.offer("bob", 1, 1, t);
        s.offer("bob", 4, 4, t);
        s.offer("bob", 5, 5, t);
        assert_eq!(s.reached("bob", 3), vec![4, 5]);
        assert_eq!(s.offer("bob", 6, 6, t), vec![6]);
        assert_eq!(s.reached("dave", 9), Vec::<u64>::new());
        assert_eq!(s.offer("dave", 11, 11, t), Vec::<u64>::new());
        assert_eq!(s.offer("dave", 10, 10, t), vec![10, 11]);
    }

    proptest! {
        /// Whatever order a stream's messages arrive in, with no gap left, they are released
        /// once each and in order.
        #[test]
        fn any_arrival_order_is_released_in_order(order in Just((2..40u64).collect::<Vec<_>>()).prop_shuffle()) {
            let t = Instant::now();
            let mut s = Sequencer::new(WAIT);
            let mut out = s.offer("bob", 1, 1, t);
            for n in order {
                out.extend(s.offer("bob", n, n, t));
            }
            prop_assert_eq!(out, (1..40).collect::<Vec<_>>());
        }
    }
}
