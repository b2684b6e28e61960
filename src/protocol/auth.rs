//! The account protocol (`/meshchat/auth/1`) between a node and the bootstrap node, over a
//! Noise-encrypted request-response stream. The asking peer is known from the connection, so
//! renewal, rename and logout carry no credentials.

use serde::{Deserialize, Serialize};

use crate::cert::Certificate;

/// The protocol name. The bootstrap node answers it; identify shows it only there, which is
/// how nodes recognise a bootstrap node.
pub const PROTOCOL: &str = "/meshchat/auth/1";
/// The largest request accepted, in bytes (passwords are capped well below).
pub const MAX_REQUEST_BYTES: u64 = 8 * 1024;
/// The largest answer accepted, in bytes.
pub const MAX_RESPONSE_BYTES: u64 = 8 * 1024;

/// What a node asks of the bootstrap node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthRequest {
    Register {
        username: String,
        password: String,
    },
    Login {
        username: String,
        password: String,
    },
    /// A fresh certificate for the session this peer has.
    Renew,
    Rename {
        new_username: String,
    },
    Logout,
    /// Whether an account called `username` (any case) exists.
    Lookup {
        username: String,
    },
}

impl AuthRequest {
    /// The request's name, for logs (never the password).
    pub fn kind(&self) -> &'static str {
        match self {
            AuthRequest::Register { .. } => "register",
            AuthRequest::Login { .. } => "login",
            AuthRequest::Renew => "renew",
            AuthRequest::Rename { .. } => "rename",
            AuthRequest::Logout => "logout",
            AuthRequest::Lookup { .. } => "lookup",
        }
    }
}

/// Why the bootstrap node said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    InvalidUsername,
    UsernameTaken,
    WeakPassword,
    WrongCredentials,
    RateLimited,
    NotLoggedIn,
    Internal,
}

/// The bootstrap node's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthResponse {
    /// A certificate for the peer that asked.
    Granted {
        certificate: Certificate,
    },
    LoggedOut,
    /// The answer to a lookup: the account's username as registered, or `None`.
    User {
        username: Option<String>,
    },
    Refused {
        refusal: Refusal,
        message: String,
    },
}
