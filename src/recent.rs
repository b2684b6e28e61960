//! [`Recent`]: a map that keeps only its newest entries, the oldest forgotten first. Owns the
//! bound and the order of arrival, nothing else: what the entries mean and how large the bound
//! is are its users' (ids refused by a room graph, create events seen, messages shown
//! unreadable). Pure: no I/O, no clock.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

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
}
