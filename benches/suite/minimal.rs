//! The minimal libp2p node the memory and start-up figures compare meshchat with: TCP, Noise,
//! yamux and ping, nothing else. Run as this benchmark binary with `MESHCHAT_BENCH_ROLE=minimal`;
//! prints `ready` with its listen address and a `peer` line per connection, as JSON lines like
//! `meshchat --json`, and ends at the end of its input.

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm, SwarmBuilder, identity::Keypair, noise, ping, tcp, yamux};
use serde_json::json;

/// A ping-only swarm under a fresh identity.
pub fn swarm() -> Swarm<ping::Behaviour> {
    SwarmBuilder::with_existing_identity(Keypair::generate_ed25519())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .expect("tcp transport")
        .with_behaviour(|_| ping::Behaviour::default())
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
        .build()
}

fn say(value: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// The node's main loop (in the child process).
pub fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut swarm = swarm();
        swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
        let (eof_tx, mut eof) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = eof_tx.send(());
        });
        loop {
            tokio::select! {
                _ = &mut eof => break,
                event = swarm.select_next_some() => match event {
                    SwarmEvent::NewListenAddr { address, .. } => {
                        say(json!({ "type": "ready", "peer_id": swarm.local_peer_id().to_string(), "listen": [address.to_string()] }))
                    }
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                        say(json!({ "type": "peer", "peer_id": peer_id.to_string(), "state": "connected" }))
                    }
                    _ => {}
                },
            }
        }
    });
}

/// A minimal swarm in this process, dialled to `addr` and kept running until dropped.
pub async fn dialer(addr: &str) -> tokio::task::JoinHandle<()> {
    let mut swarm = swarm();
    swarm.dial(addr.parse::<Multiaddr>().unwrap()).unwrap();
    tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    })
}
