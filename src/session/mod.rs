//! The login session, pure: the engine that runs a node's side of it ([`engine`]: register,
//! log in, rename and log out through the bootstrap node, requests waiting for one to come into
//! reach, the saved session resumed at start, the certificate renewed before it runs out) and
//! the session as a node keeps it ([`Session`]). No I/O, no clock, no network: never tokio, the
//! libp2p swarm or rusqlite. The wire format is [`crate::protocol::auth`]; the SQL is
//! [`crate::store`]; the node's adapter that carries out what the engine decides is
//! `node/accounts.rs`.

pub mod engine;

pub use engine::{
    Code, Failure, Flight, Input, Lookup, NO_BOOTSTRAP_WAIT, Now, Output, RENEW_WHEN_LEFT_DIVISOR, RESUME_WAIT,
    SessionEngine, Show, Ticket, Via, renewal_due,
};

use crate::cert::Certificate;

/// A login: the certificate the bootstrap node issued, and the nickname the user goes by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub certificate: Certificate,
    pub nick: String,
}

#[cfg(test)]
mod tests;
