//! Test support: a driver for real `meshchat --json` processes and a LAN lab of Linux network
//! namespaces. Each integration test file includes this module with `mod support;`.

#![allow(dead_code, unused_imports)]

pub mod chat;
pub mod crafted;
pub mod driver;
pub mod gossip_peer;
pub mod lab;
pub mod lobby;
pub mod room_keys;
pub mod sites;
pub mod sync_peer;

pub use driver::{NodeBuilder, NodeProc};
pub use lab::Lab;
