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
use support::sites::{Nat, PUBLIC_NET, Sites};

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

/// Each user's peers at the other office.
fn across(ids: &[String], i: usize) -> Vec<String> {
    (0..4).filter(|j| j / 2 != i / 2).map(|j| ids[j].clone()).collect()
}

/// A bootstrap node serving reach on the public segment, and alice and bob in office 1 (behind
/// a port-preserving NAT), carol and dave in office 2 (behind `second`), all registered and
/// online, each connected to both users of the other office (their paths then, by user).
struct Offices {
    sites: Sites,
    boot_dir: tempfile::TempDir,
    boot: NodeProc,
    _dirs: Vec<tempfile::TempDir>,
    users: Vec<NodeProc>,
    ids: Vec<String>,
    /// When the users' nodes were started.
    started: Instant,
}

fn offices(second: Nat) -> Option<(Offices, Vec<HashMap<String, String>>)> {
    let Offices { sites, boot_dir, boot, _dirs: dirs, mut users, ids, started } = start_offices(second)?;
    for (i, user) in users.iter_mut().enumerate() {
        for (j, name) in NAMES.iter().enumerate() {
            if i != j {
                wait_online(user, name);
            }
        }
        // `/who` lists the other three (asked again for a few seconds should presence have
        // moved meanwhile: a presence event says why).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            user.send("/who");
            let online = user.wait_type("online");
            let who: Vec<String> = online["users"]
                .as_array()
                .map(|u| u.iter().map(|u| str_of(u, "user").to_string()).collect())
                .unwrap_or_default();
            let lacking: Vec<&str> = NAMES
                .iter()
                .enumerate()
                .filter(|(j, n)| *j != i && !who.iter().any(|w| w == *n))
                .map(|(_, n)| *n)
                .collect();
            if lacking.is_empty() {
                break;
            }
            let presence: Vec<&serde_json::Value> = user.history().iter().filter(|v| v["type"] == "presence").collect();
            println!("{}'s /who lacks {lacking:?}; presence so far: {presence:?}", NAMES[i]);
            assert!(Instant::now() < deadline, "{}'s /who lacks {lacking:?}: {who:?}", NAMES[i]);
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let limit = Duration::from_secs(60);
    let mut all_paths = Vec::new();
    for i in 0..4 {
        let others = across(&ids, i);
        let now = await_connected(&mut users[i], &others, limit);
        for other in &others {
            assert!(
                now.contains_key(other),
                "{} is not connected to {other} after {limit:?}: {now:?}\n{}",
                NAMES[i],
                users[i].stderr_text()
            );
        }
        all_paths.push(now);
    }
    println!("every office-to-office pair connected {:?} after the nodes started", started.elapsed());
    Some((Offices { sites, boot_dir, boot, _dirs: dirs, users, ids, started }, all_paths))
}

/// The same, with everyone registered, at once (not waiting for anything more).
fn start_offices(second: Nat) -> Option<Offices> {
    let sites = Sites::start(1, &[(2, Nat::PortPreserving), (2, second)])?;
    let boot_dir = tempfile::tempdir().unwrap();
    let boot = start_bootstrap(&sites, boot_dir.path());
    let boot_id = boot.ready_peer_id();
    let boot_ready = boot.history().iter().find(|v| v["type"] == "ready").cloned().expect("ready");
    let peer_arg = format!("/ip4/{PUBLIC_NET}.2/tcp/{BOOT_PORT}/p2p/{boot_id}");
    let started = Instant::now();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut users: Vec<NodeProc> = (0..4)
        .map(|i| {
            let mut node = sites
                .office_node(i / 2, i % 2, NAMES[i])
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
    Some(Offices { sites, boot_dir, boot, _dirs: dirs, users, ids, started })
}

/// Alice creates #lobby and the others join; then `senders` each say `count` numbered lines,
/// and every user shows every line once.
fn room_carries(users: &mut [NodeProc], senders: &[usize], tag: &str, count: usize) {
    let texts: Vec<String> =
        (0..count).flat_map(|n| senders.iter().map(move |s| format!("{} {tag} {n}", NAMES[*s]))).collect();
    for n in 0..count {
        for &s in senders {
            users[s].send(&format!("{} {tag} {n}", NAMES[s]));
        }
    }
    for (i, user) in users.iter_mut().enumerate() {
        let seen = await_room_texts(user, "lobby", &texts, Duration::from_secs(30));
        assert_all_once(NAMES[i], &seen, &texts);
    }
}

fn make_lobby(users: &mut [NodeProc]) {
    users[0].send("/create lobby");
    users[0].wait_for("created", |v| v["type"] == "room_created" && v["room"] == "lobby");
    for user in users.iter_mut().skip(1) {
        join_room(user, "lobby");
    }
}

/// Alice writes to dave, who gets it, and alice gets the receipt.
fn dm_crosses(users: &mut [NodeProc], text: &str) {
    users[0].send(&format!("/msg dave {text}"));
    let sent = users[0].wait_for("dm sent", |v| v["type"] == "dm" && v["text"] == text);
    users[3].wait_for("dm arrived", |v| v["type"] == "dm" && v["from"] == "alice" && v["text"] == text);
    let id = str_of(&sent, "id").to_string();
    users[0].wait_for("receipt", |v| v["type"] == "delivered" && v["id"] == id.as_str());
}

fn assert_all_once(who: &str, seen: &HashMap<String, usize>, texts: &[String]) {
    let lost: Vec<&String> = texts.iter().filter(|t| !seen.contains_key(*t)).collect();
    let twice: Vec<&String> = texts.iter().filter(|t| seen.get(*t).is_some_and(|n| *n > 1)).collect();
    assert!(lost.is_empty() && twice.is_empty(), "{who}: lost {lost:?}, shown twice {twice:?}");
}

#[test]
fn two_offices_behind_nat_share_rooms_and_messages_and_punch_through() {
    let Some((mut o, _)) = offices(Nat::PortPreserving) else { return };

    // Where the NATs let it, the relayed connections give way to direct ones (DCUtR); each move
    // is told once.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let mut direct = 0;
    while Instant::now() < deadline {
        direct = 0;
        for i in 0..4 {
            let now = paths(&mut o.users[i]);
            direct += across(&o.ids, i).iter().filter(|p| now.get(*p).is_some_and(|p| p == "direct")).count();
        }
        if direct == 8 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "office-to-office connections direct: {direct} of 8 (each pair from both ends), {:?} later",
        started.elapsed()
    );
    for user in o.users.iter() {
        let told: Vec<&serde_json::Value> =
            user.history().iter().filter(|v| v["type"] == "peer" && v["state"] == "direct").collect();
        let mut peers: Vec<&str> = told.iter().map(|v| str_of(v, "peer_id")).collect();
        peers.sort();
        peers.dedup();
        assert_eq!(peers.len(), told.len(), "{}: a move to direct told twice: {told:?}", user.name);
    }

    make_lobby(&mut o.users);
    room_carries(&mut o.users, &[0, 2], "hello", 10);
    dm_crosses(&mut o.users, "across the wire");

    // The relay goes away: what became direct goes on.
    let before: Vec<HashMap<String, String>> = o.users.iter_mut().map(paths).collect();
    o.boot.kill();
    let direct_across = (0..4).find_map(|i| {
        across(&o.ids, i).into_iter().position(|p| before[i].get(&p).is_some_and(|p| p == "direct")).map(|k| {
            let j = (0..4).filter(|j| j / 2 != i / 2).nth(k).unwrap_or(0);
            (i, j)
        })
    });
    if let Some((i, j)) = direct_across {
        let text = format!("{} without the relay", NAMES[i]);
        o.users[i].send(&text);
        let seen = await_room_texts(&mut o.users[j], "lobby", std::slice::from_ref(&text), Duration::from_secs(15));
        assert_all_once(NAMES[j], &seen, std::slice::from_ref(&text));
    }

    // It comes back where it was, and the nodes hold reservations at it again.
    std::thread::sleep(Duration::from_secs(3));
    let mut boot = start_bootstrap(&o.sites, o.boot_dir.path());
    let relay_id = boot.ready_peer_id();
    for user in o.users.iter_mut() {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = user.status();
            if status["relay"] == relay_id.as_str() {
                break;
            }
            assert!(Instant::now() < deadline, "{}: no reservation at the relay again: {status}", user.name);
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    room_carries(&mut o.users, &[1, 3], "again", 5);
    boot.kill();
}

#[test]
fn an_office_behind_a_symmetric_nat_is_reached_through_the_relay() {
    let Some((mut o, all_paths)) = offices(Nat::Symmetric) else { return };
    // No hole can be punched through a NAT that maps each connection to a port of its own:
    // every office-to-office connection is relayed, and /status says so.
    for (i, now) in all_paths.iter().enumerate() {
        for other in across(&o.ids, i) {
            assert_eq!(now.get(&other).map(String::as_str), Some("relayed"), "{}: {now:?}", NAMES[i]);
        }
    }
    make_lobby(&mut o.users);
    room_carries(&mut o.users, &[0, 2], "relayed", 10);
    dm_crosses(&mut o.users, "through the relay");
    // AutoNAT's dial back never arrives behind a NAT: each node learns it is not reachable from
    // outside (the dial back is dropped, so this takes the dial's time-out), and /status says
    // through which relay it is reached.
    for user in o.users.iter_mut() {
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            let status = user.status();
            if status["reachability"] == "private" && status["relay"].is_string() {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {status}", user.name);
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    // The relay goes away and its circuits with it; they come back when it returns.
    o.boot.kill();
    for i in 0..4 {
        for other in across(&o.ids, i) {
            o.users[i].wait_peer(&other, "disconnected");
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut boot = start_bootstrap(&o.sites, o.boot_dir.path());
    let back = Instant::now();
    for (i, user) in o.users.iter_mut().enumerate() {
        let others = across(&o.ids, i);
        let now = await_connected(user, &others, Duration::from_secs(60));
        for other in &others {
            assert_eq!(now.get(other).map(String::as_str), Some("relayed"), "{} again: {now:?}", NAMES[i]);
        }
    }
    println!("every office-to-office pair relayed again {:?} after the relay came back", back.elapsed());
    room_carries(&mut o.users, &[1, 3], "back", 5);
    boot.kill();
}

/// The median of `values` (sorted in place).
fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// How long room messages from `from` take to show at `to`: the median of `count`, one at a time.
fn fan_out(users: &mut [NodeProc], from: usize, to: usize, tag: &str, count: usize) -> Duration {
    let mut times = Vec::new();
    for n in 0..count {
        let text = format!("{tag} {n}");
        let sent = Instant::now();
        users[from].send(&text);
        let (at, _) = users[to]
            .wait_timed("message", Duration::from_secs(15), |v| v["type"] == "message" && v["text"] == text.as_str());
        times.push(at.saturating_duration_since(sent));
    }
    median(&mut times)
}

/// The figures of BENCHMARKS.md's "Across networks": over 10 starts of two offices behind
/// port-preserving NATs, the share of office-to-office pairs that end direct and the time from
/// the nodes' start until they do; then room latency from alice to bob (the same LAN), to carol
/// punched through, and to carol through the relay (her office behind a symmetric NAT). Run by
/// hand: `CI=true cargo test --release --test across_networks -- --ignored --nocapture`.
#[test]
#[ignore]
fn figures_over_ten_starts() {
    const STARTS: usize = 10;
    let mut direct_pairs = 0;
    let mut all_direct_after = Vec::new();
    let mut lan = Vec::new();
    let mut punched = Vec::new();
    for start in 0..STARTS {
        let Some(mut o) = start_offices(Nat::PortPreserving) else { return };
        let deadline = Instant::now() + Duration::from_secs(30);
        let direct = loop {
            let mut direct = 0;
            for i in 0..4 {
                let now = paths(&mut o.users[i]);
                direct += across(&o.ids, i).iter().filter(|p| now.get(*p).is_some_and(|p| p == "direct")).count();
            }
            if direct == 8 || Instant::now() > deadline {
                break direct;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // Each pair counted once: the pair's two ends agree once settled.
        direct_pairs += direct / 2;
        if direct == 8 {
            all_direct_after.push(o.started.elapsed());
        }
        println!(
            "start {start}: {} of 4 pairs direct, all {:?} after the nodes started",
            direct / 2,
            all_direct_after.last()
        );
        if start == 0 {
            make_lobby(&mut o.users);
            lan.push(fan_out(&mut o.users, 0, 1, "lan", 50));
            punched.push(fan_out(&mut o.users, 0, 2, "punched", 50));
        }
    }
    let Some((mut o, _)) = offices(Nat::Symmetric) else { return };
    make_lobby(&mut o.users);
    let relayed = fan_out(&mut o.users, 0, 2, "relayed", 50);
    let lan_beside = fan_out(&mut o.users, 0, 1, "lan", 50);
    println!(
        "pairs direct: {direct_pairs} of {} ({:.0} %); all four direct after (median of {}): {:?}",
        4 * STARTS,
        100.0 * direct_pairs as f64 / (4 * STARTS) as f64,
        all_direct_after.len(),
        median(&mut all_direct_after)
    );
    println!(
        "room latency, median of 50: LAN {:?} (beside the relay: {:?}), punched through {:?}, through the relay {:?}",
        median(&mut lan),
        lan_beside,
        median(&mut punched),
        relayed
    );
}
