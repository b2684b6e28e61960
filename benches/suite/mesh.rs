//! A meshchat room of in-process nodes on loopback (mDNS off), every member's `message`
//! events turned into [`Arrival`]s for the shared timing code.

use std::time::{Duration, Instant};

use meshchat::node::{Client, UiEvent};
use tokio::sync::mpsc;

use super::timing::{self, Arrival, Room};
use crate::support::{Node, room_of};

/// Quiet time after the last member joined, before a run starts: one presence interval and a
/// half second.
const SETTLE: Duration = Duration::from_millis(10_500);

/// `size` nodes, the first hosting the bootstrap, all logged in and members of `#bench`.
pub struct MeshRoom {
    _nodes: Vec<Node>,
    clients: Vec<Client>,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
}

impl MeshRoom {
    pub async fn start(size: usize) -> MeshRoom {
        let mut nodes = room_of(size, "bench").await;
        let (tx, arrivals) = mpsc::unbounded_channel();
        let mut clients = Vec::new();
        for (r, node) in nodes.iter_mut().enumerate() {
            clients.push(node.client.clone());
            let tx = tx.clone();
            let mut events = node.take_events();
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    if let UiEvent::Message(m) = event
                        && let Some((s, i)) = timing::parse(&m.text)
                    {
                        let _ = tx.send((r, s, i, Instant::now()));
                    }
                }
            });
        }
        // Let the room settle before it is timed. A member compares the room with each other
        // member when it first hears, in that member's presence (every 10 s), that it is in the
        // room: at 32 members 992 comparisons within 10 s of the last join. Timing during them
        // measured that start-up work, not the fan-out of a room in use (at 32 members, p99
        // 13–51 ms with 2.5 s of quiet, about 10 ms after one presence interval).
        tokio::time::sleep(SETTLE).await;
        MeshRoom { _nodes: nodes, clients, arrivals }
    }

    pub async fn stop(self) {
        for client in &self.clients {
            client.shutdown().await;
        }
    }
}

impl Room for MeshRoom {
    fn size(&self) -> usize {
        self.clients.len()
    }

    async fn send(&self, sender: usize, text: String) {
        if let Err(e) = self.clients[sender].send_to_room("bench", &text).await {
            eprintln!("send refused: {e:?}");
        }
    }

    fn arrivals(&mut self) -> &mut mpsc::UnboundedReceiver<Arrival> {
        &mut self.arrivals
    }
}
