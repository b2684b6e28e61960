//! Discovery on a real LAN of network namespaces: mDNS finds every peer, connections are made
//! from simultaneous discovery without losing a pair, and a killed peer is seen leaving.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Lab, NodeProc};

/// The promise: peers seen within this long of a node's start.
const DISCOVERY_LIMIT: Duration = Duration::from_secs(3);

fn peer_id(ready: &Value) -> String {
    ready["peer_id"].as_str().expect("peer_id").to_string()
}

/// Starts one node on each of the lab's hosts, all at once, and returns them with their ids.
fn start_all(lab: &Lab, round: usize) -> (Vec<NodeProc>, Vec<String>) {
    let mut nodes: Vec<NodeProc> =
        (0..lab.hosts.len()).map(|i| lab.node(i, &format!("r{round}-h{}", i + 1)).spawn()).collect();
    let ids = nodes.iter_mut().map(|n| peer_id(&n.ready())).collect();
    (nodes, ids)
}

/// Every node sees every other connected within `limit` of its start; returns the slowest.
fn all_connected(nodes: &mut [NodeProc], ids: &[String], limit: Duration) -> Duration {
    let mut slowest = Duration::ZERO;
    for (i, node) in nodes.iter_mut().enumerate() {
        for (j, id) in ids.iter().enumerate() {
            if i == j {
                continue;
            }
            let started = node.started;
            let (at, _) = node.wait_timed(&format!("peer {id} connected"), limit + Duration::from_secs(5), |v| {
                v["type"] == "peer" && v["peer_id"] == id.as_str() && v["state"] == "connected"
            });
            let took = at.duration_since(started);
            assert!(took <= limit, "{}: peer {j} connected only after {took:?}", node.name);
            slowest = slowest.max(took);
        }
    }
    slowest
}

/// The node's `/status` lists `expected` peers, now or within a few seconds (a connection
/// dropped during start-up is re-dialled).
fn assert_eventually_connected_to_all(node: &mut NodeProc, expected: usize, round: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = node.status();
        if status["peers"].as_array().map(Vec::len) == Some(expected) {
            return;
        }
        if Instant::now() > deadline {
            let events = node.events_within(Duration::ZERO);
            panic!(
                "{} in round {round} is not connected to all: {status}\nother events: {events:?}\nstderr:\n{}",
                node.name,
                node.stderr_text()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_hosts_find_each_other_by_mdns_and_see_a_kill() {
    let Some(lab) = Lab::start(3) else { return };
    let (mut nodes, ids) = start_all(&lab, 0);
    let slowest = all_connected(&mut nodes, &ids, DISCOVERY_LIMIT);
    eprintln!("slowest start-to-peer: {slowest:?}");

    let ready_listen = nodes[0].status()["listen"].clone();
    assert!(
        ready_listen.as_array().unwrap().iter().any(|a| a.as_str().unwrap().starts_with("/ip4/10.77.0.1/")),
        "listens on the LAN address: {ready_listen}"
    );

    nodes[2].kill();
    let started = Instant::now();
    nodes[0].wait_peer(&ids[2], "disconnected");
    nodes[1].wait_peer(&ids[2], "disconnected");
    eprintln!("kill seen after {:?}", started.elapsed());
    // The survivors stay connected to each other.
    let status = nodes[0].status();
    assert_eq!(status["peers"], serde_json::json!([ids[1]]));
}

#[test]
fn started_together_twenty_times_no_pair_stays_unconnected() {
    let Some(lab) = Lab::start(3) else { return };
    let mut slowest = Duration::ZERO;
    for round in 0..20 {
        let (mut nodes, ids) = start_all(&lab, round);
        slowest = slowest.max(all_connected(&mut nodes, &ids, DISCOVERY_LIMIT));
        for node in &mut nodes {
            assert_eventually_connected_to_all(node, 2, round);
        }
    }
    eprintln!("slowest start-to-peer over 20 rounds: {slowest:?}");
}

#[test]
fn a_host_cut_off_is_noticed_and_reconnected_when_healed() {
    let Some(lab) = Lab::start(2) else { return };
    let (mut nodes, ids) = start_all(&lab, 0);
    all_connected(&mut nodes, &ids, DISCOVERY_LIMIT);

    lab.cut(1);
    nodes[0].wait_peer(&ids[1], "disconnected");
    lab.heal(1);
    let healed = Instant::now();
    nodes[0].wait_peer(&ids[1], "connected");
    eprintln!("reconnected {:?} after the link came back", healed.elapsed());
}
