//! Unit and property tests of the room engine: what it outputs for an event made here, read
//! from disk, heard live, handed over or caught up; control events and messages that wait for
//! what they cite; soft failure of live messages; history from catch-up pages; rate limits;
//! what catch-up serves to whom; and engines fed the same events in any order converging.
//!
//! Events are real: sealed by test users (keys seeded from their names, certificates of a test
//! authority) and verified, as the node hands them to the engine.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::identity::Keypair;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::engine::{
    CONTROL_BURST, CONTROLS_PER_SEC, Incoming, Input, MAX_CONTROLS_PER_AUTHOR, MAX_EVENTS_PER_ROOM, Output, RoomEngine,
    ServeRefusal, Standing, Verdict, Via,
};
use super::*;
use crate::account::AccountId;
use crate::cert::{Authority, CertCache, Certificate};
use crate::room::event::{EventBody, EventPayload, SignedEvent, VerifiedEvent};
use crate::testing::account_of;

const NOW_MS: u64 = 1_800_000_000_000;

/// A test user: a key seeded from the name, and a certificate of the test authority.
struct Author {
    key: Keypair,
    cert: Certificate,
}

/// Makes the test users' events, signed and verified; every body is unique.
struct Authors {
    authority: Authority,
    certs: CertCache,
    users: HashMap<String, Author>,
    nonce: u64,
}

/// An event as the wire layer hands it over: verified, with its bytes.
#[derive(Debug, Clone)]
struct Signed {
    event: VerifiedEvent,
    bytes: Vec<u8>,
}

impl Signed {
    fn id(&self) -> EventId {
        self.event.id
    }

    /// This event, come `via`, as the engine's input.
    fn input(&self, via: Via) -> Input {
        Input::Event(Box::new(Incoming { event: self.event.clone(), bytes: self.bytes.clone(), via }))
    }
}

impl Authors {
    fn new() -> Self {
        Authors {
            authority: Authority::from_secret(&[5; 32]),
            certs: CertCache::default(),
            users: HashMap::new(),
            nonce: 0,
        }
    }

    fn user(&mut self, name: &str) -> &Author {
        let authority = &self.authority;
        self.users.entry(name.to_string()).or_insert_with(|| {
            let seed: [u8; 32] = Sha256::digest(name.as_bytes()).into();
            let key = Keypair::ed25519_from_bytes(seed).expect("a key");
            let peer = key.public().to_peer_id().to_bytes();
            let cert = authority.issue(account_of(name), name, &peer, NOW_MS / 1000 - 10, 1);
            Author { key, cert }
        })
    }

    /// `payload` by `name` in `room` (none for a create), citing `prev` at `depth`.
    fn seal(&mut self, name: &str, room: Option<EventId>, cite: (Vec<EventId>, u64), payload: EventPayload) -> Signed {
        self.nonce += 1;
        let (prev, depth) = cite;
        let body = EventBody { author: account_of(name), room, prev, depth, ts_ms: NOW_MS, nonce: self.nonce, payload };
        let author = self.user(name);
        let signed = SignedEvent::seal(&author.key, &author.cert, &body).expect("sealed");
        let event = signed.verify(&mut self.certs, &self.authority.public(), NOW_MS, None).expect("verified");
        Signed { event, bytes: signed.encode() }
    }

    /// `name` creates the room called `room_name`.
    fn create(&mut self, name: &str, room_name: &str) -> Signed {
        self.seal(name, None, (Vec::new(), 0), EventPayload::Create { name: room_name.into() })
    }

    /// `name` does `action` in `room`, citing `cite` (the prev and the depth).
    fn control(&mut self, name: &str, room: EventId, cite: (Vec<EventId>, u64), action: Action) -> Signed {
        self.seal(name, Some(room), cite, EventPayload::Control(action))
    }

    /// `name` says `text` in `room`, citing `cite`.
    fn message(&mut self, name: &str, room: EventId, cite: (Vec<EventId>, u64), text: &str) -> Signed {
        let seq = self.nonce;
        // The engine never reads a message's text: any bytes stand for the sealed text.
        let sealed = crate::room::event::Sealed { session: "s".into(), ciphertext: text.as_bytes().to_vec() };
        self.seal(name, Some(room), cite, EventPayload::Message { seq, sealed })
    }
}

/// The peer that passes events on.
fn relay() -> PeerId {
    Keypair::ed25519_from_bytes([9; 32]).expect("a key").public().to_peer_id()
}

/// Heard on the room's topic, from the relay.
fn live() -> Via {
    Via::Live { from: relay() }
}

/// In a catch-up page from the relay, served by `server`.
fn catch_up(server: &str) -> Via {
    Via::CatchUp { from: relay(), server: account_of(server), show: true }
}

/// An output in short, to compare: the event, depth, effect or peer it names. Bytes kept or
/// published are checked to be the event's own.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Verdict(Verdict),
    Room(EventId, String, AccountId),
    Keep(EventId, u64),
    Publish(EventId),
    Changed(Effect),
    Message(EventId),
    CatchUp(PeerId),
    Refused(EventId),
}

fn id_of(bytes: &[u8]) -> Option<EventId> {
    SignedEvent::decode(bytes).ok()?.id()
}

fn short(outputs: Vec<Output>) -> Vec<Out> {
    let short = |output| match output {
        Output::Verdict(verdict) => Out::Verdict(verdict),
        Output::Room { room, name, creator } => Out::Room(room, name, creator),
        Output::Keep { id, depth, bytes, .. } => {
            assert_eq!(id_of(&bytes), Some(id), "the event's own bytes are kept");
            Out::Keep(id, depth)
        }
        Output::Publish { bytes, .. } => Out::Publish(id_of(&bytes).expect("an event's bytes")),
        Output::Changed { effect, .. } => Out::Changed(effect),
        Output::Message(incoming) => Out::Message(incoming.event.id),
        Output::CatchUp { peer, .. } => Out::CatchUp(peer),
        Output::Refused { id, .. } => Out::Refused(id),
    };
    outputs.into_iter().map(short).collect()
}

/// One node's engine, and its time.
struct Node {
    engine: RoomEngine,
    now: Instant,
}

impl Node {
    fn new() -> Self {
        Node { engine: RoomEngine::default(), now: Instant::now() }
    }

    /// Takes `event` in, come `via`.
    fn take(&mut self, event: &Signed, via: Via) -> Vec<Out> {
        short(self.engine.handle(event.input(via), self.now))
    }

    /// Lets `wait` pass, then ticks.
    fn tick(&mut self, wait: Duration) -> Vec<Out> {
        self.now += wait;
        short(self.engine.handle(Input::Tick, self.now))
    }

    /// What a new event of `room` cites here, and its depth.
    fn cite(&self, room: &EventId) -> (Vec<EventId>, u64) {
        self.engine.cite(room).expect("a known room")
    }
}

/// Alice's node, with the room "lobby" she created there.
fn lobby(authors: &mut Authors) -> (Node, EventId) {
    let mut node = Node::new();
    let create = authors.create("alice", "lobby");
    node.take(&create, Via::Own);
    (node, create.id())
}

/// `names` join `room` one after the other, heard live at `node`.
fn join(node: &mut Node, authors: &mut Authors, room: EventId, names: &[&str]) -> Vec<Signed> {
    let mut joins = Vec::new();
    for name in names {
        let join = authors.control(name, room, node.cite(&room), Action::Join);
        let out = node.take(&join, live());
        assert!(out.contains(&Out::Verdict(Verdict::Accept)), "{name} joins: {out:?}");
        joins.push(join);
    }
    joins
}

fn ids(events: &[GraphEvent]) -> Vec<EventId> {
    events.iter().map(|e| e.id).collect()
}

#[test]
fn an_own_create_makes_a_room_kept_and_published() {
    let mut authors = Authors::new();
    let mut node = Node::new();
    let create = authors.create("alice", "lobby");
    let (room, alice) = (create.id(), account_of("alice"));
    assert_eq!(
        node.take(&create, Via::Own),
        vec![
            Out::Room(room, "lobby".into(), alice),
            Out::Keep(room, 0),
            Out::Publish(room),
            Out::Changed(Effect::Created { user: alice }),
        ]
    );
    assert_eq!(node.engine.rooms(), vec![room]);
    assert_eq!(node.engine.rooms_of(&alice), vec![room]);
    assert_eq!(node.engine.rooms_of(&account_of("bob")), vec![]);
    assert_eq!(node.engine.label(&room), Some(("lobby", alice)));
    assert_eq!(node.engine.cite(&room), Some((vec![room], 1)), "the create, at depth 1");
    assert_eq!(node.engine.heads(&room), vec![room]);
    assert_eq!(node.engine.event_count(&room), 1);
    assert!(node.engine.state(&room).is_some_and(|s| s.is_admin(&alice)));
}

#[test]
fn a_live_join_citing_the_heads_is_accepted_and_not_published_again() {
    let mut authors = Authors::new();
    let (mut node, room) = lobby(&mut authors);
    let bob = account_of("bob");
    let join = authors.control("bob", room, node.cite(&room), Action::Join);
    assert_eq!(
        node.take(&join, live()),
        vec![Out::Keep(join.id(), 1), Out::Verdict(Verdict::Accept), Out::Changed(Effect::Joined { user: bob })]
    );
    assert_eq!(node.engine.rooms_of(&bob), vec![room]);
    assert_eq!(node.engine.cite(&room), Some((vec![join.id()], 2)));
}

#[test]
fn a_handed_join_is_kept_and_published_for_its_author() {
    let mut authors = Authors::new();
    let (mut node, room) = lobby(&mut authors);
    let join = authors.control("bob", room, node.cite(&room), Action::Join);
    assert_eq!(
        node.take(&join, Via::Handed { from: authors.user("bob").key.public().to_peer_id() }),
        vec![
            Out::Keep(join.id(), 1),
            Out::Publish(join.id()),
            Out::Changed(Effect::Joined { user: account_of("bob") })
        ]
    );
}

#[test]
fn a_room_comes_into_being_only_by_a_create_not_heard_live() {
    let mut authors = Authors::new();
    let mut node = Node::new();
    let create = authors.create("mallory", "other");
    let room = create.id();
    assert_eq!(node.take(&create, live()), vec![Out::Verdict(Verdict::Ignore), Out::Refused(room)]);
    assert!(!node.engine.knows(&room));
    // Nor does an event citing it, whichever way it comes.
    let join = authors.control("bob", room, (vec![room], 1), Action::Join);
    assert_eq!(node.take(&join, catch_up("mallory")), vec![Out::Refused(join.id())]);
    assert_eq!(node.take(&join, live()), vec![Out::Verdict(Verdict::Ignore), Out::Refused(join.id())]);
    assert_eq!(node.engine.rooms(), vec![]);
    // The same create in a catch-up page this node asked for makes the room, unpublished.
    let mallory = account_of("mallory");
    assert_eq!(
        node.take(&create, catch_up("mallory")),
        vec![
            Out::Room(room, "other".into(), mallory),
            Out::Keep(room, 0),
            Out::Changed(Effect::Created { user: mallory })
        ]
    );
    assert_eq!(node.engine.rooms(), vec![room]);
}

#[test]
fn a_duplicate_event_gets_only_an_ignore_verdict() {
    let mut authors = Authors::new();
    let (mut node, room) = lobby(&mut authors);
    let join = join(&mut node, &mut authors, room, &["bob"]).remove(0);
    assert_eq!(node.take(&join, live()), vec![Out::Verdict(Verdict::Ignore)]);
    assert_eq!(node.take(&join, catch_up("alice")), vec![], "no verdict off the topic");
    // A held event heard again is ignored too.
    let missing = authors.control("carol", room, node.cite(&room), Action::Join);
    let waits = authors.control("dave", room, (vec![missing.id()], 3), Action::Join);
    assert_eq!(node.take(&waits, live()), vec![Out::Verdict(Verdict::Ignore), Out::CatchUp(relay())]);
    assert_eq!(node.take(&waits, live()), vec![Out::Verdict(Verdict::Ignore)]);
    assert_eq!(node.engine.event_count(&room), 2);
}

#[test]
fn a_control_event_citing_an_unknown_one_waits_for_it() {
    let mut authors = Authors::new();
    let (mut node, room) = lobby(&mut authors);
    let (bob, carol) = (account_of("bob"), account_of("carol"));
    let bob_joins = authors.control("bob", room, node.cite(&room), Action::Join);
    let carol_joins = authors.control("carol", room, (vec![bob_joins.id()], 2), Action::Join);
    assert_eq!(node.take(&carol_joins, live()), vec![Out::Verdict(Verdict::Ignore), Out::CatchUp(relay())]);
    assert_eq!(node.engine.event_count(&room), 1);
    node.now += Duration::from_secs(29);
    assert_eq!(
        node.take(&bob_joins, live()),
        vec![
            Out::Keep(bob_joins.id(), 1),
            Out::Verdict(Verdict::Accept),
            Out::Changed(Effect::Joined { user: bob }),
            Out::Keep(carol_joins.id(), 2),
            Out::Changed(Effect::Joined { user: carol }),
        ]
    );
    assert_eq!(node.engine.heads(&room), vec![carol_joins.id()]);
}

#[test]
fn a_control_event_waiting_30_s_is_given_up() {
    let mut authors = Authors::new();
    let (mut node, room) = lobby(&mut authors);
    let never = authors.control("bob", room, node.cite(&room), Action::Join);
    let waits = authors.control("carol", room, (vec![never.id()], 2), Action::Join);
    assert_eq!(node.take(&waits, live()), vec![Out::Verdict(Verdict::Ignore), Out::CatchUp(relay())]);
    assert_eq!(node.tick(Duration::from_secs(29)), vec![]);
    assert_eq!(node.tick(Duration::from_secs(1)), vec![Out::Refused(waits.id())]);
    assert_eq!(node.tick(Duration::from_secs(60)), vec![], "given up once");
    // What it cited coming later brings in only itself.
    let out = node.take(&never, live());
    assert_eq!(
        out,
        vec![
            Out::Keep(never.id(), 1),
            Out::Verdict(Verdict::Accept),
            Out::Changed(Effect::Joined { user: account_of("bob") })
        ]
    );
    assert_eq!(node.engine.heads(&room), vec![never.id()]);
}

#[test]
fn a_control_event_waiting_30_s_is_given_up_whatever_input_notices() {
    let mut authors = Authors::new();
    let (mut node, room) = lobby(&mut authors);
    let never = authors.control("bob", room, node.cite(&room), Action::Join);
    let waits = authors.control("carol", room, (vec![never.id()], 2), Action::Join);
    node.take(&waits, live());
    // Not a tick but another event comes after the wait: the one given up is still told.
    node.now += Duration::from_secs(30);
    let dave_joins = authors.control("dave", room, node.cite(&room), Action::Join);
    assert_eq!(
        node.take(&dave_joins, live()),
        vec![
            Out::Refused(waits.id()),
            Out::Keep(dave_joins.id(), 1),
            Out::Verdict(Verdict::Accept),
            Out::Changed(Effect::Joined { user: account_of("dave") }),
        ]
    );
    assert_eq!(node.tick(Duration::from_secs(60)), vec![]);
}

#[test]
fn a_kick_by_a_non_admin_is_rejected_in_the_state_it_cites() {
    let mut authors = Authors::new();
    let (mut node, room) = lobby(&mut authors);
    let (bob, carol) = (account_of("bob"), account_of("carol"));
    join(&mut node, &mut authors, room, &["bob", "carol"]);
    assert_eq!(node.engine.check(&room, &bob, &Action::Kick(carol)), Err(Refusal::NotAdmin(bob)));
    let before_op = node.cite(&room);
    let kick = authors.control("bob", room, before_op.clone(), Action::Kick(carol));
    assert_eq!(node.take(&kick, live()), vec![Out::Verdict(Verdict::Reject), Out::Refused(kick.id())]);
    assert!(node.engine.state(&room).is_some_and(|s| s.is_member(&carol)));
    assert_eq!(node.engine.event_count(&room), 3);
    // Once bob is admin, a kick citing the state from before is still refused; one citing the
    // state after is taken.
    let op = authors.control("alice", room, node.cite(&room), Action::Op(bob));
    node.take(&op, Via::Own);
    assert_eq!(node.engine.check(&room, &bob, &Action::Kick(carol)), Ok(()));
    let backdated = authors.control("bob", room, before_op, Action::Kick(carol));
    assert_eq!(node.take(&backdated, live()), vec![Out::Verdict(Verdict::Reject), Out::Refused(backdated.id())]);
    let kick = authors.control("bob", room, node.cite(&room), Action::Kick(carol));
    assert_eq!(
        node.take(&kick, live()),
        vec![
            Out::Keep(kick.id(), 4),
            Out::Verdict(Verdict::Accept),
            Out::Changed(Effect::Kicked { user: carol, by: bob })
        ]
    );
}

#[test]
fn a_live_message_of_someone_removed_is_not_shown_whatever_state_it_cites() {
    let mut authors = Authors::new();
    let (mut node, room) = lobby(&mut authors);
    let (alice, bob) = (account_of("alice"), account_of("bob"));
    join(&mut node, &mut authors, room, &["bob", "carol"]);
    let before_ban = node.cite(&room);
    let ban = authors.control("alice", room, before_ban.clone(), Action::Ban(bob));
    assert_eq!(
        node.take(&ban, Via::Own),
        vec![
            Out::Keep(ban.id(), 3),
            Out::Publish(ban.id()),
            Out::Changed(Effect::Banned { user: bob, by: Some(alice) })
        ]
    );
    // Backdated: it cites the state in which bob was a member.
    let backdated = authors.message("bob", room, before_ban.clone(), "still here");
    assert_eq!(node.take(&backdated, live()), vec![Out::Verdict(Verdict::Ignore), Out::Refused(backdated.id())]);
    assert_eq!(node.take(&backdated, Via::Handed { from: relay() }), vec![Out::Refused(backdated.id())], "no verdict");
    // The same from a member now is shown.
    let said = authors.message("carol", room, before_ban, "hello");
    assert_eq!(node.take(&said, live()), vec![Out::Message(said.id())]);
    // A depth other than the one due is refused, as is a message of someone never a member.
    let (prev, depth) = node.cite(&room);
    let deep = authors.message("carol", room, (prev.clone(), depth + 1), "deep");
    assert_eq!(node.take(&deep, live()), vec![Out::Verdict(Verdict::Reject), Out::Refused(deep.id())]);
    let stranger = authors.message("dave", room, (prev, depth), "hi");
    assert_eq!(node.take(&stranger, live()), vec![Out::Verdict(Verdict::Reject), Out::Refused(stranger.id())]);
}

#[test]
fn a_message_citing_an_unknown_event_waits_for_it() {
    let mut authors = Authors::new();
    let (mut node, room) = lobby(&mut authors);
    join(&mut node, &mut authors, room, &["bob"]);
    let carol_joins = authors.control("carol", room, node.cite(&room), Action::Join);
    let said = authors.message("carol", room, (vec![carol_joins.id()], 3), "hi");
    assert_eq!(node.take(&said, live()), vec![Out::Verdict(Verdict::Ignore), Out::CatchUp(relay())]);
    node.now += Duration::from_secs(14);
    // Released with what it waited for, without a second verdict.
    assert_eq!(
        node.take(&carol_joins, live()),
        vec![
            Out::Keep(carol_joins.id(), 2),
            Out::Verdict(Verdict::Accept),
            Out::Changed(Effect::Joined { user: account_of("carol") }),
            Out::Message(said.id()),
        ]
    );
    assert_eq!(node.tick(Duration::from_secs(60)), vec![]);
}

#[test]
fn a_message_waiting_15_s_is_dropped() {
    let mut authors = Authors::new();
    let (mut node, room) = lobby(&mut authors);
    let never = authors.control("bob", room, node.cite(&room), Action::Join);
    let said = authors.message("bob", room, (vec![never.id()], 2), "hi");
    assert_eq!(node.take(&said, live()), vec![Out::Verdict(Verdict::Ignore), Out::CatchUp(relay())]);
    assert_eq!(node.tick(Duration::from_secs(14)), vec![]);
    assert_eq!(node.tick(Duration::from_secs(1)), vec![Out::Refused(said.id())]);
    let out = node.take(&never, live());
    assert!(!out.contains(&Out::Message(said.id())), "{out:?}");
}

#[test]
fn catch_up_pages_bring_history_only_from_members_now() {
    let mut authors = Authors::new();
    let (mut node, room) = lobby(&mut authors);
    join(&mut node, &mut authors, room, &["bob", "carol"]);
    let before_kick = node.cite(&room);
    let kick = authors.control("alice", room, node.cite(&room), Action::Kick(account_of("bob")));
    node.take(&kick, Via::Own);
    // Written while bob was a member, served by carol: history, kept.
    let old = authors.message("bob", room, before_kick.clone(), "before the kick");
    assert_eq!(node.take(&old, catch_up("carol")), vec![Out::Message(old.id())]);
    // Served by bob, no member now: refused, with no verdict (not heard on the topic).
    let other = authors.message("bob", room, before_kick.clone(), "also before");
    assert_eq!(node.take(&other, catch_up("bob")), vec![Out::Refused(other.id())]);
    // Never a member in the state it cites: refused whoever serves it.
    let stranger = authors.message("dave", room, before_kick, "hi");
    assert_eq!(node.take(&stranger, catch_up("carol")), vec![Out::Refused(stranger.id())]);
    // Heard live, bob's old message is not shown.
    assert_eq!(node.take(&old, live()), vec![Out::Verdict(Verdict::Ignore), Out::Refused(old.id())]);
}

#[test]
fn a_live_flood_of_control_events_is_rejected_beyond_the_burst() {
    let mut authors = Authors::new();
    let mut node = Node::new();
    let create = authors.create("alice", "lobby");
    let room = create.id();
    node.take(&create, Via::Disk);
    let ban = |authors: &mut Authors, node: &Node, i: u32| {
        authors.control("alice", room, node.cite(&room), Action::Ban(account_of(&format!("u{i}"))))
    };
    // The burst, and what 1 s of jitter refills.
    let burst = CONTROL_BURST + CONTROLS_PER_SEC;
    assert_eq!(burst, 22);
    for i in 0..burst {
        let event = ban(&mut authors, &node, i);
        assert!(node.take(&event, live()).contains(&Out::Verdict(Verdict::Accept)), "{i}");
    }
    let over = ban(&mut authors, &node, burst);
    assert_eq!(node.take(&over, live()), vec![Out::Verdict(Verdict::Reject), Out::Refused(over.id())]);
    assert_eq!(node.engine.event_count(&room), 1 + burst as usize);
    // Another account still gets through.
    let join = authors.control("carol", room, node.cite(&room), Action::Join);
    assert!(node.take(&join, live()).contains(&Out::Verdict(Verdict::Accept)));
    // A second later, alice has the sustained rate's worth again.
    node.now += Duration::from_secs(1);
    for i in 100..100 + CONTROLS_PER_SEC {
        let event = ban(&mut authors, &node, i);
        assert!(node.take(&event, live()).contains(&Out::Verdict(Verdict::Accept)), "{i}");
    }
    let over = ban(&mut authors, &node, 200);
    assert_eq!(node.take(&over, live()), vec![Out::Verdict(Verdict::Reject), Out::Refused(over.id())]);
    // Handed over rather than heard on the topic, it is refused with no gossip verdict.
    let handed = ban(&mut authors, &node, 201);
    assert_eq!(node.take(&handed, Via::Handed { from: relay() }), vec![Out::Refused(handed.id())]);
}

#[test]
fn own_control_events_are_held_to_the_burst() {
    let mut engine = RoomEngine::default();
    let now = Instant::now();
    let (alice, bob) = (account_of("alice"), account_of("bob"));
    assert!((0..CONTROL_BURST).all(|_| engine.allow_own_control(alice, now)));
    assert!(!engine.allow_own_control(alice, now), "the 21st in an instant");
    assert!(engine.allow_own_control(bob, now), "each account has its own");
    assert!(engine.allow_own_control(alice, now + Duration::from_millis(500)), "one back after 500 ms");
    assert!(!engine.allow_own_control(alice, now + Duration::from_millis(500)));
}

#[test]
fn catch_up_is_served_to_members_and_to_former_members_up_to_their_removal() {
    let mut authors = Authors::new();
    let (mut node, room) = lobby(&mut authors);
    let joins = join(&mut node, &mut authors, room, &["bob", "carol"]);
    let kick = authors.control("alice", room, node.cite(&room), Action::Kick(account_of("carol")));
    node.take(&kick, Via::Own);
    let after = join(&mut node, &mut authors, room, &["dave"]);
    let op = authors.control("alice", room, node.cite(&room), Action::Op(account_of("bob")));
    node.take(&op, Via::Own);
    let (bob, carol, erin) = (account_of("bob"), account_of("carol"), account_of("erin"));

    assert_eq!(node.engine.standing(&room, &bob), Standing::Member);
    assert_eq!(node.engine.standing(&room, &carol), Standing::Former { until: 3 });
    assert_eq!(node.engine.standing(&room, &erin), Standing::Stranger);
    let elsewhere = EventId::from_bytes([7; 32]);
    assert_eq!(node.engine.standing(&elsewhere, &bob), Standing::Stranger);
    assert_eq!(node.engine.serve_events(&room, &erin, &[room], None, 10), Err(ServeRefusal::NotMember));
    assert_eq!(node.engine.serve_events(&elsewhere, &bob, &[room], None, 10), Err(ServeRefusal::UnknownRoom));

    // A member gets all it lacks, ids it named that are not known here reported.
    let (page, until) = node.engine.serve_events(&room, &bob, &[joins[0].id(), elsewhere], None, 10).unwrap();
    assert_eq!(ids(&page.events), vec![joins[1].id(), kick.id(), after[0].id(), op.id()]);
    assert_eq!((page.more, page.unknown, until), (false, vec![elsewhere], None));
    // Page by page.
    let (page, _) = node.engine.serve_events(&room, &bob, &[room], None, 2).unwrap();
    assert_eq!((ids(&page.events), page.more), (vec![joins[0].id(), joins[1].id()], true));
    let (page, _) = node.engine.serve_events(&room, &bob, &[room], Some(joins[1].id()), 2).unwrap();
    assert_eq!((ids(&page.events), page.more), (vec![kick.id(), after[0].id()], true));
    let (page, _) = node.engine.serve_events(&room, &bob, &[room], Some(after[0].id()), 2).unwrap();
    assert_eq!((ids(&page.events), page.more), (vec![op.id()], false));

    // Carol's pages stop at her removal.
    let (page, until) = node.engine.serve_events(&room, &carol, &[room], None, 10).unwrap();
    assert_eq!(ids(&page.events), vec![joins[0].id(), joins[1].id(), kick.id()]);
    assert_eq!((page.more, until), (false, Some(3)));
    let (page, _) = node.engine.serve_events(&room, &carol, &[room], None, 2).unwrap();
    assert_eq!((ids(&page.events), page.more), (vec![joins[0].id(), joins[1].id()], true));
    let (page, _) = node.engine.serve_events(&room, &carol, &[room], Some(joins[1].id()), 2).unwrap();
    assert_eq!((ids(&page.events), page.more), (vec![kick.id()], false));
    // Back in, she is a member again.
    join(&mut node, &mut authors, room, &["carol"]);
    assert_eq!(node.engine.standing(&room, &carol), Standing::Member);
}

mod caps;
mod proptests;
