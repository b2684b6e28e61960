//! The last search of the user logged in here: its query, how many results were shown, and
//! where each numbered result is (for `/search more` and `/history around N`); and the merging
//! of what the room and the direct-message indexes found into one page.
//!
//! Data and pure helpers only: never reads the store, never emits an event.

use crate::account::AccountId;
use crate::node::event::UiEvent;
use crate::room::EventId;
use crate::search::{PAGE, SearchQuery};

/// Results of one search that can be numbered (50 pages): `/search more` stops there.
pub(crate) const MAX_NUMBERED: usize = 1000;
/// Messages `/history around N` shows on each side of the result.
pub(crate) const AROUND: usize = 5;

/// Where a numbered result is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResultAt {
    /// Message `id` of room `room`.
    Room { room: EventId, id: EventId },
    /// Message `id` of the conversation with `other`.
    Dm { other: AccountId, id: String },
}

/// A result as the store worker hands it back: where it is, what is shown, the words matched.
#[derive(Debug)]
pub(crate) struct Hit {
    pub(crate) at: ResultAt,
    pub(crate) found: UiEvent,
    pub(crate) matches: Vec<(usize, usize)>,
}

/// The last search, of `owner`.
#[derive(Debug)]
pub(crate) struct LastSearch {
    pub(crate) owner: AccountId,
    pub(crate) query: SearchQuery,
    /// Result number `n` is `numbered[n - 1]`; as many as were shown.
    pub(crate) numbered: Vec<ResultAt>,
}

impl LastSearch {
    /// Result number `n` of this search, if `owner` searched it.
    pub(crate) fn result(&self, owner: &AccountId, n: usize) -> Option<&ResultAt> {
        (self.owner == *owner).then(|| n.checked_sub(1).and_then(|i| self.numbered.get(i))).flatten()
    }
}

/// A result found in one index, ready to be merged: its score (lower is better), its time,
/// and what is shown.
#[derive(Debug)]
pub(crate) struct Scored<T> {
    pub(crate) score: f64,
    pub(crate) ts_ms: u64,
    pub(crate) item: T,
}

/// Page `offset..offset + PAGE` of the results of both indexes (each sorted as the store sorts
/// them, and holding at least `offset + PAGE + 1` when there are that many), best first and the
/// newest first among equals; and whether more follow.
pub(crate) fn page<T>(mut found: Vec<Scored<T>>, offset: usize) -> (Vec<T>, bool) {
    found.sort_by(|a, b| a.score.total_cmp(&b.score).then_with(|| b.ts_ms.cmp(&a.ts_ms)));
    let mut page: Vec<T> = found.into_iter().skip(offset).map(|s| s.item).collect();
    let more = page.len() > PAGE;
    page.truncate(PAGE);
    (page, more)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::account_of;

    fn scored(score: f64, ts_ms: u64, item: u32) -> Scored<u32> {
        Scored { score, ts_ms, item }
    }

    #[test]
    fn best_first_then_newest_in_pages() {
        let mut found: Vec<Scored<u32>> = (0..45).map(|i| scored(-1.0, u64::from(i), i)).collect();
        found.push(scored(-5.0, 0, 100));
        let (first, more) = page(found, 0);
        assert_eq!(first.len(), PAGE);
        assert!(more);
        assert_eq!(first[..3], [100, 44, 43]);
        let found: Vec<Scored<u32>> = (0..45).map(|i| scored(-1.0, u64::from(i), i)).collect();
        let (last, more) = page(found, 40);
        assert_eq!(last, [4, 3, 2, 1, 0]);
        assert!(!more);
    }

    #[test]
    fn results_are_numbered_from_one_for_their_owner_only() {
        let at = ResultAt::Dm { other: account_of("bob"), id: "x".into() };
        let last = LastSearch {
            owner: account_of("alice"),
            query: crate::search::SearchLine::parse("x").unwrap().query.unwrap(),
            numbered: vec![at.clone()],
        };
        assert_eq!(last.result(&account_of("alice"), 1), Some(&at));
        assert_eq!(last.result(&account_of("alice"), 0), None);
        assert_eq!(last.result(&account_of("alice"), 2), None);
        assert_eq!(last.result(&account_of("carol"), 1), None);
    }
}
