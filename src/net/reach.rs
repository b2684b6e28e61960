//! Reach beyond one LAN: the settings of the circuit relay v2 server, AutoNAT and rendezvous
//! that a bootstrap node started with `--public-addr` serves, the settings of the client side
//! every node runs, and [`RelayGate`], the set of peers the relay serves (those holding a valid
//! certificate of its authority, and itself).
//!
//! Settings and the gate only: this module never dials, never decides when to reserve or whom
//! to register (the node does, `node/reach.rs`), and never checks a certificate itself (it is
//! told which peers hold one, and until when).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId, autonat, relay, rendezvous};

/// The rendezvous namespace nodes of this chat register under.
pub const RENDEZVOUS_NAMESPACE: &str = "meshchat";
/// How long a registration at the rendezvous point lasts (its minimum); a node registers again
/// at half of it.
pub const RENDEZVOUS_TTL_SECS: u64 = rendezvous::MIN_TTL;
/// The most registrations the rendezvous point keeps, in all.
pub const RENDEZVOUS_MAX_REGISTRATIONS: usize = 4_096;

/// How long a relay reservation lasts before the node renews it (the relay client renews on
/// its own, ahead of the end).
pub const RESERVATION_DURATION: Duration = Duration::from_secs(60 * 60);
/// The most reservations the relay holds at once, and per peer.
pub const MAX_RESERVATIONS: usize = 256;
pub const MAX_RESERVATIONS_PER_PEER: usize = 2;
/// Reservation requests a peer may make: a bucket of this many, one back every
/// [`RESERVATION_REFILL`] (a node not yet certified asks again every few seconds).
pub const RESERVATION_BURST: u32 = 30;
pub const RESERVATION_REFILL: Duration = Duration::from_secs(10);
/// Circuits the relay carries at once, and per peer (one to each node of the other site it
/// talks to, a few more while they are re-established).
pub const MAX_CIRCUITS: usize = 512;
pub const MAX_CIRCUITS_PER_PEER: usize = 32;
/// Circuits a peer may open: a bucket of this many, one back every [`CIRCUIT_REFILL`].
pub const CIRCUIT_BURST: u32 = 64;
pub const CIRCUIT_REFILL: Duration = Duration::from_secs(5);
/// How long one circuit lasts: as long as a certificate (a session), so that chat between two
/// sites whose NATs cannot be punched goes on all day; the node dials again when it ends.
pub const MAX_CIRCUIT_DURATION: Duration = Duration::from_secs(crate::cert::CERT_LIFETIME_SECS);
/// The bytes one circuit carries, both directions together: a day of busy chat, with catch-ups
/// (a page of catch-up is at most 1 MiB; a room's 10,000 messages make a few MiB).
pub const MAX_CIRCUIT_BYTES: u64 = 256 * 1024 * 1024;

/// How long an AutoNAT probe may take: longer than the server's dial back may (the swarm's
/// connection timeout, 10 s), so that a NAT that drops the dial unanswered still gets its answer.
pub const AUTONAT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long after its start a node first asks whether it is reachable.
pub const AUTONAT_BOOT_DELAY: Duration = Duration::from_secs(1);
/// How often a node whose reachability is unknown asks again; once known, how often it checks.
pub const AUTONAT_RETRY: Duration = Duration::from_secs(5);
pub const AUTONAT_REFRESH: Duration = Duration::from_secs(5 * 60);
/// Dial-back probes the AutoNAT server makes in a period, in all and per peer.
pub const AUTONAT_MAX_PROBES: usize = 64;
pub const AUTONAT_MAX_PROBES_PER_PEER: usize = 2;
pub const AUTONAT_PROBE_PERIOD: Duration = Duration::from_secs(10);

/// The peers the relay serves: each with the time its certificate runs out. Shared between the
/// event loop, which admits a peer when it sees a valid certificate of it (one it issued, or one
/// in a presence announcement), and the relay, which asks on each reservation and circuit.
#[derive(Debug, Clone, Default)]
pub struct RelayGate {
    certified: Arc<Mutex<HashMap<PeerId, Instant>>>,
}

/// The most peers the gate remembers; beyond, those whose certificates ran out are forgotten
/// first, and a new one waits until there is room.
pub const MAX_GATE_PEERS: usize = 16_384;

impl RelayGate {
    /// `peer` holds a valid certificate until `until`.
    pub fn admit(&self, peer: PeerId, until: Instant, now: Instant) {
        let Ok(mut certified) = self.certified.lock() else { return };
        if certified.len() >= MAX_GATE_PEERS && !certified.contains_key(&peer) {
            certified.retain(|_, until| *until > now);
            if certified.len() >= MAX_GATE_PEERS {
                return;
            }
        }
        let entry = certified.entry(peer).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Forgets `peer`: the relay serves it no more.
    pub fn revoke(&self, peer: &PeerId) {
        if let Ok(mut certified) = self.certified.lock() {
            certified.remove(peer);
        }
    }

    /// Whether the relay serves `peer` at `now`.
    pub fn admits(&self, peer: &PeerId, now: Instant) -> bool {
        self.certified.lock().is_ok_and(|certified| certified.get(peer).is_some_and(|until| *until > now))
    }
}

/// The relay server's settings: only peers the gate admits reserve or open circuits, each
/// within its own rate, with circuits that last a session.
pub fn relay_config(gate: &RelayGate) -> relay::Config {
    let certified = |gate: RelayGate| -> Box<dyn relay::RateLimiter> {
        Box::new(move |peer: PeerId, _addr: &Multiaddr, now: Instant| gate.admits(&peer, now))
    };
    let config = relay::Config {
        max_reservations: MAX_RESERVATIONS,
        max_reservations_per_peer: MAX_RESERVATIONS_PER_PEER,
        reservation_duration: RESERVATION_DURATION,
        reservation_rate_limiters: vec![certified(gate.clone())],
        max_circuits: MAX_CIRCUITS,
        max_circuits_per_peer: MAX_CIRCUITS_PER_PEER,
        max_circuit_duration: MAX_CIRCUIT_DURATION,
        max_circuit_bytes: MAX_CIRCUIT_BYTES,
        circuit_src_rate_limiters: vec![certified(gate.clone())],
    };
    let burst = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    config
        .reservation_rate_per_peer(burst(RESERVATION_BURST), RESERVATION_REFILL)
        .circuit_src_per_peer(burst(CIRCUIT_BURST), CIRCUIT_REFILL)
}

/// AutoNAT's settings: a node asks only the servers it is given (a bootstrap node that serves
/// reach), never its LAN neighbours, who would reach it at its LAN address; only such a bootstrap
/// node (`serves`) dials back.
pub fn autonat_config(serves: bool) -> autonat::Config {
    autonat::Config {
        timeout: AUTONAT_TIMEOUT,
        boot_delay: AUTONAT_BOOT_DELAY,
        retry_interval: AUTONAT_RETRY,
        refresh_interval: AUTONAT_REFRESH,
        use_connected: false,
        confidence_max: 1,
        // The sites of one chat may well use private addresses among themselves (a VPN, a
        // campus): a probe is judged by whether the dial back arrives, not by the address.
        only_global_ips: false,
        throttle_clients_global_max: if serves { AUTONAT_MAX_PROBES } else { 0 },
        throttle_clients_peer_max: if serves { AUTONAT_MAX_PROBES_PER_PEER } else { 0 },
        throttle_clients_period: AUTONAT_PROBE_PERIOD,
        ..autonat::Config::default()
    }
}

/// The most registrations one peer holds at the rendezvous point. The point counts the
/// registration a peer renews against it (one new registration replaces the old in the same
/// namespace only once it is taken), so one would refuse every renewal until the old one ran
/// out; two let a node renew and hold a namespace besides meshchat's at most.
pub const RENDEZVOUS_MAX_PER_PEER: usize = 2;
/// The most registrations a node is told of at once, a page (the next asked with the cookie
/// of the last).
pub const RENDEZVOUS_DISCOVER_PAGE: u64 = 64;

/// The rendezvous point's settings: registrations last as long as a node asks, no longer.
pub fn rendezvous_config() -> rendezvous::server::Config {
    rendezvous::server::Config::default()
        .with_max_ttl(RENDEZVOUS_TTL_SECS)
        .with_max_registration_per_peer(RENDEZVOUS_MAX_PER_PEER)
        .with_max_registration_total(RENDEZVOUS_MAX_REGISTRATIONS)
}

/// Whether `addr` goes through a relay.
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::P2pCircuit))
}

/// The IP address a connection with remote address `remote` comes from: its first one, or
/// `None` through a relay, whose address is the relay's and says nothing of the peer.
pub fn remote_ip(remote: &Multiaddr) -> Option<std::net::IpAddr> {
    if is_relayed(remote) {
        return None;
    }
    remote.iter().find_map(|protocol| match protocol {
        libp2p::multiaddr::Protocol::Ip4(ip) => Some(ip.into()),
        libp2p::multiaddr::Protocol::Ip6(ip) => Some(ip.into()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connections_ip_is_its_first_and_unknown_through_a_relay() {
        let addr = |s: &str| s.parse::<Multiaddr>().unwrap();
        assert_eq!(remote_ip(&addr("/ip4/192.168.1.20/tcp/4001")), Some("192.168.1.20".parse().unwrap()));
        assert_eq!(remote_ip(&addr("/ip6/fe80::1/udp/4001/quic-v1")), Some("fe80::1".parse().unwrap()));
        let relayed = "/ip4/192.168.1.7/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit";
        assert_eq!(remote_ip(&addr(relayed)), None, "the relay's address is not the asker's");
        assert_eq!(remote_ip(&addr("/dns4/example.lan/tcp/4001")), None);
    }

    #[test]
    fn the_gate_admits_a_certified_peer_until_its_certificate_runs_out() {
        let gate = RelayGate::default();
        let now = Instant::now();
        let (peer, stranger) = (PeerId::random(), PeerId::random());
        gate.admit(peer, now + Duration::from_secs(60), now);
        assert!(gate.admits(&peer, now));
        assert!(!gate.admits(&stranger, now));
        assert!(!gate.admits(&peer, now + Duration::from_secs(61)));
        // An older certificate seen later does not shorten the admission.
        gate.admit(peer, now + Duration::from_secs(10), now);
        assert!(gate.admits(&peer, now + Duration::from_secs(30)));
    }

    #[test]
    fn the_gate_is_bounded_and_makes_room_from_the_expired() {
        let gate = RelayGate::default();
        let now = Instant::now();
        for _ in 0..MAX_GATE_PEERS {
            gate.admit(PeerId::random(), now + Duration::from_secs(1), now);
        }
        let late = PeerId::random();
        gate.admit(late, now + Duration::from_secs(60), now);
        assert!(!gate.admits(&late, now), "no room while every admission holds");
        let later = now + Duration::from_secs(2);
        gate.admit(late, later + Duration::from_secs(60), later);
        assert!(gate.admits(&late, later));
    }

    #[test]
    fn the_relay_serves_only_admitted_peers() {
        let gate = RelayGate::default();
        let mut config = relay_config(&gate);
        let now = Instant::now();
        let (peer, stranger) = (PeerId::random(), PeerId::random());
        gate.admit(peer, now + Duration::from_secs(60), now);
        let addr: Multiaddr = "/ip4/10.77.1.2/tcp/4001".parse().unwrap();
        let allowed = |limiters: &mut Vec<Box<dyn relay::RateLimiter>>, who: PeerId| {
            limiters.iter_mut().all(|l| l.try_next(who, &addr, now))
        };
        assert!(allowed(&mut config.reservation_rate_limiters, peer));
        assert!(!allowed(&mut config.reservation_rate_limiters, stranger));
        assert!(allowed(&mut config.circuit_src_rate_limiters, peer));
        assert!(!allowed(&mut config.circuit_src_rate_limiters, stranger));
    }
}
