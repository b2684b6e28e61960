//! A bare libp2p swarm speaking one request-response protocol (CBOR) over TCP, Noise and yamux:
//! the anchor benchmarks measure meshchat against.

use std::time::Duration;

use libp2p::request_response::{self, ProtocolSupport, cbor};
use libp2p::{StreamProtocol, Swarm, SwarmBuilder, identity::Keypair, noise, tcp, yamux};
use serde::{Serialize, de::DeserializeOwned};

/// A swarm with only `protocol`, under a fresh identity.
pub fn swarm<Req, Resp>(protocol: &'static str) -> Swarm<cbor::Behaviour<Req, Resp>>
where
    Req: Send + Clone + std::fmt::Debug + Serialize + DeserializeOwned + 'static,
    Resp: Send + Clone + std::fmt::Debug + Serialize + DeserializeOwned + 'static,
{
    SwarmBuilder::with_existing_identity(Keypair::generate_ed25519())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .expect("tcp transport")
        .with_behaviour(|_| {
            cbor::Behaviour::new(
                [(StreamProtocol::new(protocol), ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
            )
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}
