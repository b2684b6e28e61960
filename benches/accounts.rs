//! Benchmark (not a test): login latency through a real bootstrap node on loopback, beside the
//! argon2id hash time measured in the same run, and certificate verifications per second.
//!
//! ```sh
//! cargo bench --bench accounts
//! ```
//! Goals: login p50 ≤ hash time + 5 ms; ≥ 10,000 certificate verifications per second.

mod support;

use std::time::{Duration, Instant};

use meshchat::cert::Authority;
use support::login::login_and_hash_times;
use support::{ms, percentile};

const LOGINS: usize = 60;
const VERIFICATIONS: usize = 20_000;

#[tokio::main]
async fn main() {
    let (logins, hash_times) = login_and_hash_times(LOGINS).await;
    let hash_p50 = percentile(&hash_times, 0.5);
    let login_p50 = percentile(&logins, 0.5);

    let authority = Authority::from_secret(&[7; 32]);
    let cert = authority.issue(
        meshchat::account::AccountId::from_bytes([7; 16]),
        "benchuser",
        b"some-peer-id-bytes-0123456789",
        1_800_000_000,
        1,
    );
    let key = authority.public();
    let t = Instant::now();
    for _ in 0..VERIFICATIONS {
        assert!(cert.verify(&key, b"some-peer-id-bytes-0123456789", 1_800_000_100).is_ok());
    }
    let per_second = VERIFICATIONS as f64 / t.elapsed().as_secs_f64();

    println!("| figure | value | goal |");
    println!("|---|---|---|");
    println!(
        "| argon2id verify (19 MiB, t=2, p=1), {LOGINS} runs, taken in turn with the logins | p50 {:.1} ms, max {:.1} ms | |",
        ms(hash_p50),
        ms(*hash_times.last().unwrap())
    );
    println!(
        "| login over loopback, {LOGINS} runs | p50 {:.1} ms, p99 {:.1} ms | p50 ≤ {:.1} ms (hash + 5 ms): {} |",
        ms(login_p50),
        ms(percentile(&logins, 0.99)),
        ms(hash_p50) + 5.0,
        if login_p50 <= hash_p50 + Duration::from_millis(5) { "met" } else { "missed" }
    );
    println!(
        "| certificate verifications | {per_second:.0}/s | ≥ 10,000/s: {} |",
        if per_second >= 10_000.0 { "met" } else { "missed" }
    );
}
