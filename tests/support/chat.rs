//! Steps that many chat tests share: reading fields, expecting errors, registering users.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::{Lab, NodeBuilder, NodeProc};

/// A string field of an event ("" when missing).
pub fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or_default()
}

/// Waits for an `error` event with `code` and returns its message.
pub fn expect_error(node: &mut NodeProc, code: &str) -> String {
    let error = node.wait_for(&format!("error {code}"), |v| v["type"] == "error" && v["code"] == code);
    str_of(&error, "message").to_string()
}

/// Waits until `node` has found a trusted bootstrap node. A bootstrap met with a key not
/// confirmed yet is trusted with `/trust KEY`, as a user who compared the key would.
pub fn expect_bootstrap(node: &mut NodeProc) {
    let met = node.wait_for("bootstrap found or unconfirmed", |v| {
        v["type"] == "bootstrap" && (v["state"] == "found" || v["state"] == "unconfirmed")
    });
    if met["state"] == "unconfirmed" {
        trust(node, str_of(&met, "key"));
        node.wait_for("bootstrap found", |v| v["type"] == "bootstrap" && v["state"] == "found");
    }
}

/// Sends `/trust KEY` (a whole key or a prefix) and waits for the `trusted` answer.
pub fn trust(node: &mut NodeProc, key: &str) -> serde_json::Value {
    node.send(&format!("/trust {key}"));
    node.wait_for("bootstrap trusted", |v| v["type"] == "bootstrap" && v["state"] == "trusted")
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

/// Passwords strong enough for registration, one for each test user.
pub const PASSWORDS: &[&str] = &[
    "correct horse battery staple",
    "Tr0ub4dor&3-mesh-lantern",
    "purple elephant mirror kettle",
    "quiet harbour lights at dawn",
];

/// Who `node`'s `/who` lists online: (username, nickname) each.
pub fn who(node: &mut NodeProc) -> Vec<(String, String)> {
    node.send("/who");
    let online = node.wait_type("online");
    online["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (str_of(u, "user").to_string(), str_of(u, "nick").to_string()))
        .collect()
}

/// Waits until `node` sees `user` come online.
pub fn wait_online(node: &mut NodeProc, user: &str) {
    node.wait_for(&format!("{user} online"), |v| {
        v["type"] == "presence" && v["user"] == user && v["state"] == "online"
    });
}

/// A bootstrap node on lab host 0, alice on host 1 and bob on host 2, both logged in and
/// seeing each other online.
pub struct Pair {
    pub boot: NodeProc,
    pub dirs: Vec<tempfile::TempDir>,
    pub alice: NodeProc,
    pub bob: NodeProc,
}

/// Starts a [`Pair`] in `lab`.
pub fn alice_and_bob(lab: &Lab) -> Pair {
    let mut boot = lab.node(0, "bootstrap").args(&["bootstrap"]).spawn();
    boot.ready();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("temporary dir")).collect();
    let mut alice = lab_user(lab, 1, "alice", PASSWORDS[0], dirs[0].path());
    let mut bob = lab_user(lab, 2, "bob", PASSWORDS[1], dirs[1].path());
    wait_online(&mut alice, "bob");
    wait_online(&mut bob, "alice");
    Pair { boot, dirs, alice, bob }
}

/// A bootstrap node and two nodes on loopback (no mDNS) that dial it and trust it; nobody is
/// logged in yet.
pub struct LoopbackTrio {
    pub boot: NodeProc,
    pub boot_addr: String,
    pub alice: NodeProc,
    pub alice_addr: libp2p::Multiaddr,
    pub bob: NodeProc,
    pub bob_addr: libp2p::Multiaddr,
}

/// Starts a [`LoopbackTrio`]: the bootstrap with `boot_args` besides `bootstrap`, and the two
/// nodes in `dirs` (fresh temporary directories where `None`).
pub fn loopback_trio(boot_args: &[&str], dirs: [Option<&Path>; 2]) -> LoopbackTrio {
    let mut boot = NodeBuilder::loopback("bootstrap").args(&["bootstrap"]).args(boot_args).spawn();
    let boot_addr = boot.ready()["listen"][0].as_str().expect("a listen address").to_string();
    let [(mut alice, alice_addr), (mut bob, bob_addr)] = [("alice", dirs[0]), ("bob", dirs[1])].map(|(name, dir)| {
        let mut builder = NodeBuilder::loopback(name).args(&["--peer", &boot_addr]);
        if let Some(dir) = dir {
            builder = builder.data_dir(dir);
        }
        let mut node = builder.spawn();
        let addr = node.ready()["listen"][0].as_str().expect("a listen address").parse().expect("a multiaddr");
        (node, addr)
    });
    expect_bootstrap(&mut alice);
    expect_bootstrap(&mut bob);
    LoopbackTrio { boot, boot_addr, alice, alice_addr, bob, bob_addr }
}

/// Joins `room` on `node` (named after its user), trying again while no member of it is known or
/// reachable yet (the room directory comes with presence); panics with every answer when it
/// never works.
pub fn join_room(node: &mut NodeProc, room: &str) {
    let name = node.name.clone();
    let mut answers = Vec::new();
    for _ in 0..50 {
        node.send(&format!("/join {room}"));
        // Its own join: others' joins of the room may be shown meanwhile.
        let v = node.wait_for("join answer", |v| {
            (v["type"] == "joined" && v["room"] == room && v["user"] == name.as_str()) || v["type"] == "error"
        });
        if v["type"] == "joined" {
            return;
        }
        answers.push(v);
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{name} could not join #{room}: {answers:?}");
}

/// The id of the room labelled `label` on `node`, from `/rooms`.
pub fn room_id(node: &mut NodeProc, label: &str) -> meshchat::room::EventId {
    node.send("/rooms");
    let rooms = node.wait_type("rooms");
    let hex = rooms["rooms"]
        .as_array()
        .and_then(|rooms| rooms.iter().find(|r| r["room"] == label))
        .and_then(|r| r["id"].as_str())
        .expect("the room in /rooms")
        .to_string();
    meshchat::room::EventId::from_bytes(meshchat::hex::decode::<32>(&hex).expect("a room id"))
}
