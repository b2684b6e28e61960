//! Tests of the room engine at its bounds, with made-up events (as verified events come from
//! the wire layer, without signing each): a room at its cap of events, one account filling a
//! room with changes from a catch-up, a user's latest join, and the last admin's successor.

use super::*;

/// Made-up control events of `create`'s room, as the wire layer would hand them over verified
/// (signing 100,000 events takes long in a debug build): with ids of their own and no bytes.
struct MadeUp {
    create: Signed,
    made: u64,
}

impl MadeUp {
    /// `who` does `action`, citing `head` at `depth`.
    fn event(&mut self, who: &str, action: Action, head: EventId, depth: u64, via: Via) -> (EventId, Input) {
        self.made += 1;
        let mut event = self.create.event.clone();
        event.id = EventId::from_bytes(Sha256::digest(self.made.to_be_bytes()).into());
        event.account = account_of(who);
        event.body.author = account_of(who);
        event.body.room = Some(self.create.id());
        event.body.prev = vec![head];
        event.body.depth = depth;
        event.body.payload = EventPayload::Control(action);
        (event.id, Input::Event(Box::new(Incoming { event, bytes: Vec::new(), via })))
    }
}

fn kept(out: &[Output]) -> bool {
    out.iter().any(|o| matches!(o, Output::Keep { .. }))
}

/// An engine holding alice's room "lobby" (from disk), and the maker of its made-up events.
fn made_up_room() -> (RoomEngine, EventId, MadeUp, Instant) {
    let create = Authors::new().create("alice", "lobby");
    let room = create.id();
    let mut engine = RoomEngine::default();
    let now = Instant::now();
    engine.handle(create.input(Via::Disk), now);
    (engine, room, MadeUp { create, made: 0 }, now)
}

/// `who` joins and leaves `room` in turn, `count` events from depth 1 on, each come `via`,
/// each kept; the last one's id.
fn join_and_leave(engine: &mut RoomEngine, made: &mut MadeUp, who: &str, count: u64, via: Via) -> EventId {
    let mut head = made.create.id();
    for n in 1..=count {
        let action = if n % 2 == 1 { Action::Join } else { Action::Leave };
        let (id, input) = made.event(who, action, head, n, via);
        head = id;
        assert!(kept(&engine.handle(input, Instant::now())), "{n}");
    }
    head
}

#[test]
fn a_room_holds_at_most_its_cap_of_events_but_its_admins_can_still_moderate_it() {
    let (mut engine, room, mut made, now) = made_up_room();
    let bob = account_of("bob");
    // Alice bans bob or unbans him in turn (the state stays small), as kept on disk.
    let mut head = room;
    for n in 1..MAX_EVENTS_PER_ROOM as u64 {
        let action = if n % 2 == 1 { Action::Ban(bob) } else { Action::Unban(bob) };
        let (id, input) = made.event("alice", action, head, n, Via::Disk);
        head = id;
        assert!(kept(&engine.handle(input, now)), "{n}");
    }
    assert_eq!(engine.event_count(&room), MAX_EVENTS_PER_ROOM);
    let depth = MAX_EVENTS_PER_ROOM as u64;
    // Carol, no admin, cannot join a room this full...
    let (_, over) = made.event("carol", Action::Join, head, depth, live());
    let out = engine.handle(over, now);
    assert!(matches!(&out[..], [Output::Verdict(Verdict::Ignore), Output::Refused { .. }]), "{out:?}");
    assert_eq!(engine.event_count(&room), MAX_EVENTS_PER_ROOM);
    // ...while alice, its admin, still bans whom she must, up to the reserve.
    let (_, ban) = made.event("alice", Action::Ban(account_of("carol")), head, depth, live());
    let out = engine.handle(ban, now);
    assert!(kept(&out), "{out:?}");
    assert_eq!(engine.event_count(&room), MAX_EVENTS_PER_ROOM + 1);
}

#[test]
fn one_account_cannot_fill_a_room_with_changes_from_a_catch_up() {
    let (mut engine, room, mut made, now) = made_up_room();
    // Bob joins and leaves over and over, each change brought by a catch-up (no rate limit
    // there: history comes in pages).
    let head = join_and_leave(&mut engine, &mut made, "bob", MAX_CONTROLS_PER_AUTHOR as u64, catch_up("carol"));
    let depth = MAX_CONTROLS_PER_AUTHOR as u64 + 1;
    let (_, more) = made.event("bob", Action::Leave, head, depth, catch_up("carol"));
    let out = engine.handle(more, now);
    assert!(
        out.iter().any(|o| matches!(o, Output::Refused { reason, .. } if reason.contains("as many changes"))),
        "{out:?}"
    );
    // Nobody else is held back by it: alice bans him, carol joins.
    let (ban, input) = made.event("alice", Action::Ban(account_of("bob")), head, depth, catch_up("carol"));
    assert!(kept(&engine.handle(input, now)));
    let (_, input) = made.event("carol", Action::Join, ban, depth + 1, catch_up("carol"));
    assert!(kept(&engine.handle(input, now)));
    assert!(engine.state(&room).is_some_and(|state| state.is_banned(&account_of("bob"))));
    // What this node kept of bob's before is taken back whole after a restart.
    let mut restarted = RoomEngine::default();
    restarted.handle(made.create.input(Via::Disk), now);
    join_and_leave(&mut restarted, &mut made, "bob", MAX_CONTROLS_PER_AUTHOR as u64 + 1, Via::Disk);
}

#[test]
fn a_users_latest_join_is_known_by_its_depth() {
    let (mut engine, room, mut made, _) = made_up_room();
    assert_eq!(engine.joined_at(&room, &account_of("alice")), Some(0), "its creator, from the create");
    assert_eq!(engine.joined_at(&room, &account_of("bob")), None);
    join_and_leave(&mut engine, &mut made, "bob", 3, Via::Disk);
    assert_eq!(engine.joined_at(&room, &account_of("bob")), Some(3), "the latest join");
}

#[test]
fn the_last_admin_leaving_hands_over_to_whoever_joined_first_as_this_node_saw_it() {
    let mut authors = Authors::new();
    let create = authors.create("alice", "lobby");
    let room = create.id();
    let mut node = Node::new();
    node.take(&create, Via::Own);
    let mut joins = join(&mut node, &mut authors, room, &["bob", "carol"]);
    // eve's join, heard after theirs, cites only the create (made until it sorts before bob's
    // at the same depth): the fold puts her first.
    let eve = std::iter::repeat_with(|| authors.control("eve", room, (vec![room], 1), Action::Join))
        .find(|eve| eve.id() < joins[0].id())
        .expect("a join sorting first");
    assert!(node.take(&eve, live()).contains(&Out::Verdict(Verdict::Accept)));
    joins.push(eve);
    let members: Vec<AccountId> = node.engine.state(&room).unwrap().members().iter().map(|m| m.user).collect();
    assert_eq!(members[1], account_of("eve"), "the fold's oldest member after alice");
    let alice = account_of("alice");
    assert_eq!(node.engine.successor(&room, &alice), Some(account_of("bob")));
    assert_eq!(node.engine.successor(&room, &account_of("bob")), None, "not an admin");

    // Read back from the database by depth, each event with the row it was kept in.
    let restart = |rows: [u64; 3]| {
        let mut node = Node::new();
        node.engine.arriving(1);
        node.take(&create, Via::Disk);
        let mut by_depth: Vec<(u64, &Signed)> = rows.iter().copied().zip(&joins).collect();
        by_depth.sort_by_key(|(_, e)| (e.event.body.depth, e.id()));
        for (row, event) in by_depth {
            node.engine.arriving(row);
            node.take(event, Via::Disk);
        }
        node.engine.successor(&room, &alice)
    };
    assert_eq!(restart([2, 3, 4]), Some(account_of("bob")), "kept in the order they came");
    assert_eq!(restart([4, 3, 2]), Some(account_of("eve")), "eve's kept first: she came first");
    // Another admin stays: nobody needs making one.
    let op = authors.control("alice", room, node.cite(&room), Action::Op(account_of("carol")));
    node.take(&op, Via::Own);
    assert_eq!(node.engine.successor(&room, &alice), None);
}
