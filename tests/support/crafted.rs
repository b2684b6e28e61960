//! What a crafted peer builds and reads beside real nodes: events signed with a user's key and
//! certificate, catch-up requests, the heads a member gives, the control events a node that
//! quit kept and their heads, what a former member's catch-up page holds, and a user announced
//! online in #lobby.

use std::path::Path;

use libp2p::PeerId;
use libp2p::gossipsub::IdentTopic;
use libp2p::identity::Keypair;
use meshchat::account::AccountId;
use meshchat::cert::Certificate;
use meshchat::clock::now_ms;
use meshchat::e2e::Keyring;
use meshchat::protocol::presence::{self, Presence, PresenceState, RoomRef};
use meshchat::protocol::sync::{CatchUpRequest, SyncRequest, SyncResponse};
use meshchat::room::EventId;
use meshchat::room::event::{EventBody, EventPayload, SignedEvent, VerifiedEvent};

use super::room_keys::open_all;
use super::sync_peer::SyncPeer;

/// The room's control events kept in the database in `dir` (of a node that quit).
pub fn kept_events(dir: &Path, room: EventId) -> Vec<VerifiedEvent> {
    let store = meshchat::store::NodeStore::open(dir).unwrap();
    let rows = store.room_events().unwrap();
    rows.iter().filter_map(|b| SignedEvent::decode(b).ok()?.open_stored()).filter(|e| e.room == room).collect()
}

/// The heads among `events` (the control events no other one cites) and the depth of an
/// event citing them.
pub fn heads_of(events: &[VerifiedEvent]) -> (Vec<EventId>, u64) {
    let control = events.iter().filter(|e| !matches!(e.body.payload, EventPayload::Message { .. }));
    let heads: Vec<&VerifiedEvent> =
        control.filter(|e| !events.iter().any(|other| other.body.prev.contains(&e.id))).collect();
    let depth = heads.iter().map(|e| e.body.depth).max().expect("heads") + 1;
    let mut ids: Vec<EventId> = heads.iter().map(|e| e.id).collect();
    ids.sort();
    (ids, depth)
}

/// The room's heads as `peer` gets them from `to` with `certificate`, opened.
pub fn asked_heads(peer: &SyncPeer, to: PeerId, room: EventId, certificate: &Certificate) -> Vec<SignedEvent> {
    match peer.ask(to, SyncRequest::Heads { room, certificate: certificate.clone() }) {
        SyncResponse::Heads { events } => events,
        other => panic!("the heads, not {other:?}"),
    }
}

pub fn opened(events: &[SignedEvent]) -> Vec<VerifiedEvent> {
    events.iter().map(|e| e.open_stored().expect("an event that decodes")).collect()
}

/// An event of the holder of `key` and `certificate` in `room`, citing `prev`, at `depth`.
pub fn sealed(
    key: &Keypair,
    certificate: &Certificate,
    room: EventId,
    prev: &[EventId],
    depth: u64,
    ts_ms: u64,
    payload: EventPayload,
) -> Vec<u8> {
    let body = EventBody {
        author: certificate.body.account,
        room: Some(room),
        prev: prev.to_vec(),
        depth,
        ts_ms,
        nonce: rand::random(),
        payload,
    };
    SignedEvent::seal(key, certificate, &body).expect("a signed event").encode()
}

/// A catch-up request for everything: no heads known, no messages held.
pub fn catch_up_everything(room: EventId, certificate: &Certificate) -> SyncRequest {
    SyncRequest::CatchUp(Box::new(CatchUpRequest {
        room,
        certificate: certificate.clone(),
        known: Vec::new(),
        after: None,
        marks: Vec::new(),
        messages_after: None,
        join: None,
    }))
}

/// The room's control events as the node `to` serves them to the member holding
/// `certificate` (through `peer`), in one catch-up page.
pub fn events_served(peer: &SyncPeer, to: PeerId, room: EventId, certificate: &Certificate) -> Vec<SignedEvent> {
    match peer.ask(to, catch_up_everything(room, certificate)) {
        SyncResponse::Page { events, .. } => events,
        other => panic!("the room's events for a member: {other:?}"),
    }
}

/// What a former member's catch-up page holds, checked to stop at its removal: the authors and
/// payloads of its events (`removal` among them, none deeper) and the texts of its messages,
/// each opened with the keys of `ring` (what the former member held).
pub fn page_up_to(
    events: &[SignedEvent],
    messages: &[SignedEvent],
    removal: &EventPayload,
    ring: &mut Keyring,
) -> (Vec<(String, EventPayload)>, Vec<String>) {
    let events = opened(events);
    let actions: Vec<(String, EventPayload)> =
        events.iter().map(|e| (e.author.clone(), e.body.payload.clone())).collect();
    let removed_at = events.iter().find(|e| e.body.payload == *removal).map(|e| e.body.depth);
    let removed_at = removed_at.unwrap_or_else(|| panic!("the removal among the events: {actions:?}"));
    assert!(events.iter().all(|e| e.body.depth <= removed_at), "an event after the removal: {actions:?}");
    let texts: Vec<Option<String>> = open_all(ring, messages);
    assert!(texts.iter().all(Option::is_some), "a message served that the former member cannot read: {texts:?}");
    (actions, texts.into_iter().flatten().collect())
}

/// The crafted peer `peer`, holding a user's key and certificate, announces that user online
/// and in `lobby` (called #lobby, created by `creator`) to the node `to`, as a node would.
pub fn announce_in_lobby(
    peer: &SyncPeer,
    to: PeerId,
    (key, certificate): (&Keypair, &Certificate),
    lobby: EventId,
    creator: AccountId,
) {
    let topic = IdentTopic::new(presence::TOPIC);
    peer.subscribe(&topic);
    peer.wait_subscribed(&topic, &[to]);
    let online = Presence {
        certificate: certificate.clone(),
        nick: certificate.body.username.clone(),
        state: PresenceState::Online,
        seq: now_ms(),
        rooms: vec![RoomRef { id: lobby, name: "lobby".into(), creator }],
    };
    peer.publish(&topic, online.seal(key).expect("sealed"));
}
