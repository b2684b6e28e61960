//! Direct-message round trips, measured the same way for meshchat and for its anchor, a bare
//! libp2p request-response swarm pair (TCP, Noise, yamux, CBOR) carrying a payload of the same
//! size. Shared by `benches/direct.rs` and the suite.

use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::request_response::{self, Message};
use libp2p::swarm::SwarmEvent;
use meshchat::ui::UiEvent;

use super::{Node, PASSWORD, bare};

/// Round trips not counted, to warm connections and caches.
pub const WARM_UP: usize = 20;
const TEXT: &str = "a direct message of an ordinary length, about one line of chat";
/// About the size of a direct-message request with its certificate.
pub const BARE_PAYLOAD_BYTES: usize = 420;

/// `count` meshchat DM round trips (from `send_dm` to the `delivered` event), sorted.
pub async fn meshchat_round_trips(count: usize) -> Vec<Duration> {
    let mut alice = Node::start(true, None).await;
    let mut bob = Node::start(false, Some(&alice.listen[0])).await;
    bob.wait(|e| matches!(e, UiEvent::Bootstrap { .. })).await;
    alice.client.register("alice", PASSWORD).await.unwrap();
    bob.client.register("bob", PASSWORD).await.unwrap();
    alice.wait(|e| matches!(e, UiEvent::Presence { user, .. } if user == "bob")).await;
    let mut bob_events = bob.take_events();
    tokio::spawn(async move { while bob_events.recv().await.is_some() {} });
    let mut times = Vec::with_capacity(count);
    for i in 0..WARM_UP + count {
        let text = format!("{TEXT} ({i})");
        let start = Instant::now();
        alice.client.send_dm("bob", &text).await.unwrap();
        // The receipt of this very message.
        let sent = alice.wait(|e| matches!(e, UiEvent::Dm(dm) if dm.text == text)).await;
        let UiEvent::Dm(sent) = sent else { unreachable!("waited for a dm") };
        alice.wait(|e| matches!(e, UiEvent::Delivered { id, .. } if *id == sent.id)).await;
        if i >= WARM_UP {
            times.push(start.elapsed());
        }
    }
    alice.client.shutdown().await;
    bob.client.shutdown().await;
    times.sort();
    times
}

/// `count` round trips of a bare request-response swarm pair, sorted.
pub async fn bare_round_trips(count: usize) -> Vec<Duration> {
    let mut server = bare::swarm::<Vec<u8>, Vec<u8>>("/bench/rr/1");
    let mut client = bare::swarm::<Vec<u8>, Vec<u8>>("/bench/rr/1");
    server.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
            break address;
        }
    };
    let server_id = *server.local_peer_id();
    let serving = tokio::spawn(async move {
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
    let mut times = Vec::with_capacity(count);
    for i in 0..WARM_UP + count {
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
    serving.abort();
    times.sort();
    times
}
