//! The node's side of rooms: one gossipsub topic per room, signed control events folded into
//! each room's [`RoomLog`], messages checked against membership, the room directory built from
//! presence, catch-up over `/meshchat/sync/2`, focus, mutes and history.
//!
//! Room state names accounts; this side turns them into the usernames users see, and the
//! usernames users type into accounts.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::gossipsub::{IdentTopic, MessageAcceptance, TopicHash};
use libp2p::request_response::{OutboundRequestId, ResponseChannel};

use tokio::sync::oneshot;

use super::client::{RoomCommand, RoomReply};
use super::event_loop::EventLoop;
use super::{CommandError, Focus};
use crate::account::{AccountId, same_name};
use crate::net::room_score;
use crate::protocol::room::{
    self as wire, Body, Cursor, Envelope, MAX_TEXT_BYTES, Payload, RoomDigest, SYNC_EVENTS, SYNC_MESSAGES, SyncRequest,
    SyncResponse, Verified,
};
use crate::room::{
    Action, Effect, RateLimit, Refusal, RoomEvent, RoomLog, Sequencer, check_room_name, normalise_room_name,
};
use crate::store::{NodeStore, StoreError, StoredMessage};
use crate::ui::{ChatMessage, ErrorCode, MemberView, NotificationKind, RoomSummary, UiEvent};

/// Messages `/history` shows when no count is given.
pub const DEFAULT_HISTORY: usize = 50;
/// Room messages a user may send at once, and then each second (every node enforces it).
pub const MESSAGE_BURST: u32 = 500;
pub const MESSAGES_PER_SEC: u32 = 100;
/// Control events (create, join, leave, kick, ban, unban, op) a user may make at once, and then
/// each second (every node enforces it): a person never needs more than a few a second.
pub const CONTROL_BURST: u32 = 20;
pub const CONTROLS_PER_SEC: u32 = 2;
/// How late a message may arrive, next to the ones sent before it, and still count as sent
/// within the limit (see [`RateLimit::on_arrival`]).
const ARRIVAL_JITTER: Duration = Duration::from_secs(1);
/// At most this many envelopes wait per room for a member to be in reach (catch-up brings the
/// rest).
const MAX_UNSENT: usize = 1000;
/// Besides after every reconnection, each room is compared with one member this often.
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(60);
/// How long a message that came before an earlier one of its sender waits for it.
const REORDER_WAIT: Duration = Duration::from_secs(2);
/// At most this many rooms are taken from one peer's presence.
const MAX_ROOMS_PER_PEER: usize = 256;

/// The answer channel of a room command.
type RoomDone = oneshot::Sender<Result<RoomReply, CommandError>>;

/// What became of a message taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intake {
    /// Kept (and shown, or held back for order).
    New,
    /// Kept before (another path, a replay).
    Known,
    /// Its author is not known here as a member (at its time, and now when it came live).
    NotMember,
}

/// Why a catch-up request was sent.
enum SyncPurpose {
    /// `/join`: finish joining when the room's events are in, then fetch the whole history.
    Join { room: String, reply: RoomDone },
    /// Catching up a room this user is in: its newest messages are shown.
    CatchUp { room: String },
    /// Catching up a room from the peer that passed on a live message whose author this node
    /// did not know as a member yet (its join came another way, later): as `CatchUp`.
    Early { room: String },
    /// An older page of a room's messages, kept without being shown. `to_the_end`: fetch every
    /// page (a joiner); otherwise stop at a page that brought nothing new.
    Older { room: String, to_the_end: bool },
}

impl SyncPurpose {
    fn room(&self) -> &str {
        match self {
            SyncPurpose::Join { room, .. }
            | SyncPurpose::CatchUp { room }
            | SyncPurpose::Early { room }
            | SyncPurpose::Older { room, .. } => room,
        }
    }
}

/// Room state of the node.
pub(super) struct Rooms {
    logs: HashMap<String, RoomLog>,
    /// Rooms whose topic this node is subscribed to, by topic.
    topics: HashMap<TopicHash, String>,
    muted: HashSet<String>,
    /// The rooms each peer's user is in, from presence.
    directory: HashMap<PeerId, Vec<String>>,
    /// The highest Lamport time seen per room.
    clocks: HashMap<String, u64>,
    syncs: HashMap<OutboundRequestId, SyncPurpose>,
    /// Rooms already caught up from a peer in this run.
    synced: HashSet<(String, PeerId)>,
    /// The number of this node's last message, per room.
    own_seq: HashMap<String, u64>,
    /// Messages that came before earlier ones of the same sender, held back for order.
    order: Sequencer<(String, PeerId), ChatMessage>,
    /// Live room messages this node's user sends.
    send_limit: RateLimit<AccountId>,
    /// Live room messages received, per user.
    arrival_limit: RateLimit<AccountId>,
    /// Control events this node's user makes.
    control_send_limit: RateLimit<AccountId>,
    /// Live control events received, per user.
    control_arrival_limit: RateLimit<AccountId>,
    /// Envelopes published while no other member was on the topic, per room.
    unsent: HashMap<String, Vec<Vec<u8>>>,
    /// Early catch-ups on their way, per room and peer: `true` when another message of an
    /// author not known as a member came from that peer meanwhile.
    early: HashMap<(String, PeerId), bool>,
}

impl Default for Rooms {
    fn default() -> Self {
        Rooms {
            logs: HashMap::new(),
            topics: HashMap::new(),
            muted: HashSet::new(),
            directory: HashMap::new(),
            clocks: HashMap::new(),
            syncs: HashMap::new(),
            synced: HashSet::new(),
            own_seq: HashMap::new(),
            order: Sequencer::new(REORDER_WAIT),
            send_limit: RateLimit::new(MESSAGE_BURST, MESSAGES_PER_SEC),
            arrival_limit: RateLimit::on_arrival(MESSAGE_BURST, MESSAGES_PER_SEC, ARRIVAL_JITTER),
            control_send_limit: RateLimit::new(CONTROL_BURST, CONTROLS_PER_SEC),
            control_arrival_limit: RateLimit::on_arrival(CONTROL_BURST, CONTROLS_PER_SEC, ARRIVAL_JITTER),
            unsent: HashMap::new(),
            early: HashMap::new(),
        }
    }
}

use crate::clock::now_ms;

fn topic(room: &str) -> IdentTopic {
    IdentTopic::new(wire::topic_name(room))
}

fn error(code: ErrorCode, message: impl Into<String>) -> CommandError {
    CommandError::new(code, message)
}

/// A refusal of the room state, as the error a user sees, with accounts called by `name_of`.
fn refusal_error(room: &str, refusal: Refusal, name_of: impl Fn(&AccountId) -> String) -> CommandError {
    let (code, message) = match &refusal {
        Refusal::Exists => (ErrorCode::RoomExists, refusal.to_string()),
        Refusal::NoSuchRoom => (ErrorCode::NoSuchRoom, refusal.to_string()),
        Refusal::Banned(who) => (ErrorCode::Banned, format!("{} is banned from the room", name_of(who))),
        Refusal::NotMember(who) => (ErrorCode::NotMember, format!("{} is not a member of the room", name_of(who))),
        Refusal::NotAdmin(who) => (ErrorCode::NotAdmin, format!("{} is not an admin of the room", name_of(who))),
        Refusal::TargetIsAdmin(who) => (ErrorCode::NotAdmin, format!("{} is an admin", name_of(who))),
        Refusal::AlreadyMember(who) => (ErrorCode::Usage, format!("{} is already a member", name_of(who))),
        Refusal::NotBanned(who) => (ErrorCode::Usage, format!("{} is not banned", name_of(who))),
    };
    error(code, format!("#{room}: {message}"))
}

/// Checks and normalises a room name typed by the user.
fn room_name(name: &str) -> Result<String, CommandError> {
    let room = normalise_room_name(name);
    check_room_name(&room).map_err(|e| error(ErrorCode::Usage, e.to_string()))?;
    Ok(room)
}

/// What a user sees of `effect` in `room`, with accounts called by `name_of`.
fn effect_event(room: &str, effect: Effect, name_of: impl Fn(&AccountId) -> String) -> UiEvent {
    let room = room.to_string();
    match effect {
        Effect::Created { user } => UiEvent::RoomCreated { room, user: name_of(&user) },
        Effect::Joined { user } => UiEvent::Joined { room, user: name_of(&user) },
        Effect::Left { user } => UiEvent::Left { room, user: name_of(&user) },
        Effect::Kicked { user, by } => UiEvent::Kicked { room, user: name_of(&user), by: name_of(&by) },
        Effect::Banned { user, by } => {
            UiEvent::Banned { room, user: name_of(&user), by: by.map(|by| name_of(&by)).unwrap_or_default() }
        }
        Effect::Unbanned { user, by } => {
            UiEvent::info(format!("{} may join #{room} again (unbanned by {})", name_of(&user), name_of(&by)))
        }
        Effect::Admin { user, by } => UiEvent::Admin { room, user: name_of(&user), by: by.map(|by| name_of(&by)) },
        Effect::Emptied => UiEvent::info(format!("#{room} has no members left and disappears")),
    }
}

impl Rooms {
    /// Rooms the account is a member of, sorted.
    pub(super) fn rooms_of(&self, user: &AccountId) -> Vec<String> {
        let mut rooms: Vec<String> =
            self.logs.iter().filter(|(_, log)| log.state().is_member(user)).map(|(room, _)| room.clone()).collect();
        rooms.sort();
        rooms
    }

    /// The room a topic belongs to, if this node is subscribed to it.
    pub(super) fn room_of_topic(&self, topic: &TopicHash) -> Option<String> {
        self.topics.get(topic).cloned()
    }

    pub(super) fn is_muted(&self, target: &str) -> bool {
        self.muted.contains(target)
    }
}

impl EventLoop {
    /// Loads the rooms and mutes kept in the node database.
    pub(super) fn load_rooms(&mut self) {
        match self.accounts.store().room_events() {
            Ok(events) => {
                for (room, event) in events {
                    let log = self.rooms.logs.entry(room.clone()).or_default();
                    let lamport = event.lamport;
                    log.insert(event);
                    let clock = self.rooms.clocks.entry(room).or_default();
                    *clock = (*clock).max(lamport);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot load rooms"),
        }
        match self.accounts.store().mutes() {
            Ok(mutes) => self.rooms.muted = mutes.into_iter().collect(),
            Err(e) => tracing::error!(error = %e, "cannot load mutes"),
        }
    }

    pub(super) fn me(&self) -> Option<String> {
        self.accounts.username().map(str::to_string)
    }

    /// The account this node is logged in as.
    fn my_account(&self) -> Result<AccountId, CommandError> {
        self.accounts.account().ok_or_else(|| error(ErrorCode::NotLoggedIn, "log in first: /login NAME"))
    }

    pub(super) fn logged_in(&self) -> Result<String, CommandError> {
        self.me().ok_or_else(|| error(ErrorCode::NotLoggedIn, "log in first: /login NAME"))
    }

    fn subscribe(&mut self, room: &str) {
        let topic = topic(room);
        if self.rooms.topics.insert(topic.hash(), room.to_string()).is_none() {
            let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
            if let Err(e) = gossipsub.set_topic_params(topic.clone(), room_score()) {
                tracing::error!(room, error = %e, "cannot score the room's topic");
            }
            if let Err(e) = gossipsub.subscribe(&topic) {
                tracing::error!(room, error = %e, "cannot subscribe");
            }
        }
    }

    fn unsubscribe(&mut self, room: &str) {
        let topic = topic(room);
        if self.rooms.topics.remove(&topic.hash()).is_some() {
            self.swarm.behaviour_mut().gossipsub.unsubscribe(&topic);
        }
        if self.focused_room() == Some(room) {
            self.focus = None;
        }
    }

    /// After a login: back into every room the user is a member of.
    pub(super) fn enter_rooms(&mut self) {
        let Some(me) = self.accounts.account() else { return };
        for room in self.rooms.rooms_of(&me) {
            self.subscribe(&room);
        }
    }

    /// After a logout: out of every topic (the memberships stay).
    pub(super) fn exit_rooms(&mut self) {
        let rooms: Vec<String> = self.rooms.topics.values().cloned().collect();
        for room in rooms {
            self.unsubscribe(&room);
        }
        self.focus = None;
    }

    /// The rooms of this user, for presence.
    pub(super) fn my_rooms(&self) -> Vec<String> {
        self.accounts.account().map(|me| self.rooms.rooms_of(&me)).unwrap_or_default()
    }

    /// A peer's presence named its rooms: keep them for the directory, and catch up the rooms
    /// this user shares with it.
    pub(super) fn peer_rooms(&mut self, peer: PeerId, rooms: Vec<String>) {
        let rooms: Vec<String> =
            rooms.into_iter().take(MAX_ROOMS_PER_PEER).filter(|r| check_room_name(r).is_ok()).collect();
        let mine = self.my_rooms();
        for room in rooms.iter().filter(|r| mine.contains(r)) {
            if self.rooms.synced.insert((room.clone(), peer)) {
                self.request_sync(peer, None, SyncPurpose::CatchUp { room: room.clone() });
            }
        }
        self.rooms.directory.insert(peer, rooms);
    }

    /// A peer's user is gone.
    pub(super) fn peer_rooms_gone(&mut self, peer: &PeerId) {
        self.rooms.directory.remove(peer);
        self.rooms.synced.retain(|(_, p)| p != peer);
    }

    /// Peers online whose user is in `room`.
    fn peers_in(&self, room: &str) -> Vec<PeerId> {
        self.rooms
            .directory
            .iter()
            .filter(|(peer, rooms)| rooms.iter().any(|r| r == room) && self.presence_knows(peer))
            .map(|(peer, _)| *peer)
            .collect()
    }

    /// Now and then: catch each room up from one member online, in case gossip missed
    /// something that no reconnection brought back.
    pub(super) fn resync_rooms(&mut self) {
        for room in self.my_rooms() {
            let peers = self.peers_in(&room);
            if !peers.is_empty() {
                let peer = peers[rand::random_range(0..peers.len())];
                self.request_sync(peer, None, SyncPurpose::CatchUp { room });
            }
        }
    }

    /// What this node has of `room`, for comparing with a member.
    fn room_digest(&self, room: &str) -> Option<RoomDigest> {
        let mut digest = self.accounts.store().message_digest(room).ok()?;
        if let Some(log) = self.rooms.logs.get(room) {
            log.events().iter().for_each(|event| digest.add_event(&event.id));
        }
        Some(digest)
    }

    fn request_sync(&mut self, peer: PeerId, before: Option<Cursor>, purpose: SyncPurpose) {
        let room = purpose.room().to_string();
        let have = if before.is_none() { self.room_digest(&room) } else { None };
        let request = SyncRequest { room, before, have };
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        self.rooms.syncs.insert(id, purpose);
    }

    fn next_lamport(&mut self, room: &str) -> u64 {
        let log_clock = self.rooms.logs.get(room).map_or(0, RoomLog::clock);
        let clock = self.rooms.clocks.entry(room.to_string()).or_default();
        *clock = (*clock).max(log_clock) + 1;
        *clock
    }

    /// The number of this node's next message in `room`, following what it kept before.
    fn next_message_seq(&mut self, room: &str) -> u64 {
        let last = match self.rooms.own_seq.get(room) {
            Some(last) => *last,
            None => self.last_seq_kept(room, &self.swarm.local_peer_id().to_bytes()),
        };
        self.rooms.own_seq.insert(room.to_string(), last + 1);
        last + 1
    }

    /// The number of the last message kept from `peer` in `room` (0 when none, or unreadable).
    fn last_seq_kept(&self, room: &str, peer: &[u8]) -> u64 {
        self.accounts.store().last_message_seq(room, peer).unwrap_or_else(|e| {
            tracing::error!(room, error = %e, "cannot read the last message number kept");
            0
        })
    }

    fn observe_lamport(&mut self, room: &str, lamport: u64) {
        let clock = self.rooms.clocks.entry(room.to_string()).or_default();
        *clock = (*clock).max(lamport);
    }

    /// Signs a new envelope for `room`.
    fn seal(&mut self, room: &str, payload: Payload) -> Result<(Envelope, Verified), CommandError> {
        let session = self.accounts.session().cloned().ok_or_else(|| error(ErrorCode::NotLoggedIn, "log in first"))?;
        let key =
            self.accounts.trusted_key().ok_or_else(|| error(ErrorCode::NoBootstrap, "no bootstrap key is trusted"))?;
        let seq = match payload {
            Payload::Message { .. } => self.next_message_seq(room),
            Payload::Control(_) => {
                if !self.rooms.control_send_limit.allow(session.certificate.body.account, Instant::now()) {
                    return Err(error(
                        ErrorCode::RateLimited,
                        format!(
                            "slow down: at most {CONTROLS_PER_SEC} room changes a second (bursts of {CONTROL_BURST})"
                        ),
                    ));
                }
                0
            }
        };
        let body = Body {
            room: room.to_string(),
            lamport: self.next_lamport(room),
            ts_ms: now_ms(),
            nonce: rand::random(),
            payload,
            seq,
        };
        let envelope = Envelope::seal(&self.key, &session.certificate, &body)
            .ok_or_else(|| error(ErrorCode::Internal, "cannot sign the event"))?;
        // Signed just now by this node: only the certificate needs checking.
        let local = *self.swarm.local_peer_id();
        let verified = envelope.check(&mut self.certs, &key, now_ms(), Some(local)).map_err(|e| {
            error(ErrorCode::NotLoggedIn, format!("your certificate does not check out ({e}); log in again"))
        })?;
        Ok((envelope, verified))
    }

    /// Publishes an encoded envelope on its room's topic. When gossipsub knows no other member
    /// on the topic yet (alone, cut off, or a connection whose subscriptions have not arrived),
    /// the envelope waits in the room's outbox and goes out when a member subscribes.
    fn publish(&mut self, room: &str, data: Vec<u8>) {
        if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(topic(room), data.clone()) {
            tracing::debug!(room, error = %e, "room event kept until a member is in reach");
            let unsent = self.rooms.unsent.entry(room.to_string()).or_default();
            if unsent.len() < MAX_UNSENT {
                unsent.push(data);
            }
        }
    }

    /// A control event this node has just sealed: taken in here, then published (one encoding
    /// for both).
    async fn take_own_control(&mut self, room: &str, verified: &Verified, action: Action, envelope: &Envelope) {
        let bytes = envelope.encode();
        self.ingest_control(room, verified, action, &bytes).await;
        self.publish(room, bytes);
    }

    /// A peer subscribed to a room's topic: what waited for someone to hear it goes out now.
    pub(super) fn room_subscriber(&mut self, subscribed: &TopicHash) {
        let Some(room) = self.rooms.room_of_topic(subscribed) else { return };
        for data in self.rooms.unsent.remove(&room).unwrap_or_default() {
            self.publish(&room, data);
        }
    }

    /// Folds a verified control event into its room; reports what changed.
    async fn ingest_control(&mut self, room: &str, verified: &Verified, action: Action, envelope: &[u8]) {
        if self.rooms.logs.get(room).is_some_and(|log| log.contains(&verified.id)) {
            return;
        }
        self.observe_lamport(room, verified.body.lamport);
        self.accounts.learn_label(verified.account, &verified.author, verified.serial);
        let event =
            RoomEvent { id: verified.id.clone(), lamport: verified.body.lamport, author: verified.account, action };
        if let Err(e) = self.accounts.store().save_room_event(room, &event, envelope) {
            tracing::error!(room, error = %e, "cannot keep a room event");
        }
        let effects = self.rooms.logs.entry(room.to_string()).or_default().insert(event);
        let me = self.accounts.account();
        let mut membership_changed = false;
        for effect in effects {
            let mine = match &effect {
                Effect::Kicked { user, .. } | Effect::Banned { user, .. } | Effect::Left { user } => me == Some(*user),
                Effect::Created { user } | Effect::Joined { user } => {
                    membership_changed |= me == Some(*user);
                    false
                }
                _ => false,
            };
            let event = effect_event(room, effect, |a| self.accounts.name_of(a));
            self.emit(event).await;
            if mine {
                membership_changed = true;
                self.unsubscribe(room);
            }
        }
        if membership_changed {
            self.announce();
        }
    }

    /// Takes in a verified message; `live` when it came by gossip rather than catch-up, `show`
    /// unless it is old history that is only kept.
    async fn ingest_message(
        &mut self,
        room: &str,
        verified: &Verified,
        text: String,
        envelope: &[u8],
        live: bool,
        show: bool,
    ) -> Intake {
        let author = &verified.author;
        let member = self
            .rooms
            .logs
            .get(room)
            .is_some_and(|log| log.accepts_message(&verified.account, verified.body.lamport, live));
        if !member {
            tracing::debug!(room, author, "message from an author not known as a member");
            return Intake::NotMember;
        }
        self.accounts.learn_label(verified.account, author, verified.serial);
        self.observe_lamport(room, verified.body.lamport);
        let stream = (room.to_string(), verified.peer);
        if live && !self.rooms.order.knows(&stream) {
            let shown = self.last_seq_kept(room, &verified.peer.to_bytes());
            self.rooms.order.start(stream.clone(), shown + 1);
        }
        let nick = self.nick_of(&verified.peer, &verified.account, author);
        let stored = StoredMessage {
            id: verified.id.clone(),
            room: room.to_string(),
            author: author.clone(),
            nick,
            text,
            ts_ms: verified.body.ts_ms,
            lamport: verified.body.lamport,
            peer: verified.peer.to_bytes(),
            seq: verified.body.seq,
        };
        // Heard live: taken in now and written a moment later with the next ones; a message
        // from catch-up or this node's own is written before it is shown.
        let kept = if live {
            self.accounts.store().keep_message_soon(stored.clone(), envelope.to_vec())
        } else {
            self.accounts.store().save_message(&stored, envelope)
        };
        match kept {
            // Seen before (another path, a replay): neither shown again nor passed on.
            Ok(false) => return Intake::Known,
            Ok(true) => {}
            Err(e) => tracing::error!(room, error = %e, "cannot keep a message"),
        }
        let message = chat_message(&stored);
        let ready = match (live, stored.seq) {
            (_, 0) => vec![message],
            (true, seq) => self.rooms.order.offer(stream, seq, message, Instant::now()),
            (false, seq) => {
                let mut ready = if show { vec![message] } else { Vec::new() };
                ready.extend(self.rooms.order.reached(stream, seq));
                ready
            }
        };
        for message in ready {
            self.show_message(message).await;
        }
        Intake::New
    }

    /// Takes in a message from a catch-up page (shown when `show`); whether it was new.
    async fn take_caught_up(&mut self, room: &str, v: &Verified, text: String, envelope: &[u8], show: bool) -> bool {
        self.ingest_message(room, v, text, envelope, false, show).await == Intake::New
    }

    /// Shows a room message, with a notification when it is someone else's in a room not muted.
    async fn show_message(&mut self, message: ChatMessage) {
        let from_me = self.me().is_some_and(|me| same_name(&me, &message.from));
        let room = message.room.clone();
        self.emit(UiEvent::Message(message)).await;
        if !from_me && !self.rooms.is_muted(&format!("#{room}")) {
            let focused = self.focused_room() == Some(room.as_str());
            self.emit(UiEvent::Notification { kind: NotificationKind::Room, room: Some(room), from: None, focused })
                .await;
        }
    }

    /// Shows the messages held back for a gap that did not fill in time.
    pub(super) async fn release_overdue_messages(&mut self) {
        if !self.rooms.order.is_holding() {
            return;
        }
        for message in self.rooms.order.expire(Instant::now()) {
            self.show_message(message).await;
        }
    }

    /// A gossip message on a room topic: whether gossipsub should pass it on (offer it to
    /// others).
    pub(super) async fn on_room_gossip(&mut self, room: &str, data: &[u8], source: PeerId) -> MessageAcceptance {
        let Some(key) = self.accounts.trusted_key() else { return MessageAcceptance::Ignore };
        let Ok(envelope) = Envelope::decode(data) else { return MessageAcceptance::Reject };
        // gossipsub hands this node each message once (its id is a hash of the bytes), unsigned:
        // the envelope's own signature is checked here, once per message rather than per copy.
        let verified = match envelope.check(&mut self.certs, &key, now_ms(), None) {
            Ok(v) if v.body.room == room => v,
            Ok(_) => return MessageAcceptance::Reject,
            Err(e) => {
                tracing::info!(room, error = %e, "room envelope refused");
                return MessageAcceptance::Reject;
            }
        };
        match verified.body.payload.clone() {
            Payload::Control(_) if !self.rooms.control_arrival_limit.allow(verified.account, Instant::now()) => {
                tracing::info!(room, author = verified.author, "room change over the rate limit refused");
                MessageAcceptance::Reject
            }
            Payload::Control(_) => match verified.control() {
                Some(action) => {
                    self.ingest_control(room, &verified, action, data).await;
                    MessageAcceptance::Accept
                }
                None => MessageAcceptance::Reject,
            },
            Payload::Message { text } => {
                if !self.rooms.arrival_limit.allow(verified.account, Instant::now()) {
                    tracing::info!(room, author = verified.author, "room message over the rate limit refused");
                    MessageAcceptance::Reject
                } else {
                    match self.ingest_message(room, &verified, text, data, true, true).await {
                        Intake::New => MessageAcceptance::Accept,
                        Intake::Known => MessageAcceptance::Ignore,
                        Intake::NotMember => {
                            // Its author's join may be on its way by another path, and gossipsub
                            // does not offer a message twice: the peer that passed it on took it
                            // in, so the room is caught up from there.
                            self.catch_up_early(room, source);
                            MessageAcceptance::Ignore
                        }
                    }
                }
            }
        }
    }

    /// Catches `room` up from `peer`, unless that is on its way already (then once more after).
    fn catch_up_early(&mut self, room: &str, peer: PeerId) {
        match self.rooms.early.get_mut(&(room.to_string(), peer)) {
            Some(again) => *again = true,
            None => {
                self.rooms.early.insert((room.to_string(), peer), false);
                self.request_sync(peer, None, SyncPurpose::Early { room: room.to_string() });
            }
        }
    }

    /// An early catch-up of `room` from `peer` ended; `fruitful` when it brought something new.
    /// When more early messages came meanwhile and this one helped, the room is caught up again.
    fn early_catch_up_done(&mut self, room: &str, peer: PeerId, fruitful: bool) {
        if self.rooms.early.remove(&(room.to_string(), peer)) == Some(true) && fruitful {
            self.catch_up_early(room, peer);
        }
    }

    /// A peer asks for a room's events and a page of its messages.
    pub(super) fn on_sync_request(&mut self, request: SyncRequest, channel: ResponseChannel<SyncResponse>) {
        let response = self.sync_answer(&request);
        if self.swarm.behaviour_mut().sync.send_response(channel, response).is_err() {
            tracing::debug!("a peer left before its catch-up answer");
        }
    }

    /// The answer to a catch-up request: nothing when the asking member has what this node
    /// has, else the events (first page only) and a page of messages.
    fn sync_answer(&self, request: &SyncRequest) -> SyncResponse {
        let room = request.room.as_str();
        if request.before.is_none()
            && request.have.is_some()
            && self.rooms.logs.contains_key(room)
            && request.have == self.room_digest(room)
        {
            return SyncResponse { events: Vec::new(), messages: Vec::new(), more: false };
        }
        let decode = |rows: Result<Vec<Vec<u8>>, StoreError>| match rows {
            Ok(rows) => rows.iter().filter_map(|b| Envelope::decode(b).ok()).collect::<Vec<_>>(),
            Err(e) => {
                tracing::error!(room, error = %e, "cannot read the room for a catch-up answer");
                Vec::new()
            }
        };
        let store = self.accounts.store();
        let events = match request.before {
            None => decode(store.room_event_envelopes(room, SYNC_EVENTS)),
            Some(_) => Vec::new(),
        };
        let messages = decode(store.message_envelopes_before(room, request.before.as_ref(), SYNC_MESSAGES));
        let more = messages.len() == SYNC_MESSAGES;
        SyncResponse { events, messages, more }
    }

    /// A catch-up answer arrived: its events and messages are verified and taken in (one
    /// database transaction for the page); older pages are asked for while they are wanted.
    pub(super) async fn on_sync_response(&mut self, peer: PeerId, id: OutboundRequestId, response: SyncResponse) {
        let Some(purpose) = self.rooms.syncs.remove(&id) else { return };
        let room = purpose.room().to_string();
        let mut oldest: Option<Cursor> = None;
        let mut new_messages = 0;
        let mut new_events = 0;
        if let Some(key) = self.accounts.trusted_key() {
            let now = now_ms();
            let batch = self.accounts.store().begin();
            if let Err(e) = &batch {
                // Still kept, one commit per row.
                tracing::warn!(room, error = %e, "cannot batch a catch-up page");
            }
            // What is here already is skipped before its signature is checked: a member that
            // sees every other member come online compares the room with each of them.
            let log = self.rooms.logs.get(&room);
            let unknown_events: Vec<&Envelope> = response
                .events
                .iter()
                .take(SYNC_EVENTS)
                .filter(|e| !e.id().is_some_and(|id| log.is_some_and(|log| log.contains(&id))))
                .collect();
            for envelope in unknown_events {
                let Ok(v) = envelope.check(&mut self.certs, &key, now, None) else { continue };
                if v.body.room != room {
                    continue;
                }
                if let Some(action) = v.control() {
                    self.ingest_control(&room, &v, action, &envelope.encode()).await;
                    new_events += 1;
                }
            }
            let store = self.accounts.store();
            let mut fresh = Vec::new();
            for envelope in response.messages.iter().take(SYNC_MESSAGES) {
                match envelope.cursor() {
                    // Known: only where it is counts, for asking for the page before it.
                    Some(cursor) if kept_here(store, &room, &cursor.id) => {
                        if oldest.as_ref().is_none_or(|o| cursor < *o) {
                            oldest = Some(cursor);
                        }
                    }
                    _ => fresh.push(envelope),
                }
            }
            let mut messages: Vec<(Verified, Vec<u8>)> = fresh
                .into_iter()
                .filter_map(|e| e.check(&mut self.certs, &key, now, None).ok().map(|v| (v, e.encode())))
                .filter(|(v, _)| v.body.room == room)
                .collect();
            messages.sort_by_key(|(v, _)| (v.body.lamport, v.body.ts_ms));
            let wanted = self.rooms.topics.values().any(|r| *r == room) || matches!(purpose, SyncPurpose::Join { .. });
            let show = matches!(purpose, SyncPurpose::CatchUp { .. } | SyncPurpose::Early { .. });
            for (v, bytes) in messages {
                let cursor = Cursor::of(&v);
                if oldest.as_ref().is_none_or(|o| cursor < *o) {
                    oldest = Some(cursor);
                }
                if let Payload::Message { text } = v.body.payload.clone()
                    && wanted
                    && self.take_caught_up(&room, &v, text, &bytes, show).await
                {
                    new_messages += 1;
                }
            }
            if batch.is_ok()
                && let Err(e) = self.accounts.store().commit()
            {
                tracing::error!(room, error = %e, "cannot keep a catch-up page");
            }
        }
        let to_the_end = match &purpose {
            SyncPurpose::Join { .. } => true,
            SyncPurpose::Older { to_the_end, .. } => *to_the_end,
            SyncPurpose::CatchUp { .. } | SyncPurpose::Early { .. } => false,
        };
        if let SyncPurpose::Early { room } = &purpose {
            self.early_catch_up_done(room, peer, new_events + new_messages > 0);
        }
        if let SyncPurpose::Join { room, reply } = purpose {
            let result = self.finish_join(&room).await;
            let _ = reply.send(result.map(|()| RoomReply::Done));
        }
        if response.more
            && (to_the_end || new_messages > 0)
            && let Some(before) = oldest
        {
            self.request_sync(peer, Some(before), SyncPurpose::Older { room, to_the_end });
        }
    }

    /// A catch-up request failed.
    pub(super) async fn on_sync_failure(&mut self, peer: PeerId, id: OutboundRequestId, reason: String) {
        match self.rooms.syncs.remove(&id) {
            Some(SyncPurpose::Join { room, reply }) => {
                self.unsubscribe(&room);
                let _ = reply
                    .send(Err(error(ErrorCode::NoSuchRoom, format!("cannot reach a member of #{room} ({reason})"))));
            }
            Some(SyncPurpose::Early { room }) => self.early_catch_up_done(&room, peer, false),
            _ => {}
        }
    }

    /// The focused room, if the focus is a room.
    pub(super) fn focused_room(&self) -> Option<&str> {
        match &self.focus {
            Some(Focus::Room(room)) => Some(room),
            _ => None,
        }
    }

    async fn set_focus(&mut self, room: &str) {
        self.focus = Some(Focus::Room(room.to_string()));
        self.emit(UiEvent::Focus { target: format!("#{room}") }).await;
    }

    /// Carries out a room command; `/join` answers later, after catch-up.
    pub(super) async fn room_command(&mut self, command: RoomCommand, reply: RoomDone) {
        let done = |r: Result<(), CommandError>| r.map(|()| RoomReply::Done);
        let result = match command {
            RoomCommand::Join(name) => return self.join_room(&name, reply).await,
            RoomCommand::Create(name) => done(self.create_room(&name).await),
            RoomCommand::Leave(room) => done(self.room_action(room.as_deref(), Action::Leave).await),
            RoomCommand::Kick { user, room } => done(self.admin_action(room.as_deref(), &user, Action::Kick).await),
            RoomCommand::Ban { user, room } => done(self.admin_action(room.as_deref(), &user, Action::Ban).await),
            RoomCommand::Unban { user, room } => done(self.admin_action(room.as_deref(), &user, Action::Unban).await),
            RoomCommand::Op { user, room } => done(self.admin_action(room.as_deref(), &user, Action::Op).await),
            RoomCommand::Members(room) => self.members(room.as_deref()),
            RoomCommand::List => Ok(self.room_list()),
            RoomCommand::Focus(room) => done(self.focus_room(&room).await),
            RoomCommand::Mute(target) => done(self.set_muted(target, true).await),
            RoomCommand::Unmute(target) => done(self.set_muted(target, false).await),
            RoomCommand::History(count) => self.history(count),
            RoomCommand::Say(text) => done(self.say(&text).await),
            RoomCommand::Send { room, text } => done(self.send_to_room(Some(&room), &text).await),
        };
        let _ = reply.send(result);
    }

    /// `/create`.
    pub(super) async fn create_room(&mut self, name: &str) -> Result<(), CommandError> {
        self.logged_in()?;
        let room = room_name(name)?;
        if !self.peers_in(&room).is_empty() {
            return Err(error(ErrorCode::RoomExists, format!("#{room} exists already: /join {room}")));
        }
        let (envelope, verified) = self.seal(&room, Payload::Control(Action::Create))?;
        let event = RoomEvent {
            id: verified.id.clone(),
            lamport: verified.body.lamport,
            author: verified.account,
            action: Action::Create,
        };
        if let Some(log) = self.rooms.logs.get(&room) {
            log.state().check(&event).map_err(|r| refusal_error(&room, r, |a| self.accounts.name_of(a)))?;
        }
        self.subscribe(&room);
        self.take_own_control(&room, &verified, Action::Create, &envelope).await;
        self.set_focus(&room).await;
        Ok(())
    }

    /// `/join`: fetches the room from a member, then joins.
    pub(super) async fn join_room(&mut self, name: &str, reply: RoomDone) {
        let result = (|| {
            let me = self.my_account()?;
            let room = room_name(name)?;
            Ok::<_, CommandError>((me, room))
        })();
        let (me, room) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if self.rooms.logs.get(&room).is_some_and(|log| log.state().is_member(&me)) {
            self.subscribe(&room);
            self.set_focus(&room).await;
            let _ = reply.send(Ok(RoomReply::Done));
            return;
        }
        // A member this node is connected to answers at once; one it cannot reach would only
        // make the join wait for a time-out.
        let members = self.peers_in(&room);
        let Some(peer) = members.iter().find(|p| self.swarm.is_connected(p)).or(members.first()).copied() else {
            let _ =
                reply.send(Err(error(ErrorCode::NoSuchRoom, format!("no room #{room} (no member of it is online)"))));
            return;
        };
        self.subscribe(&room);
        self.request_sync(peer, None, SyncPurpose::Join { room: room.clone(), reply });
    }

    async fn finish_join(&mut self, room: &str) -> Result<(), CommandError> {
        let me = self.my_account()?;
        let state = self.rooms.logs.get(room).map(|l| l.state().clone()).unwrap_or_default();
        if state.is_member(&me) {
            self.set_focus(room).await;
            return Ok(());
        }
        let outcome = async {
            if !state.exists() {
                return Err(error(ErrorCode::NoSuchRoom, format!("no room #{room}")));
            }
            let (envelope, verified) = self.seal(room, Payload::Control(Action::Join))?;
            let event =
                RoomEvent { id: verified.id.clone(), lamport: verified.body.lamport, author: me, action: Action::Join };
            state.check(&event).map_err(|r| refusal_error(room, r, |a| self.accounts.name_of(a)))?;
            self.take_own_control(room, &verified, Action::Join, &envelope).await;
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {
                self.set_focus(room).await;
                Ok(())
            }
            Err(e) => {
                self.unsubscribe(room);
                Err(e)
            }
        }
    }

    /// The room a command names, or the focused one; the user must be a member.
    fn member_room(&self, name: Option<&str>) -> Result<(AccountId, String), CommandError> {
        let me = self.my_account()?;
        let room = match name {
            Some(name) => room_name(name)?,
            None => self
                .focused_room()
                .map(str::to_string)
                .ok_or_else(|| error(ErrorCode::Usage, "name a room, or /join one first"))?,
        };
        if !self.rooms.logs.get(&room).is_some_and(|l| l.state().is_member(&me)) {
            return Err(error(ErrorCode::NotMember, format!("you are not a member of #{room}")));
        }
        Ok((me, room))
    }

    /// `/kick`, `/ban`, `/unban`, `/op` of `user` (a username, any case).
    async fn admin_action(
        &mut self,
        name: Option<&str>,
        user: &str,
        action: impl FnOnce(AccountId) -> Action,
    ) -> Result<(), CommandError> {
        let (_, room) = self.member_room(name)?;
        let target = self.account_named(&room, user.trim_start_matches('@'))?;
        self.room_action(Some(&room), action(target)).await
    }

    /// The account `user` (any case) names in `room`: a member or someone banned there by that
    /// name, else the one known to go by it (online, or seen before).
    fn account_named(&self, room: &str, user: &str) -> Result<AccountId, CommandError> {
        let state = self.rooms.logs.get(room).map(RoomLog::state);
        let in_room = state.into_iter().flat_map(|s| s.members().iter().map(|m| m.user).chain(s.banned()));
        let named = |account: &AccountId| same_name(&self.accounts.name_of(account), user);
        let found = in_room.filter(named).collect::<Vec<_>>();
        if let [only] = found[..] {
            return Ok(only);
        }
        self.account_called(user)
    }

    /// `/leave`, `/kick`, `/ban`, `/unban`, `/op`: a control event by this user.
    pub(super) async fn room_action(&mut self, name: Option<&str>, action: Action) -> Result<(), CommandError> {
        let (me, room) = self.member_room(name)?;
        let (envelope, verified) = self.seal(&room, Payload::Control(action.clone()))?;
        let event =
            RoomEvent { id: verified.id.clone(), lamport: verified.body.lamport, author: me, action: action.clone() };
        if let Some(log) = self.rooms.logs.get(&room) {
            log.state().check(&event).map_err(|r| refusal_error(&room, r, |a| self.accounts.name_of(a)))?;
        }
        self.take_own_control(&room, &verified, action.clone(), &envelope).await;
        if action == Action::Leave {
            self.unsubscribe(&room);
            self.announce();
        }
        Ok(())
    }

    /// Plain text: to the focused room or conversation.
    pub(super) async fn say(&mut self, text: &str) -> Result<(), CommandError> {
        self.logged_in()?;
        match self.focus.clone() {
            None => Err(error(ErrorCode::Usage, "nowhere to send it: /join a room (or /create one), or /query a user")),
            Some(Focus::Room(_)) => self.send_to_room(None, text).await,
            Some(Focus::User(user)) => self.send_dm_to_known(user, text).await,
        }
    }

    /// A message to `room` (default: the focused one).
    pub(super) async fn send_to_room(&mut self, name: Option<&str>, text: &str) -> Result<(), CommandError> {
        let (_, room) = self.member_room(name)?;
        if text.len() > MAX_TEXT_BYTES {
            return Err(error(
                ErrorCode::TooLong,
                format!("a message is at most {MAX_TEXT_BYTES} bytes; this one is {}", text.len()),
            ));
        }
        let me = self.my_account()?;
        if !self.rooms.send_limit.allow(me, Instant::now()) {
            return Err(error(
                ErrorCode::RateLimited,
                format!("slow down: at most {MESSAGES_PER_SEC} room messages a second (bursts of {MESSAGE_BURST})"),
            ));
        }
        let (envelope, verified) = self.seal(&room, Payload::Message { text: text.to_string() })?;
        // Out first, then kept and shown here: the others need not wait for this node's disk.
        let bytes = envelope.encode();
        self.publish(&room, bytes.clone());
        self.hand_over().await;
        self.ingest_message(&room, &verified, text.to_string(), &bytes, false, true).await;
        Ok(())
    }

    /// `/members`.
    pub(super) fn members(&self, name: Option<&str>) -> Result<RoomReply, CommandError> {
        let room = match name {
            Some(name) => room_name(name)?,
            None => self
                .focused_room()
                .map(str::to_string)
                .ok_or_else(|| error(ErrorCode::Usage, "name a room, or /join one first"))?,
        };
        let log = self.rooms.logs.get(&room).filter(|l| l.state().exists());
        let log =
            log.ok_or_else(|| error(ErrorCode::NoSuchRoom, format!("#{room} is not known here: /join it first")))?;
        let members = log
            .state()
            .members()
            .iter()
            .map(|m| MemberView { user: self.accounts.name_of(&m.user), admin: m.admin })
            .collect();
        Ok(RoomReply::Members { room, members })
    }

    /// `/rooms`: the rooms online users are in.
    pub(super) fn room_list(&self) -> RoomReply {
        let mut rooms: HashMap<String, HashSet<String>> = HashMap::new();
        for (peer, names) in &self.rooms.directory {
            if let Some(user) = self.presence_user(peer) {
                for room in names {
                    rooms.entry(room.clone()).or_default().insert(user.clone());
                }
            }
        }
        if let (Some(me), Some(account)) = (self.me(), self.accounts.account()) {
            for room in self.rooms.rooms_of(&account) {
                rooms.entry(room).or_default().insert(me.clone());
            }
        }
        let mut list: Vec<RoomSummary> = rooms
            .into_iter()
            .map(|(room, online)| {
                let members = self
                    .rooms
                    .logs
                    .get(&room)
                    .filter(|l| l.state().exists())
                    .map_or(online.len(), |l| l.state().members().len());
                RoomSummary { room, members }
            })
            .collect();
        list.sort_by(|a, b| a.room.cmp(&b.room));
        RoomReply::Rooms(list)
    }

    /// `/focus ROOM`.
    pub(super) async fn focus_room(&mut self, name: &str) -> Result<(), CommandError> {
        let (_, room) = self.member_room(Some(name))?;
        self.set_focus(&room).await;
        Ok(())
    }

    /// `/mute`, `/unmute` (`#room` or `@user`).
    pub(super) async fn set_muted(&mut self, target: String, muted: bool) -> Result<(), CommandError> {
        // A user is muted by account (kept as `@` and the id), shown by name.
        let (key, target) = match target.strip_prefix('@') {
            Some(user) => {
                let account = self.account_called(user)?;
                (format!("@{account}"), format!("@{}", self.accounts.name_of(&account)))
            }
            None => {
                let room = format!("#{}", room_name(&target)?);
                (room.clone(), room)
            }
        };
        if let Err(e) = self.accounts.store().set_muted(&key, muted) {
            return Err(error(ErrorCode::Internal, format!("cannot save the mute: {e}")));
        }
        if muted {
            self.rooms.muted.insert(key);
            self.emit(UiEvent::Muted { target }).await;
        } else {
            self.rooms.muted.remove(&key);
            self.emit(UiEvent::Unmuted { target }).await;
        }
        Ok(())
    }

    /// `/history [N]` for the focused room or conversation.
    pub(super) fn history(&self, count: Option<usize>) -> Result<RoomReply, CommandError> {
        let count = count.unwrap_or(DEFAULT_HISTORY);
        let room = match &self.focus {
            None => {
                return Err(error(ErrorCode::Usage, "/history shows the focused room or conversation: /focus one"));
            }
            Some(Focus::User(user)) => return self.dm_history(user, count),
            Some(Focus::Room(room)) => room.clone(),
        };
        let messages = self
            .accounts
            .store()
            .recent_messages(&room, count)
            .map_err(|e| error(ErrorCode::Internal, e.to_string()))?;
        let messages = messages.iter().map(|m| UiEvent::Message(chat_message(m))).collect();
        Ok(RoomReply::History { target: format!("#{room}"), messages })
    }
}

/// Whether message `id` of `room` is kept here. One that cannot be looked up is taken as new:
/// it is then checked in full, the safe side.
fn kept_here(store: &NodeStore, room: &str, id: &str) -> bool {
    store.knows_message(id).unwrap_or_else(|e| {
        tracing::warn!(room, error = %e, "cannot look a message up");
        false
    })
}

fn chat_message(m: &StoredMessage) -> ChatMessage {
    ChatMessage {
        room: m.room.clone(),
        from: m.author.clone(),
        nick: m.nick.clone(),
        text: m.text.clone(),
        id: m.id.clone(),
        ts: m.ts_ms,
    }
}
