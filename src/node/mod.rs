//! The node actor: one task owns the libp2p Swarm and the node's state; everything else talks to
//! it through a cloneable [`Client`] and hears from it through a stream of [`UiEvent`]s.
//!
//! [`spawn`] starts the actor. The event loop never waits on a reply inside its loop: answers go
//! back on oneshot channels, events on the bounded event channel the caller provides, and
//! password hashing runs on the account worker's own thread.
//!
//! The node owns the events it reports and their error codes (`event`); the front-ends in `ui`
//! import them and render them. Nothing here imports `ui`.
//!
//! - `event`: the events and error codes users and scripts see ([`UiEvent`], [`ErrorCode`]);
//! - `event_loop`: the loop, connections, discovery and re-dialling;
//! - `liveness`: which connections are dead;
//! - `accounts`: the session engine's adapter (logging in through the bootstrap node), and hosting it;
//! - `presence`: announcing this user and keeping the roster of who is online;
//! - `attention`: the focus, the mutes, where plain text goes and what notifies;
//! - `rooms`: room topics, their event logs, messages, catch-up and history;
//! - `direct`: direct messages, their receipts and the outbox.

mod accounts;
mod attention;
mod bootstrap_peers;
mod client;
mod direct;
mod event;
mod event_loop;
mod liveness;
mod presence;
mod room_commands;
mod room_directory;
mod room_sync;
mod rooms;
mod store_reads;

use std::time::Duration;

use libp2p::Multiaddr;
use libp2p::identity::Keypair;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use client::{Client, DirectCommand, RoomCommand, RoomReply};
pub use event::{
    BootstrapState, ChatMessage, DirectMessage, ErrorCode, MemberView, NotificationKind, OnlineState, OnlineUser,
    PeerState, RoomSummary, Status, UiEvent,
};

use crate::bootstrap::AuthService;
use crate::bootstrap::service::ServiceError;
use crate::net::SwarmError;
use crate::store::NodeStore;
use crate::trust::Trust;

/// Capacity of the channel of commands from clients to the node.
pub const COMMAND_CAPACITY: usize = 64;
/// Capacity a caller should give the event channel it passes to [`spawn`].
pub const EVENT_CAPACITY: usize = 1024;
/// After every listener has reported an address, how long to wait for the rest of its addresses
/// (one per interface) before reporting `ready`.
pub const READY_SETTLE: Duration = Duration::from_millis(5);

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
}

/// A command the node could not carry out, with the code scripts see.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct CommandError {
    pub code: ErrorCode,
    pub message: String,
    /// With `bootstrap_unconfirmed`: the bootstrap key to confirm.
    pub key: Option<String>,
}

impl CommandError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CommandError { code, message: message.into(), key: None }
    }

    /// The same error, naming bootstrap key `key`.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The node is gone.
    pub fn stopped() -> Self {
        Self::new(ErrorCode::Internal, "the node has stopped")
    }

    /// As an `error` event.
    pub fn to_event(&self) -> UiEvent {
        UiEvent::Error { code: self.code, message: self.message.clone(), key: self.key.clone() }
    }
}

/// Starts a node: builds its swarm, starts listening, and runs its event loop on the current
/// tokio runtime. Events go to `events`; the node stops when every [`Client`] is dropped or
/// [`Client::shutdown`] is called.
pub fn spawn(config: NodeConfig, events: mpsc::Sender<UiEvent>) -> Result<(Client, JoinHandle<()>), NodeError> {
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CAPACITY);
    let event_loop = event_loop::EventLoop::new(config, commands_rx, events)?;
    let handle = tokio::spawn(event_loop.run());
    Ok((Client::new(commands_tx), handle))
}
