//! Shared by the benchmarks: in-process nodes on loopback, driven through the library's
//! `Client`, with their event streams.

#![allow(dead_code)]

pub mod bare;
pub mod dm;
pub mod login;

use std::time::{Duration, Instant};

use meshchat::bootstrap::AuthService;
use meshchat::cert::Authority;
use meshchat::identity::DataDir;
use meshchat::node::{self, BootstrapState, Client, EVENT_CAPACITY, NodeConfig, UiEvent};
use meshchat::pinned_key::Trust;
use meshchat::store::NodeStore;
use tokio::sync::mpsc;

/// Every benchmark user's password (strong enough for the bootstrap's check).
pub const PASSWORD: &str = "correct horse battery staple";

/// A node running in this process.
pub struct Node {
    pub client: Client,
    pub events: mpsc::Receiver<UiEvent>,
    pub listen: Vec<String>,
    _dir: tempfile::TempDir,
    _data: DataDir,
}

impl Node {
    /// Starts a node on 127.0.0.1 without mDNS, dialling `peer`; `hosts` runs the bootstrap.
    pub async fn start(hosts: bool, peer: Option<&str>) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        let key = data.node_key().unwrap();
        let (bootstrap, trust) = if hosts {
            let secret: [u8; 32] = key.clone().try_into_ed25519().unwrap().secret().as_ref().try_into().unwrap();
            let authority = Authority::from_secret(&secret);
            let trust = Trust::load(dir.path(), Some(authority.public())).unwrap();
            (Some(AuthService::open(dir.path(), authority).unwrap()), trust)
        } else {
            (None, Trust::load(dir.path(), None).unwrap())
        };
        let config = NodeConfig {
            key,
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            peers: peer.into_iter().map(|p| p.parse().unwrap()).collect(),
            mdns: false,
            store: NodeStore::open(dir.path()).unwrap(),
            trust,
            bootstrap,
            mailbox: false,
            public_addr: None,
        };
        let (tx, mut events) = mpsc::channel(EVENT_CAPACITY);
        let (client, _task) = node::spawn(config, tx).unwrap();
        let listen = loop {
            if let Some(UiEvent::Ready { listen, .. }) = events.recv().await {
                break listen;
            }
        };
        Node { client, events, listen, _dir: dir, _data: data }
    }

    /// Takes the event stream, to read it elsewhere; the node keeps running while `self` lives.
    pub fn take_events(&mut self) -> mpsc::Receiver<UiEvent> {
        std::mem::replace(&mut self.events, mpsc::channel(1).1)
    }

    /// Waits until a trusted bootstrap node is in reach. A bootstrap whose key is not confirmed
    /// yet is trusted through `/trust`, as a user who compared the key would.
    pub async fn wait_bootstrap(&mut self) {
        let event = self.wait(|e| matches!(e, UiEvent::Bootstrap { .. })).await;
        if let UiEvent::Bootstrap { state: BootstrapState::Unconfirmed, key: Some(key), .. } = event {
            self.client.trust(&key).await.unwrap();
            self.wait(|e| matches!(e, UiEvent::Bootstrap { state: BootstrapState::Found, .. })).await;
        }
    }

    /// Waits (10 s at most) for an event matching `pred`.
    pub async fn wait(&mut self, pred: impl Fn(&UiEvent) -> bool) -> UiEvent {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(10), self.events.recv())
                .await
                .expect("event in time")
                .expect("node running");
            if pred(&event) {
                return event;
            }
        }
    }
}

/// The `p` quantile (0–1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Milliseconds, for tables.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Joins `room`, retrying while no member is known yet (10 s at most).
pub async fn join(client: &Client, room: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.join_room(room).await {
            Ok(()) => return,
            Err(e) => assert!(Instant::now() < deadline, "cannot join #{room}: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `size` nodes on loopback, the first hosting the bootstrap and the others dialling it, each
/// registered as `user{i}`; the first creates `#room` and the others join it.
pub async fn room_of(size: usize, room: &str) -> Vec<Node> {
    let mut nodes = vec![Node::start(true, None).await];
    let first = nodes[0].listen[0].clone();
    for _ in 1..size {
        nodes.push(Node::start(false, Some(&first)).await);
    }
    for node in &mut nodes[1..] {
        node.wait_bootstrap().await;
    }
    for (i, node) in nodes.iter().enumerate() {
        node.client.register(&format!("user{i}"), PASSWORD).await.unwrap();
    }
    nodes[0].client.create_room(room).await.unwrap();
    for node in &nodes[1..] {
        join(&node.client, room).await;
    }
    nodes
}
