//! The node's side of direct messages (`/meshchat/dm/2`): the adapter that feeds the
//! [`DmEngine`] and carries out what it decides. `/msg` and `/query` (the name checked, and the
//! account that goes by it found online, at the bootstrap node or among those seen), the
//! requests and their answers on the swarm, the database, and what users see.
//!
//! The rules of direct messages live in the engine (`dm/engine.rs`), never here: which message
//! goes out when, one in flight per receiver, receipts, duplicates and stale arrivals, what to
//! show. This side checks a request's certificate before the engine sees it, has the store
//! worker read for the engine what it asks for (the outbox, whom messages wait for, what was
//! received before from a sender it has not heard from in this run) and keep and mark rows,
//! hands the engine what comes back as inputs, sends with this user's certificate, answers, and
//! turns what the engine shows into [`UiEvent`]s. Nothing here waits for the store: the
//! conversations' last numbers are read at start and what each sender sent is kept in memory;
//! `/msg` is answered once its message is kept (or lost). The outbox is pumped when a
//! receiver's presence is heard, after a login and on the presence timer; it survives restarts
//! because it lives in SQLite.

use std::collections::VecDeque;
use std::time::Instant;

use libp2p::PeerId;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};
use tokio::sync::oneshot;

use super::CommandError;
use super::attention::Place;
use super::client::{DirectCommand, Done, RoomReply};
use super::event::{DirectMessage, ErrorCode, NotificationKind, Status, UiEvent};
use super::parts::EventLoop;
use super::state::direct::{AfterLookup, Answer, Replied, Sender, replied};
use super::state::rooms::RoomDone;
use super::state::store::Done as StoreDone;
use crate::account::check_username;
use crate::account::{AccountId, same_name};
use crate::clock::{now_ms, unix_now};
use crate::dm::{Channel, Flight, Input, Output, Received, Seen, Show, StoredDm};
use crate::protocol::dm::{self as wire, CheckedDm, DmRefusal, DmRequest, DmResponse};
use crate::room::event::MAX_TEXT_BYTES;
use crate::session::Lookup;

fn error(code: ErrorCode, message: impl Into<String>) -> CommandError {
    CommandError::new(code, message)
}

fn no_bootstrap_to_ask(user: &str) -> CommandError {
    error(
        ErrorCode::NoBootstrap,
        format!("{user} is not known here, and no bootstrap node is in reach to ask who that is; try again later"),
    )
}

pub(super) fn view(dm: &StoredDm) -> DirectMessage {
    DirectMessage { from: dm.from.clone(), to: dm.to.clone(), text: dm.text.clone(), id: dm.id.clone(), ts: dm.ts_ms }
}

pub(super) fn internal(e: impl std::fmt::Display) -> CommandError {
    error(ErrorCode::Internal, format!("the message store failed: {e}"))
}

impl EventLoop {
    /// `/msg` and `/query`: checks the name, finds the account that goes by it (online, seen
    /// before, or known to the bootstrap node), then sends or focuses. Answers on `reply`, maybe
    /// after a lookup.
    pub(super) async fn direct_command(&mut self, command: DirectCommand, reply: Done) {
        let (user, text) = match command {
            DirectCommand::Send { user, text } => (user, Some(text)),
            DirectCommand::Query(user) => (user, None),
        };
        let user = user.trim_start_matches('@').to_string();
        if let Err(e) = self.check_direct(&user, text.as_deref()) {
            let _ = reply.send(Err(e));
            return;
        }
        let reply = replied(reply);
        if let Some(online) = self.online_account(&user) {
            self.after_lookup(online, text, reply).await;
        } else if self.accounts.bootstrap_peer().is_some() {
            // The bootstrap node knows who holds a name now; a name seen here may have changed
            // hands since.
            self.lookup_user(&user, AfterLookup { user: user.clone(), text, reply }).await;
        } else if let Some(known) = self.accounts.known_account(&user) {
            self.after_lookup(known, text, reply).await;
        } else {
            reply(Err(no_bootstrap_to_ask(&user)));
        }
    }

    fn check_direct(&self, user: &str, text: Option<&str>) -> Result<(), CommandError> {
        let me = self.logged_in()?;
        check_username(user).map_err(|e| error(ErrorCode::Usage, e.to_string()))?;
        if same_name(user, &me) {
            return Err(error(ErrorCode::Usage, "that is you: name someone else"));
        }
        Self::check_text(text)
    }

    fn check_text(text: Option<&str>) -> Result<(), CommandError> {
        if let Some(text) = text {
            if text.trim().is_empty() {
                return Err(error(ErrorCode::Usage, "nothing to send"));
            }
            if text.len() > MAX_TEXT_BYTES {
                return Err(error(
                    ErrorCode::TooLong,
                    format!("a message is at most {MAX_TEXT_BYTES} bytes; this one is {}", text.len()),
                ));
            }
        }
        Ok(())
    }

    /// The bootstrap node answered (or did not) who holds a name.
    pub(super) async fn finish_lookup(&mut self, after: AfterLookup, found: Lookup) {
        let AfterLookup { user, text, reply } = after;
        match found {
            Lookup::Exists(account, _) => self.after_lookup(account, text, reply).await,
            Lookup::Unknown => reply(Err(error(ErrorCode::NoSuchUser, format!("there is no user called {user}")))),
            Lookup::NoAnswer => match self.accounts.known_account(&user) {
                Some(known) => self.after_lookup(known, text, reply).await,
                None => reply(Err(no_bootstrap_to_ask(&user))),
            },
        }
    }

    async fn after_lookup(&mut self, account: AccountId, text: Option<String>, reply: Replied) {
        if self.accounts.account() == Some(account) {
            return reply(Err(error(ErrorCode::Usage, "that is you: name someone else")));
        }
        match text {
            Some(text) => self.send_dm_to_known(account, &text, reply).await,
            None => {
                let target = format!("@{}", self.accounts.name_of(&account));
                self.attention.focus_on(Place::User(account), target.clone());
                self.emit(UiEvent::Focus { target }).await;
                reply(Ok(()));
            }
        }
    }

    /// Writes a message to account `to`: numbers it and gives it to the engine (which sends it
    /// at once or keeps it first, then shows it); `reply` is answered once it is kept, or lost.
    pub(super) async fn send_dm_to_known(&mut self, to: AccountId, text: &str, reply: Replied) {
        let checked = Self::check_text(Some(text)).and_then(|()| Ok((self.logged_in()?, self.my_account()?)));
        let (me, owner) = match checked {
            Ok(checked) => checked,
            Err(e) => return reply(Err(e)),
        };
        // Every conversation's last number was read at start; none: this is the first.
        let seq = match self.direct.engine.last_seq(&owner, &to).map(|last| last.checked_add(1)) {
            None => 1,
            Some(Some(next)) => next,
            Some(None) => return reply(Err(internal("the conversation's numbers ran out"))),
        };
        // When older messages may wait, it is kept first and goes after them.
        let older_waiting = self.direct.engine.may_wait(&to);
        let dm = StoredDm {
            id: wire::new_id(),
            owner,
            other: to,
            from: me,
            to: self.accounts.name_of(&to),
            text: text.to_string(),
            ts_ms: now_ms(),
            seq,
            outgoing: true,
            delivered: false,
        };
        self.direct.replies.insert(dm.id.clone(), reply);
        let peer = self.peer_of_account(&to);
        self.feed_direct(Input::Send { dm: Box::new(dm), peer, older_waiting }).await;
    }

    /// Gives the engine `input` and carries out what it decides.
    async fn feed_direct(&mut self, input: Input) {
        let outputs = self.direct.engine.handle(input, Instant::now());
        self.carry_out_direct(outputs).await;
    }

    /// Carries out the engine's outputs in their order: requests and answers queued on the
    /// swarm, writes and reads queued to the store worker (what they read or wrote comes back as
    /// inputs, see `on_written`), shows emitted. Only a request that cannot go at all goes back
    /// to the engine at once.
    async fn carry_out_direct(&mut self, outputs: Vec<Output>) {
        let mut queue = VecDeque::from(outputs);
        while let Some(output) = queue.pop_front() {
            let back = match output {
                Output::Send { flight, peer, dm } => self.send_dm(flight, peer, dm),
                Output::Answer { channel, response } => {
                    self.answer_dm(channel, response);
                    None
                }
                Output::Leave(dm) => {
                    self.leave_at_mailbox(dm);
                    None
                }
                Output::Keep(dm) => {
                    self.store.run(move |store| {
                        let error = store.save_dm(&dm).err().map(|e| e.to_string());
                        Some(StoreDone::DmKept { id: dm.id, error })
                    });
                    None
                }
                Output::KeepReceived { channel, dm, peer } => {
                    self.store.run(move |store| {
                        let kept = store.save_received_dm(&dm, &peer.to_bytes());
                        if let Err(e) = &kept {
                            tracing::error!(error = %e, "cannot keep a direct message");
                        }
                        let sender = (dm.owner, dm.other, peer);
                        // Not kept now because it was already: a duplicate, never shown again.
                        let known = matches!(kept, Ok(false));
                        Some(StoreDone::DmKeptReceived {
                            channel,
                            ok: kept.is_ok(),
                            known,
                            sender,
                            seq: dm.seq,
                            id: dm.id,
                        })
                    });
                    None
                }
                Output::MarkDelivered { owner, to, id } => {
                    self.store.write("note a receipt", move |store| store.mark_delivered(&owner, &to, &id));
                    None
                }
                Output::ReadOutbox { to } => self.read_outbox(to),
                Output::ReadWaiting => self.read_waiting(),
                Output::ReadSeen(received) => {
                    self.read_seen(*received);
                    None
                }
                Output::Show(show) => {
                    if let Show::Dm(dm) = &show
                        && let Some(reply) = self.direct.replies.remove(&dm.id)
                    {
                        reply(Ok(()));
                    }
                    self.show_dm(show).await;
                    None
                }
                Output::Lost { id } => {
                    let why = self.direct.not_kept.remove(&id).unwrap_or_else(|| "the message was not kept".into());
                    tracing::error!(%id, %why, "a direct message was lost");
                    if let Some(reply) = self.direct.replies.remove(&id) {
                        reply(Err(internal(why)));
                    }
                    None
                }
                Output::Stays { to, why } => {
                    tracing::debug!(%to, %why, "direct message not delivered yet; it stays in the outbox");
                    None
                }
            };
            if let Some(input) = back {
                let next = self.direct.engine.handle(input, Instant::now());
                for output in next.into_iter().rev() {
                    queue.push_front(output);
                }
            }
        }
    }

    /// The store worker kept (or failed to keep) message `id` this user wrote.
    pub(super) async fn dm_kept(&mut self, id: String, error: Option<String>) {
        let ok = error.is_none();
        if let Some(why) = error {
            tracing::error!(error = %why, "cannot keep a direct message");
            self.direct.not_kept.insert(id.clone(), why);
        }
        self.feed_direct(Input::Kept { id: id.clone(), ok }).await;
        // Kept or not, the engine is done with it (a loss was reported in that feed).
        self.direct.not_kept.remove(&id);
    }

    /// The store worker kept (or failed to keep) a message received from `sender`; `known`: it
    /// was kept already.
    pub(super) async fn dm_kept_received(
        &mut self,
        channel: Channel,
        ok: bool,
        known: bool,
        sender: Sender,
        seq: u64,
        id: String,
    ) {
        if ok {
            let seen = self.direct.seen.entry(sender).or_insert((None, None));
            if seen.0 <= Some(seq) {
                *seen = (Some(seq), Some(id));
            }
        }
        self.feed_direct(Input::KeptReceived { channel, ok, known }).await;
    }

    /// The store worker read the oldest message waiting for `to`: it goes where `to` is online
    /// now.
    pub(super) async fn dm_oldest(&mut self, to: AccountId, dm: Result<Option<StoredDm>, String>) {
        let (peer, dm) = match dm {
            Ok(dm) => (self.accounts.account().and_then(|_| self.peer_of_account(&to)), dm),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox");
                (None, None)
            }
        };
        self.feed_direct(Input::Oldest { to, peer, dm: dm.map(Box::new) }).await;
    }

    /// The store worker read whom messages wait for (`None`: it could not).
    pub(super) async fn dm_waiting(&mut self, waiting: Option<Vec<AccountId>>) {
        self.feed_direct(Input::Waiting(waiting)).await;
    }

    /// What the store knows of a request's sender was read: the engine decides now.
    pub(super) async fn dm_seen(&mut self, received: Received) {
        if let Some(seen) = received.seen {
            let sender = (received.owner, received.sender.account, received.peer);
            self.direct.seen.entry(sender).or_insert((seen.last_seq, None));
        }
        self.feed_direct(Input::Read(Box::new(received))).await;
    }

    /// Sends `dm` to `peer` with this user's certificate; the failure, when it cannot go.
    fn send_dm(&mut self, flight: Flight, peer: PeerId, dm: StoredDm) -> Option<Input> {
        let Some(session) = self.accounts.session() else {
            return Some(Input::Failed { flight, reason: "not logged in".into() });
        };
        let request = DmRequest {
            certificate: session.certificate.clone(),
            to: dm.other,
            seq: dm.seq,
            id: dm.id,
            ts_ms: dm.ts_ms,
            text: dm.text,
        };
        let id = self.swarm.behaviour_mut().dm.send_request(&peer, request);
        self.direct.flights.insert(id, flight);
        None
    }

    /// Answers the request held as `channel`.
    fn answer_dm(&mut self, channel: Channel, response: DmResponse) {
        match self.direct.channels.remove(&channel) {
            Some((peer, Answer::Peer(channel))) => {
                let sent = self.swarm.behaviour_mut().dm.send_response(channel, response);
                if sent.is_err() {
                    tracing::debug!(%peer, "the sender left before its receipt");
                }
            }
            None => {}
            // Kept, known, or refused for good, the mailbox may let it go; not when this node
            // could not keep it now (it is collected again later).
            Some((_, Answer::Letter { mailbox, id })) => {
                let for_now = matches!(response, DmResponse::Refused(DmRefusal::Unavailable | DmRefusal::NotLoggedIn));
                self.letter_done(mailbox, id, !for_now);
            }
        }
    }

    /// Has the store worker read the oldest message waiting for `to` ([`Self::dm_oldest`]);
    /// while nobody is logged in, nothing goes.
    fn read_outbox(&self, to: AccountId) -> Option<Input> {
        let Some(owner) = self.accounts.account() else { return Some(Input::Oldest { to, peer: None, dm: None }) };
        self.store.run(move |store| {
            let dm = store.next_in_outbox(&owner, &to).map_err(|e| e.to_string());
            Some(StoreDone::DmOldest { to, dm })
        });
        None
    }

    /// Has the store worker read whom messages wait for ([`Self::dm_waiting`]); while nobody is
    /// logged in, nobody.
    fn read_waiting(&self) -> Option<Input> {
        let Some(owner) = self.accounts.account() else { return Some(Input::Waiting(None)) };
        self.store.run(move |store| {
            let waiting = store
                .outbox_recipients(&owner)
                .inspect_err(|e| tracing::error!(error = %e, "cannot read the outbox"))
                .ok();
            Some(StoreDone::DmWaiting(waiting))
        });
        None
    }

    /// Shows what the engine says to show.
    async fn show_dm(&mut self, show: Show) {
        match show {
            Show::Dm(dm) => {
                self.emit(UiEvent::Dm(view(&dm))).await;
                if let Some(note) = self.attention.notification(&Place::User(dm.other), dm.outgoing) {
                    self.emit(UiEvent::Notification {
                        kind: NotificationKind::Dm,
                        room: None,
                        from: Some(dm.from.clone()),
                        focused: note.focused,
                    })
                    .await;
                }
            }
            Show::Delivered { id, to } => self.emit(UiEvent::Delivered { id, to }).await,
            Show::Offline { to } => {
                self.emit(UiEvent::info(format!(
                    "{to} is offline: the message waits here and goes out when {to} is back"
                )))
                .await;
            }
            Show::Refused { to, refusal } => {
                tracing::info!(%to, %refusal, "direct message refused");
                self.emit(UiEvent::info(format!(
                    "{to} refused a message ({refusal}); it is kept and sent again later"
                )))
                .await;
            }
        }
    }

    /// `/status`, answered by the store worker once it has counted the messages waiting in this
    /// user's outbox.
    pub(super) fn status_with_outbox(&self, mut status: Status, reply: oneshot::Sender<Status>) {
        let Some(me) = self.accounts.account() else {
            let _ = reply.send(status);
            return;
        };
        self.store.run(move |store| {
            status.outbox = store.outbox_len(&me).unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot count the outbox");
                0
            });
            let _ = reply.send(status);
            None
        });
    }

    /// The presence of account `user` was heard: their oldest message waiting goes out, unless
    /// one is in flight.
    pub(super) async fn pump_outbox(&mut self, user: &AccountId) {
        self.feed_direct(Input::Online { account: *user }).await;
    }

    /// After a login and on the presence timer: the outbox of every user with messages waiting
    /// is pumped.
    pub(super) async fn pump_all_outboxes(&mut self) {
        self.feed_direct(Input::Tick).await;
    }

    /// A receipt, or a refusal, came back.
    pub(super) async fn on_dm_response(&mut self, request: OutboundRequestId, response: DmResponse) {
        let Some(flight) = self.direct.flights.remove(&request) else { return };
        self.feed_direct(Input::Response { flight, response }).await;
    }

    /// A message did not reach its receiver; it stays in the outbox for the next try.
    pub(super) async fn on_dm_failure(&mut self, request: OutboundRequestId, reason: String) {
        let Some(flight) = self.direct.flights.remove(&request) else { return };
        self.feed_direct(Input::Failed { flight, reason }).await;
    }

    /// A peer sends a message: its certificate checked here, then the engine decides (keep it,
    /// answer with the receipt, show it).
    pub(super) async fn on_dm_request(
        &mut self,
        peer: PeerId,
        request: DmRequest,
        channel: ResponseChannel<DmResponse>,
    ) {
        let (owner, me, sender) = match self.check_dm(peer, &request) {
            Ok(checked) => checked,
            Err(refusal) => {
                let channel = self.direct.hold(peer, channel);
                self.answer_dm(channel, DmResponse::Refused(refusal));
                return;
            }
        };
        let channel = self.direct.hold(peer, channel);
        let seen = self.seen_here(owner, sender.account, peer, &request);
        self.receive_dm(Received { channel, peer, owner, me, sender, request, seen, letter: false }).await;
    }

    /// A message whose sender checked out (straight from them, or in a letter): the engine
    /// decides (what was received before from that sender read first, when it asks). It is
    /// shown under the name its sender's account goes by here (its certificate learnt already),
    /// not the one in its certificate: a letter's may be days old, and name someone else now.
    pub(super) async fn receive_dm(&mut self, mut received: Received) {
        received.sender.from = self.accounts.name_of(&received.sender.account);
        self.feed_direct(Input::Request(Box::new(received))).await;
    }

    /// Reads what was received before from `received`'s sender, for the engine.
    fn read_seen(&mut self, received: Received) {
        self.store.run(move |store| {
            let mut received = received;
            let (id, sender, peer) = (&received.request.id, received.sender.account, received.peer.to_bytes());
            received.seen = store
                .dm_known(&received.owner, &sender, id)
                .and_then(|known| {
                    let last_seq = store.last_dm_seq(&received.owner, &sender, &peer)?;
                    Ok(Seen { known, last_seq })
                })
                .inspect_err(|e| tracing::error!(error = %e, "cannot read what was received before"))
                .ok();
            Some(StoreDone::DmSeen(Box::new(received)))
        });
    }

    /// What is known here of `request` from `sender` on `peer` to `owner`, when what was
    /// received in this run decides it (a newer number: new; the last message again: a
    /// duplicate); else the store is asked.
    pub(super) fn seen_here(
        &self,
        owner: AccountId,
        sender: AccountId,
        peer: PeerId,
        request: &DmRequest,
    ) -> Option<Seen> {
        let (last_seq, last_id) = self.direct.seen.get(&(owner, sender, peer))?;
        if last_seq.is_none_or(|last| request.seq > last) {
            return Some(Seen { known: false, last_seq: *last_seq });
        }
        (*last_seq == Some(request.seq) && last_id.as_deref() == Some(request.id.as_str()))
            .then_some(Seen { known: true, last_seq: *last_seq })
    }

    /// Takes in the numbers of the conversations read from the database at start.
    pub(super) fn load_direct(&mut self) {
        let numbers = self.loaded.as_mut().map(|loaded| std::mem::take(&mut loaded.dm_numbers)).unwrap_or_default();
        for (owner, other, last) in numbers {
            self.direct.engine.numbered(owner, other, last);
        }
    }

    /// Checks a request from `peer` for this node's user: the account and username it is for,
    /// and its sender.
    fn check_dm(&mut self, peer: PeerId, request: &DmRequest) -> Result<(AccountId, String, CheckedDm), DmRefusal> {
        let authority = self.accounts.trusted_key().ok_or(DmRefusal::NotLoggedIn)?;
        let my_account = self.accounts.account();
        let checked =
            wire::check_request(request, &peer.to_bytes(), my_account, &mut self.certs, &authority, unix_now())
                .inspect_err(|refusal| tracing::info!(%peer, %refusal, "direct message refused"))?;
        let (Some(me), Some(owner)) = (self.me(), my_account) else { return Err(DmRefusal::NotLoggedIn) };
        self.accounts.learn(&request.certificate.body);
        Ok((owner, me, checked))
    }

    /// `/history` in a conversation: answered once read.
    pub(super) fn dm_history(&self, user: &AccountId, count: usize, reply: RoomDone) {
        let me = match self.logged_in().and_then(|_| self.my_account()) {
            Ok(me) => me,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let (user, target) = (*user, format!("@{}", self.accounts.name_of(user)));
        self.store.run(move |store| {
            let answer = store
                .recent_dms(&me, &user, count)
                .map_err(internal)
                .map(|dms| RoomReply::History { target, messages: dms.iter().map(|d| UiEvent::Dm(view(d))).collect() });
            Some(StoreDone::Reply { reply, answer })
        });
    }
}
