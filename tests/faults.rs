//! Faults and load in the LAN lab: a host cut off while messages flow both ways, three senders
//! at full speed, the bootstrap node killed and restarted, a node killed while it writes,
//! connections of random bytes. Each test prints its figures (sent, delivered, duplicated, lost,
//! time to heal) for the README's table.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::chat::{
    PASSWORDS, Pair, alice_and_bob, expect_bootstrap, expect_error, join_room, lab_user, no_event_within, register,
    str_of,
};
use support::{Lab, NodeBuilder, NodeProc};

const NAMES: &[&str] = &["alice", "bob", "carol", "dave"];

/// Room messages of `room` a node has shown, by text, with how often each was shown.
fn shown(events: &[Value], room: &str) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for v in events.iter().filter(|v| v["type"] == "message" && v["room"] == room) {
        *seen.entry(str_of(v, "text").to_string()).or_insert(0) += 1;
    }
    seen
}

/// Waits until `node` has shown every text of `expected` in `room` (or `limit` passes), then a
/// second more for anything shown twice; takes and returns every event seen meanwhile.
fn await_texts(node: &mut NodeProc, room: &str, expected: &[String], limit: Duration) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    let mut events = Vec::new();
    loop {
        events.extend(node.take_within(Duration::from_millis(200)));
        let seen = shown(&events, room);
        if expected.iter().all(|t| seen.contains_key(t)) || Instant::now() > deadline {
            events.extend(node.take_within(Duration::from_secs(1)));
            return events;
        }
    }
}

/// Counts (delivered, duplicated, lost) of `expected` among `events`.
fn tally(events: &[Value], room: &str, expected: &[String]) -> (usize, usize, usize) {
    let seen = shown(events, room);
    let delivered = expected.iter().filter(|t| seen.contains_key(*t)).count();
    let duplicated = expected.iter().filter(|t| seen.get(*t).is_some_and(|n| *n > 1)).count();
    (delivered, duplicated, expected.len() - delivered)
}

/// A bootstrap node on host 0 and `n` users on hosts 1..=n, all members of `room`; host n+1
/// is spare.
struct RoomLab {
    lab: Lab,
    boot: NodeProc,
    dirs: Vec<tempfile::TempDir>,
    users: Vec<NodeProc>,
}

fn room_lab(n: usize, room: &str) -> Option<RoomLab> {
    let lab = Lab::start(n + 2)?;
    let mut boot = lab.node(0, "bootstrap").args(&["bootstrap"]).spawn();
    boot.ready();
    let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut users: Vec<NodeProc> =
        (0..n).map(|i| lab_user(&lab, i + 1, NAMES[i], PASSWORDS[i], dirs[i].path())).collect();
    users[0].send(&format!("/create {room}"));
    users[0].wait_for("created", |v| v["type"] == "room_created" && v["room"] == room);
    for user in users.iter_mut().skip(1) {
        join_room(user, room);
    }
    let last = NAMES[n - 1];
    for user in users.iter_mut().take(n - 1) {
        user.wait_for("everyone joined", |v| v["type"] == "joined" && v["user"] == last);
    }
    Some(RoomLab { lab, boot, dirs, users })
}

#[test]
fn a_host_cut_off_for_ten_seconds_misses_nothing() {
    let Some(RoomLab { lab, boot: _boot, dirs: _dirs, mut users }) = room_lab(3, "lobby") else { return };
    let (from_alice, from_bob): (Vec<String>, Vec<String>) =
        (0..20).map(|i| (format!("alice {i}"), format!("bob {i}"))).unzip();

    // Bob's cable is pulled for 10 s while alice and bob keep talking.
    lab.cut(2);
    let cut_at = Instant::now();
    for i in 0..20 {
        users[0].send(&from_alice[i]);
        users[1].send(&from_bob[i]);
        std::thread::sleep(Duration::from_millis(500));
    }
    let left = Duration::from_secs(10).saturating_sub(cut_at.elapsed());
    std::thread::sleep(left);
    lab.heal(2);
    let healed_at = Instant::now();

    let limit = Duration::from_secs(40);
    let bob_saw = await_texts(&mut users[1], "lobby", &from_alice, limit);
    let alice_saw = await_texts(&mut users[0], "lobby", &from_bob, limit);
    let carol_saw = await_texts(&mut users[2], "lobby", &[from_alice.clone(), from_bob.clone()].concat(), limit);
    let healed_in = healed_at.elapsed();
    let all = [from_alice.clone(), from_bob.clone()].concat();
    let figures = [
        ("bob, alice's 20", &bob_saw, &from_alice, &users[1]),
        ("alice, bob's 20", &alice_saw, &from_bob, &users[0]),
        ("carol, all 40", &carol_saw, &all, &users[2]),
    ];
    println!("cut 10 s, healed; everything in within {healed_in:?} of the heal");
    for (who, saw, expected, node) in figures {
        let (delivered, duplicated, lost) = tally(saw, "lobby", expected);
        println!("{who}: delivered {delivered}, duplicated {duplicated}, lost {lost}");
        if duplicated > 0 || lost > 0 {
            let seen = shown(saw, "lobby");
            let twice: Vec<&Value> = saw
                .iter()
                .filter(|v| v["type"] == "message" && seen.get(str_of(v, "text")).is_some_and(|n| *n > 1))
                .collect();
            println!("shown twice: {twice:#?}\nstderr:\n{}", node.stderr_text());
        }
        assert_eq!((duplicated, lost), (0, 0), "{who}");
    }
}

#[test]
fn three_senders_at_full_speed_reach_everyone_once_and_in_order() {
    let Some(RoomLab { lab: _lab, boot: _boot, dirs: _dirs, mut users }) = room_lab(4, "load") else { return };
    const EACH: usize = 200;
    let started = Instant::now();
    for i in 0..EACH {
        for sender in users.iter_mut().take(3) {
            let text = format!("{} {i}", sender.name);
            sender.send(&text);
        }
    }
    let all: Vec<String> = NAMES[..3].iter().flat_map(|name| (0..EACH).map(move |i| format!("{name} {i}"))).collect();
    for user in users.iter_mut() {
        let events = await_texts(user, "load", &all, Duration::from_secs(60));
        let (delivered, duplicated, lost) = tally(&events, "load", &all);
        println!(
            "{}: delivered {delivered} of {}, duplicated {duplicated}, lost {lost} ({:?} after the first send)",
            user.name,
            all.len(),
            started.elapsed()
        );
        if lost > 0 {
            let seen = shown(&events, "load");
            let missing: Vec<&String> = all.iter().filter(|t| !seen.contains_key(*t)).collect();
            let unreadable: Vec<&Value> =
                events.iter().filter(|v| v["type"] == "message" && v["unreadable"] == true).collect();
            println!(
                "{} is missing {missing:?}; shown unreadable: {unreadable:?}\nstderr:\n{}",
                user.name,
                user.stderr_text()
            );
        }
        assert_eq!((duplicated, lost), (0, 0), "{}", user.name);
        // Per sender, in the order sent.
        for name in &NAMES[..3] {
            let order: Vec<usize> = events
                .iter()
                .filter(|v| v["type"] == "message" && v["room"] == "load" && v["from"] == *name)
                .filter_map(|v| str_of(v, "text").rsplit(' ').next().and_then(|i| i.parse().ok()))
                .collect();
            let misplaced: Vec<(usize, usize)> =
                order.iter().enumerate().filter(|(at, i)| *at != **i).map(|(at, i)| (at, *i)).take(20).collect();
            assert!(
                misplaced.is_empty(),
                "{} sees {name}'s messages out of order: (place, number) {misplaced:?}",
                user.name
            );
        }
    }
}

#[test]
fn room_messages_reach_a_member_the_author_cannot_reach_through_another_member() {
    let Some(lab) = Lab::start(4) else { return };
    // alice (host 1) and carol (host 3) cannot reach each other; bob (host 2) reaches both.
    lab.separate(1, 3);
    let mut boot = lab.node(0, "bootstrap").args(&["bootstrap"]).spawn();
    boot.ready();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut alice = lab_user(&lab, 1, "alice", PASSWORDS[0], dirs[0].path());
    let mut bob = lab_user(&lab, 2, "bob", PASSWORDS[1], dirs[1].path());
    let mut carol = lab_user(&lab, 3, "carol", PASSWORDS[2], dirs[2].path());
    alice.send("/create relay");
    alice.wait_for("created", |v| v["type"] == "room_created");
    join_room(&mut bob, "relay");
    join_room(&mut carol, "relay");
    alice.wait_for("carol joined", |v| v["type"] == "joined" && v["user"] == "carol");

    let texts: Vec<String> = (0..5).map(|i| format!("relayed {i}")).collect();
    let sent = Instant::now();
    for text in &texts {
        alice.send(text);
    }
    let mut slowest = Duration::ZERO;
    for text in &texts {
        let (at, _) = carol.wait_timed(text, Duration::from_secs(10), |v| {
            v["type"] == "message" && v["room"] == "relay" && v["text"] == text.as_str()
        });
        slowest = slowest.max(at.duration_since(sent));
    }
    println!("relayed through bob: all 5 at carol within {slowest:?} of the first send");
    // Live, not by a later comparison of the room (those come a minute apart).
    assert!(slowest < Duration::from_secs(5), "{slowest:?}");
    // They really are apart.
    let alice_id = alice.status()["peer_id"].as_str().unwrap().to_string();
    let peers = carol.status()["peers"].clone();
    assert!(!peers.as_array().unwrap().iter().any(|p| p == alice_id.as_str()), "{peers}");
}

#[test]
fn chat_goes_on_while_the_bootstrap_is_down_and_accounts_survive_its_crash() {
    let Some(lab) = Lab::start(4) else { return };
    let boot_dir = tempfile::tempdir().unwrap();
    let mut boot = lab.node(0, "bootstrap").args(&["bootstrap"]).data_dir(boot_dir.path()).spawn();
    boot.ready();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut alice = lab_user(&lab, 1, "alice", PASSWORDS[0], dirs[0].path());
    let mut bob = lab_user(&lab, 2, "bob", PASSWORDS[1], dirs[1].path());
    let mut carol = lab_user(&lab, 3, "carol", PASSWORDS[2], dirs[2].path());
    carol.send("/logout");
    carol.wait_type("logged_out");
    alice.send("/create lobby");
    alice.wait_for("created", |v| v["type"] == "room_created");
    std::thread::sleep(Duration::from_millis(500));
    bob.send("/join lobby");
    bob.wait_for("joined", |v| v["type"] == "joined" && v["user"] == "bob");

    boot.kill();
    for node in [&mut alice, &mut bob, &mut carol] {
        node.wait_for("bootstrap lost", |v| v["type"] == "bootstrap" && v["state"] == "lost");
    }
    let accounts = boot_dir.path().join("accounts.db");
    assert_eq!(integrity(&accounts), "ok");
    let status = alice.status();
    assert!(status["bootstrap"].is_null(), "{status}");
    let problems = status["problems"].as_array().unwrap();
    assert!(problems.iter().any(|p| p.as_str().is_some_and(|p| p.contains("no bootstrap"))), "{status}");

    // Rooms and direct messages go on.
    alice.send("still here?");
    bob.wait_for("room message", |v| v["type"] == "message" && v["text"] == "still here?");
    bob.send("/msg alice yes, without the bootstrap");
    alice.wait_for("dm", |v| v["type"] == "dm" && v["text"] == "yes, without the bootstrap");
    bob.wait_type("delivered");

    // Logging in fails fast.
    let asked = Instant::now();
    carol.send("/login carol");
    carol.send(PASSWORDS[2]);
    expect_error(&mut carol, "no_bootstrap");
    let failed_in = asked.elapsed();
    println!("login without a bootstrap failed in {failed_in:?}");
    assert!(failed_in < Duration::from_secs(10), "{failed_in:?}");

    // The bootstrap comes back with every account.
    let mut boot = lab.node(0, "bootstrap again").args(&["bootstrap"]).data_dir(boot_dir.path()).spawn();
    boot.ready();
    carol.wait_for("bootstrap found", |v| v["type"] == "bootstrap" && v["state"] == "found");
    carol.send("/login carol");
    carol.send(PASSWORDS[2]);
    carol.wait_for("logged in", |v| v["type"] == "logged_in" && v["user"] == "carol");
    alice.wait_for("bootstrap found again", |v| v["type"] == "bootstrap" && v["state"] == "found");
    assert_eq!(alice.status()["problems"], serde_json::json!([]));
    carol.send("/msg alice hello again");
    alice.wait_for("dm", |v| v["type"] == "dm" && v["text"] == "hello again");
}

#[test]
fn a_node_killed_while_it_writes_loses_nothing_it_kept() {
    let Some(lab) = Lab::start(3) else { return };
    let Pair { boot: _boot, dirs, mut alice, mut bob } = alice_and_bob(&lab);
    alice.send("/create lobby");
    alice.wait_for("created", |v| v["type"] == "room_created");
    std::thread::sleep(Duration::from_millis(500));
    bob.send("/join lobby");
    bob.wait_for("joined", |v| v["type"] == "joined" && v["user"] == "bob");

    // Alice writes as fast as she can and is killed in the middle of it.
    for i in 0..300 {
        alice.send(&format!("burst {i}"));
    }
    let seen_by_alice = alice.take_within(Duration::from_millis(150));
    alice.kill();
    let kept_before = shown(&seen_by_alice, "lobby").len();
    assert_eq!(integrity(&dirs[0].path().join("node.db")), "ok");

    // What bob got, and what alice had kept, survive; after the restart both agree.
    let mut alice = lab.node(1, "alice again").data_dir(dirs[0].path()).spawn();
    alice.wait_for("resumed", |v| v["type"] == "logged_in" && v["resumed"] == true);
    alice.send("/focus lobby");
    alice.send("/history 500");
    let history = alice.wait_type("history");
    let mine = history["messages"].as_array().unwrap().len();
    println!("alice showed {kept_before} messages before the kill; {mine} kept after the restart");
    assert!(mine >= kept_before, "alice lost messages she had shown: {mine} < {kept_before}");
    let expected: Vec<String> =
        history["messages"].as_array().unwrap().iter().map(|m| str_of(m, "text").to_string()).collect();
    let events = await_texts(&mut bob, "lobby", &expected, Duration::from_secs(30));
    let (delivered, duplicated, lost) = tally(&events, "lobby", &expected);
    println!("bob: delivered {delivered} of alice's {}, duplicated {duplicated}, lost {lost}", expected.len());
    assert_eq!((duplicated, lost), (0, 0));
    no_event_within(&mut bob, Duration::from_millis(500), "a message twice", |v| {
        v["type"] == "message" && expected.contains(&str_of(v, "text").to_string())
    });
}

#[test]
fn connections_of_random_bytes_do_no_harm() {
    let boot_dir = tempfile::tempdir().unwrap();
    let mut boot = NodeBuilder::loopback("bootstrap").args(&["bootstrap"]).data_dir(boot_dir.path()).spawn();
    let ready = boot.ready();
    let addr = ready["listen"][0].as_str().unwrap().to_string();
    let port: u16 = addr.rsplit('/').next().unwrap().parse().unwrap();
    let mut alice = NodeBuilder::loopback("alice").args(&["--peer", &addr]).spawn();
    expect_bootstrap(&mut alice);

    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    let mut connections = Vec::new();
    for i in 0..20 {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        // Some start like a multistream handshake, the rest are pure noise.
        if i % 2 == 0 {
            let _ = stream.write_all(b"\x13/multistream/1.0.0\n");
        }
        let _ = stream.write_all(&noise(64 * 1024));
        connections.push(stream);
    }
    drop(connections);

    // The bootstrap still answers, serves a registration, and its database is sound.
    assert!(boot.status()["peer_id"].is_string());
    register(&mut alice, "alice", PASSWORDS[0]);
    boot.send("/quit");
    boot.wait_exit(Duration::from_secs(10));
    assert_eq!(integrity(&boot_dir.path().join("accounts.db")), "ok");
}

/// `PRAGMA integrity_check` of a SQLite file.
fn integrity(path: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

#[test]
fn a_flooding_member_is_held_to_the_rate_limit() {
    let Some(RoomLab { lab, boot: _boot, dirs: _dirs, mut users }) = room_lab(2, "flood") else { return };
    const SENT: usize = 800;
    let lines: String = (0..SENT).map(|i| format!("flood {i}\n")).collect();
    users[0].send_bytes(lines.as_bytes());
    let events = users[0].take_within(Duration::from_secs(5));
    let refused = events.iter().filter(|v| v["type"] == "error" && v["code"] == "rate_limited").count();
    let accepted: Vec<String> = shown(&events, "flood").into_keys().collect();
    println!("alice sent {SENT} at once: {} went out, {refused} refused with rate_limited", accepted.len());
    assert!(refused > 0, "no message was refused");
    assert_eq!(accepted.len() + refused, SENT);
    let got = await_texts(&mut users[1], "flood", &accepted, Duration::from_secs(30));
    let (delivered, duplicated, lost) = tally(&got, "flood", &accepted);
    assert_eq!((delivered, duplicated, lost), (accepted.len(), 0, 0));
    assert_eq!(shown(&got, "flood").len(), accepted.len(), "bob got only what went out");

    // A late joiner fetches the whole history, page by page (more than one page's worth), and
    // reads it: the keys of its sessions come with the pages.
    let dir = tempfile::tempdir().unwrap();
    let mut carol = lab_user(&lab, 3, "carol", PASSWORDS[2], dir.path());
    let asked = Instant::now();
    join_room(&mut carol, "flood");
    let wanted: std::collections::HashSet<&str> = accepted.iter().map(String::as_str).collect();
    let readable = |m: &&Value| m["unreadable"].is_null() && m["text"].as_str().is_some_and(|t| wanted.contains(t));
    let deadline = Instant::now() + Duration::from_secs(30);
    let count = loop {
        carol.send("/history 2000");
        let history = carol.wait_type("history");
        let count = history["messages"].as_array().unwrap().iter().filter(readable).count();
        if count >= accepted.len() || Instant::now() > deadline {
            break count;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("a late joiner read all {count} messages {:?} after /join", asked.elapsed());
    assert_eq!(count, accepted.len());
}

#[test]
fn certificates_are_renewed_once_the_bootstrap_is_back() {
    let Some(lab) = Lab::start(2) else { return };
    let boot_dir = tempfile::tempdir().unwrap();
    let bootstrap = |name: &str| {
        let mut boot =
            lab.node(0, name).args(&["bootstrap", "--cert-lifetime", "45"]).data_dir(boot_dir.path()).spawn();
        boot.ready();
        boot
    };
    let mut boot = bootstrap("bootstrap");
    let dir = tempfile::tempdir().unwrap();
    let mut alice = lab_user(&lab, 1, "alice", PASSWORDS[0], dir.path());
    let left = |node: &mut NodeProc| node.status()["certificate_expires_in"].as_u64().unwrap();
    assert!(left(&mut alice) > 40);

    // Without the bootstrap the certificate runs low, and /status says so.
    boot.kill();
    alice.wait_for("bootstrap lost", |v| v["type"] == "bootstrap" && v["state"] == "lost");
    let deadline = Instant::now() + Duration::from_secs(40);
    while left(&mut alice) >= 15 {
        assert!(Instant::now() < deadline, "the certificate never ran low");
        std::thread::sleep(Duration::from_millis(500));
    }
    let status = alice.status();
    let problems = status["problems"].as_array().unwrap();
    assert!(problems.iter().any(|p| p.as_str().is_some_and(|p| p.contains("runs out"))), "{status}");

    // Back: renewed within a presence tick, before it expires.
    let _boot = bootstrap("bootstrap again");
    alice.wait_for("bootstrap found", |v| v["type"] == "bootstrap" && v["state"] == "found");
    let deadline = Instant::now() + Duration::from_secs(15);
    while left(&mut alice) < 30 {
        assert!(Instant::now() < deadline, "the certificate was not renewed");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(alice.status()["user"], "alice");
}

/// bob is away while alice writes 300 messages; as he comes back she writes 500 more, which he
/// hears live, possibly before his node compares the room with hers. A catch-up that fetched
/// only the newest messages would find it has those and leave the 300 behind them out for good;
/// catch-up by how far each machine's messages are held without a gap brings them. Loopback,
/// no mDNS.
#[test]
fn a_gap_behind_messages_heard_live_is_filled() {
    let bob_dir = tempfile::tempdir().unwrap();
    let support::chat::LoopbackTrio { boot: _boot, boot_addr, mut alice, mut bob, .. } =
        support::chat::loopback_trio(&[], [None, Some(bob_dir.path())]);
    register(&mut alice, "alice", PASSWORDS[0]);
    register(&mut bob, "bob", PASSWORDS[1]);
    alice.send("/create lobby");
    alice.wait_for("created", |v| v["type"] == "room_created");
    join_room(&mut bob, "lobby");
    alice.wait_for("bob joined", |v| v["type"] == "joined" && v["user"] == "bob");
    bob.send("/quit");
    bob.wait_exit(Duration::from_secs(10));
    alice.wait_for("bob offline", |v| v["type"] == "presence" && v["user"] == "bob" && v["state"] == "offline");

    let away: Vec<String> = (0..300).map(|i| format!("while bob was away {i}")).collect();
    let back: Vec<String> = (0..500).map(|i| format!("as bob came back {i}")).collect();
    for text in &away {
        alice.send(text);
    }
    alice.wait_for("the last one", |v| v["type"] == "message" && v["text"] == "while bob was away 299");
    // The burst refills (100 a second) before the next 500.
    std::thread::sleep(Duration::from_secs(3));
    let mut bob = NodeBuilder::loopback("bob").args(&["--peer", &boot_addr]).data_dir(bob_dir.path()).spawn();
    bob.ready();
    alice.wait_for("bob back", |v| v["type"] == "presence" && v["user"] == "bob" && v["state"] == "online");
    for text in &back {
        alice.send(text);
    }
    let expected: Vec<String> = away.iter().chain(&back).cloned().collect();
    // Shown live or kept from catch-up: /history has them all, each once.
    bob.send("/focus lobby");
    bob.wait_for("focus", |v| v["type"] == "focus");
    let deadline = Instant::now() + Duration::from_secs(30);
    let texts = loop {
        bob.send("/history 1000");
        let history = bob.wait_type("history");
        let texts: Vec<String> =
            history["messages"].as_array().unwrap().iter().map(|m| str_of(m, "text").to_string()).collect();
        if texts.len() >= expected.len() || Instant::now() > deadline {
            break texts;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let refused = alice.history().iter().filter(|v| v["type"] == "error").count();
    assert_eq!(refused, 0, "alice's messages were all sent");
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for text in &texts {
        *counts.entry(text.as_str()).or_default() += 1;
    }
    let missing: Vec<&String> = expected.iter().filter(|t| !counts.contains_key(t.as_str())).collect();
    let twice: Vec<(&&str, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    println!(
        "bob holds {} of {} messages; missing {}, twice {}",
        texts.len(),
        expected.len(),
        missing.len(),
        twice.len()
    );
    assert!(missing.is_empty(), "{} missing, e.g. {:?}", missing.len(), missing.first());
    assert!(twice.is_empty(), "{twice:?}");
}
