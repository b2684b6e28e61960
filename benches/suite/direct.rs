//! Figure 3: direct-message round trip (send to receipt) against a bare libp2p
//! request-response swarm pair carrying a payload of the same size (`benches/support/dm.rs`).

use super::report::{Better, Row, Runs};
use crate::support::dm::round_trips_in_turn;
use crate::support::{ms, percentile};

/// Enough that a run's p99 rests on its ten slowest round trips.
const ROUND_TRIPS: usize = 1000;

pub async fn run(reps: usize) -> Vec<Row> {
    let (mut mesh50, mut mesh99, mut bare50, mut bare99) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let (mesh, bare) = round_trips_in_turn(ROUND_TRIPS).await;
        eprintln!(
            "  DM: meshchat p50 {:.3} ms, bare p50 {:.3} ms",
            ms(percentile(&mesh, 0.5)),
            ms(percentile(&bare, 0.5))
        );
        mesh50.push(ms(percentile(&mesh, 0.5)));
        mesh99.push(ms(percentile(&mesh, 0.99)));
        bare50.push(ms(percentile(&bare, 0.5)));
        bare99.push(ms(percentile(&bare, 0.99)));
    }
    let (mesh50, bare50) = (Runs::new(mesh50), Runs::new(bare50));
    let ratio = mesh50.median() / bare50.median();
    let note =
        format!("{ROUND_TRIPS} round trips per run after 20 for warm-up, one at a time, meshchat and bare in turn");
    vec![
        Row {
            figure: 3,
            what: "DM round trip p50 (send to receipt)".into(),
            unit: "ms".into(),
            meshchat: mesh50,
            anchor_name: "bare libp2p request-response".into(),
            anchor: Some(bare50),
            better: Better::Lower,
            goal: "≤ 1.5× bare".into(),
            met: Some(ratio <= 1.5),
            note,
        },
        Row {
            figure: 3,
            what: "DM round trip p99".into(),
            unit: "ms".into(),
            meshchat: Runs::new(mesh99),
            anchor_name: "bare libp2p request-response".into(),
            anchor: Some(Runs::new(bare99)),
            better: Better::Lower,
            goal: String::new(),
            met: None,
            note: String::new(),
        },
    ]
}
