//! Drives `meshchat --json` processes: spawns them (optionally inside a lab host's network
//! namespace), writes commands to their stdin, and waits, with a time limit, for the JSON events
//! they print. Every process is killed by its PID when its handle is dropped.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// How long to wait for an event unless a test says otherwise.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(15);

/// The binary under test: `MESHCHAT_BIN` when set (`.ci/run` points it at the release build),
/// else the one `cargo test` built.
pub fn binary() -> String {
    std::env::var("MESHCHAT_BIN")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_meshchat").into())
}

/// Options for a node process.
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    name: String,
    args: Vec<String>,
    netns: Option<String>,
    data_dir: Option<PathBuf>,
    program: PathBuf,
    /// A bootstrap key (hex) to trust from the start, through `--bootstrap-key`.
    bootstrap_key: Option<String>,
}

impl NodeBuilder {
    /// A node called `name` in test output, with `--json`.
    pub fn new(name: &str) -> Self {
        NodeBuilder {
            name: name.to_string(),
            args: vec!["--json".into()],
            netns: None,
            data_dir: None,
            program: PathBuf::from(binary()),
            bootstrap_key: None,
        }
    }

    /// A node on loopback only: no mDNS, listening on an ephemeral 127.0.0.1 TCP port.
    pub fn loopback(name: &str) -> Self {
        Self::new(name).args(&["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"])
    }

    /// Extra command-line arguments.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Runs another program built from this package (an example) instead of `meshchat`; it
    /// must take `--json` and `--data-dir`.
    pub fn example(mut self, name: &str) -> Self {
        // Test binaries live in target/<profile>/deps, examples in target/<profile>/examples.
        let exe = std::env::current_exe().expect("test binary path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target directory");
        self.program = profile_dir.join("examples").join(name);
        if !self.program.exists() {
            // `cargo test` builds examples; `cargo test --test X` does not.
            let mut build = Command::new(env!("CARGO"));
            build.args(["build", "--example", name]);
            if profile_dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build.status().expect("run cargo build");
            assert!(status.success(), "cannot build example {name}");
        }
        self
    }

    /// Runs the node inside network namespace `ns`.
    pub fn netns(mut self, ns: &str) -> Self {
        self.netns = Some(ns.to_string());
        self
    }

    /// Trusts from the start the bootstrap node whose `ready` event is `ready` (its
    /// `authority_key`): the key is written to a file in the data directory and passed with
    /// `--bootstrap-key`.
    pub fn trusting(mut self, ready: &Value) -> Self {
        let key = ready["authority_key"].as_str().expect("the ready event of a bootstrap node");
        self.bootstrap_key = Some(key.to_string());
        self
    }

    /// Uses `dir` as the data directory (default: a fresh temporary one).
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    /// Starts the process.
    pub fn spawn(self) -> NodeProc {
        let (temp, data_dir) = match self.data_dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::tempdir().expect("temporary data dir");
                let dir = temp.path().to_path_buf();
                (Some(temp), dir)
            }
        };
        let mut key_args = Vec::new();
        if let Some(key) = &self.bootstrap_key {
            let path = data_dir.join("given-bootstrap.pub");
            std::fs::write(&path, format!("{key}\n")).expect("write the bootstrap key file");
            key_args = vec!["--bootstrap-key".into(), path.into_os_string()];
        }
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        command
            .args(&self.args)
            .args(&key_args)
            .arg("--data-dir")
            .arg(&data_dir)
            .env_remove("MESHCHAT_DATA_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The node's own log filter, as a user gets it, unless the test's environment sets one.
        match std::env::var("MESHCHAT_LOG") {
            Ok(filter) => command.env("MESHCHAT_LOG", filter),
            Err(_) => command.env_remove("MESHCHAT_LOG"),
        };
        let started = Instant::now();
        let mut child = command.spawn().expect("spawn meshchat");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if tx.send((Instant::now(), value)).is_err() {
                    break;
                }
            }
        });
        let err_text = Arc::new(Mutex::new(String::new()));
        let sink = err_text.clone();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut text) = sink.lock() {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        });
        NodeProc {
            name: self.name,
            child,
            stdin,
            events,
            pending: VecDeque::new(),
            history: Vec::new(),
            stderr: err_text,
            stderr_reader: Some(stderr_reader),
            data_dir,
            _temp: temp,
            started,
            exit: None,
            peer_id: None,
        }
    }
}

/// A running node process.
pub struct NodeProc {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<(Instant, Value)>,
    /// Events received and not yet matched by a wait.
    pending: VecDeque<(Instant, Value)>,
    /// Every event received, for failure messages.
    history: Vec<Value>,
    stderr: Arc<Mutex<String>>,
    /// Reads stderr to its end; joined once the process has exited, so that all of it is there.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    pub data_dir: PathBuf,
    _temp: Option<TempDir>,
    /// When the process was spawned.
    pub started: Instant,
    exit: Option<ExitStatus>,
    peer_id: Option<String>,
}

impl NodeProc {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes one line (a newline is added).
    pub fn send(&mut self, line: &str) {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        self.send_bytes(&bytes);
    }

    /// Writes raw bytes to the node's stdin.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(bytes).and_then(|_| stdin.flush()).expect("write to node");
    }

    /// Closes stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn receive(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.events.recv_timeout(left) {
            Ok((at, value)) => {
                self.history.push(value.clone());
                self.pending.push_back((at, value));
                true
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => false,
        }
    }

    /// Waits up to `limit` for an event matching `pred`, removes it from the pending events
    /// and returns it with the time it arrived. Panics with everything seen when none comes.
    pub fn wait_timed(&mut self, what: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> (Instant, Value) {
        let deadline = Instant::now() + limit;
        // Each event is looked at once: those already looked at stay as they were.
        let mut looked_at = 0;
        loop {
            if let Some(pos) = self.pending.iter().skip(looked_at).position(|(_, v)| pred(v)) {
                return self.pending.remove(looked_at + pos).expect("position is valid");
            }
            looked_at = self.pending.len();
            if !self.receive(deadline) {
                panic!(
                    "{}: no {what} within {limit:?}\nevents: {:#?}\nstderr:\n{}",
                    self.name,
                    self.history,
                    self.stderr_text()
                );
            }
        }
    }

    /// [`Self::wait_timed`] without the time.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_timed(what, DEFAULT_WAIT, pred).1
    }

    /// Waits for an event of `kind` (its `"type"`).
    pub fn wait_type(&mut self, kind: &str) -> Value {
        self.wait_for(kind, |v| v["type"] == kind)
    }

    /// Waits for `ready` and returns it.
    pub fn ready(&mut self) -> Value {
        let ready = self.wait_type("ready");
        self.peer_id = ready["peer_id"].as_str().map(str::to_string);
        ready
    }

    /// The peer id from `ready` (after [`Self::ready`]).
    pub fn ready_peer_id(&self) -> String {
        self.peer_id.clone().expect("ready() was awaited")
    }

    /// Waits for `peer` `peer_id` to reach `state` (`connected` / `disconnected`).
    pub fn wait_peer(&mut self, peer_id: &str, state: &str) -> Value {
        self.wait_for(&format!("peer {peer_id} {state}"), |v| {
            v["type"] == "peer" && v["peer_id"] == peer_id && v["state"] == state
        })
    }

    /// Collects every event that arrives within `window`, without consuming pending ones.
    pub fn events_within(&mut self, window: Duration) -> Vec<Value> {
        let deadline = Instant::now() + window;
        while self.receive(deadline) {}
        self.pending.iter().map(|(_, v)| v.clone()).collect()
    }

    /// Takes every pending event and every event that arrives within `window`.
    pub fn take_within(&mut self, window: Duration) -> Vec<Value> {
        let deadline = Instant::now() + window;
        while self.receive(deadline) {}
        self.pending.drain(..).map(|(_, v)| v).collect()
    }

    /// Every event received so far, matched by a wait or not, in the order they came.
    pub fn history(&self) -> &[Value] {
        &self.history
    }

    /// Sends `/status` and returns the answer.
    pub fn status(&mut self) -> Value {
        self.send("/status");
        self.wait_type("status")
    }

    /// What the process wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exit = Some(status);
                // The process is gone: its stderr ends soon (not at all should a child of its
                // own still hold it, so the wait is bounded).
                if let Some(reader) = self.stderr_reader.take() {
                    let until = Instant::now() + Duration::from_secs(2);
                    while !reader.is_finished() && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                return status;
            }
            if Instant::now() >= deadline {
                panic!("{}: still running after {limit:?}\nstderr:\n{}", self.name, self.stderr_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal to the process (by its PID).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// `kill -9` and reap.
    pub fn kill(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            self.exit = self.child.wait().ok();
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}
