//! Benchmark (not a test): direct-message round trip, from `send_dm` to the `delivered` event,
//! between two in-process nodes on loopback, beside the round trip of a bare libp2p
//! request-response swarm pair (TCP, Noise, yamux, CBOR) carrying a payload of the same size,
//! measured in the same run.
//!
//! ```sh
//! cargo bench --bench direct
//! ```
//! Goal: meshchat p50 ≤ 1.5 × the bare p50.

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::request_response::{self, Message};
use libp2p::swarm::SwarmEvent;
use meshchat::ui::UiEvent;
use support::bare;
use support::{Node, ms, percentile};

const ROUND_TRIPS: usize = 300;
const WARM_UP: usize = 20;
const PASSWORD: &str = "correct horse battery staple";
const TEXT: &str = "a direct message of an ordinary length, about one line of chat";
/// About the size of a direct-message request with its certificate.
const BARE_PAYLOAD_BYTES: usize = 420;

async fn meshchat_round_trips() -> Vec<Duration> {
    let mut alice = Node::start(true, None).await;
    let mut bob = Node::start(false, Some(&alice.listen[0])).await;
    bob.wait(|e| matches!(e, UiEvent::Bootstrap { .. })).await;
    alice.client.register("alice", PASSWORD).await.unwrap();
    bob.client.register("bob", PASSWORD).await.unwrap();
    alice.wait(|e| matches!(e, UiEvent::Presence { user, .. } if user == "bob")).await;
    let mut bob_events = bob.take_events();
    tokio::spawn(async move { while bob_events.recv().await.is_some() {} });
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..WARM_UP + ROUND_TRIPS {
        let start = Instant::now();
        alice.client.send_dm("bob", TEXT).await.unwrap();
        alice.wait(|e| matches!(e, UiEvent::Delivered { .. })).await;
        if i >= WARM_UP {
            times.push(start.elapsed());
        }
    }
    times.sort();
    times
}

async fn bare_round_trips() -> Vec<Duration> {
    let mut server = bare::swarm::<Vec<u8>, Vec<u8>>("/bench/rr/1");
    let mut client = bare::swarm::<Vec<u8>, Vec<u8>>("/bench/rr/1");
    server.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
            break address;
        }
    };
    let server_id = *server.local_peer_id();
    tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(request_response::Event::Message {
                message: Message::Request { channel, .. },
                ..
            }) = server.select_next_some().await
            {
                let _ = server.behaviour_mut().send_response(channel, vec![1]);
            }
        }
    });
    client.dial(addr).unwrap();
    loop {
        if let SwarmEvent::ConnectionEstablished { .. } = client.select_next_some().await {
            break;
        }
    }
    let payload = vec![7u8; BARE_PAYLOAD_BYTES];
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..WARM_UP + ROUND_TRIPS {
        let start = Instant::now();
        client.behaviour_mut().send_request(&server_id, payload.clone());
        loop {
            match client.select_next_some().await {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message: Message::Response { .. }, ..
                }) => {
                    break;
                }
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure { error, .. }) => {
                    panic!("bare request failed: {error}")
                }
                _ => {}
            }
        }
        if i >= WARM_UP {
            times.push(start.elapsed());
        }
    }
    times.sort();
    times
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let bare = bare_round_trips().await;
    let mesh = meshchat_round_trips().await;
    let (bare50, mesh50) = (percentile(&bare, 0.5), percentile(&mesh, 0.5));
    let ratio = mesh50.as_secs_f64() / bare50.as_secs_f64();
    println!("| figure ({ROUND_TRIPS} round trips, loopback) | p50 | p99 |");
    println!("|---|---|---|");
    println!("| bare libp2p request-response | {:.3} ms | {:.3} ms |", ms(bare50), ms(percentile(&bare, 0.99)));
    println!("| meshchat DM, send to receipt | {:.3} ms | {:.3} ms |", ms(mesh50), ms(percentile(&mesh, 0.99)));
    println!("| ratio of p50s | {ratio:.2}× | goal ≤ 1.5×: {} |", if ratio <= 1.5 { "met" } else { "missed" });
}
