//! The IRC anchor: an ngircd started in the foreground on 127.0.0.1 with flood protection off
//! (its config written under a temporary directory, the process stopped by its PID), and a
//! channel of plain IRC clients written with tokio in this process, their `PRIVMSG`s turned
//! into [`Arrival`]s for the shared timing code.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::timing::{self, Arrival, Room};

/// A running ngircd.
pub struct Ngircd {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The ngircd binary (Debian puts it in /usr/sbin, which may not be on PATH).
fn binary() -> String {
    if std::path::Path::new("/usr/sbin/ngircd").exists() { "/usr/sbin/ngircd".into() } else { "ngircd".into() }
}

/// `ngircd --version`'s first line, or why not.
pub fn version() -> String {
    std::process::Command::new(binary())
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.split('-').next().unwrap_or(l).trim().to_string())
        })
        .unwrap_or_else(|| "ngircd not found: run bench/setup.sh".into())
}

impl Ngircd {
    pub async fn start() -> Ngircd {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = format!(
            "[Global]\n\
             \tName = bench.meshchat.local\n\
             \tInfo = meshchat benchmark anchor\n\
             \tAdminInfo1 = meshchat benchmarks\n\
             \tAdminInfo2 = loopback\n\
             \tAdminEMail = bench@localhost\n\
             \tListen = 127.0.0.1\n\
             \tPorts = {port}\n\
             \tMotdPhrase = \"bench\"\n\
             [Limits]\n\
             \tMaxConnections = 0\n\
             \tMaxConnectionsIP = 0\n\
             \tMaxJoins = 0\n\
             \tMaxNickLength = 30\n\
             \t# No penalty time for any command: flood protection off.\n\
             \tMaxPenaltyTime = 0\n\
             \tPingTimeout = 600\n\
             \tPongTimeout = 600\n\
             [Options]\n\
             \tDNS = no\n\
             \tIdent = no\n\
             \tPAM = no\n"
        );
        let path = dir.path().join("ngircd.conf");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(binary())
            .arg("-n")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("ngircd: run bench/setup.sh");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "ngircd did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ngircd { child, port, _dir: dir }
    }

    /// Stops ngircd by its PID and waits for it.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: signalling our own child by its PID.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// `size` IRC clients in `#bench` on one ngircd.
pub struct IrcRoom {
    /// The server's process, whose CPU counts with the clients'.
    server: Option<u32>,
    writers: Vec<mpsc::UnboundedSender<String>>,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn read_until(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    code: &str,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .expect("IRC answer in time")
            .unwrap()
            .expect("IRC connection open");
        if let Some(token) = line.strip_prefix("PING ") {
            writer.write_all(format!("PONG {token}\r\n").as_bytes()).await.unwrap();
        }
        if line.split(' ').nth(1) == Some(code) {
            return;
        }
    }
}

impl IrcRoom {
    pub async fn start(ircd: &Ngircd, size: usize) -> IrcRoom {
        let port = ircd.port;
        let (tx, arrivals) = mpsc::unbounded_channel();
        let mut writers = Vec::new();
        let mut tasks = Vec::new();
        for r in 0..size {
            let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(format!("NICK bench{r}\r\nUSER bench{r} 0 * :bench {r}\r\n").as_bytes()).await.unwrap();
            read_until(&mut lines, &mut write, "001").await;
            write.write_all(b"JOIN #bench\r\n").await.unwrap();
            read_until(&mut lines, &mut write, "366").await;
            let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
            tasks.push(tokio::spawn(async move {
                while let Some(line) = out_rx.recv().await {
                    if write.write_all(line.as_bytes()).await.is_err() {
                        break;
                    }
                }
            }));
            let pong = out_tx.clone();
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    // ":nick!user@host PRIVMSG #bench :bench S I"
                    if let Some(token) = line.strip_prefix("PING ") {
                        let _ = pong.send(format!("PONG {token}\r\n"));
                    } else if let Some((_, rest)) = line.split_once(" PRIVMSG #bench :")
                        && let Some((s, i)) = timing::parse(rest)
                    {
                        let _ = tx.send((r, s, i, Instant::now()));
                    } else if line.starts_with("ERROR") && !line.contains("\"done\"") {
                        eprintln!("ngircd closed client {r}: {line}");
                    }
                }
            }));
            writers.push(out_tx);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        IrcRoom { server: ircd.child.id(), writers, arrivals, tasks }
    }

    pub async fn stop(self) {
        for w in &self.writers {
            let _ = w.send("QUIT :done\r\n".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        for t in self.tasks {
            t.abort();
        }
    }
}

impl Room for IrcRoom {
    fn size(&self) -> usize {
        self.writers.len()
    }

    async fn send(&self, sender: usize, text: String) {
        let _ = self.writers[sender].send(format!("PRIVMSG #bench :{text}\r\n"));
    }

    fn arrivals(&mut self) -> &mut mpsc::UnboundedReceiver<Arrival> {
        &mut self.arrivals
    }

    fn outside_process(&self) -> Option<u32> {
        self.server
    }
}
