//! The roster's and the presence engine's tests.

use super::*;

fn user(name: &str, nick: &str) -> OnlineUser {
    // The account of the test: alice and alicia are one person.
    let account = crate::testing::account_of(if name == "alicia" { "alice" } else { name });
    OnlineUser { account, username: name.into(), nick: nick.into() }
}

#[test]
fn only_announcements_newer_than_the_last_are_taken() {
    let now = Instant::now();
    let mut r = Roster::new();
    assert!(!r.is_stale(b"p", 5, 1));
    r.announce(b"p", user("alice", "A"), 5, 3, now);
    assert!(r.is_stale(b"p", 4, 3));
    assert!(r.is_stale(b"p", 5, 3), "the same announcement again");
    assert!(!r.is_stale(b"p", 6, 3));
    assert!(r.is_stale(b"p", 6, 2), "resting on an older certificate");
    assert!(!r.is_stale(b"q", 1, 1));
}

#[test]
fn a_replayed_announcement_after_a_logout_changes_nothing() {
    let now = Instant::now();
    let mut r = Roster::new();
    r.announce(b"p", user("alice", "A"), 5, 3, now);
    assert_eq!(r.leave(b"p", 6, 3), Some(RosterChange::Left(user("alice", "A"))));
    assert_eq!(r.announce(b"p", user("alice", "A"), 5, 3, now), None, "a copy of the old announcement");
    assert!(r.online().is_empty());
    // Gone by disconnection: the same.
    r.announce(b"p", user("alice", "A"), 7, 3, now);
    r.peer_gone(b"p");
    assert_eq!(r.announce(b"p", user("alice", "A"), 7, 3, now), None);
    assert_eq!(r.announce(b"p", user("alice", "A"), 8, 3, now), Some(RosterChange::Arrived(user("alice", "A"))));
}

#[test]
fn arrivals_renames_and_nicks_are_told_once() {
    let now = Instant::now();
    let mut r = Roster::new();
    assert_eq!(r.announce(b"p", user("alice", "A"), 1, 1, now), Some(RosterChange::Arrived(user("alice", "A"))));
    assert_eq!(r.announce(b"p", user("alice", "A"), 2, 1, now), None);
    assert_eq!(r.announce(b"p", user("alice", "Al"), 3, 1, now), Some(RosterChange::Nick(user("alice", "Al"))));
    assert_eq!(
        r.announce(b"p", user("alicia", "Al"), 4, 1, now),
        Some(RosterChange::Renamed { old: "alice".into(), new: "alicia".into() })
    );
    assert_eq!(r.announce(b"p", user("alice", "old copy"), 2, 1, now), None, "late copies are ignored");
    assert_eq!(r.online(), vec![user("alicia", "Al")]);
}

#[test]
fn users_leave_by_logout_disconnect_or_silence() {
    let now = Instant::now();
    let mut r = Roster::new();
    r.announce(b"a", user("alice", "A"), 1, 1, now);
    r.announce(b"b", user("bob", "B"), 1, 1, now);
    r.announce(b"c", user("carol", "C"), 1, 1, now + Duration::from_secs(20));
    assert_eq!(r.leave(b"a", 0, 1), None, "an older logout does not count");
    assert_eq!(r.leave(b"a", 2, 1), Some(RosterChange::Left(user("alice", "A"))));
    assert_eq!(r.peer_gone(b"a"), None);
    let gone = r.expire(now + Duration::from_secs(31), Duration::from_secs(30));
    assert_eq!(gone, vec![(b"b".to_vec(), RosterChange::Left(user("bob", "B")))]);
    assert_eq!(r.online(), vec![user("carol", "C")]);
    assert_eq!(r.peer_gone(b"c"), Some(RosterChange::Left(user("carol", "C"))));
    assert!(r.online().is_empty());
}

#[test]
fn nicknames_are_short_and_printable() {
    assert!(valid_nick("Alice in Wonderland"));
    assert!(valid_nick("Zoë 🌸"));
    assert!(!valid_nick(""));
    assert!(!valid_nick("   "));
    assert!(!valid_nick(&"x".repeat(33)));
    assert!(!valid_nick("evil\x1b[2J"));
}

#[test]
fn a_nickname_cannot_pass_for_the_frame_of_a_message_or_hide_characters() {
    for nick in ["bob> see evil.example", "<bob>", "Al (home)", "[admin]", "x)", "(y"] {
        assert!(matches!(check_nick(nick), Err(InvalidNick::Char(_))), "{nick}");
    }
    for hidden in
        ['\u{200b}', '\u{200d}', '\u{200f}', '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{feff}', '\u{ad}']
    {
        let nick = format!("bo{hidden}b");
        assert_eq!(check_nick(&nick), Err(InvalidNick::Char(hidden)), "U+{:04X}", u32::from(hidden));
    }
    assert_eq!(check_nick("tab\there"), Err(InvalidNick::Char('\t')));
    assert_eq!(check_nick(" Al"), Err(InvalidNick::Spaces));
    assert_eq!(check_nick("Al\u{a0}"), Err(InvalidNick::Spaces));
    assert_eq!(check_nick(""), Err(InvalidNick::Length));
    // What the user is told says what a nickname may hold.
    let told = check_nick("bob> see evil.example").unwrap_err().to_string();
    assert!(told.contains("'>'") && told.contains("< > ( ) [ ]"), "{told}");
    assert!(!check_nick("bo\u{202e}b").unwrap_err().to_string().contains('\u{202e}'), "never printed itself");
    assert_eq!(InvalidNick::Length.to_string(), "a nickname is 1–32 characters, not only spaces");
    for fine in ["Alice W", "Zoë 🌸", "bob-the_builder", "Al: home", "bob's {work}", "日本語"] {
        assert_eq!(check_nick(fine), Ok(()), "{fine}");
    }
}

#[test]
fn one_user_on_two_peers_is_listed_once() {
    let now = Instant::now();
    let mut r = Roster::new();
    r.announce(b"a", user("alice", "A"), 1, 1, now);
    r.announce(b"b", user("alice", "A"), 1, 1, now);
    assert_eq!(r.online().len(), 1);
    assert_eq!(r.user_on(b"b"), Some(&user("alice", "A")));
}

mod engine {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use libp2p::PeerId;
    use proptest::prelude::*;

    use crate::cert::{Authority, CertBody};
    use crate::presence::engine::{
        ANNOUNCE_EVERY, ANNOUNCEMENTS_BURST, CHANGE_EVERY, CHANGES_BURST, Heard, Input, MAX_UNVERIFIED,
        NEWCOMER_ANNOUNCE_BURST, NEWCOMER_ANNOUNCE_EVERY, Now, Output, PRESENCE_FRESH, PRESENCE_TIMEOUT,
        PresenceEngine, Verdict,
    };
    use crate::presence::{OnlineUser, RosterChange};
    use crate::protocol::presence::{Presence, PresenceState};
    use crate::testing::account_of;

    /// This node's wall clock in these tests, in milliseconds: the small announcement numbers
    /// most tests use are recent by it.
    const CLOCK_MS: u64 = 1_000;

    /// `at` on the monotonic clock, [`CLOCK_MS`] on the wall clock.
    fn at(at: Instant) -> Now {
        Now { at, ms: CLOCK_MS }
    }

    fn holder(name: &str, peer: &PeerId, serial: u64) -> CertBody {
        Authority::from_secret(&[1; 32]).issue(account_of(name), name, &peer.to_bytes(), 1, serial).body
    }

    fn presence(name: &str, peer: &PeerId, seq: u64) -> Presence {
        Presence {
            certificate: Authority::from_secret(&[1; 32]).issue(account_of(name), name, &peer.to_bytes(), 1, 1),
            nick: name.to_uppercase(),
            state: PresenceState::Online,
            seq,
            rooms: Vec::new(),
        }
    }

    fn heard(name: &str, nick: &str, peer: PeerId, seq: u64, state: PresenceState) -> Heard {
        Heard { peer, holder: holder(name, &peer, 1), nick: nick.into(), state, seq, rooms: Vec::new() }
    }

    fn online(name: &str, nick: &str) -> OnlineUser {
        OnlineUser { account: account_of(name), username: name.into(), nick: nick.into() }
    }

    #[test]
    fn newcomers_are_told_at_once_then_not_more_than_once_a_second() {
        let mut engine = PresenceEngine::new(PeerId::random());
        let start = Instant::now();
        let publish = vec![Output::Publish(PresenceState::Online)];
        for n in 0..NEWCOMER_ANNOUNCE_BURST {
            let now = at(start + Duration::from_millis(u64::from(n)));
            assert_eq!(engine.handle(Input::Newcomer, now), publish, "newcomer {n} is told at once");
        }
        // A peer subscribing again and again: nobody is told again within the second.
        let mut published = 0;
        for ms in 10..990 {
            let now = at(start + Duration::from_millis(ms));
            published += engine.handle(Input::Newcomer, now).len();
            published += engine.handle(Input::Due, now).len();
        }
        assert_eq!(published, 0);
        // When the next is due those newcomers are told, once.
        let later = at(start + NEWCOMER_ANNOUNCE_EVERY + Duration::from_millis(10));
        assert_eq!(engine.handle(Input::Due, later), publish);
        assert!(engine.handle(Input::Due, at(start + 3 * NEWCOMER_ANNOUNCE_EVERY)).is_empty(), "nobody owed");
        // A newcomer after a quiet while is told at once again.
        let quiet = start + 20 * NEWCOMER_ANNOUNCE_EVERY;
        assert_eq!(engine.handle(Input::Newcomer, at(quiet)), publish);
        // The heartbeat tells everyone: a newcomer owed is owed no more.
        for _ in 0..NEWCOMER_ANNOUNCE_BURST {
            engine.handle(Input::Newcomer, at(quiet));
        }
        assert!(engine.handle(Input::Newcomer, at(quiet)).is_empty(), "the burst is spent");
        assert_eq!(engine.handle(Input::Tick, at(quiet)).first(), Some(&Output::Publish(PresenceState::Online)));
        assert!(engine.handle(Input::Due, at(quiet + 2 * NEWCOMER_ANNOUNCE_EVERY)).is_empty());
    }

    /// What would be ignored once opened is not worth opening, and looking counts nothing.
    #[test]
    fn announcements_that_would_be_ignored_are_not_worth_opening() {
        let local = PeerId::random();
        let peer = PeerId::random();
        let mut engine = PresenceEngine::new(local);
        let now = Instant::now();
        assert!(!engine.worth_opening(&local, CLOCK_MS, at(now)), "this node's own");
        let fresh_for = u64::try_from(PRESENCE_FRESH.as_millis()).unwrap();
        let long_after = Now { at: now, ms: CLOCK_MS + fresh_for + 1 };
        assert!(!engine.worth_opening(&peer, CLOCK_MS, long_after), "an old one");
        assert!(!engine.worth_opening(&peer, u64::MAX, at(now)), "one from the future");
        for _ in 0..10 * ANNOUNCEMENTS_BURST {
            assert!(engine.worth_opening(&peer, CLOCK_MS, at(now)), "looking counts nothing");
        }
        for seq in 0..u64::from(ANNOUNCEMENTS_BURST) {
            let input = Input::Opened { peer, presence: presence("alice", &peer, seq + 1), key_trusted: true };
            assert!(matches!(engine.handle(input, at(now)).as_slice(), [Output::Check { .. }]));
        }
        assert!(!engine.worth_opening(&peer, CLOCK_MS, at(now)), "over the rate");
        assert!(engine.worth_opening(&peer, CLOCK_MS, at(now + ANNOUNCE_EVERY)), "a token back");
        assert!(engine.worth_opening(&PeerId::random(), CLOCK_MS, at(now)), "another peer");
    }

    #[test]
    fn its_own_announcements_heard_back_are_ignored() {
        let local = PeerId::random();
        let mut engine = PresenceEngine::new(local);
        let now = Instant::now();
        for key_trusted in [true, false] {
            let input = Input::Opened { peer: local, presence: presence("me", &local, 9), key_trusted };
            assert_eq!(engine.handle(input, at(now)), vec![Output::Verdict(Verdict::Ignore)]);
        }
        assert_eq!(engine.held(), 0);
    }

    #[test]
    fn announcements_are_checked_at_once_when_a_key_is_trusted() {
        let mut engine = PresenceEngine::new(PeerId::random());
        let peer = PeerId::random();
        let input = Input::Opened { peer, presence: presence("alice", &peer, 3), key_trusted: true };
        assert_eq!(
            engine.handle(input, at(Instant::now())),
            vec![Output::Check { peer, presence: presence("alice", &peer, 3), held: false }]
        );
    }

    #[test]
    fn announcements_wait_for_a_trusted_key_the_newest_of_each_peer() {
        let mut engine = PresenceEngine::new(PeerId::random());
        let now = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        for (peer, name, seq) in [(a, "alice", 5), (a, "alice", 4), (b, "bob", 2), (a, "alice", 6)] {
            let input = Input::Opened { peer, presence: presence(name, &peer, seq), key_trusted: false };
            assert_eq!(
                engine.handle(input, at(now)),
                vec![Output::Verdict(Verdict::Ignore)],
                "neither shown nor passed on"
            );
        }
        assert_eq!(engine.held(), 2);
        assert_eq!(
            engine.handle(Input::KeyTrusted, at(now)),
            vec![
                Output::Check { peer: b, presence: presence("bob", &b, 2), held: true },
                Output::Check { peer: a, presence: presence("alice", &a, 6), held: true },
            ]
        );
        assert_eq!(engine.held(), 0);
        assert!(engine.handle(Input::KeyTrusted, at(now)).is_empty());
    }

    #[test]
    fn at_most_so_many_peers_announcements_wait() {
        let mut engine = PresenceEngine::new(PeerId::random());
        let now = Instant::now();
        for seq in 0..MAX_UNVERIFIED as u64 + 5 {
            let peer = PeerId::random();
            engine.handle(Input::Opened { peer, presence: presence("x", &peer, seq), key_trusted: false }, at(now));
        }
        assert_eq!(engine.held(), MAX_UNVERIFIED);
    }

    #[test]
    fn an_arrival_is_learnt_shown_then_its_rooms_and_outbox_follow() {
        let mut engine = PresenceEngine::new(PeerId::random());
        let now = Instant::now();
        let peer = PeerId::random();
        let mut input = heard("alice", "Al", peer, 7, PresenceState::Online);
        input.rooms = vec![crate::protocol::presence::RoomRef {
            id: crate::room::EventId::from_bytes([3; 32]),
            name: "lobby".into(),
            creator: account_of("alice"),
        }];
        let rooms = input.rooms.clone();
        assert_eq!(
            engine.handle(Input::Checked(input.clone()), at(now)),
            vec![
                Output::Learn(holder("alice", &peer, 1)),
                Output::Show(RosterChange::Arrived(online("alice", "Al"))),
                Output::PeerRooms { peer, rooms },
                Output::AccountOnline(account_of("alice")),
                Output::Verdict(Verdict::Accept),
            ]
        );
        assert_eq!(engine.roster().user_on(&peer.to_bytes()), Some(&online("alice", "Al")));
        // The same again: a replay, ignored, its rooms not taken.
        assert_eq!(engine.handle(Input::Checked(input), at(now)), vec![Output::Verdict(Verdict::Ignore)]);
        // Nothing new said: learnt and passed on, nothing shown.
        assert_eq!(
            engine.handle(Input::Checked(heard("alice", "Al", peer, 8, PresenceState::Online)), at(now)),
            vec![
                Output::Learn(holder("alice", &peer, 1)),
                Output::PeerRooms { peer, rooms: Vec::new() },
                Output::AccountOnline(account_of("alice")),
                Output::Verdict(Verdict::Accept),
            ]
        );
    }

    #[test]
    fn a_bad_nickname_is_refused() {
        let mut engine = PresenceEngine::new(PeerId::random());
        let peer = PeerId::random();
        let input = Input::Checked(heard("alice", "evil\x1b[2J", peer, 1, PresenceState::Online));
        assert_eq!(engine.handle(input, at(Instant::now())), vec![Output::Verdict(Verdict::Reject)]);
        assert!(engine.roster().online().is_empty());
    }

    #[test]
    fn an_announced_nickname_that_imitates_the_message_frame_is_refused() {
        let mut engine = PresenceEngine::new(PeerId::random());
        let peer = PeerId::random();
        for (seq, nick) in [(1, "bob> see evil.example"), (2, "bob\u{202e}"), (3, " bob")] {
            let input = Input::Checked(heard("mallory", nick, peer, seq, PresenceState::Online));
            assert_eq!(engine.handle(input, at(Instant::now())), vec![Output::Verdict(Verdict::Reject)], "{nick:?}");
        }
        assert!(engine.roster().online().is_empty(), "never shown");
    }

    #[test]
    fn a_replayed_old_announcement_never_shows_a_ghost_to_a_node_that_never_heard_that_peer() {
        let fresh_ms = u64::try_from(PRESENCE_FRESH.as_millis()).unwrap();
        let clock = 1_800_000_000_000;
        let now = Now { at: Instant::now(), ms: clock };
        let peer = PeerId::random();
        // Captured an hour ago, sent again now, to a node with no mark for that peer.
        for seq in [clock - 3_600_000, clock - fresh_ms - 1, clock + fresh_ms + 1, 0, u64::MAX] {
            let mut engine = PresenceEngine::new(PeerId::random());
            let checked = Input::Checked(heard("alice", "Al", peer, seq, PresenceState::Online));
            assert_eq!(engine.handle(checked, now), vec![Output::Verdict(Verdict::Ignore)], "{seq}");
            assert!(engine.roster().online().is_empty(), "nobody shown for {seq}");
            for key_trusted in [true, false] {
                let opened = Input::Opened { peer, presence: presence("alice", &peer, seq), key_trusted };
                assert_eq!(engine.handle(opened, now), vec![Output::Verdict(Verdict::Ignore)], "{seq}");
            }
            assert_eq!(engine.held(), 0, "not even held");
        }
        // Within the allowance either way (a clock a little off), it is taken in.
        for seq in [clock - fresh_ms, clock + fresh_ms] {
            let mut engine = PresenceEngine::new(PeerId::random());
            let out = engine.handle(Input::Checked(heard("alice", "Al", peer, seq, PresenceState::Online)), now);
            assert!(out.contains(&Output::Show(RosterChange::Arrived(online("alice", "Al")))), "{seq}: {out:?}");
        }
    }

    #[test]
    fn an_announcement_held_for_a_key_too_long_is_not_taken_in() {
        let mut engine = PresenceEngine::new(PeerId::random());
        let clock = 1_800_000_000_000;
        let start = Instant::now();
        let peer = PeerId::random();
        let opened = Input::Opened { peer, presence: presence("alice", &peer, clock), key_trusted: false };
        engine.handle(opened, Now { at: start, ms: clock });
        let later =
            Now { at: start + PRESENCE_FRESH * 2, ms: clock + 2 * u64::try_from(PRESENCE_FRESH.as_millis()).unwrap() };
        let checks = engine.handle(Input::KeyTrusted, later);
        assert_eq!(checks, vec![Output::Check { peer, presence: presence("alice", &peer, clock), held: true }]);
        let checked = Input::Checked(heard("alice", "Al", peer, clock, PresenceState::Online));
        assert_eq!(engine.handle(checked, later), vec![Output::Verdict(Verdict::Ignore)]);
        assert!(engine.roster().online().is_empty());
    }

    proptest! {
        /// Whatever the announcement's number and this node's clock, it is taken in exactly when
        /// the two are within the allowance, and nothing overflows.
        #[test]
        fn only_announcements_recent_by_this_nodes_clock_are_taken_in(seq in any::<u64>(), clock in any::<u64>(), near in any::<bool>(), offset in 0..=2 * PRESENCE_FRESH.as_millis() as u64) {
            let (seq, clock) = if near { (clock.saturating_add(offset).saturating_sub(PRESENCE_FRESH.as_millis() as u64), clock) } else { (seq, clock) };
            let mut engine = PresenceEngine::new(PeerId::random());
            let peer = PeerId::random();
            let out = engine.handle(Input::Checked(heard("alice", "Al", peer, seq, PresenceState::Online)), Now { at: Instant::now(), ms: clock });
            let recent = seq.abs_diff(clock) <= PRESENCE_FRESH.as_millis() as u64;
            prop_assert_eq!(out.last() == Some(&Output::Verdict(Verdict::Accept)), recent);
            prop_assert_eq!(engine.roster().online().len(), usize::from(recent));
        }
    }

    #[test]
    fn a_logout_is_shown_and_drops_the_peers_rooms() {
        let mut engine = PresenceEngine::new(PeerId::random());
        let now = Instant::now();
        let peer = PeerId::random();
        engine.handle(Input::Checked(heard("bob", "B", peer, 1, PresenceState::Online)), at(now));
        assert_eq!(
            engine.handle(Input::Checked(heard("bob", "B", peer, 2, PresenceState::Offline)), at(now)),
            vec![
                Output::Learn(holder("bob", &peer, 1)),
                Output::Show(RosterChange::Left(online("bob", "B"))),
                Output::PeerRoomsGone(peer),
                Output::Verdict(Verdict::Accept),
            ]
        );
        assert!(engine.roster().online().is_empty());
    }

    #[test]
    fn a_tick_announces_and_forgets_the_silent_with_their_rooms() {
        let mut engine = PresenceEngine::new(PeerId::random());
        let now = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        engine.handle(Input::Checked(heard("alice", "A", a, 1, PresenceState::Online)), at(now));
        engine
            .handle(Input::Checked(heard("bob", "B", b, 1, PresenceState::Online)), at(now + Duration::from_secs(20)));
        assert_eq!(
            engine.handle(Input::Tick, at(now + PRESENCE_TIMEOUT)),
            vec![Output::Publish(PresenceState::Online)]
        );
        assert_eq!(
            engine.handle(Input::Tick, at(now + PRESENCE_TIMEOUT + Duration::from_secs(1))),
            vec![
                Output::Publish(PresenceState::Online),
                Output::PeerRoomsGone(a),
                Output::Show(RosterChange::Left(online("alice", "A")))
            ]
        );
        assert_eq!(engine.roster().online(), vec![online("bob", "B")]);
    }

    #[test]
    fn a_peer_gone_has_no_rooms_and_its_user_is_offline() {
        let mut engine = PresenceEngine::new(PeerId::random());
        let now = Instant::now();
        let peer = PeerId::random();
        engine.handle(Input::Checked(heard("carol", "C", peer, 1, PresenceState::Online)), at(now));
        assert_eq!(
            engine.handle(Input::PeerGone(peer), at(now)),
            vec![Output::PeerRoomsGone(peer), Output::Show(RosterChange::Left(online("carol", "C")))]
        );
        assert_eq!(engine.handle(Input::PeerGone(peer), at(now)), vec![Output::PeerRoomsGone(peer)]);
    }

    #[test]
    fn this_users_changes_are_published() {
        let mut engine = PresenceEngine::new(PeerId::random());
        let now = Instant::now();
        for state in [PresenceState::Online, PresenceState::Offline] {
            assert_eq!(engine.handle(Input::Changed(state), at(now)), vec![Output::Publish(state)]);
        }
    }

    #[test]
    fn a_peer_flapping_between_online_and_offline_is_not_shown_doing_it() {
        let mut engine = PresenceEngine::new(PeerId::random());
        let (mallory, alice) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        let shows = |out: &[Output]| out.iter().filter(|o| matches!(o, Output::Show(_))).count();
        let mut shown = 0;
        for seq in 1..=100 {
            let state = if seq % 2 == 1 { PresenceState::Online } else { PresenceState::Offline };
            let coming = state == PresenceState::Online;
            let out = engine.handle(Input::Checked(heard("mallory", "M", mallory, seq, state)), at(now));
            if shows(&out) == 0 && coming {
                // (Going offline while shown offline changes nothing, and is taken.)
                assert_eq!(out, vec![Output::Verdict(Verdict::Ignore)], "neither taken nor passed on");
            }
            shown += shows(&out);
        }
        assert_eq!(shown, CHANGES_BURST as usize);
        assert!(engine.roster().user_on(&mallory.to_bytes()).is_none(), "offline, as the last change taken said");
        // Coming back under ever new nicknames, the same.
        for seq in 101..=120 {
            let nick = format!("M{seq}");
            let out =
                engine.handle(Input::Checked(heard("mallory", &nick, mallory, seq, PresenceState::Online)), at(now));
            assert_eq!(out, vec![Output::Verdict(Verdict::Ignore)]);
        }
        // Another peer is not held back.
        let out = engine.handle(Input::Checked(heard("alice", "A", alice, 1, PresenceState::Online)), at(now));
        assert!(out.contains(&Output::Show(RosterChange::Arrived(online("alice", "A")))), "{out:?}");
        // Later, one more change is taken; the same state again always is.
        let later = now + CHANGE_EVERY;
        let out = engine.handle(Input::Checked(heard("mallory", "M", mallory, 121, PresenceState::Online)), at(later));
        assert!(out.contains(&Output::Show(RosterChange::Arrived(online("mallory", "M")))), "{out:?}");
        let out = engine.handle(Input::Checked(heard("mallory", "M", mallory, 122, PresenceState::Online)), at(later));
        assert_eq!(out.last(), Some(&Output::Verdict(Verdict::Accept)), "{out:?}");
        let out = engine.handle(Input::Checked(heard("mallory", "M", mallory, 123, PresenceState::Offline)), at(later));
        assert_eq!(out, vec![Output::Verdict(Verdict::Ignore)]);
    }

    #[test]
    fn a_peer_naming_ever_other_rooms_is_held_to_the_limit_of_changes() {
        let mut engine = PresenceEngine::new(PeerId::random());
        let (mallory, alice) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        let room = |n: u8| crate::protocol::presence::RoomRef {
            id: crate::room::EventId::from_bytes([n; 32]),
            name: format!("room{n}"),
            creator: account_of("mallory"),
        };
        let naming = |peer: PeerId, seq: u64, rooms: Vec<crate::protocol::presence::RoomRef>| {
            let mut heard = heard("mallory", "M", peer, seq, PresenceState::Online);
            heard.rooms = rooms;
            Input::Checked(heard)
        };
        let handed_on = |out: &[Output]| out.iter().any(|o| matches!(o, Output::PeerRooms { .. }));
        // Arriving is the first change; then each announcement names another room.
        let mut taken = 0;
        for seq in 1..=100u64 {
            let out = engine.handle(naming(mallory, seq, vec![room(seq as u8)]), at(now));
            if handed_on(&out) {
                taken += 1;
            } else {
                assert_eq!(out, vec![Output::Verdict(Verdict::Ignore)], "neither taken nor passed on");
            }
        }
        assert_eq!(taken, CHANGES_BURST);
        // Naming the rooms of the last announcement taken changes nothing, and is taken.
        let last = vec![room(CHANGES_BURST as u8)];
        let out = engine.handle(naming(mallory, 101, last.clone()), at(now));
        assert!(out.contains(&Output::PeerRooms { peer: mallory, rooms: last }), "{out:?}");
        // Another peer is not held back; and later, one more change is taken.
        assert!(handed_on(&engine.handle(naming(alice, 1, vec![room(1)]), at(now))));
        let out = engine.handle(naming(mallory, 102, vec![room(200)]), at(now + CHANGE_EVERY));
        assert!(out.contains(&Output::PeerRooms { peer: mallory, rooms: vec![room(200)] }), "{out:?}");
    }

    #[test]
    fn the_rooms_of_peers_gone_silent_or_offline_are_forgotten() {
        let mut engine = PresenceEngine::new(PeerId::random());
        let now = Instant::now();
        let (alice, bob, carol) = (PeerId::random(), PeerId::random(), PeerId::random());
        for (peer, name) in [(alice, "alice"), (bob, "bob"), (carol, "carol")] {
            engine.handle(Input::Checked(heard(name, "N", peer, 1, PresenceState::Online)), at(now));
        }
        assert_eq!(engine.roster().rooms_named(), 3);
        engine.handle(Input::Checked(heard("alice", "N", alice, 2, PresenceState::Offline)), at(now));
        engine.handle(Input::PeerGone(bob), at(now));
        assert_eq!(engine.roster().rooms_named(), 1);
        // Carol, heard through others only (no connection here to close), falls silent.
        engine.handle(Input::Tick, at(now + PRESENCE_TIMEOUT + Duration::from_secs(1)));
        assert_eq!(engine.roster().rooms_named(), 0);
    }

    #[test]
    fn a_peer_announcing_without_pause_is_neither_checked_nor_passed_on() {
        let mut engine = PresenceEngine::new(PeerId::random());
        let (mallory, alice) = (PeerId::random(), PeerId::random());
        let now = Instant::now();
        let opened = |peer: PeerId, name: &str, seq: u64| Input::Opened {
            peer,
            presence: presence(name, &peer, seq),
            key_trusted: true,
        };
        let checked = |out: &[Output]| matches!(out, [Output::Check { .. }]);
        let mut taken = 0;
        for seq in 1..=1_000 {
            let out = engine.handle(opened(mallory, "mallory", seq), at(now));
            if checked(&out) {
                taken += 1;
            } else {
                assert_eq!(out, vec![Output::Verdict(Verdict::Ignore)]);
            }
        }
        assert_eq!(taken, ANNOUNCEMENTS_BURST);
        // Another peer is not held back; and later, mallory's next one is checked again.
        assert!(checked(&engine.handle(opened(alice, "alice", 1), at(now))));
        assert!(checked(&engine.handle(opened(mallory, "mallory", 1_001), at(now + ANNOUNCE_EVERY))));
        assert_eq!(
            engine.handle(opened(mallory, "mallory", 1_002), at(now + ANNOUNCE_EVERY)),
            vec![Output::Verdict(Verdict::Ignore)]
        );
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// Peer `0` announces with number `1`, online or not, under nickname `3`.
        Announce(usize, u64, bool, usize),
        /// The last connection to peer `0` closed.
        Gone(usize),
    }

    fn any_step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0..3usize, 1..12u64, any::<bool>(), 0..3usize).prop_map(|(p, s, on, n)| Step::Announce(p, s, on, n)),
            1 => (0..3usize).prop_map(Step::Gone),
        ]
    }

    proptest! {
        /// Whatever the order of announcements, replays and disconnections, the roster holds
        /// each peer's newest announcement (unless that peer went away after it), and an
        /// announcement not newer than one taken in changes nothing: a replay never brings
        /// anyone back.
        #[test]
        fn the_roster_is_the_newest_announcement_of_each_peer(steps in prop::collection::vec(any_step(), 0..40)) {
            let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
            let names = ["ann", "ben", "cat"];
            let nicks = ["x", "y", "z"];
            let mut engine = PresenceEngine::new(PeerId::random());
            let mut now = Instant::now();
            let mut newest: HashMap<usize, u64> = HashMap::new();
            let mut model: HashMap<usize, OnlineUser> = HashMap::new();
            for step in steps {
                // At the pace changes are taken at: the limit is tested on its own.
                now += CHANGE_EVERY;
                match step {
                    Step::Announce(p, seq, on, n) => {
                        let state = if on { PresenceState::Online } else { PresenceState::Offline };
                        let before = engine.roster().online();
                        let outputs = engine.handle(Input::Checked(heard(names[p], nicks[n], peers[p], seq, state)), at(now));
                        if newest.get(&p).is_some_and(|&last| seq <= last) {
                            prop_assert_eq!(outputs, vec![Output::Verdict(Verdict::Ignore)]);
                            prop_assert_eq!(engine.roster().online(), before);
                            continue;
                        }
                        prop_assert_eq!(outputs.last(), Some(&Output::Verdict(Verdict::Accept)));
                        newest.insert(p, seq);
                        if on {
                            model.insert(p, online(names[p], nicks[n]));
                        } else {
                            model.remove(&p);
                        }
                    }
                    Step::Gone(p) => {
                        engine.handle(Input::PeerGone(peers[p]), at(now));
                        model.remove(&p);
                    }
                }
            }
            for (p, peer) in peers.iter().enumerate() {
                prop_assert_eq!(engine.roster().user_on(&peer.to_bytes()), model.get(&p));
            }
        }
    }
}
