//! Tests of graph events on the wire: ids that name one content, signatures, the shape rules,
//! and decoding that never trusts a peer.

use proptest::prelude::*;

use super::*;
use crate::cert::Authority;
use crate::room::graph::RoomGraph;
use crate::testing::{DECODE_MEMORY_LIMIT, account_of, any_bytes, huge_length_inputs, mutated, peak_memory};

const NOW_MS: u64 = 1_800_000_000_000;

struct Author {
    authority: Authority,
    key: Keypair,
    cert: Certificate,
}

fn author(name: &str, seed: u8) -> Author {
    let authority = Authority::from_secret(&[5; 32]);
    let key = Keypair::ed25519_from_bytes([seed; 32]).unwrap();
    let cert = authority.issue(account_of(name), name, &key.public().to_peer_id().to_bytes(), NOW_MS / 1000 - 10, 1);
    Author { authority, key, cert }
}

fn create_body(name: &str) -> EventBody {
    EventBody {
        author: account_of("alice"),
        room: None,
        prev: vec![],
        depth: 0,
        ts_ms: NOW_MS,
        nonce: 1,
        payload: EventPayload::Create { name: name.into() },
    }
}

fn body_in(room: EventId, prev: Vec<EventId>, depth: u64, payload: EventPayload) -> EventBody {
    EventBody { author: account_of("alice"), room: Some(room), prev, depth, ts_ms: NOW_MS, nonce: 2, payload }
}

/// `body` written by `name`.
fn by(name: &str, body: EventBody) -> EventBody {
    EventBody { author: account_of(name), ..body }
}

fn verify(a: &Author, event: &SignedEvent) -> Result<VerifiedEvent, EventError> {
    event.verify(&mut CertCache::default(), &a.authority.public(), NOW_MS, None)
}

#[test]
fn a_create_names_its_room_by_its_own_id_and_events_fold_into_the_graph() {
    let alice = author("alice", 1);
    let bob = author("bob", 2);
    let create = SignedEvent::seal(&alice.key, &alice.cert, &create_body("lobby")).unwrap();
    let created = verify(&alice, &create).unwrap();
    assert_eq!(created.room, created.id);
    assert_eq!(create.id(), Some(created.id));
    assert_eq!(topic_name(&created.room), format!("meshchat/room/4/{}", created.id.to_hex()));

    let join = SignedEvent::seal(
        &bob.key,
        &bob.cert,
        &by("bob", body_in(created.id, vec![created.id], 1, EventPayload::Control(Action::Join))),
    )
    .unwrap();
    let joined = verify(&bob, &join).unwrap();
    assert_eq!((joined.room, joined.account, joined.author.as_str()), (created.id, account_of("bob"), "bob"));

    let mut graph = RoomGraph::new(created.id);
    graph.insert(created.graph_event().unwrap()).unwrap();
    graph.insert(joined.graph_event().unwrap()).unwrap();
    assert!(graph.state().is_member(&account_of("bob")));
    let message =
        by("bob", body_in(created.id, graph.heads(), 2, EventPayload::Message { seq: 1, sealed: sealed(b"hi") }));
    let said = verify(&bob, &SignedEvent::seal(&bob.key, &bob.cert, &message).unwrap()).unwrap();
    assert_eq!(said.graph_event(), None, "messages are not control events");
}

#[test]
fn ids_name_one_content_and_survive_the_wire() {
    let alice = author("alice", 1);
    let event = SignedEvent::seal(&alice.key, &alice.cert, &create_body("lobby")).unwrap();
    let decoded = SignedEvent::decode(&event.encode()).unwrap();
    assert_eq!(decoded, event);
    assert_eq!(verify(&alice, &decoded).unwrap().id, verify(&alice, &event).unwrap().id);
    // The same body from another author, or another body, is another event.
    let mallory = author("mallory", 3);
    let copied = SignedEvent::seal(&mallory.key, &mallory.cert, &by("mallory", create_body("lobby"))).unwrap();
    assert_ne!(copied.id(), event.id());
    let other = SignedEvent::seal(&alice.key, &alice.cert, &EventBody { nonce: 9, ..create_body("lobby") }).unwrap();
    assert_ne!(other.id(), event.id());
}

#[test]
fn a_changed_byte_or_another_key_is_refused() {
    let alice = author("alice", 1);
    let event = SignedEvent::seal(&alice.key, &alice.cert, &create_body("lobby")).unwrap();
    let mut forged = event.clone();
    let last = forged.body.len() - 1;
    forged.body[last] ^= 1;
    assert_eq!(verify(&alice, &forged), Err(EventError::BadSignature));
    let mallory = author("mallory", 3);
    let stolen = SignedEvent { public_key: mallory.key.public().encode_protobuf(), ..event.clone() };
    assert_eq!(verify(&alice, &stolen), Err(EventError::BadSignature));
    // mallory signs with her key but alice's certificate: the certificate names another peer.
    let borrowed = SignedEvent::seal(&mallory.key, &alice.cert, &create_body("lobby")).unwrap();
    assert_eq!(verify(&alice, &borrowed), Err(EventError::Certificate(CertError::WrongPeer)));
    // Another certificate of the same peer (another account logged in there) does not make the
    // event someone else's: the signed author must be the certificate's account.
    let peer = alice.key.public().to_peer_id().to_bytes();
    let other = alice.authority.issue(account_of("bob"), "bob", &peer, NOW_MS / 1000 - 10, 2);
    let swapped = SignedEvent { certificate: other, ..event.clone() };
    assert_eq!(swapped.id(), event.id(), "the same id");
    assert_eq!(verify(&alice, &swapped), Err(EventError::NotTheAuthor));
}

#[test]
fn a_body_carrying_more_than_its_fields_is_refused() {
    #[derive(Serialize)]
    struct Padded<'a> {
        #[serde(flatten)]
        body: &'a EventBody,
        pad: Vec<u8>,
    }
    let alice = author("alice", 1);
    let room = EventId::from_bytes([7; 32]);
    let join = body_in(room, vec![room], 1, EventPayload::Control(Action::Join));
    let sign = |body: Vec<u8>| SignedEvent {
        signature: alice.key.sign(&signed_bytes(&body)).unwrap(),
        body,
        certificate: alice.cert.clone(),
        public_key: alice.key.public().encode_protobuf(),
    };
    let plain = cbor4ii::serde::to_vec(Vec::new(), &join).unwrap();
    assert!(verify(&alice, &sign(plain.clone())).is_ok(), "the join as a node makes it");
    let padded = cbor4ii::serde::to_vec(Vec::new(), &Padded { body: &join, pad: vec![0; 12 * 1024] }).unwrap();
    let read: EventBody = cbor4ii::serde::from_slice(&padded).expect("the padded body reads as the join");
    assert_eq!(read, join);
    assert!(padded.len() > plain.len() + 12 * 1024);
    assert_eq!(verify(&alice, &sign(padded)), Err(EventError::Padded));
    let mut long_key = sign(plain);
    long_key.public_key.resize(MAX_PUBLIC_KEY_BYTES + 1, 0);
    assert_eq!(verify(&alice, &long_key), Err(EventError::Malformed));
}

#[test]
fn shapes_that_break_the_rules_are_refused() {
    let alice = author("alice", 1);
    let room = EventId::from_bytes([7; 32]);
    let join = EventPayload::Control(Action::Join);
    let refused = |body: EventBody| verify(&alice, &SignedEvent::seal(&alice.key, &alice.cert, &body).unwrap());
    assert_eq!(refused(EventBody { depth: 1, ..create_body("lobby") }), Err(EventError::BadShape));
    assert_eq!(refused(EventBody { room: Some(room), ..create_body("lobby") }), Err(EventError::BadShape));
    assert_eq!(refused(create_body("Two Words")), Err(EventError::BadRoomName));
    assert_eq!(refused(body_in(room, vec![], 1, join.clone())), Err(EventError::BadShape));
    assert_eq!(refused(body_in(room, vec![room], 0, join.clone())), Err(EventError::BadShape));
    assert_eq!(refused(body_in(room, vec![room, room], 1, join.clone())), Err(EventError::TooManyPrev));
    let many: Vec<EventId> = (0..=MAX_PREV as u8).map(|i| EventId::from_bytes([i; 32])).collect();
    assert_eq!(refused(body_in(room, many, 1, join.clone())), Err(EventError::TooManyPrev));
    let large = EventPayload::Message { seq: 1, sealed: sealed(&[1; MAX_SEALED_BYTES + 1]) };
    assert_eq!(refused(body_in(room, vec![room], 1, large)), Err(EventError::SealedTooLarge));
    let long_id = Sealed { session: "s".repeat(MAX_SESSION_ID_BYTES + 1), ..sealed(b"x") };
    let long_id = EventPayload::Message { seq: 1, sealed: long_id };
    assert_eq!(refused(body_in(room, vec![room], 1, long_id)), Err(EventError::SealedTooLarge));
    let future = EventBody { ts_ms: NOW_MS + CLOCK_SKEW_SECS * 1000 + 1, ..body_in(room, vec![room], 1, join) };
    assert_eq!(refused(future), Err(EventError::FromTheFuture));
}

#[test]
fn a_depth_at_the_end_of_its_range_is_refused_on_the_wire_and_by_the_graph() {
    let alice = author("alice", 1);
    let create = verify(&alice, &SignedEvent::seal(&alice.key, &alice.cert, &create_body("lobby")).unwrap()).unwrap();
    let mut graph = RoomGraph::new(create.id);
    graph.insert(create.graph_event().unwrap()).unwrap();
    let body = body_in(create.id, vec![create.id], u64::MAX, EventPayload::Control(Action::Leave));
    let signed = SignedEvent::seal(&alice.key, &alice.cert, &body).unwrap();
    assert_eq!(verify(&alice, &signed), Err(EventError::BadShape), "beyond what the database keeps");
    let body = body_in(create.id, vec![create.id], i64::MAX as u64, EventPayload::Control(Action::Leave));
    let event = verify(&alice, &SignedEvent::seal(&alice.key, &alice.cert, &body).unwrap()).unwrap();
    let refused = graph.insert(event.graph_event().unwrap());
    assert_eq!(refused, Err(crate::room::GraphRefusal::WrongDepth { claimed: i64::MAX as u64, expected: 1 }));
    assert!(graph.state().is_member(&account_of("alice")), "nothing changed");
}

#[test]
fn huge_announced_lengths_fail_fast_and_small() {
    let fields = ["body", "certificate", "public_key", "signature", "prev", "payload", "name", "text"];
    for input in huge_length_inputs(&fields) {
        let (decoded, peak) = peak_memory(|| SignedEvent::decode(&input));
        assert!(decoded.is_err(), "{input:x?}");
        assert!(peak < DECODE_MEMORY_LIMIT, "{peak} bytes for {input:x?}");
    }
    assert_eq!(SignedEvent::decode(&vec![0u8; MAX_EVENT_BYTES + 1]), Err(EventError::TooLarge));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_bytes_decode_and_verify_without_panicking(
        bytes in prop_oneof![
            any_bytes(512),
            Just(()).prop_flat_map(|()| {
                let alice = author("alice", 1);
                mutated(SignedEvent::seal(&alice.key, &alice.cert, &create_body("lobby")).unwrap().encode())
            }),
        ],
        now_ms in prop_oneof![Just(u64::MAX), Just(0), any::<u64>()],
    ) {
        if let Ok(event) = SignedEvent::decode(&bytes) {
            let alice = author("alice", 1);
            let _ = event.id();
            let _ = event.verify(&mut CertCache::default(), &alice.authority.public(), now_ms, None);
            prop_assert_eq!(SignedEvent::decode(&event.encode()).ok(), Some(event));
        }
    }
}

/// Bytes standing for a sealed text (the room's rules never read it).
fn sealed(bytes: &[u8]) -> Sealed {
    Sealed { session: "s".into(), ciphertext: bytes.to_vec() }
}
