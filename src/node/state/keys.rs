//! The node's room keys: the [`Keyring`] (its own group sessions and the keys it holds), the
//! messages that wait to be shown until their key comes ([`KeyWait`]) and those shown without
//! it (`shown_unreadable`), the keys asked for and given, and who holds this user's own
//! sessions.
//!
//! Bookkeeping only: whom to ask, what to give and when to give up waiting is decided by the
//! adapter (`node/room_keys.rs`) with these bounds; nothing here touches the swarm or the store.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::request_response::OutboundRequestId;

use super::key_wait::{KeyWait, MAX_WAITING, MAX_WAITING_PER_SENDER, Sealing};
use crate::account::AccountId;
use crate::e2e::{Keyring, RoomKey};
use crate::recent::{Recent, forget_least_recent};
use crate::room::EventId;

/// A session's key is asked for again (of someone else, if anyone) after this long.
pub(crate) const ASK_AGAIN: Duration = Duration::from_secs(3);
/// The most sessions remembered as asked for. At this many, those not asked for within
/// [`ASK_AGAIN`] are forgotten and, if that leaves more than [`KEPT_ASKED`], those asked for
/// longest ago: memory stays bounded however many sessions members' messages name at once.
pub(crate) const MAX_ASKED: usize = 10_000;
/// What a clear-out of the sessions asked for leaves at most.
pub(crate) const KEPT_ASKED: usize = MAX_ASKED / 4 * 3;
/// The most authors remembered for a session asked for (each signed a message sealed with it;
/// one session has one author, so more than one is someone naming another's session).
pub(crate) const MAX_ASKED_AUTHORS: usize = 8;
/// How long a message noted as awaiting its key may go unshown before it is forgotten: far
/// beyond any wait on the way to the screen (the sender's order holds a gap 2 s, the store
/// answers in milliseconds), even on a loaded machine.
pub(crate) const FORGET_AWAITING: Duration = Duration::from_secs(120);
/// The most sealed messages of a session opened at a time, once its key comes.
pub(crate) const OPEN_BATCH: usize = 500;
/// The most messages remembered as shown unreadable, to be shown again if their key comes.
pub(crate) const MAX_SHOWN_UNREADABLE: usize = 1_000;

/// A message taken in that could not be read, not shown yet.
#[derive(Debug)]
pub(crate) struct Awaiting {
    /// When it was taken in.
    pub(crate) since: Instant,
    pub(crate) sealing: Sealing,
    /// Its text, when its key came before it was shown: (`None`: it cannot be read).
    pub(crate) opened: Option<Option<String>>,
}

/// The messages taken in that cannot be read yet, by message id (hex), with how many of each
/// sender's there are (each bounded: see [`Awaitings::note`]).
#[derive(Debug, Default)]
pub(crate) struct Awaitings {
    by_id: HashMap<String, Awaiting>,
    of_sender: HashMap<AccountId, usize>,
}

impl Awaitings {
    /// Notes message `id`; whether it was noted: not when it is noted already, nor beyond
    /// [`MAX_WAITING`] in all or [`MAX_WAITING_PER_SENDER`] of its sender's.
    fn note(&mut self, id: String, awaiting: Awaiting) -> bool {
        let account = awaiting.sealing.account;
        let of_sender = self.of_sender.get(&account).copied().unwrap_or(0);
        if self.by_id.len() >= MAX_WAITING || of_sender >= MAX_WAITING_PER_SENDER || self.by_id.contains_key(&id) {
            return false;
        }
        self.by_id.insert(id, awaiting);
        self.of_sender.insert(account, of_sender.saturating_add(1));
        true
    }

    /// Message `id`'s note, to note its text when its key came.
    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut Awaiting> {
        self.by_id.get_mut(id)
    }

    /// Takes message `id`'s note away.
    pub(crate) fn remove(&mut self, id: &str) -> Option<Awaiting> {
        let awaiting = self.by_id.remove(id)?;
        self.uncount(&awaiting.sealing.account);
        Some(awaiting)
    }

    fn uncount(&mut self, account: &AccountId) {
        if let Some(count) = self.of_sender.get_mut(account) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.of_sender.remove(account);
            }
        }
    }

    /// Keeps only the notes `keep` says to.
    fn retain(&mut self, mut keep: impl FnMut(&Awaiting) -> bool) {
        let gone: Vec<String> = self.by_id.iter().filter(|(_, a)| !keep(a)).map(|(id, _)| id.clone()).collect();
        for id in gone {
            self.remove(&id);
        }
    }
}

/// A session's key asked for.
#[derive(Debug, Default)]
pub(crate) struct Asked {
    pub(crate) last: Option<Instant>,
    /// The peers asked, in turn.
    pub(crate) peers: Vec<PeerId>,
    /// The accounts whose signed messages are sealed with it: a key that comes is taken only as
    /// one of theirs (whoever passes a key on names its author as it likes).
    pub(crate) authors: Vec<AccountId>,
}

/// Room keys and what waits for them.
#[derive(Debug, Default)]
pub(crate) struct RoomKeys {
    pub(crate) ring: Keyring,
    /// Messages taken in that cannot be read yet, to wait for their key when they are shown.
    pub(crate) awaiting: Awaitings,
    /// The text of this user's message being taken in, by event id, so that it is not
    /// decrypted again (empty but while it is).
    pub(crate) own_texts: HashMap<EventId, String>,
    /// Messages held back from the screen until their key comes.
    pub(crate) wait: KeyWait,
    /// Room messages shown as they came, unreadable (their key did not come in time, or too
    /// many waited), by event id (hex): each is shown again, read, if its key comes after all.
    /// The newest [`MAX_SHOWN_UNREADABLE`].
    pub(crate) shown_unreadable: Recent<String, (), MAX_SHOWN_UNREADABLE>,
    /// The sessions asked for, by room and session id.
    pub(crate) asked: HashMap<(EventId, String), Asked>,
    /// The requests in flight that ask for keys: the room and the sessions asked for.
    pub(crate) asks: HashMap<OutboundRequestId, (EventId, Vec<String>)>,
    /// The requests in flight that give keys: to whom, and the sessions given.
    pub(crate) gives: HashMap<OutboundRequestId, (AccountId, Vec<(EventId, String)>)>,
    /// Who said they took the key of this user's current session in each room: the session's
    /// id and the accounts.
    pub(crate) holders: HashMap<EventId, (String, BTreeSet<AccountId>)>,
}

impl RoomKeys {
    /// Whether `session` of `room`, which a message of `author` is sealed with, may be asked for
    /// now (not asked for within [`ASK_AGAIN`]); if so, it counts as asked.
    pub(crate) fn may_ask(&mut self, room: EventId, session: &str, author: AccountId, now: Instant) -> bool {
        if self.asked.len() >= MAX_ASKED {
            self.asked
                .retain(|_, asked| asked.last.is_some_and(|last| now.saturating_duration_since(last) < ASK_AGAIN));
            forget_least_recent(&mut self.asked, KEPT_ASKED, |asked| asked.last.unwrap_or(now));
        }
        let asked = self.asked.entry((room, session.to_string())).or_default();
        if !asked.authors.contains(&author) && asked.authors.len() < MAX_ASKED_AUTHORS {
            asked.authors.push(author);
        }
        if asked.last.is_some_and(|last| now.saturating_duration_since(last) < ASK_AGAIN) {
            return false;
        }
        asked.last = Some(now);
        true
    }

    /// Whether a key of `session` in `room` named as `author`'s may be taken as an answer: the
    /// session was asked for, for a message `author` signed.
    pub(crate) fn asked_of(&self, room: &EventId, session: &str, author: &AccountId) -> bool {
        self.asked.get(&(*room, session.to_string())).is_some_and(|asked| asked.authors.contains(author))
    }

    /// Notes that `account` holds the keys of `sessions`, when they are this user's current
    /// ones (who held an earlier session is forgotten).
    pub(crate) fn held_by(&mut self, account: AccountId, sessions: &[(EventId, String)]) {
        for (room, session) in sessions {
            if self.ring.own_session(room).as_deref() != Some(session.as_str()) {
                continue;
            }
            let (held, holders) = self.holders.entry(*room).or_default();
            if held != session {
                *held = session.clone();
                holders.clear();
            }
            holders.insert(account);
        }
    }

    /// Who holds this user's current session in `room`, as they said (`None`: no session runs).
    pub(crate) fn holders_of(&self, room: &EventId) -> Option<BTreeSet<AccountId>> {
        let session = self.ring.own_session(room)?;
        let holders = self.holders.get(room).filter(|(held, _)| *held == session);
        Some(holders.map(|(_, holders)| holders.clone()).unwrap_or_default())
    }

    /// Ends this user's session in `room`; who held it is forgotten.
    pub(crate) fn end_own(&mut self, room: &EventId) {
        self.ring.end_own(room);
        self.holders.remove(room);
    }

    /// Ends every session of this user.
    pub(crate) fn end_all_own(&mut self) {
        self.ring.end_all_own();
        self.holders.clear();
    }

    /// Notes that message `id` (hex), sealed as `sealing` says, cannot be read yet: shown, it
    /// waits for the key. Whether it was noted now: not when another copy of it noted it first
    /// (that one is on its way to be shown, and its note, maybe opened since, stays as it is),
    /// nor beyond the bound (it is shown as unreadable).
    pub(crate) fn await_key(&mut self, id: String, sealing: Sealing, now: Instant) -> bool {
        self.awaiting.note(id, Awaiting { since: now, sealing, opened: None })
    }

    /// Forgets the messages noted [`FORGET_AWAITING`] ago or more that were never shown (a
    /// message the sender's order dropped as a repeat of its number), so that they do not fill
    /// the bound.
    pub(crate) fn forget_stale(&mut self, now: Instant) {
        self.awaiting.retain(|awaiting| now.saturating_duration_since(awaiting.since) < FORGET_AWAITING);
    }
}

/// Of the keys a catch-up page of `room` brought, those of a session a message of the page is
/// sealed with, named as that message's signer's (`sealed_by`: each message's session and its
/// signed author).
pub(crate) fn sealed_in_page(
    room: EventId,
    sealed_by: &HashSet<(&str, AccountId)>,
    keys: Vec<RoomKey>,
) -> Vec<RoomKey> {
    keys.into_iter().filter(|key| key.room == room && sealed_by.contains(&(key.session.as_str(), key.author))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::account_of;

    #[test]
    fn a_second_copy_of_a_message_leaves_the_first_copys_note_of_its_key_wait_as_it_is() {
        let mut keys = RoomKeys::default();
        let now = Instant::now();
        let sealing = || Sealing { session: "s".into(), author: PeerId::random(), account: account_of("alice") };
        assert!(keys.await_key("m".into(), sealing(), now), "the first copy notes it");
        keys.awaiting.get_mut("m").expect("noted").opened = Some(Some("hello".into()));
        assert!(!keys.await_key("m".into(), sealing(), now), "a second copy does not");
        assert_eq!(keys.awaiting.get_mut("m").unwrap().opened, Some(Some("hello".into())), "what its key opened stays");
    }

    #[test]
    fn a_key_is_taken_only_as_the_session_of_someone_whose_message_needs_it() {
        let (alice, mallory) = (account_of("alice"), account_of("mallory"));
        let room = EventId::from_bytes([1; 32]);
        let mut keys = RoomKeys::default();
        let now = Instant::now();
        assert!(keys.may_ask(room, "s1", alice, now), "alice's message waits for s1");
        assert!(keys.asked_of(&room, "s1", &alice));
        assert!(!keys.asked_of(&room, "s1", &mallory), "an answer naming s1 mallory's is not taken");
        assert!(!keys.asked_of(&room, "s2", &alice), "nor a session nobody asked for");
        // Mallory signs a message claiming s1 too: a key named hers may then come, and alice's
        // still may (the first message s1 opens settles whose it is).
        assert!(!keys.may_ask(room, "s1", mallory, now), "asked a moment ago");
        assert!(keys.asked_of(&room, "s1", &mallory) && keys.asked_of(&room, "s1", &alice));
        for n in 0..2 * MAX_ASKED_AUTHORS {
            keys.may_ask(room, "s1", account_of(&format!("u{n}")), now);
        }
        assert_eq!(keys.asked[&(room, "s1".to_string())].authors.len(), MAX_ASKED_AUTHORS, "bounded");
    }

    #[test]
    fn sessions_asked_for_stay_bounded_however_many_are_named_at_once() {
        let (alice, mallory) = (account_of("alice"), account_of("mallory"));
        let room = EventId::from_bytes([1; 32]);
        let mut keys = RoomKeys::default();
        let now = Instant::now();
        assert!(keys.may_ask(room, "alice's", alice, now));
        // Messages naming ever-new sessions, all within the time a session is not asked again.
        for n in 0..3 * MAX_ASKED {
            let at = now + Duration::from_micros(n as u64 + 1);
            assert!(keys.may_ask(room, &format!("s{n}"), mallory, at), "session {n} is new");
            assert!(keys.asked.len() <= MAX_ASKED, "never more than the bound ({} at {n})", keys.asked.len());
        }
        let last = format!("s{}", 3 * MAX_ASKED - 1);
        assert!(keys.asked_of(&room, &last, &mallory), "the newest asked for is remembered");
        assert!(!keys.may_ask(room, &last, mallory, now + Duration::from_secs(1)), "and not asked again yet");
        assert!(!keys.asked_of(&room, "alice's", &alice), "the one asked for longest ago went first");
    }

    #[test]
    fn a_catch_up_pages_keys_are_taken_only_as_the_sessions_of_its_messages_signers() {
        let (alice, mallory) = (account_of("alice"), account_of("mallory"));
        let (room, other) = (EventId::from_bytes([1; 32]), EventId::from_bytes([2; 32]));
        let key = |room: EventId, author: AccountId, session: &str| RoomKey {
            room,
            author,
            session: session.into(),
            since: Vec::new(),
            index: 0,
            key: Vec::new(),
        };
        // The page holds alice's message sealed with s1 and mallory's with s2.
        let sealed_by: HashSet<(&str, AccountId)> = [("s1", alice), ("s2", mallory)].into();
        let keys = vec![
            key(room, alice, "s1"),
            key(room, mallory, "s2"),
            // Named after alice with no message of hers sealed with it: it would count against
            // her sessions here.
            key(room, alice, "s3"),
            key(room, alice, "s2"),
            key(room, mallory, "s1"),
            key(other, alice, "s1"),
        ];
        let taken: Vec<(EventId, AccountId, String)> =
            sealed_in_page(room, &sealed_by, keys).into_iter().map(|k| (k.room, k.author, k.session)).collect();
        assert_eq!(taken, vec![(room, alice, "s1".to_string()), (room, mallory, "s2".to_string())]);
    }

    #[test]
    fn a_whole_burst_sent_before_its_key_came_is_noted_as_waiting_for_it() {
        let mut keys = RoomKeys::default();
        let now = Instant::now();
        let sealing = Sealing { session: "s".into(), author: PeerId::random(), account: account_of("alice") };
        let sent = crate::room::engine::MESSAGE_BURST + crate::room::engine::MESSAGES_PER_SEC;
        for i in 0..sent {
            assert!(keys.await_key(format!("m{i}"), sealing.clone(), now), "{i} noted");
        }
    }

    #[test]
    fn one_sender_whose_keys_never_come_leaves_room_for_others_to_wait_for_theirs() {
        let mut keys = RoomKeys::default();
        let now = Instant::now();
        let of = |name: &str, session: String| Sealing { session, author: PeerId::random(), account: account_of(name) };
        for i in 0..MAX_WAITING_PER_SENDER {
            assert!(keys.await_key(format!("m{i}"), of("mallory", format!("s{i}")), now));
        }
        assert!(!keys.await_key("one more".into(), of("mallory", "x".into()), now), "mallory's share is taken");
        assert!(keys.await_key("a1".into(), of("alice", "sa".into()), now), "alice's message still waits");
        // Shown (or forgotten), mallory's notes make room for more of hers.
        assert!(keys.awaiting.remove("m0").is_some());
        assert!(keys.await_key("m again".into(), of("mallory", "y".into()), now));
        keys.forget_stale(now + FORGET_AWAITING);
        assert!(keys.await_key("m later".into(), of("mallory", "z".into()), now + FORGET_AWAITING));
        assert_eq!(keys.awaiting.of_sender.len(), 1, "{:?}", keys.awaiting.of_sender);
    }

    #[test]
    fn messages_shown_unreadable_are_remembered_up_to_a_bound_and_taken_once() {
        let mut shown = RoomKeys::default().shown_unreadable;
        for n in 0..MAX_SHOWN_UNREADABLE + 10 {
            shown.insert(format!("{n:064x}"), ());
        }
        shown.insert(format!("{:064x}", MAX_SHOWN_UNREADABLE + 9), ());
        assert_eq!(shown.len(), MAX_SHOWN_UNREADABLE, "a message noted twice is kept once");
        assert!(shown.remove(&format!("{:064x}", 9)).is_none(), "the oldest are forgotten first");
        assert!(shown.remove(&format!("{:064x}", 10)).is_some());
        assert!(shown.remove(&format!("{:064x}", 10)).is_none(), "shown again once");
        assert_eq!(shown.len(), MAX_SHOWN_UNREADABLE - 1);
    }
}
