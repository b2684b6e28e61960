//! Scenes of the room tests on loopback: alice and bob in #lobby (with carol, a third node, when
//! a test wants her), a node quit for its key and certificate (to run a crafted peer as its
//! user), and what `/members` and `/history` list.

use std::path::Path;
use std::time::Duration;

use libp2p::Multiaddr;
use libp2p::identity::Keypair;
use meshchat::cert::Certificate;
use meshchat::room::EventId;
use serde_json::Value;

use super::chat::{LoopbackTrio, PASSWORDS, expect_bootstrap, join_room, loopback_trio, register, room_id, str_of};
use super::{NodeBuilder, NodeProc};

/// Whether `v` is a `kind` event (`joined`, `kicked`, …) of `user` in #lobby.
pub fn is(v: &Value, kind: &str, user: &str) -> bool {
    v["type"] == kind && v["room"] == "lobby" && v["user"] == user
}

/// Whether `v` shows `text` from `from`.
pub fn is_message(v: &Value, from: &str, text: &str) -> bool {
    v["type"] == "message" && v["from"] == from && v["text"] == text
}

/// A node on loopback that dials the bootstrap at `boot_addr`, its data in `dir`, with the
/// bootstrap trusted; and its listen address.
pub fn third_node(name: &str, boot_addr: &str, dir: &Path) -> (NodeProc, Multiaddr) {
    let mut node = NodeBuilder::loopback(name).args(&["--peer", boot_addr]).data_dir(dir).spawn();
    let addr = node.ready()["listen"][0].as_str().expect("a listen address").parse().expect("a multiaddr");
    expect_bootstrap(&mut node);
    (node, addr)
}

/// alice and bob register; alice creates #lobby and bob joins it. The room's id.
pub fn lobby_of_alice_and_bob(alice: &mut NodeProc, bob: &mut NodeProc) -> EventId {
    register(alice, "alice", PASSWORDS[0]);
    register(bob, "bob", PASSWORDS[1]);
    alice.send("/create lobby");
    alice.wait_for("created", |v| v["type"] == "room_created");
    join_room(bob, "lobby");
    alice.wait_for("bob joined", |v| is(v, "joined", "bob"));
    room_id(alice, "lobby")
}

/// carol registers on `carol` and joins #lobby; every node of `members` sees her join.
pub fn carol_joins(carol: &mut NodeProc, members: &mut [&mut NodeProc]) {
    register(carol, "carol", PASSWORDS[2]);
    join_room(carol, "lobby");
    for node in members {
        node.wait_for("carol joined", |v| is(v, "joined", "carol"));
    }
}

/// Quits `node`, whose data is in `dir`: its key and certificate, for a crafted peer.
pub fn quit_for_identity(node: &mut NodeProc, dir: &Path) -> (Keypair, Certificate) {
    node.send("/quit");
    node.wait_exit(Duration::from_secs(10));
    let key = meshchat::identity::DataDir::open(dir).unwrap().node_key().unwrap();
    let session = meshchat::store::NodeStore::open(dir).unwrap().session().unwrap();
    (key, session.expect("a saved session").certificate)
}

/// alice and bob in #lobby on loopback, then bob's node gone: what a test with a crafted peer as
/// bob needs. The bootstrap runs while this is held.
pub struct BobGone {
    pub boot: NodeProc,
    pub alice: NodeProc,
    pub alice_addr: Multiaddr,
    pub lobby: EventId,
    /// bob's node key and certificate.
    pub key: Keypair,
    pub certificate: Certificate,
}

/// Starts a [`BobGone`]: alice and bob register, meet in #lobby, and bob's node quits.
pub fn lobby_with_bob_gone() -> BobGone {
    let bob_dir = tempfile::tempdir().expect("a temporary dir");
    let LoopbackTrio { boot, mut alice, alice_addr, mut bob, .. } = loopback_trio(&[], [None, Some(bob_dir.path())]);
    let lobby = lobby_of_alice_and_bob(&mut alice, &mut bob);
    let (key, certificate) = quit_for_identity(&mut bob, bob_dir.path());
    BobGone { boot, alice, alice_addr, lobby, key, certificate }
}

/// The usernames `/members lobby` lists on `node`.
pub fn members(node: &mut NodeProc) -> Vec<String> {
    node.send("/members lobby");
    let answer = node.wait_type("members");
    answer["members"].as_array().expect("members").iter().map(|m| str_of(m, "user").to_string()).collect()
}

/// The texts `/history` lists on `node` (for its focused room).
pub fn history(node: &mut NodeProc) -> Vec<String> {
    node.send("/history");
    let answer = node.wait_type("history");
    answer["messages"].as_array().expect("messages").iter().map(|m| str_of(m, "text").to_string()).collect()
}

/// carol, registered on a third node (its data in `dir`) but in no room; the node quit: her key
/// and certificate, for a crafted peer.
pub fn certified_stranger(boot_addr: &str, dir: &Path) -> (Keypair, Certificate) {
    let (mut carol, _) = third_node("carol", boot_addr, dir);
    register(&mut carol, "carol", PASSWORDS[2]);
    quit_for_identity(&mut carol, dir)
}
