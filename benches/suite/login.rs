//! Figure 4: login latency through a bootstrap node on loopback against the argon2id
//! verification it must do (`benches/support/login.rs`).

use super::report::{Better, Row, Runs};
use crate::support::login::login_and_hash_times;
use crate::support::{ms, percentile};

const LOGINS: usize = 30;

pub async fn run(reps: usize) -> Vec<Row> {
    let (mut logins, mut hashes) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (l, h) = login_and_hash_times(LOGINS).await;
        eprintln!("  login p50 {:.1} ms, hash p50 {:.1} ms", ms(percentile(&l, 0.5)), ms(percentile(&h, 0.5)));
        logins.push(ms(percentile(&l, 0.5)));
        hashes.push(ms(percentile(&h, 0.5)));
    }
    let (logins, hashes) = (Runs::new(logins), Runs::new(hashes));
    let met = logins.median() <= hashes.median() + 5.0;
    vec![Row {
        figure: 4,
        what: "login p50 (logout, then login to its answer)".into(),
        unit: "ms".into(),
        meshchat: logins,
        anchor_name: "argon2id verify (19 MiB, t=2, p=1)".into(),
        anchor: Some(hashes),
        better: Better::Lower,
        goal: "≤ hash + 5 ms".into(),
        met: Some(met),
        note: format!("{LOGINS} logins and {LOGINS} hashes per run, taken in turn"),
    }]
}
