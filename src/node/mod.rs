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
//! The node's files stand on floors, and imports only point down:
//!
//! - `event_loop`: the loop, the dispatch of swarm events and requests, connections, discovery
//!   and re-dialling;
//! - the adapters, each an `impl EventLoop` block: `accounts` (the session engine's adapter:
//!   logging in through the bootstrap node, and hosting it), `bootstrap_peers` (bootstrap nodes
//!   in reach, `/trust`), `presence` (announcing this user and keeping the roster of who is
//!   online), `rooms` (room topics, their event logs, messages), `room_commands`,
//!   `room_directory`, `room_join` (`/join`), `room_sync` (catch-up), `direct` (direct messages, their
//!   receipts and the outbox), `reach` (relay, rendezvous, AutoNAT and hole punching beyond the
//!   LAN). An adapter imports the struct from `parts` and state from
//!   `state`, never another adapter nor `event_loop`; adapters call each other's methods through
//!   `self` only;
//! - `parts`: the `EventLoop` struct and how it is built, from a [`NodeConfig`];
//! - `state`: the state of accounts, direct messages, presence and rooms, with their own
//!   bookkeeping, timer constants and pure helpers; `attention`: the focus, the mutes, where
//!   plain text goes and what notifies; `liveness`: which connections are dead; `store_reads`:
//!   the thread beside the loop that reads catch-up answers;
//! - `client`: the [`Client`] and the requests it sends; `event`: the events and error codes
//!   users and scripts see ([`UiEvent`], [`ErrorCode`], [`CommandError`]).
//!
//! This file is the node's face: it re-exports what the rest of the crate uses and starts the
//! node ([`spawn`]); the adapters take [`CommandError`] and `event_loop` takes
//! [`READY_SETTLE`] from it, and nothing below the adapters imports it.

mod accounts;
mod attention;
mod bootstrap_peers;
mod client;
mod direct;
mod event;
mod event_loop;
mod liveness;
mod mailbox;
mod parts;
mod presence;
mod reach;
mod room_commands;
mod room_directory;
mod room_join;
mod room_keys;
mod room_sync;
mod rooms;
mod search;
mod state;
mod store_reads;
mod store_worker;

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use client::{Client, DirectCommand, RoomCommand, RoomReply};
pub use event::{
    BootstrapState, ChatMessage, CommandError, DirectMessage, ErrorCode, MemberView, NotificationKind, OnlineState,
    OnlineUser, PeerConnection, PeerPath, PeerState, Reachability, RoomEncryption, RoomSummary, SearchResult, Status,
    UiEvent,
};
pub use parts::{NodeConfig, NodeError};

/// Capacity of the channel of commands from clients to the node.
pub const COMMAND_CAPACITY: usize = 64;
/// Capacity a caller should give the event channel it passes to [`spawn`].
pub const EVENT_CAPACITY: usize = 1024;
/// After every listener has reported an address, how long to wait for the rest of its addresses
/// (one per interface) before reporting `ready`.
pub const READY_SETTLE: Duration = Duration::from_millis(5);

/// Starts a node: builds its swarm, starts listening, and runs its event loop on the current
/// tokio runtime. Events go to `events`; the node stops when every [`Client`] is dropped or
/// [`Client::shutdown`] is called.
pub fn spawn(config: NodeConfig, events: mpsc::Sender<UiEvent>) -> Result<(Client, JoinHandle<()>), NodeError> {
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CAPACITY);
    let event_loop = parts::EventLoop::new(config, commands_rx, events)?;
    let handle = tokio::spawn(event_loop.run());
    Ok((Client::new(commands_tx), handle))
}
