//! Figure 2: room throughput with 8 members and every member sending, meshchat against
//! ngircd: first a paced load of 1,000 messages/s for 4 s (is anything lost?), then every
//! sender at full speed (how many messages a second get through, and is anything lost?).
//!
//! meshchat holds each user to 100 room messages a second with bursts of 500
//! (`MESSAGE_BURST`, `MESSAGES_PER_SEC`), so each run stays within 500 messages per sender and
//! the runs are 6 s apart, for the buckets to fill again: the figure is the network's and the
//! nodes' capacity, not the policy's, which alone caps 8 senders at 800 messages/s sustained.

use std::time::Duration;

use super::irc::{IrcRoom, Ngircd};
use super::mesh::MeshRoom;
use super::report::{Better, Row, Runs};
use super::timing::{self, Outcome, Room};

const MEMBERS: usize = 8;
const PER_SENDER: usize = 500;
/// 8 senders, one message each every 8 ms: 1,000 messages/s.
const PACED_GAP: Duration = Duration::from_millis(8);
const REFILL: Duration = Duration::from_secs(6);

async fn measure<R: Room + Sync>(room: &mut R, reps: usize, name: &str) -> (Vec<Outcome>, Vec<Outcome>) {
    let senders: Vec<usize> = (0..MEMBERS).collect();
    let wait = Duration::from_secs(10);
    let (mut paced, mut full) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let o = timing::run(room, &senders, PER_SENDER, PACED_GAP, wait).await;
        eprintln!(
            "  throughput {name} paced: {:.0}/s, {}/{} delivered, p99 {:.2} ms",
            o.rate(),
            o.delivered,
            o.expected,
            o.percentile_ms(0.99)
        );
        paced.push(o);
        tokio::time::sleep(REFILL).await;
        let o = timing::run(room, &senders, PER_SENDER, Duration::ZERO, wait).await;
        eprintln!("  throughput {name} full speed: {:.0}/s, {}/{} delivered", o.rate(), o.delivered, o.expected);
        full.push(o);
        tokio::time::sleep(REFILL).await;
    }
    (paced, full)
}

pub async fn run(ircd: &Ngircd, reps: usize) -> Vec<Row> {
    let mut room = MeshRoom::start(MEMBERS).await;
    let (mesh_paced, mesh_full) = measure(&mut room, reps, "meshchat").await;
    room.stop().await;
    let mut room = IrcRoom::start(ircd.port, MEMBERS).await;
    let (irc_paced, irc_full) = measure(&mut room, reps, "ngircd").await;
    room.stop().await;

    let lost = |runs: &[Outcome]| runs.iter().map(Outcome::lost).sum::<usize>();
    let expected: usize = mesh_full.iter().map(|o| o.expected).sum();
    let mesh = Runs::new(mesh_full.iter().map(Outcome::rate).collect());
    let anchor = Runs::new(irc_full.iter().map(Outcome::rate).collect());
    let ratio = mesh.median() / anchor.median();
    let full_lost = lost(&mesh_full);
    let paced_p99 = Runs::new(mesh_paced.iter().map(|o| o.percentile_ms(0.99)).collect());
    let irc_paced_p99 = Runs::new(irc_paced.iter().map(|o| o.percentile_ms(0.99)).collect());
    vec![
        Row {
            figure: 2,
            what: format!("room throughput, {MEMBERS} members all sending {PER_SENDER} at full speed"),
            unit: "msg/s".into(),
            meshchat: mesh.clone(),
            anchor_name: "ngircd".into(),
            anchor: Some(anchor),
            better: Better::Higher,
            goal: "≥ 1,000/s, ≥ 0.5× ngircd, none lost".into(),
            met: Some(mesh.median() >= 1000.0 && ratio >= 0.5 && full_lost == 0),
            note: format!(
                "a message counts when it has reached all {} other members; deliveries lost over {reps} runs: meshchat {full_lost} of {expected}, ngircd {}",
                MEMBERS - 1,
                lost(&irc_full)
            ),
        },
        Row {
            figure: 2,
            what: format!("room at 1,000 msg/s offered ({MEMBERS} senders × 125/s, 4 s): delivery p99"),
            unit: "ms".into(),
            meshchat: paced_p99,
            anchor_name: "ngircd".into(),
            anchor: Some(irc_paced_p99),
            better: Better::Lower,
            goal: "none lost".into(),
            met: Some(lost(&mesh_paced) == 0),
            note: format!("deliveries lost: meshchat {}, ngircd {}", lost(&mesh_paced), lost(&irc_paced)),
        },
    ]
}
