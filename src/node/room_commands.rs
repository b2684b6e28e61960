//! Room commands: `/create`, `/leave`, `/kick`, `/ban`, `/unban`, `/op`, `/members`, `/rooms`,
//! `/focus`, `/mute`, `/history`, and text for the focused room. Each checks what the user typed,
//! asks the room engine whether the action is allowed now, signs it and hands it to the adapter
//! ([`super::rooms`]); it never decides a room rule itself (`/join` is in
//! [`super::room_sync`]), nor where plain text goes or which room a command naming none means
//! (it asks [`super::attention`]).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::CommandError;
use super::attention::Place;
use super::client::{RoomCommand, RoomReply};
use super::event::{ErrorCode, MemberView, RoomSummary, UiEvent};
use super::parts::EventLoop;
use super::state::rooms::{RoomDone, error, message_view, room_name};
use super::state::store::Done;
use crate::account::{AccountId, same_name};
use crate::room::engine::{CONTROL_BURST, CONTROLS_PER_SEC, Incoming, MESSAGE_BURST, MESSAGES_PER_SEC, Via};
use crate::room::event::{EventPayload, MAX_TEXT_BYTES};
use crate::room::{Action, EventId, Refusal};

/// Messages `/history` shows when no count is given.
pub const DEFAULT_HISTORY: usize = 50;

/// A refusal of the room state, as the error a user sees, with accounts called by `name_of`.
fn refusal_error(room: &str, refusal: Refusal, name_of: impl Fn(&AccountId) -> String) -> CommandError {
    let (code, message) = match &refusal {
        Refusal::Exists => (ErrorCode::RoomExists, refusal.to_string()),
        Refusal::NoSuchRoom => (ErrorCode::NoSuchRoom, refusal.to_string()),
        Refusal::Banned(who) => (ErrorCode::Banned, format!("{} is banned from the room", name_of(who))),
        Refusal::NotMember(who) => (ErrorCode::NotMember, format!("{} is not a member of the room", name_of(who))),
        Refusal::NotAdmin(who) => (ErrorCode::NotAdmin, format!("{} is not an admin of the room", name_of(who))),
        Refusal::TargetIsAdmin(who) => (ErrorCode::NotAdmin, format!("{} is an admin", name_of(who))),
        Refusal::AlreadyMember(who) => (ErrorCode::Usage, format!("{} is already a member", name_of(who))),
        Refusal::NotBanned(who) => (ErrorCode::Usage, format!("{} is not banned", name_of(who))),
    };
    error(code, format!("#{room}: {message}"))
}

impl EventLoop {
    /// Carries out a room command; `/join` answers later, after catch-up.
    pub(super) async fn room_command(&mut self, command: RoomCommand, reply: RoomDone) {
        let done = |r: Result<(), CommandError>| r.map(|()| RoomReply::Done);
        let result = match command {
            RoomCommand::Join(name) => return self.join_room(&name, reply).await,
            RoomCommand::Create(name) => done(self.create_room(&name).await),
            RoomCommand::Leave(room) => done(self.room_action(room.as_deref(), Action::Leave).await),
            RoomCommand::Kick { user, room } => done(self.admin_action(room.as_deref(), &user, Action::Kick).await),
            RoomCommand::Ban { user, room } => done(self.admin_action(room.as_deref(), &user, Action::Ban).await),
            RoomCommand::Unban { user, room } => done(self.admin_action(room.as_deref(), &user, Action::Unban).await),
            RoomCommand::Op { user, room } => done(self.admin_action(room.as_deref(), &user, Action::Op).await),
            RoomCommand::Members(room) => self.members(room.as_deref()),
            RoomCommand::List => Ok(self.room_list()),
            RoomCommand::Focus(room) => done(self.focus_room(&room).await),
            RoomCommand::Mute(target) => done(self.set_muted(target, true).await),
            RoomCommand::Unmute(target) => done(self.set_muted(target, false).await),
            RoomCommand::History(count) => return self.history(count, reply),
            RoomCommand::HistoryAround(n) => return self.history_around(n, reply),
            RoomCommand::Search(line) => return self.search(line, reply),
            RoomCommand::Say(text) => return self.say(&text, reply).await,
            RoomCommand::Send { room, text } => done(self.send_to_room(Some(&room), &text).await),
        };
        let _ = reply.send(result);
    }

    /// Counts one control event of this user against the limit.
    pub(super) fn allow_own_control(&mut self, me: AccountId) -> Result<(), CommandError> {
        if self.rooms.engine.allow_own_control(me, Instant::now()) {
            Ok(())
        } else {
            Err(error(
                ErrorCode::RateLimited,
                format!("slow down: at most {CONTROLS_PER_SEC} room changes a second (bursts of {CONTROL_BURST})"),
            ))
        }
    }

    /// `/create`.
    pub(super) async fn create_room(&mut self, name: &str) -> Result<(), CommandError> {
        let me = self.my_account()?;
        let name = room_name(name)?;
        let taken_online = self
            .rooms
            .directory
            .iter()
            .any(|(peer, rooms)| self.presence_knows(peer) && rooms.iter().any(|r| r.name == name));
        let taken_by_me = self
            .rooms
            .engine
            .rooms_of(&me)
            .iter()
            .any(|id| self.rooms.engine.label(id).is_some_and(|(n, _)| n == name));
        if taken_online || taken_by_me {
            return Err(error(ErrorCode::RoomExists, format!("#{name} exists already: /join {name}")));
        }
        self.allow_own_control(me)?;
        let (signed, event) = self.seal(None, Vec::new(), 0, EventPayload::Create { name })?;
        let room = event.id;
        self.feed(Incoming { event, bytes: signed.encode(), via: Via::Own }).await;
        self.set_focus(&room).await;
        Ok(())
    }

    /// The room a command names, or the focused one.
    fn named_or_focused_room(&self, name: Option<&str>) -> Result<EventId, CommandError> {
        match name {
            Some(name) => self.resolve_room(name),
            None => {
                self.attention.focused_room().ok_or_else(|| error(ErrorCode::Usage, "name a room, or /join one first"))
            }
        }
    }

    /// The room a command names, or the focused one; the user must be a member.
    pub(super) fn member_room(&self, name: Option<&str>) -> Result<(AccountId, EventId), CommandError> {
        let me = self.my_account()?;
        let room = self.named_or_focused_room(name)?;
        if !self.rooms.engine.state(&room).is_some_and(|s| s.is_member(&me)) {
            return Err(error(ErrorCode::NotMember, format!("you are not a member of #{}", self.room_label(&room))));
        }
        Ok((me, room))
    }

    /// `/kick`, `/ban`, `/unban`, `/op` of `user` (a username, any case).
    async fn admin_action(
        &mut self,
        name: Option<&str>,
        user: &str,
        action: impl FnOnce(AccountId) -> Action,
    ) -> Result<(), CommandError> {
        let (_, room) = self.member_room(name)?;
        let target = self.account_named(&room, user.trim_start_matches('@'))?;
        self.act(room, action(target)).await
    }

    /// The account `user` (any case) names in `room`: a member or someone banned there by that
    /// name, else the one known to go by it (online, or seen before).
    fn account_named(&self, room: &EventId, user: &str) -> Result<AccountId, CommandError> {
        let state = self.rooms.engine.state(room);
        let in_room = state.into_iter().flat_map(|s| s.members().iter().map(|m| m.user).chain(s.banned()));
        let named = |account: &AccountId| same_name(&self.accounts.name_of(account), user);
        let found = in_room.filter(named).collect::<Vec<_>>();
        if let [only] = found[..] {
            return Ok(only);
        }
        self.account_called(user)
    }

    /// `/leave`, `/kick`, `/ban`, `/unban`, `/op`: a control event by this user. The last admin
    /// to leave first makes the member of longest standing an admin (as this node saw them
    /// join: a join claiming to be older than it is takes nothing).
    pub(super) async fn room_action(&mut self, name: Option<&str>, action: Action) -> Result<(), CommandError> {
        let (me, room) = self.member_room(name)?;
        if action == Action::Leave
            && let Some(next) = self.rooms.engine.successor(&room, &me)
        {
            self.act(room, Action::Op(next)).await?;
        }
        self.act(room, action).await
    }

    async fn act(&mut self, room: EventId, action: Action) -> Result<(), CommandError> {
        let me = self.my_account()?;
        self.rooms
            .engine
            .check(&room, &me, &action)
            .map_err(|r| refusal_error(&self.room_label(&room), r, |a| self.accounts.name_of(a)))?;
        self.allow_own_control(me)?;
        let (signed, event) = self.seal_in(room, EventPayload::Control(action))?;
        self.feed(Incoming { event, bytes: signed.encode(), via: Via::Own }).await;
        Ok(())
    }

    /// Plain text: to the focused room or conversation (answered once a direct message is
    /// kept).
    pub(super) async fn say(&mut self, text: &str, reply: RoomDone) {
        let answer = |result: Result<(), CommandError>| {
            let _ = reply.send(result.map(|()| RoomReply::Done));
        };
        if let Err(e) = self.logged_in() {
            return answer(Err(e));
        }
        match self.attention.route_text() {
            None => answer(Err(error(
                ErrorCode::Usage,
                "nowhere to send it: /join a room (or /create one), or /query a user",
            ))),
            Some(Place::Room(_)) => answer(self.send_to_room(None, text).await),
            Some(Place::User(user)) => self.send_dm_to_known(user, text, Box::new(answer)).await,
        }
    }

    /// A message to `room` (default: the focused one).
    pub(super) async fn send_to_room(&mut self, name: Option<&str>, text: &str) -> Result<(), CommandError> {
        let (me, room) = self.member_room(name)?;
        if text.len() > MAX_TEXT_BYTES {
            return Err(error(
                ErrorCode::TooLong,
                format!("a message is at most {MAX_TEXT_BYTES} bytes; this one is {}", text.len()),
            ));
        }
        if !self.rooms.engine.allow_own_message(me, Instant::now()) {
            return Err(error(
                ErrorCode::RateLimited,
                format!("slow down: at most {MESSAGES_PER_SEC} room messages a second (bursts of {MESSAGE_BURST})"),
            ));
        }
        let seq = self.next_message_seq(&room);
        let (prev, depth) =
            self.rooms.engine.cite(&room).ok_or_else(|| error(ErrorCode::NoSuchRoom, "the room is not known here"))?;
        let sealed = self.seal_text(room, me, &prev, seq, text);
        let (signed, event) = self.seal(Some(room), prev, depth, EventPayload::Message { seq, sealed })?;
        // Out first, then taken in and shown here; it is written with the next batch.
        let bytes = signed.encode();
        self.publish(&room, bytes.clone());
        // This node wrote the text: it is not decrypted again.
        let id = event.id;
        self.keys.own_texts.insert(id, text.to_string());
        self.feed(Incoming { event, bytes, via: Via::Own }).await;
        self.keys.own_texts.remove(&id);
        Ok(())
    }

    /// `/members`.
    pub(super) fn members(&self, name: Option<&str>) -> Result<RoomReply, CommandError> {
        let room = self.named_or_focused_room(name)?;
        let label = self.room_label(&room);
        let state = self.rooms.engine.state(&room).filter(|s| s.exists());
        let state =
            state.ok_or_else(|| error(ErrorCode::NoSuchRoom, format!("#{label} is not known here: /join it first")))?;
        let members = state
            .members()
            .iter()
            .map(|m| MemberView { user: self.accounts.name_of(&m.user), admin: m.admin })
            .collect();
        let encryption = self.encryption_of(&room);
        Ok(RoomReply::Members { room: label, members, encryption })
    }

    /// `/rooms`: the rooms online users are in, and this user's.
    pub(super) fn room_list(&self) -> RoomReply {
        let mut online: HashMap<EventId, HashSet<String>> = HashMap::new();
        for (peer, refs) in &self.rooms.directory {
            if let Some(user) = self.presence_user(peer) {
                for r in refs {
                    online.entry(r.id).or_default().insert(user.clone());
                }
            }
        }
        if let Some(me) = self.me() {
            for r in self.my_rooms() {
                online.entry(r.id).or_default().insert(me.clone());
            }
        }
        let mut list: Vec<RoomSummary> = online
            .into_iter()
            .map(|(room, users)| {
                let members =
                    self.rooms.engine.state(&room).filter(|s| s.exists()).map_or(users.len(), |s| s.members().len());
                RoomSummary { room: self.room_label(&room), id: room.to_hex(), members }
            })
            .collect();
        list.sort_by(|a, b| a.room.cmp(&b.room));
        RoomReply::Rooms(list)
    }

    /// `/focus ROOM`.
    pub(super) async fn focus_room(&mut self, name: &str) -> Result<(), CommandError> {
        let (_, room) = self.member_room(Some(name))?;
        self.set_focus(&room).await;
        Ok(())
    }

    /// `/mute`, `/unmute` (`#room` or `@user`).
    pub(super) async fn set_muted(&mut self, target: String, muted: bool) -> Result<(), CommandError> {
        // A user is muted by account (kept as `@` and the id), a room by id (`#` and the id);
        // both shown by name.
        let (place, target) = match target.strip_prefix('@') {
            Some(user) => {
                let account = self.account_called(user)?;
                (Place::User(account), format!("@{}", self.accounts.name_of(&account)))
            }
            None => {
                let room = self.resolve_room(&target)?;
                (Place::Room(room), format!("#{}", self.room_label(&room)))
            }
        };
        let key = place.mute_key();
        self.store.write_or_tell("keep the mute for the next start", move |store| store.set_muted(&key, muted));
        self.attention.set_muted(&place, muted);
        if muted {
            self.emit(UiEvent::Muted { target }).await;
        } else {
            self.emit(UiEvent::Unmuted { target }).await;
        }
        Ok(())
    }

    /// `/history [N]` for the focused room or conversation: answered once read.
    pub(super) fn history(&self, count: Option<usize>, reply: RoomDone) {
        let count = count.unwrap_or(DEFAULT_HISTORY);
        let room = match self.attention.route_text() {
            None => {
                let why = error(ErrorCode::Usage, "/history shows the focused room or conversation: /focus one");
                let _ = reply.send(Err(why));
                return;
            }
            Some(Place::User(user)) => return self.dm_history(&user, count, reply),
            Some(Place::Room(room)) => room,
        };
        let label = self.room_label(&room);
        self.store.run(move |store| {
            let answer = store
                .recent_messages(&room, count)
                .map(|messages| RoomReply::History {
                    target: format!("#{label}"),
                    messages: messages.iter().map(|m| UiEvent::Message(message_view(m, label.clone()))).collect(),
                })
                .map_err(|e| error(ErrorCode::Internal, e.to_string()));
            Some(Done::Reply { reply, answer })
        });
    }
}
