//! Benchmark (not a test): room fan-out latency, from one member's send to each other member's
//! `message` event, in a room of 8 nodes on loopback (one process, real sockets).
//!
//! ```sh
//! cargo bench --bench rooms
//! ```
//! Goal: p99 < 5 ms. `ROOM_NODES=N` runs it with N nodes instead.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use meshchat::node::UiEvent;
use support::{ms, percentile};
use tokio::sync::mpsc;

const DEFAULT_NODES: usize = 8;
const MESSAGES: usize = 200;
const GAP: Duration = Duration::from_millis(5);
const BURST: usize = 250;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let size: usize = std::env::var("ROOM_NODES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_NODES).max(2);
    let mut nodes = support::room_of(size, "bench").await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Every receiver reports (receiver, index, arrival) for each bench message.
    let (arrivals_tx, mut arrivals) = mpsc::unbounded_channel();
    let client = nodes[0].client.clone();
    let mut sender_events = nodes[0].take_events();
    for (r, node) in nodes.iter_mut().skip(1).enumerate() {
        let tx = arrivals_tx.clone();
        let mut events = node.take_events();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let UiEvent::Message(m) = event {
                    if let Some(i) = m.text.strip_prefix("bench ").and_then(|i| i.parse::<usize>().ok()) {
                        let _ = tx.send((r, i, Instant::now()));
                    } else if m.text.starts_with("burst ") {
                        let _ = tx.send((r, usize::MAX, Instant::now()));
                    }
                }
            }
        });
    }
    drop(arrivals_tx);
    tokio::spawn(async move { while sender_events.recv().await.is_some() {} });

    let mut sent: HashMap<usize, Instant> = HashMap::new();
    for i in 0..MESSAGES {
        sent.insert(i, Instant::now());
        client.send_to_room("bench", &format!("bench {i}")).await.unwrap();
        tokio::time::sleep(GAP).await;
    }
    let expected = MESSAGES * (size - 1);
    let mut latencies = Vec::with_capacity(expected);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while latencies.len() < expected {
        match tokio::time::timeout_at(deadline, arrivals.recv()).await {
            Ok(Some((_, i, at))) if i != usize::MAX => latencies.push(at.duration_since(sent[&i])),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    latencies.sort();
    let received = latencies.len();
    println!("| figure | value | goal |");
    println!("|---|---|---|");
    println!(
        "| room fan-out, {size} nodes, {MESSAGES} messages ({} deliveries expected, {received} made) | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms | p99 < 5 ms: {} |",
        expected,
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap()),
        if received == expected && percentile(&latencies, 0.99) < Duration::from_millis(5) { "met" } else { "missed" }
    );

    // Burst: every member sends BURST messages back to back; deliveries to all others, counted.
    let clients: Vec<_> = nodes.iter().map(|n| n.client.clone()).collect();
    let started = Instant::now();
    let senders: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(s, client)| {
            tokio::spawn(async move {
                for i in 0..BURST {
                    let _ = client.send_to_room("bench", &format!("burst {s} {i}")).await;
                }
            })
        })
        .collect();
    for sender in senders {
        let _ = sender.await;
    }
    let expected = size * BURST * (size - 1);
    let mut delivered = 0;
    let mut last = started;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while delivered < expected {
        match tokio::time::timeout_at(deadline, arrivals.recv()).await {
            Ok(Some((_, usize::MAX, at))) => {
                delivered += 1;
                last = at;
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    let secs = last.duration_since(started).as_secs_f64();
    println!(
        "| burst: {size} members × {BURST} at once ({expected} deliveries expected, {delivered} made) | {:.0} messages/s delivered to all, in {secs:.2} s | none lost: {} |",
        (delivered as f64 / (size - 1) as f64) / secs,
        if delivered == expected { "met" } else { "missed" }
    );
    drop(nodes);
}
