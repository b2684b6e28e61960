//! Reach beyond the LAN, as the node keeps track of it: whether this node is reachable (AutoNAT),
//! the relays in reach (bootstrap nodes with the trusted key that serve reach), this node's
//! reservation and rendezvous registration at each and when to ask again, and how each peer is
//! connected (directly or through a relay), with whom the move to a direct connection was told.
//!
//! Bookkeeping only, with the time passed in: it never touches the swarm and never emits an
//! event; the adapter (`node/reach.rs`) asks it what is due and carries that out.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::rendezvous::Cookie;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};

use crate::account::AccountId;
use crate::cert::AuthorityKey;
use crate::net::RelayGate;
use crate::net::reach::RENDEZVOUS_TTL_SECS;
use crate::node::event::Reachability;

/// How often the rendezvous point is asked who registered since the last time: soon after this
/// node registers (others register at the same moment), then less and less often, down to
/// every [`DISCOVER_INTERVAL`].
pub(crate) const DISCOVER_INTERVAL: Duration = Duration::from_secs(10);
pub(crate) const DISCOVER_FIRST: Duration = Duration::from_secs(1);
/// How long after a refused or lost reservation, or a failed registration, the node asks again
/// (a node not yet certified is refused until it is).
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(5);
/// The most relays kept track of.
pub(crate) const MAX_RELAYS: usize = 8;

/// A relay in reach and this node's use of it.
#[derive(Debug)]
pub(crate) struct Relay {
    /// How this node reaches it.
    pub(crate) addr: Multiaddr,
    /// The listener of this node's circuit through it, while there is one.
    pub(crate) listener: Option<ListenerId>,
    /// Whether the relay accepted the reservation.
    pub(crate) reserved: bool,
    /// When to ask for a reservation again, after one was refused or lost.
    pub(crate) reserve_at: Instant,
    /// When to register at its rendezvous point (again).
    pub(crate) register_at: Instant,
    /// Whether a registration is on its way.
    pub(crate) registering: bool,
    /// When to ask it who registered, and how long after that again.
    pub(crate) discover_at: Instant,
    discover_every: Duration,
    /// Where the last discovery ended.
    pub(crate) cookie: Option<Cookie>,
}

/// What is due at a relay now.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Due {
    /// Ask for a reservation: listen on a circuit through it.
    pub(crate) reserve: bool,
    pub(crate) register: bool,
    pub(crate) discover: bool,
}

/// How a peer is connected.
#[derive(Debug, Default)]
struct Paths {
    direct: HashSet<ConnectionId>,
    relayed: HashSet<ConnectionId>,
    /// Whether it was ever reached through a relay in this connection's lifetime.
    was_relayed: bool,
}

/// What a new connection means for how its peer is reached.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Opened {
    /// The first direct connection to a peer reached through a relay until now: the user is
    /// told, and the relayed ones may close.
    NowDirect { relayed: Vec<ConnectionId> },
    /// A direct connection beside a direct one, or relayed beside anything.
    Nothing,
}

/// The node's reach beyond the LAN.
#[derive(Debug, Default)]
pub(crate) struct Reach {
    /// When this node serves reach: the peers its relay serves.
    pub(crate) gate: Option<RelayGate>,
    /// Whether this node can be dialled from outside its network, as AutoNAT last said.
    pub(crate) nat: Reachability,
    /// Whether this node holds a certificate (a relay refuses a node without one).
    certified: bool,
    pub(crate) relays: HashMap<PeerId, Relay>,
    /// Peers that serve reach, with how they are reached, their key and the order they came
    /// in, until that key is the trusted one (a key the user confirms later makes them relays
    /// then). At most [`MAX_RELAYS`]: a new offer takes the place of the oldest, so peers that
    /// offer under other keys cannot keep the real one out.
    offers: HashMap<PeerId, (Multiaddr, AuthorityKey, u64)>,
    /// The order of the next offer.
    next_offer: u64,
    paths: HashMap<PeerId, Paths>,
    /// The peers admitted to this node's relay for each account, the latest last: at most
    /// [`RELAY_PEERS_PER_ACCOUNT`], so one account logged in on ever new peers cannot fill the
    /// relay's gate and keep everyone else out.
    relayed_for: HashMap<AccountId, VecDeque<PeerId>>,
}

/// The most peers of one account this node's relay serves at once.
pub(crate) const RELAY_PEERS_PER_ACCOUNT: usize = 32;

impl Reach {
    /// `peer`, holding a certificate of `account`, is admitted to this node's relay: the peer of
    /// that account admitted longest ago, when it has more than [`RELAY_PEERS_PER_ACCOUNT`], to
    /// be let go of. Accounts whose peers the gate no longer serves are forgotten as more come.
    pub(crate) fn admitted(
        &mut self,
        account: AccountId,
        peer: PeerId,
        still: impl Fn(&PeerId) -> bool,
    ) -> Option<PeerId> {
        if !self.relayed_for.contains_key(&account) && self.relayed_for.len() >= crate::net::reach::MAX_GATE_PEERS {
            self.relayed_for.retain(|_, peers| {
                peers.retain(|p| still(p));
                !peers.is_empty()
            });
        }
        let peers = self.relayed_for.entry(account).or_default();
        if let Some(at) = peers.iter().position(|p| *p == peer) {
            peers.remove(at);
        }
        peers.push_back(peer);
        if peers.len() > RELAY_PEERS_PER_ACCOUNT { peers.pop_front() } else { None }
    }

    pub(crate) fn new(gate: Option<RelayGate>) -> Reach {
        Reach { gate, ..Reach::default() }
    }

    /// `peer`, reached at `addr` and with authority key `key`, serves reach.
    pub(crate) fn offered(&mut self, peer: PeerId, addr: Multiaddr, key: AuthorityKey) {
        if !self.offers.contains_key(&peer)
            && self.offers.len() >= MAX_RELAYS
            && let Some(oldest) = self.offers.iter().min_by_key(|(_, (_, _, order))| *order).map(|(p, _)| *p)
        {
            self.offers.remove(&oldest);
        }
        self.next_offer = self.next_offer.saturating_add(1);
        self.offers.insert(peer, (addr, key, self.next_offer));
    }

    /// The offers whose key is `trusted` become relays: those that are new.
    pub(crate) fn take_trusted(&mut self, trusted: Option<AuthorityKey>, now: Instant) -> Vec<(PeerId, Multiaddr)> {
        let Some(trusted) = trusted else { return Vec::new() };
        let peers: Vec<PeerId> =
            self.offers.iter().filter(|(_, (_, key, _))| *key == trusted).map(|(p, _)| *p).collect();
        let mut found = Vec::new();
        for peer in peers {
            if let Some((addr, _, _)) = self.offers.remove(&peer)
                && self.relay_found(peer, addr.clone(), now)
            {
                found.push((peer, addr));
            }
        }
        found
    }

    /// `peer`, reached at `addr`, serves reach: kept track of (whether it was new).
    pub(crate) fn relay_found(&mut self, peer: PeerId, addr: Multiaddr, now: Instant) -> bool {
        if self.relays.contains_key(&peer) || self.relays.len() >= MAX_RELAYS {
            return false;
        }
        let relay = Relay {
            addr,
            listener: None,
            reserved: false,
            reserve_at: now,
            register_at: now,
            registering: false,
            discover_at: now,
            discover_every: DISCOVER_FIRST,
            cookie: None,
        };
        self.relays.insert(peer, relay);
        true
    }

    /// The last connection to `peer` closed: if it was a relay, it is forgotten until it is in
    /// reach again (its circuit listener closes with the connection).
    pub(crate) fn relay_gone(&mut self, peer: &PeerId) -> Option<Relay> {
        self.offers.remove(peer);
        self.relays.remove(peer)
    }

    /// What is due at each relay at `now`, given whether this node may register (it has an
    /// address others can dial: a reservation, or a public address).
    pub(crate) fn due(&mut self, now: Instant) -> Vec<(PeerId, Due)> {
        let (nat, certified) = (self.nat, self.certified);
        let mut due = Vec::new();
        for (peer, relay) in &mut self.relays {
            // Reserved unless this node is known to be dialable: while AutoNAT has not said (a
            // NAT that drops its dial back makes it wait for the dial's time-out), a node
            // behind one is reachable through the relay already.
            let reserve =
                certified && nat != Reachability::Public && relay.listener.is_none() && relay.reserve_at <= now;
            let reachable = relay.reserved || nat == Reachability::Public;
            // The rendezvous point, like the relay, serves only certified peers.
            let register = certified && reachable && !relay.registering && relay.register_at <= now;
            let discover = relay.discover_at <= now;
            if discover {
                relay.discover_at = now + relay.discover_every;
                relay.discover_every = (relay.discover_every * 2).min(DISCOVER_INTERVAL);
            }
            if register {
                relay.registering = true;
            }
            if reserve || register || discover {
                due.push((*peer, Due { reserve, register, discover }));
            }
        }
        due
    }

    /// The reservation at `relay` is asked for through `listener`.
    pub(crate) fn reserving(&mut self, relay: &PeerId, listener: ListenerId) {
        if let Some(r) = self.relays.get_mut(relay) {
            r.listener = Some(listener);
        }
    }

    /// The relay accepted (or renewed) the reservation: register now (once more on renewal
    /// does no harm: the registration is replaced).
    pub(crate) fn reserved(&mut self, relay: &PeerId, now: Instant) -> bool {
        let Some(r) = self.relays.get_mut(relay) else { return false };
        let first = !r.reserved;
        r.reserved = true;
        if first {
            r.register_at = now;
        }
        first
    }

    /// A listener closed: if it was a circuit through a relay, the reservation is gone and is
    /// asked for again later. The relay it was through.
    pub(crate) fn listener_closed(&mut self, listener: ListenerId, now: Instant) -> Option<PeerId> {
        let (peer, relay) = self.relays.iter_mut().find(|(_, r)| r.listener == Some(listener))?;
        relay.listener = None;
        relay.reserved = false;
        relay.reserve_at = now + RETRY_AFTER;
        Some(*peer)
    }

    /// This node holds a certificate now: a reservation refused before it had one is asked
    /// for again at once.
    pub(crate) fn certified(&mut self, now: Instant) {
        self.certified = true;
        for relay in self.relays.values_mut().filter(|r| r.listener.is_none()) {
            relay.reserve_at = now;
        }
    }

    /// This node logged out: no reservation is asked for until it logs in again (the one it
    /// holds ends with its certificate's admission at the relay, or with the connection).
    pub(crate) fn uncertified(&mut self) {
        self.certified = false;
    }

    /// A reservation at `relay` could not even be asked for: asked again later.
    pub(crate) fn reserve_failed(&mut self, relay: &PeerId, now: Instant) {
        if let Some(r) = self.relays.get_mut(relay) {
            r.reserve_at = now + RETRY_AFTER;
        }
    }

    /// A registration at `relay` went through, for `ttl` seconds (as the point says, within the
    /// protocol's bounds): registered again at half.
    pub(crate) fn registered(&mut self, relay: &PeerId, ttl: u64, now: Instant) {
        if let Some(r) = self.relays.get_mut(relay) {
            r.registering = false;
            let ttl = if ttl == 0 { RENDEZVOUS_TTL_SECS } else { ttl.min(libp2p::rendezvous::MAX_TTL) };
            r.register_at = now + Duration::from_secs(ttl / 2);
            // Who registered before this node is asked for at once, and who registers at about
            // the same time soon after.
            r.discover_at = now;
            r.discover_every = DISCOVER_FIRST;
        }
    }

    /// A registration at `relay` failed, or could not be sent: tried again later.
    pub(crate) fn register_failed(&mut self, relay: &PeerId, now: Instant) {
        if let Some(r) = self.relays.get_mut(relay) {
            r.registering = false;
            r.register_at = now + RETRY_AFTER;
        }
    }

    /// A discovery at `relay` ended at `cookie`.
    pub(crate) fn discovered(&mut self, relay: &PeerId, cookie: Cookie) {
        if let Some(r) = self.relays.get_mut(relay) {
            r.cookie = Some(cookie);
        }
    }

    /// The relay with a reservation, if any.
    pub(crate) fn reserved_at(&self) -> Option<PeerId> {
        self.relays.iter().find(|(_, r)| r.reserved).map(|(p, _)| *p)
    }

    /// A connection to `peer` opened (`relayed`: through a relay).
    pub(crate) fn opened(&mut self, peer: PeerId, connection: ConnectionId, relayed: bool) -> Opened {
        let paths = self.paths.entry(peer).or_default();
        if relayed {
            paths.relayed.insert(connection);
            paths.was_relayed = true;
            return Opened::Nothing;
        }
        let first_direct = paths.direct.is_empty();
        paths.direct.insert(connection);
        if first_direct && paths.was_relayed {
            paths.was_relayed = false;
            return Opened::NowDirect { relayed: paths.relayed.iter().copied().collect() };
        }
        Opened::Nothing
    }

    /// A connection to `peer` closed.
    pub(crate) fn closed(&mut self, peer: &PeerId, connection: ConnectionId) {
        let Some(paths) = self.paths.get_mut(peer) else { return };
        paths.direct.remove(&connection);
        paths.relayed.remove(&connection);
        if paths.direct.is_empty() && paths.relayed.is_empty() {
            self.paths.remove(peer);
        }
    }

    /// Whether `peer` is reached only through a relay.
    pub(crate) fn only_relayed(&self, peer: &PeerId) -> bool {
        self.paths.get(peer).is_some_and(|p| p.direct.is_empty() && !p.relayed.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay_addr() -> Multiaddr {
        "/ip4/10.77.100.2/tcp/4001".parse().unwrap()
    }

    #[test]
    fn one_account_keeps_its_latest_peers_in_the_relay_and_no_more() {
        let mut reach = Reach::default();
        let (alice, mallory) = (crate::testing::account_of("alice"), crate::testing::account_of("mallory"));
        let peers: Vec<PeerId> = (0..RELAY_PEERS_PER_ACCOUNT + 3).map(|_| PeerId::random()).collect();
        let mut let_go = Vec::new();
        for peer in &peers {
            let_go.extend(reach.admitted(mallory, *peer, |_| true));
        }
        assert_eq!(let_go, peers[..3].to_vec(), "the earliest admitted");
        // A peer admitted again (a new certificate) counts as the latest.
        assert_eq!(reach.admitted(mallory, peers[3], |_| true), None);
        assert_eq!(reach.admitted(mallory, PeerId::random(), |_| true), Some(peers[4]));
        // Another account is not held back.
        assert_eq!(reach.admitted(alice, PeerId::random(), |_| true), None);
    }

    #[test]
    fn a_private_node_reserves_then_registers_and_discovers_on_a_schedule() {
        let now = Instant::now();
        let mut reach = Reach::default();
        let relay = PeerId::random();
        assert!(reach.relay_found(relay, relay_addr(), now));
        assert!(!reach.relay_found(relay, relay_addr(), now), "found once");
        assert!(!reach.due(now).iter().any(|(_, d)| d.reserve), "not before this node holds a certificate");
        reach.certified(now);
        // (That first look asked the rendezvous point already; it is due again only later.)
        reach.relays.get_mut(&relay).unwrap().discover_at = now;
        reach.nat = Reachability::Private;
        // Reachability not known yet: reserved all the same.
        assert_eq!(reach.due(now), vec![(relay, Due { reserve: true, register: false, discover: true })]);
        let listener = ListenerId::next();
        reach.reserving(&relay, listener);
        assert_eq!(reach.due(now), vec![], "one reservation at a time");
        assert!(reach.reserved(&relay, now));
        assert!(!reach.reserved(&relay, now), "a renewal is not news");
        assert_eq!(reach.reserved_at(), Some(relay));
        assert_eq!(reach.due(now), vec![(relay, Due { reserve: false, register: true, discover: false })]);
        assert_eq!(reach.due(now), vec![], "one registration at a time");
        reach.registered(&relay, 7200, now);
        assert_eq!(reach.due(now), vec![(relay, Due { reserve: false, register: false, discover: true })]);
        let mut at = now;
        for every in [1u64, 2, 4, 8, 10, 10] {
            let next = at + Duration::from_secs(every);
            assert_eq!(reach.due(next - Duration::from_millis(1)), vec![]);
            at = next;
            assert_eq!(reach.due(at), vec![(relay, Due { reserve: false, register: false, discover: true })]);
        }
        let hour = now + Duration::from_secs(3600);
        assert!(reach.due(hour)[0].1.register, "registered again at half its lifetime");
        // A point that says a registration lasts for ever is taken at the protocol's bound.
        reach.registered(&relay, u64::MAX, hour);
        let bound = hour + Duration::from_secs(libp2p::rendezvous::MAX_TTL / 2);
        assert!(!reach.due(bound - Duration::from_secs(1)).iter().any(|(_, d)| d.register));
        assert!(reach.due(bound).iter().any(|(_, d)| d.register));
    }

    #[test]
    fn a_lost_reservation_is_asked_for_again_after_a_while() {
        let now = Instant::now();
        let mut reach = Reach { nat: Reachability::Private, certified: true, ..Reach::default() };
        let relay = PeerId::random();
        reach.relay_found(relay, relay_addr(), now);
        reach.due(now);
        let listener = ListenerId::next();
        reach.reserving(&relay, listener);
        assert_eq!(reach.listener_closed(ListenerId::next(), now), None, "another listener");
        assert_eq!(reach.listener_closed(listener, now), Some(relay));
        assert!(!reach.due(now).iter().any(|(_, d)| d.reserve));
        assert!(reach.due(now + RETRY_AFTER).iter().any(|(_, d)| d.reserve));
        // Refused again, then the node logs in: asked for at once.
        reach.reserving(&relay, listener);
        reach.listener_closed(listener, now);
        reach.certified(now);
        assert!(reach.due(now).iter().any(|(_, d)| d.reserve));
    }

    #[test]
    fn a_node_known_to_be_dialable_reserves_nothing() {
        let now = Instant::now();
        let mut reach = Reach { nat: Reachability::Public, certified: true, ..Reach::default() };
        let relay = PeerId::random();
        reach.relay_found(relay, relay_addr(), now);
        assert!(!reach.due(now).iter().any(|(_, d)| d.reserve));
    }

    #[test]
    fn a_failed_registration_is_tried_again() {
        let now = Instant::now();
        let mut reach = Reach { nat: Reachability::Public, certified: true, ..Reach::default() };
        let relay = PeerId::random();
        reach.relay_found(relay, relay_addr(), now);
        assert!(reach.due(now)[0].1.register, "a public node registers without a reservation");
        reach.register_failed(&relay, now);
        assert!(reach.due(now).is_empty());
        assert!(reach.due(now + RETRY_AFTER)[0].1.register);
    }

    #[test]
    fn the_move_from_relayed_to_direct_is_told_once() {
        let mut reach = Reach::default();
        let peer = PeerId::random();
        let (relayed, direct, second) =
            (ConnectionId::new_unchecked(1), ConnectionId::new_unchecked(2), ConnectionId::new_unchecked(3));
        assert_eq!(reach.opened(peer, relayed, true), Opened::Nothing);
        assert!(reach.only_relayed(&peer));
        assert_eq!(reach.opened(peer, direct, false), Opened::NowDirect { relayed: vec![relayed] });
        assert!(!reach.only_relayed(&peer));
        reach.closed(&peer, relayed);
        assert_eq!(reach.opened(peer, second, false), Opened::Nothing);
        // A LAN peer, never relayed: nothing to tell.
        let neighbour = PeerId::random();
        assert_eq!(reach.opened(neighbour, ConnectionId::new_unchecked(4), false), Opened::Nothing);
        reach.closed(&peer, direct);
        reach.closed(&peer, second);
        assert!(!reach.only_relayed(&peer));
    }

    #[test]
    fn a_peer_serving_reach_is_a_relay_once_its_key_is_trusted() {
        let now = Instant::now();
        let mut reach = Reach::default();
        let (relay, stranger) = (PeerId::random(), PeerId::random());
        let key = crate::cert::Authority::from_secret(&[7; 32]).public();
        let other = crate::cert::Authority::from_secret(&[9; 32]).public();
        reach.offered(relay, relay_addr(), key);
        reach.offered(stranger, relay_addr(), other);
        assert!(reach.take_trusted(None, now).is_empty(), "no key trusted yet");
        assert_eq!(reach.take_trusted(Some(key), now), vec![(relay, relay_addr())]);
        assert!(reach.take_trusted(Some(key), now).is_empty(), "taken once");
        assert!(reach.relays.contains_key(&relay) && !reach.relays.contains_key(&stranger));
    }

    #[test]
    fn peers_offering_reach_under_other_keys_cannot_keep_the_real_one_out() {
        let now = Instant::now();
        let mut reach = Reach::default();
        let key = crate::cert::Authority::from_secret(&[7; 32]).public();
        let (relay, later) = (PeerId::random(), PeerId::random());
        for n in 0..2 * MAX_RELAYS {
            let made_up = crate::cert::Authority::from_secret(&[n as u8 + 10; 32]).public();
            reach.offered(PeerId::random(), relay_addr(), made_up);
        }
        reach.offered(relay, relay_addr(), key);
        assert_eq!(reach.offers.len(), MAX_RELAYS, "bounded");
        // The key is confirmed after a few more made-up offers came: fewer than take every
        // place, as a node is offered reach each time identify tells it again.
        for n in 0..MAX_RELAYS - 1 {
            let made_up = crate::cert::Authority::from_secret(&[n as u8 + 100; 32]).public();
            reach.offered(PeerId::random(), relay_addr(), made_up);
        }
        assert_eq!(reach.take_trusted(Some(key), now), vec![(relay, relay_addr())]);
        // Whatever came before, the newest offer has its place: one whose key is trusted
        // already becomes a relay at once.
        for n in 0..2 * MAX_RELAYS {
            let made_up = crate::cert::Authority::from_secret(&[n as u8 + 150; 32]).public();
            reach.offered(PeerId::random(), relay_addr(), made_up);
        }
        reach.offered(later, relay_addr(), key);
        assert_eq!(reach.take_trusted(Some(key), now), vec![(later, relay_addr())]);
    }

    #[test]
    fn relays_are_bounded() {
        let now = Instant::now();
        let mut reach = Reach::default();
        for _ in 0..MAX_RELAYS {
            assert!(reach.relay_found(PeerId::random(), relay_addr(), now));
        }
        assert!(!reach.relay_found(PeerId::random(), relay_addr(), now));
    }
}
