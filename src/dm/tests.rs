//! Unit tests of the direct-message engine, alone: what it outputs for a message written to an
//! online or offline receiver, with or without older ones waiting; receipts (before or after
//! the message is kept), refusals and failures; the outbox looked at on a tick, one read at a
//! time; messages received new, duplicate or stale, and again while being kept. The property
//! over any interleaving is `outbox_property.rs`'s; the helpers here serve both.

use std::time::Instant;

use libp2p::PeerId;

use super::StoredDm;
use super::engine::{Channel, DmEngine, Flight, Input, Output, Received, Seen, Show};
use crate::account::AccountId;
use crate::cert::Authority;
use crate::protocol::dm::{CheckedDm, DmRefusal, DmRequest, DmResponse};
use crate::testing::account_of;

pub(super) fn me() -> AccountId {
    account_of("alice")
}

fn bob() -> AccountId {
    account_of("bob")
}

/// Alice's message `seq` to `to` (called `to_name`).
pub(super) fn written(to: AccountId, to_name: &str, seq: u64) -> StoredDm {
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

pub(super) fn send(dm: &StoredDm, peer: Option<PeerId>, older_waiting: bool) -> Input {
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
            Output::MarkDelivered { owner: me(), to: bob(), id: dm.id.clone() },
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
fn a_message_to_an_offline_receiver_is_kept_left_at_a_mailbox_and_the_user_told() {
    let mut engine = DmEngine::default();
    let dm = written(bob(), "bob", 1);
    assert_eq!(handle(&mut engine, send(&dm, None, false)), [Output::Keep(dm.clone())]);
    assert_eq!(
        handle(&mut engine, kept(&dm.id)),
        [Output::Show(Show::Dm(dm.clone())), Output::Show(Show::Offline { to: "bob".into() }), Output::Leave(dm)]
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
        letter: false,
    };
    (Input::Request(Box::new(received)), peer)
}

/// The same request as [`request_on`], come in a letter from a mailbox.
fn letter_on(peer: PeerId, id: &str, seq: u64, seen: Option<Seen>, channel: u64) -> Input {
    let (Input::Request(mut received), _) = request_on(peer, id, seq, seen, channel) else { unreachable!() };
    received.letter = true;
    Input::Request(received)
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
        handle(&mut engine, Input::KeptReceived { channel: Channel(1), ok: true, known: false }),
        [Output::Answer { channel: Channel(1), response: DmResponse::Delivered }, Output::Show(Show::Dm(dm))]
    );
    assert!(
        handle(&mut engine, Input::KeptReceived { channel: Channel(1), ok: true, known: false }).is_empty(),
        "once"
    );
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
    let out = handle(&mut engine, Input::KeptReceived { channel: Channel(1), ok: true, known: false });
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[0], Output::Answer { channel: Channel(1), response: DmResponse::Delivered });
    assert_eq!(out[1], Output::Answer { channel: Channel(2), response: DmResponse::Delivered });
    assert!(matches!(&out[2], Output::Show(Show::Dm(dm)) if dm.id == "b3"), "shown once");
}

#[test]
fn a_letter_is_taken_only_in_its_senders_order() {
    let mut engine = DmEngine::default();
    let peer = PeerId::random();
    let not_now = DmResponse::Refused(DmRefusal::Unavailable);
    let seen = |last_seq| Some(Seen { known: false, last_seq });
    // Number 4 after 2: number 3 is still on its way; the letter waits at its mailbox.
    let out = handle(&mut engine, letter_on(peer, "b4", 4, seen(Some(2)), 1));
    assert_eq!(out, [Output::Answer { channel: Channel(1), response: not_now }]);
    // Without anything from that sender yet, only the first.
    let out = handle(&mut engine, letter_on(peer, "b2", 2, seen(None), 2));
    assert_eq!(out, [Output::Answer { channel: Channel(2), response: not_now }]);
    // In turn: taken, and the next while it is being kept too.
    assert!(matches!(
        handle(&mut engine, letter_on(peer, "b3", 3, seen(Some(2)), 3))[..],
        [Output::KeepReceived { .. }]
    ));
    assert!(matches!(
        handle(&mut engine, letter_on(peer, "b4", 4, seen(Some(2)), 4))[..],
        [Output::KeepReceived { .. }]
    ));
    // One known already is confirmed.
    let known = Some(Seen { known: true, last_seq: Some(4) });
    let out = handle(&mut engine, letter_on(peer, "b1", 1, known, 5));
    assert_eq!(out, [Output::Answer { channel: Channel(5), response: DmResponse::Delivered }]);
}

#[test]
fn a_message_kept_already_is_confirmed_even_while_a_later_one_is_being_kept() {
    // It came from a mailbox, and now straight from its sender, while the next letter is kept.
    let mut engine = DmEngine::default();
    let peer = PeerId::random();
    let (later, _) = request_on(peer, "b5", 5, Some(Seen { known: false, last_seq: Some(4) }), 1);
    assert!(matches!(handle(&mut engine, later)[..], [Output::KeepReceived { channel: Channel(1), .. }]));
    let (known, _) = request_on(peer, "b3", 3, Some(Seen { known: true, last_seq: Some(4) }), 2);
    assert_eq!(handle(&mut engine, known), [Output::Answer { channel: Channel(2), response: DmResponse::Delivered }]);
}

#[test]
fn a_receipt_before_its_message_is_kept_is_noted_at_once_and_shown_after_it() {
    let mut engine = DmEngine::default();
    let peer = PeerId::random();
    handle(&mut engine, Input::Waiting(Some(Vec::new())));
    let dm = written(bob(), "bob", 1);
    let flight = flight_of(&handle(&mut engine, send(&dm, Some(peer), false)));
    let out = handle(&mut engine, Input::Response { flight, response: DmResponse::Delivered });
    assert_eq!(
        out,
        [Output::MarkDelivered { owner: me(), to: bob(), id: dm.id.clone() }],
        "noted; nothing shown before the message"
    );
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
    // Not known from this run: read first; the read failing, not now.
    let out = answer(&mut engine, None, 3);
    let [Output::ReadSeen(read)] = &out[..] else { panic!("{out:?}") };
    assert_eq!(read.channel, Channel(3));
    let out = handle(&mut engine, Input::Read(read.clone()));
    assert_eq!(out, [Output::Answer { channel: Channel(3), response: refused(DmRefusal::Unavailable) }]);
    let out = answer(&mut engine, Some(Seen { known: false, last_seq: None }), 4);
    assert!(matches!(out[..], [Output::KeepReceived { channel: Channel(4), .. }]));
    let out = handle(&mut engine, Input::KeptReceived { channel: Channel(4), ok: false, known: false });
    assert_eq!(out, [Output::Answer { channel: Channel(4), response: refused(DmRefusal::Unavailable) }]);
}

#[test]
fn a_message_the_database_had_kept_already_is_confirmed_and_not_shown_again() {
    let mut engine = DmEngine::default();
    let (input, _) = request("b1", 1, Some(Seen { known: false, last_seq: None }), 1);
    assert!(matches!(handle(&mut engine, input)[..], [Output::KeepReceived { .. }]));
    assert_eq!(
        handle(&mut engine, Input::KeptReceived { channel: Channel(1), ok: true, known: true }),
        [Output::Answer { channel: Channel(1), response: DmResponse::Delivered }],
        "confirmed, never shown twice"
    );
}

#[test]
fn a_sender_beyond_its_rate_is_refused_before_anything_is_read_for_it() {
    let mut engine = DmEngine::default();
    let peer = PeerId::random();
    let t = Instant::now();
    // Old numbers (replays, say), each of which this run cannot decide: each would be read.
    let mut reads = 0;
    for n in 1..=2 * u64::from(super::engine::ARRIVAL_BURST) {
        let (input, _) = request_on(peer, &format!("b{n}"), 1, None, n);
        match &engine.handle(input, t)[..] {
            [Output::ReadSeen(_)] => reads += 1,
            [Output::Answer { response: DmResponse::Refused(DmRefusal::Unavailable), .. }] => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(reads, super::engine::ARRIVAL_BURST, "the rest refused unread");
    // What was read is decided without counting again.
    let (Input::Request(mut read), _) = request_on(peer, "b1", 1, None, 1) else { unreachable!() };
    read.seen = Some(Seen { known: true, last_seq: Some(1) });
    let out = engine.handle(Input::Read(read), t);
    assert_eq!(out, [Output::Answer { channel: Channel(1), response: DmResponse::Delivered }]);
}

#[test]
fn a_mailbox_replaying_letters_does_not_spend_their_senders_allowance() {
    let mut engine = DmEngine::default();
    let peer = PeerId::random();
    let t = Instant::now();
    // Twice the burst of letters taken before, and of letters out of turn: each answered, none
    // kept.
    for n in 1..=2 * u64::from(super::engine::ARRIVAL_BURST) {
        let known = Some(Seen { known: true, last_seq: Some(5) });
        let out = engine.handle(letter_on(peer, "b5", 5, known, n), t);
        assert_eq!(out, [Output::Answer { channel: Channel(n), response: DmResponse::Delivered }]);
        let gap = Some(Seen { known: false, last_seq: Some(5) });
        let out = engine.handle(letter_on(peer, &format!("b{}", n + 100), 7, gap, n), t);
        assert_eq!(
            out,
            [Output::Answer { channel: Channel(n), response: DmResponse::Refused(DmRefusal::Unavailable) }]
        );
    }
    // The sender's next message straight from them is taken all the same.
    let (input, _) = request_on(peer, "b6", 6, Some(Seen { known: false, last_seq: Some(5) }), 9999);
    assert!(matches!(engine.handle(input, t)[..], [Output::KeepReceived { .. }]));
}

#[test]
fn a_sender_beyond_its_rate_is_told_to_come_back_later_and_nothing_is_kept() {
    let mut engine = DmEngine::default();
    let peer = PeerId::random();
    let t = Instant::now();
    let arrive = |engine: &mut DmEngine, seq: u64, at: Instant| {
        let (input, _) = request_on(peer, &format!("b{seq}"), seq, Some(Seen { known: false, last_seq: None }), seq);
        let out = engine.handle(input, at);
        let kept = matches!(out[..], [Output::KeepReceived { .. }]);
        if kept {
            engine.handle(Input::KeptReceived { channel: Channel(seq), ok: true, known: false }, at);
        }
        (kept, out)
    };
    for seq in 1..=u64::from(super::engine::ARRIVAL_BURST) {
        assert!(arrive(&mut engine, seq, t).0, "message {seq} of a burst is taken");
    }
    let next = u64::from(super::engine::ARRIVAL_BURST) + 1;
    let (kept, out) = arrive(&mut engine, next, t);
    assert!(!kept);
    assert_eq!(
        out,
        [Output::Answer { channel: Channel(next), response: DmResponse::Refused(DmRefusal::Unavailable) }],
        "not now: it stays in the sender's outbox"
    );
    // A second later the sender may send again, at the sustained rate.
    let later = t + std::time::Duration::from_secs(1);
    for seq in next..next + u64::from(super::engine::ARRIVALS_PER_SEC) {
        assert!(arrive(&mut engine, seq, later).0, "message {seq} is taken a second later");
    }
    assert!(!arrive(&mut engine, next + u64::from(super::engine::ARRIVALS_PER_SEC), later).0);
}
