//! Room catch-up over `/meshchat/sync/4`, both ways: a join's catch-up (its first page carries
//! the join `room_join.rs` signed; then the other members in reach are caught up from too),
//! catching a room up from a member (after a reconnection, now and then, when something arrived
//! citing events not known here, or when a sender's messages came with a gap), and answering
//! other peers' requests.
//!
//! Pages are bounded and their cursors only move forward: a catch-up asks for the next page
//! while the last one said more remain and it moved a cursor, and never beyond
//! [`MAX_PAGES`]. Who may have what is the engine's decision; this side only checks the asker's
//! certificate and reads and writes the rows.

use std::collections::HashSet;
use std::time::Instant;

use libp2p::PeerId;
use libp2p::request_response::ResponseChannel;

use super::event::ErrorCode;
use super::parts::EventLoop;
use super::state::rooms::{Paging, RoomDone, Show, SyncPurpose, error};
use super::state::store::Done;
use super::store_reads::{self, Answer, MessagesWanted, ReadDone};
use crate::account::AccountId;
use crate::clock::{now_ms, unix_now};
use crate::e2e::RoomKey;
use crate::protocol::sync::{
    CatchUpRequest, MAX_HEADS, MAX_MARKS, Mark, PAGE_EVENTS, PAGE_MESSAGES, SyncRefusal, SyncRequest, SyncResponse,
};
use crate::room::engine::{Incoming, ServeRefusal, Via};
use crate::room::event::{EventBody, EventPayload, SignedEvent, VerifiedEvent};
use crate::room::{Action, EventId};

/// The most pages one catch-up fetches.
const MAX_PAGES: usize = 1000;
/// Events (control events and messages) of a page that may fail their checks (a signature, a
/// certificate, another room) before the catch-up from that peer ends: an honest member's pages
/// hold what it checked itself, and every check costs the asker's loop.
const MAX_FAILED_PER_PAGE: usize = 16;
/// What to read for a peer's request: the room, the events, the messages, and the answer.
type ToRead = (EventId, Vec<EventId>, Option<MessagesWanted>, Answer);

fn refusal_code(refusal: SyncRefusal) -> ErrorCode {
    match refusal {
        SyncRefusal::Banned => ErrorCode::Banned,
        SyncRefusal::NotMember => ErrorCode::NotMember,
        SyncRefusal::UnknownRoom => ErrorCode::NoSuchRoom,
        SyncRefusal::BadCertificate | SyncRefusal::BadJoin => ErrorCode::NotLoggedIn,
        SyncRefusal::Busy => ErrorCode::RateLimited,
    }
}

impl EventLoop {
    /// Catches `room` up from `peer`, unless that is on its way already; `show` the new
    /// messages.
    pub(super) fn catch_up(&mut self, room: EventId, peer: PeerId, show: Show) {
        if self.rooms.catching_up.contains(&(room, peer))
            || !self.rooms.engine.knows(&room)
            || self.rooms.joining(&room, Instant::now())
        {
            return;
        }
        // What was written before this user's join is history, even when a catch-up other than
        // the join's brings it (one the join's has not brought yet).
        let joined = self.accounts.account().and_then(|me| self.rooms.engine.joined_at(&room, &me));
        let show = match (show, joined) {
            (Show::All, Some(depth)) => Show::Beyond(depth),
            (show, _) => show,
        };
        self.first_page(peer, room, show, None, (None, Vec::new()));
    }

    /// Starts a catch-up of `room` from `peer`: what this node holds (its heads, and how far it
    /// holds each machine's messages, read by the store worker); the request goes once that is
    /// read. With `reply`, a join's (answered once the first page is in, the other members
    /// caught up from once the last is); `join` is handed over with the first request, and
    /// `handed` lists the members it was handed to before in this `/join`.
    pub(super) fn first_page(
        &mut self,
        peer: PeerId,
        room: EventId,
        show: Show,
        reply: Option<RoomDone>,
        (join, mut handed): (Option<SignedEvent>, Vec<PeerId>),
    ) {
        if reply.is_some() {
            handed.push(peer);
        }
        let mut known = self.rooms.engine.heads(&room);
        known.truncate(MAX_HEADS);
        let then_others = reply.as_ref().and(join.clone()).map(Box::new);
        let mut paging = Paging {
            room,
            known,
            marks: Vec::new(),
            after: None,
            messages_after: None,
            pages: 0,
            show,
            join: reply,
            then_others,
            handed,
        };
        let join = join.map(Box::new);
        if paging.join.is_some() {
            self.rooms.joining.insert(room, (peer, Instant::now()));
        }
        self.rooms.catching_up.insert((room, peer));
        self.store.run(move |store| {
            paging.marks = store.message_marks(&room, MAX_MARKS).unwrap_or_else(|e| {
                tracing::error!(%room, error = %e, "cannot read how far the room's messages are held");
                Vec::new()
            });
            Some(Done::FirstPage { peer, paging: Box::new(paging), join })
        });
    }

    /// Asks `peer` for the next page of `paging` (with `join`, the first page of a join).
    pub(super) fn request_page(&mut self, peer: PeerId, paging: Paging, join: Option<SignedEvent>) {
        let Some(certificate) = self.accounts.session().map(|s| s.certificate.clone()) else {
            self.rooms.catch_up_ended(&paging.room, &peer);
            if let Some(reply) = paging.join {
                let _ = reply.send(Err(error(ErrorCode::NotLoggedIn, "log in first")));
            }
            return;
        };
        let request = CatchUpRequest {
            room: paging.room,
            certificate,
            known: paging.known.clone(),
            after: paging.after,
            marks: paging.marks.clone(),
            messages_after: paging.messages_after.clone(),
            join,
        };
        self.rooms.catching_up.insert((paging.room, peer));
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, SyncRequest::CatchUp(Box::new(request)));
        self.rooms.syncs.insert(id, SyncPurpose::Page(Box::new(paging)));
    }

    /// Now and then: catch each room up from one member online, in case gossip missed
    /// something that no reconnection brought back.
    pub(super) fn resync_rooms(&mut self) {
        for room in self.my_rooms() {
            let peers = self.peers_in(&room.id);
            if !peers.is_empty() {
                let peer = peers[rand::random_range(0..peers.len())];
                self.catch_up(room.id, peer, Show::All);
            }
        }
    }

    /// The members of `room` this node is connected to, other than `except`.
    pub(super) fn members_in_reach(&self, room: &EventId, except: Option<PeerId>) -> Vec<PeerId> {
        self.peers_in(room).into_iter().filter(|p| Some(*p) != except && self.swarm.is_connected(p)).collect()
    }

    /// A member of `room` this node is connected to, other than `except`, picked at random.
    pub(super) fn member_in_reach(&self, room: &EventId, except: Option<PeerId>) -> Option<PeerId> {
        let others = self.members_in_reach(room, except);
        (!others.is_empty()).then(|| others[rand::random_range(0..others.len())])
    }

    /// Messages of `author`'s machine in `room` came with a gap that did not fill in time
    /// (gossip lost some on their way here, as it may under a burst): the room is caught up
    /// from the author when it is in reach, else from another member in reach. The catch-up's
    /// marks say how far this node holds the author's messages without a gap, so what the gap
    /// lacks comes, and is shown late.
    pub(super) fn fill_gap(&mut self, room: EventId, author: PeerId) {
        let from = if self.swarm.is_connected(&author) { Some(author) } else { self.member_in_reach(&room, None) };
        if let Some(peer) = from {
            tracing::debug!(%room, %author, %peer, "a gap in a sender's messages; catching up");
            self.catch_up(room, peer, Show::All);
        }
    }

    /// A peer asks for a room's heads or a page: refused at once, or answered once what the
    /// room engine chose is read (on the reading thread beside the loop, see `store_reads.rs`),
    /// after what was queued to the store before it is committed.
    pub(super) async fn on_sync_request(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        channel: ResponseChannel<SyncResponse>,
    ) {
        let (room, events, messages, answer) = match self.sync_answer(peer, request).await {
            Ok(read) => read,
            Err(refusal) => return self.send_sync_response(channel, SyncResponse::Refused(refusal)),
        };
        let ticket = self.serving.queue(room, events, messages, channel, answer);
        self.store.run(move |_| Some(Done::Committed { ticket }));
    }

    /// What was queued to the store before the catch-up answer of `ticket` is committed: it is
    /// read now, by the reading thread or, when that cannot take it, by the store worker.
    pub(super) fn serve_committed(&mut self, ticket: u64) {
        if let Some((job, answers)) = self.serving.go(ticket) {
            self.store.run(move |store| {
                let _ = answers.send(store_reads::read(store, job));
                None
            });
        }
    }

    /// What the reading thread read for a peer: its answer goes out now.
    pub(super) fn on_read_done(&mut self, mut done: ReadDone) {
        if let Some((channel, answer)) = self.serving.take(&done) {
            let sessions = std::mem::take(&mut done.sessions);
            let mut response = answer.with(done);
            if let (Answer::Page { room, asker, .. }, SyncResponse::Page { keys, .. }) = (answer, &mut response) {
                *keys = self.keys_for_page(room, asker, &sessions);
            }
            self.send_sync_response(channel, response);
        }
    }

    fn send_sync_response(&mut self, channel: ResponseChannel<SyncResponse>, response: SyncResponse) {
        if self.swarm.behaviour_mut().sync.send_response(channel, response).is_err() {
            tracing::debug!("a peer left before its catch-up answer");
        }
    }

    /// What a peer's request is answered with: a refusal, or what to read for it (the room,
    /// its events, the messages wanted) and the answer that makes.
    async fn sync_answer(&mut self, peer: PeerId, request: SyncRequest) -> Result<ToRead, SyncRefusal> {
        let Some(key) = self.accounts.trusted_key() else { return Err(SyncRefusal::UnknownRoom) };
        let account = match self.certs.verify(request.certificate(), &key, &peer.to_bytes(), unix_now()) {
            Ok(holder) => holder.account,
            Err(_) => return Err(SyncRefusal::BadCertificate),
        };
        let room = *request.room();
        if !self.rooms.engine.knows(&room) {
            return Err(SyncRefusal::UnknownRoom);
        }
        if !self.rooms.engine.allow_serving(account, Instant::now()) {
            return Err(SyncRefusal::Busy);
        }
        match request {
            SyncRequest::Heads { .. } => {
                // With the create event (the room's id is its hash), for the joiner to check
                // that the room is the one it was told of.
                let mut heads = self.rooms.engine.heads(&room);
                if !heads.contains(&room) {
                    heads.truncate(MAX_HEADS - 1);
                    heads.insert(0, room);
                }
                heads.truncate(MAX_HEADS);
                Ok((room, heads, None, Answer::Heads))
            }
            SyncRequest::CatchUp(request) => {
                if let Some(join) = &request.join {
                    self.take_handed_join(room, account, peer, join).await?;
                }
                let served =
                    self.rooms.engine.serve_events(&room, &account, &request.known, request.after, PAGE_EVENTS);
                let (page, until) = match served {
                    Ok(served) => served,
                    Err(ServeRefusal::UnknownRoom) => return Err(SyncRefusal::UnknownRoom),
                    Err(ServeRefusal::NotMember) => {
                        let banned = self.rooms.engine.state(&room).is_some_and(|s| s.is_banned(&account));
                        return Err(if banned { SyncRefusal::Banned } else { SyncRefusal::NotMember });
                    }
                };
                let ids: Vec<EventId> = page.events.iter().map(|e| e.id).collect();
                // Messages come once every event is in: the asker takes them against the state.
                let messages = if page.more {
                    None
                } else {
                    Some(MessagesWanted {
                        marks: request.marks,
                        after: request.messages_after,
                        limit: PAGE_MESSAGES,
                        until,
                    })
                };
                Ok((room, ids, messages, Answer::Page { more_events: page.more, room, asker: account }))
            }
        }
    }

    /// A joiner handed over its join: taken in (and published) like one heard live.
    async fn take_handed_join(
        &mut self,
        room: EventId,
        account: AccountId,
        peer: PeerId,
        join: &SignedEvent,
    ) -> Result<(), SyncRefusal> {
        let key = self.accounts.trusted_key().ok_or(SyncRefusal::UnknownRoom)?;
        let event = join.verify(&mut self.certs, &key, now_ms(), None).map_err(|_| SyncRefusal::BadJoin)?;
        if event.room != room || event.account != account || event.body.payload != EventPayload::Control(Action::Join) {
            return Err(SyncRefusal::BadJoin);
        }
        self.feed(Incoming { event, bytes: join.encode(), via: Via::Handed { from: peer } }).await;
        if self.rooms.engine.state(&room).is_some_and(|s| s.is_banned(&account)) {
            return Err(SyncRefusal::Banned);
        }
        Ok(())
    }

    /// An answer to a catch-up request arrived.
    pub(super) async fn on_sync_response(
        &mut self,
        peer: PeerId,
        id: libp2p::request_response::OutboundRequestId,
        response: SyncResponse,
    ) {
        let Some(purpose) = self.rooms.syncs.remove(&id) else { return };
        self.rooms.catching_up.remove(&(purpose.room(), peer));
        match (purpose, response) {
            (SyncPurpose::Heads { ask, reply }, SyncResponse::Heads { events }) => {
                self.join_with_heads(ask, peer, events, reply);
            }
            (SyncPurpose::Page(paging), SyncResponse::Page { events, more_events, messages, more_messages, keys }) => {
                self.take_page(peer, *paging, events, more_events, (messages, keys), more_messages).await;
            }
            (purpose, response) => {
                let room = purpose.room();
                let reason = match response {
                    SyncResponse::Refused(refusal) => refusal,
                    _ => SyncRefusal::UnknownRoom,
                };
                tracing::debug!(%room, %peer, %reason, "catch-up refused");
                let message = match reason {
                    SyncRefusal::Banned => format!("{} is banned from the room", self.me().unwrap_or_default()),
                    reason => reason.to_string(),
                };
                let why = (refusal_code(reason), message);
                match purpose {
                    // Even "banned" is one member's word: the next is asked too.
                    SyncPurpose::Heads { ask, reply } => self.ask_heads(ask, reply, why),
                    SyncPurpose::Page(paging) => {
                        self.rooms.catch_up_ended(&room, &peer);
                        self.hand_join_on(*paging, why);
                    }
                }
            }
        }
    }

    /// Takes a page in: its control events, then the keys of its messages' sessions, then its
    /// messages (handed to the store worker together, they share its transactions), then asks
    /// for the next page while one is due.
    async fn take_page(
        &mut self,
        peer: PeerId,
        mut paging: Paging,
        events: Vec<SignedEvent>,
        more_events: bool,
        (messages, keys): (Vec<SignedEvent>, Vec<RoomKey>),
        more_messages: bool,
    ) {
        let room = paging.room;
        let Some(key) = self.accounts.trusted_key() else { return };
        let server = self.presence_account(&peer);
        let now = now_ms();
        let show = paging.show;
        let via = |server: AccountId, body: &EventBody| Via::CatchUp {
            from: peer,
            server,
            show: show.covers(body.ts_ms, body.depth),
        };
        let mut last_event = None;
        let mut failed = 0usize;
        for signed in events.iter().take(PAGE_EVENTS) {
            if failed > MAX_FAILED_PER_PAGE {
                break;
            }
            // What is here already is skipped before its signature is checked.
            if let Some(id) = signed.id()
                && self.rooms.engine.contains(&room, &id)
            {
                last_event = Some(id);
                continue;
            }
            let Ok(event) = signed.verify(&mut self.certs, &key, now, None) else {
                failed += 1;
                continue;
            };
            if event.room != room {
                failed += 1;
                continue;
            }
            last_event = Some(event.id);
            let via = via(server.unwrap_or(event.account), &event.body);
            self.feed(Incoming { event, bytes: signed.encode(), via }).await;
        }
        let mut last_message: Option<Mark> = None;
        let mut checked: Vec<(VerifiedEvent, Vec<u8>)> = Vec::new();
        let mut over_limit = false;
        let at = Instant::now();
        for signed in messages.iter().take(PAGE_MESSAGES) {
            if failed > MAX_FAILED_PER_PAGE {
                break;
            }
            if let Some(server) = server
                && !self.rooms.engine.allow_served_message(server, at)
            {
                over_limit = true;
                break;
            }
            let Ok(event) = signed.verify(&mut self.certs, &key, now, None) else {
                failed += 1;
                continue;
            };
            let EventPayload::Message { seq, .. } = event.body.payload else {
                failed += 1;
                continue;
            };
            if event.room != room {
                failed += 1;
                continue;
            }
            let mark = Mark { peer: event.peer.to_bytes(), seq };
            if last_message.as_ref().is_none_or(|last| mark > *last) {
                last_message = Some(mark);
            }
            checked.push((event, signed.encode()));
        }
        checked.sort_by_key(|(v, _)| (v.body.depth, v.body.ts_ms));
        match server {
            Some(server) => {
                // The keys before the messages, which are opened as they are taken in.
                let sealed_by: HashSet<(&str, AccountId)> = checked
                    .iter()
                    .filter_map(|(v, _)| match &v.body.payload {
                        EventPayload::Message { sealed, .. } => Some((sealed.session.as_str(), v.account)),
                        _ => None,
                    })
                    .collect();
                self.take_page_keys(room, server, &sealed_by, keys);
                for (event, bytes) in checked {
                    let via = via(server, &event.body);
                    self.feed(Incoming { event, bytes, via }).await;
                }
            }
            None if !checked.is_empty() => {
                tracing::debug!(%room, %peer, "messages of a catch-up page left out: who serves them is not known");
            }
            None => {}
        }
        self.take_early(&room).await;
        paging.pages += 1;
        let events_moved = last_event.is_some() && last_event != paging.after;
        let messages_moved = last_message.is_some() && last_message != paging.messages_after;
        let next = if failed > MAX_FAILED_PER_PAGE {
            tracing::info!(%room, %peer, "a catch-up page held events that do not check out; no more pages asked of it");
            false
        } else if over_limit {
            tracing::info!(%room, %peer, "the messages served by this peer's account are over the limit; no more pages asked of it for now");
            false
        } else if more_events && events_moved {
            paging.after = last_event;
            true
        } else if !more_events && more_messages && messages_moved {
            paging.messages_after = last_message;
            true
        } else {
            false
        };
        let (pages, events, messages) = (paging.pages, events.len(), messages.len());
        tracing::debug!(%room, %peer, pages, events, messages, next, "catch-up page taken in");
        // What the page brought is kept before the join is answered; the next page is asked for
        // meanwhile, unless the page before this one is still being kept too.
        let key = (room, peer);
        let ahead = self.rooms.keeping_page(key);
        let join = paging.join.take();
        let ended = if next && paging.pages < MAX_PAGES && self.rooms.engine.knows(&room) {
            if ahead {
                self.request_page(peer, paging, None);
            } else {
                // Still on its way: no other catch-up of the room from this peer meanwhile.
                self.rooms.catching_up.insert(key);
                self.rooms.next_pages.insert(key, paging);
            }
            None
        } else {
            Some(Box::new(paging))
        };
        self.store.run(move |_| Some(Done::PageKept { peer, room, join, ended }));
    }

    /// What a page of a catch-up of `room` from `peer` brought is kept: the join it answers is
    /// answered, a next page waiting for it is asked for, and once the last page is kept, the
    /// other members in reach are caught up from after a join.
    pub(super) async fn page_kept(
        &mut self,
        peer: PeerId,
        room: EventId,
        join: Option<RoomDone>,
        ended: Option<Box<Paging>>,
    ) {
        let key = (room, peer);
        let keeping = self.rooms.page_kept(key);
        if let Some(reply) = join {
            self.finish_join(room, reply).await;
        }
        if keeping <= 1
            && let Some(paging) = self.rooms.next_pages.remove(&key)
        {
            if self.rooms.engine.knows(&room) {
                self.request_page(peer, paging, None);
            } else {
                self.rooms.catch_up_ended(&room, &peer);
            }
        }
        let Some(paging) = ended else { return };
        self.rooms.catch_up_ended(&room, &peer);
        let member = self.my_account().is_ok_and(|me| self.rooms.engine.state(&room).is_some_and(|s| s.is_member(&me)));
        if let Some(join) = paging.then_others.filter(|_| member) {
            // What this member held is kept now: the others' catch-ups bring only what it
            // lacked. Each is handed the join too, which gossip may not have brought it yet.
            for other in self.members_in_reach(&room, Some(peer)) {
                if !self.rooms.catching_up.contains(&(room, other)) {
                    self.first_page(other, room, paging.show, None, (Some((*join).clone()), Vec::new()));
                }
            }
        }
    }

    /// A catch-up request failed.
    pub(super) async fn on_sync_failure(
        &mut self,
        peer: PeerId,
        id: libp2p::request_response::OutboundRequestId,
        reason: String,
    ) {
        let Some(purpose) = self.rooms.syncs.remove(&id) else { return };
        let room = purpose.room();
        self.rooms.catch_up_ended(&room, &peer);
        tracing::debug!(%room, %peer, reason, "catch-up failed");
        match purpose {
            SyncPurpose::Heads { ask, reply } => {
                let why = (ErrorCode::NoSuchRoom, format!("cannot reach a member ({reason})"));
                self.ask_heads(ask, reply, why);
            }
            // The peer is gone (it left, or the connection broke): what it would have brought
            // comes from another member in reach, not at the next comparison a minute later.
            SyncPurpose::Page(paging) if paging.join.is_none() => {
                if let Some(other) = self.member_in_reach(&room, Some(peer)) {
                    self.catch_up(room, other, paging.show);
                }
            }
            SyncPurpose::Page(paging) => {
                self.hand_join_on(*paging, (ErrorCode::NoSuchRoom, format!("cannot reach a member ({reason})")));
            }
        }
    }
}
