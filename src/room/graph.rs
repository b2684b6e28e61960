//! A room's control events as a hash-linked graph, and the state folded from it.
//!
//! Pure code: no I/O, no clock, no network; it must never import tokio, libp2p or rusqlite. Ids
//! arrive computed (the wire layer hashes the signed event, so an id names one content), and
//! nothing here trusts a number a peer chose.
//!
//! A room is its create event: the room id is that event's id, and a [`RoomGraph`] is built for
//! one room id; it refuses any other create. Every other control event cites the latest control
//! events its author knew (`prev`, the heads) and its depth is 1 + the deepest of them, checked,
//! never chosen; every event's ancestry therefore reaches the room's create, and no clock can be
//! pushed to the end of its range.
//!
//! An event is accepted when it is allowed ([`RoomState::apply_action`]) in the state folded
//! from its ancestors — the state its author saw — and is otherwise refused and not stored.
//! That depends on the event and its ancestors only, so the accepted set does not depend on the
//! order of arrival. The current state is the fold of every accepted event in (depth, id) order
//! (an event the fold no longer allows there changes nothing): every node holding the same
//! events has the same members and admins.
//!
//! An admin can lose its power only by leaving, and an author's events are made one after the
//! other, each citing what its author did before. So an admin action (kick, ban, unban, op)
//! sorting before a leave of its author that does not descend from it was signed citing the
//! room from before that leave, or elsewhere concurrently: it is void wherever that leave is
//! folded. Otherwise an admin who left could sign actions citing the state before the leave
//! (allowed there) that the fold places before it. Void is decided by the events alone, so
//! every node holding the same events voids the same ones.
//!
//! Messages are checked the same way, with soft failure as in Matrix: refused when the author
//! was not a member in the state their `prev` imply, soft-failed (neither shown nor relayed)
//! when the author is not a member now.
//!
//! Cost: the state after each of the latest events and after one event every 32 depths is
//! cached. A fold starts from the deepest cached state that every cited path passes through, so
//! an event citing recent heads costs no re-fold, and an out-of-order one re-folds only back to
//! where the branches meet.

use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::fmt;

use super::{Action, Effect, Member, Refusal as RuleRefusal, RoomState};
use crate::account::AccountId;
use crate::recent::Recent;

/// The most events one event may cite.
pub const MAX_PREV: usize = 16;
/// One event every this many depths keeps the state after it.
const CHECKPOINT_EVERY: u64 = 32;
/// How many of the latest events keep the state after them.
const RECENT_STATES: usize = 64;
/// How many refused ids are remembered (so that what cites them is refused at once).
const REFUSED_REMEMBERED: usize = 4096;

/// The id of a control event: the SHA-256 of the signed event, computed by the wire layer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId([u8; 32]);

impl EventId {
    /// From its bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> EventId {
        EventId(bytes)
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.to_hex())
    }
}

impl serde::Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::bytes::serialize(&self.0, serializer)
    }
}

impl<'de> serde::Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<EventId, D::Error> {
        crate::bytes::deserialize_array(deserializer).map(EventId)
    }
}

/// A control event as the graph sees it. The author is the account of a verified certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GraphEvent {
    pub id: EventId,
    pub author: AccountId,
    /// The room's latest control events the author knew: empty for the create only.
    pub prev: Vec<EventId>,
    /// 0 for the create, else 1 + the largest depth among `prev`.
    pub depth: u64,
    pub action: Action,
}

impl GraphEvent {
    /// The fold order.
    pub fn order_key(&self) -> (u64, EventId) {
        (self.depth, self.id)
    }
}

/// Why the graph does not take an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// It cites events the graph lacks (sorted): keep it, and ask for them.
    #[error("cites events not known yet: {0:?}")]
    Missing(Vec<EventId>),
    #[error("the event is known already")]
    Known,
    /// A create event, but not this room's: a room is its create event.
    #[error("a create event of another room")]
    OtherCreate,
    #[error("malformed event: {0}")]
    Malformed(&'static str),
    #[error("depth {claimed} claimed where {expected} is due")]
    WrongDepth { claimed: u64, expected: u64 },
    #[error("depth out of range")]
    DepthOverflow,
    #[error("cites the refused event {0}")]
    CitesRefused(EventId),
    /// Not allowed in the state its `prev` imply.
    #[error("not allowed in the state it cites: {0}")]
    NotAllowed(RuleRefusal),
}

impl Refusal {
    /// Whether the same event would be refused again whatever arrives (all but `Missing` and
    /// `Known`).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Refusal::Missing(_) | Refusal::Known)
    }
}

/// An accepted event: what it changed in the current state (empty when nothing, e.g. a
/// concurrent kick of someone already kicked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    pub effects: Vec<Effect>,
}

/// What to do with a message citing `prev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageVerdict {
    /// Show and relay it.
    Accepted,
    /// Its author was a member in the state it cites but is not now (kicked, banned, left, or
    /// backdating): neither shown nor relayed.
    SoftFailed,
    /// Its author was not a member in the state it cites, or it cites malformedly.
    Refused(Refusal),
    /// It cites events not known yet (sorted).
    Missing(Vec<EventId>),
}

/// One page of what another member lacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// In fold order, which is topological: insertable one by one.
    pub events: Vec<GraphEvent>,
    /// Whether more events remain after this page (ask again with the new heads).
    pub more: bool,
    /// The ids reported that this graph lacks (sorted): worth asking the other side for.
    pub unknown: Vec<EventId>,
}

/// The accepted control events of one room, and their fold.
#[derive(Debug, Clone)]
pub struct RoomGraph {
    room: EventId,
    events: HashMap<EventId, GraphEvent>,
    /// Every accepted event by (depth, id).
    order: BTreeSet<(u64, EventId)>,
    heads: BTreeSet<EventId>,
    /// The fold of every accepted event.
    current: RoomState,
    /// The fold of an event's ancestors and itself, for checkpoints and the latest events.
    states: HashMap<EventId, RoomState>,
    checkpoint_depths: HashSet<u64>,
    recent: VecDeque<EventId>,
    checkpoint_every: u64,
    recent_states: usize,
    refused: Recent<EventId, (), REFUSED_REMEMBERED>,
    /// Each author's admin actions (kick, ban, unban, op), by (depth, id).
    acts: HashMap<AccountId, BTreeSet<(u64, EventId)>>,
    /// Each author's leaves, by (depth, id).
    leaves: HashMap<AccountId, BTreeSet<(u64, EventId)>>,
    /// Admin actions that a later leave of their author (in the fold order) does not descend
    /// from, and those leaves: void wherever one of the leaves is folded.
    voided_by: HashMap<EventId, Vec<EventId>>,
}

impl RoomGraph {
    /// An empty graph for the room whose create event has id `room`.
    pub fn new(room: EventId) -> Self {
        RoomGraph {
            room,
            events: HashMap::new(),
            order: BTreeSet::new(),
            heads: BTreeSet::new(),
            current: RoomState::default(),
            states: HashMap::new(),
            checkpoint_depths: HashSet::new(),
            recent: VecDeque::new(),
            checkpoint_every: CHECKPOINT_EVERY,
            recent_states: RECENT_STATES,
            refused: Recent::default(),
            acts: HashMap::new(),
            leaves: HashMap::new(),
            voided_by: HashMap::new(),
        }
    }

    /// A graph that caches few states, so that folds walk far (for tests).
    #[cfg(test)]
    pub(crate) fn with_small_cache(room: EventId) -> Self {
        RoomGraph { checkpoint_every: 5, recent_states: 3, ..RoomGraph::new(room) }
    }

    /// The room id: the id of its create event.
    pub fn room(&self) -> EventId {
        self.room
    }

    /// The current state: the fold of every accepted event.
    pub fn state(&self) -> &RoomState {
        &self.current
    }

    /// How many events are accepted.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Whether the event `id` is accepted.
    pub fn contains(&self, id: &EventId) -> bool {
        self.events.contains_key(id)
    }

    /// Whether the event `id` was refused for good (as far as remembered).
    pub fn is_refused(&self, id: &EventId) -> bool {
        self.refused.contains(id)
    }

    /// Whether the accepted admin action `id` is void: a later leave of its author did not know
    /// of it (see [`RoomGraph`]'s rules).
    pub fn is_void(&self, id: &EventId) -> bool {
        self.voided_by.contains_key(id)
    }

    /// The accepted event `id`.
    pub fn get(&self, id: &EventId) -> Option<&GraphEvent> {
        self.events.get(id)
    }

    /// The accepted events in fold order, (depth, id).
    pub fn events(&self) -> impl Iterator<Item = &GraphEvent> + '_ {
        self.order.iter().filter_map(|(_, id)| self.events.get(id))
    }

    /// The accepted events no accepted event cites, sorted.
    pub fn heads(&self) -> Vec<EventId> {
        self.heads.iter().copied().collect()
    }

    /// What a new event should cite: the heads, the deepest [`MAX_PREV`] of them when there are
    /// more (later events merge the rest), sorted.
    pub fn heads_to_cite(&self) -> Vec<EventId> {
        let mut heads: Vec<&GraphEvent> = self.heads.iter().filter_map(|id| self.events.get(id)).collect();
        heads.sort_by_key(|e| std::cmp::Reverse(e.order_key()));
        let mut cite: Vec<EventId> = heads.into_iter().take(MAX_PREV).map(|e| e.id).collect();
        cite.sort();
        cite
    }

    /// The depth an event citing `prev` must have.
    pub fn depth_for(&self, prev: &[EventId]) -> Result<u64, Refusal> {
        self.deepest(prev)?.checked_add(1).ok_or(Refusal::DepthOverflow)
    }

    /// The state `prev` imply: the fold of their ancestors and themselves.
    pub fn state_at(&self, prev: &[EventId]) -> Result<RoomState, Refusal> {
        self.deepest(prev)?;
        Ok(self.fold_from(prev))
    }

    /// Checks `event` against the state it cites and, if allowed, adds it.
    pub fn insert(&mut self, event: GraphEvent) -> Result<Accepted, Refusal> {
        if self.events.contains_key(&event.id) {
            return Err(Refusal::Known);
        }
        match self.admit(&event) {
            Ok(after) => Ok(self.store(event, after)),
            Err(refusal) => {
                if refusal.is_permanent() {
                    self.remember_refused(event.id);
                }
                Err(refusal)
            }
        }
    }

    /// What to do with a message by `author` citing `prev`.
    pub fn check_message(&self, author: &AccountId, prev: &[EventId]) -> MessageVerdict {
        match self.deepest(prev) {
            Ok(_) => {}
            Err(Refusal::Missing(ids)) => return MessageVerdict::Missing(ids),
            Err(refusal) => return MessageVerdict::Refused(refusal),
        }
        let member_then = if prev.len() == self.heads.len() && prev.iter().all(|id| self.heads.contains(id)) {
            self.current.is_member(author)
        } else {
            self.fold_from(prev).is_member(author)
        };
        if !member_then {
            MessageVerdict::Refused(Refusal::NotAllowed(RuleRefusal::NotMember(*author)))
        } else if !self.current.is_member(author) {
            MessageVerdict::SoftFailed
        } else {
            MessageVerdict::Accepted
        }
    }

    /// What a member who holds `known` (and their ancestors; usually its heads) lacks, in fold
    /// order (topological: insertable one by one), at most `limit` events, starting after the
    /// event `after` in that order; `more` says whether any remain. To page on, ask again with
    /// the same `known` and `after` = the last event of the page: the pages are exact even when
    /// `known` names events this graph lacks (then a page may bring events the member has).
    pub fn events_after(&self, known: &[EventId], after: Option<EventId>, limit: usize) -> CatchUp {
        let start = after.and_then(|id| self.events.get(&id)).map(GraphEvent::order_key);
        let mut unknown = Vec::new();
        let mut seen = HashSet::new();
        let mut stack = Vec::new();
        for id in known {
            if self.events.contains_key(id) {
                if seen.insert(*id) {
                    stack.push(*id);
                }
            } else {
                unknown.push(*id);
            }
        }
        while let Some(id) = stack.pop() {
            for p in self.events.get(&id).map_or(&[][..], |e| &e.prev) {
                if seen.insert(*p) {
                    stack.push(*p);
                }
            }
        }
        let mut events = Vec::new();
        let mut more = false;
        let rest = match start {
            Some(key) => self.order.range((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded)),
            None => self.order.range(..),
        };
        for event in rest.filter_map(|(_, id)| self.events.get(id)).filter(|e| !seen.contains(&e.id)) {
            if events.len() == limit {
                more = true;
                break;
            }
            events.push(event.clone());
        }
        unknown.sort();
        unknown.dedup();
        CatchUp { events, more, unknown }
    }

    /// The largest depth among `prev`, once `prev` is well-formed and known.
    fn deepest(&self, prev: &[EventId]) -> Result<u64, Refusal> {
        if prev.is_empty() {
            return Err(Refusal::Malformed("cites no event"));
        }
        if prev.len() > MAX_PREV {
            return Err(Refusal::Malformed("cites too many events"));
        }
        let mut sorted = prev.to_vec();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != prev.len() {
            return Err(Refusal::Malformed("cites an event twice"));
        }
        if let Some(id) = sorted.iter().find(|id| self.refused.contains(id)) {
            return Err(Refusal::CitesRefused(*id));
        }
        sorted.retain(|id| !self.events.contains_key(id));
        if !sorted.is_empty() {
            return Err(Refusal::Missing(sorted));
        }
        Ok(prev.iter().filter_map(|id| self.events.get(id)).map(|e| e.depth).max().unwrap_or(0))
    }

    /// Checks `event` and returns the state after it.
    fn admit(&self, event: &GraphEvent) -> Result<RoomState, Refusal> {
        let cited = if event.action == Action::Create {
            if event.id != self.room {
                return Err(Refusal::OtherCreate);
            }
            if !event.prev.is_empty() {
                return Err(Refusal::Malformed("a create cites no event"));
            }
            if event.depth != 0 {
                return Err(Refusal::WrongDepth { claimed: event.depth, expected: 0 });
            }
            RoomState::default()
        } else {
            if event.id == self.room {
                return Err(Refusal::Malformed("the room's id on an event that is not a create"));
            }
            let expected = self.depth_for(&event.prev)?;
            if event.depth != expected {
                return Err(Refusal::WrongDepth { claimed: event.depth, expected });
            }
            self.fold_from(&event.prev)
        };
        let mut after = cited;
        after.apply_action(&event.author, &event.action).map_err(Refusal::NotAllowed)?;
        Ok(after)
    }

    /// Adds an admitted event; `after` is the fold of its ancestors and itself.
    fn store(&mut self, event: GraphEvent, after: RoomState) -> Accepted {
        let key = event.order_key();
        let voided = self.note_voids(&event);
        let last = !voided && self.order.last().is_none_or(|last| *last < key);
        for p in &event.prev {
            self.heads.remove(p);
        }
        self.heads.insert(event.id);
        self.order.insert(key);
        self.keep_state(&event, after);
        let id = event.id;
        if last {
            // Last in the fold: the fold so far, then this event.
            let effects = self.current.apply_action(&event.author, &event.action).unwrap_or_default();
            self.events.insert(id, event);
            return Accepted { effects };
        }
        self.events.insert(id, event);
        let heads: Vec<EventId> = self.heads.iter().copied().collect();
        let new = self.fold_from(&heads);
        let effects = self.events.get(&id).map_or_else(Vec::new, |e| diff(&self.current, &new, e));
        self.current = new;
        Accepted { effects }
    }

    /// Caches the state after `event` if it is a checkpoint, or as one of the latest.
    fn keep_state(&mut self, event: &GraphEvent, after: RoomState) {
        if event.depth.is_multiple_of(self.checkpoint_every) && self.checkpoint_depths.insert(event.depth) {
            self.states.insert(event.id, after);
            return;
        }
        self.states.insert(event.id, after);
        self.recent.push_back(event.id);
        if self.recent.len() > self.recent_states
            && let Some(old) = self.recent.pop_front()
        {
            self.states.remove(&old);
        }
    }

    /// Notes `event` among its author's admin actions or leaves, and which admin actions are
    /// void by it: an admin action sorting before a leave of its author that does not descend
    /// from it. Whether any was voided now.
    fn note_voids(&mut self, event: &GraphEvent) -> bool {
        let key = event.order_key();
        match event.action {
            Action::Kick(_) | Action::Ban(_) | Action::Unban(_) | Action::Op(_) => {
                self.acts.entry(event.author).or_default().insert(key);
                // Nothing accepted descends from an event arriving now.
                let later: Vec<EventId> = self.leaves.get(&event.author).map_or_else(Vec::new, |leaves| {
                    leaves
                        .range((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))
                        .map(|(_, id)| *id)
                        .collect()
                });
                if later.is_empty() {
                    return false;
                }
                self.voided_by.insert(event.id, later);
                true
            }
            Action::Leave => {
                self.leaves.entry(event.author).or_default().insert(key);
                let earlier: Vec<(u64, EventId)> =
                    self.acts.get(&event.author).map_or_else(Vec::new, |acts| acts.range(..key).copied().collect());
                let unknown = self.not_ancestors(event, earlier);
                for act in &unknown {
                    self.voided_by.entry(*act).or_default().push(event.id);
                }
                !unknown.is_empty()
            }
            _ => false,
        }
    }

    /// Which of `acts` (events of `leave`'s author sorting before it) are not ancestors of
    /// `leave`. Walks down from it, deepest first, no lower than the acts not found yet; an
    /// earlier leave of the same author met on the way stands for every act it descends from.
    fn not_ancestors(&self, leave: &GraphEvent, acts: Vec<(u64, EventId)>) -> Vec<EventId> {
        let mut remaining: BTreeSet<(u64, EventId)> = acts.into_iter().collect();
        let mut seen: HashSet<EventId> = HashSet::new();
        let mut below: BinaryHeap<(u64, EventId)> =
            leave.prev.iter().filter_map(|p| self.events.get(p)).map(GraphEvent::order_key).collect();
        while let Some(&(lowest, _)) = remaining.first() {
            let Some(key) = below.pop() else { break };
            if key.0 < lowest {
                break;
            }
            if !seen.insert(key.1) {
                continue;
            }
            remaining.remove(&key);
            let Some(event) = self.events.get(&key.1) else { continue };
            if event.action == Action::Leave && event.author == leave.author {
                let knew = |act: &(u64, EventId)| {
                    *act < key && !self.voided_by.get(&act.1).is_some_and(|by| by.contains(&key.1))
                };
                remaining.retain(|act| !knew(act));
            }
            below.extend(
                event
                    .prev
                    .iter()
                    .filter(|p| !seen.contains(p))
                    .filter_map(|p| self.events.get(p))
                    .map(GraphEvent::order_key),
            );
        }
        remaining.into_iter().map(|(_, id)| id).collect()
    }

    fn remember_refused(&mut self, id: EventId) {
        self.refused.insert(id, ());
    }

    /// The fold, in (depth, id) order, of `tips` and all their ancestors (ids not accepted are
    /// left out).
    ///
    /// Walks down from the tips, deepest first, until every path passes through one event
    /// whose state is cached: everything walked is above it in the order, so the fold is that
    /// state and then the walked events.
    fn fold_from(&self, tips: &[EventId]) -> RoomState {
        let mut frontier: BTreeSet<(u64, EventId)> =
            tips.iter().filter_map(|id| self.events.get(id)).map(GraphEvent::order_key).collect();
        let mut above = Vec::new();
        let mut state = loop {
            if frontier.len() == 1
                && let Some((_, id)) = frontier.first()
                && let Some(state) = self.states.get(id)
            {
                break state.clone();
            }
            let Some((_, id)) = frontier.pop_last() else {
                break RoomState::default();
            };
            if let Some(event) = self.events.get(&id) {
                frontier.extend(event.prev.iter().filter_map(|p| self.events.get(p)).map(GraphEvent::order_key));
                above.push(event);
            }
        };
        // Everything a leave folded here sorts after is walked (it is above the cached state):
        // an admin action its author's leave did not know of is void if that leave is walked.
        let walked: Option<HashSet<EventId>> =
            above.iter().any(|e| self.voided_by.contains_key(&e.id)).then(|| above.iter().map(|e| e.id).collect());
        for event in above.iter().rev() {
            if let Some(walked) = &walked
                && self.voided_by.get(&event.id).is_some_and(|by| by.iter().any(|leave| walked.contains(leave)))
            {
                continue;
            }
            let _ = state.apply_action(&event.author, &event.action);
        }
        state
    }
}

/// What changed between two folds, after `cause` was inserted out of order: [`state_diff`],
/// with `by` filled in where `cause` explains it, and bans and unbans of
/// non-members.
fn diff(old: &RoomState, new: &RoomState, cause: &GraphEvent) -> Vec<Effect> {
    let by = cause.author;
    let mut effects = state_diff(old, new);
    for effect in &mut effects {
        match (&mut *effect, &cause.action) {
            (Effect::Left { user }, Action::Kick(target)) if user == target => {
                *effect = Effect::Kicked { user: *target, by };
            }
            (Effect::Banned { user, by: who }, Action::Ban(target)) if user == target => *who = Some(by),
            (Effect::Admin { user, by: who }, Action::Op(target)) if user == target => *who = Some(by),
            _ => {}
        }
    }
    for user in new.banned().filter(|u| !old.is_banned(u)) {
        if !effects.iter().any(|e| matches!(e, Effect::Banned { user: u, .. } if *u == user)) {
            let who = (cause.action == Action::Ban(user)).then_some(by);
            effects.push(Effect::Banned { user, by: who });
        }
    }
    for user in old.banned().filter(|u| !new.is_banned(u)) {
        if cause.action == Action::Unban(user) {
            effects.push(Effect::Unbanned { user, by });
        }
    }
    effects
}

/// What changed between two states, as effects (used after a re-fold).
fn state_diff(old: &RoomState, new: &RoomState) -> Vec<Effect> {
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
