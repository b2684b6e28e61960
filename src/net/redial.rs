//! Whom to dial, and when: the re-dial policy, as plain state with the time passed in.
//!
//! Two kinds of targets:
//! - configured addresses (`--peer`), dialled at start and re-dialled for as long as the node
//!   runs whenever no connection to the peer behind them is open;
//! - known peers (found by mDNS, or learned from identify), dialled while they are not
//!   connected, and forgotten after [`FORGET_AFTER`] of failed dials, when mDNS expires their
//!   last address, or, the longest unreachable first, to make room for a new one when
//!   [`MAX_KNOWN_PEERS`] are known; a peer known only from another peer's word (peer
//!   exchange) is forgotten after [`HEARSAY_DIALS`] failed dials unless it was ever reached,
//!   and such peers are taken at a bounded rate ([`HEARSAY_BURST`], [`HEARSAY_PER_SEC`]), a
//!   bounded number per teller ([`HEARSAY_PER_TELLER`]), at a few addresses each
//!   ([`HEARSAY_ADDRS_PER_PEER`]) until reached.
//!
//! Peers never reached, whoever named them, are dialled at a bounded pace
//! ([`UNPROVEN_DIAL_BURST`], [`UNPROVEN_DIALS_PER_SEC`]; the least dialled and the last named
//! first), and once a minute ([`UNREACHED_BACKOFF`]) after [`HEARSAY_DIALS`] failed dials: what
//! anyone names cannot turn the node on an address. A peer reached before is re-dialled as
//! often as the back-off says. What a peer says of its own addresses is taken by the node only
//! at the host it is reached at ([`at_same_host`]).
//!
//! Peer exchange tells others only of peers this node has reached, those connected now first.
//!
//! Failed dials back off exponentially with jitter up to [`MAX_BACKOFF`]; a connection that
//! closes is re-dialled after a short random delay, so both ends of a broken link do not dial at
//! the same instant. The node executes the planned dials and reports back what happened.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};

use crate::rate_limit::RateLimit;

/// The first back-off after a failed dial.
pub const BASE_BACKOFF: Duration = Duration::from_millis(250);
/// The longest back-off between dials of an unreachable target.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Delay before re-dialling a peer whose last connection closed (jittered ×0.5–1.5).
pub const RECONNECT_DELAY: Duration = Duration::from_millis(200);
/// A known (not configured) peer that could not be reached for this long is forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(10 * 60);
/// The most addresses kept for one known peer, and the most known peers: what peers tell of
/// themselves and of others (identify, peer exchange, a rendezvous point) is bounded here.
pub const MAX_ADDRS_PER_PEER: usize = 16;
pub const MAX_KNOWN_PEERS: usize = 4096;
/// Dials of a peer known only from another peer's word (peer exchange) and never reached before
/// it is forgotten: anyone may name any address, and every node that heard it would otherwise
/// keep dialling it for [`FORGET_AFTER`].
pub const HEARSAY_DIALS: u32 = 3;
/// How often a peer never reached is dialled once [`HEARSAY_DIALS`] dials of it failed (before,
/// the usual back-off): any host on the LAN can answer mDNS with made-up peers at anyone's
/// addresses, and every node would dial each every [`MAX_BACKOFF`] for [`FORGET_AFTER`]. A
/// real peer that was not up yet dials this node itself once it is.
pub const UNREACHED_BACKOFF: Duration = Duration::from_secs(60);
/// Dials of peers never reached, whatever named them (mDNS, another peer, a rendezvous point):
/// at most [`UNPROVEN_DIAL_BURST`] at once, then [`UNPROVEN_DIALS_PER_SEC`] a second; those due
/// beyond wait for their turn. Any host on the LAN can answer mDNS with thousands of made-up
/// peers a second at an address of its choosing, and every node would dial each at once.
pub const UNPROVEN_DIAL_BURST: u32 = 256;
pub const UNPROVEN_DIALS_PER_SEC: u32 = 8;
/// New peers taken from other peers' word: at most [`HEARSAY_BURST`] at once, then
/// [`HEARSAY_PER_SEC`] a second, whoever tells of them (peer ids cost nothing to make, so a
/// bound per teller alone would not hold); one that is reached is given back. Each is dialled
/// at no more than [`HEARSAY_ADDRS_PER_PEER`] addresses until it is reached. What made-up peers
/// can have a node dial is bounded by these and [`HEARSAY_DIALS`].
pub const HEARSAY_BURST: u32 = 64;
pub const HEARSAY_PER_SEC: u32 = 1;
pub const HEARSAY_ADDRS_PER_PEER: usize = 4;
/// Peers one teller has told of, and that are neither reached nor forgotten yet, held at once:
/// a single peer cannot spend the whole [`HEARSAY_BURST`] for others.
pub const HEARSAY_PER_TELLER: usize = 32;

/// Whether `addr` is a loopback address (worth dialling only when the peer that told of it is
/// itself reached over loopback).
pub fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        libp2p::multiaddr::Protocol::Ip4(ip) => ip.is_loopback(),
        libp2p::multiaddr::Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

/// Whether `addr` is at the host `remote` is: the same first IP address (for an address through
/// a relay, the relay's). What a peer says of where it listens is taken only there: anyone can
/// make a peer id, connect, name someone else's addresses and go, and every node would dial them
/// for [`FORGET_AFTER`]; at its own host's addresses it can only have nodes dial itself.
pub fn at_same_host(remote: &Multiaddr, addr: &Multiaddr) -> bool {
    let host = |a: &Multiaddr| {
        a.iter().find_map(|p| match p {
            Protocol::Ip4(ip) => Some(std::net::IpAddr::V4(ip)),
            Protocol::Ip6(ip) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        })
    };
    host(remote).is_some_and(|at| host(addr) == Some(at))
}

/// Which target a dial was for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DialKey {
    /// The configured address at this index.
    Configured(usize),
    /// A known peer.
    Peer(PeerId),
}

/// A dial the node should start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDial {
    pub key: DialKey,
    /// The peer to dial, when known (configured addresses are dialled without one).
    pub peer: Option<PeerId>,
    pub addrs: Vec<Multiaddr>,
}

#[derive(Debug, Clone)]
struct Backoff {
    failures: u32,
    next: Instant,
    dialing: bool,
}

impl Backoff {
    fn ready(now: Instant) -> Self {
        Backoff { failures: 0, next: now, dialing: false }
    }

    fn failed(&mut self, now: Instant) {
        self.dialing = false;
        self.failures = self.failures.saturating_add(1);
        let exp = BASE_BACKOFF.saturating_mul(1u32 << self.failures.saturating_sub(1).min(16));
        self.next = now + jitter(exp.min(MAX_BACKOFF));
    }

    fn connected(&mut self) {
        self.dialing = false;
        self.failures = 0;
    }

    fn disconnected(&mut self, now: Instant) {
        self.dialing = false;
        self.failures = 0;
        self.next = now + jitter(RECONNECT_DELAY);
    }

    fn due(&self, now: Instant) -> bool {
        !self.dialing && self.next <= now
    }
}

/// ×0.5 to ×1.5 of `d`, so peers do not retry in lock-step.
fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::random_range(0.5..1.5))
}

/// The addresses to dial for a peer: its TCP addresses when it has any, else all of them.
///
/// Dialling TCP and QUIC at once makes both ends race: the dialler keeps the first connection
/// and aborts the other, which the listener may already have reported as a new peer. TCP also
/// connects several times faster on a LAN.
fn preferred(addrs: &[Multiaddr]) -> Vec<Multiaddr> {
    let is_tcp = |a: &&Multiaddr| a.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::Tcp(_)));
    let tcp: Vec<Multiaddr> = addrs.iter().filter(is_tcp).cloned().collect();
    if tcp.is_empty() { addrs.to_vec() } else { tcp }
}

#[derive(Debug)]
struct Configured {
    addr: Multiaddr,
    /// The peer that answered at this address last time.
    peer: Option<PeerId>,
    backoff: Backoff,
}

#[derive(Debug)]
struct Known {
    addrs: Vec<Multiaddr>,
    backoff: Backoff,
    /// When dials started failing without a connection since.
    unreachable_since: Option<Instant>,
    /// Whether a connection to it was ever open.
    reached: bool,
    /// The peer whose word it was taken on, while it is known only from another peer's word.
    teller: Option<PeerId>,
    /// When it was first named.
    named: Instant,
}

impl Known {
    /// Whether it is known only from another peer's word, and not reached yet.
    fn only_told_of(&self) -> bool {
        self.teller.is_some() && !self.reached
    }
}

/// The re-dial policy's state.
#[derive(Debug)]
pub struct Redialer {
    local: PeerId,
    configured: Vec<Configured>,
    known: HashMap<PeerId, Known>,
    dials: HashMap<ConnectionId, DialKey>,
    connected: HashSet<PeerId>,
    /// New peers taken from others' word, one bucket for all tellers.
    hearsay_taken: RateLimit<()>,
    /// Dials of peers never reached.
    unproven_dials: RateLimit<()>,
}

impl Redialer {
    /// A policy for node `local` that keeps dialling `configured` addresses.
    pub fn new(local: PeerId, configured: Vec<Multiaddr>, now: Instant) -> Self {
        let configured =
            configured.into_iter().map(|addr| Configured { addr, peer: None, backoff: Backoff::ready(now) }).collect();
        Redialer {
            local,
            configured,
            known: HashMap::new(),
            dials: HashMap::new(),
            connected: HashSet::new(),
            hearsay_taken: RateLimit::new(HEARSAY_BURST, HEARSAY_PER_SEC),
            unproven_dials: RateLimit::new(UNPROVEN_DIAL_BURST, UNPROVEN_DIALS_PER_SEC),
        }
    }

    /// Whether a connection to `peer` is open.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.connected.contains(peer)
    }

    /// A peer was found at `addr` (mDNS) or announced `addr` (identify, a rendezvous point).
    pub fn add_address(&mut self, peer: PeerId, addr: Multiaddr, now: Instant) {
        self.add(peer, addr, None, now);
    }

    /// Peer `teller`'s answer to peer exchange: each peer it names at each address. An address
    /// another peer is known at already, or that the answer names for two peers, is taken for
    /// the first only: a real node listens at its own addresses, and a peer naming thousands of
    /// made-up peers at one address (someone else's server) would have this node dial it
    /// thousands of times. A peer not known yet is taken only while `teller` has fewer than
    /// [`HEARSAY_PER_TELLER`] waiting to be reached and the bucket of new peers from anyone's
    /// word allows one more.
    pub fn add_hearsay(&mut self, teller: PeerId, told: Vec<(PeerId, Multiaddr)>, now: Instant) {
        let mut held: HashMap<Multiaddr, PeerId> = self
            .known
            .iter()
            .flat_map(|(peer, known)| known.addrs.iter().map(move |addr| (without_peer(addr), *peer)))
            .collect();
        let mut waiting = self.known.values().filter(|k| k.only_told_of() && k.teller == Some(teller)).count();
        for (peer, addr) in told {
            // Through a relay, many peers share the address up to the relay's.
            let relayed = addr.iter().any(|p| matches!(p, Protocol::P2pCircuit));
            let at = without_peer(&addr);
            if !relayed && held.get(&at).is_some_and(|holder| *holder != peer) {
                continue;
            }
            let new = !self.known.contains_key(&peer);
            if new {
                if waiting >= HEARSAY_PER_TELLER || !self.hearsay_taken.allow((), now) {
                    continue;
                }
                waiting += 1;
            }
            if !self.add(peer, addr, Some(teller), now) {
                // This node itself, a configured peer, or no room: nothing was taken.
                if new {
                    self.hearsay_taken.give_back(&());
                    waiting -= 1;
                }
                continue;
            }
            if !relayed {
                held.insert(at, peer);
            }
        }
    }

    /// Adds `addr` for `peer`, told of by `teller` (peer exchange) or found (`None`); whether the
    /// peer is known now (not this node, nor a configured peer, nor one past the bound).
    fn add(&mut self, peer: PeerId, addr: Multiaddr, teller: Option<PeerId>, now: Instant) -> bool {
        if peer == self.local || self.configured.iter().any(|c| c.peer == Some(peer)) {
            return false;
        }
        if !self.known.contains_key(&peer) && self.known.len() >= MAX_KNOWN_PEERS && !self.forget_least_reachable() {
            return false;
        }
        let reached = self.connected.contains(&peer);
        let known = self.known.entry(peer).or_insert_with(|| Known {
            addrs: Vec::new(),
            backoff: Backoff::ready(now),
            unreachable_since: None,
            reached,
            teller,
            named: now,
        });
        // Found or announced by the peer itself: no longer only another's word.
        if teller.is_none() {
            known.teller = None;
        }
        let most = if known.only_told_of() { HEARSAY_ADDRS_PER_PEER } else { MAX_ADDRS_PER_PEER };
        if !known.addrs.contains(&addr) && known.addrs.len() < most {
            known.addrs.push(addr);
        }
        true
    }

    /// Makes room for a new peer when [`MAX_KNOWN_PEERS`] are known: forgets the one that has
    /// been unreachable the longest (neither connected nor being dialled), so that peers made
    /// up by whoever told of them give way to real ones once a dial of them failed. Whether one
    /// was forgotten (none is while every known peer is reachable or not yet tried).
    fn forget_least_reachable(&mut self) -> bool {
        let longest = self
            .known
            .iter()
            .filter(|(peer, known)| !self.connected.contains(*peer) && !known.backoff.dialing)
            .filter_map(|(peer, known)| known.unreachable_since.map(|since| (since, *peer)))
            .min();
        match longest {
            Some((_, peer)) => self.known.remove(&peer).is_some(),
            None => false,
        }
    }

    /// At most `most` of the peers this node knows an address of and has reached, except
    /// `except`, each with at most [`MAX_ADDRS_PER_PEER`] addresses: what peer exchange tells.
    /// Those connected now come first, configured peers before others; then those reached
    /// before.
    pub fn peer_addresses(&self, except: &PeerId, most: usize) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let configured = self.configured.iter().filter_map(|c| c.peer.map(|p| (p, std::slice::from_ref(&c.addr))));
        let known = self.known.iter().filter(|(_, k)| k.reached).map(|(p, k)| (*p, &k.addrs[..]));
        let mut told: Vec<(PeerId, &[Multiaddr])> =
            configured.chain(known).filter(|(p, addrs)| p != except && !addrs.is_empty()).collect();
        // Stable: configured peers stay before known ones of the same kind.
        told.sort_by_key(|(p, _)| !self.connected.contains(p));
        told.into_iter()
            .take(most)
            .map(|(p, addrs)| (p, addrs.iter().take(MAX_ADDRS_PER_PEER).cloned().collect()))
            .collect()
    }

    /// mDNS no longer sees `peer` at `addr`.
    pub fn remove_address(&mut self, peer: &PeerId, addr: &Multiaddr) {
        if let Some(known) = self.known.get_mut(peer) {
            known.addrs.retain(|a| a != addr);
            if known.addrs.is_empty() && !self.connected.contains(peer) && !known.backoff.dialing {
                self.known.remove(peer);
            }
        }
    }

    /// The dials to start now; each is marked as under way until reported back.
    pub fn due(&mut self, now: Instant) -> Vec<PlannedDial> {
        let mut plans = Vec::new();
        for (index, target) in self.configured.iter_mut().enumerate() {
            let connected = target.peer.is_some_and(|p| self.connected.contains(&p));
            if !connected && target.backoff.due(now) {
                target.backoff.dialing = true;
                plans.push(PlannedDial {
                    key: DialKey::Configured(index),
                    peer: None,
                    addrs: vec![target.addr.clone()],
                });
            }
        }
        self.known.retain(|peer, known| {
            self.connected.contains(peer)
                || known.backoff.dialing
                || known.unreachable_since.is_none_or(|since| now.duration_since(since) < FORGET_AFTER)
        });
        // Peers never reached take their turn: those dialled the fewest times first, and of
        // those the last named first, so that a peer found after a flood of made-up ones does
        // not wait behind them all.
        let mut unproven = Vec::new();
        for (peer, known) in &mut self.known {
            if !self.connected.contains(peer) && !known.addrs.is_empty() && known.backoff.due(now) {
                if !known.reached {
                    unproven.push((known.backoff.failures, std::cmp::Reverse(known.named), *peer));
                    continue;
                }
                known.backoff.dialing = true;
                plans.push(PlannedDial {
                    key: DialKey::Peer(*peer),
                    peer: Some(*peer),
                    addrs: preferred(&known.addrs),
                });
            }
        }
        unproven.sort_unstable();
        for (_, _, peer) in unproven {
            let Some(known) = self.known.get_mut(&peer) else { continue };
            if !self.unproven_dials.allow((), now) {
                break;
            }
            known.backoff.dialing = true;
            plans.push(PlannedDial { key: DialKey::Peer(peer), peer: Some(peer), addrs: preferred(&known.addrs) });
        }
        plans
    }

    /// The node started a planned dial as connection `id`.
    pub fn dial_started(&mut self, key: DialKey, id: ConnectionId) {
        self.dials.insert(id, key);
    }

    /// The node could not even start a planned dial.
    pub fn dial_not_started(&mut self, key: &DialKey, now: Instant) {
        self.fail(key, now);
    }

    /// The dial of connection `id` failed. Returns the target and how many dials of it have
    /// failed in a row, if the dial was one of ours.
    pub fn dial_failed(&mut self, id: ConnectionId, now: Instant) -> Option<(DialKey, u32)> {
        let key = self.dials.remove(&id)?;
        let failures = self.fail(&key, now)?;
        Some((key, failures))
    }

    fn fail(&mut self, key: &DialKey, now: Instant) -> Option<u32> {
        match key {
            DialKey::Configured(index) => {
                let target = self.configured.get_mut(*index)?;
                target.backoff.failed(now);
                Some(target.backoff.failures)
            }
            DialKey::Peer(peer) => {
                let known = self.known.get_mut(peer)?;
                known.backoff.failed(now);
                known.unreachable_since.get_or_insert(now);
                let failures = known.backoff.failures;
                if known.only_told_of() && failures >= HEARSAY_DIALS {
                    self.known.remove(peer);
                } else if !known.reached && failures >= HEARSAY_DIALS {
                    known.backoff.next = now + jitter(UNREACHED_BACKOFF);
                }
                Some(failures)
            }
        }
    }

    /// A connection `id` to `peer` is open (dialled by us or not).
    pub fn connection_established(&mut self, id: ConnectionId, peer: PeerId) {
        self.connected.insert(peer);
        if let Some(DialKey::Configured(index)) = self.dials.remove(&id) {
            if let Some(target) = self.configured.get_mut(index) {
                target.peer = Some(peer);
                target.backoff.connected();
            }
            // A configured peer is dialled through its address, not as a known peer as well.
            self.known.remove(&peer);
        }
        for target in self.configured.iter_mut().filter(|t| t.peer == Some(peer)) {
            target.backoff.connected();
        }
        if let Some(known) = self.known.get_mut(&peer) {
            // A peer taken on another's word that is real does not count against the bucket.
            if known.only_told_of() {
                self.hearsay_taken.give_back(&());
            }
            known.backoff.connected();
            known.unreachable_since = None;
            known.reached = true;
        }
    }

    /// A connection to `peer` closed, leaving `remaining` open.
    pub fn connection_closed(&mut self, peer: PeerId, remaining: u32, now: Instant) {
        if remaining > 0 {
            return;
        }
        self.connected.remove(&peer);
        for target in self.configured.iter_mut().filter(|t| t.peer == Some(peer)) {
            if !target.backoff.dialing {
                target.backoff.disconnected(now);
            }
        }
        if let Some(known) = self.known.get_mut(&peer)
            && !known.backoff.dialing
        {
            known.backoff.disconnected(now);
        }
    }
}

/// `addr` without a trailing `/p2p/…`: where, whoever is there.
fn without_peer(addr: &Multiaddr) -> Multiaddr {
    let mut at = addr.clone();
    if let Some(Protocol::P2p(_)) = at.iter().last() {
        at.pop();
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_peers_tell_of_addresses_and_peers_is_bounded() {
        let now = Instant::now();
        let mut redial = Redialer::new(PeerId::random(), Vec::new(), now);
        let peer = PeerId::random();
        for port in 0..(MAX_ADDRS_PER_PEER as u16 + 10) {
            redial.add_address(peer, format!("/ip4/10.77.0.2/tcp/{port}").parse().unwrap(), now);
        }
        assert_eq!(redial.known[&peer].addrs.len(), MAX_ADDRS_PER_PEER);
        for _ in 0..MAX_KNOWN_PEERS {
            redial.add_address(PeerId::random(), "/ip4/10.77.0.3/tcp/1".parse().unwrap(), now);
        }
        assert_eq!(redial.known.len(), MAX_KNOWN_PEERS);
        // A new peer past the bound is not kept while every known one may still be reached.
        redial.add_address(PeerId::random(), "/ip4/10.77.0.4/tcp/1".parse().unwrap(), now);
        assert_eq!(redial.known.len(), MAX_KNOWN_PEERS);
    }

    #[test]
    fn a_peer_known_only_from_another_peers_word_is_dialled_a_few_times_then_forgotten() {
        let now = Instant::now();
        let mut redial = Redialer::new(peer(), Vec::new(), now);
        let (told, found) = (peer(), peer());
        redial.add_hearsay(peer(), vec![(told, addr(1))], now);
        redial.add_address(found, addr(2), now);
        let mut at = now;
        for round in 1..=HEARSAY_DIALS {
            at += MAX_BACKOFF * 2;
            for plan in redial.due(at) {
                redial.dial_not_started(&plan.key, at);
            }
            assert_eq!(redial.known.contains_key(&told), round < HEARSAY_DIALS, "round {round}");
        }
        assert!(redial.known.contains_key(&found), "one found on the LAN is dialled on");
        // Once reached, a peer another told of is dialled on like any other.
        let reached = peer();
        redial.add_hearsay(peer(), vec![(reached, addr(3))], at);
        reach(&mut redial, reached, 7, at);
        redial.connection_closed(reached, 0, at);
        for round in 0..2 * HEARSAY_DIALS {
            at += MAX_BACKOFF * 2;
            for plan in redial.due(at) {
                redial.dial_not_started(&plan.key, at);
            }
            assert!(redial.known.contains_key(&reached), "round {round}");
        }
        // And one told of directly as well is not only hearsay.
        let both = peer();
        redial.add_hearsay(peer(), vec![(both, addr(4))], at);
        redial.add_address(both, addr(5), at);
        assert!(redial.known[&both].teller.is_none());
    }

    #[test]
    fn an_address_is_taken_from_peer_exchange_for_one_peer_only() {
        let now = Instant::now();
        let mut redial = Redialer::new(peer(), Vec::new(), now);
        let found = peer();
        redial.add_address(found, addr(1), now);
        // Thousands of made-up peers at one address (someone else's server), and one at the
        // address of a peer found on the LAN.
        let mut told: Vec<(PeerId, Multiaddr)> = (0..4000).map(|_| (peer(), addr(9))).collect();
        let (real, impostor) = (peer(), peer());
        told.push((impostor, addr(1).with(Protocol::P2p(impostor))));
        told.push((real, addr(2)));
        redial.add_hearsay(peer(), told, now);
        let at_nine: Vec<&PeerId> =
            redial.known.iter().filter(|(_, k)| k.addrs.contains(&addr(9))).map(|(p, _)| p).collect();
        assert_eq!(at_nine.len(), 1, "one peer dialled at the crowded address");
        assert!(!redial.known.contains_key(&impostor), "nor another at a known peer's address");
        assert_eq!(redial.known[&real].addrs, [addr(2)], "a peer at an address of its own is taken");
        let dials_of_nine = redial.due(now).into_iter().filter(|plan| plan.addrs.contains(&addr(9))).count();
        assert_eq!(dials_of_nine, 1);
        // Peers behind one relay share the address up to it: each is taken.
        let relay = peer();
        let behind: Vec<PeerId> = (0..3).map(|_| peer()).collect();
        let through = |p: PeerId| addr(7).with(Protocol::P2p(relay)).with(Protocol::P2pCircuit).with(Protocol::P2p(p));
        redial.add_hearsay(peer(), behind.iter().map(|p| (*p, through(*p))).collect(), now);
        assert!(behind.iter().all(|p| redial.known.contains_key(p)), "every relayed peer is taken");
    }

    #[test]
    fn peers_from_others_word_are_taken_a_few_per_teller_and_a_few_a_second() {
        let start = Instant::now();
        let mut redial = Redialer::new(peer(), Vec::new(), start);
        // Made-up peers, each at four addresses of its own and more.
        let mut port = 0u16;
        let mut made_up = |count: usize| -> Vec<(PeerId, Multiaddr)> {
            (0..count)
                .flat_map(|_| {
                    let p = peer();
                    (0..HEARSAY_ADDRS_PER_PEER + 3)
                        .map(|_| {
                            port += 1;
                            (p, addr(port))
                        })
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let only_told = |r: &Redialer| r.known.values().filter(|k| k.only_told_of()).count();
        let liar = peer();
        redial.add_hearsay(liar, made_up(1_000), start);
        assert_eq!(only_told(&redial), HEARSAY_PER_TELLER, "one teller's share");
        assert!(redial.known.values().all(|k| k.addrs.len() == HEARSAY_ADDRS_PER_PEER));
        redial.add_hearsay(liar, made_up(1_000), start + Duration::from_secs(60));
        assert_eq!(only_told(&redial), HEARSAY_PER_TELLER, "not more while those wait");
        // Tellers made up as well: the bucket of new peers holds for all of them together.
        for _ in 0..100 {
            redial.add_hearsay(peer(), made_up(10), start);
        }
        assert_eq!(only_told(&redial), HEARSAY_BURST as usize);
        let later = start + Duration::from_secs(10);
        for _ in 0..100 {
            redial.add_hearsay(peer(), made_up(10), later);
        }
        assert_eq!(only_told(&redial), (HEARSAY_BURST + 10 * HEARSAY_PER_SEC) as usize, "then one a second");
        let dialled: usize = redial.due(later).iter().map(|plan| plan.addrs.len()).sum();
        assert_eq!(dialled, (HEARSAY_BURST + 10 * HEARSAY_PER_SEC) as usize * HEARSAY_ADDRS_PER_PEER);
    }

    #[test]
    fn naming_this_node_or_a_configured_peer_spends_nothing() {
        let now = Instant::now();
        let local = peer();
        let mut redial = Redialer::new(local, vec![addr(1)], now);
        let configured = peer();
        let id = ConnectionId::new_unchecked(1);
        let plan = redial.due(now).remove(0);
        redial.dial_started(plan.key, id);
        redial.connection_established(id, configured);
        // An answer naming this node and the configured peer at thousands of addresses.
        let told: Vec<(PeerId, Multiaddr)> =
            (0..4_000).map(|port| (if port % 2 == 0 { local } else { configured }, addr(100 + port))).collect();
        redial.add_hearsay(peer(), told, now);
        assert!(redial.known.is_empty());
        let real: Vec<(PeerId, Multiaddr)> = (0..HEARSAY_BURST as u16).map(|n| (peer(), addr(10_000 + n))).collect();
        for pair in real {
            redial.add_hearsay(peer(), vec![pair], now);
        }
        assert_eq!(redial.known.len(), HEARSAY_BURST as usize, "the bucket was left whole");
    }

    #[test]
    fn a_peer_told_of_and_reached_frees_its_tellers_share_and_takes_all_its_addresses() {
        let now = Instant::now();
        let mut redial = Redialer::new(peer(), Vec::new(), now);
        let teller = peer();
        let told: Vec<PeerId> = (0..HEARSAY_PER_TELLER).map(|_| peer()).collect();
        let at = |n: usize| addr(100 + n as u16);
        redial.add_hearsay(teller, told.iter().enumerate().map(|(n, p)| (*p, at(n))).collect(), now);
        let next = peer();
        redial.add_hearsay(teller, vec![(next, addr(99))], now);
        assert!(!redial.known.contains_key(&next), "the teller's share is full");
        // One of them is reached: the teller may tell of another.
        reach(&mut redial, told[0], 3, now);
        redial.add_hearsay(teller, vec![(next, addr(99))], now);
        assert!(redial.known.contains_key(&next));
        // A reached peer's own word on where it listens is taken whole.
        for port in 200..200 + MAX_ADDRS_PER_PEER as u16 {
            redial.add_address(told[0], addr(port), now);
        }
        assert_eq!(redial.known[&told[0]].addrs.len(), MAX_ADDRS_PER_PEER);
        // More addresses of a peer known already are no new peer: the bucket is not asked.
        let known = told[1];
        for n in 0..(HEARSAY_BURST as u16 * 2) {
            redial.add_hearsay(peer(), vec![(known, addr(300 + n))], now);
        }
        assert_eq!(redial.known[&known].addrs.len(), HEARSAY_ADDRS_PER_PEER);
        let fresh = peer();
        redial.add_hearsay(peer(), vec![(fresh, addr(999))], now);
        assert!(redial.known.contains_key(&fresh), "the bucket still had room");
        // The bucket spent by tellers made up, a peer taken on their word that is reached
        // gives one back.
        let others: Vec<PeerId> = (0..HEARSAY_BURST as u16)
            .map(|n| {
                let other = peer();
                redial.add_hearsay(peer(), vec![(other, addr(2000 + n))], now);
                other
            })
            .collect();
        let refused = peer();
        redial.add_hearsay(peer(), vec![(refused, addr(3000))], now);
        assert!(!redial.known.contains_key(&refused), "the bucket is spent");
        let real = *others.iter().find(|p| redial.known.contains_key(p)).unwrap();
        reach(&mut redial, real, 4, now);
        redial.add_hearsay(peer(), vec![(refused, addr(3000))], now);
        assert!(redial.known.contains_key(&refused), "one given back");
    }

    #[test]
    fn a_found_peer_never_reached_is_dialled_a_few_times_then_once_a_minute() {
        let start = Instant::now();
        let mut redial = Redialer::new(peer(), Vec::new(), start);
        let (made_up, lost) = (peer(), peer());
        redial.add_address(made_up, addr(1), start);
        // One that was reached, then lost: dialled on at the usual pace.
        redial.add_address(lost, addr(2), start);
        let id = ConnectionId::new_unchecked(9);
        let mut dials = HashMap::<PeerId, u32>::new();
        for plan in redial.due(start) {
            if plan.peer == Some(lost) {
                redial.dial_started(plan.key, id);
                redial.connection_established(id, lost);
                redial.connection_closed(lost, 0, start);
            } else {
                *dials.entry(made_up).or_default() += 1;
                redial.dial_not_started(&plan.key, start);
            }
        }
        let mut at = start;
        while at < start + Duration::from_secs(180) {
            for plan in redial.due(at) {
                *dials.entry(plan.peer.unwrap()).or_default() += 1;
                redial.dial_not_started(&plan.key, at);
            }
            at += Duration::from_millis(100);
        }
        // 3 at the usual pace, then one every 30 to 90 s.
        let made_up_dials = dials[&made_up];
        assert!((HEARSAY_DIALS + 1..=HEARSAY_DIALS + 6).contains(&made_up_dials), "{made_up_dials}");
        assert!(dials[&lost] >= 180 / 8, "{}", dials[&lost]);
        assert!(redial.known.contains_key(&made_up), "kept until FORGET_AFTER");
    }

    #[test]
    fn made_up_peers_give_way_to_a_real_one_once_their_dials_failed() {
        let start = Instant::now();
        let mut redial = Redialer::new(PeerId::random(), Vec::new(), start);
        // A host named MAX_KNOWN_PEERS made-up peers; every dial of them fails. They are
        // dialled UNPROVEN_DIAL_BURST at once, then UNPROVEN_DIALS_PER_SEC a second.
        for _ in 0..MAX_KNOWN_PEERS {
            redial.add_address(PeerId::random(), "/ip4/10.77.0.3/tcp/1".parse().unwrap(), start);
        }
        let mut first_failed = HashMap::new();
        let mut at = start;
        while first_failed.len() < MAX_KNOWN_PEERS {
            let plans = redial.due(at);
            assert!(plans.len() <= UNPROVEN_DIAL_BURST as usize);
            for plan in plans {
                first_failed.entry(plan.peer.unwrap()).or_insert(at);
                redial.dial_not_started(&plan.key, at);
            }
            at += Duration::from_secs(1);
        }
        let paced = (MAX_KNOWN_PEERS as u64 - u64::from(UNPROVEN_DIAL_BURST)) / u64::from(UNPROVEN_DIALS_PER_SEC);
        assert!(at - start >= Duration::from_secs(paced / 2), "each dialled once within {:?}", at - start);
        let real = PeerId::random();
        redial.add_address(real, "/ip4/10.77.0.4/tcp/1".parse().unwrap(), at);
        let known: Vec<PeerId> = redial.known.keys().copied().collect();
        assert_eq!(known.len(), MAX_KNOWN_PEERS, "still bounded");
        assert!(known.contains(&real), "the real peer is kept");
        let forgotten: Vec<_> = first_failed.iter().filter(|(p, _)| !known.contains(p)).map(|(_, t)| *t).collect();
        assert_eq!(forgotten, [start], "one of the longest unreachable is forgotten");
        let due = redial.due(at);
        assert_eq!(due.first().and_then(|p| p.peer), Some(real), "and the real one is dialled first");
    }

    #[test]
    fn dials_of_peers_never_reached_are_paced_and_a_lost_one_waits_for_none() {
        let start = Instant::now();
        let mut redial = Redialer::new(peer(), Vec::new(), start);
        let lost = peer();
        redial.add_address(lost, addr(1), start);
        reach(&mut redial, lost, 5, start);
        for port in 2..1_000 {
            redial.add_address(peer(), addr(port), start);
        }
        assert_eq!(redial.due(start).len(), UNPROVEN_DIAL_BURST as usize - 1);
        redial.connection_closed(lost, 0, start);
        let later = start + Duration::from_secs(2);
        let newest = peer();
        redial.add_address(newest, addr(5_000), later);
        let plans = redial.due(later);
        assert_eq!(plans.len(), 1 + 2 * UNPROVEN_DIALS_PER_SEC as usize, "{plans:?}");
        assert!(plans.iter().any(|p| p.peer == Some(lost)), "the lost peer is dialled beside them");
        assert!(plans.iter().any(|p| p.peer == Some(newest)), "the one named last goes before the 700 waiting");
    }

    #[test]
    fn an_address_is_at_the_same_host_when_its_first_ip_is() {
        let remote: Multiaddr = "/ip4/10.77.0.2/tcp/40312".parse().unwrap();
        assert!(at_same_host(&remote, &"/ip4/10.77.0.2/tcp/4001".parse().unwrap()));
        assert!(at_same_host(&remote, &"/ip4/10.77.0.2/udp/4001/quic-v1".parse().unwrap()));
        assert!(!at_same_host(&remote, &"/ip4/10.77.0.3/tcp/4001".parse().unwrap()));
        assert!(!at_same_host(&remote, &"/ip6/::1/tcp/4001".parse().unwrap()));
        assert!(!at_same_host(&remote, &"/dns4/example.org/tcp/4001".parse().unwrap()));
        let relayed: Multiaddr =
            "/ip4/203.0.113.5/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit"
                .parse()
                .unwrap();
        assert!(at_same_host(&relayed, &relayed), "through the same relay");
        assert!(!at_same_host(&"/memory/1".parse().unwrap(), &"/memory/1".parse().unwrap()), "no IP, no host");
    }

    #[test]
    fn loopback_addresses_are_told_apart() {
        assert!(is_loopback(&"/ip4/127.0.0.1/tcp/1".parse().unwrap()));
        assert!(is_loopback(&"/ip6/::1/udp/1/quic-v1".parse().unwrap()));
        assert!(!is_loopback(&"/ip4/10.77.0.1/tcp/1".parse().unwrap()));
    }

    /// Plans the dials due at `at` and reaches `target` through its own, as connection `id`.
    fn reach(redial: &mut Redialer, target: PeerId, id: usize, at: Instant) {
        let plan = redial.due(at).into_iter().find(|p| p.peer == Some(target)).expect("a dial of the target");
        let id = ConnectionId::new_unchecked(id);
        redial.dial_started(plan.key, id);
        redial.connection_established(id, target);
    }

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    fn peer() -> PeerId {
        PeerId::random()
    }

    #[test]
    fn configured_addresses_are_dialled_at_once_and_not_twice() {
        let now = Instant::now();
        let mut r = Redialer::new(peer(), vec![addr(1)], now);
        let plans = r.due(now);
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].key, DialKey::Configured(0));
        assert_eq!(plans[0].addrs, vec![addr(1)]);
        assert!(r.due(now).is_empty(), "a dial under way is not repeated");
    }

    #[test]
    fn failed_dials_back_off_exponentially_up_to_the_cap() {
        let start = Instant::now();
        let mut r = Redialer::new(peer(), vec![addr(1)], start);
        let mut now = start;
        let mut waits = Vec::new();
        for i in 0..12 {
            let plans = r.due(now);
            assert_eq!(plans.len(), 1, "attempt {i}");
            let id = ConnectionId::new_unchecked(i);
            r.dial_started(plans[0].key.clone(), id);
            r.dial_failed(id, now);
            // Find when it is due again.
            let mut wait = Duration::ZERO;
            while r.due(now + wait).is_empty() {
                wait += Duration::from_millis(10);
                assert!(wait <= MAX_BACKOFF.mul_f64(1.5), "never due again");
            }
            r.configured[0].backoff.dialing = false;
            waits.push(wait);
            now += wait;
        }
        assert!(waits[0] <= BASE_BACKOFF.mul_f64(1.5) + Duration::from_millis(10));
        assert!(waits[11] >= MAX_BACKOFF.mul_f64(0.5));
    }

    #[test]
    fn a_connected_configured_peer_is_not_dialled_until_it_disconnects() {
        let now = Instant::now();
        let remote = peer();
        let mut r = Redialer::new(peer(), vec![addr(1)], now);
        let plan = r.due(now).remove(0);
        let id = ConnectionId::new_unchecked(1);
        r.dial_started(plan.key, id);
        r.connection_established(id, remote);
        assert!(r.due(now + Duration::from_secs(60)).is_empty());
        r.connection_closed(remote, 0, now);
        assert!(r.due(now).is_empty(), "re-dial waits a moment");
        assert_eq!(r.due(now + RECONNECT_DELAY * 2).len(), 1);
    }

    #[test]
    fn discovered_peers_are_dialled_unless_already_connected() {
        let now = Instant::now();
        let (a, b) = (peer(), peer());
        let mut r = Redialer::new(peer(), vec![], now);
        r.add_address(a, addr(1), now);
        r.add_address(b, addr(2), now);
        r.connection_established(ConnectionId::new_unchecked(7), b);
        let plans = r.due(now);
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].peer, Some(a));
        assert_eq!(plans[0].key, DialKey::Peer(a));
    }

    #[test]
    fn the_local_peer_and_configured_peers_are_not_known_peers() {
        let now = Instant::now();
        let local = peer();
        let remote = peer();
        let mut r = Redialer::new(local, vec![addr(1)], now);
        let plan = r.due(now).remove(0);
        let id = ConnectionId::new_unchecked(1);
        r.dial_started(plan.key, id);
        r.connection_established(id, remote);
        r.add_address(local, addr(9), now);
        r.add_address(remote, addr(1), now);
        r.connection_closed(remote, 0, now);
        let plans = r.due(now + Duration::from_secs(1));
        assert_eq!(plans.len(), 1, "{plans:?}");
        assert_eq!(plans[0].key, DialKey::Configured(0));
    }

    #[test]
    fn expired_addresses_and_long_unreachable_peers_are_forgotten() {
        let now = Instant::now();
        let (a, b) = (peer(), peer());
        let mut r = Redialer::new(peer(), vec![], now);
        r.add_address(a, addr(1), now);
        r.remove_address(&a, &addr(1));
        assert!(r.due(now).is_empty());

        r.add_address(b, addr(2), now);
        let plan = r.due(now).remove(0);
        r.dial_not_started(&plan.key, now);
        assert!(r.due(now + FORGET_AFTER + Duration::from_secs(1)).is_empty());
        assert!(r.known.is_empty(), "b is forgotten after FORGET_AFTER of failures");
    }

    #[test]
    fn peer_exchange_tells_reached_and_configured_peers_but_not_the_asker() {
        let now = Instant::now();
        let (a, b, c, d) = (peer(), peer(), peer(), peer());
        let mut r = Redialer::new(peer(), vec![addr(1)], now);
        let plan = r.due(now).remove(0);
        let id = ConnectionId::new_unchecked(1);
        r.dial_started(plan.key, id);
        r.connection_established(id, a);
        r.add_address(b, addr(2), now);
        r.add_address(c, addr(3), now);
        r.add_hearsay(peer(), vec![(d, addr(4))], now);
        for (n, p) in [(2, b), (3, c)] {
            r.connection_established(ConnectionId::new_unchecked(n), p);
        }
        r.connection_closed(b, 0, now);
        let mut told = r.peer_addresses(&c, usize::MAX);
        told.sort_by_key(|(p, _)| p.to_bytes());
        // b was reached (and is no longer connected); d was never reached: nobody is told of it.
        let mut expected = vec![(a, vec![addr(1)]), (b, vec![addr(2)])];
        expected.sort_by_key(|(p, _)| p.to_bytes());
        assert_eq!(told, expected);
    }

    #[test]
    fn tcp_addresses_are_preferred_over_quic() {
        let now = Instant::now();
        let (a, b) = (peer(), peer());
        let quic: Multiaddr = "/ip4/10.77.0.1/udp/5/quic-v1".parse().unwrap();
        let mut r = Redialer::new(peer(), vec![], now);
        r.add_address(a, quic.clone(), now);
        r.add_address(a, addr(1), now);
        r.add_address(b, quic.clone(), now);
        let plans = r.due(now);
        let plan_a = plans.iter().find(|p| p.peer == Some(a)).unwrap();
        let plan_b = plans.iter().find(|p| p.peer == Some(b)).unwrap();
        assert_eq!(plan_a.addrs, vec![addr(1)]);
        assert_eq!(plan_b.addrs, vec![quic]);
    }

    #[test]
    fn a_second_connection_closing_keeps_the_peer_connected() {
        let now = Instant::now();
        let a = peer();
        let mut r = Redialer::new(peer(), vec![], now);
        r.add_address(a, addr(1), now);
        r.connection_established(ConnectionId::new_unchecked(1), a);
        r.connection_established(ConnectionId::new_unchecked(2), a);
        r.connection_closed(a, 1, now);
        assert!(r.is_connected(&a));
        assert!(r.due(now + Duration::from_secs(1)).is_empty());
    }

    #[test]
    fn peer_exchange_tells_connected_peers_first_and_within_the_protocols_limits() {
        use crate::protocol::peers::{self, PeersResponse};
        let now = Instant::now();
        let asker = peer();
        let mut r = Redialer::new(peer(), vec![], now);
        // 5,000 peers reached, each at 16 addresses (a relayed address names two peers), 100
        // of them connected now: more than the redialer keeps, and far more than an answer holds.
        let relayed = |i: u32, n: u32| -> Multiaddr {
            format!(
                "/ip4/10.{}.{}.{}/tcp/{}/p2p/{}/p2p-circuit",
                (i >> 16) & 255,
                (i >> 8) & 255,
                i & 255,
                4000 + n,
                peer()
            )
            .parse()
            .unwrap()
        };
        let mut connected = Vec::new();
        for i in 0..5_000u32 {
            let p = peer();
            for n in 0..MAX_ADDRS_PER_PEER as u32 {
                r.add_address(p, relayed(i, n), now);
            }
            let id = ConnectionId::new_unchecked(i as usize);
            r.connection_established(id, p);
            if i % 50 == 0 {
                connected.push(p);
            } else {
                r.connection_closed(p, 0, now);
            }
        }
        r.connection_established(ConnectionId::new_unchecked(9_999), asker);
        let told = r.peer_addresses(&asker, peers::MAX_PEERS);
        assert_eq!(told.len(), peers::MAX_PEERS);
        assert!(told.iter().all(|(p, addrs)| *p != asker && addrs.len() <= MAX_ADDRS_PER_PEER));
        let first: HashSet<PeerId> = told[..connected.len()].iter().map(|(p, _)| *p).collect();
        let kept_connected: HashSet<PeerId> = connected.iter().filter(|p| r.known.contains_key(p)).copied().collect();
        assert!(!kept_connected.is_empty());
        assert!(kept_connected.is_subset(&first), "peers connected now come first");

        let answer = PeersResponse::new(told);
        assert!(!answer.peers.is_empty() && answer.peers.len() <= peers::MAX_PEERS);
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &answer).unwrap();
        assert!(bytes.len() as u64 <= peers::MAX_RESPONSE_BYTES, "{} bytes", bytes.len());
        let received: PeersResponse = cbor4ii::serde::from_slice(&bytes).unwrap();
        assert_eq!(received.decode().len(), answer.peers.len(), "every record told is read");
        assert!(received.decode().iter().all(|(_, addrs)| !addrs.is_empty()));
    }
}
