//! Unit tests of the room graph and its pending set, each rule by the behaviour it gives; the
//! property tests (`proptests.rs`): replicas acting concurrently and exchanging in any order.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::graph::Refusal as G;
use super::*;
use crate::account::AccountId;

/// The account id of test user `name` (its name's bytes, padded).
fn u(name: &str) -> AccountId {
    let mut bytes = [0u8; 16];
    bytes[..name.len()].copy_from_slice(name.as_bytes());
    AccountId::from_bytes(bytes)
}

/// The event id named `name` (its hash, so ids sort unlike their names).
fn id(name: &str) -> EventId {
    EventId::from_bytes(Sha256::digest(name.as_bytes()).into())
}

fn create(name: &str, author: &str) -> GraphEvent {
    GraphEvent { id: id(name), author: u(author), prev: Vec::new(), depth: 0, action: Action::Create }
}

/// An event citing `prev`, with the depth due.
fn on(graph: &RoomGraph, prev: &[EventId], name: &str, author: &str, action: Action) -> GraphEvent {
    let depth = graph.depth_for(prev).expect("known prevs");
    GraphEvent { id: id(name), author: u(author), prev: prev.to_vec(), depth, action }
}

/// An event citing the graph's heads, inserted; returns it.
fn add(graph: &mut RoomGraph, name: &str, author: &str, action: Action) -> GraphEvent {
    let event = on(graph, &graph.heads(), name, author, action);
    graph.insert(event.clone()).expect("accepted");
    event
}

/// A room "r" created by alice, which bob and carol joined.
fn room() -> RoomGraph {
    let mut graph = RoomGraph::new(id("r"));
    graph.insert(create("r", "alice")).expect("the create");
    add(&mut graph, "bob joins", "bob", Action::Join);
    add(&mut graph, "carol joins", "carol", Action::Join);
    graph
}

fn names(state: &RoomState) -> Vec<(AccountId, bool)> {
    state.members().iter().map(|m| (m.user, m.admin)).collect()
}

fn pending() -> Pending {
    Pending::new(1024, Duration::from_secs(60))
}

#[test]
fn the_create_event_is_the_room_and_its_author_is_admin() {
    let mut graph = RoomGraph::new(id("r"));
    let accepted = graph.insert(create("r", "alice")).unwrap();
    assert_eq!(accepted.effects, vec![Effect::Created { user: u("alice") }]);
    assert_eq!(graph.room(), id("r"));
    assert_eq!(graph.heads(), vec![id("r")]);
    assert_eq!(graph.depth_for(&[id("r")]), Ok(1));
    assert!(graph.state().is_admin(&u("alice")));
    assert_eq!(graph.insert(create("r", "alice")), Err(G::Known));
}

#[test]
fn a_second_create_is_refused() {
    let mut graph = room();
    // A namesake's create is another room: it cannot take this one over.
    assert_eq!(graph.insert(create("r2", "mallory")), Err(G::OtherCreate));
    // Nor can a create that cites events, nor one with a depth.
    let mut late = on(&graph, &graph.heads(), "r", "alice", Action::Create);
    assert_eq!(graph.insert(late.clone()), Err(G::Known), "the room's own id is known");
    late.id = id("late create");
    assert_eq!(graph.insert(late), Err(G::OtherCreate));
    assert_eq!(graph.len(), 3);
    assert!(graph.state().is_admin(&u("alice")));
}

#[test]
fn an_event_whose_ancestry_does_not_reach_the_create_is_never_accepted() {
    let mut graph = room();
    let mut other = RoomGraph::new(id("r2"));
    other.insert(create("r2", "mallory")).unwrap();
    let join = on(&other, &other.heads(), "mallory joins r2", "mallory", Action::Join);
    assert_eq!(graph.insert(join.clone()), Err(G::Missing(vec![id("r2")])));
    assert_eq!(graph.insert(create("r2", "mallory")), Err(G::OtherCreate));
    // Now what cites that create is refused at once.
    assert_eq!(graph.insert(join), Err(G::CitesRefused(id("r2"))));
    let mut empty = RoomGraph::new(id("r"));
    let orphan = GraphEvent { id: id("x"), author: u("bob"), prev: vec![], depth: 1, action: Action::Join };
    assert_eq!(empty.insert(orphan), Err(G::Malformed("cites no event")));
}

#[test]
fn an_event_claiming_another_depth_is_refused() {
    let mut graph = room();
    for claimed in [0, 1, 2, 4, 100] {
        let mut event = on(&graph, &graph.heads(), "dave joins", "dave", Action::Join);
        assert_eq!(event.depth, 3);
        event.depth = claimed;
        assert_eq!(graph.insert(event), Err(G::WrongDepth { claimed, expected: 3 }));
    }
    // The depth is that of the deepest cited event, not of the first.
    let event = on(&graph, &[id("r"), id("carol joins")], "dave joins", "dave", Action::Join);
    assert_eq!(event.depth, 3);
    assert!(graph.insert(event).is_ok());
}

#[test]
fn u64_max_depth_cannot_wrap_anything() {
    let mut graph = room();
    let mut event = on(&graph, &[id("r")], "far", "alice", Action::Kick(u("bob")));
    event.depth = u64::MAX;
    assert_eq!(graph.insert(event), Err(G::WrongDepth { claimed: u64::MAX, expected: 1 }));
    assert!(!graph.contains(&id("far")));
    assert!(graph.state().is_member(&u("bob")));
    let next = add(&mut graph, "dave joins", "dave", Action::Join);
    assert_eq!(next.depth, 3);
    assert_eq!(graph.heads(), vec![id("dave joins")]);
}

#[test]
fn malformed_prevs_are_refused() {
    let mut graph = room();
    let heads = graph.heads();
    let mut twice = on(&graph, &heads, "twice", "dave", Action::Join);
    twice.prev = vec![heads[0], heads[0]];
    assert_eq!(graph.insert(twice), Err(G::Malformed("cites an event twice")));
    let many: Vec<EventId> = (0..=MAX_PREV).map(|i| id(&format!("n{i}"))).collect();
    let wide = GraphEvent { id: id("wide"), author: u("dave"), prev: many.clone(), depth: 1, action: Action::Join };
    assert_eq!(graph.insert(wide), Err(G::Malformed("cites too many events")));
    assert_eq!(graph.depth_for(&many), Err(G::Malformed("cites too many events")));
    assert_eq!(graph.depth_for(&[]), Err(G::Malformed("cites no event")));
    let room_id = GraphEvent { id: id("r"), ..on(&graph, &heads, "x", "dave", Action::Join) };
    assert_eq!(graph.insert(room_id), Err(G::Known));
}

#[test]
fn a_non_members_control_event_is_refused_and_not_stored() {
    let mut graph = room();
    let heads = graph.heads();
    let kick = on(&graph, &heads, "mallory kicks", "mallory", Action::Kick(u("bob")));
    assert_eq!(graph.insert(kick), Err(G::NotAllowed(Refusal::NotAdmin(u("mallory")))));
    let leave = on(&graph, &heads, "mallory leaves", "mallory", Action::Leave);
    assert_eq!(graph.insert(leave), Err(G::NotAllowed(Refusal::NotMember(u("mallory")))));
    assert!(!graph.contains(&id("mallory kicks")));
    assert_eq!(graph.heads(), heads);
    assert_eq!(graph.len(), 3);
    // What cites a refused event is refused too, without waiting.
    let after = GraphEvent {
        id: id("after"),
        author: u("bob"),
        prev: vec![id("mallory kicks")],
        depth: 4,
        action: Action::Leave,
    };
    assert_eq!(graph.insert(after), Err(G::CitesRefused(id("mallory kicks"))));
}

#[test]
fn authority_is_checked_against_the_cited_state_not_the_current_one() {
    let mut graph = room();
    let before_op = graph.heads();
    add(&mut graph, "bob is op", "alice", Action::Op(u("bob")));
    // Bob is admin now, but not in the state this kick cites.
    let kick = on(&graph, &before_op, "bob kicks early", "bob", Action::Kick(u("carol")));
    assert_eq!(graph.insert(kick), Err(G::NotAllowed(Refusal::NotAdmin(u("bob")))));
    // Citing the op, it is allowed.
    let kick = on(&graph, &graph.heads(), "bob kicks", "bob", Action::Kick(u("carol")));
    assert_eq!(graph.insert(kick).unwrap().effects, vec![Effect::Kicked { user: u("carol"), by: u("bob") }]);
    // A concurrent kick of carol by alice is allowed where it cites, and changes nothing now.
    let twin = on(&graph, &[id("bob is op")], "alice kicks", "alice", Action::Kick(u("carol")));
    assert_eq!(graph.insert(twin).unwrap().effects, vec![]);
    assert_eq!(graph.heads().len(), 2);
    assert!(!graph.state().is_member(&u("carol")));
}

#[test]
fn a_banned_members_backdated_message_is_soft_failed() {
    let mut graph = room();
    add(&mut graph, "mallory joins", "mallory", Action::Join);
    let while_member = graph.heads();
    assert_eq!(graph.check_message(&u("mallory"), &while_member), MessageVerdict::Accepted);
    add(&mut graph, "ban", "alice", Action::Ban(u("mallory")));
    // Backdated: cites heads from before the ban.
    assert_eq!(graph.check_message(&u("mallory"), &while_member), MessageVerdict::SoftFailed);
    // Citing the ban: not a member there.
    assert_eq!(
        graph.check_message(&u("mallory"), &graph.heads()),
        MessageVerdict::Refused(G::NotAllowed(Refusal::NotMember(u("mallory"))))
    );
    assert_eq!(graph.check_message(&u("bob"), &while_member), MessageVerdict::Accepted);
    assert_eq!(
        graph.check_message(&u("bob"), &[id("r")]),
        MessageVerdict::Refused(G::NotAllowed(Refusal::NotMember(u("bob"))))
    );
    assert_eq!(graph.check_message(&u("bob"), &[id("nope")]), MessageVerdict::Missing(vec![id("nope")]));
    assert_eq!(graph.check_message(&u("bob"), &[]), MessageVerdict::Refused(G::Malformed("cites no event")));
}

#[test]
fn a_banned_members_backdated_control_events_do_not_bring_them_back() {
    let mut graph = room();
    add(&mut graph, "mallory joins", "mallory", Action::Join);
    let while_member = graph.heads();
    add(&mut graph, "ban", "alice", Action::Ban(u("mallory")));
    // Mallory builds a private branch from before the ban: leave, join, leave, join, ...
    let mut tip = while_member;
    for i in 0..6 {
        let action = if i % 2 == 0 { Action::Leave } else { Action::Join };
        let event = on(&graph, &tip, &format!("m{i}"), "mallory", action);
        tip = vec![event.id];
        assert!(graph.insert(event).is_ok(), "allowed in the state it cites");
    }
    assert!(!graph.state().is_member(&u("mallory")));
    assert!(graph.state().is_banned(&u("mallory")));
    assert_eq!(graph.check_message(&u("mallory"), &tip), MessageVerdict::SoftFailed);
}

/// In room "r" of alice, bob and carol, bob is made an admin and dave joins. The heads from
/// before dave's join, where bob was an admin (an event citing them sorts before a leave of
/// bob's citing dave's join), and dave's join.
fn bob_admin_and_dave(graph: &mut RoomGraph) -> (Vec<EventId>, GraphEvent) {
    add(graph, "bob is op", "alice", Action::Op(u("bob")));
    let before = graph.heads();
    (before, add(graph, "dave joins", "dave", Action::Join))
}

#[test]
fn an_admin_who_left_cannot_act_from_before_the_leave() {
    let mut graph = room();
    let (before, _) = bob_admin_and_dave(&mut graph);
    add(&mut graph, "bob leaves", "bob", Action::Leave);
    // Bob, gone, signs a ban citing the state before his leave, where he was an admin: taken
    // (it is allowed where it cites, and others may cite it), and void.
    let ban = on(&graph, &before, "bob bans carol", "bob", Action::Ban(u("carol")));
    assert_eq!(graph.insert(ban).map(|a| a.effects), Ok(vec![]));
    assert!(graph.is_void(&id("bob bans carol")));
    assert!(graph.state().is_member(&u("carol")) && !graph.state().is_banned(&u("carol")));
    // So is a backdated op of someone who then acts as an admin on a branch of their own.
    let join = on(&graph, &before, "mallory joins", "mallory", Action::Join);
    graph.insert(join.clone()).unwrap();
    let op = on(&graph, &before, "bob ops carol", "bob", Action::Op(u("carol")));
    graph.insert(op.clone()).unwrap();
    let kick = on(&graph, &[op.id, join.id], "carol kicks", "carol", Action::Kick(u("mallory")));
    assert!(graph.insert(kick).is_ok(), "allowed where it cites");
    // Citing bob's leave too, it is not even allowed where it cites.
    let kick = on(&graph, &[op.id, id("bob leaves")], "carol kicks dave", "carol", Action::Kick(u("dave")));
    assert_eq!(graph.insert(kick), Err(G::NotAllowed(Refusal::NotAdmin(u("carol")))));
    assert!(!graph.state().is_admin(&u("carol")));
    assert!(graph.state().is_member(&u("mallory")));
    let mut members = names(graph.state());
    members.sort();
    assert_eq!(members, vec![(u("alice"), true), (u("carol"), false), (u("dave"), false), (u("mallory"), false)]);
}

#[test]
fn an_admin_action_its_authors_leave_did_not_know_of_is_void_whichever_comes_first() {
    let mut graph = room();
    let (before, dave) = bob_admin_and_dave(&mut graph);
    // The ban comes first and holds, until bob's leave that does not cite it (and sorts after
    // it) comes.
    let ban = on(&graph, &before, "bob bans carol", "bob", Action::Ban(u("carol")));
    graph.insert(ban).unwrap();
    assert!(graph.state().is_banned(&u("carol")));
    let leave = on(&graph, &[dave.id], "bob leaves", "bob", Action::Leave);
    let effects = graph.insert(leave).unwrap().effects;
    assert!(effects.contains(&Effect::Left { user: u("bob") }), "{effects:?}");
    assert!(effects.contains(&Effect::Joined { user: u("carol") }), "{effects:?}");
    assert!(graph.is_void(&id("bob bans carol")));
    assert!(graph.state().is_member(&u("carol")) && !graph.state().is_banned(&u("carol")));
    // In another order, the same.
    let mut other = room();
    for name in ["bob is op", "dave joins", "bob leaves", "bob bans carol"] {
        other.insert(graph.get(&id(name)).unwrap().clone()).unwrap();
    }
    assert_eq!(other.state(), graph.state());
}

#[test]
fn what_an_admin_did_before_leaving_stands() {
    let mut graph = room();
    add(&mut graph, "bob is op", "alice", Action::Op(u("bob")));
    add(&mut graph, "bob bans carol", "bob", Action::Ban(u("carol")));
    add(&mut graph, "dave joins", "dave", Action::Join);
    add(&mut graph, "bob ops dave", "bob", Action::Op(u("dave")));
    add(&mut graph, "bob leaves", "bob", Action::Leave);
    add(&mut graph, "bob joins again", "bob", Action::Join);
    add(&mut graph, "bob leaves again", "bob", Action::Leave);
    assert!(!graph.is_void(&id("bob bans carol")) && !graph.is_void(&id("bob ops dave")));
    assert!(graph.state().is_banned(&u("carol")));
    assert_eq!(names(graph.state()), vec![(u("alice"), true), (u("dave"), true)]);
    // The same events from scratch, with few states cached so that folds walk far.
    let mut fresh = RoomGraph::with_small_cache(id("r"));
    for event in graph.events() {
        fresh.insert(event.clone()).unwrap();
    }
    assert_eq!(fresh.state(), graph.state());
}

#[test]
fn an_admin_who_leaves_and_comes_back_many_times_keeps_what_they_did_before() {
    let mut graph = room();
    add(&mut graph, "bob is op", "alice", Action::Op(u("bob")));
    add(&mut graph, "bob bans mallory", "bob", Action::Ban(u("mallory")));
    for i in 0..500 {
        let user = format!("u{i}");
        add(&mut graph, &format!("{user} joins"), &user, Action::Join);
    }
    // Each leave finds the ban through the leave before it.
    for i in 0..50 {
        add(&mut graph, &format!("bob leaves {i}"), "bob", Action::Leave);
        add(&mut graph, &format!("bob joins {i}"), "bob", Action::Join);
    }
    assert!(!graph.is_void(&id("bob bans mallory")));
    assert!(graph.state().is_banned(&u("mallory")));
    // A leave on a branch from before the ban undoes it, and only where that leave is folded.
    let before_ban = vec![id("bob is op")];
    let leave = on(&graph, &before_ban, "bob leaves early", "bob", Action::Leave);
    graph.insert(leave).unwrap();
    assert!(!graph.state().is_banned(&u("mallory")));
    assert_eq!(graph.state_at(&[id("bob joins 49")]).map(|s| s.is_banned(&u("mallory"))), Ok(true));
}

#[test]
fn the_oldest_member_succeeds_the_last_admin() {
    let mut graph = room();
    let left = add(&mut graph, "alice leaves", "alice", Action::Leave);
    assert_eq!(graph.len(), 4);
    assert_eq!(names(graph.state()), vec![(u("bob"), true), (u("carol"), false)]);
    assert_eq!(graph.state_at(&[left.id]).map(|s| names(&s)), Ok(vec![(u("bob"), true), (u("carol"), false)]));
    add(&mut graph, "bob leaves", "bob", Action::Leave);
    add(&mut graph, "carol leaves", "carol", Action::Leave);
    assert!(!graph.state().exists());
    // An emptied room stays empty: it cannot be created again, only a new room made.
    let join = on(&graph, &graph.heads(), "dave joins", "dave", Action::Join);
    assert_eq!(graph.insert(join), Err(G::NotAllowed(Refusal::NoSuchRoom)));
}

#[test]
fn heads_are_what_no_event_cites_and_a_merge_cites_them_all() {
    let mut graph = room();
    let base = graph.heads();
    let a = on(&graph, &base, "dave joins", "dave", Action::Join);
    let b = on(&graph, &base, "erin joins", "erin", Action::Join);
    graph.insert(a.clone()).unwrap();
    graph.insert(b.clone()).unwrap();
    let mut both = vec![a.id, b.id];
    both.sort();
    assert_eq!(graph.heads(), both);
    let c = on(&graph, &[a.id], "dave leaves", "dave", Action::Leave);
    graph.insert(c.clone()).unwrap();
    let mut expected = vec![b.id, c.id];
    expected.sort();
    assert_eq!(graph.heads(), expected);
    assert_eq!(graph.depth_for(&graph.heads()), Ok(5));
    let merge = add(&mut graph, "merge", "alice", Action::Op(u("erin")));
    assert_eq!(merge.depth, 5);
    assert_eq!(graph.heads(), vec![merge.id]);
}

#[test]
fn concurrent_admin_actions_from_both_sides_of_a_partition_converge() {
    let mut base = room();
    add(&mut base, "alice ops bob", "alice", Action::Op(u("bob")));
    add(&mut base, "dave joins", "dave", Action::Join);
    let (mut left, mut right) = (base.clone(), base);
    // Left: alice bans dave, then leaves. Right: bob kicks carol, then ops dave.
    add(&mut left, "l1", "alice", Action::Ban(u("dave")));
    add(&mut left, "l2", "alice", Action::Leave);
    add(&mut right, "r1", "bob", Action::Kick(u("carol")));
    add(&mut right, "r2", "bob", Action::Op(u("dave")));
    let left_events: Vec<GraphEvent> = left.events().cloned().collect();
    let right_events: Vec<GraphEvent> = right.events().cloned().collect();
    for e in right_events {
        let _ = left.insert(e);
    }
    // Newest first, through a pending set.
    let mut held = pending();
    for e in left_events.into_iter().rev() {
        held.offer(&mut right, e, Instant::now());
    }
    assert!(held.is_empty());
    assert_eq!(left.state(), right.state());
    assert_eq!(left.heads(), right.heads());
    assert_eq!(left.len(), right.len());
    // The ban comes first in the fold: the op of dave finds him gone and changes nothing.
    assert_eq!(names(left.state()), vec![(u("bob"), true)]);
    assert!(left.state().is_banned(&u("dave")));
}

#[test]
fn an_out_of_order_event_reports_what_it_changed() {
    let mut graph = room();
    let base = graph.heads();
    add(&mut graph, "dave joins", "dave", Action::Join);
    add(&mut graph, "erin joins", "erin", Action::Join);
    // Concurrent with both joins, and first in the fold.
    let kick = on(&graph, &base, "kick", "alice", Action::Kick(u("bob")));
    let accepted = graph.insert(kick).unwrap();
    assert_eq!(accepted.effects, vec![Effect::Kicked { user: u("bob"), by: u("alice") }]);
    let ban = on(&graph, &base, "ban", "alice", Action::Ban(u("frank")));
    assert_eq!(graph.insert(ban).unwrap().effects, vec![Effect::Banned { user: u("frank"), by: Some(u("alice")) }]);
    let unban = on(&graph, &[id("ban")], "unban", "alice", Action::Unban(u("frank")));
    assert_eq!(graph.insert(unban).unwrap().effects, vec![Effect::Unbanned { user: u("frank"), by: u("alice") }]);
}

#[test]
fn missing_prevs_wait_then_apply() {
    let mut source = room();
    add(&mut source, "dave joins", "dave", Action::Join);
    add(&mut source, "op dave", "alice", Action::Op(u("dave")));
    add(&mut source, "kick carol", "dave", Action::Kick(u("carol")));
    let events: Vec<GraphEvent> = source.events().cloned().collect();
    let mut graph = RoomGraph::new(id("r"));
    let mut held = pending();
    let now = Instant::now();
    // Newest first: each waits for the one before it.
    for event in events.iter().skip(1).rev() {
        let offered = held.offer(&mut graph, event.clone(), now);
        assert!(matches!(offered.outcomes.as_slice(), [(_, Err(G::Missing(_)))]), "{offered:?}");
    }
    assert_eq!(held.len(), events.len() - 1);
    assert_eq!(held.wanted(), vec![id("r")]);
    let offered = held.offer(&mut graph, events[0].clone(), now);
    let released: Vec<EventId> = offered.outcomes.iter().map(|(id, _)| *id).collect();
    assert_eq!(released, events.iter().map(|e| e.id).collect::<Vec<_>>(), "released in order");
    assert!(offered.outcomes.iter().all(|(_, outcome)| outcome.is_ok()));
    assert!(held.is_empty() && held.wanted().is_empty());
    assert_eq!(graph.state(), source.state());
    assert_eq!(graph.heads(), source.heads());
}

#[test]
fn pending_drops_the_oldest_beyond_its_cap_and_after_its_wait() {
    let mut source = room();
    for i in 0..5 {
        add(&mut source, &format!("j{i}"), &format!("user{i}"), Action::Join);
    }
    let events: Vec<GraphEvent> = source.events().cloned().collect();
    let mut graph = RoomGraph::new(id("r"));
    let mut held = Pending::new(3, Duration::from_secs(10));
    let start = Instant::now();
    let mut dropped = Vec::new();
    for (i, event) in events.iter().enumerate().skip(3) {
        dropped.extend(held.offer(&mut graph, event.clone(), start + Duration::from_secs(i as u64)).dropped);
    }
    assert_eq!(held.len(), 3);
    assert_eq!(dropped, vec![events[3].id, events[4].id], "the oldest go");
    // Offering a held event again holds it once.
    assert!(matches!(held.offer(&mut graph, events[5].clone(), start).outcomes[0], (_, Err(G::Missing(_)))));
    assert_eq!(held.len(), 3);
    let expired = held.expire(start + Duration::from_millis(16_500));
    assert_eq!(expired, vec![events[5].id, events[6].id]);
    assert_eq!(held.len(), 1);
    assert!(held.contains(&events[7].id));
}

#[test]
fn pending_events_citing_a_refused_event_are_released_as_refused() {
    let mut graph = room();
    let mut held = pending();
    let now = Instant::now();
    let bad = on(&graph, &graph.heads(), "bad", "mallory", Action::Kick(u("bob")));
    let after = GraphEvent { id: id("after"), author: u("bob"), prev: vec![bad.id], depth: 4, action: Action::Leave };
    assert!(matches!(held.offer(&mut graph, after, now).outcomes[0], (_, Err(G::Missing(_)))));
    let offered = held.offer(&mut graph, bad, now);
    assert_eq!(offered.outcomes.len(), 2);
    assert_eq!(offered.outcomes[1], (id("after"), Err(G::CitesRefused(id("bad")))));
    assert!(held.is_empty());
}

#[test]
fn catch_up_comes_in_bounded_pages_in_topological_order() {
    let mut source = room();
    for i in 0..20 {
        add(&mut source, &format!("j{i}"), &format!("user{i}"), Action::Join);
    }
    let mut graph = RoomGraph::new(id("r"));
    graph.insert(create("r", "alice")).unwrap();
    let mut pages = 0;
    let known = graph.heads();
    let mut after = None;
    loop {
        let page = source.events_after(&known, after, 5);
        assert!(page.events.len() <= 5);
        assert!(page.unknown.is_empty());
        after = page.events.last().map(|e| e.id);
        for event in page.events {
            graph.insert(event).expect("a page inserts in order");
        }
        pages += 1;
        if !page.more {
            break;
        }
    }
    assert_eq!(pages, 5, "22 events after the create, 5 a page");
    assert_eq!(graph.state(), source.state());
    assert_eq!(source.events_after(&graph.heads(), None, 5), CatchUp::default());
    // Asking with the new heads pages on too.
    let page = source.events_after(&[id("j17")], None, 2);
    assert_eq!(page.events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id("j18"), id("j19")]);
    assert!(!page.more);
    let page = source.events_after(&[id("unknown")], None, 0);
    assert_eq!(page.unknown, vec![id("unknown")]);
    assert!(page.more && page.events.is_empty(), "never truncated silently");
}

/// Release check of the cost: `cargo test --release --lib room::graph_tests -- --ignored
/// --nocapture`. 10,000 events, one in 50 concurrent with the one before; 500 members at most.
/// Measured on a shared 2-core machine: 35 ms in order, 46 ms with each window of 20 reversed.
#[test]
#[ignore = "a timing check, not a test"]
fn ten_thousand_events_insert_quickly() {
    let mut source = RoomGraph::new(id("r"));
    source.insert(create("r", "alice")).unwrap();
    let mut events = Vec::new();
    let mut prev_heads = source.heads();
    for i in 0..10_000 {
        let user = format!("u{}", i % 500);
        let action = if source.state().is_member(&u(&user)) { Action::Leave } else { Action::Join };
        let cite = if i % 50 == 0 { prev_heads.clone() } else { source.heads() };
        prev_heads = source.heads();
        let event = on(&source, &cite, &format!("e{i}"), &user, action);
        if source.insert(event.clone()).is_ok() {
            events.push(event);
        }
    }
    let start = std::time::Instant::now();
    let mut graph = RoomGraph::new(id("r"));
    graph.insert(create("r", "alice")).unwrap();
    for event in events.iter().cloned() {
        graph.insert(event).unwrap();
    }
    let elapsed = start.elapsed();
    println!("{} events inserted in order in {elapsed:?}", events.len() + 1);
    assert_eq!(graph.state(), source.state());
    // Out of order: each window of 20 reversed, through a pending set.
    let start = std::time::Instant::now();
    let mut graph = RoomGraph::new(id("r"));
    graph.insert(create("r", "alice")).unwrap();
    let mut held = pending();
    for window in events.chunks(20) {
        for event in window.iter().rev() {
            held.offer(&mut graph, event.clone(), Instant::now());
        }
    }
    let elapsed = start.elapsed();
    println!("{} events inserted, windows of 20 reversed, in {elapsed:?}", events.len() + 1);
    assert_eq!(graph.state(), source.state());
}

#[test]
fn a_new_event_cites_at_most_max_prev_heads_and_merges_the_deepest() {
    let mut graph = room();
    let base = graph.heads();
    for i in 0..MAX_PREV + 4 {
        let join = on(&graph, &base, &format!("j{i}"), &format!("u{i}"), Action::Join);
        graph.insert(join).unwrap();
    }
    assert_eq!(graph.heads().len(), MAX_PREV + 4);
    let cite = graph.heads_to_cite();
    assert_eq!(cite.len(), MAX_PREV);
    let leave = on(&graph, &cite, "u0 leaves", "u0", Action::Leave);
    assert!(graph.insert(leave).is_ok(), "an event citing them is taken");
    assert_eq!(graph.heads().len(), 5, "the merged heads, and the 4 left for later");
}

mod proptests;
