//! Wire types that peers exchange, as plain serde types: no I/O and no libp2p behaviour here.
//! Each submodule owns one protocol and its limits; decoding never trusts a peer.

pub mod auth;
mod bounded;
pub mod dm;
pub mod keys;
pub mod mailbox;
pub mod peers;
pub mod presence;
pub mod sync;
