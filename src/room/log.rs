//! A room's event log: every control event known, kept in fold order, and the state folded from
//! it. Inserting an event that belongs before others re-folds, and reports the difference.

use std::collections::HashSet;

use super::{Effect, Member, RoomEvent, RoomState};
use crate::account::AccountId;

/// The events of one room and their fold.
#[derive(Debug, Clone, Default)]
pub struct RoomLog {
    events: Vec<RoomEvent>,
    ids: HashSet<String>,
    state: RoomState,
}

/// Folds events that are already in order.
fn fold<'a>(events: impl IntoIterator<Item = &'a RoomEvent>) -> RoomState {
    let mut state = RoomState::default();
    for event in events {
        let _ = state.apply(event);
    }
    state
}

/// What changed between two states, as effects (used after a re-fold).
pub(super) fn diff(old: &RoomState, new: &RoomState) -> Vec<Effect> {
    let mut effects = Vec::new();
    if !old.exists()
        && new.exists()
        && let Some(first) = new.members().first()
    {
        effects.push(Effect::Created { user: first.user });
    }
    for Member { user, .. } in old.members() {
        if !new.is_member(user) {
            effects.push(if new.is_banned(user) {
                // Who banned is in the event; a re-fold reports the outcome only.
                Effect::Banned { user: *user, by: None }
            } else {
                Effect::Left { user: *user }
            });
        }
    }
    for Member { user, admin } in new.members() {
        if !old.is_member(user) && !(effects.iter().any(|e| matches!(e, Effect::Created { user: u } if u == user))) {
            effects.push(Effect::Joined { user: *user });
        }
        if *admin && !old.is_admin(user) && !matches!(effects.last(), Some(Effect::Created { user: u }) if u == user) {
            effects.push(Effect::Admin { user: *user, by: None });
        }
    }
    if old.exists() && !new.exists() {
        effects.push(Effect::Emptied);
    }
    effects
}

impl RoomLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A log of `events` in any order.
    pub fn from_events(events: impl IntoIterator<Item = RoomEvent>) -> Self {
        let mut log = RoomLog::new();
        for event in events {
            log.insert(event);
        }
        log
    }

    /// The current state.
    pub fn state(&self) -> &RoomState {
        &self.state
    }

    /// The events in fold order.
    pub fn events(&self) -> &[RoomEvent] {
        &self.events
    }

    /// Whether the event with `id` is known.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// The highest Lamport clock in the log (0 when empty).
    pub fn clock(&self) -> u64 {
        self.events.last().map_or(0, |e| e.lamport)
    }

    /// Adds `event` (a known id changes nothing) and returns what changed.
    pub fn insert(&mut self, event: RoomEvent) -> Vec<Effect> {
        if !self.ids.insert(event.id.clone()) {
            return Vec::new();
        }
        let pos = self.events.partition_point(|e| e.order_key() < event.order_key());
        if pos == self.events.len() {
            let effects = self.state.apply(&event).unwrap_or_default();
            self.events.push(event);
            return effects;
        }
        self.events.insert(pos, event);
        let new = fold(&self.events);
        let effects = diff(&self.state, &new);
        self.state = new;
        effects
    }

    /// Whether a message by `author` at Lamport time `lamport` is accepted: its author was a
    /// member at that point of the fold and, for a message arriving live, is one now (so a kicked
    /// member's later messages reach nobody, whatever clock they claim).
    pub fn accepts_message(&self, author: &AccountId, lamport: u64, live: bool) -> bool {
        self.member_at(author, lamport) && (!live || self.state.is_member(author))
    }

    /// Whether `user` was a member just before Lamport time `lamport`. A live message comes
    /// after every event known, where that is the current state: no fold needed.
    pub fn member_at(&self, user: &AccountId, lamport: u64) -> bool {
        if self.clock() < lamport {
            return self.state.is_member(user);
        }
        fold(self.events.iter().take_while(|e| e.lamport < lamport)).is_member(user)
    }
}
