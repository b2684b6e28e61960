//! The node's side of direct messages (`/meshchat/dm/2`): `/msg` and `/query`, the outbox, the
//! receipts, and taking in messages from other peers.
//!
//! A received message is kept in the node database before its receipt goes back, and shown
//! after. An outgoing message to an online receiver with nothing older waiting goes out at
//! once, is kept while it travels and shown then (kept as delivered, and its receipt shown
//! after it, when the receipt came back first); any other is kept first. It stays in the outbox
//! until its receipt comes; for each receiver one message is in flight at a time, oldest
//! first, so messages arrive in order. The outbox is pumped whenever the receiver's presence is
//! heard (they came online, or their periodic announcement), after a login, and on the
//! presence timer; it survives restarts because it lives in SQLite.

use std::collections::{HashMap, HashSet};

use libp2p::PeerId;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};

use super::client::{DirectCommand, Done, RoomReply};
use super::event::{DirectMessage, ErrorCode, NotificationKind, UiEvent};
use super::event_loop::EventLoop;
use super::{CommandError, Focus};
use crate::account::{AccountId, same_name};
use crate::bootstrap::password::check_username;
use crate::clock::now_ms;
use crate::clock::unix_now;
use crate::protocol::dm::{self, Arrival, DmRefusal, DmRequest, DmResponse};
use crate::protocol::event::MAX_TEXT_BYTES;
use crate::store::StoredDm;

/// Direct messages in flight.
#[derive(Default)]
pub(super) struct Direct {
    /// Each request in flight.
    in_flight: HashMap<OutboundRequestId, InFlight>,
    /// Receivers with a message in flight.
    busy: HashSet<AccountId>,
    /// The number of the last message sent in each conversation (owner, other), read from the
    /// database once.
    last_seq: HashMap<(AccountId, AccountId), u64>,
    /// Receivers that may have messages waiting in the outbox besides the one in flight, read
    /// from the database at each login and on the presence timer; `None` until then (any may).
    waiting: Option<HashSet<AccountId>>,
    /// Messages whose receipt came back before they were kept (while the swarm handed them
    /// over): kept as delivered.
    receipts_before_kept: HashSet<String>,
}

impl Direct {
    /// Whether messages to `key` may be waiting in the outbox.
    fn may_wait(&self, key: &AccountId) -> bool {
        self.waiting.as_ref().is_none_or(|waiting| waiting.contains(key))
    }

    /// A message to `key` was kept and is not delivered yet.
    fn now_waiting(&mut self, key: AccountId) {
        if let Some(waiting) = &mut self.waiting {
            waiting.insert(key);
        }
    }

    /// A message is on its way as `request`.
    fn took_off(&mut self, request: OutboundRequestId, flight: InFlight) {
        self.busy.insert(flight.to);
        self.in_flight.insert(request, flight);
    }

    /// The message sent as `request` is kept now; whether its receipt came already.
    fn kept(&mut self, request: OutboundRequestId, id: &str) -> bool {
        match self.in_flight.get_mut(&request) {
            Some(flight) => {
                flight.kept = true;
                false
            }
            None => self.receipts_before_kept.remove(id),
        }
    }

    /// The flight of `request` ended: the message, and whether it is kept. The receiver has no
    /// message in flight any more.
    fn landed(&mut self, request: &OutboundRequestId) -> Option<InFlight> {
        let flight = self.in_flight.remove(request)?;
        self.busy.remove(&flight.to);
        Some(flight)
    }

    /// The receipt of a message not kept yet came.
    fn delivered_before_kept(&mut self, id: String) {
        self.receipts_before_kept.insert(id);
    }
}

/// A message on its way.
struct InFlight {
    id: String,
    /// The receiver's account and its name when the message was written.
    to: AccountId,
    to_name: String,
    /// Whether it is in the database (a message sent at once is kept while it travels).
    kept: bool,
}

/// What a lookup of a user at the bootstrap node was for.
#[derive(Debug)]
pub(crate) struct AfterLookup {
    /// The name as the user typed it.
    user: String,
    /// The message to send, or `None` for `/query`.
    text: Option<String>,
    reply: Done,
}

/// What the bootstrap node said about a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The account holding the name, and its username now.
    Exists(AccountId, String),
    Unknown,
    /// No bootstrap node answered.
    NoAnswer,
}

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
            self.lookup_user(&user, AfterLookup { user: user.clone(), text, reply });
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
                self.focus = Some(Focus::User(account));
                let name = self.accounts.name_of(&account);
                self.emit(UiEvent::Focus { target: format!("@{name}") }).await;
                Ok(())
            }
        }
    }

    /// Keeps a message to account `to` in the outbox, shows it, and sends it if `to` is online.
    pub(super) async fn send_dm_to_known(&mut self, to: AccountId, text: &str) -> Result<(), CommandError> {
        Self::check_text(Some(text))?;
        let me = self.logged_in()?;
        let my_account = self.accounts.account().ok_or_else(|| error(ErrorCode::NotLoggedIn, "log in first"))?;
        let to_name = self.accounts.name_of(&to);
        let store = self.accounts.store();
        let conversation = (my_account, to);
        let seq = match self.direct.last_seq.get(&conversation) {
            Some(last) => last.checked_add(1).ok_or_else(|| internal("the conversation's numbers ran out"))?,
            None => store.next_dm_seq(&my_account, &to).map_err(internal)?,
        };
        let mut dm = StoredDm {
            id: dm::new_id(),
            owner: my_account,
            other: to,
            from: me,
            to: to_name.clone(),
            text: text.to_string(),
            ts_ms: now_ms(),
            seq,
            outgoing: true,
            delivered: false,
        };
        // Nothing older waiting for an online receiver: the message goes out at once and is kept
        // while it travels. Otherwise it is kept and waits its turn in the outbox. Either way it
        // is shown once kept.
        let first_in_line =
            !self.direct.may_wait(&to) || store.next_in_outbox(&my_account, &to).map_err(internal)?.is_none();
        let request = if first_in_line { self.send_dm(&dm, false) } else { None };
        if let Some(request) = request {
            self.hand_over().await;
            // The receipt may have come while the swarm handed the message over.
            dm.delivered = self.direct.kept(request, &dm.id);
            if let Err(e) = self.accounts.store().save_dm(&dm) {
                tracing::error!(error = %e, "cannot keep a direct message");
            }
            self.emit(UiEvent::Dm(view(&dm))).await;
            if dm.delivered {
                self.emit(UiEvent::Delivered { id: dm.id.clone(), to: dm.to.clone() }).await;
            }
        } else {
            self.accounts.store().save_dm(&dm).map_err(internal)?;
            self.emit(UiEvent::Dm(view(&dm))).await;
            // A message in flight is tracked as such (its receiver marked as waiting should it
            // not be delivered); this one waits in the outbox.
            self.direct.now_waiting(to);
            self.pump_outbox(&to);
        }
        self.direct.last_seq.insert(conversation, seq);
        if self.peer_of_account(&to).is_none() {
            self.emit(UiEvent::info(format!(
                "{to_name} is offline: the message waits here and goes out when {to_name} is back"
            )))
            .await;
        }
        Ok(())
    }

    /// Sends `dm` (`kept` in the database already) to its receiver unless one of their messages
    /// is in flight or they are offline; the request, if it went.
    fn send_dm(&mut self, dm: &StoredDm, kept: bool) -> Option<OutboundRequestId> {
        let certificate = self.accounts.session()?.certificate.clone();
        if self.direct.busy.contains(&dm.other) {
            return None;
        }
        let peer = self.peer_of_account(&dm.other)?;
        let request = DmRequest {
            certificate,
            to: dm.other,
            seq: dm.seq,
            id: dm.id.clone(),
            ts_ms: dm.ts_ms,
            text: dm.text.clone(),
        };
        let id = self.swarm.behaviour_mut().dm.send_request(&peer, request);
        self.direct.took_off(id, InFlight { id: dm.id.clone(), to: dm.other, to_name: dm.to.clone(), kept });
        Some(id)
    }

    /// Messages waiting in this user's outbox.
    pub(super) fn outbox_len(&self) -> usize {
        self.accounts.account().and_then(|me| self.accounts.store().outbox_len(&me).ok()).unwrap_or(0)
    }

    /// Sends the oldest message waiting for account `user`, unless one is in flight or `user` is
    /// offline.
    pub(super) fn pump_outbox(&mut self, user: &AccountId) {
        let Some(me) = self.accounts.account() else { return };
        let key = *user;
        if self.direct.busy.contains(&key) || !self.direct.may_wait(&key) || self.peer_of_account(user).is_none() {
            return;
        }
        match self.accounts.store().next_in_outbox(&me, user) {
            Ok(Some(dm)) => {
                self.send_dm(&dm, true);
            }
            Ok(None) => {
                if let Some(waiting) = &mut self.direct.waiting {
                    waiting.remove(&key);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the outbox"),
        }
    }

    /// Pumps the outbox of every user with messages waiting.
    pub(super) fn pump_all_outboxes(&mut self) {
        let Some(me) = self.accounts.account() else { return };
        match self.accounts.store().outbox_recipients(&me) {
            Ok(users) => {
                self.direct.waiting = Some(users.iter().copied().collect());
                users.iter().for_each(|user| self.pump_outbox(user));
            }
            Err(e) => {
                self.direct.waiting = None;
                tracing::error!(error = %e, "cannot read the outbox");
            }
        }
    }

    /// A receipt, or a refusal, came back.
    pub(super) async fn on_dm_response(&mut self, request: OutboundRequestId, response: DmResponse) {
        let Some(InFlight { id, to: account, to_name: to, kept }) = self.direct.landed(&request) else { return };
        if response != DmResponse::Delivered {
            // It stays in the outbox for the next try.
            self.direct.now_waiting(account);
        }
        match response {
            DmResponse::Delivered => {
                if kept {
                    // Shown first: should the node stop before it notes the receipt, the message
                    // is sent again and the receiver confirms it again without showing it twice.
                    self.emit(UiEvent::Delivered { id: id.clone(), to: to.clone() }).await;
                    self.accounts.store().mark_delivered_soon(&id);
                } else {
                    // Kept as delivered, and the receipt shown after the message.
                    self.direct.delivered_before_kept(id);
                }
                self.pump_outbox(&account);
            }
            DmResponse::Refused(refusal @ (DmRefusal::NotLoggedIn | DmRefusal::WrongRecipient)) => {
                // The peer no longer hosts that user; presence will say where they are.
                tracing::info!(%to, %refusal, "direct message not taken; it stays in the outbox");
            }
            DmResponse::Refused(refusal) => {
                tracing::info!(%to, %refusal, "direct message refused");
                self.emit(UiEvent::info(format!(
                    "{to} refused a message ({refusal}); it is kept and sent again later"
                )))
                .await;
            }
        }
    }

    /// A message did not reach its receiver; it stays in the outbox for the next try.
    pub(super) fn on_dm_failure(&mut self, request: OutboundRequestId, reason: String) {
        if let Some(InFlight { to, to_name, .. }) = self.direct.landed(&request) {
            tracing::debug!(%to_name, %reason, "direct message not delivered yet");
            self.direct.now_waiting(to);
        }
    }

    /// A peer sends a message: check it, keep it, answer with the receipt, and show it.
    pub(super) async fn on_dm_request(
        &mut self,
        peer: PeerId,
        request: DmRequest,
        channel: ResponseChannel<DmResponse>,
    ) {
        let (response, new) = match self.take_dm(peer, request) {
            Ok(Some(dm)) => (DmResponse::Delivered, Some(dm)),
            Ok(None) => (DmResponse::Delivered, None),
            Err(refusal) => (DmResponse::Refused(refusal), None),
        };
        if self.swarm.behaviour_mut().dm.send_response(channel, response).is_err() {
            tracing::debug!(%peer, "the sender left before its receipt");
        }
        let Some(dm) = new else { return };
        // The receipt first: it says the message is kept, which it is.
        self.hand_over().await;
        self.emit(UiEvent::Dm(view(&dm))).await;
        if !self.rooms.is_muted(&format!("@{}", dm.other)) {
            let focused = self.focus == Some(Focus::User(dm.other));
            self.emit(UiEvent::Notification {
                kind: NotificationKind::Dm,
                room: None,
                from: Some(dm.from.clone()),
                focused,
            })
            .await;
        }
    }

    /// Checks and keeps a message from `peer`: the message when it is new, `None` when it was
    /// kept before (the receipt is sent again).
    fn take_dm(&mut self, peer: PeerId, request: DmRequest) -> Result<Option<StoredDm>, DmRefusal> {
        let authority = self.accounts.trusted_key().ok_or(DmRefusal::NotLoggedIn)?;
        let my_account = self.accounts.account();
        let peer_bytes = peer.to_bytes();
        let checked = dm::check_request(&request, &peer_bytes, my_account, &mut self.certs, &authority, unix_now())
            .inspect_err(|refusal| tracing::info!(%peer, %refusal, "direct message refused"))?;
        let (Some(me), Some(my_account)) = (self.me(), my_account) else { return Err(DmRefusal::NotLoggedIn) };
        self.accounts.learn(&request.certificate.body);
        let store = self.accounts.store();
        let known = store.dm_known(&request.id);
        let last = store.last_dm_seq(&my_account, &checked.account, &peer_bytes);
        let (Ok(known), Ok(last)) = (known, last) else { return Err(DmRefusal::Unavailable) };
        match dm::arrival(known, request.seq, last) {
            Arrival::Duplicate => return Ok(None),
            Arrival::Stale => return Err(DmRefusal::Stale),
            Arrival::New => {}
        }
        let dm = StoredDm {
            id: request.id,
            owner: my_account,
            other: checked.account,
            from: checked.from,
            to: me,
            text: request.text,
            ts_ms: request.ts_ms,
            seq: request.seq,
            outgoing: false,
            delivered: true,
        };
        if let Err(e) = store.save_received_dm(&dm, &peer_bytes) {
            tracing::error!(error = %e, "cannot keep a direct message");
            return Err(DmRefusal::Unavailable);
        }
        Ok(Some(dm))
    }

    /// `/history` in a conversation.
    pub(super) fn dm_history(&self, user: &AccountId, count: usize) -> Result<RoomReply, CommandError> {
        self.logged_in()?;
        let me = self.accounts.account().ok_or_else(|| error(ErrorCode::NotLoggedIn, "log in first"))?;
        let dms = self.accounts.store().recent_dms(&me, user, count).map_err(internal)?;
        Ok(RoomReply::History {
            target: format!("@{}", self.accounts.name_of(user)),
            messages: dms.iter().map(|d| UiEvent::Dm(view(d))).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, cbor};
    use libp2p::{PeerId, StreamProtocol};

    use super::{Direct, InFlight};
    use crate::account::AccountId;
    use crate::cert::Authority;
    use crate::protocol::dm::{self, DmRequest, DmResponse};

    /// A request id, as the swarm gives one out.
    fn request_id() -> OutboundRequestId {
        let mut behaviour = cbor::Behaviour::<DmRequest, DmResponse>::new(
            [(StreamProtocol::new(dm::PROTOCOL), ProtocolSupport::Full)],
            request_response::Config::default(),
        );
        let request = DmRequest {
            certificate: Authority::from_secret(&[7; 32]).issue(
                AccountId::from_bytes([1; 16]),
                "alice",
                &PeerId::random().to_bytes(),
                0,
                1,
            ),
            to: AccountId::from_bytes([2; 16]),
            seq: 1,
            id: "m1".into(),
            ts_ms: 0,
            text: "hi".into(),
        };
        behaviour.send_request(&PeerId::random(), request)
    }

    fn flight(kept: bool) -> InFlight {
        InFlight { id: "m1".into(), to: AccountId::from_bytes([2; 16]), to_name: "Bob".into(), kept }
    }

    #[test]
    fn a_message_kept_while_it_travels_lands_as_kept() {
        let mut direct = Direct::default();
        let request = request_id();
        direct.took_off(request, flight(false));
        assert!(direct.busy.contains(&AccountId::from_bytes([2; 16])));
        assert!(!direct.kept(request, "m1"), "no receipt yet");
        let landed = direct.landed(&request).expect("in flight");
        assert!(landed.kept);
        assert!(direct.busy.is_empty() && direct.in_flight.is_empty());
    }

    #[test]
    fn a_receipt_that_comes_before_its_message_is_kept_makes_it_kept_as_delivered_once() {
        let mut direct = Direct::default();
        let request = request_id();
        direct.took_off(request, flight(false));
        let landed = direct.landed(&request).expect("in flight");
        assert!(!landed.kept);
        direct.delivered_before_kept(landed.id);
        assert!(direct.kept(request, "m1"));
        assert!(!direct.kept(request, "m1"), "remembered after it was used");
    }

    #[test]
    fn a_message_that_failed_before_it_was_kept_is_kept_undelivered() {
        let mut direct = Direct::default();
        let request = request_id();
        direct.took_off(request, flight(false));
        direct.landed(&request).expect("in flight");
        assert!(!direct.kept(request, "m1"));
    }
}
