//! The gossip layer under a busy room: two real swarms built as every node builds its own
//! (`meshchat::net::build_swarm`) over loopback TCP, one publishing while its heartbeats list
//! what it published (IHAVE): more ids than a peer takes in one control message, unless the
//! list is capped, and the peer then drops the stream with every message queued behind it.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm};
use meshchat::net::{Behaviour, BehaviourEvent, Roles, build_swarm};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

const TOPIC: &str = "meshchat-gossip-test";
/// Published at once, every 50 ms: 1,000 a second, so that each heartbeat's IHAVE would list
/// more ids than a peer takes in one control message.
const BATCH: usize = 50;
const BATCHES: usize = 60;

fn node() -> Swarm<Behaviour> {
    let mut swarm = build_swarm(Keypair::generate_ed25519(), Roles::default()).expect("swarm");
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).expect("listen");
    swarm.behaviour_mut().gossipsub.subscribe(&IdentTopic::new(TOPIC)).expect("subscribe");
    swarm
}

async fn listen_address(swarm: &mut Swarm<Behaviour>) -> Multiaddr {
    timeout(Duration::from_secs(10), async {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                return address;
            }
        }
    })
    .await
    .expect("listening on loopback")
}

/// Runs the receiving swarm: accepts every message and passes its bytes on.
async fn receive(mut swarm: Swarm<Behaviour>, got: mpsc::UnboundedSender<Vec<u8>>) {
    loop {
        if let SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        })) = swarm.select_next_some().await
        {
            swarm.behaviour_mut().gossipsub.report_message_validation_result(
                &message_id,
                &propagation_source,
                MessageAcceptance::Accept,
            );
            if got.send(message.data).is_err() {
                return;
            }
        }
    }
}

/// Drives `swarm` for `span`.
async fn drive(swarm: &mut Swarm<Behaviour>, span: Duration) {
    let until = Instant::now() + span;
    while let Ok(_event) = tokio::time::timeout_at(until, swarm.select_next_some()).await {}
}

/// Message number `i`: about a chat line's size.
fn message(i: usize) -> Vec<u8> {
    format!("message {i:05} {}", "x".repeat(80)).into_bytes()
}

fn publish(swarm: &mut Swarm<Behaviour>, range: std::ops::Range<usize>) {
    for i in range {
        swarm.behaviour_mut().gossipsub.publish(IdentTopic::new(TOPIC), message(i)).expect("publish");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_publisher_loses_nothing_to_its_own_gossip() {
    let _ = tracing_subscriber::fmt().with_env_filter(std::env::var("MESHCHAT_LOG").unwrap_or_default()).try_init();
    let mut sender = node();
    let mut receiver = node();
    let address = listen_address(&mut receiver).await;
    let (got_tx, mut got) = mpsc::unbounded_channel();
    sender.dial(address).expect("dial");
    tokio::spawn(receive(receiver, got_tx));
    // Until the receiver's subscription is in.
    timeout(Duration::from_secs(10), async {
        loop {
            if let SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { .. })) =
                sender.select_next_some().await
            {
                return;
            }
        }
    })
    .await
    .expect("the receiver subscribed");

    // gossipsub's first heartbeat comes 5 s after it starts.
    drive(&mut sender, Duration::from_secs(5)).await;
    // Messages keep going out while the heartbeats (0.7 s) list them to the receiver (IHAVE):
    // 50 every 50 ms for 3 s.
    for batch in 0..BATCHES {
        publish(&mut sender, batch * BATCH..(batch + 1) * BATCH);
        drive(&mut sender, Duration::from_millis(50)).await;
    }
    let total = BATCHES * BATCH;
    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < total && Instant::now() < deadline {
        drive(&mut sender, Duration::from_millis(100)).await;
        while let Ok(data) = got.try_recv() {
            seen.insert(data);
        }
    }
    let missing: Vec<usize> = (0..total).filter(|i| !seen.contains(&message(*i))).collect();
    assert!(
        missing.is_empty(),
        "{} of {total} missing, the first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}
