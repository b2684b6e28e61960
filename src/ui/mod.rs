//! The user-facing side of a node: the command grammar and the front-ends that read commands
//! and render the events a user or a script sees.
//!
//! Nothing here touches the network: commands go to the node through [`crate::node::Client`],
//! results come back as [`UiEvent`](crate::node::UiEvent)s, which the node defines
//! (`node/event.rs`) and this folder only renders. `ui` depends on the node, never the reverse.

pub mod app;
pub mod clock;
pub mod command;
pub mod complete;
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
