//! Peer exchange (`/meshchat/peers/1`): "which peers do you know, and where?"
//!
//! mDNS only tells a node about peers that answered one of its queries, and a node that hears
//! an answer to someone else's query before sending its own never asks; so a node that starts at
//! the same moment as others can miss some of them. Every new connection therefore asks the
//! peer for the peers it knows, which closes the gap within one round trip. Peer ids and
//! addresses travel in their binary forms; [`PeerRecord::decode`] checks them. An answer is made
//! within the limits the asker reads ([`PeersResponse::new`]): nothing told is skipped.

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

/// What an answer's own fields take when encoded, beyond its records: a map head, the key
/// `peers` and the head of a list of up to [`MAX_PEERS`] records, with room to spare.
const ANSWER_OVERHEAD_BYTES: usize = 16;

impl PeersResponse {
    /// The answer telling of `peers`, in their order: as many as the protocol takes
    /// ([`MAX_PEERS`], each at [`MAX_ADDRS_PER_PEER`] addresses at most), within
    /// [`MAX_RESPONSE_BYTES`] when encoded — a peer whose addresses do not all fit is told at
    /// those that do, one at none is left out — so that the asker reads every record told.
    pub fn new(peers: impl IntoIterator<Item = (PeerId, Vec<Multiaddr>)>) -> Self {
        let mut room = usize::try_from(MAX_RESPONSE_BYTES).unwrap_or(usize::MAX).saturating_sub(ANSWER_OVERHEAD_BYTES);
        let mut records = Vec::new();
        for (peer, addrs) in peers {
            if records.len() >= MAX_PEERS {
                break;
            }
            let mut record = PeerRecord::new(&peer, &addrs);
            while !record.addrs.is_empty() {
                match encoded_len(&record) {
                    Some(len) if len <= room => {
                        room -= len;
                        records.push(record);
                        break;
                    }
                    _ => {
                        record.addrs.pop();
                    }
                }
            }
        }
        PeersResponse { peers: records }
    }

    /// The valid records, at most [`MAX_PEERS`].
    pub fn decode(&self) -> Vec<(PeerId, Vec<Multiaddr>)> {
        self.peers.iter().take(MAX_PEERS).filter_map(PeerRecord::decode).collect()
    }
}

/// How many bytes `record` takes encoded; `None` if it cannot be.
fn encoded_len(record: &PeerRecord) -> Option<usize> {
    cbor4ii::serde::to_vec(Vec::new(), record).ok().map(|bytes| bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_holds_what_the_asker_reads() {
        // 5,000 peers at 16 long addresses each: far more than fits.
        let long = |n: usize| -> Multiaddr {
            format!("/dns4/host-{n:0>40}.example.org/tcp/4001/p2p/{}/p2p-circuit", PeerId::random()).parse().unwrap()
        };
        let peers: Vec<(PeerId, Vec<Multiaddr>)> = (0..5_000)
            .map(|i| (PeerId::random(), (0..MAX_ADDRS_PER_PEER).map(|n| long(i * 100 + n)).collect()))
            .collect();
        let answer = PeersResponse::new(peers.clone());
        assert!(!answer.peers.is_empty() && answer.peers.len() <= MAX_PEERS);
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &answer).unwrap();
        assert!(bytes.len() as u64 <= MAX_RESPONSE_BYTES, "{} bytes", bytes.len());
        let received: PeersResponse = cbor4ii::serde::from_slice(&bytes).unwrap();
        assert_eq!(received, answer, "nothing is skipped as it is read");
        // In the order given, each at its first addresses.
        for ((peer, addrs), (told, told_addrs)) in peers.iter().zip(received.decode()) {
            assert_eq!(*peer, told);
            assert!(!told_addrs.is_empty());
            assert_eq!(told_addrs[..], addrs[..told_addrs.len()]);
        }

        // Short addresses: MAX_PEERS peers, each at every address.
        let short: Vec<(PeerId, Vec<Multiaddr>)> = (0..5_000u16)
            .map(|i| (PeerId::random(), vec![format!("/ip4/10.0.0.1/tcp/{i}").parse().unwrap(); 20]))
            .collect();
        let answer = PeersResponse::new(short);
        assert_eq!(answer.peers.len(), MAX_PEERS);
        assert!(answer.peers.iter().all(|r| r.addrs.len() == MAX_ADDRS_PER_PEER));
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &answer).unwrap();
        assert!(bytes.len() as u64 <= MAX_RESPONSE_BYTES, "{} bytes", bytes.len());
        assert_eq!(PeersResponse::new(Vec::new()), PeersResponse::default());
    }

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

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{
        DECODE_MEMORY_LIMIT, any_bytes, cbor_head, cbor_text, huge_length_inputs, mutated, peak_memory,
    };

    /// Binary peer ids: valid ones, valid ones with a byte changed, and noise.
    fn any_peer_id() -> impl Strategy<Value = Vec<u8>> {
        let valid = any::<[u8; 32]>().prop_map(|seed| {
            let key = libp2p::identity::Keypair::ed25519_from_bytes(seed).unwrap();
            key.public().to_peer_id().to_bytes()
        });
        prop_oneof![valid.clone(), valid.prop_flat_map(mutated), any_bytes(64)]
    }

    /// Binary addresses: valid ones, valid ones with a byte changed, and noise.
    fn any_addr() -> impl Strategy<Value = Vec<u8>> {
        let valid = (any::<[u8; 4]>(), any::<u16>(), any::<bool>()).prop_map(|(ip, port, quic)| {
            let [a, b, c, d] = ip;
            let text = if quic {
                format!("/ip4/{a}.{b}.{c}.{d}/udp/{port}/quic-v1")
            } else {
                format!("/ip4/{a}.{b}.{c}.{d}/tcp/{port}")
            };
            text.parse::<Multiaddr>().unwrap().to_vec()
        });
        prop_oneof![valid.clone(), valid.prop_flat_map(mutated), any_bytes(40)]
    }

    fn any_record() -> impl Strategy<Value = PeerRecord> {
        (any_peer_id(), prop::collection::vec(any_addr(), 0..24))
            .prop_map(|(peer_id, addrs)| PeerRecord { peer_id, addrs })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn records_decode_to_well_formed_peers_or_nothing(record in any_record()) {
            let Some((peer, addrs)) = record.decode() else {
                prop_assert!(PeerId::from_bytes(&record.peer_id).is_err());
                return Ok(());
            };
            prop_assert_eq!(peer.to_bytes(), record.peer_id.clone());
            prop_assert!(addrs.len() <= MAX_ADDRS_PER_PEER);
            let offered = &record.addrs[..record.addrs.len().min(MAX_ADDRS_PER_PEER)];
            for addr in &addrs {
                prop_assert!(!addr.is_empty());
                prop_assert!(offered.contains(&addr.to_vec()), "{} was not offered", addr);
            }
            // A record made from the result decodes to the same.
            prop_assert_eq!(PeerRecord::new(&peer, &addrs).decode(), Some((peer, addrs)));
        }

        #[test]
        fn any_bytes_decode_without_panicking(
            bytes in prop_oneof![
                any_bytes(512),
                prop::collection::vec(any_record(), 0..4)
                    .prop_map(|peers| cbor4ii::serde::to_vec(Vec::new(), &PeersResponse { peers }).unwrap())
                    .prop_flat_map(mutated),
            ],
        ) {
            if let Ok(response) = cbor4ii::serde::from_slice::<PeersResponse>(&bytes) {
                prop_assert!(response.decode().len() <= MAX_PEERS);
            }
            let _ = cbor4ii::serde::from_slice::<PeerRecord>(&bytes);
            let _ = cbor4ii::serde::from_slice::<PeersRequest>(&bytes);
        }
    }

    proptest! {
        // Up to a few hundred records per case: fewer cases.
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn responses_keep_at_most_the_limit(
            records in prop::collection::vec(any_record(), 1..8),
            count in 0usize..MAX_PEERS + 40,
        ) {
            let peers: Vec<PeerRecord> = records.iter().cycle().take(count).cloned().collect();
            let response = PeersResponse { peers };
            let decoded = response.decode();
            prop_assert!(decoded.len() <= MAX_PEERS);
            prop_assert!(decoded.len() <= response.peers.len());
            // On the wire, what is over the limits is skipped while it is read, with the same result.
            let bytes = cbor4ii::serde::to_vec(Vec::new(), &response).unwrap();
            let received: PeersResponse = cbor4ii::serde::from_slice(&bytes).unwrap();
            prop_assert_eq!(received.peers.len(), response.peers.len().min(MAX_PEERS));
            for (got, sent) in received.peers.iter().zip(&response.peers) {
                prop_assert_eq!(&got.peer_id, &sent.peer_id);
                prop_assert_eq!(&got.addrs[..], &sent.addrs[..sent.addrs.len().min(MAX_ADDRS_PER_PEER)]);
            }
            prop_assert_eq!(received.decode(), decoded);
        }
    }

    #[test]
    fn huge_announced_lengths_fail_fast_and_small() {
        for input in huge_length_inputs(&["peers", "peer_id", "addrs"]) {
            let (decoded, peak) = peak_memory(|| cbor4ii::serde::from_slice::<PeersResponse>(&input));
            assert!(decoded.is_err(), "{input:x?}");
            assert!(peak < DECODE_MEMORY_LIMIT, "{peak} bytes for {input:x?}");
            let (decoded, peak) = peak_memory(|| cbor4ii::serde::from_slice::<PeerRecord>(&input));
            assert!(decoded.is_err(), "{input:x?}");
            assert!(peak < DECODE_MEMORY_LIMIT, "{peak} bytes for {input:x?}");
        }
    }

    /// A full-size answer of the smallest possible records, or of one record with as many empty
    /// addresses as fit, holds a fraction of its size: what is over the limits is skipped.
    #[test]
    fn a_full_size_answer_of_tiny_records_is_bounded() {
        let size = MAX_RESPONSE_BYTES as usize;
        let mut many_records = vec![0xa1, 0x65];
        many_records.extend_from_slice(b"peers");
        let tiny = cbor4ii::serde::to_vec(Vec::new(), &PeerRecord { peer_id: vec![], addrs: vec![] }).unwrap();
        let count = (size - many_records.len() - 9) / tiny.len();
        many_records.extend(cbor_head(4, count as u64));
        for _ in 0..count {
            many_records.extend_from_slice(&tiny);
        }
        let mut many_addrs = vec![0xa1, 0x65];
        many_addrs.extend_from_slice(b"peers");
        many_addrs.extend_from_slice(&[0x81, 0xa2]);
        many_addrs.extend(cbor_text("peer_id"));
        many_addrs.push(0x80);
        many_addrs.extend(cbor_text("addrs"));
        let count = size - many_addrs.len() - 9;
        many_addrs.extend(cbor_head(4, count as u64));
        many_addrs.resize(size, 0x80);
        for input in [many_records, many_addrs] {
            let (decoded, peak) = peak_memory(|| cbor4ii::serde::from_slice::<PeersResponse>(&input));
            assert!(decoded.is_ok());
            assert!(peak < size / 8, "{peak} bytes for {} input bytes", input.len());
        }
    }
}
