//! Figure 2: room throughput with 8 members, every member sending, meshchat against ngircd, each
//! run in a fresh room. A ladder of offered loads (200, 400, 800 and 1,000 messages/s for 4 s,
//! spread over the 8 senders) gives the highest load carried with nothing lost and the delivery
//! p99 at 1,000/s; a burst (every sender 500 back to back) gives what gets through at full
//! speed, and what is lost.
//!
//! meshchat holds each user to 100 room messages a second with bursts of 500
//! (`MESSAGE_BURST`, `MESSAGES_PER_SEC`); every run stays within 500 messages per sender, so
//! no message is refused for the rate: the figures are the nodes' capacity, not the policy's,
//! which alone caps 8 senders at 800 messages/s sustained.

use std::time::Duration;

use super::irc::{IrcRoom, Ngircd};
use super::mesh::MeshRoom;
use super::report::{Better, Row, Runs};
use super::timing::{self, Outcome, Room};

const MEMBERS: usize = 8;
const BURST: usize = 500;
/// Offered loads of the ladder, messages per second over all senders.
const LADDER: [usize; 4] = [200, 400, 800, 1000];
const STEP: Duration = Duration::from_secs(4);
const WAIT: Duration = Duration::from_secs(10);

/// One ladder step or burst on a fresh room: `rate` messages/s offered, or back to back if 0.
async fn once(ircd: Option<&Ngircd>, rate: usize) -> Outcome {
    let senders: Vec<usize> = (0..MEMBERS).collect();
    let (per_sender, gap) = if rate == 0 {
        (BURST, Duration::ZERO)
    } else {
        let per_sender_rate = rate / MEMBERS;
        (per_sender_rate * STEP.as_secs() as usize, Duration::from_secs(1) / per_sender_rate as u32)
    };
    async fn go<R: Room + Sync>(room: &mut R, senders: &[usize], per_sender: usize, gap: Duration) -> Outcome {
        timing::run(room, senders, per_sender, gap, WAIT).await
    }
    match ircd {
        None => {
            let mut room = MeshRoom::start(MEMBERS).await;
            let o = go(&mut room, &senders, per_sender, gap).await;
            room.stop().await;
            o
        }
        Some(ircd) => {
            let mut room = IrcRoom::start(ircd, MEMBERS).await;
            let o = go(&mut room, &senders, per_sender, gap).await;
            room.stop().await;
            o
        }
    }
}

struct Measured {
    /// Highest ladder load with nothing lost, per run (0 if none).
    carried: Vec<f64>,
    /// Delivery p99 at the top of the ladder, per run.
    top_p99: Vec<f64>,
    top_lost: usize,
    burst: Vec<Outcome>,
}

async fn measure(ircd: Option<&Ngircd>, reps: usize) -> Measured {
    let name = if ircd.is_some() { "ngircd" } else { "meshchat" };
    let mut m = Measured { carried: vec![], top_p99: vec![], top_lost: 0, burst: vec![] };
    for _ in 0..reps {
        let mut carried = 0.0;
        let mut failed = false;
        for rate in LADDER {
            let o = once(ircd, rate).await;
            eprintln!(
                "  throughput {name} offered {rate}/s: {:.0}/s, {}/{} delivered, p99 {:.2} ms",
                o.rate(),
                o.delivered,
                o.expected,
                o.percentile_ms(0.99)
            );
            if o.lost() == 0 && !failed {
                carried = rate as f64;
            } else {
                failed = true;
            }
            if rate == *LADDER.last().unwrap() {
                m.top_p99.push(o.percentile_ms(0.99));
                m.top_lost += o.lost();
            }
        }
        m.carried.push(carried);
        let o = once(ircd, 0).await;
        eprintln!("  throughput {name} burst: {:.0}/s, {}/{} delivered", o.rate(), o.delivered, o.expected);
        m.burst.push(o);
    }
    m
}

pub async fn run(ircd: &Ngircd, reps: usize) -> Vec<Row> {
    let mesh = measure(None, reps).await;
    let irc = measure(Some(ircd), reps).await;
    let lost = |runs: &[Outcome]| runs.iter().map(Outcome::lost).sum::<usize>();
    let expected: usize = mesh.burst.iter().map(|o| o.expected).sum();
    let carried = Runs::new(mesh.carried);
    let burst = Runs::new(mesh.burst.iter().map(Outcome::rate).collect());
    let irc_burst = Runs::new(irc.burst.iter().map(Outcome::rate).collect());
    let burst_lost = lost(&mesh.burst);
    let ladder = LADDER.iter().map(|r| format!("{r}")).collect::<Vec<_>>().join(", ");
    vec![
        Row {
            figure: 2,
            what: format!(
                "room throughput carried with nothing lost, {MEMBERS} members all sending (ladder {ladder}/s, 4 s each)"
            ),
            unit: "msg/s".into(),
            meshchat: carried.clone(),
            anchor_name: "ngircd".into(),
            anchor: Some(Runs::new(irc.carried)),
            better: Better::Higher,
            goal: "≥ 1,000/s".into(),
            met: Some(carried.median() >= 1000.0),
            note: format!(
                "the ladder stops at 1,000/s, so ngircd's value is a lower bound; at 1,000/s offered, deliveries lost: meshchat {}, ngircd {}",
                mesh.top_lost, irc.top_lost
            ),
        },
        Row {
            figure: 2,
            what: "room delivery p99 at 1,000 msg/s offered (8 senders × 125/s)".into(),
            unit: "ms".into(),
            meshchat: Runs::new(mesh.top_p99),
            anchor_name: "ngircd".into(),
            anchor: Some(Runs::new(irc.top_p99)),
            better: Better::Lower,
            goal: String::new(),
            met: None,
            note: String::new(),
        },
        Row {
            figure: 2,
            what: format!("room burst: every member sends {BURST} back to back, messages/s delivered to all"),
            unit: "msg/s".into(),
            meshchat: burst.clone(),
            anchor_name: "ngircd".into(),
            anchor: Some(irc_burst.clone()),
            better: Better::Higher,
            goal: "≥ 0.5× ngircd, none lost".into(),
            met: Some(burst.median() / irc_burst.median() >= 0.5 && burst_lost == 0),
            note: format!(
                "deliveries lost within 10 s over {reps} runs: meshchat {burst_lost} of {expected}, ngircd {}",
                lost(&irc.burst)
            ),
        },
    ]
}
