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

/// The state after `events` (author, action), each applied or refused in turn.
fn fold(events: &[(&str, Action)]) -> RoomState {
    let mut state = RoomState::default();
    for (author, action) in events {
        let _ = state.apply_action(&u(author), action);
    }
    state
}

/// Whether `author` may do `action` in `state`.
fn check(state: &RoomState, author: &str, action: Action) -> Result<(), Refusal> {
    state.clone().apply_action(&u(author), &action).map(|_| ())
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
    let state = fold(&[("alice", Action::Create), ("bob", Action::Join), ("carol", Action::Join)]);
    assert_eq!(users(&state), named(&[("alice", true), ("bob", false), ("carol", false)]));
}

#[test]
fn only_admins_kick_and_admins_cannot_be_kicked() {
    let mut state = fold(&[("alice", Action::Create), ("bob", Action::Join), ("carol", Action::Join)]);
    assert_eq!(check(&state, "bob", Action::Kick(u("carol"))), Err(Refusal::NotAdmin(u("bob"))));
    assert!(state.is_member(&u("carol")));
    let effects = state.apply_action(&u("alice"), &Action::Op(u("bob"))).unwrap();
    assert_eq!(effects, vec![Effect::Admin { user: u("bob"), by: Some(u("alice")) }]);
    assert_eq!(check(&state, "bob", Action::Kick(u("alice"))), Err(Refusal::TargetIsAdmin(u("alice"))));
    let effects = state.apply_action(&u("bob"), &Action::Kick(u("carol"))).unwrap();
    assert_eq!(effects, vec![Effect::Kicked { user: u("carol"), by: u("bob") }]);
    // A kicked member may join again.
    assert!(check(&state, "carol", Action::Join).is_ok());
}

#[test]
fn a_ban_keeps_the_user_out_until_unbanned() {
    let mut state = fold(&[("alice", Action::Create), ("mallory", Action::Join), ("alice", Action::Ban(u("mallory")))]);
    assert!(!state.is_member(&u("mallory")));
    assert_eq!(check(&state, "mallory", Action::Join), Err(Refusal::Banned(u("mallory"))));
    state.apply_action(&u("alice"), &Action::Unban(u("mallory"))).unwrap();
    assert!(check(&state, "mallory", Action::Join).is_ok());
}

#[test]
fn the_oldest_member_succeeds_the_last_admin() {
    let mut state = fold(&[("alice", Action::Create), ("bob", Action::Join), ("carol", Action::Join)]);
    let effects = state.apply_action(&u("alice"), &Action::Leave).unwrap();
    assert_eq!(effects, vec![Effect::Left { user: u("alice") }, Effect::Admin { user: u("bob"), by: None }]);
    assert_eq!(users(&state), named(&[("bob", true), ("carol", false)]));
}

#[test]
fn an_emptied_room_disappears() {
    let mut state = fold(&[("alice", Action::Create)]);
    assert_eq!(
        state.apply_action(&u("alice"), &Action::Leave).unwrap(),
        vec![Effect::Left { user: u("alice") }, Effect::Emptied]
    );
    assert!(!state.exists());
    assert_eq!(check(&state, "bob", Action::Join), Err(Refusal::NoSuchRoom));
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

fn arb_events() -> impl Strategy<Value = Vec<(&'static str, Action)>> {
    prop::collection::vec((prop::sample::select(USERS), arb_action()), 0..40)
}

proptest! {
    #[test]
    fn the_state_keeps_its_invariants(events in arb_events()) {
        let state = fold(&events);
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
    fn a_refused_action_changes_nothing(events in arb_events(), author in prop::sample::select(USERS), action in arb_action()) {
        let state = fold(&events);
        let mut after = state.clone();
        if after.apply_action(&u(author), &action).is_err() {
            prop_assert_eq!(after, state);
        }
    }
}
