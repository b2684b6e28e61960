//! A crafted peer that speaks meshchat's gossipsub (unsigned messages known by meshchat's
//! message id) and nothing else: it listens to topics and publishes whatever bytes a test gives
//! it, as an attacker built on the libraries would.

use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Swarm, SwarmBuilder, gossipsub, identity::Keypair, noise, ping, tcp, yamux};

#[derive(NetworkBehaviour)]
pub struct GossipPeer {
    pub gossipsub: gossipsub::Behaviour,
    pub ping: ping::Behaviour,
}

/// meshchat's gossipsub as a crafted peer speaks it. With `forget_at_once`, it forgets at once
/// what it has seen, so that it can publish again, byte for byte, what it heard.
pub fn crafted_gossipsub(forget_at_once: bool) -> gossipsub::Behaviour {
    let mut config = gossipsub::ConfigBuilder::default();
    config
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .message_id_fn(meshchat::net::behaviour::message_id)
        .heartbeat_interval(Duration::from_millis(200));
    if forget_at_once {
        config.duplicate_cache_time(Duration::from_millis(1));
    }
    let config = config.build().expect("a gossipsub configuration");
    gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config).expect("gossipsub")
}

/// A gossip peer with key `key` (`forget_at_once`: see [`crafted_gossipsub`]).
pub fn gossip_peer(key: Keypair, forget_at_once: bool) -> Swarm<GossipPeer> {
    SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .expect("tcp")
        .with_behaviour(|_| GossipPeer {
            gossipsub: crafted_gossipsub(forget_at_once),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(1))),
        })
        .expect("behaviour")
        .build()
}

/// Runs `peer` until a node it is connected to says it is on `topic` (at most 20 s).
pub async fn wait_subscribed(peer: &mut Swarm<GossipPeer>, topic: &gossipsub::IdentTopic) {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let SwarmEvent::Behaviour(GossipPeerEvent::Gossipsub(gossipsub::Event::Subscribed {
                topic: subscribed,
                ..
            })) = peer.select_next_some().await
                && subscribed == topic.hash()
            {
                return;
            }
        }
    })
    .await
    .expect("a subscription to the topic within 20 s");
}

/// A gossip peer with key `key` whose messages carry gossipsub's own author fields (a source,
/// a sequence number and a signature), which meshchat does not use: stock gossipsub as most
/// programs run it.
pub fn signing_gossip_peer(key: Keypair) -> Swarm<GossipPeer> {
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .heartbeat_interval(Duration::from_millis(200))
        .build()
        .expect("a gossipsub configuration");
    let gossipsub =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config).expect("gossipsub");
    SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .expect("tcp")
        .with_behaviour(|_| GossipPeer {
            gossipsub,
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(1))),
        })
        .expect("behaviour")
        .build()
}
