//! The room engine: every room this node knows, as a state machine without I/O.
//!
//! [`RoomEngine::handle`] takes an [`Input`] (an event that checked out on the wire, or a
//! tick) and the time, and returns [`Output`]s — events to keep, to publish, changes and
//! messages for the user, rooms to catch up from a peer, verdicts for gossip — that the node
//! carries out. Queries answer commands (what to cite, whether an action is allowed now) and
//! catch-up requests (what a member lacks, whether the asker may have it). It must never import
//! tokio, the libp2p swarm or rusqlite, and never reads a clock: the time is passed in.
//!
//! Rules, on top of [`RoomGraph`]'s (a room is its create event; events cite the heads their
//! author knew, their depth follows from them; authority is checked in the state cited):
//! - control events and messages from the network are rate-limited per account
//!   ([`CONTROL_BURST`]/[`CONTROLS_PER_SEC`], [`MESSAGE_BURST`]/[`MESSAGES_PER_SEC`]), and so
//!   are the catch-up requests answered ([`SERVE_BURST`]/[`SERVES_PER_SEC`]) and the messages
//!   taken from the pages an account serves ([`SERVED_MESSAGE_BURST`]/
//!   [`SERVED_MESSAGES_PER_SEC`]); a room holds at most [`MAX_EVENTS_PER_ROOM`] control events
//!   (its admins' up to [`ADMIN_RESERVE`] more), and takes at most [`MAX_CONTROLS_PER_AUTHOR`]
//!   of one account but an admin from the network;
//! - an event citing events not known yet waits for them (bounded in number and time) while the
//!   room is caught up from the peer it came from;
//! - a message heard live is shown only if its author was a member in the state it cites and
//!   is one now (soft failure: a message of someone removed since is neither shown nor
//!   relayed, whatever state it cites, so backdating gets nothing in); a message from a
//!   catch-up page needs its author a member in the state it cites and the page served by a
//!   member now: an honest member keeps only what it showed, so history stays closed to
//!   those removed;
//! - catch-up is served to current members, and to former ones up to their removal.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::graph::{CatchUp, EventId, MessageVerdict, Refusal as GraphRefusal, RoomGraph};
use super::pending::Pending;
use super::{Action, Effect, Refusal, RoomState};
use crate::account::AccountId;
use crate::rate_limit::RateLimit;
use crate::room::event::{EventPayload, VerifiedEvent};

/// Room messages a user may send at once, and then each second (every node enforces it).
pub const MESSAGE_BURST: u32 = 500;
pub const MESSAGES_PER_SEC: u32 = 100;
/// Control events (create, join, leave, kick, ban, unban, op) a user may make at once, and then
/// each second (every node enforces it): a person never needs more than a few a second.
pub const CONTROL_BURST: u32 = 20;
pub const CONTROLS_PER_SEC: u32 = 2;
/// Catch-up requests (for heads or a page) answered for one account at once, and then each
/// second: a joiner reading a room of 10,000 messages asks about 25 pages, a node in many rooms
/// a page or two per room a minute; a page costs a walk of the room's graph (milliseconds in a
/// large room), which a member asking without end must not take from the loop.
pub const SERVE_BURST: u32 = 120;
pub const SERVES_PER_SEC: u32 = 20;
/// Room messages taken from the catch-up pages one account's peers serve, at once and then each
/// second: a joiner reads a room's history from one member, and a member's node back from a
/// day away catches up a busy room in a few catch-ups; but a member who signed messages without
/// end, to serve them in pages (the live limit holds only what is heard live), gets them taken
/// no faster than this, and what is over it is not even checked.
pub const SERVED_MESSAGE_BURST: u32 = 20_000;
pub const SERVED_MESSAGES_PER_SEC: u32 = 200;
/// How late an event may arrive, next to the ones sent before it, and still count as sent
/// within the limit (see [`RateLimit::on_arrival`]).
const ARRIVAL_JITTER: Duration = Duration::from_secs(1);
/// The most control events a room holds; beyond, new ones are refused, but those of its admins
/// (as things stand here) up to [`ADMIN_RESERVE`] more: a room filled up can still be moderated.
pub const MAX_EVENTS_PER_ROOM: usize = 100_000;
/// Control events beyond [`MAX_EVENTS_PER_ROOM`] taken from the room's admins.
pub const ADMIN_RESERVE: usize = 10_000;
/// The most control events of one account a room takes from the network, but from its admins
/// (the rate limit holds what is heard live, not what a catch-up brings): a person joins and
/// leaves far less, and filling a room takes many accounts.
pub const MAX_CONTROLS_PER_AUTHOR: usize = 5_000;
/// Control events waiting for what they cite, per room, and for how long.
const PENDING_CAP: usize = 1000;
const PENDING_WAIT: Duration = Duration::from_secs(30);
/// Messages waiting for the control events they cite, over all rooms, and for how long.
const HELD_MESSAGES: usize = 1000;
const MESSAGE_WAIT: Duration = Duration::from_secs(15);

/// How an event came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Made by this node's user just now.
    Own,
    /// From this node's database.
    Disk,
    /// Heard on the room's topic, passed on by `from`.
    Live { from: PeerId },
    /// Handed over directly by its author (a joiner's join, in its catch-up request).
    Handed { from: PeerId },
    /// In a catch-up page that `server` (a peer of that account) sent; `show`: the page's new
    /// messages are shown (a catch-up after a reconnection), not only kept (history).
    CatchUp { from: PeerId, server: AccountId, show: bool },
}

impl Via {
    pub fn peer(&self) -> Option<PeerId> {
        match self {
            Via::Live { from } | Via::Handed { from } | Via::CatchUp { from, .. } => Some(*from),
            Via::Own | Via::Disk => None,
        }
    }
}

/// An event that checked out on the wire, with its bytes (to keep and pass on).
#[derive(Debug, Clone)]
pub struct Incoming {
    pub event: VerifiedEvent,
    pub bytes: Vec<u8>,
    pub via: Via,
}

/// What the engine is told.
#[derive(Debug, Clone)]
pub enum Input {
    Event(Box<Incoming>),
    /// Time passed: what waited too long is given up.
    Tick,
}

/// What gossip should do with an event heard on a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it on.
    Accept,
    /// Neither pass it on nor hold it against the sender (known, or waiting).
    Ignore,
    /// Invalid: drop it, and the sender loses score.
    Reject,
}

/// What the node should do.
#[derive(Debug, Clone)]
pub enum Output {
    /// The gossip verdict on a live event (none is given for a live message that checked
    /// out: it is new unless the node has it, which only its store knows).
    Verdict(Verdict),
    /// A room came into being here (its create was taken in).
    Room { room: EventId, name: String, creator: AccountId },
    /// Keep a control event.
    Keep { room: EventId, id: EventId, depth: u64, bytes: Vec<u8> },
    /// Publish an event on its room's topic.
    Publish { room: EventId, bytes: Vec<u8> },
    /// What a control event changed, for the user.
    Changed { room: EventId, effect: Effect },
    /// A message that checked out: keep it, and show it (if `via` says so) unless kept before.
    Message(Box<Incoming>),
    /// Catch `room` up from `peer`: something came from there that cites events not known here.
    CatchUp { room: EventId, peer: PeerId },
    /// An event was not taken (for the log): why.
    Refused { room: EventId, id: EventId, reason: String },
}

/// Where an account stands in a room, for catch-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Member,
    /// Was a member; removed by the event of this depth.
    Former {
        until: u64,
    },
    Stranger,
}

/// Why a catch-up request gets nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ServeRefusal {
    #[error("the room is not known here")]
    UnknownRoom,
    #[error("only members may catch a room up")]
    NotMember,
}

/// A message waiting for the control events it cites.
#[derive(Debug)]
struct HeldMessage {
    incoming: Incoming,
    at: Instant,
}

/// One room.
#[derive(Debug)]
struct Room {
    name: String,
    creator: AccountId,
    graph: RoomGraph,
    pending: Pending,
    /// The held control events' bytes and how they came, by id.
    pending_bytes: HashMap<EventId, (Vec<u8>, Via)>,
    held: VecDeque<HeldMessage>,
    /// Every account that ever created or joined the room: no one else can be a former member.
    joiners: HashSet<AccountId>,
    /// The control events held of each author.
    controls_by: HashMap<AccountId, usize>,
    /// When each join (and the create) was taken in here, by [`RoomEngine::arrival`]: who has
    /// been a member longest as this node saw it, whatever depth a join claims.
    joins_arrived: HashMap<EventId, u64>,
}

/// Every room this node knows.
#[derive(Debug)]
pub struct RoomEngine {
    rooms: HashMap<EventId, Room>,
    control_arrival: RateLimit<AccountId>,
    message_arrival: RateLimit<AccountId>,
    control_send: RateLimit<AccountId>,
    message_send: RateLimit<AccountId>,
    serving: RateLimit<AccountId>,
    served_messages: RateLimit<AccountId>,
    held_messages: usize,
    /// The number the next event taken in is noted with: the row it was kept in for events
    /// from the database (set by [`RoomEngine::arriving`]), counted on from the last of them.
    arrival: u64,
}

impl Default for RoomEngine {
    fn default() -> Self {
        RoomEngine {
            rooms: HashMap::new(),
            control_arrival: RateLimit::on_arrival(CONTROL_BURST, CONTROLS_PER_SEC, ARRIVAL_JITTER),
            message_arrival: RateLimit::on_arrival(MESSAGE_BURST, MESSAGES_PER_SEC, ARRIVAL_JITTER),
            control_send: RateLimit::new(CONTROL_BURST, CONTROLS_PER_SEC),
            message_send: RateLimit::new(MESSAGE_BURST, MESSAGES_PER_SEC),
            serving: RateLimit::new(SERVE_BURST, SERVES_PER_SEC),
            served_messages: RateLimit::new(SERVED_MESSAGE_BURST, SERVED_MESSAGES_PER_SEC),
            held_messages: 0,
            arrival: 0,
        }
    }
}

impl RoomEngine {
    /// Takes `input` in at `now`; what the node should do.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Event(incoming) => self.take(*incoming, now, &mut out),
            Input::Tick => self.expire(now, &mut out),
        }
        out
    }

    // Queries.

    /// The rooms known here, in id order.
    pub fn rooms(&self) -> Vec<EventId> {
        let mut rooms: Vec<EventId> = self.rooms.keys().copied().collect();
        rooms.sort();
        rooms
    }

    /// Whether `room` is known here.
    pub fn knows(&self, room: &EventId) -> bool {
        self.rooms.contains_key(room)
    }

    /// Whether the control event `id` of `room` is taken in.
    pub fn contains(&self, room: &EventId, id: &EventId) -> bool {
        self.rooms.get(room).is_some_and(|r| r.graph.contains(id))
    }

    /// The rooms `account` is a member of, in id order.
    pub fn rooms_of(&self, account: &AccountId) -> Vec<EventId> {
        let mut rooms: Vec<EventId> =
            self.rooms.iter().filter(|(_, r)| r.graph.state().is_member(account)).map(|(id, _)| *id).collect();
        rooms.sort();
        rooms
    }

    /// The depth of `account`'s latest join of `room` (or its create), if it made one.
    pub fn joined_at(&self, room: &EventId, account: &AccountId) -> Option<u64> {
        let room = self.rooms.get(room)?;
        latest_join(&room.graph, account).map(|e| e.depth)
    }

    /// The next event taken in was kept in row `row` of the database (events from the
    /// database are taken in by depth, not in the order they came): it is noted with that
    /// number, and those after it with larger ones.
    pub fn arriving(&mut self, row: u64) {
        self.arrival = row;
    }

    /// Who should be made an admin before `me` leaves `room`: when `me` is its only admin and
    /// others remain, the member who has been one longest as this node saw their joins come
    /// (a join can claim to be older than it is by citing old events; when this node let go
    /// of when it came, its place in the fold counts).
    pub fn successor(&self, room: &EventId, me: &AccountId) -> Option<AccountId> {
        let room = self.rooms.get(room)?;
        let state = room.graph.state();
        if !state.is_admin(me) || state.members().iter().any(|m| m.admin && m.user != *me) {
            return None;
        }
        // Each account's latest join: the fold's order is the graph's.
        let mut joins: HashMap<AccountId, EventId> = HashMap::new();
        for e in room.graph.events().filter(|e| matches!(e.action, Action::Create | Action::Join)) {
            joins.insert(e.author, e.id);
        }
        let others = state.members().iter().enumerate().filter(|(_, m)| m.user != *me);
        others
            .min_by_key(|(place, m)| {
                let arrived = joins.get(&m.user).and_then(|id| room.joins_arrived.get(id));
                (arrived.copied().unwrap_or(u64::MAX), *place)
            })
            .map(|(_, m)| m.user)
    }

    /// A room's name (a label) and creator.
    pub fn label(&self, room: &EventId) -> Option<(&str, AccountId)> {
        self.rooms.get(room).map(|r| (r.name.as_str(), r.creator))
    }

    /// A room's current state.
    pub fn state(&self, room: &EventId) -> Option<&RoomState> {
        self.rooms.get(room).map(|r| r.graph.state())
    }

    /// A room's heads (what a catch-up request names as known), sorted.
    pub fn heads(&self, room: &EventId) -> Vec<EventId> {
        self.rooms.get(room).map(|r| r.graph.heads()).unwrap_or_default()
    }

    /// How many control events a room holds.
    pub fn event_count(&self, room: &EventId) -> usize {
        self.rooms.get(room).map_or(0, |r| r.graph.len())
    }

    /// What a new event of `room` cites, and its depth.
    pub fn cite(&self, room: &EventId) -> Option<(Vec<EventId>, u64)> {
        let graph = &self.rooms.get(room)?.graph;
        let prev = graph.heads_to_cite();
        let depth = graph.depth_for(&prev).ok()?;
        Some((prev, depth))
    }

    /// Whether `author` may do `action` in `room` now.
    pub fn check(&self, room: &EventId, author: &AccountId, action: &Action) -> Result<(), Refusal> {
        let room = self.rooms.get(room).ok_or(Refusal::NoSuchRoom)?;
        room.graph.state().clone().apply_action(author, action).map(|_| ())
    }

    /// Whether this node's user may make one more control event now (counts it if so).
    pub fn allow_own_control(&mut self, author: AccountId, now: Instant) -> bool {
        self.control_send.allow(author, now)
    }

    /// Whether this node's user may send one more room message now (counts it if so).
    pub fn allow_own_message(&mut self, author: AccountId, now: Instant) -> bool {
        self.message_send.allow(author, now)
    }

    /// Whether a catch-up request of `asker` may be answered now (counts it if so).
    pub fn allow_serving(&mut self, asker: AccountId, now: Instant) -> bool {
        self.serving.allow(asker, now)
    }

    /// Whether one more message of a catch-up page served by a peer of `server` may be taken
    /// now (counts it if so; to be asked before its signature is checked).
    pub fn allow_served_message(&mut self, server: AccountId, now: Instant) -> bool {
        self.served_messages.allow(server, now)
    }

    /// Where `account` stands in `room`.
    pub fn standing(&self, room: &EventId, account: &AccountId) -> Standing {
        let Some(room) = self.rooms.get(room) else { return Standing::Stranger };
        if room.graph.state().is_member(account) {
            return Standing::Member;
        }
        if !room.joiners.contains(account) {
            return Standing::Stranger;
        }
        let mut state = RoomState::default();
        let mut until = None;
        for event in room.graph.events().filter(|e| !room.graph.is_void(&e.id)) {
            let before = state.is_member(account);
            let _ = state.apply_action(&event.author, &event.action);
            if before && !state.is_member(account) {
                until = Some(event.depth);
            }
        }
        until.map_or(Standing::Stranger, |until| Standing::Former { until })
    }

    /// What `asker` lacks of `room`'s control events, knowing `known` and their ancestors: at
    /// most `limit` events after `after` in fold order (a former member's end at its removal),
    /// with the depth a former member's messages are served up to.
    pub fn serve_events(
        &self,
        room: &EventId,
        asker: &AccountId,
        known: &[EventId],
        after: Option<EventId>,
        limit: usize,
    ) -> Result<(CatchUp, Option<u64>), ServeRefusal> {
        let graph = &self.rooms.get(room).ok_or(ServeRefusal::UnknownRoom)?.graph;
        match self.standing(room, asker) {
            Standing::Stranger => Err(ServeRefusal::NotMember),
            Standing::Member => Ok((graph.events_after(known, after, limit), None)),
            Standing::Former { until } => {
                let mut page = graph.events_after(known, after, limit);
                if let Some(cut) = page.events.iter().position(|e| e.depth > until) {
                    page.events.truncate(cut);
                    page.more = false;
                }
                Ok((page, Some(until)))
            }
        }
    }

    // Taking events in.

    fn take(&mut self, incoming: Incoming, now: Instant, out: &mut Vec<Output>) {
        let live = matches!(incoming.via, Via::Live { .. } | Via::Handed { .. });
        // A verdict only for what gossip brought: a handed event is no gossip message.
        let verdict = matches!(incoming.via, Via::Live { .. }).then_some(Verdict::Reject);
        let account = incoming.event.account;
        match &incoming.event.body.payload {
            EventPayload::Message { .. } => {
                if live && !self.message_arrival.allow(account, now) {
                    refuse(out, &incoming, "over the rate limit of room messages", verdict);
                    return;
                }
                self.take_message(incoming, now, true, out);
            }
            EventPayload::Create { .. } | EventPayload::Control(_) => {
                let room = incoming.event.room;
                if live
                    && self.rooms.get(&room).is_some_and(|r| !r.graph.contains(&incoming.event.id))
                    && !self.control_arrival.allow(account, now)
                {
                    refuse(out, &incoming, "over the rate limit of room changes", verdict);
                    return;
                }
                self.take_control(incoming, now, out);
            }
        }
    }

    fn take_control(&mut self, incoming: Incoming, now: Instant, out: &mut Vec<Output>) {
        let live = matches!(incoming.via, Via::Live { .. } | Via::Handed { .. });
        let gossip = matches!(incoming.via, Via::Live { .. });
        let room_id = incoming.event.room;
        let Some(event) = incoming.event.graph_event() else { return };
        if let std::collections::hash_map::Entry::Vacant(entry) = self.rooms.entry(room_id) {
            // A room comes into being here only by its create, from this node's user, its
            // database or a catch-up it asked for.
            let EventPayload::Create { name } = &incoming.event.body.payload else {
                refuse(out, &incoming, "a room not known here", gossip.then_some(Verdict::Ignore));
                return;
            };
            if live {
                refuse(out, &incoming, "a room not known here", gossip.then_some(Verdict::Ignore));
                return;
            }
            entry.insert(Room {
                name: name.clone(),
                creator: incoming.event.account,
                graph: RoomGraph::new(room_id),
                pending: Pending::new(PENDING_CAP, PENDING_WAIT),
                pending_bytes: HashMap::new(),
                joiners: HashSet::new(),
                controls_by: HashMap::new(),
                joins_arrived: HashMap::new(),
                held: VecDeque::new(),
            });
        }
        let Some(room) = self.rooms.get_mut(&room_id) else { return };
        if room.graph.contains(&event.id) || room.pending.contains(&event.id) {
            if gossip {
                out.push(Output::Verdict(Verdict::Ignore));
            }
            return;
        }
        // What this node kept before is taken back up to the room's hard cap; from the network,
        // within an author's share, and beyond the room's cap only from an admin.
        let from_disk = matches!(incoming.via, Via::Disk);
        let author = incoming.event.account;
        let held = room.graph.len().saturating_add(room.pending.len());
        let admin = room.graph.state().is_admin(&author);
        let cap =
            if from_disk || admin { MAX_EVENTS_PER_ROOM.saturating_add(ADMIN_RESERVE) } else { MAX_EVENTS_PER_ROOM };
        if held >= cap {
            refuse(out, &incoming, "the room holds as many events as it may", gossip.then_some(Verdict::Ignore));
            return;
        }
        if !from_disk && !admin && room.controls_by.get(&author).is_some_and(|n| *n >= MAX_CONTROLS_PER_AUTHOR) {
            let reason = "its author has made as many changes to the room as it may";
            refuse(out, &incoming, reason, gossip.then_some(Verdict::Ignore));
            return;
        }
        let id = event.id;
        room.pending_bytes.insert(id, (incoming.bytes.clone(), incoming.via));
        let offered = room.pending.offer(&mut room.graph, event, now);
        for dropped in &offered.dropped {
            room.pending_bytes.remove(dropped);
            out.push(Output::Refused {
                room: room_id,
                id: *dropped,
                reason: "given up waiting for what it cites".into(),
            });
        }
        let mut accepted_any = false;
        for (event_id, outcome) in offered.outcomes {
            match outcome {
                Ok(accepted) => {
                    accepted_any = true;
                    if let Some(e) = room.graph.get(&event_id) {
                        if matches!(e.action, Action::Create | Action::Join) {
                            room.joiners.insert(e.author);
                            room.joins_arrived.insert(event_id, self.arrival);
                        }
                        *room.controls_by.entry(e.author).or_default() += 1;
                    }
                    let Some((bytes, via)) = room.pending_bytes.remove(&event_id) else { continue };
                    let depth = room.graph.get(&event_id).map_or(0, |e| e.depth);
                    if event_id == room_id {
                        out.push(Output::Room { room: room_id, name: room.name.clone(), creator: room.creator });
                    }
                    self.arrival = self.arrival.saturating_add(1);
                    out.push(Output::Keep { room: room_id, id: event_id, depth, bytes: bytes.clone() });
                    if matches!(via, Via::Own | Via::Handed { .. }) {
                        out.push(Output::Publish { room: room_id, bytes });
                    }
                    if event_id == id && gossip {
                        out.push(Output::Verdict(Verdict::Accept));
                    }
                    out.extend(accepted.effects.into_iter().map(|effect| Output::Changed { room: room_id, effect }));
                }
                Err(GraphRefusal::Missing(_)) if event_id == id => {
                    if gossip {
                        out.push(Output::Verdict(Verdict::Ignore));
                    }
                    if let Some(peer) = incoming.via.peer() {
                        out.push(Output::CatchUp { room: room_id, peer });
                    }
                }
                Err(GraphRefusal::Missing(_)) => {}
                Err(refusal) => {
                    room.pending_bytes.remove(&event_id);
                    if event_id == id && gossip {
                        let verdict = if refusal.is_permanent() { Verdict::Reject } else { Verdict::Ignore };
                        out.push(Output::Verdict(verdict));
                    }
                    out.push(Output::Refused { room: room_id, id: event_id, reason: refusal.to_string() });
                }
            }
        }
        if room.graph.is_empty() {
            // Its create was refused: the room does not come into being.
            self.rooms.remove(&room_id);
            return;
        }
        if accepted_any {
            self.release_messages(room_id, out);
        }
    }

    /// Takes a message in; `first` unless it waited and is taken in again (its gossip verdict
    /// was given then).
    fn take_message(&mut self, incoming: Incoming, now: Instant, first: bool, out: &mut Vec<Output>) {
        let room_id = incoming.event.room;
        let gossip = first && matches!(incoming.via, Via::Live { .. });
        let Some(room) = self.rooms.get(&room_id) else {
            refuse(out, &incoming, "a room not known here", gossip.then_some(Verdict::Ignore));
            return;
        };
        if let Via::CatchUp { server, .. } = incoming.via
            && !room.graph.state().is_member(&server)
        {
            refuse(out, &incoming, "history served by someone not a member now", None);
            return;
        }
        let body = &incoming.event.body;
        let verdict = match room.graph.depth_for(&body.prev) {
            Ok(expected) if expected != body.depth => {
                MessageVerdict::Refused(GraphRefusal::WrongDepth { claimed: body.depth, expected })
            }
            _ => room.graph.check_message(&incoming.event.account, &body.prev),
        };
        match verdict {
            MessageVerdict::Accepted => out.push(Output::Message(Box::new(incoming))),
            MessageVerdict::SoftFailed if matches!(incoming.via, Via::CatchUp { .. }) => {
                out.push(Output::Message(Box::new(incoming)));
            }
            MessageVerdict::SoftFailed => {
                refuse(out, &incoming, "its author is not a member now", gossip.then_some(Verdict::Ignore));
            }
            MessageVerdict::Refused(refusal) => {
                refuse(out, &incoming, &refusal.to_string(), gossip.then_some(Verdict::Reject));
            }
            MessageVerdict::Missing(_) => {
                if first {
                    if gossip {
                        out.push(Output::Verdict(Verdict::Ignore));
                    }
                    if let Some(peer) = incoming.via.peer() {
                        out.push(Output::CatchUp { room: room_id, peer });
                    }
                }
                self.hold_message(incoming, now, out);
            }
        }
    }

    fn hold_message(&mut self, incoming: Incoming, now: Instant, out: &mut Vec<Output>) {
        if self.held_messages >= HELD_MESSAGES {
            refuse(out, &incoming, "too many messages wait for what they cite", None);
            return;
        }
        if let Some(room) = self.rooms.get_mut(&incoming.event.room) {
            room.held.push_back(HeldMessage { incoming, at: now });
            self.held_messages += 1;
        }
    }

    /// Takes in again the messages of `room` that wait, now that events came.
    fn release_messages(&mut self, room: EventId, out: &mut Vec<Output>) {
        let Some(held) = self.rooms.get_mut(&room).map(|r| std::mem::take(&mut r.held)) else { return };
        self.held_messages = self.held_messages.saturating_sub(held.len());
        for HeldMessage { incoming, at } in held {
            self.take_message(incoming, at, false, out);
        }
    }

    /// Gives up what waited too long.
    fn expire(&mut self, now: Instant, out: &mut Vec<Output>) {
        for (room_id, room) in &mut self.rooms {
            for id in room.pending.expire(now) {
                room.pending_bytes.remove(&id);
                out.push(Output::Refused { room: *room_id, id, reason: "what it cites never came".into() });
            }
            while let Some(first) = room.held.front()
                && now.saturating_duration_since(first.at) >= MESSAGE_WAIT
            {
                if let Some(held) = room.held.pop_front() {
                    self.held_messages = self.held_messages.saturating_sub(1);
                    out.push(Output::Refused {
                        room: *room_id,
                        id: held.incoming.event.id,
                        reason: "what it cites never came".into(),
                    });
                }
            }
        }
    }
}

/// Records that `incoming` was not taken, with its gossip verdict if one is due.
fn refuse(out: &mut Vec<Output>, incoming: &Incoming, reason: &str, verdict: Option<Verdict>) {
    if let Some(verdict) = verdict {
        out.push(Output::Verdict(verdict));
    }
    out.push(Output::Refused { room: incoming.event.room, id: incoming.event.id, reason: reason.to_string() });
}
/// `account`'s latest join of the room of `graph` (or its create), in the fold's order.
fn latest_join<'a>(graph: &'a RoomGraph, account: &AccountId) -> Option<&'a crate::room::GraphEvent> {
    graph
        .events()
        .filter(|e| e.author == *account && matches!(e.action, Action::Create | Action::Join))
        .max_by_key(|e| e.order_key())
}
