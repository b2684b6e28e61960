//! Direct-message round trips, measured the same way for meshchat and for its anchor, a bare
//! libp2p request-response swarm pair (TCP, Noise, yamux, CBOR) carrying a payload of the same
//! size. Shared by `benches/direct.rs` and the suite.

use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::request_response::{self, Message, cbor};
use libp2p::swarm::SwarmEvent;
use libp2p::{PeerId, Swarm};
use meshchat::node::UiEvent;

use super::{Node, PASSWORD, bare};

/// Round trips not counted, to warm connections and caches.
pub const WARM_UP: usize = 20;
const TEXT: &str = "a direct message of an ordinary length, about one line of chat";
/// About the size of a direct-message request with its certificate.
pub const BARE_PAYLOAD_BYTES: usize = 420;

/// `count` meshchat DM round trips (from `send_dm` to the `delivered` event) and `count` round
/// trips of the bare pair, taken in turn so that both see the machine in the same state; each
/// sorted: (meshchat, bare).
pub async fn round_trips_in_turn(count: usize) -> (Vec<Duration>, Vec<Duration>) {
    let mut mesh = MeshPair::start().await;
    let mut bare = BarePair::start().await;
    let (mut mesh_times, mut bare_times) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for i in 0..WARM_UP + count {
        let (m, b) = (mesh.round_trip(i).await, bare.round_trip().await);
        if i >= WARM_UP {
            mesh_times.push(m);
            bare_times.push(b);
        }
    }
    mesh.stop().await;
    bare.stop();
    mesh_times.sort();
    bare_times.sort();
    (mesh_times, bare_times)
}

/// Two meshchat nodes on loopback, alice (hosting the bootstrap) and bob, logged in and in
/// touch.
struct MeshPair {
    alice: Node,
    bob: Node,
}

impl MeshPair {
    async fn start() -> MeshPair {
        let mut alice = Node::start(true, None).await;
        let mut bob = Node::start(false, Some(&alice.listen[0])).await;
        bob.wait_bootstrap().await;
        alice.client.register("alice", PASSWORD).await.unwrap();
        bob.client.register("bob", PASSWORD).await.unwrap();
        alice.wait(|e| matches!(e, UiEvent::Presence { user, .. } if user == "bob")).await;
        let mut bob_events = bob.take_events();
        tokio::spawn(async move { while bob_events.recv().await.is_some() {} });
        MeshPair { alice, bob }
    }

    /// Alice's `i`-th message to bob, from `send_dm` to the receipt of this very message.
    async fn round_trip(&mut self, i: usize) -> Duration {
        let text = format!("{TEXT} ({i})");
        let start = Instant::now();
        self.alice.client.send_dm("bob", &text).await.unwrap();
        let sent = self.alice.wait(|e| matches!(e, UiEvent::Dm(dm) if dm.text == text)).await;
        let UiEvent::Dm(sent) = sent else { unreachable!("waited for a dm") };
        self.alice.wait(|e| matches!(e, UiEvent::Delivered { id, .. } if *id == sent.id)).await;
        start.elapsed()
    }

    async fn stop(self) {
        self.alice.client.shutdown().await;
        self.bob.client.shutdown().await;
    }
}

/// A bare request-response swarm pair on loopback: the client is polled here, the server
/// answers every request with one byte on a task of its own.
struct BarePair {
    client: Swarm<cbor::Behaviour<Vec<u8>, Vec<u8>>>,
    server_id: PeerId,
    serving: tokio::task::JoinHandle<()>,
    payload: Vec<u8>,
}

impl BarePair {
    async fn start() -> BarePair {
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
        BarePair { client, server_id, serving, payload: vec![7u8; BARE_PAYLOAD_BYTES] }
    }

    /// One request and its response.
    async fn round_trip(&mut self) -> Duration {
        let start = Instant::now();
        self.client.behaviour_mut().send_request(&self.server_id, self.payload.clone());
        loop {
            match self.client.select_next_some().await {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message: Message::Response { .. }, ..
                }) => return start.elapsed(),
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure { error, .. }) => {
                    panic!("bare request failed: {error}")
                }
                _ => {}
            }
        }
    }

    fn stop(self) {
        self.serving.abort();
    }
}
