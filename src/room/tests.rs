//! Unit and property tests of the room state.

use proptest::prelude::*;

use super::*;
use crate::account::AccountId;

/// The account id of test user `name` (its name's bytes, padded).
fn u(name: &str) -> AccountId {
    let mut bytes = [0u8; 16];
    bytes[..name.len()].copy_from_slice(name.as_bytes());
    AccountId::from_bytes(bytes)
}

/// The name of a test user's account id.
fn name(id: &AccountId) -> String {
    String::from_utf8_lossy(id.as_bytes()).trim_end_matches('\0').to_string()
}

fn ev(id: &str, lamport: u64, author: &str, action: Action) -> RoomEvent {
    RoomEvent { id: id.into(), lamport, author: u(author), action }
}

fn users(state: &RoomState) -> Vec<(String, bool)> {
    state.members().iter().map(|m| (name(&m.user), m.admin)).collect()
}

/// Pairs of names and admin flags, as [`users`] gives them.
fn named(pairs: &[(&str, bool)]) -> Vec<(String, bool)> {
    pairs.iter().map(|(n, a)| (n.to_string(), *a)).collect()
}

#[test]
fn the_creator_is_admin_and_members_keep_join_order() {
    let log = RoomLog::from_events([
        ev("1", 1, "alice", Action::Create),
        ev("2", 2, "bob", Action::Join),
        ev("3", 3, "carol", Action::Join),
    ]);
    assert_eq!(users(log.state()), named(&[("alice", true), ("bob", false), ("carol", false)]));
}

#[test]
fn only_admins_kick_and_admins_cannot_be_kicked() {
    let mut log = RoomLog::from_events([
        ev("1", 1, "alice", Action::Create),
        ev("2", 2, "bob", Action::Join),
        ev("3", 3, "carol", Action::Join),
    ]);
    assert_eq!(log.state().check(&ev("x", 4, "bob", Action::Kick(u("carol")))), Err(Refusal::NotAdmin(u("bob"))));
    assert!(log.insert(ev("4", 4, "bob", Action::Kick(u("carol")))).is_empty());
    assert!(log.state().is_member(&u("carol")));
    let effects = log.insert(ev("5", 5, "alice", Action::Op(u("bob"))));
    assert_eq!(effects, vec![Effect::Admin { user: u("bob"), by: Some(u("alice")) }]);
    assert_eq!(
        log.state().check(&ev("y", 6, "bob", Action::Kick(u("alice")))),
        Err(Refusal::TargetIsAdmin(u("alice")))
    );
    let effects = log.insert(ev("6", 6, "bob", Action::Kick(u("carol"))));
    assert_eq!(effects, vec![Effect::Kicked { user: u("carol"), by: u("bob") }]);
    // A kicked member may join again.
    assert!(log.state().check(&ev("z", 7, "carol", Action::Join)).is_ok());
}

#[test]
fn a_ban_keeps_the_user_out_until_unbanned() {
    let mut log = RoomLog::from_events([
        ev("1", 1, "alice", Action::Create),
        ev("2", 2, "mallory", Action::Join),
        ev("3", 3, "alice", Action::Ban(u("mallory"))),
    ]);
    assert!(!log.state().is_member(&u("mallory")));
    assert_eq!(log.state().check(&ev("4", 4, "mallory", Action::Join)), Err(Refusal::Banned(u("mallory"))));
    log.insert(ev("5", 5, "alice", Action::Unban(u("mallory"))));
    assert!(log.state().check(&ev("6", 6, "mallory", Action::Join)).is_ok());
}

#[test]
fn the_oldest_member_succeeds_the_last_admin() {
    let mut log = RoomLog::from_events([
        ev("1", 1, "alice", Action::Create),
        ev("2", 2, "bob", Action::Join),
        ev("3", 3, "carol", Action::Join),
    ]);
    let effects = log.insert(ev("4", 4, "alice", Action::Leave));
    assert_eq!(effects, vec![Effect::Left { user: u("alice") }, Effect::Admin { user: u("bob"), by: None }]);
    assert_eq!(users(log.state()), named(&[("bob", true), ("carol", false)]));
}

#[test]
fn an_emptied_room_disappears_and_can_be_created_again() {
    let mut log = RoomLog::from_events([ev("1", 1, "alice", Action::Create)]);
    assert_eq!(
        log.insert(ev("2", 2, "alice", Action::Leave)),
        vec![Effect::Left { user: u("alice") }, Effect::Emptied]
    );
    assert!(!log.state().exists());
    assert_eq!(log.state().check(&ev("3", 3, "bob", Action::Join)), Err(Refusal::NoSuchRoom));
    log.insert(ev("4", 4, "bob", Action::Create));
    assert_eq!(users(log.state()), named(&[("bob", true)]));
}

#[test]
fn a_late_event_refolds_and_reports_the_difference() {
    let mut log = RoomLog::from_events([ev("1", 1, "alice", Action::Create), ev("3", 5, "carol", Action::Join)]);
    let effects = log.insert(ev("2", 3, "bob", Action::Join));
    assert_eq!(effects, vec![Effect::Joined { user: u("bob") }]);
    assert_eq!(users(log.state()), named(&[("alice", true), ("bob", false), ("carol", false)]));
    assert!(log.insert(ev("2", 3, "bob", Action::Join)).is_empty(), "a known id changes nothing");
}

#[test]
fn concurrent_events_from_two_partitions_converge() {
    // Both sides of a partition act on the same room at the same Lamport times.
    let base =
        [ev("a1", 1, "alice", Action::Create), ev("a2", 2, "bob", Action::Join), ev("a3", 3, "carol", Action::Join)];
    let left = [ev("l1", 4, "alice", Action::Kick(u("carol"))), ev("l2", 5, "alice", Action::Op(u("bob")))];
    let right =
        [ev("r1", 4, "carol", Action::Leave), ev("r2", 4, "bob", Action::Leave), ev("r3", 5, "dave", Action::Join)];
    let mut one = RoomLog::from_events(base.iter().cloned().chain(left.iter().cloned()));
    let mut two = RoomLog::from_events(base.iter().cloned().chain(right.iter().cloned()));
    for e in &right {
        one.insert(e.clone());
    }
    for e in &left {
        two.insert(e.clone());
    }
    assert_eq!(one.state(), two.state());
    assert_eq!(one.events(), two.events());
}

#[test]
fn membership_at_a_point_in_time() {
    let log = RoomLog::from_events([
        ev("1", 1, "alice", Action::Create),
        ev("2", 2, "bob", Action::Join),
        ev("3", 5, "alice", Action::Kick(u("bob"))),
    ]);
    assert!(!log.member_at(&u("bob"), 2));
    assert!(log.member_at(&u("bob"), 3));
    assert!(log.member_at(&u("bob"), 5));
    assert!(!log.member_at(&u("bob"), 6));
}

#[test]
fn a_kicked_members_later_messages_are_refused() {
    let log = RoomLog::from_events([
        ev("1", 1, "alice", Action::Create),
        ev("2", 2, "bob", Action::Join),
        ev("3", 5, "alice", Action::Kick(u("bob"))),
    ]);
    // Written while a member, arriving by catch-up: kept.
    assert!(log.accepts_message(&u("bob"), 4, false));
    // Live, even with an old clock: refused, bob is not a member now.
    assert!(!log.accepts_message(&u("bob"), 4, true));
    assert!(!log.accepts_message(&u("bob"), 9, false));
    assert!(!log.accepts_message(&u("mallory"), 3, false));
    assert!(log.accepts_message(&u("alice"), 9, true));
}

#[test]
fn room_names_follow_the_rules() {
    assert_eq!(normalise_room_name("#Lobby"), "lobby");
    assert!(check_room_name("lobby").is_ok());
    assert!(check_room_name("a").is_ok());
    assert!(check_room_name(&"r".repeat(32)).is_ok());
    assert!(check_room_name("").is_err());
    assert!(check_room_name(&"r".repeat(33)).is_err());
    assert!(check_room_name("two words").is_err());
    assert!(check_room_name("caf\u{e9}").is_err());
}

const USERS: &[&str] = &["alice", "bob", "carol", "dave"];

fn arb_action() -> impl Strategy<Value = Action> {
    let user = prop::sample::select(USERS).prop_map(u);
    prop_oneof![
        Just(Action::Create),
        Just(Action::Join),
        Just(Action::Join),
        Just(Action::Leave),
        user.clone().prop_map(Action::Kick),
        user.clone().prop_map(Action::Ban),
        user.clone().prop_map(Action::Unban),
        user.prop_map(Action::Op),
    ]
}

fn arb_events() -> impl Strategy<Value = Vec<RoomEvent>> {
    prop::collection::vec((1u64..12, prop::sample::select(USERS), arb_action()), 0..40).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (lamport, author, action))| ev(&format!("e{i}"), lamport, author, action))
            .collect()
    })
}

proptest! {
    #[test]
    fn any_arrival_order_gives_the_same_state(events in arb_events(), seed in any::<u64>()) {
        let forward = RoomLog::from_events(events.clone());
        let mut shuffled = events.clone();
        // A deterministic shuffle from the seed.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut twice = shuffled.clone();
        twice.extend(shuffled.iter().cloned());
        let other = RoomLog::from_events(twice);
        prop_assert_eq!(forward.state(), other.state());
        prop_assert_eq!(forward.events(), other.events());
    }

    #[test]
    fn the_state_keeps_its_invariants(events in arb_events()) {
        let log = RoomLog::from_events(events);
        let state = log.state();
        let members = state.members();
        // No one twice, nobody banned is a member, an existing room has an admin, an empty
        // room does not exist.
        let mut names: Vec<AccountId> = members.iter().map(|m| m.user).collect();
        names.sort();
        names.dedup();
        prop_assert_eq!(names.len(), members.len());
        prop_assert!(members.iter().all(|m| !state.is_banned(&m.user)));
        prop_assert_eq!(state.exists(), !members.is_empty());
        if state.exists() {
            prop_assert!(members.iter().any(|m| m.admin));
        }
    }

    #[test]
    fn membership_at_any_time_is_that_of_the_events_before_it(events in arb_events(), lamport in 0u64..14) {
        let log = RoomLog::from_events(events);
        let before = RoomLog::from_events(log.events().iter().filter(|e| e.lamport < lamport).cloned());
        for user in USERS {
            prop_assert_eq!(log.member_at(&u(user), lamport), before.state().is_member(&u(user)));
        }
    }
}
