//! The room state of the node: the room engine, the topics this node is subscribed to, the rooms
//! each peer's user is in, the rooms' labels, catch-ups on their way and why each was sent
//! ([`SyncPurpose`], [`Paging`]), the highest message number taken in from each peer, messages
//! handed to the store and not kept yet and the gossip verdicts waiting for them, messages held
//! back for order, and events waiting for a member to be in reach or for a room being joined;
//! with the room helpers the adapters share (a room's topic, a room name typed by the user
//! checked, the command error).
//!
//! Only state and its own bookkeeping live here: this module never imports the event loop nor an
//! adapter file, never touches the swarm or the store, never decides a room rule (the engine
//! does) and never emits an event; the adapters are `node/rooms.rs`, `node/room_commands.rs`,
//! `node/room_directory.rs` and `node/room_sync.rs`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::gossipsub::{IdentTopic, MessageId, TopicHash};
use libp2p::request_response::OutboundRequestId;
use tokio::sync::oneshot;

use crate::account::AccountId;
use crate::node::client::RoomReply;
use crate::node::event::{ChatMessage, CommandError, ErrorCode};
use crate::protocol::presence::RoomRef;
use crate::protocol::sync::Mark;
use crate::recent::Recent;
use crate::room::engine::{Incoming, RoomEngine};
use crate::room::event as wire;
use crate::room::{EventId, Sequencer, check_room_name, normalise_room_name};
use crate::store::StoredMessage;

/// At most this many signed events wait per room for a member to be in reach, each at most
/// [`UNSENT_WAIT`]: they are for a connection whose subscriptions have not arrived yet. What was
/// written longer ago, or while alone, reaches the others by catch-up when they connect (as
/// history, not as a burst of live messages that their rate limits would refuse).
pub(crate) const MAX_UNSENT: usize = 1000;
pub(crate) const UNSENT_WAIT: Duration = Duration::from_secs(2);
/// Besides after every reconnection, each room is compared with one member this often.
pub(crate) const RESYNC_INTERVAL: Duration = Duration::from_secs(60);
/// How long a message that came before an earlier one of its sender waits for it.
const REORDER_WAIT: Duration = Duration::from_secs(2);
/// At most this many rooms' create events are remembered beside presence's word.
pub(crate) const MAX_CREATES_SEEN: usize = 64;
/// How long a join's catch-up holds off other catch-ups of the room at most.
pub(crate) const JOIN_CATCH_UP_HOLD: Duration = Duration::from_secs(60);
/// At most this many events heard on a room's topic wait for the room's events during a join.
pub(crate) const MAX_EARLY: usize = 1000;

/// A gossip message as gossipsub knows it: its id and the peer it came from.
pub(crate) type Gossip = (MessageId, PeerId);

/// The answer channel of a room command.
pub(crate) type RoomDone = oneshot::Sender<Result<RoomReply, CommandError>>;

/// Room state of the node.
pub(crate) struct Rooms {
    pub(crate) engine: RoomEngine,
    /// Rooms whose topic this node is subscribed to, by topic.
    pub(crate) topics: HashMap<TopicHash, EventId>,
    /// The rooms each peer's user is in, from presence.
    pub(crate) directory: HashMap<PeerId, Vec<RoomRef>>,
    /// Each room's label, worked out again when rooms come and go.
    pub(crate) labels: HashMap<EventId, String>,
    /// What the create events of rooms this node was asked to join and did not join say
    /// (name and creator), which presence had told otherwise: at most [`MAX_CREATES_SEEN`],
    /// the oldest let go first.
    pub(crate) creates_seen: Recent<EventId, (String, AccountId), MAX_CREATES_SEEN>,
    pub(crate) syncs: HashMap<OutboundRequestId, SyncPurpose>,
    /// Rooms already caught up from a peer in this run.
    pub(crate) synced: HashSet<(EventId, PeerId)>,
    /// Catch-ups on their way, by room and peer.
    pub(crate) catching_up: HashSet<(EventId, PeerId)>,
    /// How many pages of each catch-up the store worker is keeping: the next page is asked for
    /// while one is kept, not while two are.
    pub(crate) pages_keeping: HashMap<(EventId, PeerId), usize>,
    /// The next page of a catch-up, asked for once the store worker keeps one page of it only.
    pub(crate) next_pages: HashMap<(EventId, PeerId), Paging>,
    /// Rooms whose join's catch-up is running: the member it runs from, and since when. No
    /// other catch-up of such a room starts meanwhile (it would bring the same history again
    /// and show it as new); the join's own catch-up goes on to every other member in reach.
    pub(crate) joining: HashMap<EventId, (PeerId, Instant)>,
    /// The highest number of a message taken in from each peer in each room (this node's own
    /// among them): read once at start, then kept here as messages are taken in.
    pub(crate) kept_seq: HashMap<(EventId, PeerId), u64>,
    /// Messages handed to the store and not kept yet, by id: the same message arriving again
    /// meanwhile is not taken twice.
    pub(crate) taking: HashSet<EventId>,
    /// The gossip message being taken in (the id of its event), until its verdict is given (or
    /// left to the store).
    pub(crate) gossip_in_hand: Option<(EventId, Gossip)>,
    /// Gossip messages whose verdict waits for the store to say whether they are new, by the id
    /// of their event.
    pub(crate) verdicts: HashMap<EventId, Gossip>,
    /// Messages that came before earlier ones of the same sender, held back for order.
    pub(crate) order: Sequencer<(EventId, PeerId), (EventId, ChatMessage)>,
    /// Signed events published while no other member was on the topic, per room.
    pub(crate) unsent: HashMap<EventId, Vec<(Instant, Vec<u8>)>>,
    /// This user's rooms whose namesake the user was told about (once each: keyed by the own
    /// room only, so peers naming ever new namesakes cannot grow it).
    pub(crate) namesakes_told: HashSet<EventId>,
    /// What was heard on the topic of a room being joined before its events were in, taken
    /// in once they are.
    pub(crate) early: HashMap<EventId, Vec<Incoming>>,
}

impl Default for Rooms {
    fn default() -> Self {
        Rooms {
            engine: RoomEngine::default(),
            topics: HashMap::new(),
            directory: HashMap::new(),
            labels: HashMap::new(),
            creates_seen: Recent::default(),
            syncs: HashMap::new(),
            synced: HashSet::new(),
            catching_up: HashSet::new(),
            pages_keeping: HashMap::new(),
            next_pages: HashMap::new(),
            joining: HashMap::new(),
            kept_seq: HashMap::new(),
            taking: HashSet::new(),
            gossip_in_hand: None,
            verdicts: HashMap::new(),
            order: Sequencer::new(REORDER_WAIT),
            unsent: HashMap::new(),
            namesakes_told: HashSet::new(),
            early: HashMap::new(),
        }
    }
}

impl Rooms {
    /// Remembers what `room`'s create event says, the oldest such let go beyond
    /// [`MAX_CREATES_SEEN`].
    pub(crate) fn saw_create(&mut self, room: EventId, name: String, creator: AccountId) {
        self.creates_seen.insert(room, (name, creator));
    }

    /// Whether a join's catch-up of `room` is running (one started more than
    /// [`JOIN_CATCH_UP_HOLD`] ago no longer counts, whatever became of it).
    pub(crate) fn joining(&self, room: &EventId, now: Instant) -> bool {
        self.joining.get(room).is_some_and(|(_, since)| now.saturating_duration_since(*since) < JOIN_CATCH_UP_HOLD)
    }

    /// The catch-up of `room` from `peer` ended (or failed): another may start, and if it was
    /// the room's join's, other catch-ups of the room may start again.
    pub(crate) fn catch_up_ended(&mut self, room: &EventId, peer: &PeerId) {
        self.catching_up.remove(&(*room, *peer));
        if self.joining.get(room).is_some_and(|(from, _)| from == peer) {
            self.joining.remove(room);
        }
    }

    /// A page of the catch-up `key` is handed to the store worker: whether its next page may be
    /// asked for now (no earlier page of it is still being kept).
    pub(crate) fn keeping_page(&mut self, key: (EventId, PeerId)) -> bool {
        let keeping = self.pages_keeping.entry(key).or_insert(0);
        *keeping += 1;
        *keeping <= 1
    }

    /// A page of the catch-up `key` is kept: how many of its pages are still being kept.
    pub(crate) fn page_kept(&mut self, key: (EventId, PeerId)) -> usize {
        let keeping = self.pages_keeping.get(&key).map_or(0, |n| n.saturating_sub(1));
        if keeping == 0 {
            self.pages_keeping.remove(&key);
        } else {
            self.pages_keeping.insert(key, keeping);
        }
        keeping
    }

    /// The highest number of a message taken in from `peer` in `room` (0 when none).
    pub(crate) fn kept_seq(&self, room: &EventId, peer: &PeerId) -> u64 {
        self.kept_seq.get(&(*room, *peer)).copied().unwrap_or(0)
    }

    /// Message `seq` of `peer` in `room` was taken in.
    pub(crate) fn took(&mut self, room: EventId, peer: PeerId, seq: u64) {
        let kept = self.kept_seq.entry((room, peer)).or_insert(0);
        *kept = (*kept).max(seq);
    }

    /// The room a topic belongs to, if this node is subscribed to it.
    pub(crate) fn room_of_topic(&self, topic: &TopicHash) -> Option<EventId> {
        self.topics.get(topic).copied()
    }
}

pub(crate) fn topic(room: &EventId) -> IdentTopic {
    IdentTopic::new(wire::topic_name(room))
}

/// A kept message as users see it, in the room labelled `room`.
pub(crate) fn message_view(m: &StoredMessage, room: String) -> ChatMessage {
    ChatMessage {
        room,
        from: m.author.clone(),
        nick: m.nick.clone(),
        text: m.text.clone(),
        id: m.id.to_hex(),
        ts: m.ts_ms,
        unreadable: m.readable != crate::store::Readable::Read,
    }
}

pub(crate) fn error(code: ErrorCode, message: impl Into<String>) -> CommandError {
    CommandError::new(code, message)
}

/// Checks and normalises a room name typed by the user.
pub(crate) fn room_name(name: &str) -> Result<String, CommandError> {
    let room = normalise_room_name(name);
    check_room_name(&room).map_err(|e| error(ErrorCode::Usage, e.to_string()))?;
    Ok(room)
}

/// A catch-up in progress: what the first request said, and the cursors.
pub(crate) struct Paging {
    pub(crate) room: EventId,
    pub(crate) known: Vec<EventId>,
    pub(crate) marks: Vec<Mark>,
    pub(crate) after: Option<EventId>,
    pub(crate) messages_after: Option<Mark>,
    pub(crate) pages: usize,
    /// Which of its new messages are shown (the others are only kept, as history).
    pub(crate) show: Show,
    /// `/join`'s answer, given once the first page is in.
    pub(crate) join: Option<RoomDone>,
    /// A join's catch-up, with the join: once it ends, the room is caught up from the other
    /// members in reach too, each handed the join (the member that answered may lack messages
    /// that never reached it).
    pub(crate) then_others: Option<Box<wire::SignedEvent>>,
    /// The members a join was handed to in this `/join`, this one last (empty for other
    /// catch-ups): one that refuses it or fails is passed over for the next.
    pub(crate) handed: Vec<PeerId>,
}

/// Which new messages a catch-up shows; the others it only keeps, as history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Show {
    /// Every one written while this user was in the room (a catch-up of a room it is in):
    /// what cites its latest join. What comes from before it is history, kept and not shown,
    /// however late a catch-up brings it.
    All,
    /// Those written since this time, in ms since the epoch (a join's: the room's history is
    /// kept, but messages written after the join may come this way before gossip brings them).
    Since(u64),
    /// Those beyond this depth (the depth of this user's latest join): [`Show::All`] once the
    /// join is known.
    Beyond(u64),
}

impl Show {
    /// Whether an event written at `ts_ms`, citing control events up to `depth` - 1, is shown.
    pub(crate) fn covers(self, ts_ms: u64, depth: u64) -> bool {
        match self {
            Show::All => true,
            Show::Since(since) => ts_ms >= since,
            Show::Beyond(joined) => depth > joined,
        }
    }
}

/// A `/join`'s request for a room's heads and create: the room, the name and creator it was
/// found by (checked against its create; `None` when its create is known here), and the members
/// asked so far, the one asked now last.
pub(crate) struct HeadsAsk {
    pub(crate) room: EventId,
    pub(crate) claimed: Option<(String, AccountId)>,
    pub(crate) tried: Vec<PeerId>,
}

/// Why a catch-up request was sent.
pub(crate) enum SyncPurpose {
    /// `/join`: the room's heads, to cite in the join, and its create.
    Heads {
        ask: HeadsAsk,
        reply: RoomDone,
    },
    Page(Box<Paging>),
}

impl SyncPurpose {
    pub(crate) fn room(&self) -> EventId {
        match self {
            SyncPurpose::Heads { ask, .. } => ask.room,
            SyncPurpose::Page(paging) => paging.room,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_catch_up_shows_is_what_was_written_after_the_join_it_knows_of() {
        assert!(Show::All.covers(0, 0));
        assert!(Show::Since(1_000).covers(1_000, 0) && !Show::Since(1_000).covers(999, 99));
        // Joined at depth 40: what cites the join (depth 41 on) is shown, older history kept.
        assert!(Show::Beyond(40).covers(0, 41));
        assert!(!Show::Beyond(40).covers(u64::MAX, 40), "however late its clock says it was written");
    }

    #[test]
    fn a_join_holds_off_other_catch_ups_until_its_own_ends_or_for_a_minute_at_most() {
        let room = EventId::from_bytes([7; 32]);
        let (member, other) = (PeerId::random(), PeerId::random());
        let start = Instant::now();
        let mut rooms = Rooms::default();
        assert!(!rooms.joining(&room, start));
        rooms.joining.insert(room, (member, start));
        assert!(rooms.joining(&room, start + Duration::from_secs(1)));
        rooms.catch_up_ended(&room, &other);
        assert!(rooms.joining(&room, start + Duration::from_secs(1)), "another member's catch-up does not end it");
        assert!(!rooms.joining(&room, start + JOIN_CATCH_UP_HOLD), "held a minute at most, whatever became of it");
        rooms.catch_up_ended(&room, &member);
        assert!(!rooms.joining(&room, start));
    }

    #[test]
    fn a_next_page_is_asked_for_while_one_page_is_kept_not_two() {
        let key = (EventId::from_bytes([7; 32]), PeerId::random());
        let mut rooms = Rooms::default();
        assert!(rooms.keeping_page(key), "nothing kept before: the next page goes at once");
        assert!(!rooms.keeping_page(key), "the page before is still being kept: the next waits");
        assert_eq!(rooms.page_kept(key), 1);
        assert_eq!(rooms.page_kept(key), 0);
        assert!(rooms.pages_keeping.is_empty(), "nothing left behind once every page is kept");
        assert_eq!(rooms.page_kept(key), 0, "a page kept twice counts nothing below zero");
    }
}
