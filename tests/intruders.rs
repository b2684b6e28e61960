//! A peer without a certificate on a room's topic: it replays a member's message, sends garbage,
//! forges a message with a member's stolen certificate, and sends an oversized one. Members show
//! none of it, and the room goes on.

mod support;

use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, identity::Keypair};
use meshchat::protocol::room::{self, Body, Envelope, Payload};
use support::NodeBuilder;
use support::chat::{expect_bootstrap, join_room, no_event_within, register};
use support::gossip_peer::{GossipPeerEvent, gossip_peer};

#[test]
fn a_peer_without_a_certificate_gets_nothing_into_a_room() {
    let mut boot = NodeBuilder::loopback("bootstrap").args(&["bootstrap"]).spawn();
    let boot_addr = boot.ready()["listen"][0].as_str().unwrap().to_string();
    let mut alice = NodeBuilder::loopback("alice").args(&["--peer", &boot_addr]).spawn();
    let mut bob = NodeBuilder::loopback("bob").args(&["--peer", &boot_addr]).spawn();
    alice.ready();
    let bob_addr: libp2p::Multiaddr = bob.ready()["listen"][0].as_str().unwrap().parse().unwrap();
    expect_bootstrap(&mut alice);
    expect_bootstrap(&mut bob);
    register(&mut alice, "alice", "correct horse battery staple");
    register(&mut bob, "bob", "Tr0ub4dor&3-mesh-lantern");
    alice.send("/create lobby");
    alice.wait_for("created", |v| v["type"] == "room_created");
    join_room(&mut bob, "lobby");
    alice.wait_for("bob joined", |v| v["type"] == "joined" && v["user"] == "bob");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _context = runtime.enter();
    let key = Keypair::generate_ed25519();
    let mut mallory = gossip_peer(key.clone(), true);
    let topic = gossipsub::IdentTopic::new(room::topic_name("lobby"));
    mallory.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
    mallory.dial(bob_addr).unwrap();
    // Wait until bob has told mallory it is on the topic, then pick up one of alice's messages.
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let SwarmEvent::Behaviour(GossipPeerEvent::Gossipsub(gossipsub::Event::Subscribed { .. })) =
                    mallory.select_next_some().await
                {
                    return;
                }
            }
        })
        .await
        .expect("bob's subscription")
    });
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
    bob.wait_for("the real message", |v| v["type"] == "message" && v["text"] == "a real message 0");
    // Alice's messages shown so far (more of her attempts may still arrive, once each).
    let texts = |events: &[serde_json::Value]| -> Vec<String> {
        events.iter().filter(|v| v["type"] == "message").map(|v| v["text"].as_str().unwrap_or("").to_string()).collect()
    };
    let mut shown = vec!["a real message 0".to_string()];
    shown.extend(texts(&bob.take_within(Duration::from_millis(300))));

    // Replay, garbage, forgery with alice's certificate, oversized.
    let stolen = Envelope::decode(&captured).unwrap().certificate;
    let forged_body = Body {
        room: "lobby".into(),
        lamport: 99,
        ts_ms: 0,
        nonce: 7,
        payload: Payload::Message { text: "forged by mallory".into() },
        seq: 1,
    };
    let forged = Envelope::seal(&key, &stolen, &forged_body).unwrap().encode();
    // Garbage first: publishing it clears mallory's memory of the captured message, so the
    // replay goes out.
    let attacks = [b"garbage".to_vec(), captured.clone(), forged, vec![0x41; room::MAX_ENVELOPE_BYTES + 1024]];
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
