//! How many connections from outside one host may be setting up at once. Every connection
//! from outside counts against the node's limit of those being set up ([`connection_limits`])
//! from its first byte until its handshake is done or times out; a host that opens silent
//! connections and opens them again as they time out would hold every place of that limit, and
//! no peer could connect to the node (a node that restarts, a cable plugged back in, a newcomer
//! given the node's address). So one host (an IP address) holds at most [`MAX_PENDING_PER_HOST`]
//! of them (a host as [`counted_host`] has it: an IPv6 one by its /64). Not counted: this
//! machine's own (loopback: anything there can do more than this), and connections through a
//! relay (their address is the relay's, which many peers share).
//!
//! Owns that count only: a behaviour with no handler and no events. It never closes a
//! connection that is set up, nor looks at peers.
//!
//! [`connection_limits`]: libp2p::connection_limits

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::behaviour::ListenFailure;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    dummy,
};
use libp2p::{Multiaddr, PeerId};

use super::inbound_slots::counted_host;

/// Connections from outside one host may be setting up at once: a host running a few nodes,
/// each dialling over TCP and QUIC, is far within it.
pub const MAX_PENDING_PER_HOST: usize = 16;

/// The refusal of one more connection from a host setting up [`MAX_PENDING_PER_HOST`].
#[derive(Debug, thiserror::Error)]
#[error("{host} is setting up {MAX_PENDING_PER_HOST} connections already")]
pub struct TooManyFromHost {
    pub host: IpAddr,
}

/// The count of connections from outside being set up, per host.
#[derive(Debug, Default)]
pub struct PendingPerHost {
    /// Each connection counted, and its host.
    pending: HashMap<ConnectionId, IpAddr>,
    /// How many are counted for each host (hosts with none are not kept).
    per_host: HashMap<IpAddr, usize>,
}

impl PendingPerHost {
    /// Counts connection `id` from `remote`, or refuses it.
    fn admit(&mut self, id: ConnectionId, remote: &Multiaddr) -> Result<(), TooManyFromHost> {
        let Some(host) = counted_host(remote) else { return Ok(()) };
        let count = self.per_host.entry(host).or_insert(0);
        if *count >= MAX_PENDING_PER_HOST {
            return Err(TooManyFromHost { host });
        }
        *count += 1;
        self.pending.insert(id, host);
        Ok(())
    }

    /// Connection `id` is set up, or failed: no longer counted.
    fn done(&mut self, id: ConnectionId) {
        let Some(host) = self.pending.remove(&id) else { return };
        if let Some(count) = self.per_host.get_mut(&host) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_host.remove(&host);
            }
        }
    }
}

impl NetworkBehaviour for PendingPerHost {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.admit(connection_id, remote_addr).map_err(ConnectionDenied::new)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.done(connection_id);
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

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) = event {
            self.done(connection_id);
        }
    }

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
    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().expect("an address")
    }

    #[test]
    fn one_host_sets_up_a_bounded_number_at_once_and_others_are_not_held_back() {
        let mut limit = PendingPerHost::default();
        let mallory = addr("/ip4/10.77.0.3/tcp/40000");
        let mut counted = Vec::new();
        for n in 0..MAX_PENDING_PER_HOST {
            let id = ConnectionId::new_unchecked(n + 1);
            limit.admit(id, &mallory).expect("within the bound");
            counted.push(id);
        }
        assert!(limit.admit(ConnectionId::new_unchecked(100), &mallory).is_err(), "one more from the host");
        assert!(limit.admit(ConnectionId::new_unchecked(101), &addr("/ip4/10.77.0.2/tcp/4001")).is_ok(), "bob");
        // One set up or failed makes room for one more.
        limit.done(counted[0]);
        assert!(limit.admit(ConnectionId::new_unchecked(102), &mallory).is_ok());
        assert!(limit.admit(ConnectionId::new_unchecked(103), &mallory).is_err());
        for id in counted.iter().skip(1).chain([&ConnectionId::new_unchecked(102)]) {
            limit.done(*id);
        }
        let mallory_host: IpAddr = "10.77.0.3".parse().unwrap();
        assert!(!limit.per_host.contains_key(&mallory_host));
        assert!(limit.per_host.len() == 1 && limit.pending.len() == 1, "only bob's still counted");
    }

    #[test]
    fn loopback_and_relayed_connections_are_not_counted() {
        let mut limit = PendingPerHost::default();
        for n in 0..10 * MAX_PENDING_PER_HOST {
            let id = ConnectionId::new_unchecked(n);
            assert!(limit.admit(id, &addr("/ip4/127.0.0.1/tcp/4001")).is_ok());
            assert!(limit.admit(id, &addr("/ip6/::1/udp/4001/quic-v1")).is_ok());
            let relayed =
                addr("/ip4/10.77.0.9/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit");
            assert!(limit.admit(id, &relayed).is_ok());
        }
        assert!(limit.pending.is_empty());
    }
}
