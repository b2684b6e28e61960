//! The node's side of direct messages (`/meshchat/dm/2`): the adapter that feeds the
//! [`DmEngine`] and carries out what it decides. `/msg` and `/query` (the name checked, and the
//! account that goes by it found online, at the bootstrap node or among those seen), the
//! requests and their answers on the swarm, the database, and what users see.
//!
//! The rules of direct messages live in the engine (`dm/engine.rs`), never here: which message
//! goes out when, one in flight per receiver, receipts, duplicates and stale arrivals, what to
//! show. This side checks a request's certificate before the engine sees it, reads for the
//! engine what it asks for (the next number, the outbox, whom messages wait for, where a
//! receiver is online), sends with this user's certificate, answers, keeps and marks rows, and
//! turns what the engine shows into [`UiEvent`]s. Out first, then kept, and nothing re-entered:
//! a request or answer is queued on the swarm, and the writes and shows the engine asks for
//! after it wait in `Direct.after_send` until the handler has returned and the loop has given
//! the swarm its turn (`EventLoop::run`), which hands the request to the connections. Should
//! the engine be fed before that (a swarm event handled in that turn), they are carried out
//! first: the engine hears what its outputs read or wrote before any new input, so a receipt
//! never reaches it before its message is kept. The outbox is pumped when a receiver's
//! presence is heard, after a login and on the presence timer; it survives restarts because it
//! lives in SQLite.

use std::collections::VecDeque;
use std::time::Instant;

use libp2p::PeerId;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};

use super::CommandError;
use super::attention::Place;
use super::client::{DirectCommand, Done, RoomReply};
use super::event::{DirectMessage, ErrorCode, NotificationKind, UiEvent};
use super::parts::EventLoop;
use super::state::direct::AfterLookup;
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

fn view(dm: &StoredDm) -> DirectMessage {
    DirectMessage { from: dm.from.clone(), to: dm.to.clone(), text: dm.text.clone(), id: dm.id.clone(), ts: dm.ts_ms }
}

fn internal(e: impl std::fmt::Display) -> CommandError {
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
        if let Some(online) = self.online_account(&user) {
            let _ = reply.send(self.after_lookup(online, text).await);
        } else if self.accounts.bootstrap_peer().is_some() {
            // The bootstrap node knows who holds a name now; a name seen here may have changed
            // hands since.
            self.lookup_user(&user, AfterLookup { user: user.clone(), text, reply }).await;
        } else if let Some(known) = self.accounts.known_account(&user) {
            let _ = reply.send(self.after_lookup(known, text).await);
        } else {
            let _ = reply.send(Err(no_bootstrap_to_ask(&user)));
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
        let result = match found {
            Lookup::Exists(account, _) => self.after_lookup(account, after.text).await,
            Lookup::Unknown => Err(error(ErrorCode::NoSuchUser, format!("there is no user called {}", after.user))),
            Lookup::NoAnswer => match self.accounts.known_account(&after.user) {
                Some(known) => self.after_lookup(known, after.text).await,
                None => Err(no_bootstrap_to_ask(&after.user)),
            },
        };
        let _ = after.reply.send(result);
    }

    async fn after_lookup(&mut self, account: AccountId, text: Option<String>) -> Result<(), CommandError> {
        if self.accounts.account() == Some(account) {
            return Err(error(ErrorCode::Usage, "that is you: name someone else"));
        }
        match text {
            Some(text) => self.send_dm_to_known(account, &text).await,
            None => {
                let target = format!("@{}", self.accounts.name_of(&account));
                self.attention.focus_on(Place::User(account), target.clone());
                self.emit(UiEvent::Focus { target }).await;
                Ok(())
            }
        }
    }

    /// Writes a message to account `to`: numbers it, looks in the outbox if older ones may
    /// wait, and gives it to the engine (which sends it at once or keeps it first, then shows
    /// it).
    pub(super) async fn send_dm_to_known(&mut self, to: AccountId, text: &str) -> Result<(), CommandError> {
        Self::check_text(Some(text))?;
        let me = self.logged_in()?;
        let owner = self.my_account()?;
        // The outbox is read as the engine's last outputs left it (a handler of the swarm's turn
        // may send before those are carried out).
        self.carry_out_after_swarm_turn().await;
        // Every conversation's last number was read at start; none: this is the first.
        let seq = match self.direct.engine.last_seq(&owner, &to) {
            Some(last) => last.checked_add(1).ok_or_else(|| internal("the conversation's numbers ran out"))?,
            None => 1,
        };
        let older_waiting = self.direct.engine.may_wait(&to)
            && self
                .store
                .call(move |store| store.next_in_outbox(&owner, &to).map(|dm| dm.is_some()))
                .ok_or_else(|| internal("the store is gone"))?
                .map_err(internal)?;
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
        let peer = self.peer_of_account(&to);
        self.feed_direct(Input::Send { dm: Box::new(dm), peer, older_waiting }).await
    }

    /// Gives the engine `input` and carries out what it decides; an error when a message this
    /// user wrote was lost (neither kept nor sent). What waits for the swarm's turn is carried
    /// out first: the engine hears what its outputs read or wrote before anything new.
    async fn feed_direct(&mut self, input: Input) -> Result<(), CommandError> {
        self.carry_out_after_swarm_turn().await;
        let outputs = self.direct.engine.handle(input, Instant::now());
        self.carry_out_direct(outputs).await
    }

    /// Whether outputs of the engine wait for the swarm's turn ([`Self::carry_out_direct`]).
    pub(super) fn direct_waits_for_swarm(&self) -> bool {
        !self.direct.after_send.is_empty()
    }

    /// Carries out the outputs that waited for the swarm's turn (or for the engine's next
    /// input, should that come first).
    pub(super) async fn carry_out_after_swarm_turn(&mut self) {
        while !self.direct.after_send.is_empty() {
            let waiting = std::mem::take(&mut self.direct.after_send);
            if let Err(e) = self.carry_out_direct(waiting.into()).await {
                // Only a message neither sent nor kept is lost, and its `Keep` never waits.
                tracing::error!(error = %e.message, "a direct message was lost");
            }
        }
    }

    /// Carries out the engine's outputs in their order. What one of them reads or writes goes
    /// back to the engine at once, and what it decides then is carried out next. Out first,
    /// then kept: a request or answer is only queued on the swarm, and goes out when the loop
    /// next polls it, after this handler; so the first write or show after one, and all that
    /// follows, waits in `Direct.after_send` for the swarm's turn.
    async fn carry_out_direct(&mut self, outputs: Vec<Output>) -> Result<(), CommandError> {
        let mut queue = VecDeque::from(outputs);
        let mut result = Ok(());
        let mut not_kept = None;
        // A request or answer queued and not handed to the connections yet.
        let mut queued = false;
        while let Some(output) = queue.pop_front() {
            if queued && matches!(output, Output::Keep(_) | Output::KeepReceived { .. } | Output::Show(_)) {
                queue.push_front(output);
                self.direct.after_send.extend(queue);
                break;
            }
            let back = match output {
                Output::Send { flight, peer, dm } => {
                    queued = true;
                    self.send_dm(flight, peer, dm)
                }
                Output::Answer { channel, response } => {
                    queued = true;
                    self.answer_dm(channel, response);
                    None
                }
                Output::Keep(dm) => {
                    let id = dm.id.clone();
                    let saved = self.store.call(move |store| store.save_dm(&dm).map_err(|e| e.to_string()));
                    let ok = match saved.unwrap_or_else(|| Err("the store is gone".into())) {
                        Ok(_) => true,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot keep a direct message");
                            not_kept = Some(e);
                            false
                        }
                    };
                    Some(Input::Kept { id, ok })
                }
                Output::KeepReceived { channel, dm, peer } => {
                    let peer = peer.to_bytes();
                    let saved =
                        self.store.call(move |store| store.save_received_dm(&dm, &peer).map_err(|e| e.to_string()));
                    let ok = match saved.unwrap_or_else(|| Err("the store is gone".into())) {
                        Ok(_) => true,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot keep a direct message");
                            false
                        }
                    };
                    Some(Input::KeptReceived { channel, ok })
                }
                Output::MarkDelivered { id } => {
                    self.store.write("note a receipt", move |store| store.mark_delivered(&id));
                    None
                }
                Output::ReadOutbox { to } => self.read_outbox(to),
                Output::ReadWaiting => self.read_waiting(),
                Output::Show(show) => {
                    self.show_dm(show).await;
                    None
                }
                Output::Lost { .. } => {
                    result = Err(internal(not_kept.take().unwrap_or_else(|| "the message was not kept".into())));
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
        result
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
        if let Some((peer, channel)) = self.direct.channels.remove(&channel)
            && self.swarm.behaviour_mut().dm.send_response(channel, response).is_err()
        {
            tracing::debug!(%peer, "the sender left before its receipt");
        }
    }

    /// The oldest message waiting for `to`, and where `to` is online; nothing while `to` is
    /// offline or nobody is logged in.
    fn read_outbox(&self, to: AccountId) -> Option<Input> {
        let owner = self.accounts.account()?;
        let peer = self.peer_of_account(&to)?;
        let read = self.store.call(move |store| store.next_in_outbox(&owner, &to).map_err(|e| e.to_string()))?;
        match read {
            Ok(dm) => Some(Input::Oldest { to, peer, dm: dm.map(Box::new) }),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox");
                None
            }
        }
    }

    /// Whom messages wait for; nothing while nobody is logged in.
    fn read_waiting(&self) -> Option<Input> {
        let owner = self.accounts.account()?;
        let waiting = self
            .store
            .call(move |store| store.outbox_recipients(&owner).map_err(|e| e.to_string()))?
            .inspect_err(|e| tracing::error!(error = %e, "cannot read the outbox"))
            .ok();
        Some(Input::Waiting(waiting))
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

    /// Messages waiting in this user's outbox.
    pub(super) fn outbox_len(&self) -> usize {
        let Some(me) = self.accounts.account() else { return 0 };
        self.store.call(move |store| store.outbox_len(&me).ok()).flatten().unwrap_or(0)
    }

    /// The presence of account `user` was heard: their oldest message waiting goes out, unless
    /// one is in flight.
    pub(super) async fn pump_outbox(&mut self, user: &AccountId) {
        let _ = self.feed_direct(Input::Online { account: *user }).await;
    }

    /// After a login and on the presence timer: the outbox of every user with messages waiting
    /// is pumped.
    pub(super) async fn pump_all_outboxes(&mut self) {
        let _ = self.feed_direct(Input::Tick).await;
    }

    /// A receipt, or a refusal, came back.
    pub(super) async fn on_dm_response(&mut self, request: OutboundRequestId, response: DmResponse) {
        let Some(flight) = self.direct.flights.remove(&request) else { return };
        let _ = self.feed_direct(Input::Response { flight, response }).await;
    }

    /// A message did not reach its receiver; it stays in the outbox for the next try.
    pub(super) async fn on_dm_failure(&mut self, request: OutboundRequestId, reason: String) {
        let Some(flight) = self.direct.flights.remove(&request) else { return };
        let _ = self.feed_direct(Input::Failed { flight, reason }).await;
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
        let seen = self.seen(owner, sender.account, peer, &request);
        let channel = self.direct.hold(peer, channel);
        let received = Received { channel, peer, owner, me, sender, request, seen };
        let _ = self.feed_direct(Input::Request(Box::new(received))).await;
    }

    /// What is known here of `request` from `sender` on `peer` to `owner`: from what was
    /// received in this run when that decides it (a newer number: new; the last message again:
    /// a duplicate), else read from the database.
    fn seen(&mut self, owner: AccountId, sender: AccountId, peer: PeerId, request: &DmRequest) -> Option<Seen> {
        let key = (owner, sender, peer);
        if let Some((last_seq, last_id)) = self.direct.seen.get(&key) {
            if last_seq.is_none_or(|last| request.seq > last) {
                return Some(Seen { known: false, last_seq: *last_seq });
            }
            if *last_seq == Some(request.seq) && last_id.as_deref() == Some(request.id.as_str()) {
                return Some(Seen { known: true, last_seq: *last_seq });
            }
        }
        let (id, peer_bytes) = (request.id.clone(), peer.to_bytes());
        let seen = self
            .store
            .call(move |store| {
                let known = store.dm_known(&id).ok()?;
                let last_seq = store.last_dm_seq(&owner, &sender, &peer_bytes).ok()?;
                Some(Seen { known, last_seq })
            })
            .flatten()?;
        self.direct.seen.entry(key).or_insert((seen.last_seq, None));
        Some(seen)
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
