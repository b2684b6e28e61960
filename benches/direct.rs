//! Benchmark (not a test): direct-message round trip, from `send_dm` to the `delivered` event,
//! between two in-process nodes on loopback, beside the round trip of a bare libp2p
//! request-response swarm pair (TCP, Noise, yamux, CBOR) carrying a payload of the same size,
//! taken in turn with it.
//!
//! ```sh
//! cargo bench --bench direct
//! ```
//! Goal: meshchat p50 ≤ 1.5 × the bare p50.

mod support;

use support::dm::round_trips_in_turn;
use support::{ms, percentile};

const ROUND_TRIPS: usize = 300;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let (mesh, bare) = round_trips_in_turn(ROUND_TRIPS).await;
    let (bare50, mesh50) = (percentile(&bare, 0.5), percentile(&mesh, 0.5));
    let ratio = mesh50.as_secs_f64() / bare50.as_secs_f64();
    println!("| figure ({ROUND_TRIPS} round trips, loopback) | p50 | p99 |");
    println!("|---|---|---|");
    println!("| bare libp2p request-response | {:.3} ms | {:.3} ms |", ms(bare50), ms(percentile(&bare, 0.99)));
    println!("| meshchat DM, send to receipt | {:.3} ms | {:.3} ms |", ms(mesh50), ms(percentile(&mesh, 0.99)));
    println!("| ratio of p50s | {ratio:.2}× | goal ≤ 1.5×: {} |", if ratio <= 1.5 { "met" } else { "missed" });
}
