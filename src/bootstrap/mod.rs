//! The bootstrap node's account service: the one place that knows registered accounts.
//!
//! - [`password`]: username rules, password strength, argon2id hashing.
//! - [`throttle`]: the pure policy that slows down password guessing and request floods.
//! - [`queue`]: the pure order in which the worker serves requests, and when it gives up.
//! - [`accounts`]: the SQLite account database (`accounts.db`).
//! - [`service`]: turns an auth request from a peer into an answer (certificate or refusal),
//!   on a worker thread of its own so hashing never blocks the network.

pub mod accounts;
pub mod password;
pub mod queue;
pub mod service;
pub mod throttle;

pub use service::{AuthService, AuthWorker};
