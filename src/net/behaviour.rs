//! The libp2p protocols a node speaks, composed into one [`Behaviour`], and their settings for a
//! small LAN.
//!
//! - gossipsub: rooms and presence. Messages travel unsigned by gossipsub (each carries its
//!   author's signature inside, checked once per message by the node, not once per copy) and are
//!   known by a hash of their bytes; application validation on (every message is
//!   accepted or rejected by the node), flood publishing so a message reaches every subscribed
//!   peer at once instead of waiting for a heartbeat. Peer scoring is on: a peer that passes on
//!   messages the node rejects loses score and is ignored for a while; sharing an IP address
//!   (many nodes on one host, or behind one NAT) costs nothing, nor do quiet rooms, leaving and
//!   rejoining a room, or a slow peer.
//! - connection limits: bounds on pending and established connections, against a flood of
//!   fake peers; on those being set up from one host ([`super::pending_per_host`]), so that
//!   one host cannot hold every place; and on the established ones from outside
//!   ([`super::inbound_slots`]): at most so many per host, and when all are taken a newcomer
//!   takes the place of a peer that has shown no valid certificate; and on the addresses one
//!   dial may name ([`super::dial_bound`]), so that no peer has a hole punch knock on hundreds.
//! - mDNS (optional): finds peers on the LAN. It never dials: the node does, on discovery.
//! - identify: learns peers' listen addresses and protocols.
//! - ping: notices dead peers within seconds; the node closes a connection whose pings fail.
//! - peer exchange ([`crate::protocol::peers`]): asks each new peer whom it knows.
//! - room catch-up ([`crate::protocol::sync`]): a room's heads, the events and messages a member lacks.
//! - direct messages ([`crate::protocol::dm`]): one message a request, the receipt its answer.
//! - room keys ([`crate::protocol::keys`]): the keys of members' group sessions, given and asked
//!   for between members.
//! - accounts ([`crate::protocol::auth`]): every node can ask; only a node that hosts the
//!   bootstrap answers, so only there does identify list the protocol.
//! - each request-response protocol holds at most so many streams open on one connection, its
//!   requests and answers both ways together ([`PEERS_MAX_STREAMS`] and the others): what an
//!   honest node has in flight with one peer, with a margin; a stream over it is dropped
//!   unread (an outbound request over it fails at once), so no peer has the node buffer up to
//!   libp2p's default of 100 requests of each protocol's largest size per connection.
//! - reach beyond the LAN ([`super::reach`]): a node that dials peers it is given (`--peer`:
//!   the only way to a bootstrap node at another site) is a circuit relay v2 client, a
//!   rendezvous client, an AutoNAT client and speaks DCUtR (hole punching over a relayed
//!   connection); a node of one LAN, which finds its peers by mDNS, runs none of them (each
//!   adds a handler to every connection, about a tenth of the CPU per room message delivered
//!   in the suite); a bootstrap node started with a public address is also the relay, the
//!   rendezvous point and the AutoNAT server, each only for the peers holding a valid
//!   certificate of its authority ([`super::gated`]).

use std::time::Duration;

use libp2p::request_response::{self, ProtocolSupport, cbor};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    PeerId, StreamProtocol, autonat, connection_limits, dcutr, gossipsub, identify, identity::Keypair, mdns, ping,
    relay, rendezvous,
};
use sha2::{Digest, Sha256};

use crate::protocol::auth::{self, AuthRequest, AuthResponse};
use crate::protocol::dm::{self, DmRequest, DmResponse};
use crate::protocol::keys::{self, KeysRequest, KeysResponse};
use crate::protocol::mailbox::{self, MailboxRequest, MailboxResponse};
use crate::protocol::peers::{self, PeersRequest, PeersResponse};
use crate::protocol::sync::{self as room_sync, SyncRequest, SyncResponse};

use super::dial_bound::DialBound;
use super::gated::Gated;
use super::inbound_slots::InboundSlots;
use super::pending_per_host::PendingPerHost;
use super::reach::{self, RelayGate};

/// identify's protocol version: peers that speak another one are another network.
pub const IDENTIFY_PROTOCOL: &str = "/meshchat/1.0.0";
/// How often ping checks each connection: twice within the time after which the node closes a
/// silent connection (5 s). Every connection is pinged from both ends, so with tens of peers
/// this is the steady load of an idle node.
pub const PING_INTERVAL: Duration = Duration::from_secs(2);
/// How long one ping may take before it counts as failed (the node then closes the connection,
/// unless the peer's messages keep coming in over it: see `node::liveness`).
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// gossipsub heartbeat: each node then lists the messages of the last three heartbeats to a few
/// members (IHAVE), which is how a member the author cannot reach gets them; publishing never
/// waits for it.
pub const GOSSIP_HEARTBEAT: Duration = Duration::from_millis(700);
/// How long a message this node publishes may wait to be sent before gossipsub drops it.
pub const PUBLISH_QUEUE_WAIT: Duration = Duration::from_secs(60);
/// How long a message this node sends to a member that asked for it (IWANT) may wait to be sent.
pub const FORWARD_QUEUE_WAIT: Duration = Duration::from_secs(10);
/// The largest gossipsub frame accepted.
pub const GOSSIP_MAX_TRANSMIT_BYTES: usize = 256 * 1024;
/// The most message ids one IHAVE lists (and one IWANT asks for): 500 ids of 20 bytes make
/// about 11 KiB, within the 16 KiB of control messages a gossipsub peer takes by default. A
/// peer drops the whole stream a larger one came on, and with it every message queued behind
/// it; gossipsub's own default, 5,000, is reached by a room busy for a couple of seconds.
pub const GOSSIP_MAX_IHAVE_IDS: usize = 500;
/// mDNS record lifetime: a peer not heard of for this long is forgotten.
pub const MDNS_TTL: Duration = Duration::from_secs(120);
/// How often mDNS asks the LAN who is there.
pub const MDNS_QUERY_INTERVAL: Duration = Duration::from_secs(20);
/// The most (peer, address) pairs mDNS may hold, far beyond a LAN's machines: libp2p's mDNS keeps
/// every pair any host on the LAN answers with (no certificate needed), for as long as the answer
/// says, and looks each new one up in a list of all the others. Beyond this many the node starts
/// mDNS afresh ([`mdns_behaviour`]); the peers it dials are kept apart, in its own bounded list.
pub const MDNS_MAX_RECORDS: usize = 1024;

/// How long the bootstrap node may take to answer an account request (hashing included).
pub const AUTH_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a room catch-up answer may take.
pub const SYNC_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections being set up from outside at once: sixteen hosts' worth (one host sets up at
/// most [`super::pending_per_host::MAX_PENDING_PER_HOST`]).
pub const MAX_PENDING_INCOMING: u32 = 256;
/// Established connections with one peer (TCP and QUIC, both directions).
pub const MAX_ESTABLISHED_PER_PEER: u32 = 4;
/// How long a direct message may wait for its receipt.
pub const DM_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a room key given or asked for may take to be answered.
pub const KEYS_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a mailbox may take to answer.
pub const MAILBOX_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a peer-exchange answer may take.
pub const PEERS_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

// Streams of a request-response protocol open at once on one connection, requests and answers
// both ways together (libp2p counts them in one set, 100 by default; a stream over it is
// dropped, an outbound request over it fails at once). A peer holds at most
// [`MAX_ESTABLISHED_PER_PEER`] connections.

/// Peer exchange: a node asks a peer at most three times at once (on connecting, the follow-up,
/// the now-and-then question to a random peer), and is asked as often.
pub const PEERS_MAX_STREAMS: usize = 8;
/// Accounts: a node asks one thing at a time, a few look-ups at most; the bootstrap keeps
/// [`QUEUE_PER_ASKER_MAX`](crate::bootstrap::queue::QUEUE_PER_ASKER_MAX) of one asker's requests
/// waiting, twice that in flight.
pub const AUTH_MAX_STREAMS: usize = 2 * crate::bootstrap::queue::QUEUE_PER_ASKER_MAX;
/// Room catch-up: one catch-up in flight per room shared with the peer (a presence lists at
/// most [`MAX_ROOMS`](crate::protocol::presence::MAX_ROOMS)), each way at once after a
/// reconnection, and a few heads asked for by joins.
pub const SYNC_MAX_STREAMS: usize = 2 * crate::protocol::presence::MAX_ROOMS + 16;
/// Direct messages: one in flight per receiver, and a peer hosts one user; each way.
pub const DM_MAX_STREAMS: usize = 16;
/// Room keys: a key asked for or given per room shared with the peer, at most
/// [`MAX_ROOMS`](crate::protocol::presence::MAX_ROOMS) of them in practice; one asked for over
/// it is asked again after a few seconds, a key given over it is asked for.
pub const KEYS_MAX_STREAMS: usize = crate::protocol::presence::MAX_ROOMS;
/// Mailboxes: a collection and its list of letters taken, and the letters a sender leaves as
/// fast as its node keeps its messages: twice as many as one sender may leave for one receiver
/// ([`MAX_LETTERS_PER_PAIR`](crate::mailbox::MAX_LETTERS_PER_PAIR)). A letter not left waits in
/// the outbox all the same.
pub const MAILBOX_MAX_STREAMS: usize = 2 * crate::mailbox::MAX_LETTERS_PER_PAIR as usize;

/// mDNS for the node `local`, holding nothing yet.
pub fn mdns_behaviour(local: PeerId) -> std::io::Result<mdns::tokio::Behaviour> {
    let config = mdns::Config { ttl: MDNS_TTL, query_interval: MDNS_QUERY_INTERVAL, ..Default::default() };
    mdns::tokio::Behaviour::new(config, local)
}

/// Scoring of a topic (each room's, and presence): only passing on messages that the node
/// rejects costs score (each counts as its number squared, decaying); a quiet topic or a slow
/// mesh costs nothing. A peer that keeps passing on rejected messages is soon ignored on every
/// topic (gossipsub's graylist), before what it sends costs a check.
pub fn topic_score() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -1.0,
        invalid_message_deliveries_decay: 0.5,
        ..Default::default()
    }
}

/// A gossipsub message's id: a hash of its topic and bytes, so every copy of a message has the
/// same id, and two messages differ in bytes (each carries its author's signature and a nonce or
/// sequence number).
pub fn message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    let mut hash = Sha256::new();
    hash.update(message.topic.as_str().as_bytes());
    hash.update([0]);
    hash.update(&message.data);
    gossipsub::MessageId::new(&hash.finalize()[..20])
}

/// The node's protocols.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub limits: connection_limits::Behaviour,
    pub pending_per_host: PendingPerHost,
    pub inbound: InboundSlots,
    pub dial_bound: DialBound,
    pub gossipsub: gossipsub::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub peers: cbor::Behaviour<PeersRequest, PeersResponse>,
    pub auth: cbor::Behaviour<AuthRequest, AuthResponse>,
    pub sync: cbor::Behaviour<SyncRequest, SyncResponse>,
    pub dm: cbor::Behaviour<DmRequest, DmResponse>,
    pub keys: cbor::Behaviour<KeysRequest, KeysResponse>,
    pub mailbox: cbor::Behaviour<MailboxRequest, MailboxResponse>,
    pub relay_client: Toggle<relay::client::Behaviour>,
    pub relay: Toggle<relay::Behaviour>,
    pub dcutr: Toggle<dcutr::Behaviour>,
    pub autonat: Toggle<Gated<autonat::Behaviour>>,
    pub rendezvous: Toggle<rendezvous::client::Behaviour>,
    pub rendezvous_point: Toggle<Gated<rendezvous::server::Behaviour>>,
}

/// What a node is besides a chat node.
#[derive(Debug, Clone, Default)]
pub struct Roles {
    /// Finds peers on the LAN with mDNS.
    pub mdns: bool,
    /// Answers account requests.
    pub hosts_bootstrap: bool,
    /// Keeps letters for others.
    pub hosts_mailbox: bool,
    /// Serves reach to other sites (relay, rendezvous point, AutoNAT) for the peers the gate
    /// admits.
    pub serves_reach: Option<RelayGate>,
    /// Reaches beyond its LAN: uses relays, rendezvous points, AutoNAT and hole punching.
    pub reaches_out: bool,
}

impl Behaviour {
    /// Builds the behaviour for the node with key `key` in the `roles` it has (see [`Roles`]),
    /// around the client side of the relay transport.
    pub fn new(
        key: &Keypair,
        relay_client: relay::client::Behaviour,
        roles: Roles,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let Roles { mdns, hosts_bootstrap, hosts_mailbox, serves_reach, reaches_out } = roles;
        // Every message meshchat publishes carries its author's signature inside it (room
        // events, sealed presence), checked once when the message is taken in. gossipsub's
        // own signing would check every copy of a message before dropping duplicates, and a
        // member receives a message from several peers; so gossipsub messages go unsigned and
        // are known by a hash of their bytes.
        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Anonymous)
            .message_id_fn(message_id)
            .validate_messages()
            .flood_publish(true)
            // Every LAN peer is usually connected to every other and gets each message straight
            // from its author (flood publishing). So no mesh: a mesh peer would pass every
            // message on to its own mesh peers, who have it already, or tell them (IDONTWANT)
            // that it has it, three or more frames per member for each message where one
            // delivers it (a room of 32 on two cores spent a third of its CPU on them). A
            // member the author cannot reach still gets the message within a heartbeat or two:
            // every member lists what it has to a few others each heartbeat (IHAVE), and the
            // member that lacks something asks for it (IWANT).
            .mesh_n(0)
            .mesh_n_low(0)
            .mesh_n_high(0)
            .mesh_outbound_min(0)
            // Under load a message may wait in a connection's queue; it is sent late rather
            // than dropped (a dropped one would come back only with the next catch-up).
            .publish_queue_duration(PUBLISH_QUEUE_WAIT)
            .forward_queue_duration(FORWARD_QUEUE_WAIT)
            .heartbeat_interval(GOSSIP_HEARTBEAT)
            // From the first second: a node that has just started relays to a member the
            // author cannot reach as soon as any other (gossipsub waits 5 s by default).
            .heartbeat_initial_delay(Duration::ZERO)
            .max_transmit_size(GOSSIP_MAX_TRANSMIT_BYTES)
            // Control messages (IHAVE, IWANT) small enough for any peer to take, and those of
            // peers that list more taken up to a whole frame rather than dropping the stream.
            .max_control_messages_sent(GOSSIP_MAX_IHAVE_IDS)
            .max_control_message_size(GOSSIP_MAX_TRANSMIT_BYTES)
            .build()?;
        let mut gossipsub = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config)?;
        // Only rejected messages cost score (see `topic_score`). Not sharing an address, and not
        // gossipsub's behaviour penalty: a member that leaves a room and joins again within the
        // back-off asks to rejoin the mesh early, which counts as misbehaviour, and a few of
        // those graylist it, every message of it ignored; nor a slow peer's queue on a busy host.
        let score = gossipsub::PeerScoreParams {
            ip_colocation_factor_weight: 0.0,
            behaviour_penalty_weight: 0.0,
            slow_peer_weight: 0.0,
            ..Default::default()
        };
        gossipsub.with_peer_score(score, gossipsub::PeerScoreThresholds::default())?;
        let limits = connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
                .with_max_established_per_peer(Some(MAX_ESTABLISHED_PER_PEER)),
        );
        let mdns = if mdns { Some(mdns_behaviour(key.public().to_peer_id())?) } else { None };
        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.to_string(), key.public())
                .with_agent_version(format!("meshchat/{}", env!("CARGO_PKG_VERSION"))),
        );
        let ping = ping::Behaviour::new(ping::Config::new().with_interval(PING_INTERVAL).with_timeout(PING_TIMEOUT));
        let peers = request_response::Behaviour::with_codec(
            cbor::codec::Codec::default()
                .set_request_size_maximum(peers::MAX_REQUEST_BYTES)
                .set_response_size_maximum(peers::MAX_RESPONSE_BYTES),
            [(StreamProtocol::new(peers::PROTOCOL), ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(PEERS_REQUEST_TIMEOUT)
                .with_max_concurrent_streams(PEERS_MAX_STREAMS),
        );
        let auth_support = if hosts_bootstrap { ProtocolSupport::Full } else { ProtocolSupport::Outbound };
        let auth = request_response::Behaviour::with_codec(
            cbor::codec::Codec::default()
                .set_request_size_maximum(auth::MAX_REQUEST_BYTES)
                .set_response_size_maximum(auth::MAX_RESPONSE_BYTES),
            [(StreamProtocol::new(auth::PROTOCOL), auth_support)],
            request_response::Config::default()
                .with_request_timeout(AUTH_REQUEST_TIMEOUT)
                .with_max_concurrent_streams(AUTH_MAX_STREAMS),
        );
        let sync = request_response::Behaviour::with_codec(
            cbor::codec::Codec::default()
                .set_request_size_maximum(room_sync::MAX_REQUEST_BYTES)
                .set_response_size_maximum(room_sync::MAX_RESPONSE_BYTES),
            [(StreamProtocol::new(room_sync::SYNC_PROTOCOL), ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(SYNC_REQUEST_TIMEOUT)
                .with_max_concurrent_streams(SYNC_MAX_STREAMS),
        );
        let dm = request_response::Behaviour::with_codec(
            cbor::codec::Codec::default()
                .set_request_size_maximum(dm::MAX_REQUEST_BYTES)
                .set_response_size_maximum(dm::MAX_RESPONSE_BYTES),
            [(StreamProtocol::new(dm::PROTOCOL), ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(DM_REQUEST_TIMEOUT)
                .with_max_concurrent_streams(DM_MAX_STREAMS),
        );
        let keys = request_response::Behaviour::with_codec(
            cbor::codec::Codec::default()
                .set_request_size_maximum(keys::MAX_REQUEST_BYTES)
                .set_response_size_maximum(keys::MAX_RESPONSE_BYTES),
            [(StreamProtocol::new(keys::PROTOCOL), ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(KEYS_REQUEST_TIMEOUT)
                .with_max_concurrent_streams(KEYS_MAX_STREAMS),
        );
        let mailbox_support = if hosts_mailbox { ProtocolSupport::Full } else { ProtocolSupport::Outbound };
        let mailbox = request_response::Behaviour::with_codec(
            cbor::codec::Codec::default()
                .set_request_size_maximum(mailbox::MAX_REQUEST_BYTES)
                .set_response_size_maximum(mailbox::MAX_RESPONSE_BYTES),
            [(StreamProtocol::new(mailbox::PROTOCOL), mailbox_support)],
            request_response::Config::default()
                .with_request_timeout(MAILBOX_REQUEST_TIMEOUT)
                .with_max_concurrent_streams(MAILBOX_MAX_STREAMS),
        );
        let local = key.public().to_peer_id();
        let relay = serves_reach.as_ref().map(|gate| relay::Behaviour::new(local, reach::relay_config(gate)));
        // The rendezvous point and the AutoNAT server, like the relay, serve only certified peers.
        let autonat = (reaches_out || serves_reach.is_some()).then(|| {
            Gated::new(
                autonat::Behaviour::new(local, reach::autonat_config(serves_reach.is_some())),
                serves_reach.clone(),
            )
        });
        let rendezvous_point = serves_reach
            .as_ref()
            .map(|gate| Gated::new(rendezvous::server::Behaviour::new(reach::rendezvous_config()), Some(gate.clone())));
        Ok(Behaviour {
            limits,
            pending_per_host: PendingPerHost::default(),
            inbound: InboundSlots::default(),
            dial_bound: DialBound,
            gossipsub,
            mdns: mdns.into(),
            identify,
            ping,
            peers,
            auth,
            sync,
            dm,
            keys,
            mailbox,
            // Without the behaviour, a dial through a relay fails at once.
            relay_client: reaches_out.then_some(relay_client).into(),
            relay: relay.into(),
            dcutr: reaches_out.then(|| dcutr::Behaviour::new(local)).into(),
            autonat: autonat.into(),
            rendezvous: reaches_out.then(|| rendezvous::client::Behaviour::new(key.clone())).into(),
            rendezvous_point: rendezvous_point.into(),
        })
    }
}
