//! Identities that cannot be borrowed: a person is their account id, not their name.
//!
//! - A message waiting for alice reaches her after she renames to alicia, and never the new
//!   holder of the name `alice` (which stays reserved to alicia's account for a while).
//! - `/ban bob` removes `Bob`, whatever the case.
//! - A rename whose answer was lost heals at the next renewal.
//! - A replayed presence announcement makes nobody look online after they logged out (and one
//!   in other bytes is not even read).
//! - A letter written under a name someone else has taken since is not shown under that name.

mod support;

use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, identity::Keypair};
use serde::{Deserialize, Serialize};
use support::chat::{
    LoopbackTrio, PASSWORDS, expect_bootstrap, expect_error, join_room, lab_user, loopback_trio, no_event_within,
    register, str_of, wait_online,
};
use support::gossip_peer::{GossipPeerEvent, gossip_peer};
use support::{Lab, NodeBuilder, NodeProc};

/// Waits for a direct message `text` from `from`.
fn dm_from(node: &mut NodeProc, from: &str, text: &str) -> serde_json::Value {
    node.wait_for(&format!("dm from {from}"), |v| v["type"] == "dm" && v["from"] == from && v["text"] == text)
}

#[test]
fn a_waiting_message_reaches_the_renamed_account_and_never_the_new_holder_of_the_name() {
    let Some(lab) = Lab::start(4) else { return };
    // Names freed by a rename stay reserved for 30 s here (30 days by default; never less than
    // a certificate's lifetime, which is 30 s here too).
    const HOLD: Duration = Duration::from_secs(30);
    let mut boot = lab.node(0, "bootstrap").args(&["bootstrap", "--name-hold", "30", "--cert-lifetime", "30"]).spawn();
    boot.ready();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut bob = lab_user(&lab, 1, "bob", PASSWORDS[0], dirs[0].path());
    let mut alice = lab_user(&lab, 2, "alice", PASSWORDS[1], dirs[1].path());
    wait_online(&mut bob, "alice");

    alice.send("/quit");
    alice.wait_exit(Duration::from_secs(10));
    bob.wait_for("alice offline", |v| v["type"] == "presence" && v["user"] == "alice" && v["state"] == "offline");
    bob.send("/msg alice see you at the station");
    bob.wait_for("kept", |v| v["type"] == "dm" && v["to"] == "alice");
    assert_eq!(bob.status()["outbox"], 1);
    bob.send("/quit");
    bob.wait_exit(Duration::from_secs(10));

    // While bob is away, alice comes back and finds his message at the mailbox; she renames,
    // and the name is held for her.
    let mut alice = lab.node(2, "alice back").data_dir(dirs[1].path()).spawn();
    alice.wait_for("resumed", |v| v["type"] == "logged_in" && v["resumed"] == true);
    let got = dm_from(&mut alice, "bob", "see you at the station");
    expect_bootstrap(&mut alice);
    alice.send("/rename alicia");
    alice.wait_for("renamed", |v| v["type"] == "renamed" && v["old"] == "alice" && v["new"] == "alicia");
    let renamed = std::time::Instant::now();
    // A nickname that was only the old name follows it.
    alice.send("/who");
    let online = alice.wait_type("online");
    let users = online["users"].as_array().unwrap();
    assert!(users.iter().any(|u| u["user"] == "alicia" && u["nick"] == "alicia"), "{online}");
    alice.send("/quit");
    alice.wait_exit(Duration::from_secs(10));
    let mut carol = lab.node(3, "carol").data_dir(dirs[2].path()).spawn();
    expect_bootstrap(&mut carol);
    carol.send("/register alice");
    carol.send(PASSWORDS[2]);
    assert!(expect_error(&mut carol, "username_taken").contains("alice"));

    // Once the hold is over, someone else may take the name.
    std::thread::sleep(HOLD.saturating_sub(renamed.elapsed()) + Duration::from_secs(1));
    register(&mut carol, "alice", PASSWORDS[2]);

    // bob comes back and sees the new `alice` online: the message is not hers.
    let mut bob = lab.node(1, "bob back").data_dir(dirs[0].path()).spawn();
    bob.wait_for("resumed", |v| v["type"] == "logged_in" && v["resumed"] == true);
    wait_online(&mut bob, "alice");
    no_event_within(&mut carol, Duration::from_secs(3), "bob's message to the old alice", |v| v["type"] == "dm");
    assert_eq!(bob.status()["outbox"], 1, "still waiting for the account it was written to");

    // alicia comes back: bob's node hears her confirm the message, which was hers.
    let mut alicia = lab.node(2, "alicia").data_dir(dirs[1].path()).spawn();
    alicia.wait_for("resumed", |v| v["type"] == "logged_in" && v["user"] == "alicia");
    bob.wait_for("delivered", |v| v["type"] == "delivered" && v["id"] == got["id"]);
    assert_eq!(bob.status()["outbox"], 0);
    // bob's conversation with her goes on under her new name.
    bob.send("/msg alicia got it?");
    dm_from(&mut alicia, "bob", "got it?");
    no_event_within(&mut carol, Duration::from_millis(500), "a message for alicia", |v| v["type"] == "dm");
}

#[test]
fn a_ban_holds_whatever_the_case_of_the_name() {
    let LoopbackTrio { boot: _boot, mut alice, mut bob, .. } = loopback_trio(&[], [None, None]);
    bob.name = "Bob".into();
    register(&mut alice, "alice", PASSWORDS[0]);
    register(&mut bob, "Bob", PASSWORDS[1]);
    alice.send("/create lobby");
    alice.wait_for("created", |v| v["type"] == "room_created");
    join_room(&mut bob, "lobby");
    alice.wait_for("Bob joined", |v| v["type"] == "joined" && v["user"] == "Bob");

    alice.send("/ban bob");
    let banned = alice.wait_for("banned", |v| v["type"] == "banned");
    assert_eq!((str_of(&banned, "user"), str_of(&banned, "by")), ("Bob", "alice"));
    bob.wait_for("Bob banned", |v| v["type"] == "banned" && v["user"] == "Bob");
    alice.send("/members lobby");
    let members = alice.wait_type("members");
    assert_eq!(members["members"].as_array().unwrap().len(), 1, "{members}");
    assert_eq!(members["members"][0]["user"], "alice");

    // Bob can neither talk in the room nor come back, in any spelling.
    bob.send("/join lobby");
    expect_error(&mut bob, "banned");
    bob.send("/msg alice still here");
    dm_from(&mut alice, "Bob", "still here");
    no_event_within(&mut alice, Duration::from_millis(500), "a room message from Bob", |v| v["type"] == "message");
}

#[test]
fn a_rename_whose_answer_was_lost_heals_at_the_next_renewal() {
    let alice_dir = tempfile::tempdir().unwrap();
    let LoopbackTrio { boot: _boot, boot_addr, mut alice, mut bob, .. } =
        loopback_trio(&[], [Some(alice_dir.path()), None]);
    register(&mut alice, "alice", PASSWORDS[0]);
    register(&mut bob, "bob", PASSWORDS[1]);
    alice.send("/create lobby");
    alice.wait_for("created", |v| v["type"] == "room_created");
    join_room(&mut bob, "lobby");
    alice.send("/quit");
    alice.wait_exit(Duration::from_secs(10));

    // The rename goes through at the bootstrap, but its answer never reaches alice's node: a
    // copy of her data directory (her key, her session) asks for it while she is away.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(alice_dir.path(), copy.path());
    let mut twin = NodeBuilder::loopback("alice's twin").args(&["--peer", &boot_addr]).data_dir(copy.path()).spawn();
    twin.wait_for("resumed", |v| v["type"] == "logged_in" && v["resumed"] == true);
    expect_bootstrap(&mut twin);
    twin.send("/rename alicia");
    twin.wait_for("renamed", |v| v["type"] == "renamed" && v["new"] == "alicia");
    twin.send("/quit");
    twin.wait_exit(Duration::from_secs(10));

    // alice's own node still says alice; its next renewal (asked for at start) tells it the truth.
    let mut alice = NodeBuilder::loopback("alice").args(&["--peer", &boot_addr]).data_dir(alice_dir.path()).spawn();
    let (back, _) =
        alice.wait_timed("resumed", Duration::from_secs(15), |v| v["type"] == "logged_in" && v["resumed"] == true);
    let (healed, _) = alice.wait_timed("healed", Duration::from_secs(15), |v| {
        v["type"] == "renamed" && v["old"] == "alice" && v["new"] == "alicia"
    });
    println!("the lost rename healed {:.0} ms after alice's node came back", (healed - back).as_secs_f64() * 1000.0);
    assert_eq!(alice.status()["user"], "alicia");
    // Her seat in the room is the account's: she talks there as alicia.
    alice.send("/focus lobby");
    alice.send("still the admin");
    bob.wait_for("alicia's message", |v| v["type"] == "message" && v["from"] == "alicia");
    bob.send("/members lobby");
    let members = bob.wait_type("members");
    assert_eq!(members["members"][0]["user"], "alicia", "{members}");
    assert_eq!(members["members"][0]["admin"], true, "{members}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() && entry.file_name() != "lock" {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A sealed presence as sent, its fields in the order meshchat writes them.
#[derive(Deserialize)]
struct Sealed {
    presence: serde_bytes_compat::Bytes,
    public_key: serde_bytes_compat::Bytes,
    signature: serde_bytes_compat::Bytes,
}

/// The same fields in another order: other bytes, the same announcement.
#[derive(Serialize)]
struct Reordered {
    signature: serde_bytes_compat::Bytes,
    public_key: serde_bytes_compat::Bytes,
    presence: serde_bytes_compat::Bytes,
}

/// Byte fields as meshchat's CBOR has them (arrays of integers), whatever serde is asked for.
mod serde_bytes_compat {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(transparent)]
    pub struct Bytes(pub Vec<u8>);
}

/// A fresh peer that has never seen `bytes` publishes them on the presence topic through the
/// node at `addr` (a peer that heard them would take them for a copy), then runs 2 s more so
/// that they are sent. Says why if they could not go out within 20 s.
async fn replay_through(addr: libp2p::Multiaddr, bytes: Vec<u8>) -> Result<(), String> {
    let mut replayer = gossip_peer(Keypair::generate_ed25519(), false);
    let topic = gossipsub::IdentTopic::new(meshchat::protocol::presence::TOPIC);
    replayer.dial(addr).map_err(|e| e.to_string())?;
    let give_up = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut outcome = Err(String::from("not tried"));
    while outcome.is_err() && tokio::time::Instant::now() < give_up {
        let _ = tokio::time::timeout(Duration::from_millis(100), replayer.select_next_some()).await;
        outcome = replayer
            .behaviour_mut()
            .gossipsub
            .publish(topic.clone(), bytes.clone())
            .map(|_| ())
            .map_err(|e| format!("{e:?}"));
    }
    let sent = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < sent {
        let _ = tokio::time::timeout(Duration::from_millis(100), replayer.select_next_some()).await;
    }
    outcome
}

#[test]
fn a_replayed_presence_changes_nothing() {
    let LoopbackTrio { boot: _boot, mut alice, mut bob, bob_addr, .. } = loopback_trio(&[], [None, None]);
    register(&mut bob, "bob", PASSWORDS[1]);

    // mallory listens on the presence topic (through bob) and keeps alice's announcements.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (heard_tx, heard_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let listen_addr = bob_addr.clone();
    let mallory = runtime.spawn(async move {
        let mut mallory = gossip_peer(Keypair::generate_ed25519(), false);
        let topic = gossipsub::IdentTopic::new(meshchat::protocol::presence::TOPIC);
        mallory.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
        mallory.dial(listen_addr).unwrap();
        loop {
            if let SwarmEvent::Behaviour(GossipPeerEvent::Gossipsub(gossipsub::Event::Message { message, .. })) =
                mallory.select_next_some().await
                && let Some((_, presence)) = meshchat::protocol::presence::Presence::open(&message.data)
                && presence.certificate.body.username == "alice"
            {
                let _ = heard_tx.send(message.data);
                return;
            }
        }
    });
    register(&mut alice, "alice", PASSWORDS[0]);
    wait_online(&mut bob, "alice");
    let heard = heard_rx.recv_timeout(Duration::from_secs(30)).expect("one of alice's announcements");
    mallory.abort();

    alice.send("/logout");
    alice.wait_type("logged_out");
    bob.wait_for("alice offline", |v| v["type"] == "presence" && v["user"] == "alice" && v["state"] == "offline");

    // The very announcement, in other bytes (so that gossipsub does not take it for a copy): not
    // even read, only the encoding a node seals is; and the very bytes again.
    let sealed: Sealed = cbor4ii::serde::from_slice(&heard).expect("a sealed presence");
    let reordered = cbor4ii::serde::to_vec(
        Vec::new(),
        &Reordered { signature: sealed.signature, public_key: sealed.public_key, presence: sealed.presence },
    )
    .unwrap();
    assert_ne!(reordered, heard);
    assert!(meshchat::protocol::presence::Presence::open(&heard).is_some(), "a valid announcement");
    assert!(meshchat::protocol::presence::Presence::open(&reordered).is_none(), "another encoding read");
    for replay in [reordered, heard] {
        let outcome = runtime.block_on(replay_through(bob_addr.clone(), replay));
        assert!(outcome.is_ok(), "the replay went out: {outcome:?}");
    }
    no_event_within(&mut bob, Duration::from_secs(2), "alice online again", |v| {
        v["type"] == "presence" && v["user"] == "alice" && v["state"] == "online"
    });
    bob.send("/who");
    let online = bob.wait_type("online");
    assert!(!online["users"].as_array().unwrap().iter().any(|u| u["user"] == "alice"), "{online}");
}

/// A letter alice left for bob before she renamed is shown, once bob's node knows that
/// someone else goes by `alice` now, under her new name or her account's short id: never under
/// the name in its certificate, which is someone else's by then.
#[test]
fn a_letter_written_under_a_name_taken_since_is_not_shown_under_it() {
    const HOLD: Duration = Duration::from_secs(30);
    let boot_dir = tempfile::tempdir().unwrap();
    let mut boot = NodeBuilder::loopback("bootstrap")
        .args(&["bootstrap", "--name-hold", "30", "--cert-lifetime", "30"])
        .data_dir(boot_dir.path())
        .spawn();
    let boot_addr = boot.ready()["listen"][0].as_str().expect("a listen address").to_string();
    let user = |name: &str| {
        let mut node = NodeBuilder::loopback(name).args(&["--peer", &boot_addr]).spawn();
        node.ready();
        expect_bootstrap(&mut node);
        node
    };
    let (mut alice, mut bob) = (user("alice"), user("bob"));
    register(&mut alice, "alice", PASSWORDS[0]);
    register(&mut bob, "bob", PASSWORDS[1]);
    wait_online(&mut bob, "alice");
    wait_online(&mut alice, "bob");

    // bob logs out (his node runs on); alice's message to him is left at the mailbox.
    bob.send("/logout");
    bob.wait_type("logged_out");
    alice.wait_for("bob offline", |v| v["type"] == "presence" && v["user"] == "bob" && v["state"] == "offline");
    alice.send("/msg bob on my way");
    alice.wait_for("kept", |v| v["type"] == "dm" && v["to"] == "bob");
    let letters = || -> i64 {
        let db = rusqlite::Connection::open(boot_dir.path().join("node.db")).unwrap();
        db.query_row("SELECT COUNT(*) FROM letters", [], |r| r.get(0)).unwrap_or(0)
    };
    let left_by = std::time::Instant::now() + Duration::from_secs(20);
    while letters() == 0 {
        assert!(std::time::Instant::now() < left_by, "no letter left at the mailbox");
        std::thread::sleep(Duration::from_millis(100));
    }

    // alice renames and goes away; once the hold is over, carol takes `alice`.
    alice.send("/rename alicia");
    alice.wait_for("renamed", |v| v["type"] == "renamed" && v["new"] == "alicia");
    let renamed = std::time::Instant::now();
    alice.send("/quit");
    alice.wait_exit(Duration::from_secs(10));
    std::thread::sleep(HOLD.saturating_sub(renamed.elapsed()) + Duration::from_secs(1));
    let mut carol = user("carol");
    register(&mut carol, "alice", PASSWORDS[2]);
    // bob's node, logged out, hears the new `alice`.
    wait_online(&mut bob, "alice");

    bob.send("/login bob");
    bob.send(PASSWORDS[1]);
    bob.wait_for("logged in", |v| v["type"] == "logged_in" && v["user"] == "bob");
    let got = bob.wait_for("alice's letter", |v| v["type"] == "dm" && v["text"] == "on my way");
    let from = str_of(&got, "from");
    assert!(from == "alicia" || from.starts_with('~'), "shown from {from:?}: {got}");
    no_event_within(&mut carol, Duration::from_secs(1), "a message", |v| v["type"] == "dm");
}
