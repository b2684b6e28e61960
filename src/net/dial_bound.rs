//! How many addresses one dial may try. A dial names a peer and the addresses to reach it at,
//! and libp2p tries them all, eight at a time, until one answers. The node's own dials name at
//! most [`crate::net::redial::MAX_ADDRS_PER_PEER`]; but a hole punch (DCUtR) dials the addresses
//! the other peer sends, as many as fit in its message (about 400), so a peer could have a node
//! knock on hundreds of addresses of its choosing (someone else's servers) for each hole punch.
//! A peer's own libp2p sends at most 20 (DCUtR keeps that many candidates), so a dial naming
//! more than [`MAX_DIAL_ADDRESSES`] is refused before anything is dialled.
//!
//! Owns that bound only: a behaviour with no handler and no events; it never dials, and never
//! changes a dial it lets through.

use std::convert::Infallible;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    dummy,
};
use libp2p::{Multiaddr, PeerId};

/// The most addresses one dial may name: what DCUtR sends of a peer at most.
pub const MAX_DIAL_ADDRESSES: usize = 20;

/// The refusal of a dial naming too many addresses.
#[derive(Debug, thiserror::Error)]
#[error("a dial naming {named} addresses (at most {MAX_DIAL_ADDRESSES})")]
pub struct TooManyAddresses {
    pub named: usize,
}

/// Refuses dials naming more than [`MAX_DIAL_ADDRESSES`] addresses.
#[derive(Debug, Default)]
pub struct DialBound;

impl NetworkBehaviour for DialBound {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        _effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if addresses.len() > MAX_DIAL_ADDRESSES {
            tracing::info!(named = addresses.len(), "a dial naming too many addresses refused");
            return Err(ConnectionDenied::new(TooManyAddresses { named: addresses.len() }));
        }
        Ok(Vec::new())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _event: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _peer_id: PeerId,
        _connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::Duration;

    use futures::StreamExt;
    use libp2p::swarm::DialError;
    use libp2p::swarm::dial_opts::DialOpts;
    use libp2p::{SwarmBuilder, noise, tcp, yamux};

    use super::*;

    /// Dials what it is given, the way DCUtR hands a dial to the swarm, and notes how each
    /// failed: whether it was refused before any address was tried.
    #[derive(Default)]
    struct Dialler {
        dials: VecDeque<DialOpts>,
        refused: Vec<bool>,
    }

    impl NetworkBehaviour for Dialler {
        type ConnectionHandler = dummy::ConnectionHandler;
        type ToSwarm = Infallible;

        fn handle_established_inbound_connection(
            &mut self,
            _: ConnectionId,
            _: PeerId,
            _: &Multiaddr,
            _: &Multiaddr,
        ) -> Result<THandler<Self>, ConnectionDenied> {
            Ok(dummy::ConnectionHandler)
        }

        fn handle_established_outbound_connection(
            &mut self,
            _: ConnectionId,
            _: PeerId,
            _: &Multiaddr,
            _: Endpoint,
            _: PortUse,
        ) -> Result<THandler<Self>, ConnectionDenied> {
            Ok(dummy::ConnectionHandler)
        }

        fn on_swarm_event(&mut self, event: FromSwarm) {
            if let FromSwarm::DialFailure(failure) = event {
                self.refused.push(matches!(failure.error, DialError::Denied { .. }));
            }
        }

        fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, event: THandlerOutEvent<Self>) {
            match event {}
        }

        fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
            match self.dials.pop_front() {
                Some(opts) => Poll::Ready(ToSwarm::Dial { opts }),
                None => Poll::Pending,
            }
        }
    }

    #[derive(libp2p::swarm::NetworkBehaviour)]
    struct Guarded {
        bound: DialBound,
        dialler: Dialler,
    }

    /// What became of a dial from another behaviour naming `count` closed loopback ports: whether
    /// it was refused by the bound (else it was tried, and failed at the transport).
    async fn refused(count: u16) -> bool {
        let mut swarm = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
            .expect("tcp")
            .with_behaviour(|_| Guarded { bound: DialBound, dialler: Dialler::default() })
            .expect("a behaviour")
            .build();
        // Loopback ports nobody listens on any more (refused at once).
        let listeners: Vec<std::net::TcpListener> =
            (0..count).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port")).collect();
        let addresses = listeners
            .iter()
            .map(|l| format!("/ip4/127.0.0.1/tcp/{}", l.local_addr().expect("its port").port()).parse().unwrap())
            .collect();
        drop(listeners);
        let opts = DialOpts::peer_id(PeerId::random()).addresses(addresses).build();
        swarm.behaviour_mut().dialler.dials.push_back(opts);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while swarm.behaviour().dialler.refused.is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "the dial did not end");
            let _ = tokio::time::timeout(Duration::from_millis(50), swarm.select_next_some()).await;
        }
        swarm.behaviour().dialler.refused[0]
    }

    #[tokio::test]
    async fn a_dial_naming_hundreds_of_addresses_is_refused_before_any_is_tried() {
        assert!(refused(400).await);
        assert!(refused(MAX_DIAL_ADDRESSES as u16 + 1).await);
        assert!(!refused(MAX_DIAL_ADDRESSES as u16).await, "as many as a peer's libp2p sends are tried");
        assert!(!refused(crate::net::redial::MAX_ADDRS_PER_PEER as u16).await, "the node's own dials");
    }
}
