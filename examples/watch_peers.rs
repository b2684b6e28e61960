//! A program on the meshchat library, without the REPL: it runs a node and prints who connects
//! and leaves, then its status, until Ctrl-C.
//!
//! ```sh
//! cargo run --example watch_peers -- /tmp/watcher /ip4/127.0.0.1/tcp/4001
//! ```
//! The first argument is a data directory; the others are peers to dial. mDNS stays off, so it
//! is safe to run anywhere.

use meshchat::identity::DataDir;
use meshchat::node::{self, EVENT_CAPACITY, NodeConfig, PeerState, UiEvent};
use meshchat::pinned_key::Trust;
use meshchat::store::NodeStore;
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or_else(|| anyhow::anyhow!("usage: watch_peers DATA_DIR [PEER_MULTIADDR]..."))?;
    let peers = args.map(|a| a.parse()).collect::<Result<Vec<_>, _>>()?;
    let data_dir = DataDir::open(std::path::Path::new(&dir))?;
    let config = NodeConfig {
        key: data_dir.node_key()?,
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        peers,
        mdns: false,
        store: NodeStore::open(data_dir.path())?,
        trust: Trust::load(data_dir.path(), None)?,
        bootstrap: None,
        mailbox: false,
        public_addr: None,
    };
    let (events_tx, mut events) = mpsc::channel(EVENT_CAPACITY);
    let (client, node) = node::spawn(config, events_tx)?;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(UiEvent::Ready { peer_id, listen, .. }) => println!("I am {peer_id} on {listen:?}"),
                Some(UiEvent::Peer { peer_id, state: PeerState::Connected }) => {
                    let status = client.status().await?;
                    println!("+ {peer_id} ({} connected)", status.peers.len());
                }
                Some(UiEvent::Peer { peer_id, state: PeerState::Disconnected }) => println!("- {peer_id}"),
                Some(_) => {}
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    client.shutdown().await;
    node.await?;
    Ok(())
}
