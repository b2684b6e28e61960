//! `/join`: ask a member for the room's heads (the next member when one refuses, does not
//! answer or answers without what a join needs), check that the room's create event says what
//! the room was found by, sign a join citing the heads and hand it over with the first catch-up
//! request (to the next member in reach when that one refuses it), and tell the user how it
//! ended. The catch-up itself, both ways, is `room_sync.rs`.

use libp2p::PeerId;

use super::client::RoomReply;
use super::event::ErrorCode;
use super::parts::EventLoop;
use super::state::rooms::{HeadsAsk, Paging, RoomDone, Show, SyncPurpose, error};
use crate::clock::now_ms;
use crate::protocol::sync::{MAX_HEADS, SyncRequest};
use crate::room::event::{EventPayload, SignedEvent, VerifiedEvent};
use crate::room::{Action, EventId, MAX_PREV};

/// At most this many members are asked for a room's heads in one `/join`.
const JOIN_ASKS: usize = 4;

/// A join's catch-up shows the messages written from this long before the join on (clocks
/// differ a little), and keeps the older ones as history.
const SHOWN_BEFORE_JOIN_MS: u64 = 5_000;

impl EventLoop {
    /// `/join`: asks a member for the room's heads; the join is signed when they come.
    pub(super) async fn join_room(&mut self, name: &str, reply: RoomDone) {
        let found = self.my_account().and_then(|me| Ok((me, self.resolve_room(name)?)));
        let (me, room) = match found {
            Ok(found) => found,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if self.rooms.engine.state(&room).is_some_and(|s| s.is_member(&me)) {
            self.subscribe(&room);
            self.set_focus(&room).await;
            let _ = reply.send(Ok(RoomReply::Done));
            return;
        }
        if self.accounts.session().is_none() {
            let _ = reply.send(Err(error(ErrorCode::NotLoggedIn, "log in first")));
            return;
        }
        if let Err(e) = self.allow_own_control(me) {
            let _ = reply.send(Err(e));
            return;
        }
        if self.peers_in(&room).is_empty() {
            let label = self.room_label(&room);
            let _ =
                reply.send(Err(error(ErrorCode::NoSuchRoom, format!("no room #{label} (no member of it is online)"))));
            return;
        }
        // Presence named the room; its create event, which the room's id is the hash of, must
        // say the same before anything is signed.
        let claimed = if self.rooms.engine.knows(&room) { None } else { self.visible_rooms().remove(&room) };
        self.subscribe(&room);
        let why = (ErrorCode::NoSuchRoom, "no member of it is online".to_string());
        self.ask_heads(HeadsAsk { room, claimed, tried: Vec::new() }, reply, why);
    }

    /// Asks the next member of `room` not in `tried` for the room's heads and create: one this
    /// node is connected to first (it answers at once; one it cannot reach would only make the
    /// join wait for a time-out), in peer id order. A member that refuses, does not answer or
    /// answers without what a join needs is passed over for the next, up to [`JOIN_ASKS`]; then
    /// the join fails with `why`, what the last one did.
    pub(super) fn ask_heads(&mut self, mut ask: HeadsAsk, reply: RoomDone, why: (ErrorCode, String)) {
        let room = ask.room;
        let mut members: Vec<PeerId> = self.peers_in(&room).into_iter().filter(|p| !ask.tried.contains(p)).collect();
        members.sort_by_key(|p| (!self.swarm.is_connected(p), *p));
        let (Some(&peer), true) = (members.first(), ask.tried.len() < JOIN_ASKS) else {
            return self.fail_join(room, reply, why.0, &why.1);
        };
        let Some(certificate) = self.accounts.session().map(|s| s.certificate.clone()) else {
            return self.fail_join(room, reply, ErrorCode::NotLoggedIn, "log in first");
        };
        ask.tried.push(peer);
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, SyncRequest::Heads { room, certificate });
        self.rooms.syncs.insert(id, SyncPurpose::Heads { ask, reply });
    }

    /// The heads came (with the room's create event): once the create says what the room was
    /// found by, sign a join citing them and hand it over with the first catch-up request.
    pub(super) fn join_with_heads(&mut self, ask: HeadsAsk, peer: PeerId, heads: Vec<SignedEvent>, reply: RoomDone) {
        let room = ask.room;
        let Some(key) = self.accounts.trusted_key() else {
            return self.fail_join(room, reply, ErrorCode::NoBootstrap, "no bootstrap key is trusted");
        };
        let now = now_ms();
        let verified: Vec<VerifiedEvent> = heads
            .iter()
            .take(MAX_HEADS)
            .filter_map(|e| e.verify(&mut self.certs, &key, now, None).ok())
            .filter(|v| v.room == room && !matches!(v.body.payload, EventPayload::Message { .. }))
            .collect();
        let create = verified.iter().find_map(|v| match &v.body.payload {
            EventPayload::Create { name } => Some((name.clone(), v.account, v.author.clone())),
            _ => None,
        });
        if let Some((said_name, said_creator)) = ask.claimed.clone() {
            let Some((name, creator, creator_name)) = create.clone() else {
                let why = "the member did not show the room's create event; not joined".to_string();
                return self.ask_heads(ask, reply, (ErrorCode::NoSuchRoom, why));
            };
            if name != said_name || creator != said_creator {
                let said = self.accounts.name_of(&said_creator);
                let why = format!(
                    "announced as #{said_name}, created by {said}, but its create event says #{name}, created by {creator_name}; not joined"
                );
                self.fail_join(room, reply, ErrorCode::NoSuchRoom, &why);
                // From now on it is called what its create says.
                self.rooms.saw_create(room, name, creator);
                self.refresh_labels();
                return;
            }
        }
        // The create is cited only when it is the only head.
        let only_create = verified.iter().all(|v| matches!(v.body.payload, EventPayload::Create { .. }));
        let mut cited: Vec<(u64, EventId)> = verified
            .iter()
            .filter(|v| only_create || !matches!(v.body.payload, EventPayload::Create { .. }))
            .map(|v| (v.body.depth, v.id))
            .collect();
        cited.sort_by(|a, b| b.cmp(a));
        cited.dedup();
        cited.truncate(MAX_PREV);
        let depth = cited.first().and_then(|(depth, _)| depth.checked_add(1));
        let Some(depth) = depth else {
            let why = "the member answered without the room's events".to_string();
            return self.ask_heads(ask, reply, (ErrorCode::NoSuchRoom, why));
        };
        let mut prev: Vec<EventId> = cited.into_iter().map(|(_, id)| id).collect();
        prev.sort();
        let join = match self.seal(Some(room), prev, depth, EventPayload::Control(Action::Join)) {
            Ok((signed, _)) => signed,
            Err(e) => {
                self.unsubscribe(&room);
                let _ = reply.send(Err(e));
                return;
            }
        };
        let since = now_ms().saturating_sub(SHOWN_BEFORE_JOIN_MS);
        self.first_page(peer, room, Show::Since(since), Some(reply), (Some(join), Vec::new()));
    }

    /// The first page of a join is in: the user is a member now, or is told why not.
    pub(super) async fn finish_join(&mut self, room: EventId, reply: RoomDone) {
        let label = self.room_label(&room);
        let result = match self.my_account() {
            Ok(me) => match self.rooms.engine.state(&room) {
                Some(state) if state.is_member(&me) => Ok(()),
                Some(state) if state.is_banned(&me) => {
                    // Worded as the member's refusal is: which of the two answers depends on
                    // whether the member had heard of the ban when it was asked.
                    let who = self.me().unwrap_or_default();
                    Err(error(ErrorCode::Banned, format!("#{label}: {who} is banned from the room")))
                }
                _ => Err(error(ErrorCode::NoSuchRoom, format!("#{label}: the join was not taken"))),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                self.set_focus(&room).await;
                let _ = reply.send(Ok(RoomReply::Done));
            }
            Err(e) => {
                self.unsubscribe(&room);
                let _ = reply.send(Err(e));
            }
        }
    }

    /// The first page of a join (`paging`, its join handed over with it) was refused or failed
    /// (`why`): the join goes to the next member in reach it was not handed to yet (up to
    /// [`JOIN_ASKS`] in all), or the join fails with `why`. Nothing for other catch-ups.
    pub(super) fn hand_join_on(&mut self, paging: Paging, why: (ErrorCode, String)) {
        let Paging { room, show, join: Some(reply), then_others, handed, .. } = paging else { return };
        let next = self.members_in_reach(&room, None).into_iter().filter(|p| !handed.contains(p)).min();
        match (then_others, next) {
            (Some(join), Some(next)) if handed.len() < JOIN_ASKS => {
                self.first_page(next, room, show, Some(reply), (Some(*join), handed));
            }
            _ => self.fail_join(room, reply, why.0, &why.1),
        }
    }

    /// A `/join` of `room` failed: out of its topic again, and the user is told why.
    pub(super) fn fail_join(&mut self, room: EventId, reply: RoomDone, code: ErrorCode, why: &str) {
        self.rooms.joining.remove(&room);
        self.unsubscribe(&room);
        let label = self.room_label(&room);
        let _ = reply.send(Err(error(code, format!("#{label}: {why}"))));
    }
}
