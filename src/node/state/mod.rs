//! The state the node keeps, one module per part, at the bottom of the node: accounts, direct
//! messages, presence and rooms, each with its own bookkeeping, the constants of its timers and
//! its pure helpers.
//!
//! Nothing here imports the event loop (`EventLoop`, `node/event_loop.rs`, `node/parts.rs`) nor
//! an adapter file (the `impl EventLoop` files); nothing here touches the swarm or emits an
//! event. The adapters and the event loop import from here, never the other way.

pub(super) mod accounts;
pub(super) mod direct;
pub(super) mod key_wait;
pub(super) mod keys;
pub(super) mod mailbox;
pub(super) mod presence;
pub(super) mod reach;
pub(super) mod rooms;
pub(super) mod search;
pub(super) mod store;
