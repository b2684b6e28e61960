//! The state of mailboxes on this node: whether it keeps letters for others, the mailboxes in
//! reach (peers that offered to keep letters and were vouched for: the trusted bootstrap node,
//! or a valid certificate in their presence) and which of them letters are left at, its requests to them in flight and what each was for, the collections of this user's
//! letters under way (how many letters of the last answer are still being taken in, which were,
//! the position the next page is collected after, and which page of its round it is — a round
//! asks for [`MAX_PAGES_PER_ROUND`] at most, the next round goes on from there), the requests of
//! others waiting for this node's answer as a mailbox, and how many each account may make
//! ([`Asking`]: [`COLLECT_BURST`] collections at once then [`COLLECTS_PER_SEC`], and
//! [`REQUEST_BURST`] other requests at once then [`REQUESTS_PER_SEC`]).
//!
//! Only state and its own bookkeeping: never imports the event loop nor an adapter file, never
//! touches the swarm or the store, never emits an event (`node/mailbox.rs` does).

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use libp2p::PeerId;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};

use crate::account::AccountId;
use crate::dm::engine::ARRIVALS_PER_SEC;
use crate::mailbox::MAX_LETTERS_PER_SENDER;
use crate::protocol::mailbox::{MailboxRequest, MailboxResponse};
use crate::rate_limit::RateLimit;

/// The most pages one collection round asks a mailbox for; what waits behind them is collected
/// in the next round, on the presence timer (a mailbox saying `more` forever never keeps this
/// node collecting).
pub(crate) const MAX_PAGES_PER_ROUND: u32 = 8;
/// Collections this node answers as a mailbox for one account at once: two whole rounds back to
/// back (a login's and a mailbox come in reach). Each is a read of up to
/// [`MAX_LETTERS`](crate::protocol::mailbox::MAX_LETTERS) letters, an answer of up to 250 KiB.
pub(crate) const COLLECT_BURST: u32 = 2 * MAX_PAGES_PER_ROUND;
/// Collections answered for one account each second once the burst is spent: a node asks for a
/// round of [`MAX_PAGES_PER_ROUND`] pages at most once a presence interval (10 s), and mostly one
/// page.
pub(crate) const COLLECTS_PER_SEC: u32 = 1;
/// Letters left and lists of letters taken answered for one account at once: as many letters
/// as a sender may have waiting ([`MAX_LETTERS_PER_SENDER`]), and what two rounds of
/// collections take.
pub(crate) const REQUEST_BURST: u32 = MAX_LETTERS_PER_SENDER as u32 + 2 * MAX_PAGES_PER_ROUND;
/// Those answered each second once the burst is spent: as many as a receiver takes direct
/// messages from one sender ([`ARRIVALS_PER_SEC`]), far beyond anyone typing or pasting.
pub(crate) const REQUESTS_PER_SEC: u32 = ARRIVALS_PER_SEC;

/// How many requests each account may make of this node as a mailbox: collections (each a read
/// and a large answer) held apart from the rest.
#[derive(Debug)]
pub(crate) struct Asking {
    collections: RateLimit<AccountId>,
    others: RateLimit<AccountId>,
}

impl Default for Asking {
    fn default() -> Self {
        Asking {
            collections: RateLimit::new(COLLECT_BURST, COLLECTS_PER_SEC),
            others: RateLimit::new(REQUEST_BURST, REQUESTS_PER_SEC),
        }
    }
}

impl Asking {
    /// Whether `account` may have `request` answered at `now` (and counts it if so).
    pub(crate) fn allow(&mut self, account: AccountId, request: &MailboxRequest, now: Instant) -> bool {
        match request {
            MailboxRequest::Collect { .. } => self.collections.allow(account, now),
            MailboxRequest::Leave { .. } | MailboxRequest::Taken { .. } => self.others.allow(account, now),
        }
    }
}

/// What a request to a mailbox was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Asked {
    /// Leaving message `id` for the user called `to`.
    Leave { id: String, to: String },
    /// Collecting this user's letters.
    Collect,
    /// Saying which letters were taken.
    Taken,
}

/// A collection of this user's letters from one mailbox.
#[derive(Debug, Default)]
pub(crate) struct Collecting {
    /// Letters of the last answer still being taken in.
    pub(crate) open: usize,
    /// The ids of the letters taken in (or refused for good), to say so.
    pub(crate) taken: Vec<String>,
    /// Whether the mailbox holds more behind the last answer.
    pub(crate) more: bool,
    /// The position the last answer was asked after, and the one it ended at: the next page is
    /// collected after that.
    pub(crate) after: u64,
    pub(crate) next: u64,
    /// Which page of its round the last answer is (1: the first).
    pub(crate) page: u32,
    /// Whether a letter of the last answer was left there for now (out of its sender's turn).
    pub(crate) left: bool,
}

/// A collection's answer, all taken in: what to tell the mailbox and what next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Collected {
    /// The ids taken (or refused for good), to say so.
    pub(crate) taken: Vec<String>,
    /// Collect again at once: more wait there.
    pub(crate) again: Option<NextPage>,
}

/// The next page of a collection round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NextPage {
    /// The position it is collected after.
    pub(crate) after: u64,
    /// Which page of the round it is.
    pub(crate) page: u32,
}

/// Mailboxes, as this node uses them and as it is one.
#[derive(Default)]
pub(crate) struct Mailboxes {
    /// Whether this node keeps letters for others.
    pub(crate) hosting: bool,
    /// Mailboxes in reach, first found first: peers whose identify listed the protocol and
    /// that are the trusted bootstrap node or show a valid certificate in their presence.
    pub(crate) in_reach: Vec<PeerId>,
    /// Peers in reach whose identify listed the protocol, not known yet to be either.
    pub(crate) offered: BTreeSet<PeerId>,
    /// Requests in flight to mailboxes.
    pub(crate) asked: HashMap<OutboundRequestId, (PeerId, Asked)>,
    /// Collections under way, by mailbox.
    pub(crate) collecting: HashMap<PeerId, Collecting>,
    /// Mailboxes holding letters left for now: collected again on the presence timer.
    pub(crate) left_behind: BTreeSet<PeerId>,
    /// Where the next round at a mailbox starts, when the last was cut short by
    /// [`MAX_PAGES_PER_ROUND`] (else from the first letter).
    pub(crate) resume: HashMap<PeerId, u64>,
    /// Requests of others waiting for this node's answer as a mailbox, by number.
    pub(crate) channels: HashMap<u64, ResponseChannel<MailboxResponse>>,
    next_channel: u64,
    /// How many requests each account may make of this node as a mailbox.
    pub(crate) asking: Asking,
}

impl Mailboxes {
    /// A node's mailboxes; `hosting`: it keeps letters for others.
    pub(crate) fn new(hosting: bool) -> Self {
        Mailboxes { hosting, ..Mailboxes::default() }
    }

    /// Identify says `peer` keeps letters; `vouched`: it is the trusted bootstrap node, or its
    /// presence showed a valid certificate. Whether it is a new mailbox in reach now (else it
    /// is one once vouched for, [`Mailboxes::vouch`]).
    pub(crate) fn offer(&mut self, peer: PeerId, vouched: bool) -> bool {
        if vouched {
            return self.found(peer);
        }
        if !self.in_reach.contains(&peer) {
            self.offered.insert(peer);
        }
        false
    }

    /// `peer` is known now to be the trusted bootstrap node, or showed a valid certificate:
    /// whether it is a new mailbox in reach (it offered to keep letters).
    pub(crate) fn vouch(&mut self, peer: PeerId) -> bool {
        self.offered.contains(&peer) && self.found(peer)
    }

    /// `peer` is a mailbox in reach; whether it was not already.
    fn found(&mut self, peer: PeerId) -> bool {
        self.offered.remove(&peer);
        if self.in_reach.contains(&peer) {
            return false;
        }
        self.in_reach.push(peer);
        true
    }

    /// `peer` is gone: no mailbox any more, nor offered as one, and a collection from it ends.
    pub(crate) fn gone(&mut self, peer: &PeerId) {
        self.in_reach.retain(|p| p != peer);
        self.offered.remove(peer);
        self.collecting.remove(peer);
        self.resume.remove(peer);
    }

    /// Where a letter is left: the trusted bootstrap node `bootstrap` when it is a mailbox in
    /// reach, else the mailbox found first (never by its peer id, which anyone can choose).
    pub(crate) fn for_letters(&self, bootstrap: Option<PeerId>) -> Option<PeerId> {
        bootstrap.filter(|b| self.in_reach.contains(b)).or_else(|| self.in_reach.first().copied())
    }

    /// Whether a letter is on its way to a mailbox.
    pub(crate) fn leaving(&self) -> bool {
        self.asked.values().any(|(_, asked)| matches!(asked, Asked::Leave { .. }))
    }

    /// Holds the channel of a request to this mailbox; the number it is known by.
    pub(crate) fn hold(&mut self, channel: ResponseChannel<MailboxResponse>) -> u64 {
        let number = self.next_channel;
        self.next_channel = self.next_channel.wrapping_add(1);
        self.channels.insert(number, channel);
        number
    }

    /// A letter of the collection from `mailbox` was taken in or refused for good (`taken`),
    /// or left there for now: when none is left open, what to tell the mailbox and what next.
    pub(crate) fn letter_done(&mut self, mailbox: PeerId, id: String, taken: bool) -> Option<Collected> {
        let collecting = self.collecting.get_mut(&mailbox)?;
        if taken {
            collecting.taken.push(id);
        } else {
            collecting.left = true;
        }
        collecting.open = collecting.open.saturating_sub(1);
        if collecting.open > 0 {
            return None;
        }
        let done = self.collecting.remove(&mailbox)?;
        if done.left {
            self.left_behind.insert(mailbox);
        }
        // The next page comes after this one: letters left there for now hide none behind them.
        // A round asks for so many pages at most; the next round goes on from there.
        let again = if !done.more {
            self.resume.remove(&mailbox);
            None
        } else if done.next == done.after && done.taken.is_empty() {
            // Nothing taken and no further (a mailbox that knows no positions hands the same
            // letters again): the timer tries.
            self.left_behind.insert(mailbox);
            None
        } else if done.page >= MAX_PAGES_PER_ROUND {
            self.resume.insert(mailbox, done.next);
            self.left_behind.insert(mailbox);
            None
        } else {
            Some(NextPage { after: done.next, page: done.page.saturating_add(1) })
        };
        Some(Collected { taken: done.taken, again })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_answered_a_burst_then_at_a_pace_and_collections_apart() {
        use crate::cert::Authority;
        use crate::testing::account_of;
        let certificate = Authority::from_secret(&[5; 32]).issue(account_of("carol"), "carol", b"peer-c", 1, 1);
        let collect = MailboxRequest::Collect { certificate: certificate.clone(), after: 0 };
        let taken = MailboxRequest::Taken { certificate, ids: vec![] };
        let (carol, dave) = (account_of("carol"), account_of("dave"));
        let mut asking = Asking::default();
        let t = Instant::now();
        assert!((0..COLLECT_BURST).all(|_| asking.allow(carol, &collect, t)));
        assert!(!asking.allow(carol, &collect, t), "the burst is spent");
        assert!(asking.allow(dave, &collect, t), "each account has its own");
        assert!((0..REQUEST_BURST).all(|_| asking.allow(carol, &taken, t)), "collections are counted apart");
        assert!(!asking.allow(carol, &taken, t));
        let later = t + std::time::Duration::from_secs(1);
        assert!(asking.allow(carol, &collect, later));
        assert!(!asking.allow(carol, &collect, later));
        // An honest node: two whole rounds at once, then one each presence interval, each
        // page said taken.
        let mut at = t + std::time::Duration::from_secs(60);
        for round in 0..100 {
            let pages = if round == 0 { 2 * MAX_PAGES_PER_ROUND } else { MAX_PAGES_PER_ROUND };
            assert!((0..pages).all(|_| asking.allow(dave, &collect, at)), "round {round}");
            assert!((0..pages).all(|_| asking.allow(dave, &taken, at)), "round {round}");
            at += super::super::presence::PRESENCE_INTERVAL;
        }
    }

    #[test]
    fn a_collection_ends_when_its_last_letter_is_taken_in() {
        let mut mailboxes = Mailboxes::default();
        let mailbox = PeerId::random();
        mailboxes
            .collecting
            .insert(mailbox, Collecting { open: 2, more: true, next: 7, page: 1, ..Collecting::default() });
        assert_eq!(mailboxes.letter_done(mailbox, "a".into(), true), None);
        let done = mailboxes.letter_done(mailbox, "b".into(), false);
        assert_eq!(done, Some(Collected { taken: vec!["a".into()], again: Some(NextPage { after: 7, page: 2 }) }));
        assert!(mailboxes.left_behind.contains(&mailbox), "b is collected again on the timer");
        assert_eq!(mailboxes.letter_done(mailbox, "c".into(), true), None, "no collection under way");
        mailboxes.collecting.insert(mailbox, Collecting { open: 1, more: false, ..Collecting::default() });
        assert_eq!(
            mailboxes.letter_done(mailbox, "d".into(), true),
            Some(Collected { taken: vec!["d".into()], again: None })
        );
    }

    #[test]
    fn a_page_whose_letters_are_all_left_for_now_moves_on_to_the_next() {
        let mut mailboxes = Mailboxes::default();
        let mailbox = PeerId::random();
        mailboxes
            .collecting
            .insert(mailbox, Collecting { open: 2, more: true, next: 16, page: 1, ..Collecting::default() });
        assert_eq!(mailboxes.letter_done(mailbox, "m-1".into(), false), None);
        let done = mailboxes.letter_done(mailbox, "m-2".into(), false);
        let next = Some(NextPage { after: 16, page: 2 });
        assert_eq!(done, Some(Collected { taken: vec![], again: next }), "the letters behind them are collected");
        assert!(mailboxes.left_behind.contains(&mailbox), "those left are collected again on the timer");
    }

    #[test]
    fn a_mailbox_saying_more_forever_gets_a_few_pages_a_round() {
        let mut mailboxes = Mailboxes::default();
        let mailbox = PeerId::random();
        let mut page = 1;
        let mut pages = 0;
        // Every answer: one junk letter (dropped, said taken) and `more`.
        loop {
            pages += 1;
            let next = 16 * u64::from(page);
            mailboxes
                .collecting
                .insert(mailbox, Collecting { open: 1, more: true, next, page, ..Collecting::default() });
            let done = mailboxes.letter_done(mailbox, format!("junk-{page}"), true).unwrap();
            match done.again {
                Some(again) => page = again.page,
                None => break,
            }
            assert!(pages < 100, "collecting without end");
        }
        assert_eq!(pages, MAX_PAGES_PER_ROUND);
        assert!(mailboxes.left_behind.contains(&mailbox), "the next round comes on the timer");
        assert_eq!(
            mailboxes.resume.get(&mailbox),
            Some(&(16 * u64::from(MAX_PAGES_PER_ROUND))),
            "and goes on from there"
        );
        // A round that reaches the end starts the next from the first letter.
        mailboxes.collecting.insert(mailbox, Collecting { open: 1, page: 1, ..Collecting::default() });
        assert_eq!(mailboxes.letter_done(mailbox, "last".into(), true).unwrap().again, None);
        assert_eq!(mailboxes.resume.get(&mailbox), None);
    }

    #[test]
    fn letters_go_to_the_bootstrap_node_else_the_mailbox_found_first() {
        let mut mailboxes = Mailboxes::default();
        let (first, bootstrap) = (PeerId::random(), PeerId::random());
        // A peer id chosen to sort first gains nothing.
        let low = PeerId::from_bytes(&[0, 1, 0]).unwrap();
        assert_eq!(mailboxes.for_letters(Some(bootstrap)), None);
        assert!(mailboxes.offer(first, true));
        assert!(mailboxes.offer(low, true));
        assert!(!mailboxes.offer(first, true), "found once");
        assert_eq!(mailboxes.for_letters(None), Some(first));
        assert_eq!(mailboxes.for_letters(Some(bootstrap)), Some(first), "the bootstrap node is not in reach as one");
        mailboxes.offer(bootstrap, true);
        assert_eq!(mailboxes.for_letters(Some(bootstrap)), Some(bootstrap));
        mailboxes.gone(&bootstrap);
        mailboxes.gone(&first);
        assert_eq!(mailboxes.for_letters(Some(bootstrap)), Some(low));
    }

    #[test]
    fn a_peer_offering_to_keep_letters_is_a_mailbox_only_once_vouched_for() {
        let mut mailboxes = Mailboxes::default();
        let (stranger, later) = (PeerId::random(), PeerId::random());
        assert!(!mailboxes.offer(stranger, false));
        assert!(!mailboxes.offer(later, false));
        assert_eq!(mailboxes.for_letters(None), None, "no letter goes to a peer nobody vouched for");
        assert!(mailboxes.in_reach.is_empty());
        assert!(!mailboxes.vouch(PeerId::random()), "vouched for, but it keeps no letters");
        assert!(mailboxes.vouch(later), "its presence showed a valid certificate");
        assert!(!mailboxes.vouch(later), "once");
        assert_eq!(mailboxes.for_letters(None), Some(later));
        mailboxes.gone(&stranger);
        assert!(!mailboxes.vouch(stranger), "gone: forgotten");
        assert!(mailboxes.offered.is_empty());
    }

    #[test]
    fn a_mailbox_that_knows_no_positions_is_not_asked_for_the_same_letters_again_at_once() {
        let mut mailboxes = Mailboxes::default();
        let mailbox = PeerId::random();
        // Its answers say `next: 0` whatever was asked.
        mailboxes.collecting.insert(mailbox, Collecting { open: 1, more: true, page: 1, ..Collecting::default() });
        assert_eq!(mailboxes.letter_done(mailbox, "m-1".into(), false), Some(Collected { taken: vec![], again: None }));
        assert!(mailboxes.left_behind.contains(&mailbox));
        mailboxes.collecting.insert(mailbox, Collecting { open: 1, more: true, page: 1, ..Collecting::default() });
        let done = mailboxes.letter_done(mailbox, "a-1".into(), true).unwrap();
        assert_eq!(done.again, Some(NextPage { after: 0, page: 2 }), "one taken: the rest moved up");
    }
}
