//! The keyring's rules, alone: who reads what, rotation on removal, keys passed on, and what a
//! hostile member can and cannot make another member read.

use std::collections::BTreeSet;

use super::*;
use crate::testing::account_of;

fn room() -> EventId {
    EventId::from_bytes([7; 32])
}

fn alice() -> AccountId {
    account_of("alice")
}

fn bob() -> AccountId {
    account_of("bob")
}

fn carol() -> AccountId {
    account_of("carol")
}

fn members(of: &[AccountId]) -> BTreeSet<AccountId> {
    of.iter().copied().collect()
}

/// A member's keyring that was given `key`.
fn given(key: &RoomKey) -> Keyring {
    let mut ring = Keyring::default();
    assert_eq!(ring.take(key.clone()), Ok(Opened::Taken));
    ring
}

#[test]
fn a_member_given_the_key_reads_and_one_without_it_reads_nothing() {
    let mut alices = Keyring::default();
    let sealing = alices.seal(room(), alice(), &members(&[alice(), bob()]), &[room()], 1, "hello");
    assert!(sealing.began);
    assert_eq!(sealing.share_with, [bob()]);
    assert!(!sealing.sealed.ciphertext.windows(5).any(|w| w == b"hello"), "the text is not in the clear");
    let mut bobs = given(&sealing.key);
    assert_eq!(bobs.open(room(), alice(), 1, &sealing.sealed), Ok("hello".to_string()));
    let mut strangers = Keyring::default();
    assert_eq!(strangers.open(room(), alice(), 1, &sealing.sealed), Err(OpenError::NoKey));
    // Alice reads her own, from any node holding her keys.
    assert_eq!(alices.open(room(), alice(), 1, &sealing.sealed), Ok("hello".to_string()));
}

#[test]
fn a_removed_member_reads_nothing_written_after_and_the_others_get_the_new_key() {
    let mut alices = Keyring::default();
    let all = members(&[alice(), bob(), carol()]);
    let first = alices.seal(room(), alice(), &all, &[room()], 1, "before");
    let mut carols = given(&first.key);
    // The same session while nobody leaves, shared with nobody new.
    let second = alices.seal(room(), alice(), &all, &[room()], 2, "still");
    assert!(!second.began && second.share_with.is_empty());
    assert_eq!(carols.open(room(), alice(), 2, &second.sealed), Ok("still".to_string()));
    // Carol is kicked: the next message begins a new session, for Bob only.
    let after = alices.seal(room(), alice(), &members(&[alice(), bob()]), &[room()], 3, "after");
    assert!(after.began);
    assert_ne!(after.key.session, first.key.session);
    assert_eq!(after.share_with, [bob()]);
    assert_eq!(carols.open(room(), alice(), 3, &after.sealed), Err(OpenError::NoKey));
    assert_eq!(given(&after.key).open(room(), alice(), 3, &after.sealed), Ok("after".to_string()));
    // What Carol could read before, she still can.
    assert_eq!(carols.open(room(), alice(), 1, &first.sealed), Ok("before".to_string()));
}

#[test]
fn a_joiner_gets_the_running_session_and_with_it_what_was_written_before() {
    let mut alices = Keyring::default();
    let first = alices.seal(room(), alice(), &members(&[alice(), bob()]), &[room()], 1, "early");
    let later = alices.seal(room(), alice(), &members(&[alice(), bob(), carol()]), &[room()], 2, "later");
    assert!(!later.began, "a join needs no new session");
    assert_eq!(later.share_with, [carol()]);
    let mut carols = given(&later.key);
    assert_eq!(carols.open(room(), alice(), 1, &first.sealed), Ok("early".to_string()), "shared history");
    assert_eq!(carols.open(room(), alice(), 2, &later.sealed), Ok("later".to_string()));
}

#[test]
fn a_rejoin_after_a_removal_is_a_new_session_shared_as_with_a_joiner() {
    let mut alices = Keyring::default();
    let all = members(&[alice(), bob()]);
    alices.seal(room(), alice(), &all, &[room()], 1, "one");
    let alone = alices.seal(room(), alice(), &members(&[alice()]), &[room()], 2, "two");
    assert!(alone.began && alone.share_with.is_empty());
    let back = alices.seal(room(), alice(), &all, &[room()], 3, "three");
    assert!(!back.began);
    assert_eq!(back.share_with, [bob()]);
}

#[test]
fn a_ciphertext_passed_off_as_another_authors_or_rooms_or_number_is_refused() {
    let mut alices = Keyring::default();
    let sealing = alices.seal(room(), alice(), &members(&[alice(), bob()]), &[room()], 1, "mine");
    let mut bobs = given(&sealing.key);
    let not = Err(OpenError::Broken("it is not what its envelope says"));
    assert_eq!(bobs.open(room(), carol(), 1, &sealing.sealed), not, "Carol re-signing Alice's ciphertext");
    assert_eq!(bobs.open(room(), alice(), 2, &sealing.sealed), not);
    let elsewhere = EventId::from_bytes([8; 32]);
    let mut moved = given(&RoomKey { room: elsewhere, ..sealing.key.clone() });
    assert_eq!(moved.open(elsewhere, alice(), 1, &sealing.sealed), not);
}

#[test]
fn a_tampered_ciphertext_or_a_key_of_another_session_does_not_open() {
    let mut alices = Keyring::default();
    let sealing = alices.seal(room(), alice(), &members(&[alice(), bob()]), &[room()], 1, "text");
    let mut bobs = given(&sealing.key);
    let mut tampered = sealing.sealed.clone();
    let middle = tampered.ciphertext.len() / 2;
    tampered.ciphertext[middle] ^= 1;
    assert!(matches!(bobs.open(room(), alice(), 1, &tampered), Err(OpenError::Broken(_))));
    let garbage = Sealed { session: sealing.sealed.session.clone(), ciphertext: vec![3; 40] };
    assert!(matches!(bobs.open(room(), alice(), 1, &garbage), Err(OpenError::Broken(_))));
    // A key claiming another session's id is refused; so is a malformed one.
    let mut other = Keyring::default();
    let others = other.seal(room(), carol(), &members(&[carol(), bob()]), &[room()], 1, "x").key;
    let mut ring = Keyring::default();
    let lying = RoomKey { session: sealing.key.session.clone(), ..others.clone() };
    assert_eq!(ring.take(lying), Err(KeyError::WrongSession));
    assert_eq!(ring.take(RoomKey { key: vec![1; 10], ..others.clone() }), Err(KeyError::Malformed));
    assert_eq!(ring.take(RoomKey { key: vec![1; MAX_KEY_BYTES + 1], ..others }), Err(KeyError::Malformed));
}

/// Alice's session made by hand, as the keyring makes its own: its signed key now, and message
/// number `seq` saying `text` sealed with it.
struct HandMade(vodozemac::megolm::GroupSession);

impl HandMade {
    fn key(&self) -> RoomKey {
        let signed = self.0.session_key();
        let index =
            vodozemac::megolm::InboundGroupSession::new(&signed, SessionConfig::version_1()).first_known_index();
        RoomKey {
            room: room(),
            author: alice(),
            session: self.0.session_id(),
            since: vec![],
            index,
            key: signed.to_bytes(),
        }
    }

    fn seal(&mut self, seq: u64, text: &str) -> Sealed {
        let plain = Plain { room: room(), author: alice(), seq, text: text.into() };
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &plain).unwrap();
        Sealed { session: self.0.session_id(), ciphertext: self.0.encrypt(&bytes).to_bytes() }
    }
}

#[test]
fn a_key_passed_on_under_another_author_still_reads_back_and_a_better_one_replaces_a_later_one() {
    let mut alices = HandMade(vodozemac::megolm::GroupSession::new(SessionConfig::version_1()));
    let from_one = alices.key();
    let first = alices.seal(1, "one");
    let from_two = alices.key();
    let second = alices.seal(2, "two");
    assert_eq!((from_one.index, from_two.index), (0, 1));
    assert_eq!(super::message_index(&second), Some(1));
    // Bob holds the session from its second message only.
    let mut bobs = Keyring::default();
    assert_eq!(bobs.take(from_two.clone()), Ok(Opened::Taken));
    assert!(!bobs.reads(&room(), &from_one.session, 0));
    assert_eq!(bobs.open(room(), alice(), 1, &first), Err(OpenError::NoKey), "before its key reaches");
    assert_eq!(bobs.open(room(), alice(), 2, &second), Ok("two".to_string()));
    assert_eq!(bobs.take(from_two), Ok(Opened::Known));
    // Carol passes the key from the first message on as her own session: it still reads further
    // back (nobody can keep alice's first message from bob by naming her session first), and
    // the session stays alice's, as her message showed.
    assert_eq!(bobs.take(RoomKey { author: carol(), ..from_one.clone() }), Ok(Opened::Taken), "reads further back");
    assert_eq!(bobs.key(&room(), &from_one.session).map(|k| k.author), Some(alice()));
    assert_eq!(bobs.take(from_one), Ok(Opened::Known));
    assert_eq!(bobs.open(room(), alice(), 1, &first), Ok("one".to_string()));
}

#[test]
fn whose_session_a_key_is_comes_from_the_first_message_it_opens() {
    let mut alices = HandMade(vodozemac::megolm::GroupSession::new(SessionConfig::version_1()));
    let key = alices.key();
    let first = alices.seal(1, "one");
    // Carol names alice's session her own, before anyone else passes it on.
    let mut bobs = Keyring::default();
    assert_eq!(bobs.take(RoomKey { author: carol(), ..key.clone() }), Ok(Opened::Taken));
    // A message sealed with it opens only as alice's (its inside names her, as her signed
    // envelope does): carol's envelope around it is refused, and the key is alice's from then on.
    assert_eq!(bobs.open(room(), carol(), 1, &first), Err(OpenError::Broken("it is not what its envelope says")));
    assert_eq!(bobs.open(room(), alice(), 1, &first), Ok("one".to_string()));
    assert_eq!(bobs.key(&room(), &key.session).map(|k| k.author), Some(alice()));
    // Carol's count of sessions is hers again: she can still have MAX of her own.
    for _ in 0..MAX_SESSIONS_PER_AUTHOR {
        let hers = HandMade(vodozemac::megolm::GroupSession::new(SessionConfig::version_1())).key();
        assert_eq!(bobs.take(RoomKey { author: carol(), ..hers }), Ok(Opened::Taken));
    }
}

#[test]
fn a_key_its_session_did_not_sign_is_refused_so_nobody_can_take_a_session_id() {
    let mut alices = Keyring::default();
    let sealing = alices.seal(room(), alice(), &members(&[alice(), bob()]), &[room()], 1, "mine");
    // A member who holds the key exports it (unsigned), or rewrites its ratchet under the
    // session's id: neither is taken, and the real key still is afterwards.
    let signed = vodozemac::megolm::SessionKey::from_bytes(&sealing.key.key).unwrap();
    let inbound = vodozemac::megolm::InboundGroupSession::new(&signed, SessionConfig::version_1());
    let exported = RoomKey { key: inbound.export_at_first_known_index().to_bytes(), ..sealing.key.clone() };
    let mut rewritten = sealing.key.clone();
    rewritten.key[10] ^= 0xff;
    let mut carols = Keyring::default();
    for made_up in [exported, rewritten] {
        assert_eq!(carols.take(made_up), Err(KeyError::Malformed));
    }
    assert_eq!(carols.take(sealing.key.clone()), Ok(Opened::Taken));
    assert_eq!(carols.open(room(), alice(), 1, &sealing.sealed), Ok("mine".to_string()));
}

#[test]
fn a_member_giving_sessions_without_end_is_held_to_a_bound() {
    let mut carols = Keyring::default();
    let made = |_| HandMade(vodozemac::megolm::GroupSession::new(SessionConfig::version_1())).key();
    let first = made(0);
    assert_eq!(carols.take(first.clone()), Ok(Opened::Taken));
    for n in 1..MAX_SESSIONS_PER_AUTHOR {
        assert_eq!(carols.take(made(n)), Ok(Opened::Taken));
    }
    assert_eq!(carols.take(made(0)), Err(KeyError::TooMany), "one session more of alice's");
    assert_eq!(carols.take(first), Ok(Opened::Known), "a session held is still known");
    let mut bobs = Keyring::default();
    let others = bobs.seal(room(), bob(), &members(&[bob(), carol()]), &[room()], 1, "x").key;
    assert_eq!(carols.take(others), Ok(Opened::Taken), "another author's are still taken");
}
