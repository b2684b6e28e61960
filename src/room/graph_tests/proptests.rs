//! Property tests of the room graph: replicas acting concurrently, then exchanging everything
//! in any order, converge, and agree with a reference fold over whole ancestor sets.

use std::collections::{BTreeSet, HashMap, HashSet};

use proptest::prelude::*;

use super::*;

const USERS: &[&str] = &["alice", "bob", "carol", "dave"];

#[derive(Debug, Clone)]
enum Step {
    /// Replica acts as `author`, citing its own heads.
    Act { replica: usize, author: usize, action: Action },
    /// Replica `to` receives everything replica `from` holds.
    Sync { from: usize, to: usize },
}

fn arb_action() -> impl Strategy<Value = Action> {
    let user = prop::sample::select(USERS).prop_map(u);
    prop_oneof![
        1 => Just(Action::Create),
        8 => Just(Action::Join),
        2 => Just(Action::Leave),
        2 => user.clone().prop_map(Action::Kick),
        2 => user.clone().prop_map(Action::Ban),
        1 => user.clone().prop_map(Action::Unban),
        2 => user.prop_map(Action::Op),
    ]
}

fn arb_steps() -> impl Strategy<Value = (usize, Vec<Step>)> {
    (2usize..=3).prop_flat_map(|replicas| {
        let step = prop_oneof![
            3 => (0..replicas, 0..USERS.len(), arb_action())
                .prop_map(|(replica, author, action)| Step::Act { replica, author, action }),
            1 => (0..replicas, 0..replicas).prop_map(|(from, to)| Step::Sync { from, to }),
        ];
        (Just(replicas), prop::collection::vec(step, 0..80))
    })
}

/// Runs the steps; returns the replicas and every event made (accepted where made or not), in
/// the order made.
fn simulate(replicas: usize, steps: &[Step]) -> (Vec<RoomGraph>, Vec<GraphEvent>) {
    let mut graphs = vec![RoomGraph::with_small_cache(id("r")); replicas];
    let mut made = vec![create("r", "alice")];
    for graph in &mut graphs {
        graph.insert(made[0].clone()).unwrap();
    }
    for (n, step) in steps.iter().enumerate() {
        match step {
            Step::Act { replica, author, action } => {
                let graph = &mut graphs[*replica];
                let event = if *action == Action::Create {
                    create(&format!("create {n}"), USERS[*author])
                } else {
                    on(graph, &graph.heads(), &format!("e{n}"), USERS[*author], action.clone())
                };
                let _ = graph.insert(event.clone());
                made.push(event);
            }
            Step::Sync { from, to } => {
                let events: Vec<GraphEvent> = graphs[*from].events().cloned().collect();
                for event in events {
                    let _ = graphs[*to].insert(event);
                }
            }
        }
    }
    (graphs, made)
}

/// Every ancestor of `id` among `accepted`.
fn ancestors(accepted: &HashMap<EventId, GraphEvent>, id: EventId) -> HashSet<EventId> {
    let mut seen = HashSet::new();
    let mut stack: Vec<EventId> = accepted[&id].prev.clone();
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            stack.extend(accepted[&id].prev.iter().copied());
        }
    }
    seen
}

/// The reference: the events accepted and the state, folding every closure from scratch.
fn reference(made: &[GraphEvent]) -> (BTreeSet<EventId>, RoomState) {
    let fold = |accepted: &HashMap<EventId, GraphEvent>, tips: &[EventId]| {
        let mut seen: HashSet<EventId> = HashSet::new();
        let mut stack: Vec<EventId> = tips.to_vec();
        while let Some(id) = stack.pop() {
            if seen.insert(id) {
                stack.extend(accepted[&id].prev.iter().copied());
            }
        }
        let mut events: Vec<&GraphEvent> = seen.iter().map(|id| &accepted[id]).collect();
        events.sort_by_key(|e| e.order_key());
        let mut state = RoomState::default();
        for e in &events {
            let admin_act = matches!(e.action, Action::Kick(_) | Action::Ban(_) | Action::Unban(_) | Action::Op(_));
            // Void: a later leave of its author in the fold does not descend from it.
            let void = admin_act
                && events.iter().any(|l| {
                    l.action == Action::Leave
                        && l.author == e.author
                        && l.order_key() > e.order_key()
                        && !ancestors(accepted, l.id).contains(&e.id)
                });
            if !void {
                let _ = state.apply_action(&e.author, &e.action);
            }
        }
        state
    };
    let mut accepted: HashMap<EventId, GraphEvent> = HashMap::new();
    for event in made {
        let ok = if event.action == Action::Create {
            event.id == id("r") && event.prev.is_empty() && event.depth == 0
        } else {
            !event.prev.is_empty()
                && event.prev.iter().all(|p| accepted.contains_key(p))
                && Some(event.depth) == event.prev.iter().map(|p| accepted[p].depth).max().map(|d| d + 1)
                && fold(&accepted, &event.prev).apply_action(&event.author, &event.action).is_ok()
        };
        if ok && !accepted.contains_key(&event.id) {
            accepted.insert(event.id, event.clone());
        }
    }
    let all: Vec<EventId> = accepted.keys().copied().collect();
    let state = fold(&accepted, &all);
    (accepted.into_keys().collect(), state)
}

fn ids(graph: &RoomGraph) -> BTreeSet<EventId> {
    graph.events().map(|e| e.id).collect()
}

proptest! {
    #[test]
    fn replicas_exchanging_in_any_order_converge((replicas, steps) in arb_steps(), seed in any::<u64>()) {
        let (mut graphs, made) = simulate(replicas, &steps);
        let now = Instant::now();
        for (r, graph) in graphs.iter_mut().enumerate() {
            // Everything made, shuffled, with duplicates, through a pending set.
            let mut delivery: Vec<GraphEvent> = made.iter().chain(made.iter().step_by(3)).cloned().collect();
            crate::testing::shuffle(&mut delivery, seed.wrapping_add(r as u64));
            let mut held = pending();
            for event in delivery {
                held.offer(graph, event, now);
            }
            prop_assert!(held.wanted().iter().all(|id| made.iter().any(|e| e.id == *id) && !graph.contains(id)));
        }
        let (accepted, state) = reference(&made);
        for graph in &graphs {
            prop_assert_eq!(&ids(graph), &accepted);
            prop_assert_eq!(graph.state(), &state);
            prop_assert_eq!(graph.heads(), graphs[0].heads());
        }
        // A fresh graph fed in the order made agrees.
        let mut fresh = RoomGraph::new(id("r"));
        for event in &made {
            let _ = fresh.insert(event.clone());
        }
        prop_assert_eq!(&ids(&fresh), &accepted);
        prop_assert_eq!(fresh.state(), &state);
    }

    #[test]
    fn the_state_keeps_its_invariants((replicas, steps) in arb_steps()) {
        let (graphs, _) = simulate(replicas, &steps);
        for graph in &graphs {
            let state = graph.state();
            let members = state.members();
            let mut users: Vec<AccountId> = members.iter().map(|m| m.user).collect();
            users.sort();
            users.dedup();
            prop_assert_eq!(users.len(), members.len(), "no member twice");
            prop_assert!(members.iter().all(|m| !state.is_banned(&m.user)));
            prop_assert_eq!(state.exists(), !members.is_empty());
            if state.exists() {
                prop_assert!(members.iter().any(|m| m.admin), "an existing room has an admin");
            }
            // Depths are those due, and every event's ancestry reaches the create.
            for event in graph.events() {
                if event.id == id("r") {
                    prop_assert_eq!(event.depth, 0);
                } else {
                    prop_assert_eq!(Ok(event.depth), graph.depth_for(&event.prev));
                }
            }
        }
    }

    #[test]
    fn the_oldest_member_succeeds_the_last_admin_always((replicas, steps) in arb_steps()) {
        let (graphs, _) = simulate(replicas, &steps);
        for graph in &graphs {
            // Folding step by step: whenever the last admin goes and members remain, the
            // oldest remaining becomes admin.
            let mut state = RoomState::default();
            for event in graph.events().filter(|e| !graph.is_void(&e.id)) {
                let before = state.clone();
                let _ = state.apply_action(&event.author, &event.action);
                let admins_left = before.members().iter().filter(|m| m.admin && state.is_member(&m.user)).count();
                if before.members().iter().any(|m| m.admin) && admins_left == 0
                    && event.action == Action::Leave && let Some(first) = state.members().first() {
                    prop_assert!(first.admin);
                    prop_assert_eq!(state.members().iter().filter(|m| m.admin).count(), 1);
                }
            }
            prop_assert_eq!(&state, graph.state());
        }
    }

    #[test]
    fn catch_up_pages_bring_a_replica_level((replicas, steps) in arb_steps(), limit in 1usize..8) {
        let (graphs, _) = simulate(replicas, &steps);
        let (a, b) = (&graphs[0], &graphs[1]);
        let mut behind = b.clone();
        let known = behind.heads();
        let mut after = None;
        for _ in 0..1000 {
            let page = a.events_after(&known, after, limit);
            prop_assert!(page.events.len() <= limit);
            for event in page.events {
                after = Some(event.id);
                // Events under heads `a` lacks may come although `behind` has them.
                let result = behind.insert(event);
                prop_assert!(matches!(result, Ok(_) | Err(G::Known)), "{:?}", result);
            }
            if !page.more {
                break;
            }
        }
        prop_assert!(ids(a).is_subset(&ids(&behind)));
    }
}
