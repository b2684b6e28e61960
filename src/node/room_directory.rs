//! The room directory as this node sees it: the rooms of this user and of the users online
//! (from presence), what users call each room (its label: the name, told apart by its creator
//! or a short id where two visible rooms share it), what a room typed in a command names, and
//! the one-time notice of a namesake. It decides nothing about a room's state: that is the
//! room engine's.

use std::collections::{BTreeMap, HashMap};

use libp2p::PeerId;

use super::event::UiEvent;
use super::parts::EventLoop;
use super::state::rooms::{Show, error, room_name};
use super::{CommandError, ErrorCode};
use crate::account::{AccountId, same_name};
use crate::protocol::presence::RoomRef;
use crate::room::{EventId, check_room_name};

/// At most this many rooms are taken from one peer's presence.
const MAX_ROOMS_PER_PEER: usize = crate::protocol::presence::MAX_ROOMS;
/// Hex digits of a room id that tell two rooms apart in a label.
const SHORT_ID: usize = 8;

impl EventLoop {
    /// The rooms of this user, for presence.
    pub(super) fn my_rooms(&self) -> Vec<RoomRef> {
        let Some(me) = self.accounts.account() else { return Vec::new() };
        let engine = &self.rooms.engine;
        engine
            .rooms_of(&me)
            .into_iter()
            .filter_map(|id| engine.label(&id).map(|(name, creator)| RoomRef { id, name: name.to_string(), creator }))
            .collect()
    }

    /// The labels of this user's rooms, sorted.
    pub(super) fn my_room_labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = self.my_rooms().iter().map(|r| self.room_label(&r.id)).collect();
        labels.sort();
        labels
    }

    /// Every room this node can name: those it knows, and those online users are in (named
    /// as their create events say where one was seen, else as presence says).
    pub(super) fn visible_rooms(&self) -> BTreeMap<EventId, (String, AccountId)> {
        let mut rooms = BTreeMap::new();
        for id in self.rooms.engine.rooms() {
            if let Some((name, creator)) = self.rooms.engine.label(&id) {
                rooms.insert(id, (name.to_string(), creator));
            }
        }
        for (id, (name, creator)) in self.rooms.creates_seen.iter() {
            rooms.entry(*id).or_insert_with(|| (name.clone(), *creator));
        }
        for refs in self.rooms.directory.values() {
            for r in refs {
                rooms.entry(r.id).or_insert_with(|| (r.name.clone(), r.creator));
            }
        }
        rooms
    }

    /// Works every room's label out again: its name, or where another visible room has that
    /// name, the name and its creator (`lobby~adam`), or a short id when the creators share a
    /// name too (`lobby~1a2b3c4d`).
    pub(super) fn refresh_labels(&mut self) {
        let visible = self.visible_rooms();
        let mut by_name: HashMap<&str, Vec<(&EventId, &AccountId)>> = HashMap::new();
        for (id, (name, creator)) in &visible {
            by_name.entry(name).or_default().push((id, creator));
        }
        let mut labels = HashMap::new();
        for (name, rooms) in by_name {
            for (id, creator) in &rooms {
                let label = if rooms.len() == 1 {
                    name.to_string()
                } else {
                    let creator_name = self.accounts.name_of(creator);
                    let shared =
                        rooms.iter().filter(|(_, c)| same_name(&self.accounts.name_of(c), &creator_name)).count();
                    if creator_name.is_empty() || shared > 1 {
                        format!("{name}~{}", &id.to_hex()[..SHORT_ID])
                    } else {
                        format!("{name}~{creator_name}")
                    }
                };
                labels.insert(**id, label);
            }
        }
        self.rooms.labels = labels;
    }

    /// What users call `room`.
    pub(super) fn room_label(&self, room: &EventId) -> String {
        self.rooms.labels.get(room).cloned().unwrap_or_else(|| {
            self.rooms.engine.label(room).map_or_else(|| room.to_hex()[..SHORT_ID].to_string(), |(n, _)| n.to_string())
        })
    }

    /// The room `text` (`lobby`, `#lobby`, `lobby~adam`, `lobby~1a2b3c4d`) names among the
    /// visible rooms; when two share the name, the one this user is a member of, if only one.
    pub(super) fn resolve_room(&self, text: &str) -> Result<EventId, CommandError> {
        let text = text.trim().trim_start_matches('#');
        let (name, suffix) = match text.split_once('~') {
            Some((name, suffix)) => (name, Some(suffix)),
            None => (text, None),
        };
        let name = room_name(name)?;
        let visible = self.visible_rooms();
        let mut found: Vec<EventId> = visible
            .iter()
            .filter(|(_, (n, _))| *n == name)
            .filter(|(id, (_, creator))| {
                suffix.is_none_or(|s| {
                    same_name(&self.accounts.name_of(creator), s)
                        || (s.len() >= 4 && id.to_hex().starts_with(&s.to_ascii_lowercase()))
                })
            })
            .map(|(id, _)| *id)
            .collect();
        if found.len() > 1
            && let Some(me) = self.accounts.account()
        {
            let mine: Vec<EventId> = found
                .iter()
                .copied()
                .filter(|id| self.rooms.engine.state(id).is_some_and(|s| s.is_member(&me)))
                .collect();
            if mine.len() == 1 {
                found = mine;
            }
        }
        match found[..] {
            [only] => Ok(only),
            [] => {
                Err(error(ErrorCode::NoSuchRoom, format!("no room #{text} is known here (no member of it is online)")))
            }
            _ => {
                let labels: Vec<String> = found.iter().map(|id| format!("#{}", self.room_label(id))).collect();
                Err(error(
                    ErrorCode::Usage,
                    format!("{} rooms are called #{name}: {}; name one of them", found.len(), labels.join(", ")),
                ))
            }
        }
    }

    /// A peer's presence named its rooms: keep them for the directory, catch up the rooms this
    /// user shares with it, and tell the user once of a room named like one of theirs.
    pub(super) async fn peer_rooms(&mut self, peer: PeerId, rooms: Vec<RoomRef>) {
        let rooms: Vec<RoomRef> =
            rooms.into_iter().take(MAX_ROOMS_PER_PEER).filter(|r| check_room_name(&r.name).is_ok()).collect();
        let changed = self.rooms.directory.get(&peer) != Some(&rooms);
        let mine = self.my_rooms();
        for room in rooms.iter().filter(|r| mine.iter().any(|m| m.id == r.id)) {
            if self.rooms.synced.insert((room.id, peer)) {
                self.catch_up(room.id, peer, Show::All);
            }
        }
        self.rooms.directory.insert(peer, rooms.clone());
        if changed {
            self.refresh_labels();
        }
        for theirs in rooms {
            for own in mine.iter().filter(|m| m.name == theirs.name && m.id != theirs.id) {
                if self.rooms.namesakes_told.insert(own.id) {
                    let notice = format!(
                        "another room is called #{}, created by {}: yours is #{}, the other #{}",
                        own.name,
                        self.accounts.name_of(&theirs.creator),
                        self.room_label(&own.id),
                        self.room_label(&theirs.id)
                    );
                    self.emit(UiEvent::info(notice)).await;
                }
            }
        }
    }

    /// `peer` is in reach again, or something on its way from it may have been lost: a first
    /// connection to it opened, a connection silent for a while answers again, or one of its
    /// connections closed while another stays open (what was still queued on the closed one
    /// is gone with it). The rooms this user shares with its user (as its presence named them)
    /// are caught up from it now. Its presence may have kept coming through other nodes while
    /// it was out of reach, so that it never went offline here, and the catch-ups its presence
    /// started then could not reach it.
    pub(super) fn catch_up_from(&mut self, peer: PeerId) {
        self.rooms.synced.retain(|(_, p)| *p != peer);
        let Some(theirs) = self.rooms.directory.get(&peer) else { return };
        let mine = self.my_rooms();
        let shared: Vec<EventId> = theirs.iter().filter(|r| mine.iter().any(|m| m.id == r.id)).map(|r| r.id).collect();
        for room in shared {
            self.rooms.synced.insert((room, peer));
            // A catch-up asked while the peer was out of reach may still wait for its answer
            // on a connection that is gone (up to the request's time-out): ask again now.
            self.rooms.catching_up.remove(&(room, peer));
            self.catch_up(room, peer, Show::All);
        }
    }

    /// A peer's user is gone.
    pub(super) fn peer_rooms_gone(&mut self, peer: &PeerId) {
        if self.rooms.directory.remove(peer).is_some() {
            self.refresh_labels();
        }
        self.rooms.synced.retain(|(_, p)| p != peer);
    }

    /// Peers online whose user is in `room`.
    pub(super) fn peers_in(&self, room: &EventId) -> Vec<PeerId> {
        self.rooms
            .directory
            .iter()
            .filter(|(peer, rooms)| rooms.iter().any(|r| r.id == *room) && self.presence_knows(peer))
            .map(|(peer, _)| *peer)
            .collect()
    }
}
