//! The relay of a bootstrap node started with `--public-addr` serves only peers holding a valid
//! certificate of its authority: a crafted peer built on libp2p, with no certificate, is refused
//! a reservation and refused a circuit to a certified node that holds one; the certified node
//! itself holds its reservation. Over loopback, no mDNS.

mod support;

use std::time::Duration;

use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, SwarmBuilder, identity::Keypair, noise, relay, tcp, yamux};
use support::NodeBuilder;
use support::chat::{PASSWORDS, expect_bootstrap, register};

/// A peer that speaks the relay's client side and nothing of meshchat.
#[derive(NetworkBehaviour)]
struct Stranger {
    relay: relay::client::Behaviour,
}

fn stranger() -> Swarm<Stranger> {
    SwarmBuilder::with_existing_identity(Keypair::generate_ed25519())
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|_, relay| Stranger { relay })
        .unwrap()
        .build()
}

/// A free TCP port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn the_relay_serves_certified_peers_only() {
    let port = free_port();
    let addr = format!("/ip4/127.0.0.1/tcp/{port}");
    let mut boot = NodeBuilder::new("bootstrap")
        .args(&["bootstrap", "--no-mdns", "--listen", &addr, "--public-addr", &addr])
        .spawn();
    boot.ready();
    let boot_id = boot.ready_peer_id();
    let boot_addr = format!("{addr}/p2p/{boot_id}");

    // A certified user: her node holds a reservation once she is logged in.
    let mut alice = NodeBuilder::loopback("alice").args(&["--peer", &boot_addr]).spawn();
    alice.ready();
    let alice_id = alice.ready_peer_id();
    expect_bootstrap(&mut alice);
    register(&mut alice, "alice", PASSWORDS[0]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = alice.status();
        if status["relay"] == boot_id.as_str() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "alice holds no reservation: {status}");
        std::thread::sleep(Duration::from_millis(300));
    }

    // A stranger: no reservation, and no circuit to alice.
    let relay_addr: Multiaddr = boot_addr.parse().unwrap();
    let alice_peer: PeerId = alice_id.parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (reservation, circuit) = runtime.block_on(async move {
        let mut swarm = stranger();
        let circuit_listen = relay_addr.clone().with(Protocol::P2pCircuit);
        let listener = swarm.listen_on(circuit_listen).unwrap();
        let reservation = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::Behaviour(StrangerEvent::Relay(relay::client::Event::ReservationReqAccepted {
                        ..
                    })) => return Ok(()),
                    SwarmEvent::ListenerClosed { listener_id, reason, .. } if listener_id == listener => {
                        return Err(format!("{reason:?}"));
                    }
                    _ => {}
                }
            }
        })
        .await;
        let through = relay_addr.with(Protocol::P2pCircuit).with(Protocol::P2p(alice_peer));
        swarm.dial(through).unwrap();
        let circuit = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == alice_peer => {
                        return Ok(());
                    }
                    SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. } if peer == alice_peer => {
                        return Err(error.to_string());
                    }
                    _ => {}
                }
            }
        })
        .await;
        (reservation, circuit)
    });
    let refused = reservation.expect("the relay answers within 15 s");
    assert!(refused.is_err(), "a stranger was given a reservation");
    println!("reservation refused: {}", refused.unwrap_err());
    let refused = circuit.expect("the relay answers within 15 s");
    assert!(refused.is_err(), "a stranger was given a circuit to alice");
    println!("circuit refused: {}", refused.unwrap_err());

    // Alice is unharmed: still connected, still holding her reservation.
    let status = alice.status();
    assert_eq!(status["relay"], boot_id.as_str(), "{status}");
}
