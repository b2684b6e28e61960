//! The whole life of a room as people would try it, in the LAN lab: a bootstrap node and four
//! users on five hosts.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::chat::{PASSWORDS, Pair, alice_and_bob, expect_error, lab_user, no_event_within, str_of};
use support::{Lab, NodeProc};

fn is(v: &Value, kind: &str, room: &str, user: &str) -> bool {
    v["type"] == kind && v["room"] == room && v["user"] == user
}

fn message_from(node: &mut NodeProc, from: &str, text: &str) -> Value {
    node.wait_for(&format!("message {text:?} from {from}"), |v| {
        v["type"] == "message" && v["from"] == from && v["text"] == text
    })
}

fn members(node: &mut NodeProc, room: &str) -> Vec<(String, bool)> {
    node.send(&format!("/members {room}"));
    let m = node.wait_type("members");
    m["members"].as_array().unwrap().iter().map(|m| (str_of(m, "user").to_string(), m["admin"] == true)).collect()
}

fn rooms(node: &mut NodeProc) -> Vec<(String, u64)> {
    node.send("/rooms");
    let r = node.wait_type("rooms");
    r["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (str_of(r, "room").to_string(), r["members"].as_u64().unwrap()))
        .collect()
}

/// Polls `/rooms` until `pred` holds (the directory follows presence within a moment).
fn rooms_until(node: &mut NodeProc, what: &str, pred: impl Fn(&[(String, u64)]) -> bool) {
    for _ in 0..50 {
        if pred(&rooms(node)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let last = rooms(node);
    panic!("{}: /rooms never showed {what}: {last:?}", node.name);
}

#[test]
fn the_life_of_a_room() {
    let Some(lab) = Lab::start(5) else { return };
    let mut boot = lab.node(0, "bootstrap").args(&["bootstrap"]).spawn();
    boot.ready();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut alice = lab_user(&lab, 1, "alice", PASSWORDS[0], dirs[0].path());
    let mut bob = lab_user(&lab, 2, "bob", PASSWORDS[1], dirs[1].path());
    let mut carol = lab_user(&lab, 3, "carol", PASSWORDS[2], dirs[2].path());
    let mut dave = lab_user(&lab, 4, "dave", PASSWORDS[3], dirs[3].path());

    // Create; another host lists it; join; members in join order, the creator admin.
    alice.send("/create #Lobby");
    alice.wait_for("created", |v| is(v, "room_created", "lobby", "alice"));
    alice.wait_for("focus", |v| v["type"] == "focus" && v["target"] == "#lobby");
    rooms_until(&mut bob, "lobby with 1 member", |r| r.contains(&("lobby".into(), 1)));
    bob.send("/join lobby");
    bob.wait_for("bob joined", |v| is(v, "joined", "lobby", "bob"));
    alice.wait_for("bob joined", |v| is(v, "joined", "lobby", "bob"));
    dave.send("/join lobby");
    dave.wait_for("dave joined", |v| is(v, "joined", "lobby", "dave"));
    alice.wait_for("dave joined", |v| is(v, "joined", "lobby", "dave"));
    bob.wait_for("dave joined", |v| is(v, "joined", "lobby", "dave"));
    let expected = vec![("alice".to_string(), true), ("bob".to_string(), false), ("dave".to_string(), false)];
    assert_eq!(members(&mut alice, "lobby"), expected);
    assert_eq!(members(&mut dave, "#lobby"), expected);

    // Messages reach everyone; others are notified.
    alice.send("hello everyone");
    message_from(&mut alice, "alice", "hello everyone");
    for node in [&mut bob, &mut dave] {
        message_from(node, "alice", "hello everyone");
        node.wait_for("notification", |v| v["type"] == "notification" && v["kind"] == "room" && v["room"] == "lobby");
    }
    no_event_within(&mut alice, Duration::from_millis(200), "notification of own message", |v| {
        v["type"] == "notification"
    });

    // A muted room still receives, silently.
    bob.send("/mute #lobby");
    bob.wait_for("muted", |v| v["type"] == "muted" && v["target"] == "#lobby");
    alice.send("quiet please");
    message_from(&mut bob, "alice", "quiet please");
    dave.wait_for("dave notified", |v| v["type"] == "notification" && v["room"] == "lobby");
    no_event_within(&mut bob, Duration::from_millis(300), "notification while muted", |v| v["type"] == "notification");
    bob.send("/unmute lobby");
    bob.wait_for("unmuted", |v| v["type"] == "unmuted" && v["target"] == "#lobby");

    // Only admins kick; /op makes one.
    dave.send("/kick bob");
    assert!(expect_error(&mut dave, "not_admin").contains("dave is not an admin"));
    alice.send("/op dave");
    for node in [&mut alice, &mut bob, &mut dave] {
        node.wait_for("dave admin", |v| is(v, "admin", "lobby", "dave") && v["by"] == "alice");
    }

    // A late joiner reads what was said before.
    carol.send("/join lobby");
    carol.wait_for("carol joined", |v| is(v, "joined", "lobby", "carol"));
    carol.send("/history");
    let history = carol.wait_type("history");
    let texts: Vec<&str> = history["messages"].as_array().unwrap().iter().map(|m| str_of(m, "text")).collect();
    assert_eq!(texts, vec!["hello everyone", "quiet please"], "{history}");

    // A kick: the kicked member's later messages reach nobody; a kicked member may come back.
    // The kicker must know carol is a member, or the kick is refused as a kick of nobody.
    alice.wait_for("carol joined", |v| is(v, "joined", "lobby", "carol"));
    dave.wait_for("carol joined", |v| is(v, "joined", "lobby", "carol"));
    dave.send("/kick carol");
    for node in [&mut alice, &mut bob, &mut carol] {
        node.wait_for("carol kicked", |v| is(v, "kicked", "lobby", "carol") && v["by"] == "dave");
    }
    carol.send("text after the kick");
    assert!(expect_error(&mut carol, "usage").contains("nowhere to send"));
    carol.send("/focus lobby");
    expect_error(&mut carol, "not_member");
    no_event_within(&mut alice, Duration::from_millis(300), "a message from carol", |v| {
        v["type"] == "message" && v["from"] == "carol"
    });
    carol.send("/join lobby");
    carol.wait_for("carol back", |v| is(v, "joined", "lobby", "carol"));

    // A ban keeps her out until unbanned.
    alice.wait_for("carol back", |v| is(v, "joined", "lobby", "carol"));
    alice.send("/ban carol");
    carol.wait_for("carol banned", |v| is(v, "banned", "lobby", "carol") && v["by"] == "alice");
    carol.send("/join lobby");
    assert!(expect_error(&mut carol, "banned").contains("carol is banned"));
    alice.send("/unban carol lobby");
    std::thread::sleep(Duration::from_millis(300));
    carol.send("/join lobby");
    carol.wait_for("carol back again", |v| is(v, "joined", "lobby", "carol"));
    bob.wait_for("carol back again", |v| is(v, "joined", "lobby", "carol"));

    // Admins leave: the last one's node first makes the oldest remaining member an admin.
    dave.send("/leave");
    bob.wait_for("dave left", |v| is(v, "left", "lobby", "dave"));
    alice.send("/leave lobby");
    for node in [&mut bob, &mut carol] {
        node.wait_for("bob succeeds", |v| is(v, "admin", "lobby", "bob") && v["by"] == "alice");
        node.wait_for("alice left", |v| is(v, "left", "lobby", "alice"));
    }
    assert_eq!(members(&mut carol, "lobby"), vec![("bob".to_string(), true), ("carol".to_string(), false)]);

    // A member killed and restarted still receives, what was said while away included.
    bob.kill();
    carol.wait_for("bob offline", |v| v["type"] == "presence" && v["user"] == "bob" && v["state"] == "offline");
    carol.send("/focus lobby");
    carol.send("while you were away");
    message_from(&mut carol, "carol", "while you were away");
    let mut bob = lab.node(2, "bob again").data_dir(dirs[1].path()).spawn();
    bob.wait_for("resumed", |v| v["type"] == "logged_in" && v["resumed"] == true);
    message_from(&mut bob, "carol", "while you were away");
    carol.send("welcome back");
    message_from(&mut bob, "carol", "welcome back");

    // Emptied, the room disappears from the directory.
    rooms_until(&mut alice, "lobby", |r| r.iter().any(|(room, _)| room == "lobby"));
    bob.send("/leave lobby");
    carol.send("/leave lobby");
    bob.wait_for("bob left", |v| is(v, "left", "lobby", "bob"));
    carol.wait_for("carol left", |v| is(v, "left", "lobby", "carol"));
    rooms_until(&mut alice, "no lobby", |r| !r.iter().any(|(room, _)| room == "lobby"));
}

#[test]
fn room_commands_refuse_clearly() {
    let Some(lab) = Lab::start(3) else { return };
    let Pair { boot: _boot, dirs: _dirs, mut alice, mut bob } = alice_and_bob(&lab);

    bob.send("/join nowhere");
    expect_error(&mut bob, "no_such_room");
    bob.send("/create bad name!");
    expect_error(&mut bob, "usage");
    bob.send(&format!("/create {}", "x".repeat(33)));
    expect_error(&mut bob, "usage");
    bob.send("hello?");
    expect_error(&mut bob, "usage");
    bob.send("/members lobby");
    expect_error(&mut bob, "no_such_room");

    alice.send("/create lobby");
    alice.wait_for("created", |v| is(v, "room_created", "lobby", "alice"));
    rooms_until(&mut bob, "lobby", |r| r.iter().any(|(room, _)| room == "lobby"));
    bob.send("/create lobby");
    expect_error(&mut bob, "room_exists");
    bob.send("/kick alice lobby");
    expect_error(&mut bob, "not_member");
    alice.send(&"y".repeat(4097));
    expect_error(&mut alice, "too_long");
    alice.send("/kick bob");
    expect_error(&mut alice, "not_member");
    bob.send("/join lobby");
    bob.wait_for("joined", |v| is(v, "joined", "lobby", "bob"));
    alice.wait_for("bob joined", |v| is(v, "joined", "lobby", "bob"));
    bob.send("/kick alice");
    expect_error(&mut bob, "not_admin");
    alice.send("/op bob");
    bob.wait_for("bob admin", |v| is(v, "admin", "lobby", "bob"));
    bob.send("/kick alice");
    let message = expect_error(&mut bob, "not_admin");
    assert!(message.contains("alice is an admin"), "{message}");
}

/// alice creates `#lobby` and bob joins it.
fn lobby_of_alice_and_bob(alice: &mut NodeProc, bob: &mut NodeProc) {
    alice.send("/create lobby");
    alice.wait_for("created", |v| is(v, "room_created", "lobby", "alice"));
    rooms_until(bob, "lobby", |r| r.iter().any(|(room, _)| room == "lobby"));
    bob.send("/join lobby");
    alice.wait_for("bob joined", |v| is(v, "joined", "lobby", "bob"));
}

#[test]
fn a_renamed_member_keeps_their_rooms_and_rights() {
    let Some(lab) = Lab::start(3) else { return };
    let Pair { boot: _boot, dirs: _dirs, mut alice, mut bob } = alice_and_bob(&lab);
    lobby_of_alice_and_bob(&mut alice, &mut bob);

    alice.send("/rename alicia");
    alice.wait_for("renamed", |v| v["type"] == "renamed" && v["old"] == "alice" && v["new"] == "alicia");
    // The seat is the account's: bob learns the new name from alicia's next certificate.
    bob.wait_for("renamed", |v| v["type"] == "renamed" && v["old"] == "alice" && v["new"] == "alicia");
    assert_eq!(members(&mut bob, "lobby"), vec![("alicia".to_string(), true), ("bob".to_string(), false)]);
    assert_eq!(members(&mut alice, "lobby"), vec![("alicia".to_string(), true), ("bob".to_string(), false)]);

    // Still a member who talks, and still the admin.
    alice.send("/focus lobby");
    alice.send("same person, new name");
    message_from(&mut bob, "alicia", "same person, new name");
    alice.send("/kick bob");
    bob.wait_for("kicked", |v| is(v, "kicked", "lobby", "bob") && v["by"] == "alicia");
}

#[test]
fn room_changes_are_held_to_a_rate_like_messages() {
    let Some(lab) = Lab::start(3) else { return };
    let Pair { boot: _boot, dirs: _dirs, mut alice, mut bob } = alice_and_bob(&lab);
    lobby_of_alice_and_bob(&mut alice, &mut bob);

    // bob leaves and joins as fast as his node lets him: after a burst, his own node refuses.
    let mut refused = 0;
    for _ in 0..20 {
        bob.send("/leave lobby");
        bob.send("/join lobby");
        let answers = bob.take_within(Duration::from_millis(150));
        refused += answers.iter().filter(|v| v["type"] == "error" && v["code"] == "rate_limited").count();
    }
    assert!(refused > 0, "never refused");
    println!("bob's node refused {refused} of 40 room changes made within about 3 s");

    // The room goes on for everyone.
    alice.send("/focus lobby");
    alice.send("still here");
    let seen = alice.take_within(Duration::from_secs(2));
    let changes = seen.iter().filter(|v| is(v, "joined", "lobby", "bob") || is(v, "left", "lobby", "bob")).count();
    println!("alice saw {changes} of bob's joins and leaves");
    bob.send("/join lobby");
    bob.take_within(Duration::from_secs(1));
    bob.send("/members lobby");
    let members = bob.wait_type("members");
    assert!(members["members"].as_array().is_some_and(|m| m.iter().any(|m| m["user"] == "alice")), "{members}");
}
