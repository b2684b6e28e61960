//! Figure 1: room fan-out latency, from the sender's send to each other member's arrival, with
//! 2, 8 and 32 members: meshchat in-process nodes against IRC clients of one ngircd, timed by
//! the same code.

use std::time::Duration;

use super::irc::{IrcRoom, Ngircd};
use super::mesh::MeshRoom;
use super::report::{Better, Row, Runs};
use super::timing::{self, Outcome};

/// (members, messages per run, gap between messages). Enough messages that a run's p99 rests
/// on several of its slowest, not on one or two; few enough that the sender stays within
/// meshchat's per-user limit (bursts of 500, then 100 a second): 600 in 3 s.
const SIZES: [(usize, usize, Duration); 3] =
    [(2, 600, Duration::from_millis(5)), (8, 600, Duration::from_millis(5)), (32, 300, Duration::from_millis(20))];

fn summary(o: &Outcome) -> String {
    let store = if o.store_cpu.is_zero() {
        String::new()
    } else {
        format!(" ({:.0} µs on store workers)", o.store_cpu_per_delivery_us())
    };
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, {}/{} delivered, {:.0} µs CPU per delivery{store}",
        o.percentile_ms(0.5),
        o.percentile_ms(0.99),
        o.delivered,
        o.expected,
        o.cpu_per_delivery_us(),
    )
}

pub async fn run(ircd: &Ngircd, reps: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    let only: Option<Vec<usize>> = crate::env_list("SUITE_SIZES");
    for (size, messages, gap) in SIZES {
        if only.as_ref().is_some_and(|only| !only.contains(&size)) {
            continue;
        }
        let wait = Duration::from_secs(5);
        // A fresh room for every run: a run that overloads the nodes must not slow the next.
        let (mut mesh_runs, mut irc_runs) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let mut room = MeshRoom::start(size).await;
            let o = timing::run(&mut room, &[0], messages, gap, wait).await;
            eprintln!("  fan-out meshchat {size}: {}", summary(&o));
            mesh_runs.push(o);
            room.stop().await;
            let mut room = IrcRoom::start(ircd, size).await;
            let o = timing::run(&mut room, &[0], messages, gap, wait).await;
            eprintln!("  fan-out ngircd {size}: {}", summary(&o));
            irc_runs.push(o);
            room.stop().await;
        }

        let lost: usize = mesh_runs.iter().map(Outcome::lost).sum();
        let irc_lost: usize = irc_runs.iter().map(Outcome::lost).sum();
        let delivered = format!(
            "{messages} messages × {} receivers × {reps} runs, one every {} ms; lost: meshchat {lost}, ngircd {irc_lost}",
            size - 1,
            gap.as_millis()
        );
        for (p, label) in [(0.5, "p50"), (0.99, "p99")] {
            let mesh = Runs::new(mesh_runs.iter().map(|o| o.percentile_ms(p)).collect());
            let anchor = Runs::new(irc_runs.iter().map(|o| o.percentile_ms(p)).collect());
            let ratio = mesh.median() / anchor.median();
            let (goal, met) = if p < 0.9 {
                (String::new(), None)
            } else {
                let factor = if size <= 8 { 2.0 } else { 3.0 };
                let mut goal = format!("≤ {factor:.0}× ngircd");
                let mut met = ratio <= factor && lost == 0;
                if size <= 8 {
                    goal.push_str(" and < 5 ms");
                    met &= mesh.median() < 5.0;
                }
                (goal, Some(met))
            };
            rows.push(Row {
                figure: 1,
                what: format!("room fan-out latency {label}, {size} members"),
                unit: "ms".into(),
                meshchat: mesh,
                anchor_name: "ngircd".into(),
                anchor: Some(anchor),
                better: Better::Lower,
                goal,
                met,
                note: if p < 0.9 { delivered.clone() } else { String::new() },
            });
        }
        rows.push(Row {
            figure: 1,
            what: format!("CPU per delivery, {size} members (every process that carries the room)"),
            unit: "µs".into(),
            meshchat: Runs::new(mesh_runs.iter().map(Outcome::cpu_per_delivery_us).collect()),
            anchor_name: "ngircd".into(),
            anchor: Some(Runs::new(irc_runs.iter().map(Outcome::cpu_per_delivery_us).collect())),
            better: Better::Lower,
            goal: String::new(),
            met: None,
            note: "from the first send to the last arrival: the nodes (their idle work included), or ngircd and its clients".into(),
        });
    }
    rows
}
