//! The places for established connections from outside. A node holds at most
//! [`MAX_ESTABLISHED_INCOMING`] of them, and connections stay up for as long as their peer keeps
//! them (a day idle), so hosts that open that many, each with a peer id of its own, would keep
//! every newcomer from connecting for as long as they liked: a node restarting, a cable plugged
//! back in, someone given the node's address, everyone logging in at the bootstrap node.
//!
//! So one host (an IP address, an IPv6 /64) holds at most [`MAX_ESTABLISHED_PER_HOST`] of them,
//! and when every place is taken a newcomer takes one from a peer that has not shown a valid
//! certificate (the node tells which peers have, [`InboundSlots::vouch`]): from the host that
//! holds the most, the one connected longest, if that host holds more than the newcomer's
//! would; else one connected for at least [`EVICTION_GRACE`], time enough to show a
//! certificate. A peer with a valid certificate is never put out, nor one on this
//! machine (loopback) or through a relay (a relay serves certified peers only, and their
//! address is the relay's, which many peers share): those count in the total but not per host.
//!
//! Owns those places only: a behaviour with no handler, whose only act is closing the
//! connection a newcomer took the place of. It never checks a certificate, and never dials.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::behaviour::{ConnectionClosed, ListenFailure};
use libp2p::swarm::{
    CloseConnection, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// Established connections from outside, in all.
pub const MAX_ESTABLISHED_INCOMING: usize = 512;
/// Established connections from outside from one host: a host running a few nodes, or an
/// office behind one NAT, is far within it.
pub const MAX_ESTABLISHED_PER_HOST: usize = 64;
/// How long a peer is connected before it may be put out for a newcomer, if it has shown no
/// valid certificate: a node announces its own at once on connecting.
pub const EVICTION_GRACE: Duration = Duration::from_secs(10);
/// The most peers remembered as holding a valid certificate; beyond, those whose certificates
/// ran out are forgotten first, and a new one is not remembered until there is room.
pub const MAX_VOUCHED: usize = 16_384;

/// The host a connection from `remote` is counted for: its first IP address (an IPv6 one by its
/// /64, which one machine may hold whole), unless that is loopback or the connection comes
/// through a relay.
pub fn counted_host(remote: &Multiaddr) -> Option<IpAddr> {
    match super::reach::remote_ip(remote)?.to_canonical() {
        host if host.is_loopback() => None,
        IpAddr::V6(v6) => Some(IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX)))),
        v4 => Some(v4),
    }
}

/// Why a connection from outside was refused.
#[derive(Debug, thiserror::Error)]
pub enum NoPlace {
    #[error("{host} holds {MAX_ESTABLISHED_PER_HOST} connections already")]
    HostFull { host: IpAddr },
    #[error("all {MAX_ESTABLISHED_INCOMING} places are taken by peers that may stay")]
    Full,
}

/// One established connection from outside.
#[derive(Debug, Clone, Copy)]
struct Slot {
    peer: PeerId,
    /// Its host, when counted (see [`counted_host`]).
    host: Option<IpAddr>,
    since: Instant,
}

/// The established connections from outside, per host, and the peers that may stay.
#[derive(Debug, Default)]
pub struct InboundSlots {
    slots: HashMap<ConnectionId, Slot>,
    /// How many are held by each counted host (hosts with none are not kept).
    per_host: HashMap<IpAddr, usize>,
    /// Peers that showed a valid certificate, until it runs out.
    vouched: HashMap<PeerId, Instant>,
    /// Connections put out, to be closed.
    closing: VecDeque<(PeerId, ConnectionId)>,
    waker: Option<Waker>,
}

impl InboundSlots {
    /// `peer` showed a certificate valid until `until`: its connections are never put out.
    pub fn vouch(&mut self, peer: PeerId, until: Instant, now: Instant) {
        if self.vouched.len() >= MAX_VOUCHED && !self.vouched.contains_key(&peer) {
            self.vouched.retain(|_, until| *until > now);
            if self.vouched.len() >= MAX_VOUCHED {
                return;
            }
        }
        let entry = self.vouched.entry(peer).or_insert(until);
        *entry = (*entry).max(until);
    }

    fn is_vouched(&self, peer: &PeerId, now: Instant) -> bool {
        self.vouched.get(peer).is_some_and(|until| *until > now)
    }

    /// Gives connection `id` from `peer` at `remote` a place at `now`, putting out another
    /// connection if need be (which is then to be closed), or refuses it.
    fn admit(&mut self, id: ConnectionId, peer: PeerId, remote: &Multiaddr, now: Instant) -> Result<(), NoPlace> {
        let host = counted_host(remote);
        if let Some(host) = host
            && self.per_host.get(&host).is_some_and(|n| *n >= MAX_ESTABLISHED_PER_HOST)
        {
            // A certified peer behind a full host takes the place of one of that host's others.
            let victim = self.is_vouched(&peer, now).then(|| self.victim(Some(host), true, now)).flatten();
            let Some(victim) = victim else { return Err(NoPlace::HostFull { host }) };
            self.put_out(victim);
        } else if self.slots.len() >= MAX_ESTABLISHED_INCOMING {
            let Some(victim) = self.victim(host, false, now) else { return Err(NoPlace::Full) };
            self.put_out(victim);
        }
        if let Some(host) = host {
            *self.per_host.entry(host).or_insert(0) += 1;
        }
        self.slots.insert(id, Slot { peer, host, since: now });
        Ok(())
    }

    /// The connection to put out for a newcomer from `host` (one of that host's, if `only`):
    /// one whose peer showed no valid certificate, of a counted host. From the host holding the
    /// most, the one connected longest, if that host holds more than the newcomer's would with
    /// it; else only one connected for [`EVICTION_GRACE`] at least. So a host holding more than
    /// its share always makes room for a newcomer from one holding less, however fast it
    /// connects again; and among hosts that hold alike, a connection has its grace.
    fn victim(&self, host: Option<IpAddr>, only: bool, now: Instant) -> Option<ConnectionId> {
        let count = |host: &IpAddr| self.per_host.get(host).copied().unwrap_or(0);
        let candidates = || {
            self.slots
                .iter()
                .filter_map(|(id, slot)| Some((*id, slot, slot.host?)))
                .filter(|(_, _, of)| !only || Some(*of) == host)
                .filter(|(_, slot, _)| !self.is_vouched(&slot.peer, now))
        };
        let most = |(_, slot, of): &(ConnectionId, &Slot, IpAddr)| (count(of), std::cmp::Reverse(slot.since));
        let newcomers = host.as_ref().map_or(0, count).saturating_add(1);
        if let Some((id, _, of)) = candidates().max_by_key(most)
            && count(&of) > newcomers
        {
            return Some(id);
        }
        candidates()
            .filter(|(_, slot, _)| now.saturating_duration_since(slot.since) >= EVICTION_GRACE)
            .max_by_key(most)
            .map(|(id, _, _)| id)
    }

    /// Gives up connection `id`'s place, and has it closed.
    fn put_out(&mut self, id: ConnectionId) {
        if let Some(slot) = self.release(id) {
            tracing::info!(peer = %slot.peer, host = ?slot.host, "a connection put out for a newcomer");
            self.closing.push_back((slot.peer, id));
            if let Some(waker) = self.waker.take() {
                waker.wake();
            }
        }
    }

    /// Connection `id` closed, or was refused after all: its place is free.
    fn release(&mut self, id: ConnectionId) -> Option<Slot> {
        let slot = self.slots.remove(&id)?;
        if let Some(host) = slot.host
            && let Some(count) = self.per_host.get_mut(&host)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_host.remove(&host);
            }
        }
        Some(slot)
    }
}

impl NetworkBehaviour for InboundSlots {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.admit(connection_id, peer, remote_addr, Instant::now()).map_err(ConnectionDenied::new)?;
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
        match event {
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. })
            | FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.release(connection_id);
            }
            _ => {}
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

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some((peer_id, id)) = self.closing.pop_front() {
            return Poll::Ready(ToSwarm::CloseConnection { peer_id, connection: CloseConnection::One(id) });
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().expect("an address")
    }

    const MAX_PER_BIG: usize = MAX_ESTABLISHED_PER_HOST;

    fn host_addr(host: usize) -> Multiaddr {
        addr(&format!("/ip4/10.77.{}.{}/tcp/40000", host / 200, host % 200 + 1))
    }

    /// Fills every place from `hosts` hosts, evenly, at `at`; the ids given.
    fn fill(slots: &mut InboundSlots, hosts: usize, at: Instant) -> Vec<ConnectionId> {
        (0..MAX_ESTABLISHED_INCOMING)
            .map(|n| {
                let id = ConnectionId::new_unchecked(n);
                slots.admit(id, PeerId::random(), &host_addr(n % hosts), at).expect("a free place");
                id
            })
            .collect()
    }

    #[test]
    fn one_host_holds_a_bounded_number_and_a_certified_peer_there_still_gets_in() {
        let mut slots = InboundSlots::default();
        let t0 = Instant::now();
        let mallory = host_addr(0);
        for n in 0..MAX_ESTABLISHED_PER_HOST {
            slots.admit(ConnectionId::new_unchecked(n), PeerId::random(), &mallory, t0).unwrap();
        }
        let more = ConnectionId::new_unchecked(1000);
        assert!(matches!(slots.admit(more, PeerId::random(), &mallory, t0), Err(NoPlace::HostFull { .. })));
        assert!(slots.admit(more, PeerId::random(), &host_addr(1), t0).is_ok(), "another host");
        // Behind the same NAT, a peer with a certificate takes the place of one without, once
        // that one had time to show its own.
        let alice = PeerId::random();
        slots.vouch(alice, t0 + Duration::from_secs(3600), t0);
        let early = t0 + EVICTION_GRACE / 2;
        assert!(slots.admit(ConnectionId::new_unchecked(1001), alice, &mallory, early).is_err());
        let later = t0 + EVICTION_GRACE;
        assert!(slots.admit(ConnectionId::new_unchecked(1001), alice, &mallory, later).is_ok());
        assert_eq!(slots.closing.len(), 1);
        assert_eq!(slots.per_host[&counted_host(&mallory).unwrap()], MAX_ESTABLISHED_PER_HOST);
    }

    #[test]
    fn a_newcomer_puts_out_an_uncertified_peer_of_the_host_holding_the_most() {
        let mut slots = InboundSlots::default();
        let t0 = Instant::now();
        // Eight hosts hold 56 each; one more holds 64, its first connected earliest.
        let big = host_addr(8);
        let first = ConnectionId::new_unchecked(0);
        slots.admit(first, PeerId::random(), &big, t0).unwrap();
        let t1 = t0 + Duration::from_millis(1);
        for n in 1..MAX_PER_BIG {
            slots.admit(ConnectionId::new_unchecked(n), PeerId::random(), &big, t1).unwrap();
        }
        for n in MAX_PER_BIG..MAX_ESTABLISHED_INCOMING {
            slots.admit(ConnectionId::new_unchecked(n), PeerId::random(), &host_addr(n % 8), t0).unwrap();
        }
        let later = t1 + EVICTION_GRACE;
        let newcomer = ConnectionId::new_unchecked(5000);
        assert!(slots.admit(newcomer, PeerId::random(), &addr("/ip4/10.77.9.9/tcp/4001"), later).is_ok());
        let (_, put_out) = slots.closing.pop_front().expect("one put out");
        assert_eq!(put_out, first, "the longest connected of the host holding the most");
        assert_eq!(slots.slots.len(), MAX_ESTABLISHED_INCOMING);
        assert_eq!(slots.per_host[&counted_host(&big).unwrap()], MAX_PER_BIG - 1);
        // The place freed is not freed twice when its connection closes.
        slots.release(put_out);
        assert_eq!(slots.slots.len(), MAX_ESTABLISHED_INCOMING);
    }

    #[test]
    fn certified_peers_and_newcomers_in_their_grace_are_never_put_out() {
        let mut slots = InboundSlots::default();
        let t0 = Instant::now();
        let ids = fill(&mut slots, 16, t0);
        let long = t0 + Duration::from_secs(3600);
        for id in &ids {
            let peer = slots.slots[id].peer;
            slots.vouch(peer, long, t0);
        }
        let later = t0 + EVICTION_GRACE;
        let stranger = ConnectionId::new_unchecked(5000);
        assert!(matches!(slots.admit(stranger, PeerId::random(), &host_addr(99), later), Err(NoPlace::Full)));
        // Once their certificates run out, they may be put out like anyone.
        assert!(slots.admit(stranger, PeerId::random(), &host_addr(99), long).is_ok());
        // The stranger just in is not put out by the next, in its grace: someone else is.
        let next = ConnectionId::new_unchecked(5001);
        assert!(slots.admit(next, PeerId::random(), &host_addr(98), long).is_ok());
        assert!(slots.slots.contains_key(&stranger) && slots.closing.len() == 2);
    }

    #[test]
    fn hosts_connecting_again_as_fast_as_they_like_still_make_room_for_a_newcomer() {
        let mut slots = InboundSlots::default();
        let t0 = Instant::now();
        // Eight hosts hold every place, each connection just made (younger than the grace).
        fill(&mut slots, 8, t0);
        let bob = ConnectionId::new_unchecked(5000);
        assert!(slots.admit(bob, PeerId::random(), &host_addr(50), t0).is_ok(), "a host holding less");
        // The host that lost a place for bob, connecting again, holds as many as the others
        // would: it gets nothing from them in their grace (nor does a full one)...
        let (_, put_out) = slots.closing.pop_front().unwrap();
        let again = ConnectionId::new_unchecked(5001);
        let from_a_full_one = (0..8).map(host_addr).find(|a| slots.per_host[&counted_host(a).unwrap()] == 64).unwrap();
        assert!(matches!(slots.admit(again, PeerId::random(), &from_a_full_one, t0), Err(NoPlace::HostFull { .. })));
        let short_one = (0..8).map(host_addr).find(|a| slots.per_host[&counted_host(a).unwrap()] == 63).unwrap();
        assert!(matches!(slots.admit(again, PeerId::random(), &short_one, t0), Err(NoPlace::Full)));
        // ...and bob, with one, is not the one put out for the next newcomer.
        let next = ConnectionId::new_unchecked(5002);
        assert!(slots.admit(next, PeerId::random(), &host_addr(51), t0).is_ok());
        assert!(slots.slots.contains_key(&bob));
        assert_ne!(slots.closing.pop_front().map(|(_, id)| id), Some(bob));
        assert!(!slots.slots.contains_key(&put_out));
    }

    #[test]
    fn loopback_and_relayed_connections_count_in_all_but_are_never_put_out() {
        let mut slots = InboundSlots::default();
        let t0 = Instant::now();
        let relayed =
            addr("/ip4/10.77.0.9/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit");
        for n in 0..MAX_ESTABLISHED_INCOMING {
            let remote = if n % 2 == 0 { addr("/ip4/127.0.0.1/tcp/4001") } else { relayed.clone() };
            slots.admit(ConnectionId::new_unchecked(n), PeerId::random(), &remote, t0).unwrap();
        }
        assert!(slots.per_host.is_empty());
        let later = t0 + EVICTION_GRACE * 10;
        let newcomer = ConnectionId::new_unchecked(5000);
        assert!(matches!(slots.admit(newcomer, PeerId::random(), &host_addr(0), later), Err(NoPlace::Full)));
    }

    #[test]
    fn an_ipv6_host_is_its_64() {
        let a = counted_host(&addr("/ip6/2001:db8:1:2:aaaa::1/tcp/4001")).unwrap();
        let b = counted_host(&addr("/ip6/2001:db8:1:2:ffff:1:2:3/udp/4001/quic-v1")).unwrap();
        let c = counted_host(&addr("/ip6/2001:db8:1:3::1/tcp/4001")).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(counted_host(&addr("/ip6/::ffff:10.77.0.3/tcp/1")), Some("10.77.0.3".parse().unwrap()));
        assert_eq!(counted_host(&addr("/ip6/::1/tcp/1")), None);
    }
}
