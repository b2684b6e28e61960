//! Mailboxes, the node's side (`/meshchat/mailbox/1`): which peers are mailboxes (one whose
//! identify lists the protocol, once it is known as the trusted bootstrap node or its presence
//! showed a valid certificate); leaving a message for a receiver who is offline at a mailbox in
//! reach (the bootstrap node's, else the one found first), sealed to the receiver's node; collecting this user's letters
//! when they log in or a mailbox comes in reach, and taking each in as a direct message (the DM
//! engine shows each once, in order, whether it came straight or by letter) before the mailbox
//! is told it was taken; and, on a node that keeps letters for others (the bootstrap node, or one
//! run with `--mailbox`), answering those requests from its database, each account's within its
//! rate (see `state::mailbox::Asking`).
//!
//! It never decides what a direct message is (the DM engine does), nor reads a letter it keeps
//! for others (it cannot), nor touches SQLite itself (the store worker does).

use std::time::Instant;

use libp2p::PeerId;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};

use super::event::{ErrorCode, UiEvent};
use super::parts::EventLoop;
use super::state::direct::Answer;
use super::state::mailbox::{Asked, Collected, Collecting, NextPage};
use super::state::store::Done;
use crate::clock::{now_ms, unix_now};
use crate::dm::{Received, StoredDm};
use crate::mailbox::letter;
use crate::protocol::dm::DmRequest;
use crate::protocol::mailbox::{self, MailboxRefusal, MailboxRequest, MailboxResponse, check_request};
use crate::store::LeftLetter;

impl EventLoop {
    /// Identify says `peer` keeps letters: it is a mailbox in reach when it is the trusted
    /// bootstrap node or its presence showed a valid certificate; else once either is known
    /// ([`Self::mailbox_vouched`]).
    pub(super) fn mailbox_offered(&mut self, peer: PeerId) {
        let vouched = self.accounts.is_trusted_bootstrap(&peer) || self.presence_knows(&peer);
        if self.mailboxes.offer(peer, vouched) {
            self.mailbox_found(peer);
        } else if !vouched {
            tracing::debug!(%peer, "a peer offers to keep letters; used once its certificate is seen");
        }
    }

    /// `peer` is known now to be the trusted bootstrap node, or showed a valid certificate in
    /// its presence: if it offered to keep letters, it is a mailbox in reach.
    pub(super) fn mailbox_vouched(&mut self, peer: PeerId) {
        if self.mailboxes.vouch(peer) {
            self.mailbox_found(peer);
        }
    }

    /// `peer` became a mailbox in reach: this user's letters there are collected.
    fn mailbox_found(&mut self, peer: PeerId) {
        tracing::debug!(%peer, "a mailbox is in reach");
        self.collect_letters_at(peer);
    }

    /// `peer` is gone: it is no mailbox in reach, and a collection from it ends.
    pub(super) fn mailbox_gone(&mut self, peer: &PeerId) {
        self.mailboxes.gone(peer);
    }

    /// After a login: this user's letters are collected from every mailbox in reach, from the
    /// first.
    pub(super) fn collect_letters(&mut self) {
        self.mailboxes.resume.clear();
        let mailboxes = self.mailboxes.in_reach.to_vec();
        for mailbox in mailboxes {
            self.collect_letters_at(mailbox);
        }
    }

    /// A collection round at `mailbox`: from the first letter, or where the last round was cut
    /// short.
    fn collect_letters_at(&mut self, mailbox: PeerId) {
        let after = self.mailboxes.resume.get(&mailbox).copied().unwrap_or(0);
        self.collect_page_at(mailbox, NextPage { after, page: 1 });
    }

    /// Asks `mailbox` for `page` of this user's letters, unless it is asked already.
    fn collect_page_at(&mut self, mailbox: PeerId, page: NextPage) {
        let Some(certificate) = self.accounts.session().map(|s| s.certificate.clone()) else { return };
        if self.mailboxes.collecting.contains_key(&mailbox) {
            return;
        }
        let collecting = Collecting { page: page.page, after: page.after, ..Collecting::default() };
        self.mailboxes.collecting.insert(mailbox, collecting);
        self.ask_mailbox(mailbox, MailboxRequest::Collect { certificate, after: page.after }, Asked::Collect);
    }

    fn ask_mailbox(&mut self, mailbox: PeerId, request: MailboxRequest, asked: Asked) {
        let id = self.swarm.behaviour_mut().mailbox.send_request(&mailbox, request);
        self.mailboxes.asked.insert(id, (mailbox, asked));
    }

    /// The DM engine says: `dm`, kept for a receiver who is offline, is also left at a
    /// mailbox, sealed to the receiver's node (as the newest certificate of theirs seen here
    /// names it). Without a mailbox in reach or a key to seal to, it waits in the outbox only.
    pub(super) fn leave_at_mailbox(&mut self, dm: StoredDm) {
        let Some(mailbox) = self.mailboxes.for_letters(self.accounts.bootstrap_peer()) else { return };
        let (Some(session), Some(recipient_peer)) = (self.accounts.session(), self.accounts.peer_of(&dm.other)) else {
            tracing::debug!(to = %dm.to, "no key of the receiver's node is known here: nothing is left at a mailbox");
            return;
        };
        let certificate = session.certificate.clone();
        let request = DmRequest {
            certificate: certificate.clone(),
            to: dm.other,
            seq: dm.seq,
            id: dm.id.clone(),
            ts_ms: dm.ts_ms,
            text: dm.text,
        };
        let sealed = match letter::seal(&request, &self.key, recipient_peer) {
            Ok(sealed) => sealed,
            Err(error) => {
                tracing::warn!(%error, to = %dm.to, "cannot seal a letter");
                return;
            }
        };
        let leave =
            MailboxRequest::Leave { certificate, to: dm.other, id: dm.id.clone(), written_ms: dm.ts_ms, sealed };
        self.ask_mailbox(mailbox, leave, Asked::Leave { id: dm.id, to: dm.to });
    }

    /// A mailbox answered.
    pub(super) async fn on_mailbox_response(&mut self, request: OutboundRequestId, response: MailboxResponse) {
        let Some((mailbox, asked)) = self.mailboxes.asked.remove(&request) else { return };
        match (asked, response) {
            (Asked::Leave { to, .. }, MailboxResponse::Kept) => {
                let text =
                    format!("the message is also left, sealed, at a mailbox: {to} gets it even if you are both away");
                self.emit(UiEvent::info(text)).await;
            }
            (Asked::Leave { to, .. }, MailboxResponse::Refused(refusal)) => {
                let text = format!("the mailbox refused the message to {to} ({refusal}); it waits in your outbox");
                self.emit(UiEvent::error(ErrorCode::Unavailable, text)).await;
            }
            (Asked::Collect, MailboxResponse::Letters { letters, more, next }) => {
                self.take_letters(mailbox, letters, more, next).await;
            }
            (Asked::Collect, MailboxResponse::Refused(refusal)) => {
                tracing::info!(%mailbox, %refusal, "the mailbox refused to hand over letters");
                self.mailboxes.collecting.remove(&mailbox);
            }
            (Asked::Taken, _) => {}
            (asked, response) => {
                tracing::info!(%mailbox, ?asked, ?response, "a mailbox answered out of turn");
                self.mailboxes.collecting.remove(&mailbox);
            }
        }
    }

    /// A request to a mailbox failed: a letter not left waits in the outbox all the same.
    pub(super) fn on_mailbox_failure(&mut self, request: OutboundRequestId, error: &request_response::OutboundFailure) {
        let Some((mailbox, asked)) = self.mailboxes.asked.remove(&request) else { return };
        tracing::info!(%mailbox, ?asked, %error, "a mailbox request failed");
        if asked == Asked::Collect {
            self.mailboxes.collecting.remove(&mailbox);
        }
    }

    /// Letters collected from `mailbox`: each opened and taken in as a direct message.
    async fn take_letters(&mut self, mailbox: PeerId, letters: Vec<mailbox::Letter>, more: bool, next: u64) {
        let (Some(owner), Some(me), Some(authority)) =
            (self.accounts.account(), self.me(), self.accounts.trusted_key())
        else {
            self.mailboxes.collecting.remove(&mailbox);
            return;
        };
        if letters.is_empty() {
            self.mailboxes.collecting.remove(&mailbox);
            return;
        }
        if let Some(collecting) = self.mailboxes.collecting.get_mut(&mailbox) {
            collecting.open = letters.len();
            collecting.more = more;
            collecting.next = next;
        }
        for sealed in letters {
            match letter::open(&sealed.sealed, &self.key, owner, &mut self.certs, &authority, now_ms()) {
                Ok(opened) if opened.request.id == sealed.id => {
                    let peer = opened.peer;
                    self.accounts.learn(&opened.request.certificate.body);
                    let channel = self.direct.hold_answer(peer, Answer::Letter { mailbox, id: sealed.id });
                    let seen = self.seen_here(owner, opened.sender.account, peer, &opened.request);
                    let received = Received {
                        channel,
                        peer,
                        owner,
                        me: me.clone(),
                        sender: opened.sender,
                        request: opened.request,
                        seen,
                        letter: true,
                    };
                    self.receive_dm(received).await;
                }
                Ok(_) => {
                    tracing::info!(%mailbox, id = %sealed.id, "a letter's id is not the message's: dropped");
                    self.letter_done(mailbox, sealed.id, true);
                }
                Err(error) => {
                    tracing::info!(%mailbox, id = %sealed.id, %error, "a letter does not open: dropped");
                    self.letter_done(mailbox, sealed.id, true);
                }
            }
        }
    }

    /// Letter `id` from `mailbox` was taken in, or refused for good (`taken`), or could not be
    /// kept now: once the last of its collection is, the mailbox is told which were taken, and
    /// asked for the letters after them (at most `MAX_PAGES_PER_ROUND` pages a round).
    pub(super) fn letter_done(&mut self, mailbox: PeerId, id: String, taken: bool) {
        let Some(Collected { taken, again }) = self.mailboxes.letter_done(mailbox, id, taken) else { return };
        let Some(certificate) = self.accounts.session().map(|s| s.certificate.clone()) else { return };
        for chunk in taken.chunks(mailbox::MAX_TAKEN) {
            let request = MailboxRequest::Taken { certificate: certificate.clone(), ids: chunk.to_vec() };
            self.ask_mailbox(mailbox, request, Asked::Taken);
        }
        if let Some(page) = again {
            self.collect_page_at(mailbox, page);
        }
    }

    /// On the presence timer: mailboxes that hold letters left for now are asked again (their
    /// senders' earlier messages may have come meanwhile).
    pub(super) fn collect_left_letters(&mut self) {
        let left: Vec<PeerId> = std::mem::take(&mut self.mailboxes.left_behind).into_iter().collect();
        for mailbox in left {
            if self.mailboxes.in_reach.contains(&mailbox) {
                self.collect_letters_at(mailbox);
            }
        }
    }

    // This node as a mailbox.

    /// Someone asks this node, as a mailbox: the certificate checked here, the letters kept,
    /// handed over or deleted by the store worker.
    pub(super) fn on_mailbox_request(
        &mut self,
        peer: PeerId,
        request: MailboxRequest,
        channel: ResponseChannel<MailboxResponse>,
    ) {
        let channel = self.mailboxes.hold(channel);
        if !self.mailboxes.hosting {
            return self.answer_mailbox(channel, MailboxResponse::Refused(MailboxRefusal::Unavailable));
        }
        let Some(authority) = self.accounts.trusted_key() else {
            return self.answer_mailbox(channel, MailboxResponse::Refused(MailboxRefusal::Unavailable));
        };
        let asker = match check_request(&request, &peer.to_bytes(), &mut self.certs, &authority, unix_now()) {
            Ok(asker) => asker,
            Err(refusal) => {
                tracing::info!(%peer, %refusal, "a mailbox request refused");
                return self.answer_mailbox(channel, MailboxResponse::Refused(refusal));
            }
        };
        // Before any work for it: each account is answered a burst, then at a pace.
        if !self.mailboxes.asking.allow(asker.account, &request, Instant::now()) {
            tracing::debug!(%peer, account = %asker.account, "a mailbox request over its account's rate refused");
            return self.answer_mailbox(channel, MailboxResponse::Refused(MailboxRefusal::Unavailable));
        }
        match request {
            MailboxRequest::Leave { certificate, to, id, written_ms, sealed } => {
                self.accounts.learn(&certificate.body);
                if !self.accounts.knows(&to) {
                    return self.answer_mailbox(channel, MailboxResponse::Refused(MailboxRefusal::UnknownRecipient));
                }
                let letter = LeftLetter { sender: asker.account, recipient: to, id, written_ms, sealed };
                let now = now_ms();
                self.store.run(move |store| {
                    let response = match store.leave_letter(&letter, now) {
                        Ok(Ok(())) => MailboxResponse::Kept,
                        Ok(Err(refusal)) => MailboxResponse::Refused(refusal),
                        Err(error) => {
                            tracing::error!(%error, "cannot keep a letter");
                            MailboxResponse::Refused(MailboxRefusal::Unavailable)
                        }
                    };
                    Some(Done::MailboxAnswer { channel, response })
                });
            }
            MailboxRequest::Collect { after, .. } => {
                self.store.run(move |store| {
                    let response = match store.letters_for(&asker.account, after, mailbox::MAX_LETTERS) {
                        Ok((letters, more, next)) => MailboxResponse::Letters { letters, more, next },
                        Err(error) => {
                            tracing::error!(%error, "cannot read letters");
                            MailboxResponse::Refused(MailboxRefusal::Unavailable)
                        }
                    };
                    Some(Done::MailboxAnswer { channel, response })
                });
            }
            MailboxRequest::Taken { ids, .. } => {
                self.store.run(move |store| {
                    let response = match store.take_letters(&asker.account, &ids) {
                        Ok(()) => MailboxResponse::Deleted,
                        Err(error) => {
                            tracing::error!(%error, "cannot delete letters");
                            MailboxResponse::Refused(MailboxRefusal::Unavailable)
                        }
                    };
                    Some(Done::MailboxAnswer { channel, response })
                });
            }
        }
    }

    /// Sends this mailbox's answer on the channel held as `channel`.
    pub(super) fn answer_mailbox(&mut self, channel: u64, response: MailboxResponse) {
        if let Some(channel) = self.mailboxes.channels.remove(&channel)
            && self.swarm.behaviour_mut().mailbox.send_response(channel, response).is_err()
        {
            tracing::debug!("the asker left before the mailbox answered");
        }
    }

    /// On the presence timer: letters kept longer than 14 days are deleted.
    pub(super) fn expire_letters(&self) {
        if self.mailboxes.hosting {
            let now = now_ms();
            self.store.write("delete letters kept 14 days", move |store| store.expire_letters(now).map(drop));
        }
    }
}
