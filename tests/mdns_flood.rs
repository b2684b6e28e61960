//! A host on the LAN answering mDNS with made-up peers, on a real LAN of network namespaces.
//! Any host can: mDNS answers carry no certificate. libp2p's mDNS keeps every (peer, address)
//! pair it is told of and looks each new one up among all the others, so 100,000 made-up peers
//! would hold a node's loop for minutes; the node starts mDNS afresh beyond a LAN's worth of
//! peers, answers its user at once and keeps its real peers. And every made-up peer is named at
//! an address of the flooding host's choosing: the nodes dial those at a bounded pace.

mod support;

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use meshchat::net::redial::{UNPROVEN_DIAL_BURST, UNPROVEN_DIALS_PER_SEC};
use support::Lab;

/// Made-up peers the flooding host answers with.
const MADE_UP: usize = 100_000;
/// Made-up peers in one answer.
const PER_ANSWER: usize = 20;

/// Appends `dotted` as a DNS name.
fn name(out: &mut Vec<u8>, dotted: &str) {
    for label in dotted.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// Appends a record of `kind` and `class` named `owner` holding `data`, for an hour.
fn record(out: &mut Vec<u8>, owner: &str, (kind, class): (u16, u16), data: &[u8]) {
    name(out, owner);
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&class.to_be_bytes());
    out.extend_from_slice(&3600u32.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

/// An mDNS answer, as libp2p's mDNS reads one, naming `peers` at `ip`.
fn answer(peers: &[PeerId], ip: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let count = peers.len() as u16;
    for field in [0, 0x8400, 0, count, 0, count] {
        out.extend_from_slice(&u16::to_be_bytes(field));
    }
    let names: Vec<String> = peers.iter().map(|p| p.to_base58()[8..40].to_string()).collect();
    for peer_name in &names {
        let mut target = Vec::new();
        name(&mut target, peer_name);
        record(&mut out, "_p2p._udp.local", (12, 0x0001), &target);
    }
    for (peer, peer_name) in peers.iter().zip(&names) {
        let text = format!("dnsaddr=/ip4/{ip}/tcp/{NAMED_PORT}/p2p/{}", peer.to_base58());
        let mut data = vec![text.len() as u8];
        data.extend_from_slice(text.as_bytes());
        // The class with mDNS's cache-flush bit, as libp2p sends it.
        record(&mut out, peer_name, (16, 0x8001), &data);
    }
    out
}

/// The port the made-up peers are named at.
const NAMED_PORT: u16 = 4001;

/// Counts the connections made to `ip`:[`NAMED_PORT`] on host `ns` until `stop` is set, in a
/// thread that enters the host's namespace.
fn count_connections(ns: &str, ip: &str, stop: Arc<AtomicBool>) -> JoinHandle<usize> {
    let (ns, ip) = (ns.to_string(), ip.to_string());
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let counter = std::thread::spawn(move || {
        support::lab::enter_host(&ns);
        let listener =
            TcpListener::bind((ip.parse::<Ipv4Addr>().expect("an address"), NAMED_PORT)).expect("a listener");
        listener.set_nonblocking(true).expect("non-blocking");
        bound_tx.send(()).expect("the test waits");
        let mut count = 0;
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok(_) => count += 1,
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        count
    });
    bound_rx.recv_timeout(Duration::from_secs(5)).expect("the listener is up");
    counter
}

/// Sends [`MADE_UP`] made-up peers to the mDNS group from host `ns` (its address `ip`), in a
/// thread that enters the host's network namespace; how long it took.
fn flood(ns: &str, ip: &str) -> Duration {
    let (ns, ip) = (ns.to_string(), ip.to_string());
    std::thread::spawn(move || {
        support::lab::enter_host(&ns);
        let socket = UdpSocket::bind((ip.parse::<Ipv4Addr>().expect("an address"), 0)).expect("a socket");
        socket.set_multicast_ttl_v4(255).expect("multicast ttl");
        let started = Instant::now();
        for _ in 0..MADE_UP / PER_ANSWER {
            let peers: Vec<PeerId> = (0..PER_ANSWER).map(|_| PeerId::random()).collect();
            socket.send_to(&answer(&peers, &ip), "224.0.0.251:5353").expect("sent");
            // About 2,500 answers a second, which the nodes' sockets take without dropping.
            std::thread::sleep(Duration::from_micros(400));
        }
        started.elapsed()
    })
    .join()
    .expect("the flooding thread")
}

/// Seconds of CPU the process `pid` has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: Vec<f64> = after.split_whitespace().skip(11).take(2).filter_map(|t| t.parse().ok()).collect();
    ticks.iter().sum::<f64>() / 100.0
}

/// The resident memory of the process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|k| k.parse().ok()).unwrap_or(0)
}

#[test]
fn made_up_mdns_peers_do_not_hold_a_node_and_its_real_peers_stay() {
    let Some(lab) = Lab::start(3) else { return };
    let mut alice = lab.node(0, "alice").spawn();
    let mut bob = lab.node(1, "bob").spawn();
    alice.ready();
    bob.ready();
    let (alice_id, bob_id) = (alice.ready_peer_id(), bob.ready_peer_id());
    alice.wait_peer(&bob_id, "connected");
    bob.wait_peer(&alice_id, "connected");

    let cpu_before = cpu_secs(alice.pid());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let counter = count_connections(&lab.hosts[2].ns, &lab.hosts[2].ip, stop.clone());
    let took = flood(&lab.hosts[2].ns, &lab.hosts[2].ip);
    let status = alice.status();
    // Figures for the README, not goals: CPU and memory depend on the machine.
    eprintln!(
        "{MADE_UP} made-up peers sent in {took:?}: alice used {:.2} s of CPU meanwhile, {} KiB resident",
        cpu_secs(alice.pid()) - cpu_before,
        rss_kib(alice.pid())
    );
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let counting = started.elapsed();
    let connections = counter.join().expect("the counting thread");
    // Alice and bob each dial peers never reached at most this often (a tenth of a second
    // more for the moments between a dial planned and a connection counted).
    let paced =
        2.0 * (f64::from(UNPROVEN_DIAL_BURST) + f64::from(UNPROVEN_DIALS_PER_SEC) * (counting.as_secs_f64() + 0.1));
    eprintln!("{connections} connections to the address named in {counting:?} (at most {paced:.0})");
    assert!(connections > 0, "nobody dialled the made-up peers: the test sees nothing");
    assert!(connections as f64 <= paced, "{connections} connections to an address made-up peers were named at");
    let peers = status["peers"].as_array().cloned().unwrap_or_default();
    assert!(peers.iter().any(|p| p == bob_id.as_str()), "bob still among alice's peers: {status}");
    assert!(
        alice.stderr_text().contains("starting it afresh"),
        "alice never started mDNS afresh:\n{}",
        alice.stderr_text()
    );
    // mDNS still finds a real peer that comes now, on the flooding host itself.
    let mut carol = lab.node(2, "carol").spawn();
    carol.ready();
    alice.wait_peer(&carol.ready_peer_id(), "connected");
}
