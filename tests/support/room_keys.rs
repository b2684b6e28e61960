//! Room encryption as a crafted peer does it with the library's [`Keyring`]: a member's own
//! group session sealing the messages it forges and giving their key to members' nodes, and
//! opening the messages a peer holds with the keys it has (a node's kept ones among them).

use std::collections::BTreeSet;
use std::path::Path;

use libp2p::PeerId;
use meshchat::account::AccountId;
use meshchat::cert::Certificate;
use meshchat::e2e::{Keyring, RoomKey};
use meshchat::protocol::keys::{KeysRequest, KeysResponse};
use meshchat::room::EventId;
use meshchat::room::event::{EventPayload, SignedEvent};

use super::sync_peer::SyncPeer;

/// A member's own session in a room, in a crafted peer.
pub struct Writer {
    pub ring: Keyring,
    room: EventId,
    me: AccountId,
}

impl Writer {
    pub fn new(room: EventId, certificate: &Certificate) -> Writer {
        Writer { ring: Keyring::default(), room, me: certificate.body.account }
    }

    /// Message number `seq` saying `text`, sealed (citing `prev`), and its session's key.
    pub fn message(&mut self, prev: &[EventId], seq: u64, text: &str) -> (EventPayload, RoomKey) {
        let sealing = self.ring.seal(self.room, self.me, &BTreeSet::from([self.me]), prev, seq, text);
        (EventPayload::Message { seq, sealed: sealing.sealed }, sealing.key)
    }
}

/// Gives `key` to the node `to` as the holder of `certificate` (through `peer`); what it says.
pub fn give(peer: &SyncPeer, to: PeerId, certificate: &Certificate, key: &RoomKey) -> KeysResponse {
    peer.keys(to, KeysRequest::Give { certificate: certificate.clone(), keys: vec![key.clone()] })
}

/// A keyring holding the room keys kept in the database in `dir` (of a node that quit).
pub fn kept_keyring(dir: &Path) -> Keyring {
    let mut ring = Keyring::default();
    for key in meshchat::store::NodeStore::open(dir).unwrap().room_keys().unwrap() {
        ring.take(key).expect("a kept key is taken");
    }
    ring
}

/// The text of each of `messages` (room message events) that `ring` opens, `None` for each it
/// does not.
pub fn open_all(ring: &mut Keyring, messages: &[SignedEvent]) -> Vec<Option<String>> {
    messages
        .iter()
        .map(|m| {
            let event = m.open_stored().expect("a message event that decodes");
            let EventPayload::Message { seq, sealed } = event.body.payload else { panic!("a message: {event:?}") };
            ring.open(event.room, event.account, seq, &sealed).ok()
        })
        .collect()
}
