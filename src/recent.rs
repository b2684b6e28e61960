//! [`Recent`]: a map that keeps only its newest entries, the oldest forgotten first; and
//! [`forget_least_recent`], which cuts any map down to the entries used last. Owns the bound and
//! the order, nothing else: what the entries mean and how large the bound is are its users'
//! (ids refused by a room graph, create events seen, messages shown unreadable, rate-limit
//! buckets, room keys asked for). Pure: no I/O, no clock of its own.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Instant;

/// Forgets the entries of `map` whose `used` time is oldest until at most `keep` are left (one
/// pass, no sort: a map grown to its bound is cut well below it, so that the next clear-out is
/// many insertions away).
pub fn forget_least_recent<K: Eq + Hash + Clone, V>(
    map: &mut HashMap<K, V>,
    keep: usize,
    used: impl Fn(&V) -> Instant,
) {
    let excess = map.len().saturating_sub(keep);
    if excess == 0 {
        return;
    }
    let mut by_use: Vec<(Instant, K)> = map.iter().map(|(key, value)| (used(value), key.clone())).collect();
    by_use.select_nth_unstable_by_key(excess - 1, |(at, _)| *at);
    for (_, key) in &by_use[..excess] {
        map.remove(key);
    }
}

/// At most `CAP` entries; inserting a new key beyond that forgets the oldest.
#[derive(Debug, Clone)]
pub struct Recent<K, V, const CAP: usize> {
    entries: HashMap<K, V>,
    /// The keys in the order they first came, oldest first.
    order: VecDeque<K>,
}

impl<K, V, const CAP: usize> Default for Recent<K, V, CAP> {
    fn default() -> Self {
        Recent { entries: HashMap::new(), order: VecDeque::new() }
    }
}

impl<K: Eq + Hash + Clone, V, const CAP: usize> Recent<K, V, CAP> {
    /// Puts `value` under `key`: a key already there keeps its place (and takes the new
    /// value); a new one comes last, and the oldest is forgotten beyond the bound. Whether the
    /// key is new.
    pub fn insert(&mut self, key: K, value: V) -> bool {
        if let Some(kept) = self.entries.get_mut(&key) {
            *kept = value;
            return false;
        }
        self.entries.insert(key.clone(), value);
        self.order.push_back(key);
        if self.order.len() > CAP
            && let Some(oldest) = self.order.pop_front()
        {
            self.entries.remove(&oldest);
        }
        true
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key)
    }

    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// Forgets `key` now; its value, if it was there.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let value = self.entries.remove(key)?;
        self.order.retain(|kept| kept != key);
        Some(value)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_go_first_and_a_key_kept_keeps_its_place() {
        let mut recent: Recent<u8, &str, 3> = Recent::default();
        assert!(recent.insert(1, "a") && recent.insert(2, "b") && recent.insert(3, "c"));
        assert!(!recent.insert(1, "A"), "1 is there already: its value changes, not its place");
        assert!(recent.insert(4, "d"));
        assert_eq!((recent.get(&1), recent.contains(&2), recent.len()), (None, true, 3), "1 was the oldest");
        assert_eq!(recent.remove(&3), Some("c"));
        assert!(recent.insert(5, "e") && recent.insert(6, "f"));
        assert_eq!(recent.len(), 3);
        assert!(!recent.contains(&2), "2 went, not a place freed twice");
        assert_eq!(recent.remove(&3), None);
    }

    #[test]
    fn the_least_recently_used_are_forgotten_down_to_what_is_kept() {
        let t = Instant::now();
        let at = |s: u64| t + std::time::Duration::from_secs(s);
        let mut map: HashMap<&str, Instant> = [("a", at(5)), ("b", at(1)), ("c", at(9)), ("d", at(3))].into();
        forget_least_recent(&mut map, 4, |used| *used);
        assert_eq!(map.len(), 4, "nothing beyond what is kept");
        forget_least_recent(&mut map, 2, |used| *used);
        let mut left: Vec<&str> = map.keys().copied().collect();
        left.sort();
        assert_eq!(left, ["a", "c"], "b and d were used longest ago");
        forget_least_recent(&mut map, 0, |used| *used);
        assert!(map.is_empty());
    }
}
