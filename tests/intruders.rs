//! A peer without a certificate on a room's topic: it replays a member's message, sends garbage,
//! forges a message with a member's stolen certificate, and sends an oversized one. Members show
//! none of it, and the room goes on. And a member's key and certificate in a crafted peer: its
//! flood of room changes is held to the rate on arrival. A peer passing on garbage presences is
//! ignored until its score recovers. A peer coming back to the presence topic again and again is
//! not announced to each time, and what libp2p logs about peers' malformed messages stays off
//! the terminal.

mod support;

use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, identity::Keypair};
use meshchat::clock::now_ms;
use meshchat::e2e::Sealed;
use meshchat::presence::engine::NEWCOMER_ANNOUNCE_BURST;
use meshchat::protocol::presence::{self, Presence, PresenceState};
use meshchat::room::event::{self, EventBody, EventPayload, MAX_EVENT_BYTES, SignedEvent};
use meshchat::room::{Action, EventId};
use support::NodeProc;
use support::chat::{LoopbackTrio, join_room, loopback_trio, no_event_within, register, room_id, who};
use support::gossip_peer::{GossipPeerEvent, gossip_peer, signing_gossip_peer, wait_subscribed};
use support::lobby::certified_stranger;
use support::sync_peer::SyncPeer;

/// alice and bob register; alice creates `#lobby` and bob joins it. The room's id.
fn alice_and_bob_in_lobby(alice: &mut NodeProc, bob: &mut NodeProc) -> EventId {
    register(alice, "alice", "correct horse battery staple");
    register(bob, "bob", "Tr0ub4dor&3-mesh-lantern");
    alice.send("/create lobby");
    alice.wait_for("created", |v| v["type"] == "room_created");
    join_room(bob, "lobby");
    alice.wait_for("bob joined", |v| v["type"] == "joined" && v["user"] == "bob");
    room_id(alice, "lobby")
}

#[test]
fn a_peer_without_a_certificate_gets_nothing_into_a_room() {
    let LoopbackTrio { boot: _boot, mut alice, mut bob, bob_addr, .. } = loopback_trio(&[], [None, None]);
    let lobby = alice_and_bob_in_lobby(&mut alice, &mut bob);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _context = runtime.enter();
    let key = Keypair::generate_ed25519();
    let mut mallory = gossip_peer(key.clone(), true);
    let topic = gossipsub::IdentTopic::new(event::topic_name(&lobby));
    mallory.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
    mallory.dial(bob_addr).unwrap();
    // Wait until bob has told mallory it is on the topic, then pick up one of alice's messages.
    runtime.block_on(wait_subscribed(&mut mallory, &topic));
    // Mallory hears the room once bob has taken it into his mesh; alice talks until it does.
    let mut captured = None;
    for attempt in 0..10 {
        alice.send(&format!("a real message {attempt}"));
        captured = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(2), async {
                loop {
                    if let SwarmEvent::Behaviour(GossipPeerEvent::Gossipsub(gossipsub::Event::Message {
                        message,
                        ..
                    })) = mallory.select_next_some().await
                    {
                        return message.data;
                    }
                }
            })
            .await
            .ok()
        });
        if captured.is_some() {
            break;
        }
    }
    let captured = captured.expect("alice's messages reach mallory");
    // What a peer on the topic hears is sealed: the text is nowhere in it.
    assert!(!captured.windows(14).any(|w| w == b"a real message"), "a room message travels in the clear");
    bob.wait_for("the real message", |v| v["type"] == "message" && v["text"] == "a real message 0");
    // Alice's messages shown so far (more of her attempts may still arrive, once each).
    let texts = |events: &[serde_json::Value]| -> Vec<String> {
        events.iter().filter(|v| v["type"] == "message").map(|v| v["text"].as_str().unwrap_or("").to_string()).collect()
    };
    let mut shown = vec!["a real message 0".to_string()];
    shown.extend(texts(&bob.take_within(Duration::from_millis(300))));

    // Replay, garbage, forgery with alice's certificate, oversized.
    let real = SignedEvent::decode(&captured).unwrap();
    let real_body: EventBody = cbor4ii::serde::from_slice(&real.body).unwrap();
    let forged_body = EventBody {
        nonce: 7,
        payload: EventPayload::Message {
            seq: 1,
            sealed: Sealed { session: "forged".into(), ciphertext: b"forged by mallory".to_vec() },
        },
        ..real_body
    };
    let forged = SignedEvent::seal(&key, &real.certificate, &forged_body).unwrap().encode();
    // Garbage first: publishing it clears mallory's memory of the captured message, so the
    // replay goes out.
    let attacks = [b"garbage".to_vec(), captured.clone(), forged, vec![0x41; MAX_EVENT_BYTES + 1024]];
    runtime.block_on(async {
        for data in attacks {
            mallory.behaviour_mut().gossipsub.publish(topic.clone(), data).unwrap();
        }
        // Let the swarm send them.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                mallory.select_next_some().await;
            }
        })
        .await;
    });

    // Nothing but alice's own messages, each once: no forgery, no replay, no garbage.
    shown.extend(texts(&bob.take_within(Duration::from_secs(1))));
    let mut unique = shown.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), shown.len(), "a message shown twice: {shown:?}");
    assert!(shown.iter().all(|t| t.starts_with("a real message ")), "{shown:?}");
    alice.send("the room goes on");
    bob.wait_for("the room goes on", |v| v["type"] == "message" && v["text"] == "the room goes on");
    no_event_within(&mut alice, Duration::from_millis(500), "an intruder's message", |v| {
        v["type"] == "message" && v["from"] != "alice"
    });
}

/// A certified member whose own node would hold it to the rate of room changes bypasses it: a
/// crafted peer with its key and certificate publishes a flood of leaves and joins. Every other
/// node holds it to the rate on arrival.
#[test]
fn a_member_flooding_room_changes_from_a_crafted_peer_is_held_to_the_rate() {
    let bob_dir = tempfile::tempdir().unwrap();
    let LoopbackTrio { boot: _boot, mut alice, alice_addr, mut bob, .. } =
        loopback_trio(&[], [None, Some(bob_dir.path())]);
    let lobby = alice_and_bob_in_lobby(&mut alice, &mut bob);
    bob.send("/quit");
    bob.wait_exit(Duration::from_secs(10));

    // mallory has bob's key and certificate: she is bob, without his node's limits.
    let key = meshchat::identity::DataDir::open(bob_dir.path()).unwrap().node_key().unwrap();
    let certificate = meshchat::store::NodeStore::open(bob_dir.path()).unwrap().session().unwrap().unwrap().certificate;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _context = runtime.enter();
    let mut mallory = gossip_peer(key.clone(), false);
    let topic = gossipsub::IdentTopic::new(event::topic_name(&lobby));
    mallory.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
    mallory.dial(alice_addr).unwrap();
    // Each change cites the one before, as a real node's would: none waits for anything.
    let store = meshchat::store::NodeStore::open(bob_dir.path()).unwrap();
    let kept: Vec<SignedEvent> = store.room_events().unwrap().iter().map(|b| SignedEvent::decode(b).unwrap()).collect();
    drop(store);
    let last = kept.iter().filter_map(|e| e.open_stored()).max_by_key(|v| v.body.depth).unwrap();
    let (mut prev, mut depth) = (last.id, last.body.depth);
    runtime.block_on(wait_subscribed(&mut mallory, &topic));
    const FLOOD: u64 = 100;
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    runtime.block_on(async {
        for i in 0..FLOOD {
            let action = if i % 2 == 0 { Action::Leave } else { Action::Join };
            depth += 1;
            let body = EventBody {
                author: certificate.body.account,
                room: Some(lobby),
                prev: vec![prev],
                depth,
                ts_ms: now_ms,
                nonce: i,
                payload: EventPayload::Control(action),
            };
            let signed = SignedEvent::seal(&key, &certificate, &body).unwrap();
            prev = signed.id().unwrap();
            mallory.behaviour_mut().gossipsub.publish(topic.clone(), signed.encode()).unwrap();
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                mallory.select_next_some().await;
            }
        })
        .await;
    });
    let changes = alice
        .take_within(Duration::from_secs(1))
        .iter()
        .filter(|v| (v["type"] == "joined" || v["type"] == "left") && v["user"] == "bob")
        .count();
    println!("alice took {changes} of {FLOOD} room changes flooded in about 2 s");
    assert!(changes > 0, "the first changes are within the limit");
    assert!(changes <= 24, "{changes} room changes taken: the limit is 20 at once, 2 a second");
    alice.send("/focus lobby");
    alice.send("the room goes on");
    alice.wait_for("own message", |v| v["type"] == "message" && v["text"] == "the room goes on");
}

/// A peer passing on garbage on the presence topic is soon ignored, before what it sends costs
/// a check: carol's crafted peer (her key and certificate) sends bob 100 messages that are no
/// announcement, then a well-made announcement of carol, which bob ignores with everything else
/// it sends; once its score has recovered (the penalty halves every second), another of her
/// announcements is taken and bob lists her online.
#[test]
fn a_peer_passing_on_garbage_presences_is_ignored_until_its_score_recovers() {
    let carol_dir = tempfile::tempdir().unwrap();
    let LoopbackTrio { boot: _boot, boot_addr, mut bob, bob_addr, .. } = loopback_trio(&[], [None, None]);
    register(&mut bob, "bob", "Tr0ub4dor&3-mesh-lantern");
    let (key, certificate) = certified_stranger(&boot_addr, carol_dir.path());
    let carol = SyncPeer::new(key.clone());
    let at_bob = carol.dial(&bob_addr);
    let topic = gossipsub::IdentTopic::new(presence::TOPIC);
    carol.subscribe(&topic);
    carol.wait_subscribed(&topic, &[at_bob]);
    let announce = || {
        let online = Presence {
            certificate: certificate.clone(),
            nick: "carol".into(),
            state: PresenceState::Online,
            seq: now_ms(),
            rooms: Vec::new(),
        };
        online.seal(&key).expect("sealed")
    };
    // carol's own node, which registered her, has quit: bob lists her no more.
    assert!(lists_within(&mut bob, "carol", false, Duration::from_secs(10)), "carol's node quit");
    for n in 0..100u32 {
        carol.publish(&topic, format!("no announcement {n}").into_bytes());
    }
    // Time for bob to have checked them (its score counts what it checked).
    std::thread::sleep(Duration::from_millis(500));
    carol.publish(&topic, announce());
    std::thread::sleep(Duration::from_secs(2));
    assert!(!lists(&mut bob, "carol"), "carol online, announced by a peer passing on garbage");
    // 100 rejected count 100² against it; the count halved every second, it is back above the
    // graylist's -80 within 4 s.
    std::thread::sleep(Duration::from_secs(4));
    carol.publish(&topic, announce());
    assert!(
        lists_within(&mut bob, "carol", true, Duration::from_secs(10)),
        "carol online once her peer's score recovered"
    );
}

/// Whether `node`'s `/who` lists `user` online.
fn lists(node: &mut NodeProc, user: &str) -> bool {
    who(node).iter().any(|(listed, _)| listed == user)
}

/// Whether `node`'s `/who` comes to list `user` as `listed` within `limit` (asked every 200 ms).
fn lists_within(node: &mut NodeProc, user: &str, listed: bool, limit: Duration) -> bool {
    let started = std::time::Instant::now();
    loop {
        if lists(node, user) == listed {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `peer` for `span`, counting the messages it hears on `topic`.
async fn heard_on(
    peer: &mut libp2p::Swarm<support::gossip_peer::GossipPeer>,
    topic: &gossipsub::IdentTopic,
    span: Duration,
) -> usize {
    let mut heard = 0;
    let _ = tokio::time::timeout(span, async {
        loop {
            if let SwarmEvent::Behaviour(GossipPeerEvent::Gossipsub(gossipsub::Event::Message { message, .. })) =
                peer.select_next_some().await
                && message.topic == topic.hash()
            {
                heard += 1;
            }
        }
    })
    .await;
    heard
}

/// A peer that leaves the presence topic and comes back, again and again, does not have a node
/// sign and send its announcement each time: newcomers are told at once, a few at a time, then
/// once a second all together. Mallory (no certificate needed) comes back 100 times in about 3 s and
/// counts alice's announcements: a handful, not one per return.
#[test]
fn a_peer_subscribing_again_and_again_is_not_announced_to_each_time() {
    let LoopbackTrio { boot: _boot, mut alice, alice_addr, bob: _bob, .. } = loopback_trio(&[], [None, None]);
    register(&mut alice, "alice", "correct horse battery staple");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _context = runtime.enter();
    let mut mallory = gossip_peer(Keypair::generate_ed25519(), false);
    let topic = gossipsub::IdentTopic::new(presence::TOPIC);
    mallory.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
    mallory.dial(alice_addr).unwrap();
    runtime.block_on(wait_subscribed(&mut mallory, &topic));
    let (mut returns, mut heard) = (0, 0);
    runtime.block_on(async {
        // Each leaving and coming back its own frame (gossipsub drops a subscription and its
        // undoing sent together).
        for _ in 0..100 {
            mallory.behaviour_mut().gossipsub.unsubscribe(&topic);
            heard += heard_on(&mut mallory, &topic, Duration::from_millis(15)).await;
            mallory.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
            returns += 1;
            heard += heard_on(&mut mallory, &topic, Duration::from_millis(15)).await;
        }
        heard += heard_on(&mut mallory, &topic, Duration::from_millis(1_500)).await;
    });
    println!("mallory came back {returns} times and heard {heard} announcements of alice");
    assert!(heard >= 1, "mallory hears alice's announcements");
    // About 3.5 s: a few at once, one a second after, and alice's heartbeat (every 10 s).
    let bound = NEWCOMER_ANNOUNCE_BURST as usize + 5;
    assert!(heard <= bound, "{heard} announcements for {returns} returns (at most {bound})");
}

/// What libp2p writes about peers' malformed messages stays off the user's terminal: stock
/// gossipsub signing its messages (fields meshchat does not use) sends alice 200 of them on the
/// presence topic; alice's stderr stays quiet and she answers as ever.
#[test]
fn peers_cannot_fill_the_log() {
    let LoopbackTrio { boot: _boot, mut alice, alice_addr, bob: _bob, .. } = loopback_trio(&[], [None, None]);
    register(&mut alice, "alice", "correct horse battery staple");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _context = runtime.enter();
    let mut mallory = signing_gossip_peer(Keypair::generate_ed25519());
    let topic = gossipsub::IdentTopic::new(presence::TOPIC);
    mallory.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
    mallory.dial(alice_addr).unwrap();
    runtime.block_on(wait_subscribed(&mut mallory, &topic));
    let before = alice.stderr_text().lines().count();
    runtime.block_on(async {
        for n in 0..200u32 {
            mallory.behaviour_mut().gossipsub.publish(topic.clone(), format!("signed noise {n}").into_bytes()).unwrap();
        }
        heard_on(&mut mallory, &topic, Duration::from_secs(2)).await;
    });
    alice.send("/status");
    alice.wait_for("status", |v| v["type"] == "status");
    let written = alice.stderr_text().lines().count().saturating_sub(before);
    assert!(written < 10, "{written} lines on alice's stderr for 200 messages:\n{}", alice.stderr_text());
}
