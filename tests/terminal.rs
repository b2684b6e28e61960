//! The REPL as a person meets it, on a real pseudo-terminal: the prompt, tab completion, a
//! password that is never echoed nor kept in the history, an incoming formatted message with a
//! link (SGR attributes and an OSC 8 hyperlink), and a half-typed line that survives incoming
//! messages. A second node (`--json` on pipes, hosting the bootstrap) talks to it on loopback.

mod support;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, PtySize, native_pty_system};
use support::NodeBuilder;

/// The longest any step may take.
const WAIT: Duration = Duration::from_secs(20);

const BOB_PASSWORD: &str = "correct horse battery staple";
const ALICE_PASSWORD: &str = "purple elephant mirror kettle";

/// `meshchat` on a pseudo-terminal: everything it writes is kept, raw, in `output`.
struct Terminal {
    child: Box<dyn Child + Send + Sync>,
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
    output: Arc<Mutex<Vec<u8>>>,
    /// Bytes before this offset were matched by an earlier wait.
    seen: usize,
}

impl Terminal {
    fn spawn(args: &[&str]) -> Terminal {
        Self::spawn_with(args, &[])
    }

    /// [`Self::spawn`] with extra environment variables.
    fn spawn_with(args: &[&str], env: &[(&str, &str)]) -> Terminal {
        let pty = native_pty_system()
            .openpty(PtySize { rows: 40, cols: 200, pixel_width: 0, pixel_height: 0 })
            .expect("open a pseudo-terminal");
        let mut command = CommandBuilder::new(support::driver::binary());
        command.args(args);
        command.env("TERM", "xterm-256color");
        command.env("MESHCHAT_LOG", "error");
        command.env_remove("NO_COLOR");
        command.env_remove("MESHCHAT_DATA_DIR");
        for (key, value) in env {
            command.env(key, value);
        }
        let child = pty.slave.spawn_command(command).expect("spawn meshchat on the pty");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().expect("pty reader");
        let writer = Arc::new(Mutex::new(pty.master.take_writer().expect("pty writer")));
        let output = Arc::new(Mutex::new(Vec::new()));
        let (sink, answer) = (output.clone(), writer.clone());
        std::thread::spawn(move || {
            // Keeps the master open for as long as the reader runs.
            let _master = pty.master;
            let mut buf = [0u8; 4096];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut out = sink.lock().unwrap();
                let before = out.len().saturating_sub(3);
                out.extend_from_slice(&buf[..n]);
                // Answer the editor's cursor-position queries as a terminal would.
                let queries = find_all(&out[before..], b"\x1b[6n");
                drop(out);
                for _ in 0..queries {
                    let mut w = answer.lock().unwrap();
                    let _ = w.write_all(b"\x1b[1;1R").and_then(|_| w.flush());
                }
            }
        });
        Terminal { child, writer, output, seen: 0 }
    }

    fn type_bytes(&self, bytes: &[u8]) {
        let mut w = self.writer.lock().unwrap();
        w.write_all(bytes).and_then(|_| w.flush()).expect("write to the pty");
    }

    /// Types `text` a key at a time, as a person would.
    fn type_keys(&self, text: &str) {
        for c in text.chars() {
            self.type_bytes(c.to_string().as_bytes());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn transcript(&self) -> Vec<u8> {
        self.output.lock().unwrap().clone()
    }

    /// Whether `needle` shows after what earlier waits matched, within `limit`.
    fn expect_within(&mut self, needle: &[u8], limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let out = self.transcript();
            if let Some(at) = find(&out[self.seen..], needle) {
                self.seen += at + needle.len();
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `needle` after what earlier waits matched; returns the offset just past it.
    fn expect(&mut self, needle: &[u8]) -> usize {
        if !self.expect_within(needle, WAIT) {
            let out = self.transcript();
            panic!(
                "no {:?} on the terminal within {WAIT:?}; after offset {} it shows:\n{}",
                String::from_utf8_lossy(needle),
                self.seen,
                printable(&out[self.seen.min(out.len())..])
            );
        }
        self.seen
    }

    /// Waits for the process to end, at most `limit`.
    fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn find_all(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Raw bytes with escapes spelled out, for failure messages.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\x1b', "\\e").replace('\x07', "\\a").replace('\r', "\\r")
}

#[test]
fn the_repl_as_a_person_meets_it() {
    // Bob hosts the bootstrap and the room; he speaks JSON on pipes.
    let mut bob = NodeBuilder::loopback("bob").args(&["--bootstrap"]).spawn();
    let ready = bob.ready();
    let bob_addr = ready["listen"][0].as_str().expect("bob listens").to_string();
    bob.send("/register bob");
    bob.send(BOB_PASSWORD);
    bob.wait_for("bob logged in", |v| v["type"] == "logged_in" && v["user"] == "bob");
    bob.send("/create lobby");
    bob.wait_for("lobby focused", |v| v["type"] == "focus" && v["target"] == "#lobby");

    // Alice uses the terminal.
    let dir = tempfile::tempdir().expect("data dir");
    let data_dir = dir.path().to_str().expect("utf-8 path");
    let mut alice = Terminal::spawn(&[
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--data-dir",
        data_dir,
        "--peer",
        &bob_addr,
        "--color",
        "always",
    ]);
    // Bob's key is not confirmed yet: it is shown in groups of four, to compare.
    let key = ready["authority_key"].as_str().expect("bob hosts the bootstrap").to_string();
    let grouped: Vec<&str> = (0..16).map(|i| &key[4 * i..4 * i + 4]).collect();
    let grouped = grouped.join(" ");
    alice.expect(b"not confirmed yet");
    alice.expect(grouped.as_bytes());
    // Every line printed above the prompt draws the prompt again.
    alice.expect(b"> ");

    // Tab completes a command: "/regi" becomes "/register ".
    alice.type_keys("/regi");
    alice.expect(b"/regi");
    alice.type_bytes(b"\t");
    alice.expect(b"ster ");
    alice.type_keys("alice\r");
    // Before a password goes anywhere, the key is asked about; yes trusts it.
    alice.expect(b"trust this bootstrap key");
    alice.type_keys("y\r");
    alice.expect(b"bootstrap node in reach");
    alice.expect(b"password: ");
    let before_password = alice.transcript().len();
    alice.type_keys(ALICE_PASSWORD);
    alice.expect(&b"*".repeat(ALICE_PASSWORD.len()));
    alice.type_bytes(b"\r");
    // The editor does not wait for the login: the next prompt shows at once, and the lines that
    // follow are printed above it, each from the start of a row of its own (a line printed while
    // no prompt is shown ends with its newline; one printed over the prompt clears its row).
    alice.expect(b"*** registered");
    let logged_in = alice.expect(b"\x1b[36m*** logged in as") - b"\x1b[36m*** logged in as".len();
    let before = &alice.transcript()[..logged_in];
    assert!(
        before.ends_with(b"\n") || before.ends_with(b"\r\x1b[K"),
        "a line printed in the middle of a row: {}",
        printable(&before[before.len().saturating_sub(40)..])
    );

    // Bob's room is joinable once his presence (which lists his rooms) has arrived.
    let deadline = Instant::now() + WAIT;
    while find(&alice.transcript(), b"is online").is_none() {
        assert!(Instant::now() < deadline, "bob never came online");
        std::thread::sleep(Duration::from_millis(20));
    }
    alice.type_keys("/join lobby\r");
    alice.expect(b"now talking in");
    // The editor never waits for the join: the prompt already showing stays as it was, and the
    // new focus shows from the next line on (an empty line brings it).
    alice.type_bytes(b"\r");
    alice.expect(b"[\x1b[1m#lobby\x1b[0m]> ");
    bob.wait_for("alice joined", |v| v["type"] == "joined" && v["user"] == "alice");

    // A half-typed line, then a message arrives.
    alice.type_keys("half typed *line*");
    alice.expect(b"half typed *line*");
    bob.send("look: *bold* _it_ ~old~ `x_y` https://example.com/a_b");
    let after_message = alice.expect(b"look: ");
    alice.expect(b"\x1b[1mbold\x1b[0m \x1b[3mit\x1b[0m \x1b[9mold\x1b[0m \x1b[7mx_y\x1b[0m ");
    alice.expect(
        b"\x1b]8;;https://example.com/a_b\x1b\\\x1b[4mhttps://example.com/a_b\x1b[24m\x1b]8;;\x1b\\ \x1b[2m[1]\x1b[0m",
    );
    // The line being typed is drawn again below the message, whole.
    alice.expect(b"half typed *line*");
    let transcript = alice.transcript();
    assert!(find(&transcript[after_message..], b"<bob>").is_none(), "the message printed once");
    alice.type_bytes(b"\r");
    bob.wait_for("alice's whole line", |v| {
        v["type"] == "message" && v["from"] == "alice" && v["text"] == "half typed *line*"
    });

    // /open with a number that was never shown is a usage error.
    alice.type_keys("/open 7\r");
    alice.expect(b"there is no link [7]; the only link is [1]");

    // Leaving the focused room ends the focus: the prompt is bare again from the next line on.
    alice.expect(b"[\x1b[1m#lobby\x1b[0m]> ");
    alice.type_keys("/leave\r");
    alice.expect(b"left\x1b[0m \x1b[34m#lobby");
    alice.type_bytes(b"\r");
    alice.expect(b"\r\x1b[K> \r\x1b[2C");

    // Ctrl-D on an empty line quits.
    std::thread::sleep(Duration::from_millis(100));
    alice.type_bytes(b"\x04");
    assert!(alice.wait_exit(WAIT), "Ctrl-D did not end meshchat");

    let transcript = alice.transcript();
    assert!(find(&transcript[before_password..], ALICE_PASSWORD.as_bytes()).is_none(), "the password was echoed");
    let history = std::fs::read_to_string(dir.path().join("history.txt")).expect("history file");
    assert!(history.contains("/join lobby"), "{history}");
    assert!(history.contains("half typed *line*"), "{history}");
    assert!(!history.contains(ALICE_PASSWORD) && !history.contains("/register"), "{history}");
}

/// Runs `meshchat` on pipes (not `--json`) with `args` and `env`, types `/help` and ends the
/// input; returns what it printed.
fn text_output(args: &[&str], env: &[(&str, &str)]) -> String {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("data dir");
    let mut command = Command::new(support::driver::binary());
    command
        .args(["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--data-dir"])
        .arg(dir.path())
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("MESHCHAT_DATA_DIR")
        .env("MESHCHAT_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn meshchat");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"/help\n").expect("write /help");
    drop(stdin);
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + WAIT;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("meshchat did not end at the end of its input");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    reader.join().expect("reader")
}

#[test]
fn colour_follows_the_option_no_color_and_the_terminal() {
    // Into a pipe, auto means no colour.
    let auto = text_output(&[], &[]);
    assert!(auto.contains("/help [COMMAND]"), "{auto}");
    assert!(!auto.contains('\x1b'), "{auto:?}");
    let always = text_output(&["--color", "always"], &[("NO_COLOR", "1")]);
    assert!(always.contains("\x1b[36mCommands"), "{always:?}");
    let never = text_output(&["--color", "never"], &[]);
    assert!(!never.contains('\x1b'), "{never:?}");
    let json = text_output(&["--json", "--color", "always"], &[]);
    assert!(json.lines().all(|l| l.starts_with('{')) && !json.contains('\x1b'), "{json:?}");
}

#[test]
fn no_color_turns_colour_off_on_a_terminal() {
    let dir = tempfile::tempdir().expect("data dir");
    let data_dir = dir.path().to_str().expect("utf-8 path");
    let mut term = Terminal::spawn_with(
        &["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--data-dir", data_dir],
        &[("NO_COLOR", "1")],
    );
    term.expect(b"type /help for the commands");
    term.type_keys("/stauts\r");
    term.expect(b"!!! unknown command /stauts (did you mean /status?) [invalid_command]");
    term.type_keys("/quit\r");
    assert!(term.wait_exit(WAIT), "/quit did not end meshchat");
    let transcript = term.transcript();
    assert!(find(&transcript, b"\x1b[2m").is_none() && find(&transcript, b"\x1b[36m").is_none());
}

#[test]
fn keys_typed_right_after_enter_are_kept() {
    let dir = tempfile::tempdir().expect("data dir");
    let data_dir = dir.path().to_str().expect("utf-8 path");
    let mut t = Terminal::spawn(&["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--data-dir", data_dir]);
    t.expect(b"> ");
    // One write: a command, its Enter, and the start of the next line at once.
    t.type_bytes(b"/help quit\rtyped ahead");
    t.expect(b"example: /quit");
    t.expect(b"typed ahead");
    t.type_bytes(b"\r");
    // The whole line went to the node: plain text, which needs a login first.
    t.expect(b"log in first");
}
