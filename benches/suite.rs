//! The benchmark suite (not a test): every figure of meshchat beside its anchor, measured in
//! the same run on the same machine, written as `BENCHMARKS.md` and `bench/results.json`.
//!
//! ```sh
//! bench/run.sh                  # installs ngircd if missing, then: cargo bench --bench suite
//! ```
//!
//! Figures (one module each under `benches/suite/`): 1 room fan-out latency beside ngircd,
//! 2 room throughput beside ngircd, 3 DM round trip beside a bare request-response swarm,
//! 4 login beside the argon2id hash, 5 memory and 6 start-up beside a minimal libp2p node,
//! 7 a late joiner's catch-up, 8 discovery in a lab of network namespaces (root only), 9 opening
//! a sealed room message beside checking an envelope's signature, 10 `/search` over 100,000
//! stored messages beside a `LIKE` scan, and storing a message with its index beside without. `SUITE_REPS` changes the repetitions (default 3);
//! `SUITE_ONLY=1,2` runs some figures and prints them without writing the files; `SUITE_SIZES=32`
//! runs figure 1 with only those room sizes;
//! `SUITE_LOG=meshchat=info` shows the nodes' logs.

mod support;

#[path = "suite/catchup.rs"]
mod catchup;
#[path = "suite/crypto.rs"]
mod crypto;
#[path = "suite/direct.rs"]
mod direct;
#[path = "suite/fanout.rs"]
mod fanout;
#[path = "suite/irc.rs"]
mod irc;
#[path = "suite/lab.rs"]
mod lab;
#[path = "suite/login.rs"]
mod login;
#[path = "suite/memory.rs"]
mod memory;
#[path = "suite/mesh.rs"]
mod mesh;
#[path = "suite/minimal.rs"]
mod minimal;
#[path = "suite/process.rs"]
mod process;
#[path = "suite/report.rs"]
mod report;
#[path = "suite/search.rs"]
mod search;
#[path = "suite/throughput.rs"]
mod throughput;
#[path = "suite/timing.rs"]
mod timing;

use std::path::Path;
use std::time::Instant;

use serde_json::json;

/// The comma-separated numbers in environment variable `name`, when it is set.
fn env_list<T: std::str::FromStr>(name: &str) -> Option<Vec<T>> {
    std::env::var(name).ok().map(|v| v.split(',').filter_map(|f| f.trim().parse().ok()).collect())
}

fn main() {
    if std::env::var(process::ROLE_VAR).as_deref() == Ok("minimal") {
        minimal::main();
        return;
    }
    if let Ok(filter) = std::env::var("SUITE_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let reps: usize = std::env::var("SUITE_REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1);
    let only: Option<Vec<u32>> = env_list("SUITE_ONLY");
    let wanted = |figure: u32| only.as_ref().is_none_or(|o| o.contains(&figure));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let started = Instant::now();
    let started_at = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mut loads = vec![report::load()];
    let rows = runtime.block_on(async {
        let mut rows = Vec::new();
        if wanted(1) || wanted(2) {
            let ircd = irc::Ngircd::start().await;
            if wanted(1) {
                eprintln!("figure 1: room fan-out");
                rows.extend(fanout::run(&ircd, reps).await);
                loads.push(report::load());
            }
            if wanted(2) {
                eprintln!("figure 2: room throughput");
                rows.extend(throughput::run(&ircd, reps).await);
                loads.push(report::load());
            }
            ircd.stop().await;
        }
        if wanted(3) {
            eprintln!("figure 3: DM round trip");
            rows.extend(direct::run(reps).await);
            loads.push(report::load());
        }
        if wanted(4) {
            eprintln!("figure 4: login");
            rows.extend(login::run(reps).await);
            loads.push(report::load());
        }
        if wanted(5) || wanted(6) || wanted(8) {
            let binary = process::meshchat_binary(root);
            if wanted(5) {
                eprintln!("figure 5: memory");
                rows.extend(memory::run(&binary, reps).await);
                loads.push(report::load());
            }
            if wanted(6) {
                eprintln!("figure 6: start-up");
                rows.extend(memory::startup(&binary).await);
                loads.push(report::load());
            }
            if wanted(8) {
                eprintln!("figure 8: discovery in the LAN lab");
                rows.extend(lab::run(&binary, reps).await);
                loads.push(report::load());
            }
        }
        if wanted(7) {
            eprintln!("figure 7: late joiner catch-up");
            rows.extend(catchup::run(reps).await);
            loads.push(report::load());
        }
        if wanted(9) {
            eprintln!("figure 9: room encryption per delivery");
            rows.extend(crypto::run(reps));
            loads.push(report::load());
        }
        if wanted(10) {
            eprintln!("figure 10: search");
            rows.extend(search::run(reps));
            loads.push(report::load());
        }
        rows.sort_by_key(|r| r.figure);
        rows
    });
    let seconds = started.elapsed().as_secs_f64();
    for r in &rows {
        println!(
            "{} | {} | meshchat {:.3} {} ({:.3}–{:.3}) | {} {} | ratio {} | {} {}",
            r.figure,
            r.what,
            r.meshchat.median(),
            r.unit,
            r.meshchat.min(),
            r.meshchat.max(),
            r.anchor_name,
            r.anchor.as_ref().map(|a| format!("{:.3}", a.median())).unwrap_or_default(),
            r.ratio().map(|x| format!("{x:.2}")).unwrap_or_default(),
            r.goal,
            match r.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "",
            }
        );
    }
    if only.is_some() {
        eprintln!("SUITE_ONLY set: BENCHMARKS.md and bench/results.json left as they are");
        return;
    }
    let notes = std::fs::read_to_string(root.join("bench/notes.md")).unwrap_or_default();
    let anchors = json!({
        "ngircd": irc::version(),
        "libp2p": "libp2p 0.57 (the same build as meshchat)",
    });
    report::write(root, &rows, &started_at, seconds, &notes, &anchors, &loads);
    eprintln!("wrote BENCHMARKS.md and bench/results.json in {seconds:.0} s");
}
