//! The parts the node's event loop is made of: the [`EventLoop`] struct (the swarm, the key, the
//! channels to and from the clients, the state of each part of the node, the connections and
//! the progress towards `ready`) and how it is put together at start ([`EventLoop::new`]), from
//! what a node needs to start ([`NodeConfig`]), or why it could not ([`NodeError`]).
//!
//! It sits below the event loop and the adapters (the `impl EventLoop` files), which import the
//! struct from here, and above the state it holds (`node/state/`, `attention`, `liveness`). It
//! never imports the event loop nor an adapter file, and holds no behaviour beyond building the
//! struct: running the loop is `node/event_loop.rs`'s, each part's work its adapter's.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::core::transport::ListenerId;
use libp2p::identity::Keypair;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub};
use thiserror::Error;
use tokio::sync::mpsc;

use super::attention::Attention;
use super::client::Request;
use super::event::UiEvent;
use super::liveness::Liveness;
use super::state::accounts::{Accounts, AuthTicket};
use super::state::direct::Direct;
use super::state::keys::RoomKeys;
use super::state::mailbox::Mailboxes;
use super::state::presence::PresenceState;
use super::state::reach::Reach;
use super::state::rooms::Rooms;
use super::state::search::LastSearch;
use super::state::store::{Loaded, StoreHandle, Written};
use super::store_reads::Serving;
use super::store_worker;
use crate::bootstrap::service::ServiceError;
use crate::bootstrap::{AuthService, AuthWorker};
use crate::cert::CertCache;
use crate::net::{Behaviour, Redialer, RelayGate, Roles, SwarmError, build_swarm, topic_score};
use crate::pinned_key::Trust;
use crate::protocol::auth::AuthResponse;
use crate::protocol::presence;
use crate::store::NodeStore;

/// What a node needs to start.
pub struct NodeConfig {
    /// The node's identity.
    pub key: Keypair,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Addresses to dial at start and keep re-dialling.
    pub peers: Vec<Multiaddr>,
    /// Discover peers with mDNS.
    pub mdns: bool,
    /// The node's database.
    pub store: NodeStore,
    /// Which bootstrap node to trust.
    pub trust: Trust,
    /// The account service, when this node hosts the bootstrap.
    pub bootstrap: Option<AuthService>,
    /// Keep letters for others as a mailbox (a node that hosts the bootstrap always does).
    pub mailbox: bool,
    /// When this node hosts the bootstrap: its address as other sites reach it; it then serves
    /// them as a relay, a rendezvous point and an AutoNAT server.
    pub public_addr: Option<Multiaddr>,
}

/// The node could not start.
#[derive(Debug, Error)]
pub enum NodeError {
    #[error(transparent)]
    Swarm(#[from] SwarmError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    #[error(transparent)]
    Accounts(#[from] ServiceError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Progress towards the `ready` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Readiness {
    /// Some listener has not reported an address yet.
    Listening,
    /// Every listener has; more addresses of the same listeners may follow until then.
    Settling(tokio::time::Instant),
    /// `ready` has been sent.
    Ready,
}

/// Capacity of the channel of answers from the hosted account worker.
const AUTH_ANSWER_CAPACITY: usize = 256;

pub(super) struct EventLoop {
    pub(super) swarm: Swarm<Behaviour>,
    /// The node's key: signs room events and messages.
    pub(super) key: Keypair,
    pub(super) requests: mpsc::Receiver<Request>,
    pub(super) events: mpsc::Sender<UiEvent>,
    /// Account state: the session engine, the trusted bootstrap, the hosted account worker.
    pub(super) accounts: Accounts,
    /// Who is online, and this node's announcements.
    pub(super) presence: PresenceState,
    /// Rooms: logs, topics, the directory.
    pub(super) rooms: Rooms,
    /// Direct messages in flight.
    pub(super) direct: Direct,
    /// Room keys, and the messages waiting for theirs.
    pub(super) keys: RoomKeys,
    /// The focus and the mutes: where plain text goes, what notifies.
    pub(super) attention: Attention,
    /// Certificates already checked.
    pub(super) certs: CertCache,
    /// Mailboxes in reach and this node as one.
    pub(super) mailboxes: Mailboxes,
    /// The last search of the user logged in, for `/search more` and `/history around N`.
    pub(super) last_search: Option<LastSearch>,
    /// Answers from the hosted account worker.
    pub(super) auth_answers: mpsc::Receiver<(AuthTicket, AuthResponse)>,
    /// Catch-up answers being read beside the loop.
    pub(super) serving: Serving,
    /// The queue to the store worker, which owns the node database.
    pub(super) store: StoreHandle,
    /// What the store worker's jobs gave back, once committed.
    pub(super) written: mpsc::UnboundedReceiver<Written>,
    /// What was read of the database at start, until it is taken in.
    pub(super) loaded: Option<Loaded>,
    pub(super) redial: Redialer,
    /// Listeners, and whether each has reported (an address, or its failure).
    pub(super) listeners: HashMap<ListenerId, bool>,
    pub(super) listen_addrs: Vec<Multiaddr>,
    pub(super) readiness: Readiness,
    /// Remote address of every open connection.
    pub(super) remotes: HashMap<ConnectionId, Multiaddr>,
    /// Whether each open connection still shows signs of life.
    pub(super) liveness: Liveness,
    /// Events that happened before `ready`, reported right after it.
    pub(super) before_ready: Vec<UiEvent>,
    /// New peers to ask again whom they know, and when.
    pub(super) exchange_follow_ups: Vec<(Instant, PeerId)>,
    /// Reach beyond the LAN: relays, reservations, registrations, how each peer is reached.
    pub(super) reach: Reach,
}

impl EventLoop {
    pub(super) fn new(
        config: NodeConfig,
        requests: mpsc::Receiver<Request>,
        events: mpsc::Sender<UiEvent>,
    ) -> Result<Self, NodeError> {
        let local = config.key.public().to_peer_id();
        let hosts_bootstrap = config.bootstrap.is_some();
        let key = config.key.clone();
        let hosts_mailbox = config.mailbox || hosts_bootstrap;
        let gate = config.public_addr.as_ref().filter(|_| hosts_bootstrap).map(|_| RelayGate::default());
        // A bootstrap node at another site is reached only through `--peer`.
        let reaches_out = !config.peers.is_empty() && gate.is_none();
        let roles =
            Roles { mdns: config.mdns, hosts_bootstrap, hosts_mailbox, serves_reach: gate.clone(), reaches_out };
        let mut swarm = build_swarm(config.key, roles)?;
        if let Some(public) = config.public_addr.clone().filter(|_| hosts_bootstrap) {
            // Told to peers by identify, and registered at the rendezvous point.
            swarm.add_external_address(public);
        }
        let presence_topic = gossipsub::IdentTopic::new(presence::TOPIC);
        if let Err(error) = swarm.behaviour_mut().gossipsub.set_topic_params(presence_topic.clone(), topic_score()) {
            tracing::error!(%error, "cannot score the presence topic");
        }
        if let Err(error) = swarm.behaviour_mut().gossipsub.subscribe(&presence_topic) {
            tracing::error!(%error, "cannot subscribe to presence");
        }
        let (answers_tx, auth_answers) = mpsc::channel(AUTH_ANSWER_CAPACITY);
        let worker = match config.bootstrap {
            Some(service) => Some(AuthWorker::spawn(service, answers_tx)?),
            None => None,
        };
        let mut listeners = HashMap::new();
        for addr in config.listen {
            let id = swarm.listen_on(addr.clone()).map_err(|e| NodeError::Listen { addr, reason: e.to_string() })?;
            listeners.insert(id, false);
        }
        let serving = Serving::start(config.store.reader());
        let mut loaded = Loaded::read(&config.store);
        let (store, written) = store_worker::spawn(config.store)?;
        let accounts = Accounts::new(local, store.clone(), &mut loaded, config.trust, worker);
        Ok(EventLoop {
            swarm,
            key,
            requests,
            events,
            accounts,
            presence: PresenceState::new(presence_topic, local),
            rooms: Rooms::default(),
            direct: Direct::default(),
            keys: RoomKeys::default(),
            attention: Attention::default(),
            certs: CertCache::default(),
            last_search: None,
            mailboxes: Mailboxes::new(hosts_mailbox),
            auth_answers,
            serving,
            store,
            written,
            loaded: Some(loaded),
            redial: Redialer::new(local, config.peers, Instant::now()),
            listeners,
            listen_addrs: Vec::new(),
            readiness: Readiness::Listening,
            remotes: HashMap::new(),
            liveness: Liveness::default(),
            before_ready: Vec::new(),
            exchange_follow_ups: Vec::new(),
            reach: Reach::new(gate),
        })
    }
}
