//! Steps that many chat tests share: reading fields, expecting errors, registering users.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::{Lab, NodeProc};

/// A string field of an event ("" when missing).
pub fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or_default()
}

/// Waits for an `error` event with `code` and returns its message.
pub fn expect_error(node: &mut NodeProc, code: &str) -> String {
    let error = node.wait_for(&format!("error {code}"), |v| v["type"] == "error" && v["code"] == code);
    str_of(&error, "message").to_string()
}

/// Waits until `node` has found a bootstrap node.
pub fn expect_bootstrap(node: &mut NodeProc) {
    node.wait_for("bootstrap found", |v| v["type"] == "bootstrap" && v["state"] == "found");
}

/// Registers `name` with `password` on `node` and waits until it is logged in.
pub fn register(node: &mut NodeProc, name: &str, password: &str) {
    node.send(&format!("/register {name}"));
    node.send(password);
    node.wait_for("logged in", |v| v["type"] == "logged_in" && v["user"] == name);
}

/// Starts a node on lab host `host` with data dir `dir`, and registers `name` there.
pub fn lab_user(lab: &Lab, host: usize, name: &str, password: &str, dir: &Path) -> NodeProc {
    let mut node = lab.node(host, name).data_dir(dir).spawn();
    expect_bootstrap(&mut node);
    register(&mut node, name, password);
    node
}

/// Asserts that no event matching `pred` arrives at `node` within `window`.
pub fn no_event_within(node: &mut NodeProc, window: Duration, what: &str, pred: impl Fn(&Value) -> bool) {
    let events = node.events_within(window);
    assert!(!events.iter().any(pred), "{}: unexpected {what}: {events:?}", node.name);
}
