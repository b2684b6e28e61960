//! The node's side of room encryption (`/meshchat/keys/1`): the adapter around the
//! [`crate::e2e::Keyring`]. It seals this user's messages with the user's group session in the
//! room and gives the session's key to the members who lack it (those online now; the others
//! ask when they see a message they cannot read); it opens what arrives, asks a member in reach
//! for a key it lacks (the author first), answers such requests, and shows the messages that
//! waited for their key once it comes, or as unreadable once they waited [`KEY_WAIT`](super::state::key_wait::KEY_WAIT).
//!
//! Who may hold a key is the room's fold's to say: a key is given only to members, taken only
//! from members, and passed on only to a member, in a state that knows the control events the
//! session's author knew when it began the session (so a member removed before the session
//! began never gets it from anyone who knows of the removal). The cryptography is the keyring's;
//! nothing here looks inside a key or a ciphertext.

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use libp2p::PeerId;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};

use super::parts::EventLoop;
use super::state::key_wait::Sealing;
use super::state::keys::OPEN_BATCH;
use super::state::store::Done;
use crate::account::AccountId;
use crate::clock::unix_now;
use crate::e2e::{OpenError, RoomKey, Sealed};
use crate::node::event::{ChatMessage, RoomEncryption};
use crate::protocol::keys::{self as wire, KeysRefusal, KeysRequest, KeysResponse, MAX_KEYS};
use crate::room::EventId;
use crate::room::engine::Standing;
use crate::room::event::{EventPayload, SignedEvent};
use crate::store::StoredMessage;

impl EventLoop {
    /// Takes in the room keys read from the database at start.
    pub(super) fn load_keys(&mut self) {
        let keys = self.loaded.as_mut().map(|loaded| std::mem::take(&mut loaded.room_keys)).unwrap_or_default();
        for key in keys {
            if let Err(error) = self.keys.ring.take(key) {
                tracing::warn!(%error, "a kept room key is not taken again");
            }
        }
    }

    /// The members of `room` now, by account.
    fn members_of(&self, room: &EventId) -> BTreeSet<AccountId> {
        self.rooms.engine.state(room).map(|s| s.members().iter().map(|m| m.user).collect()).unwrap_or_default()
    }

    /// Seals `text`, this user `me`'s message number `seq` in `room` (citing `prev`), with the
    /// user's session there, and gives the session's key to the members online who lack it (a
    /// new session's key is kept).
    pub(super) fn seal_text(&mut self, room: EventId, me: AccountId, prev: &[EventId], seq: u64, text: &str) -> Sealed {
        let members = self.members_of(&room);
        let sealing = self.keys.ring.seal(room, me, &members, prev, seq, text);
        if sealing.began {
            let key = sealing.key.clone();
            self.store.write("keep a room key", move |store| store.save_room_key(&key));
        }
        for account in sealing.share_with {
            if let Some(peer) = self.peer_of_account(&account) {
                self.give_keys(peer, account, vec![sealing.key.clone()]);
            }
        }
        sealing.sealed
    }

    /// How many of `room`'s members hold the key of this user's current session there, this
    /// user included, as they said on taking it (`None`: no session running yet: the next
    /// message begins one).
    fn key_holders(&self, room: &EventId, members: &BTreeSet<AccountId>) -> Option<usize> {
        let holders = self.keys.holders_of(room)?;
        let me = self.accounts.account();
        Some(members.iter().filter(|m| Some(**m) == me || holders.contains(m)).count())
    }

    /// `room`'s encryption, for `/members` and `/status`.
    pub(super) fn encryption_of(&self, room: &EventId) -> RoomEncryption {
        let members = self.members_of(room);
        RoomEncryption {
            room: self.room_label(room),
            encrypted: true,
            members: members.len(),
            key_holders: self.key_holders(room, &members),
        }
    }

    /// The encryption of this user's rooms, by label.
    pub(super) fn my_rooms_encryption(&self) -> Vec<RoomEncryption> {
        let mut rooms: Vec<RoomEncryption> = self.my_rooms().iter().map(|r| self.encryption_of(&r.id)).collect();
        rooms.sort_by(|a, b| a.room.cmp(&b.room));
        rooms
    }

    /// Ends this user's session in `room` (they left): the next message there begins a new one.
    pub(super) fn end_session(&mut self, room: &EventId) {
        self.keys.end_own(room);
    }

    /// Ends every session of this user (a logout).
    pub(super) fn end_sessions(&mut self) {
        self.keys.end_all_own();
    }

    /// Opens a message of `author` (number `seq`) in `room`.
    pub(super) fn open_text(
        &mut self,
        room: EventId,
        author: AccountId,
        seq: u64,
        sealed: &Sealed,
    ) -> Result<String, OpenError> {
        self.keys.ring.open(room, author, seq, sealed)
    }

    /// A message of `room` sealed with `session` cannot be read here: its key is asked for (of
    /// its author's peer first, then of the peer it came from, then of other members in reach,
    /// one at a time), at most once every [`super::state::keys::ASK_AGAIN`]. `account` signed the
    /// message: a key that comes must be named as its.
    pub(super) fn want_key(
        &mut self,
        room: EventId,
        session: &str,
        (author, account): (PeerId, AccountId),
        via: Option<PeerId>,
    ) {
        let now = Instant::now();
        if !self.keys.may_ask(room, session, account, now) {
            return;
        }
        let members = self.members_of(&room);
        let me = *self.swarm.local_peer_id();
        let mut candidates: Vec<PeerId> = [Some(author), via].into_iter().flatten().collect();
        for account in &members {
            candidates.extend(
                self.presence.engine.roster().peers_of(account).iter().filter_map(|b| PeerId::from_bytes(b).ok()),
            );
        }
        candidates.retain(|peer| *peer != me && self.swarm.is_connected(peer));
        let Some(asked) = self.keys.asked.get_mut(&(room, session.to_string())) else { return };
        let peer = candidates.iter().find(|peer| !asked.peers.contains(peer)).copied().or_else(|| {
            // Everyone in reach was asked: round again.
            asked.peers.clear();
            candidates.first().copied()
        });
        let Some(peer) = peer else {
            tracing::debug!(%room, session, "nobody in reach to ask for a room key");
            return;
        };
        asked.peers.push(peer);
        tracing::debug!(%peer, %room, session, "asking for a room key");
        let Some(certificate) = self.accounts.session().map(|s| s.certificate.clone()) else { return };
        let sessions = vec![session.to_string()];
        let request = KeysRequest::Ask { certificate, room, sessions: sessions.clone() };
        let id = self.swarm.behaviour_mut().keys.send_request(&peer, request);
        self.keys.asks.insert(id, (room, sessions));
    }

    /// Gives `keys` (this user's own) to `peer`, a peer of `account`.
    fn give_keys(&mut self, peer: PeerId, account: AccountId, keys: Vec<RoomKey>) {
        let Some(certificate) = self.accounts.session().map(|s| s.certificate.clone()) else { return };
        let sessions = keys.iter().map(|key| (key.room, key.session.clone())).collect();
        let id = self.swarm.behaviour_mut().keys.send_request(&peer, KeysRequest::Give { certificate, keys });
        self.keys.gives.insert(id, (account, sessions));
    }

    /// A message of `room` is about to be shown: when it cannot be read yet (it is sealed as
    /// `sealing` says) it waits for its key instead, up to [`KEY_WAIT`](super::state::key_wait::KEY_WAIT), and so does one whose
    /// sender has a message waiting before it. Should the key be here by now, its sealed
    /// messages are opened again. Handed back (`Some`) when it is to be shown now.
    pub(super) fn wait_for_key(
        &mut self,
        room: EventId,
        message: ChatMessage,
        sealing: Option<Sealing>,
    ) -> Option<ChatMessage> {
        let session = sealing.as_ref().map(|s| s.session.clone());
        if let Some(message) = self.keys.wait.hold(room, message, sealing, Instant::now()) {
            return Some(message);
        }
        if let Some(session) = session
            && self.keys.ring.key(&room, &session).is_some()
        {
            self.open_sealed(room, session);
        }
        None
    }

    /// Now and then: the keys messages wait for are asked for again (each every
    /// [`super::state::keys::ASK_AGAIN`], of the next member in reach: an answer may have been a
    /// refusal given before the asker's join was known there), or, held, their messages are
    /// opened again; what waited too long for its key is shown as unreadable.
    pub(super) async fn keys_tick(&mut self) {
        self.keys.forget_stale(Instant::now());
        for (room, sealing) in self.keys.wait.sessions() {
            if self.keys.ring.key(&room, &sealing.session).is_none() {
                self.want_key(room, &sealing.session, (sealing.author, sealing.account), None);
            } else if self.keys.may_ask(room, &sealing.session, sealing.account, Instant::now()) {
                // The key is here, yet messages wait: their rows were read before they were.
                self.open_sealed(room, sealing.session);
            }
        }
        self.show_ready().await;
    }

    /// Shows the messages no longer held back for a key.
    async fn show_ready(&mut self) {
        for (room, message) in self.keys.wait.ready(Instant::now()) {
            self.show_now(&room, message).await;
        }
    }

    /// A peer gives keys or asks for them.
    pub(super) fn on_keys_request(
        &mut self,
        peer: PeerId,
        request: KeysRequest,
        channel: ResponseChannel<KeysResponse>,
    ) {
        let answer = self.keys_answer(peer, request);
        if let Err(KeysResponse::Refused(refusal)) | Ok(KeysResponse::Refused(refusal)) = &answer {
            tracing::info!(%peer, %refusal, "room keys refused");
        }
        let answer = answer.unwrap_or_else(|refused| refused);
        if self.swarm.behaviour_mut().keys.send_response(channel, answer).is_err() {
            tracing::debug!(%peer, "the asker left before its answer");
        }
    }

    fn keys_answer(&mut self, peer: PeerId, request: KeysRequest) -> Result<KeysResponse, KeysResponse> {
        let refused = KeysResponse::Refused;
        let authority = self.accounts.trusted_key().ok_or(refused(KeysRefusal::NotLoggedIn))?;
        let me = self.accounts.account().ok_or(refused(KeysRefusal::NotLoggedIn))?;
        let sender = wire::check_request(&request, &peer.to_bytes(), &mut self.certs, &authority, unix_now())
            .map_err(refused)?;
        let member = |this: &Self, room: &EventId, account: &AccountId| {
            this.rooms.engine.standing(room, account) == Standing::Member
        };
        match request {
            KeysRequest::Give { keys, .. } => {
                // Taken only in rooms where both are members here.
                if !keys.iter().all(|key| member(self, &key.room, &me) && member(self, &key.room, &sender.account)) {
                    return Err(refused(KeysRefusal::NotMember));
                }
                self.take_keys(keys);
                Ok(KeysResponse::Taken)
            }
            KeysRequest::Ask { room, sessions, .. } => {
                if !self.rooms.engine.knows(&room) {
                    return Err(refused(KeysRefusal::NoSuchRoom));
                }
                if !member(self, &room, &sender.account) {
                    return Err(refused(KeysRefusal::NotMember));
                }
                let keys = self.passable_keys(&room, &sessions);
                let passed: Vec<(EventId, String)> = keys.iter().map(|key| (key.room, key.session.clone())).collect();
                self.keys.held_by(sender.account, &passed);
                Ok(KeysResponse::Keys(keys))
            }
        }
    }

    /// The keys a catch-up page of `room` for `asker` carries: those of `sessions` (its
    /// messages', read beside them) that this node holds and may pass on, when the asker is a
    /// member now.
    pub(super) fn keys_for_page(&self, room: EventId, asker: AccountId, sessions: &[String]) -> Vec<RoomKey> {
        if self.rooms.engine.standing(&room, &asker) != Standing::Member {
            return Vec::new();
        }
        self.passable_keys(&room, sessions)
    }

    /// Of the keys of `sessions` in `room`, those held here that may be passed on: the control
    /// events their authors knew when they began them are known here.
    fn passable_keys(&self, room: &EventId, sessions: &[String]) -> Vec<RoomKey> {
        let engine = &self.rooms.engine;
        sessions
            .iter()
            .filter_map(|session| self.keys.ring.key(room, session))
            .filter(|key| key.since.iter().all(|id| engine.contains(room, id)))
            .take(MAX_KEYS)
            .cloned()
            .collect()
    }

    /// The keys a catch-up page of `room` brought, served by `server`'s peer: taken when the
    /// server is a member, and each only as the session of a message in the page signed by the
    /// author the key names (`sealed_by`: session and signer), since whoever passes a key on
    /// names its author as it likes, and a key named after someone counts against their
    /// sessions here.
    pub(super) fn take_page_keys(
        &mut self,
        room: EventId,
        server: AccountId,
        sealed_by: &HashSet<(&str, AccountId)>,
        keys: Vec<RoomKey>,
    ) {
        if keys.is_empty() || self.rooms.engine.standing(&room, &server) != Standing::Member {
            return;
        }
        self.take_keys(super::state::keys::sealed_in_page(room, sealed_by, keys));
    }

    /// An answer to keys given or asked for.
    pub(super) fn on_keys_response(&mut self, peer: PeerId, request: OutboundRequestId, response: KeysResponse) {
        let asked = self.keys.asks.remove(&request);
        let given = self.keys.gives.remove(&request);
        match response {
            KeysResponse::Keys(keys) => {
                let Some((room, sessions)) = asked else { return };
                // Only as the author of a message that waits for it: a key named after anyone
                // else would count against that author's sessions here.
                let keys: Vec<RoomKey> = keys
                    .into_iter()
                    .filter(|key| {
                        key.room == room
                            && sessions.contains(&key.session)
                            && self.keys.asked_of(&room, &key.session, &key.author)
                    })
                    .collect();
                tracing::debug!(%peer, %room, keys = keys.len(), "room keys came");
                self.take_keys(keys);
            }
            KeysResponse::Taken => {
                if let Some((account, sessions)) = given {
                    self.keys.held_by(account, &sessions);
                }
            }
            KeysResponse::Refused(refusal) => tracing::info!(%peer, %refusal, "room keys refused"),
        }
    }

    /// Keys given or asked for did not reach `peer`, or no answer came.
    pub(super) fn on_keys_failure(&mut self, peer: PeerId, request: OutboundRequestId, error: String) {
        self.keys.asks.remove(&request);
        self.keys.gives.remove(&request);
        tracing::debug!(%peer, error, "room keys did not get through");
    }

    /// Takes keys that checked out: each new one is kept, and the messages sealed with its
    /// session opened.
    fn take_keys(&mut self, keys: Vec<RoomKey>) {
        for key in keys {
            match self.keys.ring.take(key.clone()) {
                Ok(crate::e2e::Opened::Taken) => {
                    let (room, session) = (key.room, key.session.clone());
                    self.store.write("keep a room key", move |store| store.save_room_key(&key));
                    self.open_sealed(room, session);
                }
                Ok(crate::e2e::Opened::Known) => {}
                Err(error) => tracing::info!(%error, room = %key.room, "a room key refused"),
            }
        }
    }

    /// Has the store worker read the messages of `room` sealed with `session` that could not be
    /// read (up to [`OPEN_BATCH`]), to open them ([`Self::open_read`]).
    fn open_sealed(&mut self, room: EventId, session: String) {
        self.store.run(move |store| match store.sealed_messages(&room, &session, OPEN_BATCH) {
            Ok(rows) => Some(Done::Sealed { room, session, rows }),
            Err(error) => {
                tracing::error!(%error, "cannot read the messages waiting for a key");
                None
            }
        });
    }

    /// Sealed messages read back: each one its key opens now is written opened, and shown if it
    /// waited to be, or shown again, read, if it was shown unreadable; one that never will be
    /// read is marked so. More are read while a batch opened.
    pub(super) async fn open_read(&mut self, room: EventId, session: String, rows: Vec<(StoredMessage, Vec<u8>)>) {
        let full = rows.len() >= OPEN_BATCH;
        let mut opened_any = false;
        let mut read_late = Vec::new();
        for (message, bytes) in rows {
            let event = SignedEvent::decode(&bytes).ok().and_then(|e| e.open_stored());
            let Some(EventPayload::Message { seq, sealed }) = event.map(|e| e.body.payload) else { continue };
            let text = match self.keys.ring.open(room, message.account, seq, &sealed) {
                Ok(text) => Some(text),
                Err(OpenError::NoKey) => continue,
                Err(OpenError::Broken(why)) => {
                    tracing::info!(%room, id = %message.id, why, "a message cannot be decrypted");
                    None
                }
            };
            opened_any = true;
            let (id, kept) = (message.id, text.clone());
            self.store.write("open a message", move |store| store.open_message(&id, kept.as_deref()));
            let id = message.id.to_hex();
            if let Some(awaiting) = self.keys.awaiting.get_mut(&id) {
                awaiting.opened = Some(text.clone());
            }
            // Its text again only for one shown unreadable, to show it read.
            let again = text.as_ref().filter(|_| self.keys.shown_unreadable.contains(&id)).cloned();
            let held = self.keys.wait.opened(&id, text);
            if let Some(text) = again
                && !held
                && self.keys.shown_unreadable.remove(&id).is_some()
            {
                read_late.push(ChatMessage { text, unreadable: false, ..self.chat_message(&message) });
            }
        }
        self.show_ready().await;
        for message in read_late {
            self.show_now(&room, message).await;
        }
        if full && opened_any {
            self.open_sealed(room, session);
        }
    }
}
