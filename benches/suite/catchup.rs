//! Figure 7: a late joiner catching up a room. The room is filled with 10,000 messages (20
//! users × 500, each user within meshchat's burst allowance, on short-lived sender nodes),
//! then fresh nodes join; the figure says how many messages were present in the room, how
//! many the joiner has when its join answers and a little later, and how long that took. It
//! reports whatever the catch-up does: today one answer carries the last 500 messages
//! (`SYNC_MESSAGES`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use meshchat::node::{Client, RoomCommand, RoomReply, UiEvent};

use super::report::{Better, Row, Runs};
use crate::support::{Node, PASSWORD, join};

const SENDERS: usize = 20;
const PER_SENDER: usize = 500;
const ROOM: &str = "catchup";
/// How long the joiner's history is watched after its join answered.
const SETTLE: Duration = Duration::from_secs(3);

/// How many messages of the room `client` holds and can read.
async fn history_len(client: &Client) -> usize {
    match client.room(RoomCommand::History(Some(1_000_000))).await {
        Ok(RoomReply::History { messages, .. }) => {
            messages.iter().filter(|m| matches!(m, UiEvent::Message(m) if !m.unreadable)).count()
        }
        _ => 0,
    }
}

fn drain(node: &mut Node) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let mut events = node.take_events();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if matches!(event, UiEvent::Message(_)) {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    count
}

pub async fn run(reps: usize) -> Vec<Row> {
    let mut host = Node::start(true, None).await;
    let addr = host.listen[0].clone();
    drain(&mut host);
    host.client.register("host", PASSWORD).await.unwrap();
    host.client.create_room(ROOM).await.unwrap();
    let mut keeper = Node::start(false, Some(&addr)).await;
    keeper.wait_bootstrap().await;
    let kept = drain(&mut keeper);
    keeper.client.register("keeper", PASSWORD).await.unwrap();
    join(&keeper.client, ROOM).await;

    let fill_start = Instant::now();
    for k in 0..SENDERS {
        let mut sender = Node::start(false, Some(&addr)).await;
        sender.wait_bootstrap().await;
        drain(&mut sender);
        sender.client.register(&format!("filler{k}"), PASSWORD).await.unwrap();
        join(&sender.client, ROOM).await;
        for i in 0..PER_SENDER {
            if let Err(e) = sender.client.send_to_room(ROOM, &format!("fill {k} {i}")).await {
                eprintln!("fill message refused: {e:?}");
            }
        }
        let target = (k + 1) * PER_SENDER;
        let deadline = Instant::now() + Duration::from_secs(10);
        while kept.load(Ordering::Relaxed) < target && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sender.client.shutdown().await;
    }
    let present = history_len(&keeper.client).await;
    eprintln!(
        "  catch-up: {present} messages in the room after {:.1} s of filling",
        fill_start.elapsed().as_secs_f64()
    );

    let (mut at_join, mut settled, mut join_ms, mut settle_ms) = (vec![], vec![], vec![], vec![]);
    for r in 0..reps {
        let mut joiner = Node::start(false, Some(&addr)).await;
        joiner.wait_bootstrap().await;
        drain(&mut joiner);
        joiner.client.register(&format!("joiner{r}"), PASSWORD).await.unwrap();
        // Time the join attempt that succeeds (earlier ones fail fast while no member is known).
        let deadline = Instant::now() + Duration::from_secs(10);
        let (joined_in, started) = loop {
            let t = Instant::now();
            if joiner.client.join_room(ROOM).await.is_ok() {
                break (t.elapsed(), t);
            }
            assert!(Instant::now() < deadline, "cannot join #{ROOM}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let first = history_len(&joiner.client).await;
        let (mut last, mut last_change) = (first, started.elapsed());
        let watch_until = Instant::now() + SETTLE;
        while last < present && Instant::now() < watch_until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let n = history_len(&joiner.client).await;
            if n != last {
                last = n;
                last_change = started.elapsed();
            }
        }
        eprintln!(
            "  catch-up joiner {r}: join answered in {:.1} ms with {first} of {present}; {last} after {:.1} ms",
            joined_in.as_secs_f64() * 1000.0,
            last_change.as_secs_f64() * 1000.0
        );
        at_join.push(first as f64);
        settled.push(last as f64);
        join_ms.push(joined_in.as_secs_f64() * 1000.0);
        settle_ms.push(last_change.as_secs_f64() * 1000.0);
        joiner.client.shutdown().await;
    }
    host.client.shutdown().await;
    keeper.client.shutdown().await;

    let settled = Runs::new(settled);
    let settle_ms = Runs::new(settle_ms);
    let complete = settled.min() >= present as f64 && present >= SENDERS * PER_SENDER;
    let met = complete && settle_ms.max() < 2000.0;
    vec![
        Row {
            figure: 7,
            what: format!("late joiner: messages it reads after catching up (of {present} in the room)"),
            unit: "messages".into(),
            meshchat: settled,
            anchor_name: String::new(),
            anchor: None,
            better: Better::Higher,
            goal: format!("all {} in < 2 s", SENDERS * PER_SENDER),
            met: Some(met),
            note: format!(
                "right when the join answered it had {:.0}; watched {} s more; no anchor (IRC keeps no history)",
                Runs::new(at_join).median(),
                SETTLE.as_secs()
            ),
        },
        Row {
            figure: 7,
            what: "late joiner: join answered (fetch and check included)".into(),
            unit: "ms".into(),
            meshchat: Runs::new(join_ms),
            anchor_name: String::new(),
            anchor: None,
            better: Better::Lower,
            goal: String::new(),
            met: None,
            note: format!("last new message seen {:.0} ms after the join began (median)", settle_ms.median()),
        },
    ]
}
