//! One-to-one chat: receipts, notifications, mute, `/query`, unknown users, 50 messages at once,
//! a message to an offline user that survives the sender's `kill -9`, and a forged sender
//! refused.

mod support;

use std::time::Duration;

use futures::StreamExt;
use libp2p::request_response::{self, Message, ProtocolSupport, cbor};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{StreamProtocol, Swarm, SwarmBuilder, identity::Keypair, noise, ping, tcp, yamux};
use meshchat::protocol::dm::{self, DmRefusal, DmRequest, DmResponse};
use meshchat::store::NodeStore;
use serde_json::Value;
use support::chat::{
    PASSWORDS, Pair, alice_and_bob, expect_bootstrap, expect_error, no_event_within, register, str_of,
};
use support::{Lab, NodeBuilder, NodeProc};

const ALICE_PW: &str = PASSWORDS[0];
const BOB_PW: &str = PASSWORDS[1];

fn is_dm(v: &Value, from: &str, to: &str, text: &str) -> bool {
    v["type"] == "dm" && v["from"] == from && v["to"] == to && v["text"] == text
}

fn dm(node: &mut NodeProc, from: &str, to: &str, text: &str) -> Value {
    node.wait_for(&format!("dm {text:?} from {from} to {to}"), |v| is_dm(v, from, to, text))
}

fn notified_by(node: &mut NodeProc, from: &str) {
    node.wait_for(&format!("notification from {from}"), |v| {
        v["type"] == "notification" && v["kind"] == "dm" && v["from"] == from
    });
}

fn delivered(node: &mut NodeProc, id: &str, to: &str) {
    node.wait_for(&format!("receipt for {id}"), |v| v["type"] == "delivered" && v["id"] == id && v["to"] == to);
}

/// A peer that speaks the direct-message protocol (and ping, like any meshchat peer) but has
/// no certificate of its own.
#[derive(NetworkBehaviour)]
struct Stranger {
    dm: cbor::Behaviour<DmRequest, DmResponse>,
    ping: ping::Behaviour,
}

fn stranger() -> Swarm<Stranger> {
    SwarmBuilder::with_existing_identity(Keypair::generate_ed25519())
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|_| Stranger {
            dm: cbor::Behaviour::new(
                [(StreamProtocol::new(dm::PROTOCOL), ProtocolSupport::Full)],
                request_response::Config::default(),
            ),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(1))),
        })
        .unwrap()
        .build()
}

#[test]
fn a_conversation_with_receipts_notifications_and_mute() {
    let Some(lab) = Lab::start(3) else { return };
    let Pair { boot: _boot, dirs: _dirs, mut alice, mut bob } = alice_and_bob(&lab);

    // A message arrives with a receipt and a notification.
    alice.send("/msg bob hello bob");
    let sent = dm(&mut alice, "alice", "bob", "hello bob");
    let got = dm(&mut bob, "alice", "bob", "hello bob");
    assert_eq!(sent["id"], got["id"]);
    notified_by(&mut bob, "alice");
    delivered(&mut alice, str_of(&sent, "id"), "bob");
    no_event_within(&mut alice, Duration::from_millis(200), "a notification of one's own message", |v| {
        v["type"] == "notification"
    });

    // Muted: the message still arrives and is kept, silently.
    bob.send("/mute @alice");
    bob.wait_for("muted", |v| v["type"] == "muted" && v["target"] == "@alice");
    alice.send("/msg bob psst");
    dm(&mut bob, "alice", "bob", "psst");
    no_event_within(&mut bob, Duration::from_millis(300), "a notification while muted", |v| {
        v["type"] == "notification"
    });
    bob.send("/unmute @alice");
    bob.wait_for("unmuted", |v| v["type"] == "unmuted" && v["target"] == "@alice");

    // /query, then plain text reaches the other user.
    bob.send("/query alice");
    bob.wait_for("focus", |v| v["type"] == "focus" && v["target"] == "@alice");
    bob.send("hi alice, plain text");
    dm(&mut alice, "bob", "alice", "hi alice, plain text");
    notified_by(&mut alice, "bob");

    // Refusals.
    alice.send("/msg nobody_here are you real");
    assert!(expect_error(&mut alice, "no_such_user").contains("nobody_here"));
    alice.send("/msg alice talking to myself");
    expect_error(&mut alice, "usage");
    alice.send(&format!("/msg bob {}", "y".repeat(4097)));
    expect_error(&mut alice, "too_long");
    alice.send("/msg bob");
    expect_error(&mut alice, "usage");

    // 50 messages sent at once arrive once each, in order, each with its receipt.
    for i in 0..50 {
        alice.send(&format!("/msg bob burst {i}"));
    }
    let mut ids = Vec::new();
    for i in 0..50 {
        let v = dm(&mut bob, "alice", "bob", &format!("burst {i}"));
        ids.push(str_of(&v, "id").to_string());
    }
    for id in &ids {
        delivered(&mut alice, id, "bob");
    }
    assert_eq!(alice.status()["outbox"], 0, "a delivered message is still waiting to be sent");
    let later = bob.events_within(Duration::from_millis(500));
    let again = later.iter().filter(|v| v["type"] == "dm" && str_of(v, "text").starts_with("burst ")).count();
    assert_eq!(again, 0, "messages shown twice: {later:?}");

    // The conversation's history holds both sides in order.
    bob.send("/history 3");
    let history = bob.wait_type("history");
    assert_eq!(history["target"], "@alice");
    let texts: Vec<&str> = history["messages"].as_array().unwrap().iter().map(|m| str_of(m, "text")).collect();
    assert_eq!(texts, ["burst 47", "burst 48", "burst 49"], "{history}");
    assert!(history["messages"].as_array().unwrap().iter().all(|m| m["type"] == "dm"));
}

#[test]
fn a_message_to_an_offline_user_waits_even_through_a_crash() {
    let Some(lab) = Lab::start(3) else { return };
    let Pair { boot: _boot, dirs, mut alice, mut bob } = alice_and_bob(&lab);
    bob.kill();
    alice.wait_for("bob offline", |v| v["type"] == "presence" && v["user"] == "bob" && v["state"] == "offline");

    alice.send("/msg bob are you there?");
    let sent = dm(&mut alice, "alice", "bob", "are you there?");
    let id = str_of(&sent, "id").to_string();
    alice.wait_for("offline notice", |v| v["type"] == "info" && str_of(v, "message").contains("bob is offline"));
    assert_eq!(alice.status()["outbox"], 1);

    // The sender crashes and comes back; then the receiver comes back.
    alice.kill();
    let mut alice = lab.node(1, "alice again").data_dir(dirs[0].path()).spawn();
    alice.wait_for("resumed", |v| v["type"] == "logged_in" && v["resumed"] == true);
    assert_eq!(alice.status()["outbox"], 1);
    let mut bob = lab.node(2, "bob again").data_dir(dirs[1].path()).spawn();
    bob.wait_for("resumed", |v| v["type"] == "logged_in" && v["resumed"] == true);
    let got = dm(&mut bob, "alice", "bob", "are you there?");
    assert_eq!(got["id"], id.as_str());
    notified_by(&mut bob, "alice");
    delivered(&mut alice, &id, "bob");
    assert_eq!(alice.status()["outbox"], 0);
    no_event_within(&mut bob, Duration::from_millis(500), "the message twice", |v| v["type"] == "dm");
}

#[test]
fn a_sender_whose_certificate_names_another_peer_is_refused() {
    let mut boot = NodeBuilder::loopback("bootstrap").args(&["bootstrap"]).spawn();
    let ready = boot.ready();
    let boot_addr = ready["listen"][0].as_str().unwrap().to_string();
    let alice_dir = tempfile::tempdir().unwrap();
    let mut alice = NodeBuilder::loopback("alice").args(&["--peer", &boot_addr]).data_dir(alice_dir.path()).spawn();
    let mut bob = NodeBuilder::loopback("bob").args(&["--peer", &boot_addr]).spawn();
    alice.ready();
    let bob_ready = bob.ready();
    let bob_addr: libp2p::Multiaddr = bob_ready["listen"][0].as_str().unwrap().parse().unwrap();
    expect_bootstrap(&mut alice);
    expect_bootstrap(&mut bob);
    register(&mut alice, "alice", ALICE_PW);
    register(&mut bob, "bob", BOB_PW);

    // Mallory has alice's (valid, signed) certificate but not alice's peer key.
    alice.send("/quit");
    alice.wait_exit(Duration::from_secs(10));
    let stolen = NodeStore::open(alice_dir.path()).unwrap().session().unwrap().expect("alice's session").certificate;
    let forged = DmRequest {
        certificate: stolen,
        // The certificate is checked before the address: whoever it names, it is refused.
        to: meshchat::account::AccountId::random(),
        seq: 1,
        id: dm::new_id(),
        ts_ms: 0,
        text: "send me your password".into(),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let answer = runtime.block_on(async move {
        let mut mallory = stranger();
        mallory.dial(bob_addr).unwrap();
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match mallory.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                        mallory.behaviour_mut().dm.send_request(&peer_id, forged.clone());
                    }
                    SwarmEvent::Behaviour(StrangerEvent::Dm(request_response::Event::Message {
                        message: Message::Response { response, .. },
                        ..
                    })) => return response,
                    SwarmEvent::Behaviour(StrangerEvent::Dm(request_response::Event::OutboundFailure {
                        error,
                        ..
                    })) => {
                        panic!("the request failed: {error}")
                    }
                    _ => {}
                }
            }
        })
        .await
        .expect("an answer from bob")
    });
    assert_eq!(answer, DmResponse::Refused(DmRefusal::BadCertificate));
    no_event_within(&mut bob, Duration::from_millis(500), "the forged message", |v| v["type"] == "dm");
}
