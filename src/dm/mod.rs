//! Direct messages, pure: the engine that runs a node's side of them ([`engine`]: the outbox with
//! one message in flight per receiver, receipts, the arrival of messages from other peers, what
//! to show) and the message as a node keeps it ([`StoredDm`]). No I/O, no clock, no network:
//! never tokio, the libp2p swarm or rusqlite. The wire format is [`crate::protocol::dm`]; the
//! SQL is [`crate::store`]; the node's adapter that carries out what the engine decides is
//! `node/direct.rs`.
//!
//! People are matched by account id, never by name: a message waiting for someone who renamed
//! reaches them under their new name, and never whoever takes the old one later.

pub mod engine;

pub use engine::{Channel, DmEngine, Flight, Input, Output, Received, Seen, Show};

use crate::account::AccountId;

/// A direct message as a node keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDm {
    pub id: String,
    /// The local user whose conversation this is.
    pub owner: AccountId,
    /// The other party.
    pub other: AccountId,
    /// The sender's and the receiver's usernames when it was written (labels).
    pub from: String,
    pub to: String,
    pub text: String,
    pub ts_ms: u64,
    /// The sender's number for it in this conversation.
    pub seq: u64,
    /// Sent by the owner (rather than received).
    pub outgoing: bool,
    /// Received, or confirmed by the receiver's receipt.
    pub delivered: bool,
}

impl StoredDm {
    /// The other party's username when it was written.
    pub fn other_name(&self) -> &str {
        if self.outgoing { &self.to } else { &self.from }
    }
}

#[cfg(test)]
mod outbox_property;
#[cfg(test)]
mod tests;
