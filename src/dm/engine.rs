//! The direct-message engine: a node's side of `/meshchat/dm/2` as a state machine without I/O.
//!
//! [`DmEngine::handle`] takes an [`Input`] (a message this user wrote, a request whose sender's
//! certificate checked out, a receipt, a refusal or a failure, a receiver heard online, a tick,
//! or rows the node read from its database when the engine asked) and returns [`Output`]s —
//! send this message to this peer, answer this request, keep or mark these rows, read these
//! rows, show this — that the node carries out in their order. The node's database does its
//! writes and reads in the order asked, and what an output reads or writes
//! ([`Output::Keep`], [`Output::ReadOutbox`], …) comes back as an input later: other inputs (a
//! receipt, a request, a tick) may come between, and the engine keeps what it needs to take
//! them in that order. It must never import tokio, the libp2p swarm or rusqlite, and never reads
//! a clock.
//!
//! Rules:
//! - an outgoing message to an online receiver with nothing older waiting and nothing in flight
//!   goes out at once ([`Output::Send`] comes before [`Output::Keep`]: out first, then kept);
//!   any other is kept first and waits its turn in the outbox. Either way it is shown once kept
//!   (a message that goes out at once is shown even if it could not be kept: it is on its way);
//! - a message stays in the outbox until its receipt comes; for each receiver one message is in
//!   flight at a time, oldest first, so messages arrive in order. A receipt is shown, then
//!   noted; one that comes before its message is kept is noted at once and shown once the
//!   message is (after it); one kept for a receiver who is offline is also left at a mailbox
//!   ([`Output::Leave`]);
//! - the outbox of a receiver is looked at when their presence is heard, after a receipt, after
//!   a message to them is kept, and for everyone on a tick (the presence timer, a login); one
//!   read at a time per receiver (and one of whom messages wait for), read again when a message
//!   to them was kept meanwhile, so a read never hides a message written after it was asked;
//! - a received message is new, a duplicate (a retry whose receipt was lost: confirmed again,
//!   shown no more) or stale (a new id numbered at or below one received: refused), by
//!   [`dm::arrival`]; a new one is kept before its receipt goes back, and shown after. The same
//!   message again while it is being kept is confirmed with it (and not shown again); an older
//!   one from the same sender and peer meanwhile is stale. Ids are the sender's: a message is
//!   known by its sender and id, and one the database had kept already is not shown again. A message that came in a letter from
//!   a mailbox is taken only in its sender's order (the next number, or the first): else it
//!   stays at the mailbox for now (answered `Unavailable`), and comes straight or later;
//! - a sender may send at most [`ARRIVAL_BURST`] messages at once, then [`ARRIVALS_PER_SEC`] a
//!   second (far beyond anyone typing or pasting): beyond that a message is answered
//!   `Unavailable`, neither read about, kept nor shown, and stays in the sender's outbox (or at
//!   the mailbox) for later. What this run cannot decide of a request is read
//!   ([`Output::ReadSeen`]) only once the sender is within its rate. A letter taken before, or
//!   one out of turn, spends nothing of it (letters come at the receiver's pace, so a mailbox
//!   replaying them cannot hold the sender up).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use libp2p::PeerId;

use super::StoredDm;
use crate::account::AccountId;
use crate::protocol::dm::{self, Arrival, CheckedDm, DmRefusal, DmRequest, DmResponse};
use crate::rate_limit::RateLimit;

/// The most messages (straight or in letters) one sender's account may send at once.
pub const ARRIVAL_BURST: u32 = 200;
/// How many more messages a sender may send each second once the burst is spent.
pub const ARRIVALS_PER_SEC: u32 = 20;

/// A message on its way, as the engine numbers it (the node maps it to its request id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flight(pub u64);

/// A request waiting for its answer, as the node numbers it (it holds the channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel(pub u64);

/// What the node read about a received message's sender and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Whether a message with this id is kept already.
    pub known: bool,
    /// The highest number kept from this sender on this peer.
    pub last_seq: Option<u64>,
}

/// A request whose sender's certificate checked out, addressed to this node's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Where the answer goes.
    pub channel: Channel,
    /// The peer it came from.
    pub peer: PeerId,
    /// This node's user: account and username.
    pub owner: AccountId,
    pub me: String,
    /// The sender, from its certificate.
    pub sender: CheckedDm,
    pub request: DmRequest,
    /// What is known of it: from this run, when that decides it; else `None` in
    /// [`Input::Request`] (to be read, [`Output::ReadSeen`]) and in [`Input::Read`] when the
    /// database could not be read.
    pub seen: Option<Seen>,
    /// It came in a letter from a mailbox, not straight from its sender.
    pub letter: bool,
}

/// What the engine is told.
#[derive(Debug, Clone)]
pub enum Input {
    /// This user wrote `dm` (numbered, not kept yet) to `dm.other`; `peer`: where the receiver
    /// is online; `older_waiting`: whether older messages to them wait in the outbox (read only
    /// when [`DmEngine::may_wait`] says some may).
    Send { dm: Box<StoredDm>, peer: Option<PeerId>, older_waiting: bool },
    /// [`Output::Keep`] was carried out: whether message `id` is kept.
    Kept { id: String, ok: bool },
    /// A request came (see [`Received`]); a sender beyond its rate is refused before anything
    /// is read for it.
    Request(Box<Received>),
    /// What [`Output::ReadSeen`] read of a request.
    Read(Box<Received>),
    /// [`Output::KeepReceived`] was carried out: whether the message of `channel` is kept, and
    /// whether it was kept already (the same id from the same sender came before: a duplicate,
    /// confirmed and not shown again).
    KeptReceived { channel: Channel, ok: bool, known: bool },
    /// The receiver answered `flight`.
    Response { flight: Flight, response: DmResponse },
    /// `flight` got no answer (the connection failed, timed out, or never was).
    Failed { flight: Flight, reason: String },
    /// The presence of `account` was heard (they came online, or announced themselves again).
    Online { account: AccountId },
    /// The presence timer, or a login: the whole outbox is looked at again.
    Tick,
    /// What [`Output::ReadWaiting`] read: the receivers messages wait for (`None`: it could not
    /// be read).
    Waiting(Option<Vec<AccountId>>),
    /// What [`Output::ReadOutbox`] read: the oldest message waiting for `to`, and where `to` is
    /// online now (`None`: offline, nothing goes).
    Oldest { to: AccountId, peer: Option<PeerId>, dm: Option<Box<StoredDm>> },
}

/// What to show the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Show {
    /// A message kept: one this user wrote, or one received (with a notification unless
    /// muted).
    Dm(StoredDm),
    /// The receipt of message `id` to the user `to`.
    Delivered { id: String, to: String },
    /// The receiver `to` is offline: the message waits.
    Offline { to: String },
    /// `to` refused a message; it stays in the outbox.
    Refused { to: String, refusal: DmRefusal },
}

/// What the node should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `dm` to `peer` as `flight`, with this user's certificate; should it not go at all,
    /// tell the engine with [`Input::Failed`].
    Send { flight: Flight, peer: PeerId, dm: StoredDm },
    /// Answer the request held as `channel`.
    Answer { channel: Channel, response: DmResponse },
    /// Keep a message this user wrote, then tell the engine with [`Input::Kept`].
    Keep(StoredDm),
    /// Keep a message received from `peer` with its sender's number, then tell the engine with
    /// [`Input::KeptReceived`].
    KeepReceived { channel: Channel, dm: StoredDm, peer: PeerId },
    /// Note that the receiver confirmed message `id` of `owner` to `to` (no answer needed).
    MarkDelivered { owner: AccountId, to: AccountId, id: String },
    /// Read the oldest message waiting for `to` and where `to` is online, and tell the engine
    /// with [`Input::Oldest`] (always: offline too).
    ReadOutbox { to: AccountId },
    /// Read whom messages wait for, and tell the engine with [`Input::Waiting`].
    ReadWaiting,
    /// Read what the database says of this request (whether its id is kept, the sender's last
    /// number), and hand it back with [`Input::Read`].
    ReadSeen(Box<Received>),
    /// Show this to the user.
    Show(Show),
    /// Message `id` could not be kept and did not go out: it is lost, and the command that
    /// wrote it fails.
    Lost { id: String },
    /// Also leave this message, kept for a receiver who is offline, at a mailbox (it stays in
    /// the outbox all the same, until its receipt comes).
    Leave(StoredDm),
    /// For the log: a message to `to` did not get through, and stays in the outbox.
    Stays { to: String, why: String },
}

/// A message on its way.
#[derive(Debug, Clone)]
struct InFlight {
    id: String,
    /// The user who wrote it.
    owner: AccountId,
    /// The receiver's account and its name when the message was written.
    to: AccountId,
    to_name: String,
}

/// A message this user wrote, not kept yet.
#[derive(Debug, Clone)]
struct Unkept {
    dm: StoredDm,
    /// Whether it went out at once.
    sent: bool,
    /// Whether its receiver was offline.
    offline: bool,
    /// Whether its receipt came already (shown once it is kept).
    receipt: bool,
}

/// A received message being kept.
#[derive(Debug, Clone)]
struct Arriving {
    dm: StoredDm,
    peer: PeerId,
    /// Requests of the same message that came meanwhile: answered as it is.
    again: Vec<Channel>,
}

/// The messages each sender's account may still send now (see [`ARRIVAL_BURST`]).
#[derive(Debug)]
struct Arrivals(RateLimit<AccountId>);

impl Default for Arrivals {
    fn default() -> Self {
        Arrivals(RateLimit::new(ARRIVAL_BURST, ARRIVALS_PER_SEC))
    }
}

/// A node's direct messages in flight, and what it knows of its outbox.
#[derive(Debug, Default)]
pub struct DmEngine {
    /// Each message in flight.
    in_flight: HashMap<Flight, InFlight>,
    /// Receivers with a message in flight, and which.
    busy: HashMap<AccountId, Flight>,
    next_flight: u64,
    /// The number of the last message written in each conversation (owner, other), learnt
    /// from the messages written here (the node reads the first from its database).
    last_seq: HashMap<(AccountId, AccountId), u64>,
    /// Receivers that may have messages waiting in the outbox besides the one in flight, read
    /// at each tick; `None` until then (any may).
    waiting: Option<HashSet<AccountId>>,
    /// Receivers whose outbox is being read, and whether to read it again once that comes.
    reading: HashMap<AccountId, bool>,
    /// While whom messages wait for is being read: the receivers found waiting meanwhile.
    reading_waiting: Option<HashSet<AccountId>>,
    /// Messages this user wrote that are being kept, by id.
    unkept: HashMap<String, Unkept>,
    /// Received messages being kept, by the channel of their answer.
    arriving: HashMap<Channel, Arriving>,
    /// How many messages each sender may still send now.
    arrivals: Arrivals,
}

impl DmEngine {
    /// Takes `input` in at `now` (the time counts only for how many messages a sender may
    /// send); what the node should do, in order.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Send { dm, peer, older_waiting } => self.send(*dm, peer, older_waiting, &mut out),
            Input::Kept { id, ok } => self.kept(&id, ok, &mut out),
            Input::Request(received) => self.requested(received, now, &mut out),
            Input::Read(received) => self.arrived(*received, &mut out),
            Input::KeptReceived { channel, ok, known } => self.kept_received(channel, ok, known, &mut out),
            Input::Response { flight, response } => self.answered(flight, response, &mut out),
            Input::Failed { flight, reason } => {
                if let Some(flight) = self.land(flight) {
                    self.now_waiting(flight.to);
                    out.push(Output::Stays { to: flight.to_name, why: reason });
                }
            }
            Input::Online { account } => self.pump(account, &mut out),
            Input::Tick => {
                if self.reading_waiting.is_none() {
                    self.reading_waiting = Some(HashSet::new());
                    out.push(Output::ReadWaiting);
                }
            }
            Input::Waiting(Some(mut receivers)) => {
                for receiver in self.reading_waiting.take().unwrap_or_default() {
                    if !receivers.contains(&receiver) {
                        receivers.push(receiver);
                    }
                }
                self.waiting = Some(receivers.iter().copied().collect());
                for receiver in receivers {
                    self.pump(receiver, &mut out);
                }
            }
            Input::Waiting(None) => {
                self.reading_waiting = None;
                self.waiting = None;
            }
            Input::Oldest { to, peer, dm } => self.oldest(to, peer, dm.map(|dm| *dm), &mut out),
        }
        out
    }

    /// The oldest message waiting for `to` was read: it goes out when `to` is online and has none
    /// in flight. None waiting: `to` is waiting for nothing, unless a message to them was kept
    /// since the read was asked; then it is read again.
    fn oldest(&mut self, to: AccountId, peer: Option<PeerId>, dm: Option<StoredDm>, out: &mut Vec<Output>) {
        let again = self.reading.remove(&to).unwrap_or(false);
        match (dm, peer) {
            (Some(dm), Some(peer)) => {
                if !self.busy.contains_key(&to) {
                    let flight = self.take_off(&dm);
                    out.push(Output::Send { flight, peer, dm });
                }
            }
            // Offline: it waits for their presence.
            (Some(_), None) => {}
            (None, _) => {
                if !again && let Some(waiting) = &mut self.waiting {
                    waiting.remove(&to);
                }
            }
        }
        if again && peer.is_some() {
            self.pump(to, out);
        }
    }

    // Queries.

    /// Whether messages to `to` may be waiting in the outbox: when not, a message to them need
    /// not look there before it goes out.
    pub fn may_wait(&self, to: &AccountId) -> bool {
        self.waiting.as_ref().is_none_or(|waiting| waiting.contains(to))
    }

    /// The number of the last message `owner` wrote to `other`, if known here.
    pub fn last_seq(&self, owner: &AccountId, other: &AccountId) -> Option<u64> {
        self.last_seq.get(&(*owner, *other)).copied()
    }

    /// `owner`'s last message to `other` (kept in the database) is number `last`: the next is
    /// numbered after it.
    pub fn numbered(&mut self, owner: AccountId, other: AccountId, last: u64) {
        let known = self.last_seq.entry((owner, other)).or_insert(last);
        *known = (*known).max(last);
    }

    /// The message in flight to `to`, if any: its flight and id.
    pub fn in_flight_to(&self, to: &AccountId) -> Option<(Flight, &str)> {
        let flight = *self.busy.get(to)?;
        self.in_flight.get(&flight).map(|f| (flight, f.id.as_str()))
    }

    /// Whether a message this user wrote is still being kept.
    pub fn keeping(&self) -> bool {
        !self.unkept.is_empty()
    }

    /// How many messages are in flight.
    pub fn flights(&self) -> usize {
        self.in_flight.len()
    }

    // Sending.

    fn send(&mut self, dm: StoredDm, peer: Option<PeerId>, older_waiting: bool, out: &mut Vec<Output>) {
        self.last_seq.insert((dm.owner, dm.other), dm.seq);
        let at_once = match peer {
            Some(peer) if !older_waiting && !self.busy.contains_key(&dm.other) => Some(peer),
            _ => None,
        };
        match at_once {
            Some(peer) => {
                let flight = self.take_off(&dm);
                out.push(Output::Send { flight, peer, dm: dm.clone() });
            }
            // It waits in the outbox from now on: nothing later may overtake it while it is
            // being kept.
            None => self.now_waiting(dm.other),
        }
        out.push(Output::Keep(dm.clone()));
        let unkept = Unkept { dm, sent: at_once.is_some(), offline: peer.is_none(), receipt: false };
        self.unkept.insert(unkept.dm.id.clone(), unkept);
    }

    fn kept(&mut self, id: &str, ok: bool, out: &mut Vec<Output>) {
        let Some(Unkept { dm, sent, offline, receipt }) = self.unkept.remove(id) else { return };
        if !ok && !sent {
            // Neither kept nor on its way: as if never written, its number too (unless a later
            // one took the next).
            let conversation = (dm.owner, dm.other);
            if self.last_seq.get(&conversation) == Some(&dm.seq) {
                match dm.seq.checked_sub(1).filter(|last| *last > 0) {
                    Some(last) => self.last_seq.insert(conversation, last),
                    None => self.last_seq.remove(&conversation),
                };
            }
            out.push(Output::Lost { id: dm.id });
            return;
        }
        let (to, to_name, id) = (dm.other, dm.to.clone(), dm.id.clone());
        let letter = (offline && ok).then(|| dm.clone());
        out.push(Output::Show(Show::Dm(dm)));
        if receipt {
            out.push(Output::Show(Show::Delivered { id, to: to_name.clone() }));
        }
        // One in flight is tracked as such (its flight cannot have ended: nothing came in since
        // it was sent), its receiver marked as waiting should it not be delivered.
        if !sent {
            // Kept first, it waits in the outbox, and goes when its turn comes.
            self.now_waiting(to);
            if !offline {
                self.pump(to, out);
            }
        }
        if offline {
            out.push(Output::Show(Show::Offline { to: to_name }));
        }
        if let Some(dm) = letter {
            out.push(Output::Leave(dm));
        }
    }

    /// Asks for the oldest message waiting for `to`, unless one is in flight or none waits; while
    /// it is being read, once more when that comes.
    fn pump(&mut self, to: AccountId, out: &mut Vec<Output>) {
        if self.busy.contains_key(&to) || !self.may_wait(&to) {
            return;
        }
        match self.reading.get_mut(&to) {
            Some(again) => *again = true,
            None => {
                self.reading.insert(to, false);
                out.push(Output::ReadOutbox { to });
            }
        }
    }

    /// `dm` goes out: its flight.
    fn take_off(&mut self, dm: &StoredDm) -> Flight {
        let flight = Flight(self.next_flight);
        self.next_flight += 1;
        self.busy.insert(dm.other, flight);
        self.in_flight
            .insert(flight, InFlight { id: dm.id.clone(), owner: dm.owner, to: dm.other, to_name: dm.to.clone() });
        flight
    }

    /// The flight ended: the message, if it was in flight. Its receiver has none in flight any
    /// more.
    fn land(&mut self, flight: Flight) -> Option<InFlight> {
        let landed = self.in_flight.remove(&flight)?;
        self.busy.remove(&landed.to);
        Some(landed)
    }

    /// A message to `to` was kept and is not delivered yet: reads asked before may not have seen
    /// it.
    fn now_waiting(&mut self, to: AccountId) {
        if let Some(waiting) = &mut self.waiting {
            waiting.insert(to);
        }
        if let Some(meanwhile) = &mut self.reading_waiting {
            meanwhile.insert(to);
        }
        if let Some(again) = self.reading.get_mut(&to) {
            *again = true;
        }
    }

    fn answered(&mut self, flight: Flight, response: DmResponse, out: &mut Vec<Output>) {
        let Some(InFlight { id, owner, to, to_name }) = self.land(flight) else { return };
        match response {
            DmResponse::Delivered => {
                // Shown first: should the node stop before it notes the receipt, the message is
                // sent again and the receiver confirms it again without showing it twice. Before
                // the message is kept, noted now (the database writes in order) and shown once
                // the message is.
                match self.unkept.get_mut(&id) {
                    Some(unkept) => unkept.receipt = true,
                    None => out.push(Output::Show(Show::Delivered { id: id.clone(), to: to_name })),
                }
                out.push(Output::MarkDelivered { owner, to, id });
                self.pump(to, out);
            }
            DmResponse::Refused(refusal) => {
                // It stays in the outbox for the next try.
                self.now_waiting(to);
                match refusal {
                    // The peer no longer hosts that user; presence will say where they are.
                    DmRefusal::NotLoggedIn | DmRefusal::WrongRecipient => {
                        out.push(Output::Stays { to: to_name, why: refusal.to_string() });
                    }
                    refusal => out.push(Output::Show(Show::Refused { to: to_name, refusal })),
                }
            }
        }
    }

    // Receiving.

    /// A request came: within its sender's rate, decided now when this run knows enough of
    /// it, else once what the database says of it is read.
    fn requested(&mut self, received: Box<Received>, now: Instant, out: &mut Vec<Output>) {
        if !self.arrivals.0.allow(received.sender.account, now) {
            // Not now; it stays with its sender (or mailbox) for later. Nothing is read for it.
            let response = DmResponse::Refused(DmRefusal::Unavailable);
            out.push(Output::Answer { channel: received.channel, response });
        } else if received.seen.is_none() {
            out.push(Output::ReadSeen(received));
        } else {
            self.arrived(*received, out);
        }
    }

    fn arrived(&mut self, received: Received, out: &mut Vec<Output>) {
        let Received { channel, peer, owner, me, sender, request, seen, letter } = received;
        let Some(seen) = seen else {
            out.push(Output::Answer { channel, response: DmResponse::Refused(DmRefusal::Unavailable) });
            return;
        };
        // The same message being kept already: answered with it. An older one from the same
        // sender on the same peer meanwhile: stale (what was read did not know the newer yet).
        let from = |a: &Arriving| a.dm.other == sender.account && a.peer == peer;
        if let Some(first) = self.arriving.values_mut().find(|a| from(a) && a.dm.id == request.id) {
            first.again.push(channel);
            return;
        }
        // A letter is taken only in turn: one that would leave a gap behind it (the sender's
        // earlier messages are still on their way straight, or at another mailbox) waits at its
        // mailbox, not now, so the earlier ones are not refused as stale when they come. A
        // letter that changes nothing here (that, or one taken before) gives back what it spent
        // of its sender's allowance: letters come at this node's own pace (a page when it asks),
        // and a mailbox handing over the same ones again and again would spend it otherwise.
        if letter && !seen.known {
            let arriving = self.arriving.values().filter(|a| from(a)).map(|a| a.dm.seq).max();
            let last = seen.last_seq.max(arriving);
            if Some(request.seq) != last.map_or(Some(1), |last| last.checked_add(1)) {
                self.arrivals.0.give_back(&sender.account);
                out.push(Output::Answer { channel, response: DmResponse::Refused(DmRefusal::Unavailable) });
                return;
            }
        }
        // One kept already is confirmed again, whatever else is being kept (it may have come
        // both from a mailbox and straight from its sender).
        if !seen.known && self.arriving.values().any(|a| from(a) && a.dm.seq >= request.seq) {
            out.push(Output::Answer { channel, response: DmResponse::Refused(DmRefusal::Stale) });
            return;
        }
        let response = match dm::arrival(seen.known, request.seq, seen.last_seq) {
            Arrival::Duplicate => {
                if letter {
                    self.arrivals.0.give_back(&sender.account);
                }
                DmResponse::Delivered
            }
            Arrival::Stale => DmResponse::Refused(DmRefusal::Stale),
            Arrival::New => {
                let dm = StoredDm {
                    id: request.id,
                    owner,
                    other: sender.account,
                    from: sender.from,
                    to: me,
                    text: request.text,
                    ts_ms: request.ts_ms,
                    seq: request.seq,
                    outgoing: false,
                    delivered: true,
                };
                self.arriving.insert(channel, Arriving { dm: dm.clone(), peer, again: Vec::new() });
                out.push(Output::KeepReceived { channel, dm, peer });
                return;
            }
        };
        out.push(Output::Answer { channel, response });
    }

    fn kept_received(&mut self, channel: Channel, ok: bool, known: bool, out: &mut Vec<Output>) {
        let Some(Arriving { dm, again, .. }) = self.arriving.remove(&channel) else { return };
        let response = if ok { DmResponse::Delivered } else { DmResponse::Refused(DmRefusal::Unavailable) };
        // The receipt first: it says the message is kept, which it is.
        for channel in std::iter::once(channel).chain(again) {
            out.push(Output::Answer { channel, response });
        }
        if ok && !known {
            out.push(Output::Show(Show::Dm(dm)));
        }
    }
}
