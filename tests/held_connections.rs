//! Hosts on the LAN that hold every place a node has for connections from outside, each
//! connection a peer of its own that speaks libp2p but never shows a certificate, and connect
//! again whenever one is closed. On a real LAN of network namespaces: nine such hosts against
//! alice, a bootstrap node; bob, a newcomer given her address, still connects, registers, and
//! stays connected while they go on.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, SwarmBuilder, noise, ping, tcp, yamux};
use meshchat::net::inbound_slots::{EVICTION_GRACE, MAX_ESTABLISHED_INCOMING, MAX_ESTABLISHED_PER_HOST};
use support::Lab;
use support::chat::{PASSWORDS, expect_bootstrap, register};

/// alice's port.
const PORT: u16 = 4001;
/// Hosts holding connections: more than the places, whatever each host may hold.
const HOLDERS: usize = MAX_ESTABLISHED_INCOMING / MAX_ESTABLISHED_PER_HOST + 1;

/// From host `ns`, keeps [`MAX_ESTABLISHED_PER_HOST`] + 8 peers (each a fresh key) connected to
/// `to`, each connecting again 200 ms after it is closed or refused, until `stop` is set.
/// `held` counts the connections up at any time; what is returned, how many were set up.
fn hold_connections(ns: &str, to: Multiaddr, held: Arc<AtomicUsize>, stop: Arc<AtomicBool>) -> JoinHandle<usize> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        support::lab::enter_host(&ns);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let set_up = Arc::new(AtomicUsize::new(0));
        runtime.block_on(async {
            for _ in 0..MAX_ESTABLISHED_PER_HOST + 8 {
                let (to, held, stop, set_up) = (to.clone(), held.clone(), stop.clone(), set_up.clone());
                tokio::spawn(async move {
                    let mut peer = SwarmBuilder::with_new_identity()
                        .with_tokio()
                        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
                        .expect("tcp")
                        .with_behaviour(|_| ping::Behaviour::default())
                        .expect("a behaviour")
                        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
                        .build();
                    let _ = peer.dial(to.clone());
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(event) = tokio::time::timeout(Duration::from_millis(100), peer.select_next_some()).await
                        else {
                            continue;
                        };
                        match event {
                            SwarmEvent::ConnectionEstablished { .. } => {
                                held.fetch_add(1, Ordering::Relaxed);
                                set_up.fetch_add(1, Ordering::Relaxed);
                            }
                            SwarmEvent::ConnectionClosed { .. } | SwarmEvent::OutgoingConnectionError { .. } => {
                                if matches!(event, SwarmEvent::ConnectionClosed { .. }) {
                                    held.fetch_sub(1, Ordering::Relaxed);
                                }
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                let _ = peer.dial(to.clone());
                            }
                            _ => {}
                        }
                    }
                });
            }
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Let the tasks see the stop.
            tokio::time::sleep(Duration::from_millis(300)).await;
        });
        set_up.load(Ordering::Relaxed)
    })
}

#[test]
fn hosts_holding_every_place_do_not_keep_a_newcomer_out() {
    let Some(lab) = Lab::start(2 + HOLDERS) else { return };
    let listen = format!("/ip4/{}/tcp/{PORT}", lab.hosts[0].ip);
    let mut alice = lab.node(0, "alice").args(&["bootstrap", "--no-mdns", "--listen", &listen]).spawn();
    alice.ready();
    let alice_id = alice.ready_peer_id();
    let to: Multiaddr = listen.parse().expect("alice's address");
    let (held, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let holders: Vec<JoinHandle<usize>> =
        lab.hosts[2..].iter().map(|host| hold_connections(&host.ns, to.clone(), held.clone(), stop.clone())).collect();
    // Every place taken, and held past the grace a newcomer has to show a certificate.
    let full_by = Instant::now() + Duration::from_secs(30);
    while held.load(Ordering::Relaxed) < MAX_ESTABLISHED_INCOMING && Instant::now() < full_by {
        std::thread::sleep(Duration::from_millis(100));
    }
    let most = held.load(Ordering::Relaxed);
    std::thread::sleep(EVICTION_GRACE + Duration::from_secs(1));

    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut bob = lab.node(1, "bob").args(&["--no-mdns", "--peer", &listen]).spawn();
        bob.ready();
        bob.wait_peer(&alice_id, "connected");
        expect_bootstrap(&mut bob);
        register(&mut bob, "bob", PASSWORDS[0]);
        // The holders go on connecting again, taking the places of one another: never bob's.
        let events = bob.events_within(Duration::from_secs(15));
        let dropped =
            events.iter().any(|v| v["type"] == "peer" && v["peer_id"] == alice_id && v["state"] == "disconnected");
        assert!(!dropped, "bob was put out: {events:?}");
        bob.send("/who");
        bob.wait_type("online");
    }));
    stop.store(true, Ordering::Relaxed);
    let set_up: usize = holders.into_iter().map(|h| h.join().expect("a holding host's thread")).sum();
    eprintln!("the holding hosts had {most} connections up at once, {set_up} set up in all");
    assert!(most >= MAX_ESTABLISHED_INCOMING, "only {most} connections held: the test sees nothing");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    alice.send("/status");
    alice.wait_type("status");
}
