//! A LAN on one machine: N hosts, each a Linux network namespace with a veth into a private
//! bridge (itself in a namespace of its own), addresses 10.77.0.i/24, and a multicast route so
//! mDNS works. Nothing leaves the lab: the bridge has no uplink.
//!
//! Needs root and `ip`. Without them a lab test says so and skips, except under `CI=true`,
//! where a missing capability fails the run. Labs tear themselves down on drop, and a new lab
//! removes labs left behind by test processes that no longer exist.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::driver::NodeBuilder;

/// Prefix of every namespace a lab creates.
pub(crate) const PREFIX: &str = "mcl";
pub(crate) static COUNTER: AtomicUsize = AtomicUsize::new(0);
/// Lab tests in one test binary run one at a time: timing in a lab means little when the two
/// cores are shared with another lab.
pub(crate) static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Moves the calling thread (only it) into the network namespace `ns`, a lab host's: what it
/// opens from then on, it opens from that host.
pub fn enter_host(ns: &str) {
    use std::os::fd::AsRawFd;
    let host = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("the host's namespace");
    // SAFETY: setns with a namespace file just opened; it moves this thread only.
    assert_eq!(unsafe { libc::setns(host.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "entering {ns}");
}

/// One host of the lab.
#[derive(Debug, Clone)]
pub struct Host {
    /// The host's network namespace.
    pub ns: String,
    /// Its address on the lab LAN.
    pub ip: String,
    /// The bridge port its cable plugs into.
    pub(crate) port: String,
}

/// A lab of hosts on one bridge.
pub struct Lab {
    switch: String,
    pub hosts: Vec<Host>,
    _turn: MutexGuard<'static, ()>,
}

pub(crate) fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

pub(crate) fn unavailable<T>(reason: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the LAN lab is required under CI=true but is unavailable: {reason}");
    }
    eprintln!("skipping: the LAN lab needs root and `ip` ({reason})");
    None
}

/// Deletes lab namespaces whose creating process is gone.
pub(crate) fn remove_stale_labs() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let mut parts = name.split('-');
        if parts.next() != Some(PREFIX) {
            continue;
        }
        let Some(pid) = parts.next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

impl Lab {
    /// Builds a lab of `n` hosts, or returns `None` (after saying why) when this machine cannot.
    pub fn start(n: usize) -> Option<Lab> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return unavailable("not running as root");
        }
        if Command::new("ip").arg("-V").output().is_err() {
            return unavailable("`ip` (iproute2) is not installed");
        }
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        remove_stale_labs();
        let tag = format!("{PREFIX}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let mut lab = Lab { switch: format!("{tag}-sw"), hosts: Vec::new(), _turn: turn };
        if let Err(e) = lab.build(&tag, n) {
            drop(lab);
            return unavailable(&e);
        }
        Some(lab)
    }

    fn build(&mut self, tag: &str, n: usize) -> Result<(), String> {
        let sw = self.switch.clone();
        ip(&["netns", "add", &sw])?;
        ip(&["-n", &sw, "link", "set", "lo", "up"])?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for i in 1..=n {
            let host = Host { ns: format!("{tag}-h{i}"), ip: format!("10.77.0.{i}"), port: format!("p{i}") };
            ip(&["netns", "add", &host.ns])?;
            self.hosts.push(host.clone());
            ip(&["-n", &host.ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &host.ns, "link", "add", "eth0", "type", "veth", "peer", "name", &host.port, "netns", &sw])?;
            ip(&["-n", &sw, "link", "set", &host.port, "master", "br0"])?;
            ip(&["-n", &sw, "link", "set", &host.port, "up"])?;
            ip(&["-n", &host.ns, "addr", "add", &format!("{}/24", host.ip), "dev", "eth0"])?;
            ip(&["-n", &host.ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &host.ns, "route", "add", "224.0.0.0/4", "dev", "eth0"])?;
        }
        Ok(())
    }

    /// A node on host `i` (0-based), with mDNS and the default listen addresses.
    pub fn node(&self, i: usize, name: &str) -> NodeBuilder {
        NodeBuilder::new(name).netns(&self.hosts[i].ns)
    }

    /// Unplugs host `i`'s cable.
    pub fn cut(&self, i: usize) {
        ip(&["-n", &self.switch, "link", "set", &self.hosts[i].port, "down"]).expect("cut link");
    }

    /// Hosts `a` and `b` can no longer reach each other (each drops what it sends the other);
    /// both still reach every other host, and still hear each other's mDNS.
    pub fn separate(&self, a: usize, b: usize) {
        for (from, to) in [(a, b), (b, a)] {
            let target = format!("{}/32", self.hosts[to].ip);
            ip(&["-n", &self.hosts[from].ns, "route", "add", "blackhole", &target]).expect("separate hosts");
        }
    }

    /// Undoes [`Self::separate`]: hosts `a` and `b` reach each other again.
    pub fn join(&self, a: usize, b: usize) {
        for (from, to) in [(a, b), (b, a)] {
            let target = format!("{}/32", self.hosts[to].ip);
            ip(&["-n", &self.hosts[from].ns, "route", "del", "blackhole", &target]).expect("join hosts");
        }
    }

    /// Plugs host `i`'s cable back in.
    pub fn heal(&self, i: usize) {
        ip(&["-n", &self.switch, "link", "set", &self.hosts[i].port, "up"]).expect("heal link");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = ip(&["netns", "del", &host.ns]);
        }
        let _ = ip(&["netns", "del", &self.switch]);
    }
}
