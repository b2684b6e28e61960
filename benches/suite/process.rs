//! Separate processes under measurement: the release `meshchat` binary and the minimal libp2p
//! node (this benchmark binary run again in the `minimal` role). Both speak JSON lines on
//! stdout (`ready` with `listen`, `peer` with `state`) and take commands on stdin; each is
//! stopped by its PID.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// The environment variable that runs this binary as the minimal libp2p node.
pub const ROLE_VAR: &str = "MESHCHAT_BENCH_ROLE";

/// `target/release/meshchat`, built if missing.
pub fn meshchat_binary(root: &Path) -> PathBuf {
    let path = root.join("target/release/meshchat");
    if !path.exists() {
        eprintln!("building target/release/meshchat");
        let status = std::process::Command::new("cargo")
            .args(["build", "--release", "--bin", "meshchat"])
            .current_dir(root)
            .status()
            .expect("cargo");
        assert!(status.success(), "cargo build --release failed");
    }
    path
}

/// A child process speaking JSON lines.
pub struct Proc {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    pub pid: u32,
    pub spawned: Instant,
    _dir: Option<tempfile::TempDir>,
}

impl Proc {
    /// Starts `meshchat --no-mdns --listen /ip4/127.0.0.1/tcp/0 --json` in a fresh data dir,
    /// plus `extra` arguments.
    pub fn meshchat(binary: &Path, extra: &[&str]) -> Proc {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(binary);
        cmd.arg("--data-dir")
            .arg(dir.path())
            .args(["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--json"])
            .args(extra);
        Proc::spawn(cmd, Some(dir))
    }

    /// Starts the minimal libp2p node (tcp, noise, yamux, ping) on 127.0.0.1.
    pub fn minimal() -> Proc {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env(ROLE_VAR, "minimal");
        Proc::spawn(cmd, None)
    }

    /// Starts `cmd` (which must print JSON lines), keeping `dir` alive as long as the process.
    pub fn spawn(mut cmd: Command, dir: Option<tempfile::TempDir>) -> Proc {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true);
        cmd.env("RUST_LOG", "off");
        let spawned = Instant::now();
        let mut child = cmd.spawn().expect("spawn");
        let pid = child.id().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(value);
                }
            }
        });
        Proc { child, stdin, lines, pid, spawned, _dir: dir }
    }

    /// Waits (`limit` at most) for a line matching `pred`; returns it with its arrival time.
    pub async fn wait(&mut self, limit: Duration, pred: impl Fn(&Value) -> bool) -> (Value, Instant) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let value = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .expect("expected output in time")
                .expect("process running");
            if pred(&value) {
                return (value, Instant::now());
            }
        }
    }

    /// Waits for the `ready` line; returns the first listen address and the time since spawn.
    pub async fn ready(&mut self) -> (String, Duration) {
        let (value, at) = self.wait(Duration::from_secs(20), |v| v["type"] == "ready").await;
        (value["listen"][0].as_str().unwrap_or_default().to_string(), at.duration_since(self.spawned))
    }

    /// Waits until `count` `peer` lines with state `connected` have come (20 s at most).
    pub async fn connected(&mut self, count: usize) {
        for _ in 0..count {
            self.wait(Duration::from_secs(20), |v| v["type"] == "peer" && v["state"] == "connected").await;
        }
    }

    pub async fn send_line(&mut self, line: &str) {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Resident set size in KiB (`VmRSS` of `/proc/PID/status`).
    pub fn rss_kib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }

    /// Ends the process: end of input (which quits both kinds), then SIGKILL by PID after 3 s.
    pub async fn stop(mut self) {
        drop(self.stdin);
        if tokio::time::timeout(Duration::from_secs(3), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}
