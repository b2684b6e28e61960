//! Property tests of the room engine: engines fed a partitioned history in any order converge,
//! and events in any order and by any way are never kept twice nor given two verdicts.

use super::*;

/// The test users: alice creates, bob, carol and dave join before the partition, erin never.
const USERS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

/// The steps after the partition: on which side, and which of the actions allowed there. At
/// most 19: no account then makes more than the burst.
fn arb_steps() -> impl Strategy<Value = Vec<(usize, prop::sample::Index)>> {
    prop::collection::vec((0..2usize, any::<prop::sample::Index>()), 0..20)
}

/// Action `what` (join, leave, kick, ban, op, unban) on `target`.
fn action(what: usize, target: &str) -> Action {
    let target = account_of(target);
    match what {
        0 => Action::Join,
        1 => Action::Leave,
        2 => Action::Kick(target),
        3 => Action::Ban(target),
        4 => Action::Op(target),
        _ => Action::Unban(target),
    }
}

/// A history split by a partition: alice creates the room and bob, carol and dave join; then on
/// each side, step by step, one of the actions allowed there, citing that side's heads. Every
/// event, in the order made.
fn partitioned_history(authors: &mut Authors, steps: &[(usize, prop::sample::Index)]) -> Vec<Signed> {
    let create = authors.create("alice", "lobby");
    let room = create.id();
    let mut sides = [Node::new(), Node::new()];
    sides[0].take(&create, Via::Disk);
    let mut made = vec![create];
    made.extend(join(&mut sides[0], authors, room, &["bob", "carol", "dave"]));
    for event in &made {
        sides[1].take(event, Via::Disk);
    }
    for (side, pick) in steps {
        let node = &mut sides[*side];
        let mut allowed = Vec::new();
        for author in USERS {
            for what in 0..6 {
                for target in USERS {
                    let action = action(what, target);
                    if node.engine.check(&room, &account_of(author), &action).is_ok()
                        && !allowed.contains(&(author, action.clone()))
                    {
                        allowed.push((author, action));
                    }
                }
            }
        }
        if allowed.is_empty() {
            continue;
        }
        let (author, action) = pick.get(&allowed).clone();
        let event = authors.control(author, room, node.cite(&room), action);
        node.take(&event, Via::Disk);
        assert_eq!(node.engine.heads(&room), vec![event.id()], "taken");
        made.push(event);
    }
    made
}

/// Events that may break the rules, by anyone: a control event or a message citing one or two
/// of `made`, at the depth due or one more, or the create of another room.
fn junk(authors: &mut Authors, made: &[Signed], picks: &[(usize, usize, usize, u64)]) -> Vec<Signed> {
    let room = made[0].id();
    let mut junk = Vec::new();
    for &(author, what, target, bits) in picks {
        let author = USERS[author];
        let len = made.len() as u64;
        let mut prev: Vec<&Signed> = vec![&made[(bits % len) as usize], &made[((bits >> 16) % len) as usize]];
        prev.dedup_by_key(|e| e.id());
        let depth = prev.iter().map(|e| e.event.body.depth).max().unwrap_or(0) + 1 + (bits >> 32) % 2;
        let cite = (prev.iter().map(|e| e.id()).collect(), depth);
        junk.push(match what {
            6 => authors.message(author, room, cite, "junk"),
            7 => authors.create(author, "other"),
            _ => authors.control(author, room, cite, action(what, USERS[target])),
        });
    }
    junk
}

/// The way an event comes, by number.
fn via(way: usize, server: &str) -> Via {
    match way {
        0 => Via::Own,
        1 => Via::Disk,
        2 => live(),
        3 => Via::Handed { from: relay() },
        _ => catch_up(server),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn engines_fed_a_partitioned_history_in_any_order_converge(
        steps in arb_steps(),
        orders in any::<[(u64, u64); 2]>(),
    ) {
        let mut authors = Authors::new();
        let made = partitioned_history(&mut authors, &steps);
        let room = made[0].id();
        let mut reference = RoomGraph::new(room);
        for event in &made {
            prop_assert!(reference.insert(event.event.graph_event().unwrap()).is_ok());
        }
        let mut nodes = Vec::new();
        for (seed, live_bits) in orders {
            // The room comes first (a catch-up this node asked for), then the rest in any
            // order, each heard live or in a catch-up page.
            let mut node = Node::new();
            node.take(&made[0], catch_up("alice"));
            let mut rest: Vec<&Signed> = made[1..].iter().collect();
            crate::testing::shuffle(&mut rest, seed);
            for (i, event) in rest.into_iter().enumerate() {
                let via = if live_bits >> (i % 64) & 1 == 1 { live() } else { catch_up("alice") };
                node.take(event, via);
            }
            prop_assert_eq!(node.engine.event_count(&room), made.len());
            prop_assert_eq!(node.engine.state(&room), Some(reference.state()));
            prop_assert_eq!(node.engine.heads(&room), reference.heads());
            nodes.push(node);
        }
        prop_assert_eq!(nodes[0].engine.state(&room), nodes[1].engine.state(&room));
        prop_assert_eq!(nodes[0].engine.heads(&room), nodes[1].engine.heads(&room));
    }

    #[test]
    fn events_in_any_order_and_way_never_panic_nor_are_kept_twice(
        steps in arb_steps(),
        picks in prop::collection::vec((0..USERS.len(), 0..8usize, 0..USERS.len(), any::<u64>()), 0..12),
        again in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ways in prop::collection::vec((0..5usize, prop_oneof![Just(0u64), Just(1), Just(20)]), 1..16),
        seed in any::<u64>(),
    ) {
        let mut authors = Authors::new();
        let made = partitioned_history(&mut authors, &steps);
        let junk = junk(&mut authors, &made, &picks);
        let mut events: Vec<&Signed> = made.iter().chain(&junk).collect();
        events.extend(again.iter().map(|i| &made[i.index(made.len())]));
        crate::testing::shuffle(&mut events, seed);
        let fed: HashSet<EventId> = events.iter().map(|e| e.id()).collect();
        let mut node = Node::new();
        let mut kept = HashSet::new();
        for (i, event) in events.into_iter().enumerate() {
            let (way, wait) = ways[i % ways.len()];
            if wait > 0 {
                let out = node.tick(Duration::from_secs(wait));
                prop_assert!(out.iter().all(|o| matches!(o, Out::Refused(_))), "{:?}", out);
            }
            let via = via(way, USERS[i % USERS.len()]);
            let out = node.take(event, via);
            let verdicts = out.iter().filter(|o| matches!(o, Out::Verdict(_))).count();
            prop_assert!(verdicts <= usize::from(matches!(via, Via::Live { .. })), "{:?} {:?}", via, out);
            for o in &out {
                if let Out::Keep(id, _) = o {
                    prop_assert!(fed.contains(id));
                    prop_assert!(kept.insert(*id), "kept twice: {:?}", out);
                }
            }
        }
        let held: usize = node.engine.rooms().iter().map(|r| node.engine.event_count(r)).sum();
        prop_assert_eq!(held, kept.len(), "every event taken was kept");
    }
}
