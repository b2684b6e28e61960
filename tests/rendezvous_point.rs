//! The rendezvous point as a bootstrap node with a public address serves it
//! (`meshchat::net::reach::rendezvous_config`), and a client as every node registers: a node
//! registers again at half of its registration's time, and that renewal is taken (a point that
//! counted the registration being renewed against the peer refused every renewal until the old
//! one ran out); a registration for longer than a node asks is refused.

use std::time::Duration;

use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, SwarmBuilder, noise, rendezvous, tcp, yamux};
use meshchat::net::reach::{RENDEZVOUS_NAMESPACE, RENDEZVOUS_TTL_SECS, rendezvous_config};
use tokio::time::timeout;

fn point() -> Swarm<rendezvous::server::Behaviour> {
    SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .expect("tcp")
        .with_behaviour(|_| rendezvous::server::Behaviour::new(rendezvous_config()))
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

fn client() -> Swarm<rendezvous::client::Behaviour> {
    SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .expect("tcp")
        .with_behaviour(|key: &Keypair| rendezvous::client::Behaviour::new(key.clone()))
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// Runs `point` in the background; its address.
async fn serve(mut point: Swarm<rendezvous::server::Behaviour>) -> Multiaddr {
    point.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).expect("listen");
    let address = timeout(Duration::from_secs(10), async {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = point.select_next_some().await {
                return address;
            }
        }
    })
    .await
    .expect("listening on loopback");
    tokio::spawn(async move {
        loop {
            point.select_next_some().await;
        }
    });
    address
}

/// Registers `client` at `point` for `ttl` seconds: whether the point took it.
async fn register(client: &mut Swarm<rendezvous::client::Behaviour>, point: PeerId, ttl: u64) -> bool {
    let namespace = rendezvous::Namespace::from_static(RENDEZVOUS_NAMESPACE);
    client.behaviour_mut().register(namespace, point, Some(ttl)).expect("a registration asked for");
    timeout(Duration::from_secs(10), async {
        loop {
            match client.select_next_some().await {
                SwarmEvent::Behaviour(rendezvous::client::Event::Registered { .. }) => return true,
                SwarmEvent::Behaviour(rendezvous::client::Event::RegisterFailed { error, .. }) => {
                    println!("registration refused: {error:?}");
                    return false;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("an answer from the rendezvous point")
}

#[tokio::test]
async fn a_registration_is_renewed_and_a_longer_one_refused() {
    let point = point();
    let point_id = *point.local_peer_id();
    let address = serve(point).await;
    let mut client = client();
    client.add_external_address("/ip4/127.0.0.1/tcp/9".parse().unwrap());
    client.dial(address.with(libp2p::multiaddr::Protocol::P2p(point_id))).expect("dial");
    assert!(register(&mut client, point_id, RENDEZVOUS_TTL_SECS).await, "the first registration");
    for renewal in 1..=3 {
        assert!(register(&mut client, point_id, RENDEZVOUS_TTL_SECS).await, "renewal {renewal} refused");
    }
    assert!(!register(&mut client, point_id, RENDEZVOUS_TTL_SECS * 36).await, "a registration for 72 h taken");
}
