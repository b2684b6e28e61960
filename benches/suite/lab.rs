//! Figure 8: discovery in a LAN lab. Three hosts, each a network namespace with a veth into a
//! private bridge (10.77.0.0/24, no uplink), run the release `meshchat` with mDNS on and its
//! default listen addresses; host 1 also hosts the bootstrap. Measured from the moment all
//! three are spawned: until every host is connected to both others, and until a first room
//! message has reached everyone (registering, creating and joining the room on the way); and
//! that message's own delivery time. The namespaces are deleted afterwards; needs root and `ip`.

use std::path::Path;
use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use tokio::process::Command;

use super::process::Proc;
use super::report::{Better, Row, Runs};
use crate::support::PASSWORD;

const HOSTS: usize = 3;

const LIMIT: Duration = Duration::from_secs(20);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = StdCommand::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The lab's namespaces; deleted on drop.
struct Lab {
    names: Vec<String>,
}

impl Lab {
    fn build() -> Result<Lab, String> {
        let tag = format!("mcb-{}", std::process::id());
        let sw = format!("{tag}-sw");
        let mut lab = Lab { names: vec![sw.clone()] };
        ip(&["netns", "add", &sw])?;
        ip(&["-n", &sw, "link", "set", "lo", "up"])?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for i in 1..=HOSTS {
            let ns = format!("{tag}-h{i}");
            ip(&["netns", "add", &ns])?;
            lab.names.push(ns.clone());
            let port = format!("p{i}");
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns", &sw])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &sw, "link", "set", &port, "up"])?;
            ip(&["-n", &ns, "addr", "add", &format!("10.77.0.{i}/24"), "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "eth0"])?;
        }
        Ok(lab)
    }

    fn host(&self, i: usize) -> &str {
        &self.names[i + 1]
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in self.names.iter().rev() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

fn start(binary: &Path, ns: &str, bootstrap: bool) -> Proc {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(binary).arg("--data-dir").arg(dir.path()).arg("--json");
    if bootstrap {
        cmd.arg("--bootstrap");
    }
    Proc::spawn(cmd, Some(dir))
}

struct Times {
    all_connected: f64,
    first_message: f64,
    delivery: f64,
}

async fn once(binary: &Path) -> Result<Times, String> {
    let lab = Lab::build()?;
    let mut hosts: Vec<Proc> = (0..HOSTS).map(|i| start(binary, lab.host(i), i == 0)).collect();
    let spawned = hosts.iter().map(|h| h.spawned).min().unwrap();
    let mut connected = spawned;
    for h in &mut hosts {
        for _ in 0..HOSTS - 1 {
            let (_, at) = h.wait(LIMIT, |v| v["type"] == "peer" && v["state"] == "connected").await;
            connected = connected.max(at);
        }
    }
    for (i, h) in hosts.iter_mut().enumerate() {
        if i > 0 {
            // A fresh node meets the bootstrap unconfirmed; the bench confirms its key.
            let (v, _) = h
                .wait(LIMIT, |v| v["type"] == "bootstrap" && (v["state"] == "found" || v["state"] == "unconfirmed"))
                .await;
            if v["state"] == "unconfirmed" {
                h.send_line(&format!("/trust {}", v["key"].as_str().unwrap_or_default())).await;
                h.wait(LIMIT, |v| v["type"] == "bootstrap" && v["state"] == "found").await;
            }
        }
        h.send_line(&format!("/register labuser{i}")).await;
        h.send_line(PASSWORD).await;
        h.wait(LIMIT, |v| v["type"] == "logged_in").await;
    }
    hosts[0].send_line("/create lab").await;
    hosts[0].wait(LIMIT, |v| v["type"] == "room_created").await;
    for (i, h) in hosts.iter_mut().enumerate().skip(1) {
        let deadline = Instant::now() + LIMIT;
        loop {
            h.send_line("/join lab").await;
            let me = format!("labuser{i}");
            let (v, _) =
                h.wait(LIMIT, |v| (v["type"] == "joined" && v["user"] == me.as_str()) || v["type"] == "error").await;
            if v["type"] == "joined" {
                break;
            }
            if Instant::now() > deadline {
                return Err("cannot join the lab room".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let sent = Instant::now();
    hosts[0].send_line("hello lab").await;
    let mut delivered = sent;
    for h in &mut hosts[1..] {
        let (_, at) = h.wait(LIMIT, |v| v["type"] == "message" && v["text"] == "hello lab").await;
        delivered = delivered.max(at);
    }
    for h in hosts {
        h.stop().await;
    }
    drop(lab);
    Ok(Times {
        all_connected: connected.duration_since(spawned).as_secs_f64() * 1000.0,
        first_message: delivered.duration_since(spawned).as_secs_f64() * 1000.0,
        delivery: delivered.duration_since(sent).as_secs_f64() * 1000.0,
    })
}

pub async fn run(binary: &Path, reps: usize) -> Vec<Row> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("  lab skipped: needs root");
        return Vec::new();
    }
    let (mut connected, mut first, mut delivery) = (vec![], vec![], vec![]);
    for _ in 0..reps {
        match once(binary).await {
            Ok(t) => {
                eprintln!(
                    "  lab: all connected {:.1} ms, first room message everywhere {:.1} ms (delivery {:.2} ms)",
                    t.all_connected, t.first_message, t.delivery
                );
                connected.push(t.all_connected);
                first.push(t.first_message);
                delivery.push(t.delivery);
            }
            Err(e) => {
                eprintln!("  lab skipped: {e}");
                return Vec::new();
            }
        }
    }
    let row = |what: &str, runs: Vec<f64>, note: &str| Row {
        figure: 8,
        what: what.into(),
        unit: "ms".into(),
        meshchat: Runs::new(runs),
        anchor_name: String::new(),
        anchor: None,
        better: Better::Lower,
        goal: String::new(),
        met: None,
        note: note.into(),
    };
    vec![
        row(
            "lab, 3 hosts started together: spawn to every host connected to both others (mDNS)",
            connected,
            "3 network namespaces on a private bridge, release binary, mDNS on; no anchor",
        ),
        row(
            "lab: spawn to a first room message shown on every host",
            first,
            "includes 3 registrations (argon2), creating and joining the room, driven over stdin as fast as the events come",
        ),
        row("lab: that first message's delivery to both others", delivery, ""),
    ]
}
