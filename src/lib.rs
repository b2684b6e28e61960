//! meshchat: a peer-to-peer multi-user chat for a local network.
//!
//! Every machine runs a node. Nodes find each other with mDNS (or `--peer` addresses), rooms are
//! gossipsub topics and one-to-one messages travel over request-response streams straight to the
//! other peer. This crate is the whole node as a library; the `meshchat` binary is a thin front-end.
//!
//! The flow reads one way:
//!
//! ```text
//! keyboard/stdin ─► ui::command (parse) ─► ui::app ─► node::Client ─mpsc─► node event loop ─► Swarm
//! Swarm event ─► node event loop (validate, update state) ─► UiEvent ─► ui::render or ui::json
//! ```
//!
//! - [`net`] owns everything libp2p: the composed behaviour, swarm construction and the re-dial
//!   policy. Only [`node`] uses it.
//! - [`node`] owns the actor: one task holds the Swarm; the rest of the program holds a cheap,
//!   cloneable [`node::Client`] and receives a stream of [`node::UiEvent`]s. The node also owns
//!   those events and their error codes ([`node::ErrorCode`]), the vocabulary users and scripts see.
//! - [`ui`] owns the command grammar and the two renderers (coloured text and `--json` lines);
//!   it imports the node, never the reverse.
//! - [`config`] turns command-line options into a validated [`config::Config`]; [`identity`] owns
//!   the data directory's lock and the node's persistent key.

pub mod account;
pub mod bootstrap;
pub mod bytes;
pub mod cert;
pub mod clock;
pub mod config;
pub mod directory;
pub mod dm;
pub mod e2e;
pub mod hex;
pub mod identity;
pub mod mailbox;
pub mod net;
pub mod node;
pub mod pinned_key;
pub mod presence;
pub mod protocol;
pub mod rate_limit;
pub mod recent;
pub mod room;
pub mod search;
pub mod session;
pub mod store;
pub mod ui;

#[cfg(test)]
mod testing;
