//! Networks beyond one LAN on one machine: a "public" segment (10.77.100.0/24) and offices, each
//! a LAN of its own (10.77.N.0/24) behind a router namespace that does NAT (nftables
//! masquerade) onto the public segment, as a home or office router does. Hosts of one office
//! hear each other's mDNS; nothing crosses a router but what the NAT lets through, and nothing
//! leaves the lab.
//!
//! Needs root, `ip` and `nft`; like [`super::Lab`], a test skips without them, except under
//! `CI=true`.

use std::process::Command;
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

use super::driver::NodeBuilder;
use super::lab::{COUNTER, Host, ONE_AT_A_TIME, PREFIX, ip, remove_stale_labs, unavailable};

/// The public segment's network.
pub const PUBLIC_NET: &str = "10.77.100";

/// How an office's router maps its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    /// Each connection leaves from its own port where free (the mapping a peer learns from the
    /// bootstrap is the one it can punch through): most home and office routers.
    PortPreserving,
    /// Each connection leaves from a random port: no peer can guess the mapping, so no hole can
    /// be punched (a "symmetric" NAT, as some carrier and corporate ones are).
    Symmetric,
}

/// The lab: public hosts, and offices of hosts behind their routers.
pub struct Sites {
    switch: String,
    routers: Vec<String>,
    /// Hosts on the public segment.
    pub public: Vec<Host>,
    /// Hosts of each office.
    pub offices: Vec<Vec<Host>>,
    _turn: MutexGuard<'static, ()>,
}

fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<(), String> {
    use std::io::Write;
    let mut command = Command::new(program);
    command.args(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
    if input.is_some() {
        command.stdin(std::process::Stdio::piped());
    }
    let mut child = command.spawn().map_err(|e| format!("{program}: {e}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).map_err(|e| format!("{program}: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Sites {
    /// Builds `public` hosts on the public segment and, for each entry of `offices`, an office
    /// of that many hosts behind a NAT router; or returns `None` (after saying why) when this
    /// machine cannot.
    pub fn start(public: usize, offices: &[(usize, Nat)]) -> Option<Sites> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return unavailable("not running as root");
        }
        for (tool, arg) in [("ip", "-V"), ("nft", "--version")] {
            if Command::new(tool).arg(arg).output().is_err() {
                return unavailable(&format!("`{tool}` is not installed"));
            }
        }
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        remove_stale_labs();
        let tag = format!("{PREFIX}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let mut sites = Sites {
            switch: format!("{tag}-sw"),
            routers: Vec::new(),
            public: Vec::new(),
            offices: Vec::new(),
            _turn: turn,
        };
        if let Err(e) = sites.build(&tag, public, offices) {
            drop(sites);
            return unavailable(&e);
        }
        Some(sites)
    }

    /// A host `ns` with address `addr`/24 on bridge `bridge` through port `port`.
    fn plug(&self, ns: &str, iface: &str, port: &str, bridge: &str, addr: &str) -> Result<(), String> {
        let sw = &self.switch;
        ip(&["-n", ns, "link", "add", iface, "type", "veth", "peer", "name", port, "netns", sw])?;
        ip(&["-n", sw, "link", "set", port, "master", bridge])?;
        ip(&["-n", sw, "link", "set", port, "up"])?;
        ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", iface])?;
        ip(&["-n", ns, "link", "set", iface, "up"])?;
        Ok(())
    }

    fn build(&mut self, tag: &str, public: usize, offices: &[(usize, Nat)]) -> Result<(), String> {
        let sw = self.switch.clone();
        ip(&["netns", "add", &sw])?;
        ip(&["-n", &sw, "link", "set", "lo", "up"])?;
        for bridge in std::iter::once("br0".to_string()).chain((1..=offices.len()).map(|o| format!("br{o}"))) {
            ip(&["-n", &sw, "link", "add", &bridge, "type", "bridge"])?;
            ip(&["-n", &sw, "link", "set", &bridge, "up"])?;
        }
        for i in 1..=public {
            let host = Host { ns: format!("{tag}-h{i}"), ip: format!("{PUBLIC_NET}.{}", i + 1), port: format!("p{i}") };
            ip(&["netns", "add", &host.ns])?;
            self.public.push(host.clone());
            ip(&["-n", &host.ns, "link", "set", "lo", "up"])?;
            self.plug(&host.ns, "eth0", &host.port, "br0", &host.ip)?;
            ip(&["-n", &host.ns, "route", "add", "224.0.0.0/4", "dev", "eth0"])?;
        }
        for (o, &(count, nat)) in offices.iter().enumerate() {
            let office = o + 1;
            let router = format!("{tag}-r{office}");
            ip(&["netns", "add", &router])?;
            self.routers.push(router.clone());
            ip(&["-n", &router, "link", "set", "lo", "up"])?;
            let wan = format!("{PUBLIC_NET}.{}", 200 + office);
            let lan_gateway = format!("10.77.{office}.1");
            self.plug(&router, "wan", &format!("w{office}"), "br0", &wan)?;
            self.plug(&router, "lan", &format!("l{office}"), &format!("br{office}"), &lan_gateway)?;
            run("ip", &["netns", "exec", &router, "sysctl", "-qw", "net.ipv4.ip_forward=1"], None)?;
            // The router's NAT: the office's connections leave with the router's public address
            // (and, where free, their own port); from outside, only answers come in, and what is
            // not an answer is dropped unanswered, as home and office routers do.
            let masquerade = match nat {
                Nat::PortPreserving => "masquerade",
                Nat::Symmetric => "masquerade fully-random",
            };
            let rules = format!(
                "table ip nat {{\n \
                 chain postrouting {{ type nat hook postrouting priority srcnat; oifname \"wan\" {masquerade}; }}\n\
                 }}\n\
                 table ip filter {{\n \
                 chain input {{ type filter hook input priority filter; iifname \"wan\" ct state new drop; }}\n \
                 chain forward {{ type filter hook forward priority filter; iifname \"wan\" ct state new drop; }}\n\
                 }}\n"
            );
            run("ip", &["netns", "exec", &router, "nft", "-f", "-"], Some(&rules))?;
            let mut hosts = Vec::new();
            for i in 1..=count {
                let host = Host {
                    ns: format!("{tag}-o{office}h{i}"),
                    ip: format!("10.77.{office}.{}", i + 1),
                    port: format!("o{office}p{i}"),
                };
                ip(&["netns", "add", &host.ns])?;
                hosts.push(host.clone());
                ip(&["-n", &host.ns, "link", "set", "lo", "up"])?;
                self.plug(&host.ns, "eth0", &host.port, &format!("br{office}"), &host.ip)?;
                ip(&["-n", &host.ns, "route", "add", "224.0.0.0/4", "dev", "eth0"])?;
                ip(&["-n", &host.ns, "route", "add", "default", "via", &lan_gateway])?;
            }
            self.offices.push(hosts);
        }
        Ok(())
    }

    /// A node on public host `i` (0-based), with mDNS and the default listen addresses.
    pub fn public_node(&self, i: usize, name: &str) -> NodeBuilder {
        NodeBuilder::new(name).netns(&self.public[i].ns)
    }

    /// A node on host `i` of office `office` (both 0-based).
    pub fn office_node(&self, office: usize, i: usize, name: &str) -> NodeBuilder {
        NodeBuilder::new(name).netns(&self.offices[office][i].ns)
    }
}

impl Drop for Sites {
    fn drop(&mut self) {
        for host in self.public.iter().chain(self.offices.iter().flatten()) {
            let _ = ip(&["netns", "del", &host.ns]);
        }
        for router in &self.routers {
            let _ = ip(&["netns", "del", router]);
        }
        let _ = ip(&["netns", "del", &self.switch]);
    }
}
