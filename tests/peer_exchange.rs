//! What peers say of addresses, from crafted peers built on the library: one answers peer
//! exchange with made-up peers, each at addresses of its choosing (someone else's servers, here
//! the test's own listeners), and reconnects every second to be asked again: the node dials
//! those addresses a bounded number of times, however often it is asked and however many peers
//! it is told of, and goes on working. Others, each a new peer id, connect and say they listen at
//! someone else's addresses, then go: the node dials none of those, only what is at the host
//! each came from.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport, cbor};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, identify, identity::Keypair, noise, ping, tcp, yamux,
};
use meshchat::net::behaviour::IDENTIFY_PROTOCOL;
use meshchat::net::redial::{HEARSAY_ADDRS_PER_PEER, HEARSAY_BURST, HEARSAY_DIALS, HEARSAY_PER_SEC};
use meshchat::protocol::peers::{self, PeerRecord, PeersRequest, PeersResponse};
use support::{NodeBuilder, NodeProc};

/// Addresses the crafted peer names: listeners of the test's, on 127.0.0.2 to 127.0.0.9.
const LISTENERS: usize = 512;
/// Made-up peers in each answer, each at its own [`peers::MAX_ADDRS_PER_PEER`] of them.
const PEERS_PER_ANSWER: usize = LISTENERS / peers::MAX_ADDRS_PER_PEER;
/// How long the crafted peer keeps answering and reconnecting.
const FLOOD: Duration = Duration::from_secs(12);

#[derive(NetworkBehaviour)]
struct Claimer {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

#[derive(NetworkBehaviour)]
struct Liar {
    peers: cbor::Behaviour<PeersRequest, PeersResponse>,
    ping: ping::Behaviour,
}

#[test]
fn made_up_peers_from_peer_exchange_are_dialled_a_bounded_number_of_times() {
    let (mut alice, alice_addr) = alice_on_loopback();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let connects = Arc::new(AtomicUsize::new(0));
    let named: Vec<Multiaddr> = runtime.block_on(async {
        let mut named = Vec::new();
        for host in 2..2 + LISTENERS / 64 {
            named.extend(counted_listeners(&format!("127.0.0.{host}"), 64, &connects).await);
        }
        named
    });

    let asked = runtime.block_on(async {
        let mut liar = crafted(Keypair::generate_ed25519(), |_| Liar {
            peers: cbor::Behaviour::new(
                [(StreamProtocol::new(peers::PROTOCOL), ProtocolSupport::Full)],
                request_response::Config::default(),
            ),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(1))),
        });
        let mut asked = 0usize;
        let end = Instant::now() + FLOOD;
        let mut reconnect = tokio::time::interval(Duration::from_secs(1));
        let mut alice_id: Option<PeerId> = None;
        while Instant::now() < end {
            tokio::select! {
                _ = reconnect.tick() => {
                    if let Some(alice) = alice_id {
                        let _ = liar.disconnect_peer_id(alice);
                    }
                    liar.dial(alice_addr.clone()).expect("a dial of alice");
                }
                event = liar.select_next_some() => match event {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => alice_id = Some(peer_id),
                    SwarmEvent::Behaviour(LiarEvent::Peers(request_response::Event::Message {
                        message: request_response::Message::Request { channel, .. },
                        ..
                    })) => {
                        asked += 1;
                        // Fresh peers every time, each at its own share of the listeners.
                        let peers = named
                            .chunks(peers::MAX_ADDRS_PER_PEER)
                            .map(|addrs| PeerRecord::new(&PeerId::random(), addrs))
                            .collect();
                        let _ = liar.behaviour_mut().peers.send_response(channel, PeersResponse { peers });
                    }
                    _ => {}
                },
                _ = tokio::time::sleep_until(end.into()) => break,
            }
        }
        asked
    });
    // Dials still under way when the flood ends are let finish.
    std::thread::sleep(Duration::from_secs(3));
    let connected = connects.load(Ordering::Relaxed);
    let taken = f64::from(HEARSAY_BURST) + f64::from(HEARSAY_PER_SEC) * (FLOOD + Duration::from_secs(3)).as_secs_f64();
    let bound = taken.ceil() as usize * HEARSAY_ADDRS_PER_PEER * HEARSAY_DIALS as usize;
    eprintln!(
        "asked {asked} times, {PEERS_PER_ANSWER} made-up peers at {LISTENERS} addresses each time: \
         {connected} connections to those addresses (bound {bound})"
    );
    assert!(asked >= 10, "the crafted peer was asked {asked} times");
    assert!(connected > 0, "none of the named addresses was dialled: the test sees nothing");
    assert!(connected <= bound, "{connected} connections to addresses a peer made up, more than {bound}");
    // And the node goes on answering.
    let status = alice.status();
    assert!(status["peer_id"].is_string(), "{status}");
}

/// alice, a node on loopback, and her address.
fn alice_on_loopback() -> (NodeProc, Multiaddr) {
    let mut alice = NodeBuilder::loopback("alice").spawn();
    let ready = alice.ready();
    let addr = ready["listen"][0].as_str().expect("a listen address").parse().expect("an address");
    (alice, addr)
}

/// A crafted peer with key `key` and the behaviour `behaviour` makes, over TCP, in the current
/// runtime.
fn crafted<B: NetworkBehaviour>(key: Keypair, behaviour: impl FnOnce(&Keypair) -> B) -> Swarm<B> {
    SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .expect("tcp")
        .with_behaviour(behaviour)
        .expect("the behaviour")
        .build()
}

/// Listeners at `host` (a loopback address), each counting the connections made to it into
/// `connects`; their addresses.
async fn counted_listeners(host: &str, count: usize, connects: &Arc<AtomicUsize>) -> Vec<Multiaddr> {
    let mut addrs = Vec::new();
    for _ in 0..count {
        let listener = tokio::net::TcpListener::bind(format!("{host}:0")).await.expect("a listener");
        addrs.push(format!("/ip4/{host}/tcp/{}", listener.local_addr().unwrap().port()).parse().unwrap());
        let connects = connects.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                connects.fetch_add(1, Ordering::Relaxed);
                drop(stream);
            }
        });
    }
    addrs
}

#[test]
fn a_peer_naming_another_hosts_addresses_as_its_own_has_none_of_them_dialled() {
    let (mut alice, alice_addr) = alice_on_loopback();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (elsewhere, at_own_host) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (others, own) = runtime.block_on(async {
        (counted_listeners("127.0.0.2", 15, &elsewhere).await, counted_listeners("127.0.0.1", 1, &at_own_host).await)
    });
    // Twenty peer ids, one after the other: each connects from 127.0.0.1, says it listens at the
    // fifteen addresses on 127.0.0.2 and at one on 127.0.0.1, is identified, and goes.
    let identified = runtime.block_on(async {
        let mut identified = 0;
        for _ in 0..20 {
            let mut claimer = crafted(Keypair::generate_ed25519(), |key| Claimer {
                identify: identify::Behaviour::new(identify::Config::new(IDENTIFY_PROTOCOL.to_string(), key.public())),
                ping: ping::Behaviour::new(ping::Config::new()),
            });
            for addr in own.iter().chain(&others) {
                claimer.add_external_address(addr.clone());
            }
            claimer.dial(alice_addr.clone()).expect("a dial of alice");
            let sent = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    if let SwarmEvent::Behaviour(ClaimerEvent::Identify(identify::Event::Sent { .. })) =
                        claimer.select_next_some().await
                    {
                        return;
                    }
                }
            })
            .await;
            identified += usize::from(sent.is_ok());
            drop(claimer);
        }
        identified
    });
    // Each is re-dialled with back-off once it has gone (from 250 ms up to 5 s between dials).
    std::thread::sleep(Duration::from_secs(8));
    let (elsewhere, at_own_host) = (elsewhere.load(Ordering::Relaxed), at_own_host.load(Ordering::Relaxed));
    eprintln!(
        "{identified} of 20 identified: {elsewhere} connections to the addresses on another host, \
         {at_own_host} to the one on their own"
    );
    assert_eq!(identified, 20);
    assert!(at_own_host > 0, "the address at the peers' own host was never dialled: the test sees nothing");
    assert_eq!(elsewhere, 0, "connections to addresses on another host than the peers'");
    let status = alice.status();
    assert!(status["peer_id"].is_string(), "{status}");
}
