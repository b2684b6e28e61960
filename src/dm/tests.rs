//! Unit and property tests of the direct-message engine, alone: what it outputs for a message
//! written to an online or offline receiver, with or without older ones waiting; receipts,
//! refusals and failures; the outbox looked at on a tick; messages received new, duplicate or
//! stale; and, whatever the order of messages written, receipts, failures, presence, ticks and
//! restarts, every message delivered once and in order, or still in the outbox.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use libp2p::PeerId;
use proptest::prelude::*;

use super::StoredDm;
use super::engine::{Channel, DmEngine, Flight, Input, Output, Received, Seen, Show};
use crate::account::AccountId;
use crate::cert::Authority;
use crate::protocol::dm::{CheckedDm, DmRefusal, DmRequest, DmResponse};
use crate::testing::account_of;

fn me() -> AccountId {
    account_of("alice")
}

fn bob() -> AccountId {
    account_of("bob")
}

/// Alice's message `seq` to `to` (called `to_name`).
fn written(to: AccountId, to_name: &str, seq: u64) -> StoredDm {
    StoredDm {
        id: format!("m-{to_name}-{seq}"),
        owner: me(),
        other: to,
        from: "alice".into(),
        to: to_name.into(),
        text: format!("text {seq}"),
        ts_ms: 1000 + seq,
        seq,
        outgoing: true,
        delivered: false,
    }
}

fn send(dm: &StoredDm, peer: Option<PeerId>, older_waiting: bool) -> Input {
    Input::Send { dm: Box::new(dm.clone()), peer, older_waiting }
}

fn handle(engine: &mut DmEngine, input: Input) -> Vec<Output> {
    engine.handle(input, Instant::now())
}

/// The flight of the one `Send` among `outputs`.
fn flight_of(outputs: &[Output]) -> Flight {
    let flights: Vec<Flight> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { flight, .. } => Some(*flight),
            _ => None,
        })
        .collect();
    assert_eq!(flights.len(), 1, "{outputs:?}");
    flights[0]
}

fn kept(id: &str) -> Input {
    Input::Kept { id: id.into(), ok: true }
}

#[test]
fn a_message_to_an_online_receiver_goes_out_before_it_is_kept_and_is_shown_once_kept() {
    let mut engine = DmEngine::default();
    let peer = PeerId::random();
    let dm = written(bob(), "bob", 1);
    let out = handle(&mut engine, send(&dm, Some(peer), false));
    let flight = flight_of(&out);
    assert_eq!(out, [Output::Send { flight, peer, dm: dm.clone() }, Output::Keep(dm.clone())]);
    assert_eq!(engine.last_seq(&me(), &bob()), Some(1));
    assert_eq!(engine.in_flight_to(&bob()), Some((flight, dm.id.as_str())));
    assert_eq!(handle(&mut engine, kept(&dm.id)), [Output::Show(Show::Dm(dm.clone()))]);
    let out = handle(&mut engine, Input::Response { flight, response: DmResponse::Delivered });
    assert_eq!(
        out,
        [
            Output::Show(Show::Delivered { id: dm.id.clone(), to: "bob".into() }),
            Output::MarkDelivered { id: dm.id.clone() },
            Output::ReadOutbox { to: bob() },
        ]
    );
    assert_eq!(engine.flights(), 0);
    assert!(handle(&mut engine, Input::Response { flight, response: DmResponse::Delivered }).is_empty(), "landed");
}

#[test]
fn a_message_behind_others_is_kept_first_and_waits_its_turn() {
    let mut engine = DmEngine::default();
    let peer = PeerId::random();
    let dm = written(bob(), "bob", 2);
    assert!(engine.may_wait(&bob()), "nothing read yet: any receiver may have messages waiting");
    assert_eq!(handle(&mut engine, send(&dm, Some(peer), true)), [Output::Keep(dm.clone())]);
    assert_eq!(engine.flights(), 0);
    assert_eq!(
        handle(&mut engine, kept(&dm.id)),
        [Output::Show(Show::Dm(dm.clone())), Output::ReadOutbox { to: bob() }]
    );
    let older = written(bob(), "bob", 1);
    let out = handle(&mut engine, Input::Oldest { to: bob(), peer: Some(peer), dm: Some(Box::new(older.clone())) });
    let flight = flight_of(&out);
    assert_eq!(out, [Output::Send { flight, peer, dm: older }]);
}

#[test]
fn a_message_to_an_offline_receiver_is_kept_and_the_user_told() {
    let mut engine = DmEngine::default();
    let dm = written(bob(), "bob", 1);
    assert_eq!(handle(&mut engine, send(&dm, None, false)), [Output::Keep(dm.clone())]);
    assert_eq!(
        handle(&mut engine, kept(&dm.id)),
        [Output::Show(Show::Dm(dm)), Output::Show(Show::Offline { to: "bob".into() })]
    );
    handle(&mut engine, Input::Waiting(Some(Vec::new())));
    assert!(!engine.may_wait(&bob()));
    // Bob comes online: the tick reads who waits, then bob's outbox.
    assert_eq!(handle(&mut engine, Input::Tick), [Output::ReadWaiting]);
    assert_eq!(handle(&mut engine, Input::Waiting(Some(vec![bob()]))), [Output::ReadOutbox { to: bob() }]);
    // One read at a time: bob's presence has it read again once this one comes.
    assert!(handle(&mut engine, Input::Online { account: bob() }).is_empty());
    let out = handle(&mut engine, Input::Oldest { to: bob(), peer: Some(PeerId::random()), dm: None });
    assert_eq!(out, [Output::ReadOutbox { to: bob() }]);
    assert!(engine.may_wait(&bob()), "an answer that may be older than bob's presence does not say none waits");
}

#[test]
fn one_message_is_in_flight_per_receiver_and_the_next_goes_on_its_receipt() {
    let mut engine = DmEngine::default();
    let peer = PeerId::random();
    let first = written(bob(), "bob", 1);
    let second = written(bob(), "bob", 2);
    let out = handle(&mut engine, send(&first, Some(peer), false));
    let flight = flight_of(&out);
    handle(&mut engine, kept(&first.id));
    // Nothing waited, so the outbox was not read; bob is busy, so the second is kept first.
    assert_eq!(handle(&mut engine, send(&second, Some(peer), false)), [Output::Keep(second.clone())]);
    assert_eq!(handle(&mut engine, kept(&second.id)), [Output::Show(Show::Dm(second.clone()))], "bob is busy");
    assert!(handle(&mut engine, Input::Online { account: bob() }).is_empty(), "bob is busy");
    let out = handle(&mut engine, Input::Response { flight, response: DmResponse::Delivered });
    assert_eq!(out.last(), Some(&Output::ReadOutbox { to: bob() }));
    let out = handle(&mut engine, Input::Oldest { to: bob(), peer: Some(peer), dm: Some(Box::new(second.clone())) });
    assert_eq!(flight_of(&out), engine.in_flight_to(&bob()).unwrap().0);
    // A second answer from the store while the first is in flight sends nothing.
    assert!(handle(&mut engine, Input::Oldest { to: bob(), peer: Some(peer), dm: Some(Box::new(second)) }).is_empty());
    assert_eq!(engine.flights(), 1);
}

#[test]
fn a_message_whose_flight_failed_waits_in_the_outbox() {
    let mut engine = DmEngine::default();
    let peer = PeerId::random();
    handle(&mut engine, Input::Waiting(Some(Vec::new())));
    let dm = written(bob(), "bob", 1);
    let flight = flight_of(&handle(&mut engine, send(&dm, Some(peer), false)));
    assert_eq!(handle(&mut engine, kept(&dm.id)), [Output::Show(Show::Dm(dm.clone()))]);
    assert!(!engine.may_wait(&bob()), "in flight, not waiting");
    let out = handle(&mut engine, Input::Failed { flight, reason: "connection closed".into() });
    assert_eq!(out, [Output::Stays { to: "bob".into(), why: "connection closed".into() }]);
    assert!(engine.may_wait(&bob()), "kept undelivered: it waits");
    assert_eq!(engine.flights(), 0);
    assert_eq!(handle(&mut engine, Input::Online { account: bob() }), [Output::ReadOutbox { to: bob() }]);
    let out = handle(&mut engine, Input::Oldest { to: bob(), peer: Some(peer), dm: Some(Box::new(dm.clone())) });
    assert_eq!(out, [Output::Send { flight: flight_of(&out), peer, dm }]);
}

#[test]
fn a_refused_message_stays_in_the_outbox_and_only_some_refusals_are_shown() {
    let mut engine = DmEngine::default();
    let peer = PeerId::random();
    handle(&mut engine, Input::Waiting(Some(Vec::new())));
    let dm = written(bob(), "bob", 1);
    let flight = flight_of(&handle(&mut engine, send(&dm, Some(peer), false)));
    handle(&mut engine, kept(&dm.id));
    assert!(!engine.may_wait(&bob()), "in flight, not waiting");
    let out = handle(&mut engine, Input::Response { flight, response: DmResponse::Refused(DmRefusal::NotLoggedIn) });
    assert_eq!(out, [Output::Stays { to: "bob".into(), why: DmRefusal::NotLoggedIn.to_string() }]);
    assert!(engine.may_wait(&bob()));
    let out = handle(&mut engine, Input::Oldest { to: bob(), peer: Some(peer), dm: Some(Box::new(dm.clone())) });
    let flight = flight_of(&out);
    let refusal = DmRefusal::Unavailable;
    let out = handle(&mut engine, Input::Response { flight, response: DmResponse::Refused(refusal) });
    assert_eq!(out, [Output::Show(Show::Refused { to: "bob".into(), refusal })]);
    assert_eq!(engine.flights(), 0);
}

#[test]
fn a_message_that_cannot_be_kept_is_lost_unless_it_went_out() {
    let mut engine = DmEngine::default();
    let peer = PeerId::random();
    let dm = written(bob(), "bob", 1);
    handle(&mut engine, send(&dm, None, false));
    assert_eq!(handle(&mut engine, Input::Kept { id: dm.id.clone(), ok: false }), [Output::Lost { id: dm.id.clone() }]);
    assert_eq!(engine.last_seq(&me(), &bob()), None, "its number is free again");
    // One that went out is on its way: shown.
    let flight = flight_of(&handle(&mut engine, send(&dm, Some(peer), false)));
    assert_eq!(handle(&mut engine, Input::Kept { id: dm.id.clone(), ok: false }), [Output::Show(Show::Dm(dm))]);
    assert_eq!(engine.in_flight_to(&bob()).map(|(f, _)| f), Some(flight));
}

#[test]
fn numbers_follow_those_kept_before_and_a_lost_message_gives_its_number_back() {
    let mut engine = DmEngine::default();
    engine.numbered(me(), bob(), 7);
    engine.numbered(me(), bob(), 5);
    assert_eq!(engine.last_seq(&me(), &bob()), Some(7), "the highest kept");
    let lost = written(bob(), "bob", 8);
    handle(&mut engine, send(&lost, None, false));
    assert_eq!(engine.last_seq(&me(), &bob()), Some(8));
    handle(&mut engine, Input::Kept { id: lost.id.clone(), ok: false });
    assert_eq!(engine.last_seq(&me(), &bob()), Some(7), "8 is free again");
    // A later message took the next number meanwhile: the lost one gives nothing back.
    let (first, second) = (written(bob(), "bob", 8), written(bob(), "bob", 9));
    handle(&mut engine, send(&first, None, false));
    handle(&mut engine, send(&second, None, false));
    handle(&mut engine, Input::Kept { id: first.id.clone(), ok: false });
    assert_eq!(engine.last_seq(&me(), &bob()), Some(9));
}

#[test]
fn the_outbox_is_read_again_on_a_tick_and_forgotten_when_it_cannot_be() {
    let mut engine = DmEngine::default();
    let carol = account_of("carol");
    assert_eq!(handle(&mut engine, Input::Tick), [Output::ReadWaiting]);
    assert_eq!(
        handle(&mut engine, Input::Waiting(Some(vec![bob(), carol]))),
        [Output::ReadOutbox { to: bob() }, Output::ReadOutbox { to: carol }]
    );
    assert!(engine.may_wait(&carol) && !engine.may_wait(&me()));
    handle(&mut engine, Input::Oldest { to: carol, peer: Some(PeerId::random()), dm: None });
    assert!(!engine.may_wait(&carol), "nothing waits for carol");
    handle(&mut engine, Input::Waiting(None));
    assert!(engine.may_wait(&carol) && engine.may_wait(&me()), "unknown: any may");
}

/// A request from bob's peer to alice, numbered `seq`.
fn request(id: &str, seq: u64, seen: Option<Seen>, channel: u64) -> (Input, PeerId) {
    request_on(PeerId::random(), id, seq, seen, channel)
}

/// A request from bob on `peer` to alice, numbered `seq`.
fn request_on(peer: PeerId, id: &str, seq: u64, seen: Option<Seen>, channel: u64) -> (Input, PeerId) {
    let request = DmRequest {
        certificate: Authority::from_secret(&[7; 32]).issue(bob(), "bob", &peer.to_bytes(), 0, 1),
        to: me(),
        seq,
        id: id.into(),
        ts_ms: 5,
        text: "hi".into(),
    };
    let received = Received {
        channel: Channel(channel),
        peer,
        owner: me(),
        me: "alice".into(),
        sender: CheckedDm { account: bob(), from: "bob".into(), serial: 1 },
        request,
        seen,
    };
    (Input::Request(Box::new(received)), peer)
}

#[test]
fn a_new_message_is_kept_then_confirmed_then_shown() {
    let mut engine = DmEngine::default();
    let (input, peer) = request("b1", 3, Some(Seen { known: false, last_seq: Some(2) }), 1);
    let dm = StoredDm {
        id: "b1".into(),
        owner: me(),
        other: bob(),
        from: "bob".into(),
        to: "alice".into(),
        text: "hi".into(),
        ts_ms: 5,
        seq: 3,
        outgoing: false,
        delivered: true,
    };
    assert_eq!(handle(&mut engine, input), [Output::KeepReceived { channel: Channel(1), dm: dm.clone(), peer }]);
    assert_eq!(
        handle(&mut engine, Input::KeptReceived { channel: Channel(1), ok: true }),
        [Output::Answer { channel: Channel(1), response: DmResponse::Delivered }, Output::Show(Show::Dm(dm))]
    );
    assert!(handle(&mut engine, Input::KeptReceived { channel: Channel(1), ok: true }).is_empty(), "once");
}

#[test]
fn the_same_message_while_it_is_being_kept_is_confirmed_with_it_and_an_older_one_is_stale() {
    let mut engine = DmEngine::default();
    let peer = PeerId::random();
    let unknown = Some(Seen { known: false, last_seq: Some(2) });
    let (first, _) = request_on(peer, "b3", 3, unknown, 1);
    assert!(matches!(handle(&mut engine, first)[..], [Output::KeepReceived { channel: Channel(1), .. }]));
    // Read before the first was kept, the same message again, and an older one, on the same peer.
    let (again, _) = request_on(peer, "b3", 3, unknown, 2);
    assert!(handle(&mut engine, again).is_empty(), "waits for the first");
    let (older, _) = request_on(peer, "b2x", 3, unknown, 3);
    let stale = DmResponse::Refused(DmRefusal::Stale);
    assert_eq!(handle(&mut engine, older), [Output::Answer { channel: Channel(3), response: stale }]);
    let out = handle(&mut engine, Input::KeptReceived { channel: Channel(1), ok: true });
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[0], Output::Answer { channel: Channel(1), response: DmResponse::Delivered });
    assert_eq!(out[1], Output::Answer { channel: Channel(2), response: DmResponse::Delivered });
    assert!(matches!(&out[2], Output::Show(Show::Dm(dm)) if dm.id == "b3"), "shown once");
}

#[test]
fn a_receipt_before_its_message_is_kept_is_noted_at_once_and_shown_after_it() {
    let mut engine = DmEngine::default();
    let peer = PeerId::random();
    handle(&mut engine, Input::Waiting(Some(Vec::new())));
    let dm = written(bob(), "bob", 1);
    let flight = flight_of(&handle(&mut engine, send(&dm, Some(peer), false)));
    let out = handle(&mut engine, Input::Response { flight, response: DmResponse::Delivered });
    assert_eq!(out, [Output::MarkDelivered { id: dm.id.clone() }], "noted; nothing shown before the message");
    assert_eq!(
        handle(&mut engine, kept(&dm.id)),
        [Output::Show(Show::Dm(dm.clone())), Output::Show(Show::Delivered { id: dm.id, to: "bob".into() })]
    );
}

#[test]
fn a_read_asked_before_a_message_was_written_does_not_hide_it() {
    let mut engine = DmEngine::default();
    let peer = PeerId::random();
    // Whom messages wait for is being read when a message to bob is written (kept first: any
    // receiver may have older ones waiting).
    assert_eq!(handle(&mut engine, Input::Tick), [Output::ReadWaiting]);
    assert!(handle(&mut engine, Input::Tick).is_empty(), "one read at a time");
    let dm = written(bob(), "bob", 1);
    assert_eq!(handle(&mut engine, send(&dm, Some(peer), true)), [Output::Keep(dm.clone())]);
    // The read comes without bob: he still may have messages waiting.
    assert!(handle(&mut engine, Input::Waiting(Some(Vec::new()))).contains(&Output::ReadOutbox { to: bob() }));
    assert!(engine.may_wait(&bob()));
    // Bob's outbox is being read; the message is kept meanwhile: an empty answer is read again.
    let out = handle(&mut engine, kept(&dm.id));
    assert_eq!(out, [Output::Show(Show::Dm(dm.clone()))], "bob's outbox is being read already");
    let out = handle(&mut engine, Input::Oldest { to: bob(), peer: Some(peer), dm: None });
    assert_eq!(out, [Output::ReadOutbox { to: bob() }]);
    let out = handle(&mut engine, Input::Oldest { to: bob(), peer: Some(peer), dm: Some(Box::new(dm.clone())) });
    assert_eq!(out, [Output::Send { flight: flight_of(&out), peer, dm }]);
}

#[test]
fn duplicates_are_confirmed_again_stale_ones_refused_and_nothing_shown() {
    let mut engine = DmEngine::default();
    let answer = |engine: &mut DmEngine, seen, channel| {
        let (input, _) = request("b1", 3, seen, channel);
        handle(engine, input)
    };
    let delivered = DmResponse::Delivered;
    let refused = |refusal| DmResponse::Refused(refusal);
    let out = answer(&mut engine, Some(Seen { known: true, last_seq: Some(3) }), 1);
    assert_eq!(out, [Output::Answer { channel: Channel(1), response: delivered }]);
    let out = answer(&mut engine, Some(Seen { known: false, last_seq: Some(3) }), 2);
    assert_eq!(out, [Output::Answer { channel: Channel(2), response: refused(DmRefusal::Stale) }]);
    let out = answer(&mut engine, None, 3);
    assert_eq!(out, [Output::Answer { channel: Channel(3), response: refused(DmRefusal::Unavailable) }]);
    let out = answer(&mut engine, Some(Seen { known: false, last_seq: None }), 4);
    assert!(matches!(out[..], [Output::KeepReceived { channel: Channel(4), .. }]));
    let out = handle(&mut engine, Input::KeptReceived { channel: Channel(4), ok: false });
    assert_eq!(out, [Output::Answer { channel: Channel(4), response: refused(DmRefusal::Unavailable) }]);
}

// The property: a sender's engine, with the node, the network and the receivers simulated
// around it.

/// How the network treats one request in flight.
#[derive(Debug, Clone, Copy)]
enum Fate {
    /// The receiver keeps it (or has it already) and its receipt comes back.
    Delivered,
    /// The receiver's peer no longer hosts it (not shown).
    NotThere,
    /// The receiver cannot store it now (shown).
    Unavailable,
    /// The request is lost.
    LostRequest,
    /// The receiver keeps it, and the receipt is lost.
    LostReceipt,
}

/// Something that happens between the node's handlers. The node's database does what the
/// engine asks in order, in its own time: its answers come between the other steps.
#[derive(Debug, Clone)]
enum Step {
    /// The request at this index (modulo those in flight) meets its fate.
    Net(usize, Fate),
    /// A receiver's presence is heard; it is online.
    Online(usize),
    /// A receiver goes offline.
    Offline(usize),
    Tick,
    /// The database does the next this many of what it was asked, and its answers reach the
    /// engine.
    Store(usize),
    /// The node stops and starts again: the requests in flight reached their receivers or not
    /// (bit `i` of the mask for the `i`th), and their answers never come; the database does what
    /// it was asked before it closes (its answers never come); the engine starts afresh with the
    /// numbers kept, and hears again who is online; after the login, a tick.
    Restart(u8),
}

/// What the user and the world do.
#[derive(Debug, Clone)]
enum Action {
    /// Write a message to receiver `to`.
    Write(usize),
    Step(Step),
}

const RECEIVERS: [&str; 3] = ["bob", "carol", "dave"];

/// What the engine asked of the database, not done yet.
#[derive(Debug, Clone)]
enum StoreOp {
    Keep(StoredDm),
    Mark(String),
    ReadOutbox(AccountId),
    ReadWaiting,
}

/// A sender's node around its engine: its database, who is online, the requests on the wire,
/// and the receivers.
struct World {
    engine: DmEngine,
    /// Outgoing rows as kept, in order.
    rows: Vec<StoredDm>,
    /// What the database was asked and has not done yet, in order.
    store: VecDeque<StoreOp>,
    /// Messages whose receipt was written while the node stopped, before it was shown.
    receipt_unshown: HashSet<String>,
    online: HashMap<AccountId, PeerId>,
    peers: HashMap<AccountId, PeerId>,
    wire: Vec<(Flight, StoredDm)>,
    /// What each receiver kept: ids and numbers, in arrival order.
    received: HashMap<AccountId, Vec<(String, u64)>>,
    /// Every message written, in order.
    written: Vec<StoredDm>,
    shown: HashMap<String, usize>,
    receipts_shown: HashMap<String, usize>,
    /// Offline notices shown, and messages written to a receiver offline.
    offline_told: usize,
    written_offline: usize,
    /// The messages written to a receiver offline.
    offline_ids: HashSet<String>,
    stale: usize,
}

impl World {
    fn new() -> World {
        let peers = RECEIVERS.iter().map(|n| (account_of(n), PeerId::random())).collect();
        World {
            engine: DmEngine::default(),
            rows: Vec::new(),
            store: VecDeque::new(),
            receipt_unshown: HashSet::new(),
            online: HashMap::new(),
            peers,
            wire: Vec::new(),
            received: HashMap::new(),
            written: Vec::new(),
            shown: HashMap::new(),
            receipts_shown: HashMap::new(),
            offline_told: 0,
            written_offline: 0,
            offline_ids: HashSet::new(),
            stale: 0,
        }
    }

    fn feed(&mut self, input: Input) {
        let outputs = self.engine.handle(input, Instant::now());
        self.carry_out(outputs);
    }

    /// Carries out `outputs` as the node does: in order; what the database is asked is queued
    /// to it.
    fn carry_out(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { flight, peer, dm } => {
                    assert_eq!(self.online.get(&dm.other), Some(&peer), "sent to a peer not online");
                    assert!(self.wire.iter().all(|(_, d)| d.other != dm.other), "two in flight to one receiver");
                    self.wire.push((flight, dm));
                }
                Output::Keep(dm) => self.store.push_back(StoreOp::Keep(dm)),
                Output::MarkDelivered { id } => self.store.push_back(StoreOp::Mark(id)),
                Output::ReadOutbox { to } => self.store.push_back(StoreOp::ReadOutbox(to)),
                Output::ReadWaiting => self.store.push_back(StoreOp::ReadWaiting),
                Output::Show(Show::Dm(dm)) => *self.shown.entry(dm.id).or_default() += 1,
                Output::Show(Show::Delivered { id, .. }) => {
                    assert_eq!(self.shown.get(&id), Some(&1), "a receipt shown before its message");
                    *self.receipts_shown.entry(id).or_default() += 1;
                }
                Output::Show(Show::Offline { .. }) => self.offline_told += 1,
                Output::Show(Show::Refused { .. }) | Output::Stays { .. } => {}
                other => panic!("not a sender's output: {other:?}"),
            }
        }
    }

    /// The database does `op`; what it read or wrote, for the engine.
    fn do_store(&mut self, op: StoreOp) -> Option<Input> {
        match op {
            StoreOp::Keep(dm) => {
                assert!(self.rows.iter().all(|r| r.id != dm.id), "kept twice");
                let id = dm.id.clone();
                self.rows.push(dm);
                Some(Input::Kept { id, ok: true })
            }
            StoreOp::Mark(id) => {
                let row = self.rows.iter_mut().find(|r| r.id == id).expect("marked before kept");
                row.delivered = true;
                None
            }
            StoreOp::ReadOutbox(to) => {
                let peer = self.online.get(&to).copied();
                let oldest = self.outbox(&to).into_iter().min_by_key(|r| r.seq).map(Box::new);
                Some(Input::Oldest { to, peer, dm: oldest })
            }
            StoreOp::ReadWaiting => {
                let mut waiting: Vec<AccountId> = self.rows.iter().filter(|r| !r.delivered).map(|r| r.other).collect();
                waiting.sort_by_key(AccountId::to_hex);
                waiting.dedup();
                Some(Input::Waiting(Some(waiting)))
            }
        }
    }

    fn outbox(&self, to: &AccountId) -> Vec<StoredDm> {
        self.rows.iter().filter(|r| r.other == *to && !r.delivered).cloned().collect()
    }

    /// This user writes a message to `to`, as `send_dm_to_known` does.
    fn write(&mut self, to: AccountId) {
        let name = RECEIVERS.iter().find(|n| account_of(n) == to).unwrap();
        let seq = self.engine.last_seq(&me(), &to).map_or(1, |last| last + 1);
        let older_waiting = self.engine.may_wait(&to);
        let dm = written(to, name, seq);
        self.written.push(dm.clone());
        let peer = self.online.get(&to).copied();
        if peer.is_none() {
            self.written_offline += 1;
            self.offline_ids.insert(dm.id.clone());
        }
        self.feed(send(&dm, peer, older_waiting));
    }

    /// The receiver takes `dm` in: whether it is kept there (new or known).
    fn take(&mut self, dm: &StoredDm) -> bool {
        let got = self.received.entry(dm.other).or_default();
        if got.iter().any(|(id, _)| *id == dm.id) {
            return true;
        }
        if got.last().is_some_and(|(_, seq)| dm.seq <= *seq) {
            self.stale += 1;
            return false;
        }
        got.push((dm.id.clone(), dm.seq));
        true
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::Net(pick, fate) => {
                if self.wire.is_empty() {
                    return;
                }
                let (flight, dm) = self.wire.remove(pick % self.wire.len());
                let input = match fate {
                    Fate::Delivered => {
                        let response =
                            if self.take(&dm) { DmResponse::Delivered } else { DmResponse::Refused(DmRefusal::Stale) };
                        Input::Response { flight, response }
                    }
                    Fate::NotThere => Input::Response { flight, response: DmResponse::Refused(DmRefusal::NotLoggedIn) },
                    Fate::Unavailable => {
                        Input::Response { flight, response: DmResponse::Refused(DmRefusal::Unavailable) }
                    }
                    Fate::LostRequest => Input::Failed { flight, reason: "lost".into() },
                    Fate::LostReceipt => {
                        self.take(&dm);
                        Input::Failed { flight, reason: "receipt lost".into() }
                    }
                };
                self.feed(input);
            }
            Step::Online(i) => {
                let account = account_of(RECEIVERS[i]);
                self.online.insert(account, self.peers[&account]);
                self.feed(Input::Online { account });
            }
            Step::Offline(i) => {
                self.online.remove(&account_of(RECEIVERS[i]));
            }
            Step::Tick => self.feed(Input::Tick),
            Step::Store(n) => {
                for _ in 0..n {
                    let Some(op) = self.store.pop_front() else { break };
                    if let Some(input) = self.do_store(op) {
                        self.feed(input);
                    }
                }
            }
            Step::Restart(reached) => {
                for (i, (_, dm)) in std::mem::take(&mut self.wire).into_iter().enumerate() {
                    if reached & (1 << (i % 8)) != 0 {
                        self.take(&dm);
                    }
                }
                for op in std::mem::take(&mut self.store) {
                    match op {
                        // Noted before its message was kept, the receipt was to be shown once it
                        // was: the node stopped first.
                        StoreOp::Mark(id) => {
                            if !self.receipts_shown.contains_key(&id) {
                                self.receipt_unshown.insert(id.clone());
                            }
                            self.do_store(StoreOp::Mark(id));
                        }
                        op => {
                            // Kept as the node stopped: the user is not told it waits.
                            if let StoreOp::Keep(dm) = &op
                                && self.offline_ids.contains(&dm.id)
                            {
                                self.written_offline -= 1;
                            }
                            self.do_store(op);
                        }
                    }
                }
                // Kept but never shown: the node stopped first (it is in the history).
                for row in &self.rows {
                    self.shown.entry(row.id.clone()).or_insert(1);
                }
                self.engine = DmEngine::default();
                for to in RECEIVERS.map(account_of) {
                    if let Some(last) = self.rows.iter().filter(|r| r.other == to).map(|r| r.seq).max() {
                        self.engine.numbered(me(), to, last);
                    }
                }
                self.online.clear();
                self.feed(Input::Tick);
            }
        }
    }

    /// What holds at any time.
    fn check(&self) {
        assert_eq!(self.engine.flights(), self.wire.len(), "the engine's flights are the wire's");
        let receivers: HashSet<AccountId> = self.wire.iter().map(|(_, dm)| dm.other).collect();
        assert_eq!(receivers.len(), self.wire.len(), "one message in flight per receiver");
        for (_, dm) in &self.wire {
            let (_, id) = self.engine.in_flight_to(&dm.other).expect("tracked");
            assert_eq!(id, dm.id);
        }
        let keeping = self.store.iter().filter(|op| matches!(op, StoreOp::Keep(_))).count();
        assert_eq!(self.rows.len() + keeping, self.written.len(), "every message written is kept or being kept");
        assert!(self.shown.values().all(|n| *n == 1), "a message shown twice");
        assert!(self.receipts_shown.values().all(|n| *n == 1), "a receipt shown twice");
        for row in self.rows.iter().filter(|r| r.delivered) {
            let got = &self.received[&row.other];
            assert_eq!(got.iter().filter(|(id, _)| *id == row.id).count(), 1, "delivered once");
            if !self.receipt_unshown.contains(&row.id) {
                assert_eq!(self.receipts_shown.get(&row.id), Some(&1));
            }
        }
        for got in self.received.values() {
            assert!(got.windows(2).all(|w| w[0].1 < w[1].1), "out of order: {got:?}");
        }
        assert_eq!(self.stale, 0, "a message sent out of order");
        let being_kept = |op: &StoreOp| matches!(op, StoreOp::Keep(dm) if self.offline_ids.contains(&dm.id));
        let told_once_kept = self.store.iter().filter(|op| being_kept(op)).count();
        assert_eq!(self.offline_told + told_once_kept, self.written_offline, "an offline receiver not told");
    }

    /// Everyone comes online and the network delivers everything.
    fn drain(&mut self) {
        for i in 0..RECEIVERS.len() {
            self.step(Step::Online(i));
        }
        for _ in 0..4 {
            self.step(Step::Tick);
            while !self.wire.is_empty() || !self.store.is_empty() {
                self.step(Step::Store(usize::MAX));
                while !self.wire.is_empty() {
                    self.step(Step::Net(0, Fate::Delivered));
                }
            }
        }
    }
}

fn any_fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        4 => Just(Fate::Delivered),
        1 => Just(Fate::NotThere),
        1 => Just(Fate::Unavailable),
        1 => Just(Fate::LostRequest),
        1 => Just(Fate::LostReceipt),
    ]
}

fn any_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (any::<usize>(), any_fate()).prop_map(|(pick, fate)| Step::Net(pick, fate)),
        2 => (0..RECEIVERS.len()).prop_map(Step::Online),
        1 => (0..RECEIVERS.len()).prop_map(Step::Offline),
        1 => Just(Step::Tick),
        4 => (1..4usize).prop_map(Step::Store),
        1 => any::<u8>().prop_map(Step::Restart),
    ]
}

fn any_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => (0..RECEIVERS.len()).prop_map(Action::Write),
        3 => any_step().prop_map(Action::Step),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn whatever_the_order_every_message_is_delivered_once_in_order_or_still_waits(
        actions in prop::collection::vec(any_action(), 0..60),
    ) {
        let mut world = World::new();
        for action in actions {
            match action {
                Action::Write(to) => world.write(account_of(RECEIVERS[to])),
                Action::Step(step) => world.step(step),
            }
            world.check();
        }
        // At any point, each message is delivered once or still in the outbox; once everyone
        // is online and the network delivers, every message is delivered once, in order.
        world.drain();
        world.check();
        prop_assert!(world.rows.iter().all(|r| r.delivered), "left in the outbox: {:?}", world.rows);
        prop_assert!(world.wire.is_empty());
        for dm in &world.written {
            prop_assert_eq!(world.shown.get(&dm.id), Some(&1));
            if !world.receipt_unshown.contains(&dm.id) {
                prop_assert_eq!(world.receipts_shown.get(&dm.id), Some(&1));
            }
        }
        for (receiver, got) in &world.received {
            let sent: Vec<&str> = world.written.iter().filter(|d| d.other == *receiver).map(|d| d.id.as_str()).collect();
            let got: Vec<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
            prop_assert_eq!(got, sent);
        }
    }
}
