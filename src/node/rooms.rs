//! The node's side of rooms: the adapter that feeds the [`RoomEngine`] and carries out what it
//! decides: one gossipsub topic per room id, events signed, verified, kept, published and
//! shown, message order. The room commands are in [`super::room_commands`], the room
//! directory and labels in [`super::room_directory`], catch-up in [`super::room_sync`]; the
//! focus, the mutes and whether a message notifies are [`super::attention`]'s to decide.
//!
//! Room rules live in the engine, never here: this side signs what its user does, verifies
//! what arrives, keeps and shows what the engine outputs, and turns accounts into the
//! usernames users see (and what they type into accounts).

use std::time::Instant;

use libp2p::gossipsub::{MessageAcceptance, TopicHash};

use super::CommandError;
use super::attention::Place;
use super::event::{ChatMessage, ErrorCode, NotificationKind, UiEvent};
use super::parts::EventLoop;
use super::state::key_wait::Sealing;
use super::state::keys::Awaiting;
use super::state::rooms::{Gossip, MAX_EARLY, MAX_UNSENT, Show, UNSENT_WAIT, error, message_view, topic};
use super::state::store::{Done, ShownAs, TakenMessage};
use crate::account::{AccountId, same_name};
use crate::clock::now_ms;
use crate::e2e::OpenError;
use crate::net::topic_score;
use crate::room::engine::{Incoming, Input, Output, Verdict, Via};
use crate::room::event::{EventBody, EventPayload, SignedEvent, VerifiedEvent};
use crate::room::{Effect, EventId};
use crate::store::{NodeStore, Readable, StoredMessage};

/// What a user sees of `effect` in the room labelled `room`, with accounts called by `name_of`.
fn effect_event(room: &str, effect: Effect, name_of: impl Fn(&AccountId) -> String) -> UiEvent {
    let room = room.to_string();
    match effect {
        Effect::Created { user } => UiEvent::RoomCreated { room, user: name_of(&user) },
        Effect::Joined { user } => UiEvent::Joined { room, user: name_of(&user) },
        Effect::Left { user } => UiEvent::Left { room, user: name_of(&user) },
        Effect::Kicked { user, by } => UiEvent::Kicked { room, user: name_of(&user), by: name_of(&by) },
        Effect::Banned { user, by } => {
            UiEvent::Banned { room, user: name_of(&user), by: by.map(|by| name_of(&by)).unwrap_or_default() }
        }
        Effect::Unbanned { user, by } => {
            UiEvent::info(format!("{} may join #{room} again (unbanned by {})", name_of(&user), name_of(&by)))
        }
        Effect::Admin { user, by } => UiEvent::Admin { room, user: name_of(&user), by: by.map(|by| name_of(&by)) },
        Effect::Emptied => UiEvent::info(format!("#{room} has no members left and disappears")),
    }
}

impl EventLoop {
    /// Takes in the rooms, mutes and message numbers read from the node database at start.
    pub(super) fn load_rooms(&mut self) {
        let Some(loaded) = self.loaded.as_mut() else { return };
        let rows = std::mem::take(&mut loaded.room_events);
        let mutes = std::mem::take(&mut loaded.mutes);
        let streams = std::mem::take(&mut loaded.streams);
        let now = Instant::now();
        let last_row = rows.iter().map(|(row, _)| *row).max().unwrap_or(0);
        for (row, bytes) in rows {
            let Some(event) = SignedEvent::decode(&bytes).ok().and_then(|e| e.open_stored()) else {
                tracing::error!("a kept room event does not decode");
                continue;
            };
            self.rooms.engine.arriving(row);
            let input = Input::Event(Box::new(Incoming { event, bytes, via: Via::Disk }));
            for output in self.rooms.engine.handle(input, now) {
                if let Output::Refused { room, id, reason } = output {
                    tracing::warn!(%room, %id, reason, "a kept room event is not taken again");
                }
            }
        }
        self.rooms.engine.arriving(last_row.saturating_add(1));
        for (room, peer, seq) in streams {
            self.rooms.took(room, peer, seq);
        }
        self.attention.load_mutes(mutes);
        self.refresh_labels();
    }

    pub(super) fn me(&self) -> Option<String> {
        self.accounts.username().map(str::to_string)
    }

    /// The account this node is logged in as.
    pub(super) fn my_account(&self) -> Result<AccountId, CommandError> {
        self.accounts.account().ok_or_else(|| error(ErrorCode::NotLoggedIn, "log in first: /login NAME"))
    }

    pub(super) fn logged_in(&self) -> Result<String, CommandError> {
        self.me().ok_or_else(|| error(ErrorCode::NotLoggedIn, "log in first: /login NAME"))
    }

    pub(super) fn subscribe(&mut self, room: &EventId) {
        let topic = topic(room);
        if self.rooms.topics.insert(topic.hash(), *room).is_none() {
            let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
            if let Err(e) = gossipsub.set_topic_params(topic.clone(), topic_score()) {
                tracing::error!(%room, error = %e, "cannot score the room's topic");
            }
            if let Err(e) = gossipsub.subscribe(&topic) {
                tracing::error!(%room, error = %e, "cannot subscribe");
            }
        }
    }

    pub(super) fn unsubscribe(&mut self, room: &EventId) {
        let topic = topic(room);
        if self.rooms.topics.remove(&topic.hash()).is_some() {
            self.swarm.behaviour_mut().gossipsub.unsubscribe(&topic);
        }
        self.rooms.early.remove(room);
    }

    /// After a login: back into every room the user is a member of.
    pub(super) fn enter_rooms(&mut self) {
        let Some(me) = self.accounts.account() else { return };
        for room in self.rooms.engine.rooms_of(&me) {
            self.subscribe(&room);
        }
    }

    /// After a logout: out of every topic (the memberships stay).
    pub(super) fn exit_rooms(&mut self) {
        let rooms: Vec<EventId> = self.rooms.topics.values().copied().collect();
        for room in rooms {
            self.unsubscribe(&room);
        }
    }

    /// The number of this node's next message in `room`, following what it took in before.
    pub(super) fn next_message_seq(&mut self, room: &EventId) -> u64 {
        let local = *self.swarm.local_peer_id();
        let next = self.rooms.kept_seq(room, &local).saturating_add(1);
        self.rooms.took(*room, local, next);
        next
    }

    /// Signs a new event of this user: in `room` citing `prev` at `depth` (a create: no room).
    pub(super) fn seal(
        &mut self,
        room: Option<EventId>,
        prev: Vec<EventId>,
        depth: u64,
        payload: EventPayload,
    ) -> Result<(SignedEvent, VerifiedEvent), CommandError> {
        let session = self.accounts.session().cloned().ok_or_else(|| error(ErrorCode::NotLoggedIn, "log in first"))?;
        let key =
            self.accounts.trusted_key().ok_or_else(|| error(ErrorCode::NoBootstrap, "no bootstrap key is trusted"))?;
        let body = EventBody {
            author: session.certificate.body.account,
            room,
            prev,
            depth,
            ts_ms: now_ms(),
            nonce: rand::random(),
            payload,
        };
        let signed = SignedEvent::seal(&self.key, &session.certificate, &body)
            .ok_or_else(|| error(ErrorCode::Internal, "cannot sign the event"))?;
        // Signed just now by this node: only the certificate needs checking.
        let local = *self.swarm.local_peer_id();
        let verified = signed.verify(&mut self.certs, &key, now_ms(), Some(local)).map_err(|e| {
            error(ErrorCode::NotLoggedIn, format!("your certificate does not check out ({e}); log in again"))
        })?;
        Ok((signed, verified))
    }

    /// Signs a new event of this user in `room`, citing the room's heads.
    pub(super) fn seal_in(
        &mut self,
        room: EventId,
        payload: EventPayload,
    ) -> Result<(SignedEvent, VerifiedEvent), CommandError> {
        let (prev, depth) =
            self.rooms.engine.cite(&room).ok_or_else(|| error(ErrorCode::NoSuchRoom, "the room is not known here"))?;
        self.seal(Some(room), prev, depth, payload)
    }

    /// Publishes encoded bytes on a room's topic. When gossipsub knows no other member on the
    /// topic yet (alone, cut off, or a connection whose subscriptions have not arrived), they
    /// wait in the room's outbox and go out when a member subscribes (see [`UNSENT_WAIT`]).
    pub(super) fn publish(&mut self, room: &EventId, data: Vec<u8>) {
        self.publish_since(room, data, Instant::now());
    }

    fn publish_since(&mut self, room: &EventId, data: Vec<u8>, since: Instant) {
        if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(topic(room), data.clone()) {
            tracing::debug!(%room, error = %e, "room event kept until a member is in reach");
            let unsent = self.rooms.unsent.entry(*room).or_default();
            if unsent.len() < MAX_UNSENT {
                unsent.push((since, data));
            }
        }
    }

    /// A peer subscribed to a room's topic: what waited for someone to hear it goes out now.
    pub(super) fn room_subscriber(&mut self, subscribed: &TopicHash) {
        let Some(room) = self.rooms.room_of_topic(subscribed) else { return };
        let now = Instant::now();
        for (since, data) in self.rooms.unsent.remove(&room).unwrap_or_default() {
            if now.saturating_duration_since(since) < UNSENT_WAIT {
                self.publish_since(&room, data, since);
            }
        }
    }

    /// Gives the engine `incoming` and carries out what it decides; the gossip verdict.
    pub(super) async fn feed(&mut self, incoming: Incoming) -> MessageAcceptance {
        let event = &incoming.event;
        self.accounts.learn_label(event.account, &event.author, event.serial);
        let outputs = self.rooms.engine.handle(Input::Event(Box::new(incoming)), Instant::now());
        self.carry_out(outputs).await
    }

    /// Carries out the engine's outputs; the gossip verdict among them (a message that checked
    /// out: passed on when new here).
    pub(super) async fn carry_out(&mut self, outputs: Vec<Output>) -> MessageAcceptance {
        let mut acceptance = MessageAcceptance::Ignore;
        let me = self.accounts.account();
        let mut membership_changed = false;
        for output in outputs {
            match output {
                Output::Verdict(verdict) => {
                    acceptance = match verdict {
                        Verdict::Accept => MessageAcceptance::Accept,
                        Verdict::Ignore => MessageAcceptance::Ignore,
                        Verdict::Reject => MessageAcceptance::Reject,
                    };
                }
                Output::Room { .. } => self.refresh_labels(),
                Output::Keep { room, id, depth, bytes } => {
                    self.store
                        .write("keep a room event", move |store| store.save_room_event(&room, &id, depth, &bytes));
                }
                Output::Publish { room, bytes } => self.publish(&room, bytes),
                Output::Changed { room, effect } => {
                    let (joined, gone) = match &effect {
                        Effect::Created { user } | Effect::Joined { user } => (me == Some(*user), false),
                        Effect::Kicked { user, .. } | Effect::Banned { user, .. } | Effect::Left { user } => {
                            (false, me == Some(*user))
                        }
                        _ => (false, false),
                    };
                    let label = self.room_label(&room);
                    let event = effect_event(&label, effect, |a| self.accounts.name_of(a));
                    self.emit(event).await;
                    if joined {
                        self.subscribe(&room);
                    }
                    if gone {
                        self.unsubscribe(&room);
                        self.end_session(&room);
                        if self.attention.left_room(&room) {
                            self.emit(UiEvent::Unfocused).await;
                        }
                    }
                    membership_changed |= joined || gone;
                }
                Output::Message(incoming) => {
                    if self.take_message(*incoming).await {
                        acceptance = MessageAcceptance::Accept;
                    }
                }
                Output::CatchUp { room, peer } => self.catch_up(room, peer, Show::All),
                Output::Refused { room, id, reason } => tracing::debug!(%room, %id, reason, "room event not taken"),
            }
        }
        if membership_changed {
            self.announce();
        }
        acceptance
    }

    /// Takes in a message that checked out: one heard live numbered beyond every message taken
    /// in from its sender in its room is new for sure, and is shown at once and written behind;
    /// any other is shown once the store has kept it and said it is new ([`Self::message_kept`]),
    /// this node's own once written. Whether it was taken (to be passed on).
    async fn take_message(&mut self, incoming: Incoming) -> bool {
        let Incoming { event: v, bytes, via } = incoming;
        let EventPayload::Message { seq, sealed } = v.body.payload.clone() else { return false };
        let stream = (v.room, v.peer);
        let shown_as = match via {
            Via::Own => ShownAs::Own,
            Via::Live { .. } => ShownAs::Live,
            Via::Handed { .. } => ShownAs::Fetched { show: true },
            Via::CatchUp { show, .. } => ShownAs::Fetched { show },
            Via::Disk => ShownAs::Fetched { show: false },
        };
        let kept_before = self.rooms.kept_seq(&v.room, &v.peer);
        // A sender's stream starts after what was taken in from it here, whichever way its
        // first message to be shown came: one that overtook those before it waits for them.
        if matches!(shown_as, ShownAs::Live | ShownAs::Fetched { show: true }) && !self.rooms.order.knows(&stream) {
            self.rooms.order.start(stream, kept_before.saturating_add(1));
        }
        // Numbered beyond all taken in from its sender here: no message kept has its number, so
        // none is this one.
        let new_for_sure = seq > kept_before;
        if !new_for_sure && self.rooms.taking.contains(&v.id) {
            // The same message again while the first is on its way: neither kept twice nor
            // passed on again.
            return false;
        }
        self.rooms.took(v.room, v.peer, seq);
        let opened = match self.keys.own_texts.remove(&v.id) {
            Some(text) => Ok(text),
            None => self.open_text(v.room, v.account, seq, &sealed),
        };
        let mut noted_key_wait = false;
        let (text, readable) = match opened {
            Ok(text) => (text, Readable::Read),
            Err(OpenError::NoKey) => {
                self.want_key(v.room, &sealed.session, (v.peer, v.account), via.peer());
                if shown_as != (ShownAs::Fetched { show: false }) {
                    let sealing = Sealing { session: sealed.session.clone(), author: v.peer, account: v.account };
                    noted_key_wait = self.keys.await_key(v.id.to_hex(), sealing, Instant::now());
                }
                (String::new(), Readable::AwaitingKey)
            }
            Err(OpenError::Broken(why)) => {
                tracing::info!(room = %v.room, id = %v.id, why, "a message cannot be decrypted");
                (String::new(), Readable::Never)
            }
        };
        let stored = StoredMessage {
            id: v.id,
            room: v.room,
            account: v.account,
            author: v.author.clone(),
            nick: self.nick_of(&v.peer, &v.account, &v.author),
            text,
            ts_ms: v.body.ts_ms,
            depth: v.body.depth,
            peer: v.peer.to_bytes(),
            seq,
            session: sealed.session,
            readable,
        };
        let message = self.chat_message(&stored);
        let keep = move |store: &NodeStore| {
            store.save_message(&stored, &bytes).unwrap_or_else(|e| {
                // Shown all the same: it is lost from this node's history only, and the next
                // catch-up brings it back.
                tracing::error!(room = %stored.room, error = %e, "cannot keep a message");
                true
            })
        };
        if shown_as == ShownAs::Live && new_for_sure {
            self.store.run_behind(move |store| {
                keep(store);
                None
            });
            for (room, message) in self.rooms.order.offer(stream, seq, (v.room, message), Instant::now()) {
                self.show_message(&room, message).await;
            }
            return true;
        }
        self.rooms.taking.insert(v.id);
        // Passed on once the store says it is new (a message held before and released now is
        // not the one in hand: its verdict was given when it came).
        if self.rooms.gossip_in_hand.as_ref().is_some_and(|(event, _)| *event == v.id)
            && let Some((_, gossip)) = self.rooms.gossip_in_hand.take()
        {
            self.rooms.verdicts.insert(v.id, gossip);
        }
        let taken =
            Box::new(TakenMessage { id: v.id, room: v.room, peer: v.peer, seq, message, shown_as, noted_key_wait });
        let done = move |store: &NodeStore| Some(Done::Message { new: keep(store), taken });
        match shown_as {
            // Shown once written: soon, with what is written behind meanwhile.
            ShownAs::Own => self.store.run_soon(done),
            _ => self.store.run(done),
        }
        // Late or again: its verdict waits for the store; this node's own is passed on.
        shown_as == ShownAs::Own
    }

    /// The store kept a message (`new`: it was not kept before): shown now, in its sender's
    /// order, when it is to be shown.
    pub(super) async fn message_kept(&mut self, taken: TakenMessage, new: bool) {
        let TakenMessage { id, room, peer, seq, message, shown_as, noted_key_wait } = taken;
        self.rooms.taking.remove(&id);
        if let Some((gossip, from)) = self.rooms.verdicts.remove(&id) {
            let verdict = if new { MessageAcceptance::Accept } else { MessageAcceptance::Ignore };
            self.swarm.behaviour_mut().gossipsub.report_message_validation_result(&gossip, &from, verdict);
        }
        if !new {
            // Another copy was kept first: its note of waiting for the key (it may be held in
            // its sender's order meanwhile) is not this copy's to drop.
            if noted_key_wait {
                self.keys.awaiting.remove(&message.id);
            }
            return;
        }
        let stream = (room, peer);
        let ready = match shown_as {
            ShownAs::Own => vec![(room, message)],
            // A catch-up during a stream of messages brings some that are still on their way
            // live, and some that overtook them: shown in their sender's order, like those heard.
            ShownAs::Live | ShownAs::Fetched { show: true } => {
                self.rooms.order.offer(stream, seq, (room, message), Instant::now())
            }
            ShownAs::Fetched { show: false } => self.rooms.order.reached(stream, seq),
        };
        for (room, message) in ready {
            self.show_message(&room, message).await;
        }
    }

    /// A kept message as users see it.
    pub(super) fn chat_message(&self, m: &StoredMessage) -> ChatMessage {
        message_view(m, self.room_label(&m.room))
    }

    /// Shows a room message, with a notification when it is someone else's in a room not muted;
    /// one that cannot be read yet waits for its key first.
    async fn show_message(&mut self, room: &EventId, message: ChatMessage) {
        let mut message = message;
        let sealing = match self.keys.awaiting.remove(&message.id) {
            // Its key came while it was held back: opened since.
            Some(Awaiting { opened: Some(text), .. }) => {
                message.unreadable = text.is_none();
                message.text = text.unwrap_or_default();
                None
            }
            Some(Awaiting { sealing, opened: None, .. }) => Some(sealing),
            None => None,
        };
        if let Some(message) = self.wait_for_key(*room, message, sealing) {
            self.show_now(room, message).await;
        }
    }

    /// Shows a room message now (see [`Self::show_message`]).
    pub(super) async fn show_now(&mut self, room: &EventId, message: ChatMessage) {
        if message.unreadable {
            self.keys.shown_unreadable.insert(message.id.clone(), ());
        }
        let from_me = self.me().is_some_and(|me| same_name(&me, &message.from));
        let label = message.room.clone();
        self.emit(UiEvent::Message(message)).await;
        if let Some(note) = self.attention.notification(&Place::Room(*room), from_me) {
            let focused = note.focused;
            self.emit(UiEvent::Notification { kind: NotificationKind::Room, room: Some(label), from: None, focused })
                .await;
        }
    }

    /// Now and then: gives up what waited too long in the engine, and shows the messages held
    /// back for a gap that did not fill in time (and has the gap fetched).
    pub(super) async fn room_tick(&mut self) {
        let now = Instant::now();
        self.rooms.unsent.retain(|_, unsent| {
            unsent.retain(|(since, _)| now.saturating_duration_since(*since) < UNSENT_WAIT);
            !unsent.is_empty()
        });
        let outputs = self.rooms.engine.handle(Input::Tick, Instant::now());
        self.carry_out(outputs).await;
        self.keys_tick().await;
        if !self.rooms.order.is_holding() {
            return;
        }
        let expired = self.rooms.order.expire(Instant::now());
        for (room, message) in expired.ready {
            self.show_message(&room, message).await;
        }
        for (room, author) in expired.gaps {
            self.fill_gap(room, author);
        }
    }

    /// A gossip message on a room's topic: whether gossipsub should pass it on (`None`: the
    /// store will say, once it has kept a late message, see [`Self::message_kept`]).
    pub(super) async fn on_room_gossip(
        &mut self,
        room: EventId,
        data: &[u8],
        gossip: Gossip,
    ) -> Option<MessageAcceptance> {
        let source = gossip.1;
        let Some(key) = self.accounts.trusted_key() else { return Some(MessageAcceptance::Ignore) };
        let Ok(signed) = SignedEvent::decode(data) else { return Some(MessageAcceptance::Reject) };
        // gossipsub hands this node each message once (its id is a hash of the bytes), unsigned:
        // the event's own signature is checked here, once per message rather than per copy.
        let event = match signed.verify(&mut self.certs, &key, now_ms(), None) {
            Ok(v) if v.room == room => v,
            Ok(_) => return Some(MessageAcceptance::Reject),
            Err(e) => {
                tracing::info!(%room, error = %e, "room event refused");
                return Some(MessageAcceptance::Reject);
            }
        };
        let incoming = Incoming { event, bytes: data.to_vec(), via: Via::Live { from: source } };
        if !self.rooms.engine.knows(&room) {
            // Joining: the room's events are on their way.
            let early = self.rooms.early.entry(room).or_default();
            if early.len() < MAX_EARLY {
                early.push(incoming);
            }
            return Some(MessageAcceptance::Ignore);
        }
        self.rooms.gossip_in_hand = Some((incoming.event.id, gossip));
        let acceptance = self.feed(incoming).await;
        // Taken by `take_message` when the store decides.
        self.rooms.gossip_in_hand.take().map(|_| acceptance)
    }

    /// Takes in what was heard on `room`'s topic before its events were in, once they are.
    pub(super) async fn take_early(&mut self, room: &EventId) {
        if !self.rooms.engine.knows(room) {
            return;
        }
        for incoming in self.rooms.early.remove(room).unwrap_or_default() {
            self.feed(incoming).await;
        }
    }

    /// Focuses `room` (created or joined, or `/focus`), and says so.
    pub(super) async fn set_focus(&mut self, room: &EventId) {
        let target = format!("#{}", self.room_label(room));
        self.attention.focus_on(Place::Room(*room), target.clone());
        self.emit(UiEvent::Focus { target }).await;
    }
}
