//! Two offices behind NAT routers and a bootstrap node on the public segment that serves reach
//! (`--public-addr`): every node finds the others through the rendezvous point, reaches them
//! through the relay and, where the NATs let it, directly (DCUtR); rooms, direct messages and
//! presence cross; `/status` says which connections are relayed; with the relay gone, direct
//! connections go on, and relayed ones come back when it returns.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use support::NodeProc;
use support::chat::{PASSWORDS, join_room, register, str_of, wait_online};
use support::sites::{PUBLIC_NET, Sites};

const NAMES: [&str; 4] = ["alice", "bob", "carol", "dave"];
/// The bootstrap's fixed port, so that it comes back where the nodes re-dial it.
const BOOT_PORT: u16 = 4001;

/// Starts the bootstrap on public host 0 in `dir`.
fn start_bootstrap(sites: &Sites, dir: &std::path::Path) -> NodeProc {
    let ip = &sites.public[0].ip;
    let public = format!("/ip4/{ip}/tcp/{BOOT_PORT}");
    let tcp = format!("/ip4/0.0.0.0/tcp/{BOOT_PORT}");
    let quic = format!("/ip4/0.0.0.0/udp/{BOOT_PORT}/quic-v1");
    let mut boot = sites
        .public_node(0, "bootstrap")
        .args(&["bootstrap", "--no-mdns", "--listen", &tcp, "--listen", &quic, "--public-addr", &public])
        .data_dir(dir)
        .spawn();
    boot.ready();
    boot
}

/// The peer connections `node`'s `/status` lists, by peer id: "direct" or "relayed".
fn paths(node: &mut NodeProc) -> HashMap<String, String> {
    let status = node.status();
    status["connections"]
        .as_array()
        .map(|all| all.iter().map(|c| (str_of(c, "peer_id").to_string(), str_of(c, "path").to_string())).collect())
        .unwrap_or_default()
}

/// Waits until `node` is connected to every peer of `peers` (by any path); their paths then.
fn await_connected(node: &mut NodeProc, peers: &[String], limit: Duration) -> HashMap<String, String> {
    let deadline = Instant::now() + limit;
    loop {
        let now = paths(node);
        if peers.iter().all(|p| now.contains_key(p)) || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until `node` has shown each of `texts` in `room`; how often it showed each.
fn await_room_texts(node: &mut NodeProc, room: &str, texts: &[String], limit: Duration) -> HashMap<String, usize> {
    let deadline = Instant::now() + limit;
    let mut seen: HashMap<String, usize> = HashMap::new();
    loop {
        for v in node.take_within(Duration::from_millis(200)) {
            if v["type"] == "message" && v["room"] == room {
                *seen.entry(str_of(&v, "text").to_string()).or_default() += 1;
            }
        }
        if texts.iter().all(|t| seen.contains_key(t)) || Instant::now() > deadline {
            for v in node.take_within(Duration::from_millis(500)) {
                if v["type"] == "message" && v["room"] == room {
                    *seen.entry(str_of(&v, "text").to_string()).or_default() += 1;
                }
            }
            return seen;
        }
    }
}

fn assert_all_once(who: &str, seen: &HashMap<String, usize>, texts: &[String]) {
    let lost: Vec<&String> = texts.iter().filter(|t| !seen.contains_key(*t)).collect();
    let twice: Vec<&String> = texts.iter().filter(|t| seen.get(*t).is_some_and(|n| *n > 1)).collect();
    assert!(lost.is_empty() && twice.is_empty(), "{who}: lost {lost:?}, shown twice {twice:?}");
}

#[test]
fn two_offices_behind_nat_share_rooms_and_messages_through_the_relay() {
    let Some(sites) = Sites::start(1, &[2, 2]) else { return };
    let boot_dir = tempfile::tempdir().unwrap();
    let mut boot = start_bootstrap(&sites, boot_dir.path());
    let boot_id = boot.ready_peer_id();
    let boot_ready = boot.history().iter().find(|v| v["type"] == "ready").cloned().expect("ready");
    let peer_arg = format!("/ip4/{PUBLIC_NET}.2/tcp/{BOOT_PORT}/p2p/{boot_id}");

    let started = Instant::now();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut users: Vec<NodeProc> = (0..4)
        .map(|i| {
            let (office, host) = (i / 2, i % 2);
            let mut node = sites
                .office_node(office, host, NAMES[i])
                .args(&["--peer", &peer_arg])
                .trusting(&boot_ready)
                .data_dir(dirs[i].path())
                .spawn();
            node.ready();
            node
        })
        .collect();
    for (i, user) in users.iter_mut().enumerate() {
        register(user, NAMES[i], PASSWORDS[i]);
    }
    let ids: Vec<String> = users.iter().map(NodeProc::ready_peer_id).collect();

    // Every node sees the other three online.
    for (i, user) in users.iter_mut().enumerate() {
        for (j, name) in NAMES.iter().enumerate() {
            if i != j {
                wait_online(user, name);
            }
        }
    }

    // Each node is connected to both nodes of the other office, relayed or direct.
    let limit = Duration::from_secs(60);
    let mut direct_pairs = 0;
    for i in 0..4 {
        let others: Vec<String> = (0..4).filter(|j| j / 2 != i / 2).map(|j| ids[j].clone()).collect();
        let now = await_connected(&mut users[i], &others, limit);
        for other in &others {
            let path = now.get(other).unwrap_or_else(|| {
                panic!("{} is not connected to {other} after {limit:?}: {now:?}\n{}", NAMES[i], users[i].stderr_text())
            });
            assert!(path == "direct" || path == "relayed", "{path}");
            if path == "direct" {
                direct_pairs += 1;
            }
        }
    }
    println!(
        "office-to-office connections direct: {direct_pairs} of 8 (each pair seen from both ends), {:?} after start",
        started.elapsed()
    );

    // A room with members in both offices carries messages both ways.
    users[0].send("/create lobby");
    users[0].wait_for("created", |v| v["type"] == "room_created" && v["room"] == "lobby");
    for user in users.iter_mut().skip(1) {
        join_room(user, "lobby");
    }
    let texts: Vec<String> = (0..10).flat_map(|i| [format!("alice {i}"), format!("carol {i}")]).collect();
    for i in 0..10 {
        users[0].send(&format!("alice {i}"));
        users[2].send(&format!("carol {i}"));
    }
    for (i, user) in users.iter_mut().enumerate() {
        let seen = await_room_texts(user, "lobby", &texts, Duration::from_secs(30));
        assert_all_once(NAMES[i], &seen, &texts);
    }

    // A direct message crosses.
    users[0].send("/msg dave across the wire");
    let sent = users[0].wait_for("dm sent", |v| v["type"] == "dm" && v["text"] == "across the wire");
    users[3].wait_for("dm arrived", |v| v["type"] == "dm" && v["from"] == "alice" && v["text"] == "across the wire");
    let id = str_of(&sent, "id").to_string();
    users[0].wait_for("receipt", |v| v["type"] == "delivered" && v["id"] == id.as_str());

    // The relay goes away: what became direct goes on at once.
    let before: Vec<HashMap<String, String>> = users.iter_mut().map(paths).collect();
    boot.kill();
    let direct_across = (0..4).find_map(|i| {
        (0..4).find(|&j| j / 2 != i / 2 && before[i].get(&ids[j]).is_some_and(|p| p == "direct")).map(|j| (i, j))
    });
    if let Some((i, j)) = direct_across {
        let text = format!("{} without the relay", NAMES[i]);
        users[i].send(&text);
        let seen = await_room_texts(&mut users[j], "lobby", std::slice::from_ref(&text), Duration::from_secs(15));
        assert_all_once(NAMES[j], &seen, std::slice::from_ref(&text));
    }

    // It comes back where it was: relayed connections come back through it.
    std::thread::sleep(Duration::from_secs(3));
    let mut boot = start_bootstrap(&sites, boot_dir.path());
    let back = Instant::now();
    for i in 0..4 {
        let others: Vec<String> = (0..4).filter(|j| j / 2 != i / 2).map(|j| ids[j].clone()).collect();
        let now = await_connected(&mut users[i], &others, limit);
        for other in &others {
            assert!(now.contains_key(other), "{} not connected to {other} again: {now:?}", NAMES[i]);
        }
    }
    println!("every office-to-office pair connected again {:?} after the relay came back", back.elapsed());
    let texts: Vec<String> = (0..5).flat_map(|i| [format!("bob again {i}"), format!("dave again {i}")]).collect();
    for i in 0..5 {
        users[1].send(&format!("bob again {i}"));
        users[3].send(&format!("dave again {i}"));
    }
    for (i, user) in users.iter_mut().enumerate() {
        let seen = await_room_texts(user, "lobby", &texts, Duration::from_secs(30));
        assert_all_once(NAMES[i], &seen, &texts);
    }
    boot.kill();
}
