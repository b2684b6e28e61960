//! A crafted peer built on the library, as an attacker with a key (and perhaps a certificate)
//! would run one: meshchat's gossipsub, publishing whatever bytes a test gives it and keeping
//! everything it hears on the topics it is on (up to [`MAX_HEARD`] messages), and room
//! catch-up (`/meshchat/sync/…`), room keys (`/meshchat/keys/…`) and mailboxes
//! (`/meshchat/mailbox/…`) as an asker, sending whatever request a test gives it (mailbox
//! requests many at once too); and catch-up as a server too, answering each request as a
//! test's function says (counting them).
//!
//! Its swarm runs in a task of its own runtime, so it answers pings and drains its connections
//! while the test waits on nodes (a node closes a connection whose pings go unanswered for 5 s).
//! The test drives it through blocking calls, each with a time limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, TopicHash};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, cbor};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, identity::Keypair, noise, ping, tcp, yamux};
use meshchat::protocol::keys::{self, KeysRequest, KeysResponse};
use meshchat::protocol::mailbox::{self, MailboxRequest, MailboxResponse};
use meshchat::protocol::sync::{self, SyncRequest, SyncResponse};
use meshchat::room::EventId;
use meshchat::room::event;
use tokio::sync::{mpsc, oneshot};

use super::gossip_peer::crafted_gossipsub;

/// How long one call waits for the swarm.
const CALL_WAIT: Duration = Duration::from_secs(15);
/// The most messages heard that are kept for the test.
pub const MAX_HEARD: usize = 10_000;

#[derive(NetworkBehaviour)]
pub struct SyncPeerBehaviour {
    pub gossipsub: gossipsub::Behaviour,
    pub sync: cbor::Behaviour<SyncRequest, SyncResponse>,
    pub keys: cbor::Behaviour<KeysRequest, KeysResponse>,
    pub mailbox: cbor::Behaviour<MailboxRequest, MailboxResponse>,
    pub ping: ping::Behaviour,
}

/// What the test asks of the swarm's task.
enum Command {
    Dial { addr: Multiaddr, reply: oneshot::Sender<PeerId> },
    Subscribe { topic: IdentTopic },
    WaitSubscribed { topic: TopicHash, peers: Vec<PeerId>, reply: oneshot::Sender<()> },
    Publish { topic: IdentTopic, data: Vec<u8>, reply: oneshot::Sender<Result<(), String>> },
    Ask { to: PeerId, request: SyncRequest, reply: oneshot::Sender<Result<SyncResponse, String>> },
    Keys { to: PeerId, request: KeysRequest, reply: oneshot::Sender<Result<KeysResponse, String>> },
    Mailbox { to: PeerId, request: MailboxRequest, reply: oneshot::Sender<Result<MailboxResponse, String>> },
    Heard { reply: oneshot::Sender<Vec<Vec<u8>>> },
    Serve { answer: Answer },
}

/// How the crafted peer answers a catch-up request asked of it.
pub type Answer = Box<dyn FnMut(SyncRequest) -> SyncResponse + Send>;

/// A crafted peer: its runtime, and the way to its swarm's task.
pub struct SyncPeer {
    runtime: tokio::runtime::Runtime,
    commands: mpsc::UnboundedSender<Command>,
    pub peer_id: PeerId,
    /// Catch-up requests asked of it so far.
    asked_of_it: Arc<AtomicUsize>,
}

impl SyncPeer {
    /// A peer with key `key`, its swarm running.
    pub fn new(key: Keypair) -> SyncPeer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the crafted peer");
        let peer_id = key.public().to_peer_id();
        let swarm = {
            let _context = runtime.enter();
            SwarmBuilder::with_existing_identity(key)
                .with_tokio()
                .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
                .expect("tcp")
                .with_behaviour(|_| SyncPeerBehaviour {
                    gossipsub: crafted_gossipsub(false),
                    sync: request_response::Behaviour::with_codec(
                        cbor::codec::Codec::default()
                            .set_request_size_maximum(sync::MAX_REQUEST_BYTES)
                            .set_response_size_maximum(sync::MAX_RESPONSE_BYTES),
                        [(StreamProtocol::new(sync::SYNC_PROTOCOL), ProtocolSupport::Full)],
                        request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
                    ),
                    keys: request_response::Behaviour::with_codec(
                        cbor::codec::Codec::default()
                            .set_request_size_maximum(keys::MAX_REQUEST_BYTES)
                            .set_response_size_maximum(keys::MAX_RESPONSE_BYTES),
                        [(StreamProtocol::new(keys::PROTOCOL), ProtocolSupport::Outbound)],
                        request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
                    ),
                    mailbox: request_response::Behaviour::with_codec(
                        cbor::codec::Codec::default()
                            .set_request_size_maximum(mailbox::MAX_REQUEST_BYTES)
                            .set_response_size_maximum(mailbox::MAX_RESPONSE_BYTES),
                        [(StreamProtocol::new(mailbox::PROTOCOL), ProtocolSupport::Outbound)],
                        request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
                    ),
                    ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(1))),
                })
                .expect("behaviour")
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
                .build()
        };
        let (commands, receiver) = mpsc::unbounded_channel();
        let asked_of_it = Arc::new(AtomicUsize::new(0));
        runtime.spawn(drive(swarm, receiver, asked_of_it.clone()));
        SyncPeer { runtime, commands, peer_id, asked_of_it }
    }

    /// From now on answers each catch-up request asked of it with `answer` (before, or
    /// without, it answers none: the asker's request fails).
    pub fn serve(&self, answer: impl FnMut(SyncRequest) -> SyncResponse + Send + 'static) {
        self.commands.send(Command::Serve { answer: Box::new(answer) }).expect("the crafted peer's task runs");
    }

    /// How many catch-up requests were asked of it so far.
    pub fn asked_of_it(&self) -> usize {
        self.asked_of_it.load(Ordering::SeqCst)
    }

    /// Sends `command` made with a reply channel and waits for the answer.
    fn call<T>(&self, what: &str, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> T {
        let (reply, answer) = oneshot::channel();
        self.commands.send(command(reply)).expect("the crafted peer's task runs");
        self.runtime
            .block_on(async { tokio::time::timeout(CALL_WAIT, answer).await })
            .unwrap_or_else(|_| panic!("crafted peer: no {what} within {CALL_WAIT:?}"))
            .unwrap_or_else(|_| panic!("crafted peer: {what} failed"))
    }

    /// Dials `addr` and waits until connected; the peer there.
    pub fn dial(&self, addr: &Multiaddr) -> PeerId {
        self.call("connection", |reply| Command::Dial { addr: addr.clone(), reply })
    }

    /// Dials the nodes at `addrs`, subscribes to `room`'s topic and waits until each of them is
    /// on it too; the peers there and the topic.
    pub fn on_room<const N: usize>(&self, room: &EventId, addrs: [&Multiaddr; N]) -> ([PeerId; N], IdentTopic) {
        let peers = addrs.map(|addr| self.dial(addr));
        let topic = IdentTopic::new(event::topic_name(room));
        self.subscribe(&topic);
        self.wait_subscribed(&topic, &peers);
        (peers, topic)
    }

    pub fn subscribe(&self, topic: &IdentTopic) {
        self.commands.send(Command::Subscribe { topic: topic.clone() }).expect("the crafted peer's task runs");
    }

    /// Waits until each of `peers` has said it is on `topic`.
    pub fn wait_subscribed(&self, topic: &IdentTopic, peers: &[PeerId]) {
        self.call("subscription of every peer", |reply| Command::WaitSubscribed {
            topic: topic.hash(),
            peers: peers.to_vec(),
            reply,
        });
    }

    /// Publishes `data` on `topic` (to every peer on it).
    pub fn publish(&self, topic: &IdentTopic, data: Vec<u8>) {
        let sent = self.call("publication", |reply| Command::Publish { topic: topic.clone(), data, reply });
        sent.expect("a peer on the topic to publish to");
    }

    /// Sends `request` over the room keys' protocol to `to` and waits for the answer.
    pub fn keys(&self, to: PeerId, request: KeysRequest) -> KeysResponse {
        let answer = self.call("room keys' answer", |reply| Command::Keys { to, request, reply });
        answer.unwrap_or_else(|e| panic!("crafted peer: the room keys' request failed: {e}"))
    }

    /// Sends `request` over the mailbox protocol to `to` and waits for the answer.
    pub fn mailbox(&self, to: PeerId, request: MailboxRequest) -> MailboxResponse {
        let answer = self.call("mailbox's answer", |reply| Command::Mailbox { to, request, reply });
        answer.unwrap_or_else(|e| panic!("crafted peer: the mailbox request failed: {e}"))
    }

    /// Sends all of `requests` over the mailbox protocol to `to` at once and waits for each
    /// answer, or the reason it failed.
    pub fn mailbox_all(&self, to: PeerId, requests: Vec<MailboxRequest>) -> Vec<Result<MailboxResponse, String>> {
        let answers: Vec<_> = requests
            .into_iter()
            .map(|request| {
                let (reply, answer) = oneshot::channel();
                self.commands.send(Command::Mailbox { to, request, reply }).expect("the crafted peer's task runs");
                answer
            })
            .collect();
        self.runtime.block_on(async {
            let mut all = Vec::new();
            for answer in answers {
                all.push(match tokio::time::timeout(CALL_WAIT, answer).await {
                    Err(_) => Err(format!("no answer within {CALL_WAIT:?}")),
                    Ok(Err(_)) => Err("the crafted peer's task dropped the request".to_string()),
                    Ok(Ok(answer)) => answer,
                });
            }
            all
        })
    }

    /// The messages heard on the topics it is on since it was last asked, taken out.
    pub fn heard(&self) -> Vec<Vec<u8>> {
        self.call("messages heard", |reply| Command::Heard { reply })
    }

    /// Sends `request` over the catch-up protocol to `to` and waits for the answer.
    pub fn ask(&self, to: PeerId, request: SyncRequest) -> SyncResponse {
        let answer = self.call("catch-up answer", |reply| Command::Ask { to, request, reply });
        answer.unwrap_or_else(|e| panic!("crafted peer: the catch-up request failed: {e}"))
    }
}

/// The swarm's task: carries out commands and answers them when the swarm has done its part.
async fn drive(
    mut swarm: Swarm<SyncPeerBehaviour>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    asked_of_it: Arc<AtomicUsize>,
) {
    let mut answer: Option<Answer> = None;
    let mut dials: HashMap<ConnectionId, oneshot::Sender<PeerId>> = HashMap::new();
    let mut asks: HashMap<OutboundRequestId, oneshot::Sender<Result<SyncResponse, String>>> = HashMap::new();
    let mut key_asks: HashMap<OutboundRequestId, oneshot::Sender<Result<KeysResponse, String>>> = HashMap::new();
    let mut mailbox_asks: HashMap<OutboundRequestId, oneshot::Sender<Result<MailboxResponse, String>>> = HashMap::new();
    let mut waits: Vec<(TopicHash, Vec<PeerId>, oneshot::Sender<()>)> = Vec::new();
    let mut heard: Vec<Vec<u8>> = Vec::new();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => return,
                Some(Command::Dial { addr, reply }) => {
                    let opts = DialOpts::unknown_peer_id().address(addr).build();
                    let id = opts.connection_id();
                    if swarm.dial(opts).is_ok() {
                        dials.insert(id, reply);
                    }
                }
                Some(Command::Subscribe { topic }) => {
                    swarm.behaviour_mut().gossipsub.subscribe(&topic).expect("subscribe");
                }
                Some(Command::WaitSubscribed { topic, peers, reply }) => waits.push((topic, peers, reply)),
                Some(Command::Publish { topic, data, reply }) => {
                    let sent = swarm.behaviour_mut().gossipsub.publish(topic, data);
                    let _ = reply.send(sent.map(|_| ()).map_err(|e| e.to_string()));
                }
                Some(Command::Ask { to, request, reply }) => {
                    let id = swarm.behaviour_mut().sync.send_request(&to, request);
                    asks.insert(id, reply);
                }
                Some(Command::Keys { to, request, reply }) => {
                    let id = swarm.behaviour_mut().keys.send_request(&to, request);
                    key_asks.insert(id, reply);
                }
                Some(Command::Mailbox { to, request, reply }) => {
                    let id = swarm.behaviour_mut().mailbox.send_request(&to, request);
                    mailbox_asks.insert(id, reply);
                }
                Some(Command::Heard { reply }) => {
                    let _ = reply.send(std::mem::take(&mut heard));
                }
                Some(Command::Serve { answer: given }) => answer = Some(given),
            },
            event = swarm.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { peer_id, connection_id, .. } => {
                    if let Some(reply) = dials.remove(&connection_id) {
                        let _ = reply.send(peer_id);
                    }
                }
                SwarmEvent::OutgoingConnectionError { connection_id, .. } => {
                    dials.remove(&connection_id);
                }
                SwarmEvent::Behaviour(SyncPeerBehaviourEvent::Gossipsub(gossipsub::Event::Message {
                    message, ..
                })) if heard.len() < MAX_HEARD => heard.push(message.data),
                SwarmEvent::Behaviour(SyncPeerBehaviourEvent::Sync(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                })) => {
                    if let Some(reply) = asks.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
                SwarmEvent::Behaviour(SyncPeerBehaviourEvent::Sync(request_response::Event::Message {
                    message: request_response::Message::Request { request, channel, .. },
                    ..
                })) => {
                    asked_of_it.fetch_add(1, Ordering::SeqCst);
                    if let Some(answer) = answer.as_mut() {
                        let _ = swarm.behaviour_mut().sync.send_response(channel, answer(request));
                    }
                }
                SwarmEvent::Behaviour(SyncPeerBehaviourEvent::Sync(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                })) => {
                    if let Some(reply) = asks.remove(&request_id) {
                        let _ = reply.send(Err(error.to_string()));
                    }
                }
                SwarmEvent::Behaviour(SyncPeerBehaviourEvent::Mailbox(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                })) => {
                    if let Some(reply) = mailbox_asks.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
                SwarmEvent::Behaviour(SyncPeerBehaviourEvent::Mailbox(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                })) => {
                    if let Some(reply) = mailbox_asks.remove(&request_id) {
                        let _ = reply.send(Err(error.to_string()));
                    }
                }
                SwarmEvent::Behaviour(SyncPeerBehaviourEvent::Keys(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                })) => {
                    if let Some(reply) = key_asks.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
                SwarmEvent::Behaviour(SyncPeerBehaviourEvent::Keys(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                })) => {
                    if let Some(reply) = key_asks.remove(&request_id) {
                        let _ = reply.send(Err(error.to_string()));
                    }
                }
                _ => {}
            },
        }
        // Whoever waits for subscriptions that are all in now is told.
        let gossipsub = &swarm.behaviour().gossipsub;
        let on_topic = |peer: &PeerId, topic: &TopicHash| {
            gossipsub.all_peers().any(|(p, topics)| p == peer && topics.contains(&topic))
        };
        let (done, waiting): (Vec<_>, Vec<_>) =
            waits.drain(..).partition(|(topic, peers, _)| peers.iter().all(|p| on_topic(p, topic)));
        waits = waiting;
        for (_, _, reply) in done {
            let _ = reply.send(());
        }
    }
}
