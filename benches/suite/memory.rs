//! Figure 5: memory. The resident set (`VmRSS`) of an idle `meshchat` process, and what each
//! further peer and each room adds (the slope between 0 and N), against the minimal libp2p node
//! (TCP, Noise, yamux, ping) measured the same way. Figure 6, start-up: process spawn to the
//! `ready` line, for both.

use std::path::Path;
use std::time::Duration;

use super::minimal;
use super::process::Proc;
use super::report::{Better, Row, Runs};
use crate::support::{Node, PASSWORD};

const PEERS: usize = 16;
const ROOMS: usize = 20;
const STARTS: usize = 10;
const SETTLE: Duration = Duration::from_millis(1000);

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

async fn idle(binary: &Path, meshchat: bool) -> f64 {
    let mut p = if meshchat { Proc::meshchat(binary, &[]) } else { Proc::minimal() };
    p.ready().await;
    tokio::time::sleep(SETTLE).await;
    let rss = p.rss_kib();
    p.stop().await;
    rss
}

/// KiB per peer: RSS before and after `PEERS` in-process peers have connected.
async fn per_peer(binary: &Path, meshchat: bool) -> f64 {
    let mut p = if meshchat { Proc::meshchat(binary, &[]) } else { Proc::minimal() };
    let (addr, _) = p.ready().await;
    tokio::time::sleep(SETTLE).await;
    let before = p.rss_kib();
    let mut nodes = Vec::new();
    let mut dialers = Vec::new();
    for _ in 0..PEERS {
        if meshchat {
            let mut node = Node::start(false, Some(&addr)).await;
            let mut events = node.take_events();
            tokio::spawn(async move { while events.recv().await.is_some() {} });
            nodes.push(node);
        } else {
            dialers.push(minimal::dialer(&addr).await);
        }
    }
    p.connected(PEERS).await;
    tokio::time::sleep(SETTLE).await;
    let after = p.rss_kib();
    p.stop().await;
    for node in &nodes {
        node.client.shutdown().await;
    }
    for d in dialers {
        d.abort();
    }
    (after - before) / PEERS as f64
}

/// KiB per room: RSS of a logged-in node before and after creating `ROOMS` rooms.
async fn per_room(binary: &Path) -> f64 {
    let mut p = Proc::meshchat(binary, &["--bootstrap"]);
    p.ready().await;
    p.send_line("/register benchuser").await;
    p.send_line(PASSWORD).await;
    p.wait(Duration::from_secs(20), |v| v["type"] == "logged_in").await;
    tokio::time::sleep(SETTLE).await;
    let before = p.rss_kib();
    for i in 0..ROOMS {
        p.send_line(&format!("/create room{i}")).await;
    }
    for _ in 0..ROOMS {
        p.wait(Duration::from_secs(20), |v| v["type"] == "room_created").await;
    }
    tokio::time::sleep(SETTLE).await;
    let after = p.rss_kib();
    p.stop().await;
    (after - before) / ROOMS as f64
}

pub async fn run(binary: &Path, reps: usize) -> Vec<Row> {
    let (mut idle_m, mut idle_a, mut peer_m, mut peer_a, mut room_m) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..reps {
        idle_m.push(mib(idle(binary, true).await));
        idle_a.push(mib(idle(binary, false).await));
        peer_m.push(per_peer(binary, true).await);
        peer_a.push(per_peer(binary, false).await);
        room_m.push(per_room(binary).await);
        eprintln!(
            "  memory: idle {:.1} / {:.1} MiB, per peer {:.0} / {:.0} KiB, per room {:.0} KiB",
            idle_m.last().unwrap(),
            idle_a.last().unwrap(),
            peer_m.last().unwrap(),
            peer_a.last().unwrap(),
            room_m.last().unwrap()
        );
    }
    let minimal = "minimal libp2p node (tcp, noise, yamux, ping)";
    vec![
        Row {
            figure: 5,
            what: "RSS of an idle node (process, after `ready`)".into(),
            unit: "MiB".into(),
            meshchat: Runs::new(idle_m),
            anchor_name: minimal.into(),
            anchor: Some(Runs::new(idle_a)),
            better: Better::Lower,
            goal: String::new(),
            met: None,
            note: "meshchat started with `--no-mdns --listen /ip4/127.0.0.1/tcp/0 --json`, not logged in; VmRSS read 1 s after `ready`".into(),
        },
        Row {
            figure: 5,
            what: format!("RSS per connected peer (slope over {PEERS} peers)"),
            unit: "KiB".into(),
            meshchat: Runs::new(peer_m),
            anchor_name: minimal.into(),
            anchor: Some(Runs::new(peer_a)),
            better: Better::Lower,
            goal: String::new(),
            met: None,
            note: "peers are in-process nodes of the same kind dialling the measured process".into(),
        },
        Row {
            figure: 5,
            what: format!("RSS per room (slope over {ROOMS} rooms created)"),
            unit: "KiB".into(),
            meshchat: Runs::new(room_m),
            anchor_name: String::new(),
            anchor: None,
            better: Better::Lower,
            goal: String::new(),
            met: None,
            note: "no anchor: the minimal node has no rooms; a node with `--bootstrap`, logged in, alone".into(),
        },
    ]
}

pub async fn startup(binary: &Path) -> Vec<Row> {
    let (mut m, mut a) = (Vec::new(), Vec::new());
    for _ in 0..STARTS {
        let mut p = Proc::meshchat(binary, &[]);
        m.push(p.ready().await.1.as_secs_f64() * 1000.0);
        p.stop().await;
        let mut p = Proc::minimal();
        a.push(p.ready().await.1.as_secs_f64() * 1000.0);
        p.stop().await;
    }
    eprintln!("  start-up: meshchat {m:.1?} ms, minimal {a:.1?} ms");
    vec![Row {
        figure: 6,
        what: format!("start-up, process spawn to `ready` ({STARTS} starts, fresh data dir)"),
        unit: "ms".into(),
        meshchat: Runs::new(m),
        anchor_name: "minimal libp2p node".into(),
        anchor: Some(Runs::new(a)),
        better: Better::Lower,
        goal: String::new(),
        met: None,
        note: "spread is over the single starts; a fresh data dir means a new key and a new SQLite file each time"
            .into(),
    }]
}
