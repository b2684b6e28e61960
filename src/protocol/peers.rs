//! Peer exchange (`/meshchat/peers/1`): "which peers do you know, and where?"
//!
//! mDNS only tells a node about peers that answered one of its queries, and a node that hears
//! an answer to someone else's query before sending its own never asks; so a node that starts at
//! the same moment as others can miss some of them. Every new connection therefore asks the
//! peer for the peers it knows, which closes the gap within one round trip. Peer ids and
//! addresses travel in their binary forms; [`PeerRecord::decode`] checks them.

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

/// The protocol name.
pub const PROTOCOL: &str = "/meshchat/peers/1";
/// At most this many peers in one answer; more are dropped on both sides.
pub const MAX_PEERS: usize = 256;
/// At most this many addresses per peer.
pub const MAX_ADDRS_PER_PEER: usize = 16;
/// The largest encoded answer accepted, in bytes.
pub const MAX_RESPONSE_BYTES: u64 = 256 * 1024;
/// The largest encoded request accepted, in bytes.
pub const MAX_REQUEST_BYTES: u64 = 1024;

/// "Which peers do you know?"
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PeersRequest {}

/// The answer: the peers the answering node knows, with their addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PeersResponse {
    /// Records beyond [`MAX_PEERS`] are skipped while they are read.
    #[serde(deserialize_with = "super::bounded::first::<_, _, MAX_PEERS>")]
    pub peers: Vec<PeerRecord>,
}

/// One peer and where it listens, in binary form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    pub peer_id: Vec<u8>,
    /// Addresses beyond [`MAX_ADDRS_PER_PEER`] are skipped while they are read.
    #[serde(deserialize_with = "super::bounded::first::<_, _, MAX_ADDRS_PER_PEER>")]
    pub addrs: Vec<Vec<u8>>,
}

impl PeerRecord {
    /// Encodes a peer and its addresses (at most [`MAX_ADDRS_PER_PEER`]).
    pub fn new(peer: &PeerId, addrs: &[Multiaddr]) -> Self {
        PeerRecord {
            peer_id: peer.to_bytes(),
            addrs: addrs.iter().take(MAX_ADDRS_PER_PEER).map(|a| a.to_vec()).collect(),
        }
    }

    /// The peer and its valid addresses; `None` when the peer id is malformed. Malformed or
    /// empty addresses, and any beyond the limit, are dropped.
    pub fn decode(&self) -> Option<(PeerId, Vec<Multiaddr>)> {
        let peer = PeerId::from_bytes(&self.peer_id).ok()?;
        let addrs = self
            .addrs
            .iter()
            .take(MAX_ADDRS_PER_PEER)
            .filter_map(|bytes| Multiaddr::try_from(bytes.clone()).ok())
            .filter(|addr| !addr.is_empty())
            .collect();
        Some((peer, addrs))
    }
}

impl PeersResponse {
    /// The valid records, at most [`MAX_PEERS`].
    pub fn decode(&self) -> Vec<(PeerId, Vec<Multiaddr>)> {
        self.peers.iter().take(MAX_PEERS).filter_map(PeerRecord::decode).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let peer = PeerId::random();
        let addrs: Vec<Multiaddr> = vec!["/ip4/10.77.0.1/tcp/4001".parse().unwrap()];
        let response = PeersResponse { peers: vec![PeerRecord::new(&peer, &addrs)] };
        assert_eq!(response.decode(), vec![(peer, addrs)]);
    }

    #[test]
    fn malformed_records_are_dropped() {
        let peer = PeerId::random();
        let response = PeersResponse {
            peers: vec![
                PeerRecord { peer_id: vec![1, 2, 3], addrs: vec![] },
                PeerRecord { peer_id: peer.to_bytes(), addrs: vec![vec![0xff, 0xff], vec![]] },
            ],
        };
        let decoded = response.decode();
        assert_eq!(decoded.len(), 1);
        assert_eq!(decoded[0].0, peer);
        assert!(decoded[0].1.is_empty(), "{:?}", decoded[0].1);
    }

    #[test]
    fn oversized_answers_are_capped() {
        let addr: Multiaddr = "/ip4/10.77.0.1/tcp/1".parse().unwrap();
        let record = PeerRecord::new(&PeerId::random(), &vec![addr; 40]);
        assert_eq!(record.addrs.len(), MAX_ADDRS_PER_PEER);
        let response = PeersResponse { peers: vec![record; MAX_PEERS + 10] };
        assert_eq!(response.decode().len(), MAX_PEERS);
    }
}
