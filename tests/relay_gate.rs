//! The relay and the rendezvous point of a bootstrap node started with `--public-addr` serve only
//! peers holding a valid certificate of its authority: a crafted peer built on libp2p, with no
//! certificate, is refused a reservation, refused a circuit to a certified node that holds one,
//! and can neither register at the rendezvous point nor ask it who registered; the certified
//! node itself holds its reservation. Over loopback, no mDNS.

mod support;

use std::time::Duration;

use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, SwarmBuilder, identity::Keypair, noise, relay, rendezvous, tcp, yamux};
use support::NodeBuilder;
use support::chat::{PASSWORDS, expect_bootstrap, register};

/// A peer that speaks the relay's and the rendezvous point's client sides and nothing of
/// meshchat.
#[derive(NetworkBehaviour)]
struct Stranger {
    relay: relay::client::Behaviour,
    rendezvous: rendezvous::client::Behaviour,
}

fn stranger() -> Swarm<Stranger> {
    SwarmBuilder::with_existing_identity(Keypair::generate_ed25519())
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|key, relay| Stranger { relay, rendezvous: rendezvous::client::Behaviour::new(key.clone()) })
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
    let boot_peer: PeerId = boot_id.parse().unwrap();
    let (reservation, circuit, registration, discovery) = runtime.block_on(async move {
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
        // The rendezvous point: a registration (of a made-up address) and a discovery, both
        // left unanswered.
        swarm.add_external_address("/ip4/127.0.0.1/tcp/9".parse().unwrap());
        let namespace = rendezvous::Namespace::from_static("meshchat");
        swarm.behaviour_mut().rendezvous.register(namespace.clone(), boot_peer, None).unwrap();
        swarm.behaviour_mut().rendezvous.discover(Some(namespace), None, None, boot_peer);
        let (mut registration, mut discovery) = (None, None);
        let _ = tokio::time::timeout(Duration::from_secs(15), async {
            while registration.is_none() || discovery.is_none() {
                if let SwarmEvent::Behaviour(StrangerEvent::Rendezvous(event)) = swarm.select_next_some().await {
                    match event {
                        rendezvous::client::Event::Registered { .. } => registration = Some(Ok(())),
                        rendezvous::client::Event::RegisterFailed { error, .. } => {
                            registration = Some(Err(format!("{error:?}")))
                        }
                        rendezvous::client::Event::Discovered { registrations, .. } => {
                            discovery = Some(Ok(registrations.len()))
                        }
                        rendezvous::client::Event::DiscoverFailed { error, .. } => {
                            discovery = Some(Err(format!("{error:?}")))
                        }
                        _ => {}
                    }
                }
            }
        })
        .await;
        (reservation, circuit, registration, discovery)
    });
    let refused = reservation.expect("the relay answers within 15 s");
    assert!(refused.is_err(), "a stranger was given a reservation");
    println!("reservation refused: {}", refused.unwrap_err());
    let refused = circuit.expect("the relay answers within 15 s");
    assert!(refused.is_err(), "a stranger was given a circuit to alice");
    println!("circuit refused: {}", refused.unwrap_err());

    let registration = registration.expect("the registration ends within 15 s");
    assert!(registration.is_err(), "a stranger registered at the rendezvous point");
    let discovery = discovery.expect("the discovery ends within 15 s");
    assert!(discovery.is_err(), "a stranger was told who registered: {discovery:?}");
    println!("registration refused: {}; discovery refused: {}", registration.unwrap_err(), discovery.unwrap_err());

    // Alice is unharmed: still connected, still holding her reservation.
    let status = alice.status();
    assert_eq!(status["relay"], boot_id.as_str(), "{status}");
}
