//! Control events that came before the events they cite. A [`Pending`] set holds them, bounded
//! in number and in time, and offers them to the [`RoomGraph`] again, in the order they were
//! held, as soon as what they cite has arrived.
//!
//! Pure: the time is passed in; no I/O, and never tokio, libp2p or rusqlite. Asking peers for
//! the missing events is the caller's job ([`Pending::wanted`] says which).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::graph::{Accepted, EventId, GraphEvent, Refusal, RoomGraph};

/// One held event.
#[derive(Debug, Clone)]
struct Held {
    event: GraphEvent,
    at: Instant,
    /// What it waits for.
    missing: Vec<EventId>,
}

/// What offering an event did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offered {
    /// The outcome of every insert tried: the offered event's first (`Missing` when it is
    /// held), then those it released, in the order they went in.
    pub outcomes: Vec<(EventId, Result<Accepted, Refusal>)>,
    /// Held events given up on: the oldest beyond the cap, or held longer than the wait.
    pub dropped: Vec<EventId>,
}

/// Events waiting for the events they cite.
#[derive(Debug, Clone)]
pub struct Pending {
    held: BTreeMap<u64, Held>,
    ids: HashMap<EventId, u64>,
    /// Missing id → the held events waiting for it.
    waiting: HashMap<EventId, Vec<u64>>,
    next: u64,
    cap: usize,
    wait: Duration,
}

impl Pending {
    /// Holds at most `cap` events, each for at most `wait`.
    pub fn new(cap: usize, wait: Duration) -> Self {
        Pending { held: BTreeMap::new(), ids: HashMap::new(), waiting: HashMap::new(), next: 0, cap, wait }
    }

    /// How many events are held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Whether the event `id` is held.
    pub fn contains(&self, id: &EventId) -> bool {
        self.ids.contains_key(id)
    }

    /// The ids held events wait for that are not held themselves (sorted): what to ask for.
    pub fn wanted(&self) -> Vec<EventId> {
        let mut wanted: Vec<EventId> = self.waiting.keys().filter(|id| !self.ids.contains_key(id)).copied().collect();
        wanted.sort();
        wanted
    }

    /// Drops the events held longer than the wait, oldest first.
    pub fn expire(&mut self, now: Instant) -> Vec<EventId> {
        let mut dropped = Vec::new();
        while let Some((&seq, held)) = self.held.first_key_value()
            && now.saturating_duration_since(held.at) >= self.wait
        {
            if let Some(held) = self.take(seq) {
                dropped.push(held.event.id);
            }
        }
        dropped
    }

    /// Inserts `event` into `graph`, or holds it if it cites events the graph lacks; then
    /// inserts every held event that this one's arrival completes, and so on.
    pub fn offer(&mut self, graph: &mut RoomGraph, event: GraphEvent, now: Instant) -> Offered {
        let mut offered = Offered { outcomes: Vec::new(), dropped: self.expire(now) };
        let id = event.id;
        if let Some(held) = self.ids.get(&id).and_then(|seq| self.held.get(seq)) {
            offered.outcomes.push((id, Err(Refusal::Missing(held.missing.clone()))));
            return offered;
        }
        match graph.insert(event.clone()) {
            Err(Refusal::Missing(missing)) => {
                offered.outcomes.push((id, Err(Refusal::Missing(missing.clone()))));
                offered.dropped.extend(self.hold(event, missing, now));
            }
            outcome => {
                let settled = outcome.as_ref().map_or_else(Refusal::is_permanent, |_| true);
                offered.outcomes.push((id, outcome));
                if settled {
                    self.release(graph, id, &mut offered);
                }
            }
        }
        offered
    }

    /// Holds `event`, which waits for `missing`; returns what it pushed out.
    fn hold(&mut self, event: GraphEvent, missing: Vec<EventId>, at: Instant) -> Vec<EventId> {
        let seq = self.next;
        self.next = self.next.wrapping_add(1);
        for id in &missing {
            self.waiting.entry(*id).or_default().push(seq);
        }
        self.ids.insert(event.id, seq);
        self.held.insert(seq, Held { event, at, missing });
        let mut dropped = Vec::new();
        while self.held.len() > self.cap
            && let Some((&oldest, _)) = self.held.first_key_value()
        {
            if let Some(held) = self.take(oldest) {
                dropped.push(held.event.id);
            }
        }
        dropped
    }

    /// Takes the held event `seq` out.
    fn take(&mut self, seq: u64) -> Option<Held> {
        let held = self.held.remove(&seq)?;
        self.ids.remove(&held.event.id);
        for id in &held.missing {
            if let Some(seqs) = self.waiting.get_mut(id) {
                seqs.retain(|s| *s != seq);
                if seqs.is_empty() {
                    self.waiting.remove(id);
                }
            }
        }
        Some(held)
    }

    /// Inserts the held events that `settled` (accepted or refused for good) completes, in the
    /// order they were held, and those they complete in turn.
    fn release(&mut self, graph: &mut RoomGraph, settled: EventId, offered: &mut Offered) {
        let mut settled = VecDeque::from([settled]);
        let mut ready = BTreeSet::new();
        loop {
            while let Some(id) = settled.pop_front() {
                for seq in self.waiting.get(&id).cloned().unwrap_or_default() {
                    let complete = self
                        .held
                        .get(&seq)
                        .is_some_and(|held| held.event.prev.iter().all(|p| graph.contains(p) || graph.is_refused(p)));
                    if complete {
                        ready.insert(seq);
                    }
                }
            }
            let Some(seq) = ready.pop_first() else { break };
            let Some(held) = self.take(seq) else { continue };
            let id = held.event.id;
            match graph.insert(held.event.clone()) {
                Err(Refusal::Missing(missing)) => {
                    offered.dropped.extend(self.hold(held.event, missing.clone(), held.at));
                    offered.outcomes.push((id, Err(Refusal::Missing(missing))));
                }
                outcome => {
                    if outcome.as_ref().map_or_else(Refusal::is_permanent, |_| true) {
                        settled.push_back(id);
                    }
                    offered.outcomes.push((id, outcome));
                }
            }
        }
    }
}
