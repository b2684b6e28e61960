//! The login session, pure: the engine that runs a node's side of it ([`engine`]: register,
//! log in, rename and log out through the bootstrap node, requests waiting for one to come into
//! reach, the saved session resumed at start, the certificate renewed before it runs out) and
//! the session as a node keeps it ([`Session`]). No I/O, no clock, no network: never tokio, the
//! libp2p swarm or rusqlite. The wire format is [`crate::protocol::auth`]; the SQL is
//! [`crate::store`]; the node's adapter that carries out what the engine decides is
//! `node/accounts.rs`.

pub mod engine;

pub use engine::{Input, NO_BOOTSTRAP_WAIT, Output, RENEW_WHEN_LEFT_DIVISOR, RESUME_WAIT, SessionEngine, renewal_due};

use std::time::Instant;

use libp2p::PeerId;

use crate::account::AccountId;
use crate::cert::{AuthorityKey, Certificate};
use crate::protocol::auth::Refusal;

/// A login: the certificate the bootstrap node issued, and the nickname the user goes by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub certificate: Certificate,
    pub nick: String,
}

/// The time, as the node reads it: monotonic for deadlines, seconds since the Unix epoch for
/// certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub at: Instant,
    pub unix: u64,
}

/// A command's answer, as the node numbers it (it holds the reply channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// A request on its way, as the engine numbers it (the node maps it to its request id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flight(pub u64);

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The account worker this node hosts.
    Hosted,
    /// A trusted bootstrap node in reach.
    Peer(PeerId),
}

/// What the bootstrap node said about a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The account holding the name, and its username now.
    Exists(AccountId, String),
    Unknown,
    /// No bootstrap node answered.
    NoAnswer,
}

/// The kind of a failed command, as the node's error codes say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Usage,
    NotLoggedIn,
    BootstrapUnconfirmed,
    NoBootstrap,
    Internal,
    /// The bootstrap node refused.
    Refused(Refusal),
}

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: Code,
    pub message: String,
    /// With [`Code::BootstrapUnconfirmed`]: the key to confirm.
    pub key: Option<AuthorityKey>,
}

impl Failure {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Failure { code, message: message.into(), key: None }
    }
}

/// What to show the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Show {
    Registered { user: String },
    LoggedIn { user: String, nick: String, resumed: bool },
    LoggedOut { user: String },
    Renamed { old: String, new: String },
    Nick { user: String, nick: String },
    BootstrapUnconfirmed { peer: PeerId, key: AuthorityKey },
    BootstrapLost(PeerId),
    Info(String),
}

#[cfg(test)]
mod tests;
