//! The user-facing side of a node: the command grammar, the events a user or a script sees, and
//! the front-ends that read commands and render events.
//!
//! Nothing here touches the network: commands go to the node through [`crate::node::Client`],
//! results come back as [`UiEvent`]s.

pub mod app;
pub mod command;
pub mod complete;
pub mod event;
pub mod format;
pub mod input;
pub mod json;
pub mod links;
pub mod output;
pub mod prompt;
pub mod render;
pub mod repl;
pub mod sanitize;
pub mod style;
pub mod suggest;

pub use event::{
    BootstrapState, ChatMessage, DirectMessage, ErrorCode, MemberView, NotificationKind, OnlineState, OnlineUser,
    PeerState, RoomSummary, Status, UiEvent,
};
