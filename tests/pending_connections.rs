//! A host on the LAN that opens connections to a node and says nothing on them, opening new ones
//! as the node gives up on the old: each is a connection being set up until its handshake times
//! out, and a node takes only so many of those at once. On a real LAN of network namespaces,
//! the host holds as many as it can of alice's; bob, who is given alice's address, still
//! connects to her at once.

mod support;

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use support::Lab;

/// Silent connections the host keeps open to alice (more than a node sets up at once).
const SILENT: usize = 300;
/// alice's port.
const PORT: u16 = 4001;

/// Whether `stream` was closed by the other end.
fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    }
}

/// From host `ns`, keeps [`SILENT`] connections open to `to`, saying nothing on them and
/// opening a new one for each the other end closes, until `stop` is set; how many it opened.
fn hold_silent_connections(ns: &str, to: SocketAddr, stop: Arc<AtomicBool>) -> JoinHandle<usize> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        support::lab::enter_host(&ns);
        let mut open: Vec<TcpStream> = Vec::new();
        let mut opened = 0;
        while !stop.load(Ordering::Relaxed) {
            open.retain_mut(|s| !closed(s));
            while open.len() < SILENT && !stop.load(Ordering::Relaxed) {
                let Ok(stream) = TcpStream::connect_timeout(&to, Duration::from_millis(500)) else { break };
                if stream.set_nonblocking(true).is_err() {
                    break;
                }
                open.push(stream);
                opened += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        opened
    })
}

#[test]
fn a_host_holding_silent_connections_does_not_keep_others_from_connecting() {
    let Some(lab) = Lab::start(3) else { return };
    let listen = format!("/ip4/{}/tcp/{PORT}", lab.hosts[0].ip);
    let mut alice = lab.node(0, "alice").args(&["--no-mdns", "--listen", &listen]).spawn();
    alice.ready();
    let alice_id = alice.ready_peer_id();
    let stop = Arc::new(AtomicBool::new(false));
    let to: SocketAddr = format!("{}:{PORT}", lab.hosts[0].ip).parse().expect("alice's address");
    let mallory = hold_silent_connections(&lab.hosts[2].ns, to, stop.clone());
    // Time for the silent connections to take every place they can.
    std::thread::sleep(Duration::from_secs(2));
    let mut bob = lab.node(1, "bob").args(&["--no-mdns", "--peer", &listen]).spawn();
    bob.ready();
    let connected = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        bob.wait_peer(&alice_id, "connected");
    }));
    stop.store(true, Ordering::Relaxed);
    let opened = mallory.join().expect("the silent host's thread");
    eprintln!("the silent host opened {opened} connections to alice");
    assert!(opened >= SILENT, "the silent host opened only {opened} connections: the test sees nothing");
    assert!(connected.is_ok(), "bob could not connect to alice while a host held silent connections to her");
    // alice still answers.
    alice.send("/status");
    alice.wait_type("status");
}
