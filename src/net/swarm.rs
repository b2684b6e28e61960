//! Swarm construction: transports (TCP and QUIC, Noise, yamux, and circuits through a relay)
//! around a [`Behaviour`].

use std::time::Duration;

use libp2p::core::upgrade;
use libp2p::identity::Keypair;
use libp2p::{Swarm, SwarmBuilder, noise, tcp, yamux};
use thiserror::Error;

use super::behaviour::{Behaviour, Roles};

/// Connections stay open while idle for this long. Presence needs every LAN peer connected, and
/// the re-dial policy reconnects anything closed, so this is long.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// The swarm could not be built.
#[derive(Debug, Error)]
pub enum SwarmError {
    #[error("cannot set up the TCP transport: {0}")]
    Transport(String),
    #[error("cannot set up the network protocols: {0}")]
    Behaviour(String),
}

/// Builds the node's swarm, in the roles it has (see [`Roles`]).
pub fn build_swarm(key: Keypair, roles: Roles) -> Result<Swarm<Behaviour>, SwarmError> {
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| SwarmError::Transport(e.to_string()))?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| SwarmError::Transport(e.to_string()))?
        .with_behaviour(|key, relay_client| Behaviour::new(key, relay_client, roles))
        .map_err(|e| SwarmError::Behaviour(e.to_string()))?
        .with_swarm_config(|c| {
            // A stream for one protocol (a direct message, a catch-up, a peer exchange) carries
            // its first bytes with the protocol's name instead of waiting for the other side to
            // confirm it: one trip less per request. Every meshchat node speaks every one of
            // them; should a peer not, the request fails when its answer is read.
            c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT)
                .with_substream_upgrade_protocol_override(upgrade::Version::V1Lazy)
        })
        .build();
    Ok(swarm)
}
