//! Reach beyond the LAN, the node's side (only on a node given `--peer`, see
//! [`crate::net::behaviour`]): a bootstrap node with the trusted key that serves
//! reach (identify lists the relay and rendezvous protocols) is asked by AutoNAT whether this
//! node can be dialled from outside; when it cannot, the node reserves a circuit through it;
//! once dialable (a reservation, or a public address), the node registers at its rendezvous
//! point, and it asks every few seconds who else registered and dials them (through the relay;
//! DCUtR then tries a direct connection, and the relayed one closes when it succeeds). A bootstrap
//! node that serves reach admits to its relay the peers it sees hold a valid certificate.
//!
//! It decides nothing about rooms, messages or accounts; what is due when is
//! [`super::state::reach`]'s.

use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{PeerId, autonat, dcutr, identify, relay, rendezvous};

use super::event::{PeerConnection, PeerPath, PeerState, Reachability, UiEvent};
use super::parts::EventLoop;
use super::state::reach::Opened;
use crate::cert::{AuthorityKey, CertBody};
use crate::clock::unix_now;
use crate::net::reach::{RENDEZVOUS_DISCOVER_PAGE, RENDEZVOUS_NAMESPACE, RENDEZVOUS_TTL_SECS};
use crate::net::redial::is_loopback;

fn namespace() -> rendezvous::Namespace {
    rendezvous::Namespace::from_static(RENDEZVOUS_NAMESPACE)
}

impl EventLoop {
    /// identify told what `peer` speaks: a bootstrap node that is a relay and a rendezvous point
    /// is offered for reach, and used once its key is the trusted one.
    pub(super) async fn consider_relay(&mut self, peer: PeerId, connection: ConnectionId, info: &identify::Info) {
        let speaks = |name: &str| info.protocols.iter().any(|p| p.as_ref() == name);
        // A node of one LAN (no `--peer`) reaches out to nobody.
        if !self.swarm.behaviour().relay_client.is_enabled()
            || peer == self.accounts.local
            || !speaks(relay::HOP_PROTOCOL_NAME.as_ref())
            || !speaks(rendezvous::PROTOCOL_NAME.as_ref())
        {
            return;
        }
        let key = AuthorityKey::of_peer(&info.public_key);
        // The relay is reached as this connection reaches it: never through another relay.
        let addr = self.remotes.get(&connection).filter(|a| !crate::net::reach::is_relayed(a)).cloned();
        let (Some(key), Some(addr)) = (key, addr) else { return };
        self.reach.offered(peer, addr, key);
        self.reach_due().await;
    }

    /// Does what is due at each relay: reserve, register, discover. A peer that serves reach
    /// with the trusted key becomes a relay first, and AutoNAT asks it.
    pub(super) async fn reach_due(&mut self) {
        let now = Instant::now();
        for (relay, addr) in self.reach.take_trusted(self.accounts.trusted_key(), now) {
            tracing::info!(%relay, %addr, "a relay and rendezvous point is in reach");
            if let Some(autonat) = self.swarm.behaviour_mut().autonat.as_mut() {
                autonat.inner_mut().add_server(relay, Some(addr));
            }
        }
        for (relay, due) in self.reach.due(now) {
            let Some(addr) = self.reach.relays.get(&relay).map(|r| r.addr.clone()) else { continue };
            if due.reserve {
                let mut circuit = addr;
                if !matches!(circuit.iter().last(), Some(Protocol::P2p(_))) {
                    circuit.push(Protocol::P2p(relay));
                }
                circuit.push(Protocol::P2pCircuit);
                match self.swarm.listen_on(circuit) {
                    Ok(listener) => self.reach.reserving(&relay, listener),
                    Err(error) => {
                        tracing::info!(%relay, ?error, "cannot ask the relay for a reservation");
                        self.reach.reserve_failed(&relay, now);
                    }
                }
            }
            // (Relays are found only by a node that reaches out, which runs the client.)
            if due.register
                && let Some(client) = self.swarm.behaviour_mut().rendezvous.as_mut()
                && let Err(error) = client.register(namespace(), relay, Some(RENDEZVOUS_TTL_SECS))
            {
                tracing::debug!(%relay, %error, "cannot register at the rendezvous point yet");
                self.reach.register_failed(&relay, now);
            }
            if due.discover
                && let Some(client) = self.swarm.behaviour_mut().rendezvous.as_mut()
            {
                let cookie = self.reach.relays.get(&relay).and_then(|r| r.cookie.clone());
                client.discover(Some(namespace()), cookie, Some(RENDEZVOUS_DISCOVER_PAGE), relay);
            }
        }
    }

    /// A listener closed: if it was a circuit, the reservation is asked for again later.
    /// Whether it was one.
    pub(super) fn reach_listener_closed(&mut self, listener: ListenerId) -> bool {
        match self.reach.listener_closed(listener, Instant::now()) {
            Some(relay) => {
                tracing::info!(%relay, "the reservation at the relay ended or was refused; asking again later");
                true
            }
            None => false,
        }
    }

    /// A connection opened: a direct one to a peer reached through a relay until now is told
    /// once, and the relayed ones close (they hold a place at the relay).
    pub(super) async fn reach_connection_opened(&mut self, peer: PeerId, connection: ConnectionId, relayed: bool) {
        if let Opened::NowDirect { relayed } = self.reach.opened(peer, connection, relayed) {
            tracing::info!(%peer, "a peer reached through the relay is now reached directly");
            for id in relayed {
                self.swarm.close_connection(id);
            }
            self.emit(UiEvent::Peer { peer_id: peer.to_string(), state: PeerState::Direct }).await;
        }
    }

    /// A connection closed; the last one to a relay forgets it until it is in reach again.
    pub(super) fn reach_connection_closed(&mut self, peer: PeerId, connection: ConnectionId, last: bool) {
        self.reach.closed(&peer, connection);
        if last && self.reach.relay_gone(&peer).is_some() {
            tracing::info!(relay = %peer, "the relay is out of reach; re-dialled as any peer");
        }
    }

    /// The relay client: a reservation accepted, circuits opened.
    pub(super) async fn on_relay_client(&mut self, event: relay::client::Event) {
        match event {
            relay::client::Event::ReservationReqAccepted { relay_peer_id, renewal, .. } => {
                if self.reach.reserved(&relay_peer_id, Instant::now()) {
                    tracing::info!(relay = %relay_peer_id, renewal, "reservation at the relay accepted");
                }
                self.reach_due().await;
            }
            other => tracing::debug!(?other, "relay client"),
        }
    }

    /// AutoNAT: whether this node can be dialled from outside changed.
    pub(super) async fn on_autonat(&mut self, event: autonat::Event) {
        if let autonat::Event::StatusChanged { old, new } = event {
            tracing::info!(?old, ?new, "reachability from outside");
            self.reach.nat = match new {
                autonat::NatStatus::Public(_) => Reachability::Public,
                autonat::NatStatus::Private => Reachability::Private,
                autonat::NatStatus::Unknown => Reachability::Unknown,
            };
            self.reach_due().await;
        }
    }

    /// The rendezvous client: registered, or who else registered (dialled).
    pub(super) async fn on_rendezvous(&mut self, event: rendezvous::client::Event) {
        let now = Instant::now();
        match event {
            rendezvous::client::Event::Registered { rendezvous_node, ttl, .. } => {
                tracing::info!(point = %rendezvous_node, ttl, "registered at the rendezvous point");
                self.reach.registered(&rendezvous_node, ttl, now);
                self.reach_due().await;
            }
            rendezvous::client::Event::RegisterFailed { rendezvous_node, error, .. } => {
                tracing::info!(point = %rendezvous_node, ?error, "registration at the rendezvous point failed");
                self.reach.register_failed(&rendezvous_node, now);
            }
            rendezvous::client::Event::Discovered { rendezvous_node, registrations, cookie } => {
                self.reach.discovered(&rendezvous_node, cookie);
                let local = self.accounts.local;
                // As with identify: loopback addresses only from a point reached over loopback
                // (the re-dial policy bounds how many peers and addresses it keeps).
                let loopback_ok = self.reach.relays.get(&rendezvous_node).is_some_and(|relay| is_loopback(&relay.addr));
                for registration in registrations {
                    let peer = registration.record.peer_id();
                    if peer == local {
                        continue;
                    }
                    for addr in registration.record.addresses() {
                        if loopback_ok || !is_loopback(addr) {
                            self.redial.add_address(peer, addr.clone(), now);
                        }
                    }
                }
                self.dial_due().await;
            }
            rendezvous::client::Event::DiscoverFailed { rendezvous_node, error, .. } => {
                tracing::debug!(point = %rendezvous_node, ?error, "discovery at the rendezvous point failed");
            }
            rendezvous::client::Event::Expired { peer } => tracing::debug!(%peer, "a registration expired"),
        }
    }

    /// DCUtR: a hole punch through to a peer reached through the relay succeeded or failed (the
    /// relayed connection stays then).
    pub(super) fn on_dcutr(&mut self, event: dcutr::Event) {
        match event.result {
            Ok(_) => tracing::info!(peer = %event.remote_peer_id, "direct connection punched through"),
            Err(error) => {
                tracing::info!(peer = %event.remote_peer_id, %error, "no direct connection; staying relayed")
            }
        }
    }

    /// The peer `body` names holds a valid certificate of this node's authority: its
    /// connections from outside keep their places while it is valid, and a bootstrap node that
    /// serves reach admits it to its relay (letting go of that account's peer admitted longest
    /// ago, beyond its share).
    pub(super) fn admit_certified(&mut self, body: &CertBody) {
        let Ok(peer) = PeerId::from_bytes(&body.peer_id) else { return };
        let now = Instant::now();
        let left = Duration::from_secs(body.expires_at.saturating_sub(unix_now()));
        let Some(until) = now.checked_add(left) else { return };
        self.swarm.behaviour_mut().inbound.vouch(peer, until, now);
        let Some(gate) = self.reach.gate.clone() else { return };
        gate.admit(peer, until, now);
        if let Some(old) = self.reach.admitted(body.account, peer, |p| gate.admits(p, now)) {
            gate.revoke(&old);
        }
    }

    /// Each peer connected and how, sorted by peer id as written, for `/status`.
    pub(super) fn connections(&self) -> Vec<PeerConnection> {
        let mut connections: Vec<PeerConnection> = self
            .swarm
            .connected_peers()
            .map(|peer| PeerConnection {
                peer_id: peer.to_string(),
                user: self.presence_user(peer),
                path: if self.reach.only_relayed(peer) { PeerPath::Relayed } else { PeerPath::Direct },
            })
            .collect();
        connections.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        connections
    }
}
