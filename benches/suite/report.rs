//! The suite's results: one row per figure with meshchat's runs beside its anchor's, their
//! medians and spreads, the ratio and the goal; written as `BENCHMARKS.md` and
//! `bench/results.json`.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

/// Repeated runs of one quantity.
#[derive(Debug, Clone)]
pub struct Runs {
    pub values: Vec<f64>,
}

impl Runs {
    pub fn new(values: Vec<f64>) -> Runs {
        let mut values = values;
        values.sort_by(f64::total_cmp);
        Runs { values }
    }

    pub fn median(&self) -> f64 {
        let v = &self.values;
        if v.is_empty() {
            return f64::NAN;
        }
        let mid = v.len() / 2;
        if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 }
    }

    pub fn min(&self) -> f64 {
        self.values.first().copied().unwrap_or(f64::NAN)
    }

    pub fn max(&self) -> f64 {
        self.values.last().copied().unwrap_or(f64::NAN)
    }
}

/// Whether higher or lower values are better (for the ratio's sense only; the goal says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Figure number of the issue (1–10).
    pub figure: u32,
    pub what: String,
    pub unit: String,
    pub meshchat: Runs,
    pub anchor_name: String,
    pub anchor: Option<Runs>,
    pub better: Better,
    /// The goal in words, e.g. "p99 ≤ 2× ngircd".
    pub goal: String,
    /// `None` when the row has no goal.
    pub met: Option<bool>,
    pub note: String,
}

impl Row {
    pub fn ratio(&self) -> Option<f64> {
        self.anchor.as_ref().map(|a| self.meshchat.median() / a.median())
    }
}

fn num(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x.abs() >= 1000.0 {
        let s = format!("{:.0}", x);
        // thousands separators
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 && c != '-' {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn cell(runs: &Runs, unit: &str) -> String {
    if runs.values.len() > 1 {
        format!("{} {unit} ({}–{})", num(runs.median()), num(runs.min()), num(runs.max()))
    } else {
        format!("{} {unit}", num(runs.median()))
    }
}

/// The machine the suite ran on.
pub fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0)))
        .unwrap_or(0);
    json!({ "nproc": cores, "cpu": cpu, "kernel": kernel, "memory_mib": memory / 1024 })
}

/// The 1-minute load average (`/proc/loadavg`): other work on the machine during a run.
pub fn load() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Writes `BENCHMARKS.md` and `bench/results.json` under `root`; `loads` are the 1-minute load
/// averages sampled between figures.
pub fn write(root: &Path, rows: &[Row], started: &str, seconds: f64, notes: &str, anchors: &Value, loads: &[f64]) {
    let mut machine = machine();
    machine["load_during_run"] = json!(loads);
    let json_rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "figure": r.figure,
                "what": r.what,
                "unit": r.unit,
                "better": if r.better == Better::Lower { "lower" } else { "higher" },
                "meshchat": { "runs": r.meshchat.values, "median": r.meshchat.median(), "min": r.meshchat.min(), "max": r.meshchat.max() },
                "anchor": r.anchor.as_ref().map(|a| json!({ "name": r.anchor_name, "runs": a.values, "median": a.median(), "min": a.min(), "max": a.max() })),
                "ratio": r.ratio(),
                "goal": r.goal,
                "met": r.met,
                "note": r.note,
            })
        })
        .collect();
    let doc = json!({
        "command": "bench/run.sh",
        "started": started,
        "seconds": seconds,
        "machine": machine,
        "anchors": anchors,
        "rows": json_rows,
    });
    let _ = std::fs::create_dir_all(root.join("bench"));
    std::fs::write(root.join("bench/results.json"), serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();

    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "meshchat measured beside what a user would use instead, in the same run on the same machine. \
Written by the benchmark suite (`benches/suite.rs`, `benches/suite/`); the same figures are in \
[`bench/results.json`](bench/results.json). Each value is the median over the repeated runs, with the \
lowest and highest run in brackets; the ratio is meshchat's median over the anchor's.\n"
    );
    let _ = writeln!(md, "Reproduce on a Debian machine (installs ngircd if missing, builds release):\n");
    let _ = writeln!(md, "```sh\nbench/run.sh\n```\n");
    let _ = writeln!(
        md,
        "Machine: {} cores ({}), {} MiB, Linux {}. Run started {started}, took {:.0} s; 1-minute load \
average between figures {} (the suite alone keeps it at about 1 or below on two cores; more means other work shared them). \
Anchors: {}.\n",
        machine["nproc"],
        machine["cpu"].as_str().unwrap_or(""),
        machine["memory_mib"],
        machine["kernel"].as_str().unwrap_or(""),
        seconds,
        loads.iter().map(|l| format!("{l:.1}")).collect::<Vec<_>>().join(", "),
        anchors
            .as_object()
            .map(|o| o.values().map(|v| v.as_str().unwrap_or("").to_string()).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    );
    let _ = writeln!(md, "| # | figure | meshchat | anchor | anchor value | ratio | goal | met |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for r in rows {
        let anchor = r.anchor.as_ref().map(|a| cell(a, &r.unit)).unwrap_or_else(|| "–".into());
        let ratio = r.ratio().filter(|x| x.is_finite()).map(|x| format!("{}×", num(x))).unwrap_or_else(|| "–".into());
        let met = match r.met {
            Some(true) => "**met**",
            Some(false) => "**missed**",
            None => "",
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.figure,
            r.what,
            cell(&r.meshchat, &r.unit),
            if r.anchor.is_some() { r.anchor_name.as_str() } else { "–" },
            anchor,
            ratio,
            r.goal,
            met
        );
    }
    let _ = writeln!(md);
    let noted: Vec<&Row> = rows.iter().filter(|r| !r.note.is_empty()).collect();
    if !noted.is_empty() {
        let _ = writeln!(md, "## Row notes (from this run)\n");
        for r in noted {
            let _ = writeln!(md, "- **{}. {}**: {}", r.figure, r.what, r.note);
        }
        let _ = writeln!(md);
    }
    md.push_str(notes);
    std::fs::write(root.join("BENCHMARKS.md"), md).unwrap();
}
