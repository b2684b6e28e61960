//! The property of the direct-message engine's outbox: a sender's engine, with its node, the
//! network, the receivers and the node's database simulated around it (the database doing what
//! it is asked in order, in its own time), under any interleaving of writes, receipts, refusals,
//! failures, presence, ticks, store answers and restarts, delivers each message once and in
//! order, or keeps it in the outbox. Test code only.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use libp2p::PeerId;
use proptest::prelude::*;

use super::StoredDm;
use super::engine::{DmEngine, Flight, Input, Output, Show};
use super::tests::{me, send, written};
use crate::account::AccountId;
use crate::protocol::dm::{DmRefusal, DmResponse};
use crate::testing::account_of;

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
                Output::MarkDelivered { id, .. } => self.store.push_back(StoreOp::Mark(id)),
                Output::ReadOutbox { to } => self.store.push_back(StoreOp::ReadOutbox(to)),
                Output::ReadWaiting => self.store.push_back(StoreOp::ReadWaiting),
                Output::Show(Show::Dm(dm)) => *self.shown.entry(dm.id).or_default() += 1,
                Output::Show(Show::Delivered { id, .. }) => {
                    assert_eq!(self.shown.get(&id), Some(&1), "a receipt shown before its message");
                    *self.receipts_shown.entry(id).or_default() += 1;
                }
                Output::Show(Show::Offline { .. }) => self.offline_told += 1,
                // A mailbox is another way in; here only the outbox delivers.
                Output::Leave(dm) => assert!(dm.outgoing, "only a message this user wrote is left at a mailbox"),
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
