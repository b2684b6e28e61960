//! Attacks on a room by crafted peers built on the library, against real nodes on loopback: a
//! member's events whose depth is at the end of its range or simply wrong; a message of a
//! banned member backdated to before the ban; catch-up asked with another peer's certificate,
//! with a forged one, or by a certified user who never joined; a kick by that user; and a kicked
//! member's catch-up; a member serving pages of forged events, or keys named after others; an
//! admin who left banning from before the leave; a join claiming to be older than it is; a room
//! announced under a creator it does not have; a member refusing joiners. Members show none of it, membership does not move, catch-up gives
//! nothing to those it must not serve and a former member nothing written after their removal,
//! and the room goes on.
//!
//! Each attack sits beside something made the same way that does get in (a well-made message,
//! a join), so that a node which never heard the attack cannot pass for one that refused it.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use libp2p::PeerId;
use libp2p::gossipsub::IdentTopic;
use libp2p::identity::Keypair;
use meshchat::account::AccountId;
use meshchat::cert::Certificate;
use meshchat::clock::now_ms;
use meshchat::e2e::{Keyring, RoomKey};
use meshchat::protocol::keys::KeysResponse;
use meshchat::protocol::sync::{SyncRefusal, SyncRequest, SyncResponse};
use meshchat::room::event::{EventBody, EventPayload, SignedEvent, VerifiedEvent};
use meshchat::room::{Action, EventId};
use serde_json::Value;
use support::NodeProc;
use support::chat::{LoopbackTrio, loopback_trio, no_event_within};
use support::crafted::{
    announce_in_lobby, asked_heads, catch_up_everything, events_served, heads_of, kept_events, opened, page_up_to,
    sealed,
};
use support::lobby::{
    BobGone, carol_joins, certified_stranger, history, is, is_message, lobby_of_alice_and_bob, lobby_with_bob_gone,
    members, quit_for_identity, third_node,
};
use support::room_keys::{Writer, give, kept_keyring};
use support::sync_peer::SyncPeer;

/// How long a node is watched for something that must not show.
const QUIET: Duration = Duration::from_millis(1500);

/// At each of `nodes`, after an attack and then a join made the same way were published: the
/// join of `joiner` shows first, the attack (`what`, told by `attack`) not at all, and the
/// room's members are `listed`.
fn join_shown_not_the_attack(
    nodes: [&mut NodeProc; 2],
    joiner: &str,
    (what, attack): (&str, impl Fn(&Value) -> bool),
    listed: [&str; 3],
) {
    for node in nodes {
        let first = node.wait_for(&format!("{joiner}'s join"), |v| is(v, "joined", joiner) || attack(v));
        assert!(is(&first, "joined", joiner), "{}: {first}", node.name);
        no_event_within(node, QUIET, what, &attack);
        assert_eq!(members(node), listed, "{}: the members", node.name);
    }
}

/// A member (bob's key and certificate in a crafted peer, his node gone) publishes a leave and
/// a message at depth `u64::MAX`, and a leave and a message at a depth in range but not the one
/// their citations give; then a well-made message. alice and carol show the well-made one and
/// nothing else of it; bob is still a member; alice and carol go on talking.
#[test]
fn events_at_the_end_of_the_depth_range_or_at_a_wrong_depth_are_refused_and_the_room_goes_on() {
    let (bob_dir, carol_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let LoopbackTrio { boot: _boot, boot_addr, mut alice, alice_addr, mut bob, .. } =
        loopback_trio(&[], [None, Some(bob_dir.path())]);
    let lobby = lobby_of_alice_and_bob(&mut alice, &mut bob);
    let (mut carol, carol_addr) = third_node("carol", &boot_addr, carol_dir.path());
    carol_joins(&mut carol, &mut [&mut alice, &mut bob]);
    let before = members(&mut alice);
    assert_eq!(before, ["alice", "bob", "carol"]);
    let (key, certificate) = quit_for_identity(&mut bob, bob_dir.path());

    let mallory = SyncPeer::new(key.clone());
    let ([at_alice, at_carol], topic) = mallory.on_room(&lobby, [&alice_addr, &carol_addr]);
    let (prev, depth) = heads_of(&opened(&asked_heads(&mallory, at_alice, lobby, &certificate)));
    let forge = |depth: u64, payload: EventPayload| sealed(&key, &certificate, lobby, &prev, depth, now_ms(), payload);
    // The attacking messages are bob's numbers 1 and 2, so that one taken in would be shown at
    // once; the well-made one, number 3, waits for them (2 s at most) before it is shown. Their
    // session's key is given to alice and carol first, so that all of them can be read.
    let mut bobs = Writer::new(lobby, &certificate);
    let (at_max, session_key) = bobs.message(&prev, 1, "a message at depth u64::MAX");
    let (at_wrong_depth, _) = bobs.message(&prev, 2, "a message at a wrong depth");
    let (well_made, _) = bobs.message(&prev, 3, "a well-made message");
    for at in [at_alice, at_carol] {
        assert_eq!(give(&mallory, at, &certificate, &session_key), KeysResponse::Taken);
    }
    let attacks = [
        forge(u64::MAX, EventPayload::Control(Action::Leave)),
        forge(u64::MAX, at_max),
        forge(depth + 1, EventPayload::Control(Action::Leave)),
        forge(depth + 7, at_wrong_depth),
    ];
    for data in attacks {
        mallory.publish(&topic, data);
    }
    // Published after the attacks on the same connections: once it is shown, they were heard.
    mallory.publish(&topic, forge(depth, well_made));
    for node in [&mut alice, &mut carol] {
        node.wait_for("bob's well-made message", |v| is_message(v, "bob", "a well-made message"));
    }

    alice.send("the room goes on");
    carol.wait_for("alice's message", |v| is_message(v, "alice", "the room goes on"));
    carol.send("so it does");
    alice.wait_for("carol's message", |v| is_message(v, "carol", "so it does"));
    for node in [&mut alice, &mut carol] {
        no_event_within(node, QUIET, "attack shown", |v| {
            (v["type"] == "message" && v["from"] == "bob") || is(v, "left", "bob") || v["type"] == "kicked"
        });
        assert_eq!(members(node), before, "{}: the members changed", node.name);
    }
}

/// alice bans bob while his node is away. A crafted peer with bob's key and certificate
/// publishes a message citing the heads bob's node kept before the ban, at the depth they give
/// and dated before the ban: soft-failed, it is neither shown nor kept by alice or carol (the
/// same message made before the ban is shown). Nor does catch-up hand it out: asked by bob,
/// alice refuses, or serves him as a former member the room up to his ban, without it and
/// without anything written after the ban.
#[test]
fn a_message_backdated_to_before_a_ban_is_neither_shown_nor_served() {
    let (bob_dir, carol_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let LoopbackTrio { boot: _boot, boot_addr, mut alice, alice_addr, mut bob, .. } =
        loopback_trio(&[], [None, Some(bob_dir.path())]);
    let lobby = lobby_of_alice_and_bob(&mut alice, &mut bob);
    let (mut carol, carol_addr) = third_node("carol", &boot_addr, carol_dir.path());
    carol_joins(&mut carol, &mut [&mut alice, &mut bob]);
    let (key, certificate) = quit_for_identity(&mut bob, bob_dir.path());
    // What bob's node knew before the ban.
    let (prev, depth) = heads_of(&kept_events(bob_dir.path(), lobby));

    let mallory = SyncPeer::new(key.clone());
    let ([at_alice, at_carol], topic) = mallory.on_room(&lobby, [&alice_addr, &carol_addr]);
    let forge = |ts_ms: u64, payload: EventPayload| sealed(&key, &certificate, lobby, &prev, depth, ts_ms, payload);
    let mut bobs = Writer::new(lobby, &certificate);
    let (before, session_key) = bobs.message(&prev, 1, "bob, before the ban");
    for at in [at_alice, at_carol] {
        assert_eq!(give(&mallory, at, &certificate, &session_key), KeysResponse::Taken);
    }
    // Made so before the ban, it is shown: the citations and depth are right.
    let before_ban = now_ms();
    mallory.publish(&topic, forge(before_ban, before));
    for node in [&mut alice, &mut carol] {
        node.wait_for("bob's message", |v| is_message(v, "bob", "bob, before the ban"));
    }

    alice.send("/ban bob");
    for node in [&mut alice, &mut carol] {
        node.wait_for("bob banned", |v| is(v, "banned", "bob") && v["by"] == "alice");
    }
    let backdated = "bob, backdated to before the ban";
    mallory.publish(&topic, forge(before_ban + 1, bobs.message(&prev, 2, backdated).0));
    alice.send("alice, after the ban");
    carol.wait_for("alice's message", |v| is_message(v, "alice", "alice, after the ban"));
    for node in [&mut alice, &mut carol] {
        no_event_within(node, QUIET, "backdated message", |v| v["type"] == "message" && v["text"] == backdated);
        let kept = history(node);
        assert!(kept.iter().any(|t| t == "bob, before the ban"), "{}: {kept:?}", node.name);
        assert!(!kept.iter().any(|t| t == backdated), "{}: the backdated message is kept: {kept:?}", node.name);
    }

    // An event after the ban, too.
    alice.send("/op carol");
    carol.wait_for("carol made an admin", |v| v["type"] == "admin" && v["user"] == "carol");

    // Catch-up serves bob nothing the ban shut him out of: refused, or (a former member) the
    // room up to the ban, without the backdated message, which no member kept.
    let ban = EventPayload::Control(Action::Ban(certificate.body.account));
    match mallory.ask(at_alice, catch_up_everything(lobby, &certificate)) {
        SyncResponse::Refused(SyncRefusal::Banned | SyncRefusal::NotMember) => {}
        SyncResponse::Page { events, messages, .. } => {
            let (actions, texts) = page_up_to(&events, &messages, &ban, &mut bobs.ring);
            assert!(!actions.iter().any(|(_, p)| matches!(p, EventPayload::Control(Action::Op(_)))), "{actions:?}");
            assert!(texts.iter().any(|t| t == "bob, before the ban"), "{texts:?}");
            for text in [backdated, "alice, after the ban"] {
                assert!(!texts.iter().any(|t| t == text), "{text:?} served to bob, banned: {texts:?}");
            }
        }
        other => panic!("a catch-up for bob, banned: {other:?}"),
    }
}

/// Catch-up by peers that may not have it. A fresh key with a member's certificate (taken from
/// the room's heads), or with a certificate of its own making, is refused outright, heads and
/// catch-up alike. carol, certified but never in the room, gets the heads (to cite in a join)
/// and nothing else: no events, no messages.
#[test]
fn catch_up_is_refused_to_a_stolen_certificate_and_to_a_certified_stranger() {
    let carol_dir = tempfile::tempdir().unwrap();
    let LoopbackTrio { boot: _boot, boot_addr, mut alice, alice_addr, mut bob, .. } = loopback_trio(&[], [None, None]);
    let lobby = lobby_of_alice_and_bob(&mut alice, &mut bob);
    alice.send("for members only");
    bob.wait_for("alice's message", |v| is_message(v, "alice", "for members only"));
    let (carol_key, carol_certificate) = certified_stranger(&boot_addr, carol_dir.path());

    let carol_peer = SyncPeer::new(carol_key);
    let at_alice = carol_peer.dial(&alice_addr);
    let heads = asked_heads(&carol_peer, at_alice, lobby, &carol_certificate);
    let opened_heads = opened(&heads);
    assert!(!heads.is_empty(), "carol gets the heads");
    assert!(opened_heads.iter().all(|e| e.room == lobby), "{opened_heads:?}");
    let answer = carol_peer.ask(at_alice, catch_up_everything(lobby, &carol_certificate));
    assert_eq!(answer, SyncResponse::Refused(SyncRefusal::NotMember), "a catch-up for carol");

    let mallory = SyncPeer::new(Keypair::generate_ed25519());
    let at_alice = mallory.dial(&alice_addr);
    let stolen = heads[0].certificate.clone();
    assert_ne!(stolen.body.peer_id, mallory.peer_id.to_bytes());
    // carol's certificate made out to mallory's peer: the authority's signature no longer holds.
    let mut made_up = carol_certificate.clone();
    made_up.body.peer_id = mallory.peer_id.to_bytes();
    for (what, certificate) in [("a member's stolen certificate", &stolen), ("a made-up certificate", &made_up)] {
        let heads = mallory.ask(at_alice, SyncRequest::Heads { room: lobby, certificate: certificate.clone() });
        assert_eq!(heads, SyncResponse::Refused(SyncRefusal::BadCertificate), "heads with {what}");
        let catch_up = mallory.ask(at_alice, catch_up_everything(lobby, certificate));
        assert_eq!(catch_up, SyncResponse::Refused(SyncRefusal::BadCertificate), "a catch-up with {what}");
    }
}

/// alice and bob in #lobby (a bootstrap beside them), and carol, certified but never in the room,
/// as a crafted peer on the room's topic with both, holding the room's heads as alice gives
/// them.
struct Stranger {
    _boot: NodeProc,
    _carol_dir: tempfile::TempDir,
    alice: NodeProc,
    bob: NodeProc,
    lobby: EventId,
    key: Keypair,
    certificate: Certificate,
    mallory: SyncPeer,
    topic: IdentTopic,
    heads: Vec<VerifiedEvent>,
}

fn stranger_on_lobby() -> Stranger {
    let carol_dir = tempfile::tempdir().unwrap();
    let LoopbackTrio { boot, boot_addr, mut alice, alice_addr, mut bob, bob_addr, .. } =
        loopback_trio(&[], [None, None]);
    let lobby = lobby_of_alice_and_bob(&mut alice, &mut bob);
    let (key, certificate) = certified_stranger(&boot_addr, carol_dir.path());
    let mallory = SyncPeer::new(key.clone());
    let ([at_alice, _at_bob], topic) = mallory.on_room(&lobby, [&alice_addr, &bob_addr]);
    let heads = opened(&asked_heads(&mallory, at_alice, lobby, &certificate));
    Stranger { _boot: boot, _carol_dir: carol_dir, alice, bob, lobby, key, certificate, mallory, topic, heads }
}

/// carol, certified but never in the room, publishes on its topic a kick of bob citing the
/// room's heads at the right depth, then a join made the same way. The join is taken (so both
/// were heard), the kick is not: bob is still a member, at alice's and at his own node.
#[test]
fn a_kick_by_someone_never_in_the_room_is_refused() {
    let Stranger { _boot, mut alice, mut bob, lobby, key, certificate, mallory, topic, heads, .. } =
        stranger_on_lobby();
    let bob_account = heads.iter().find(|e| e.author == "bob").expect("bob's join is the head").account;
    let (prev, depth) = heads_of(&heads);
    let forge =
        |action: Action| sealed(&key, &certificate, lobby, &prev, depth, now_ms(), EventPayload::Control(action));
    mallory.publish(&topic, forge(Action::Kick(bob_account)));
    // Published after the kick on the same connections: once it is taken, the kick was heard.
    mallory.publish(&topic, forge(Action::Join));
    let kick = |v: &Value| is(v, "kicked", "bob") || is(v, "left", "bob");
    join_shown_not_the_attack([&mut alice, &mut bob], "carol", ("kick of bob", kick), ["alice", "bob", "carol"]);
    alice.send("bob is still here");
    bob.wait_for("alice's message", |v| is_message(v, "alice", "bob is still here"));
}

/// alice makes bob an admin, carol joins, and bob leaves. bob's key and certificate in a
/// crafted peer then sign a ban of carol citing the state from before his leave, where he was
/// an admin (it sorts before his leave), and publish it; then a join of his citing the room's
/// heads. alice and carol show bob's join and not the ban: carol is still a member.
#[test]
fn an_admin_who_left_cannot_ban_from_before_the_leave() {
    let (bob_dir, carol_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let LoopbackTrio { boot: _boot, boot_addr, mut alice, alice_addr, mut bob, .. } =
        loopback_trio(&[], [None, Some(bob_dir.path())]);
    let lobby = lobby_of_alice_and_bob(&mut alice, &mut bob);
    alice.send("/op bob");
    bob.wait_for("bob made an admin", |v| v["type"] == "admin" && v["user"] == "bob");
    let (mut carol, carol_addr) = third_node("carol", &boot_addr, carol_dir.path());
    carol_joins(&mut carol, &mut [&mut alice, &mut bob]);
    bob.send("/leave lobby");
    for node in [&mut alice, &mut carol] {
        node.wait_for("bob left", |v| is(v, "left", "bob"));
    }
    let (key, certificate) = quit_for_identity(&mut bob, bob_dir.path());

    let events = kept_events(bob_dir.path(), lobby);
    let bob_account = certificate.body.account;
    let op = events.iter().find(|e| e.body.payload == EventPayload::Control(Action::Op(bob_account))).expect("the op");
    let carol_account = events.iter().find(|e| e.author == "carol").expect("carol's join").account;
    let (heads, depth) = heads_of(&events);
    let mallory = SyncPeer::new(key.clone());
    let ([_, _], topic) = mallory.on_room(&lobby, [&alice_addr, &carol_addr]);
    let ban = EventPayload::Control(Action::Ban(carol_account));
    mallory.publish(&topic, sealed(&key, &certificate, lobby, &[op.id], op.body.depth + 1, now_ms(), ban));
    // Published after the ban on the same connections: once it is taken, the ban was heard.
    let join = EventPayload::Control(Action::Join);
    mallory.publish(&topic, sealed(&key, &certificate, lobby, &heads, depth, now_ms(), join));
    let ban = |v: &Value| is(v, "banned", "carol") || is(v, "left", "carol");
    join_shown_not_the_attack([&mut alice, &mut carol], "bob", ("a ban of carol", ban), ["alice", "carol", "bob"]);
    alice.send("carol is still here");
    carol.wait_for("alice's message", |v| is_message(v, "alice", "carol is still here"));
}

/// alice creates #lobby and bob joins. carol, certified, never in the room, publishes through a
/// crafted peer a join citing only the room's create, made to sort before bob's at the same
/// depth: the fold counts her as the oldest member after alice. alice leaves, the last admin:
/// her node makes bob an admin first (he joined first as it saw it), and carol is an admin
/// nowhere (without that, the fold's succession makes her one).
#[test]
fn a_join_claiming_to_be_older_than_it_is_does_not_inherit_the_room() {
    let Stranger { _boot, mut alice, mut bob, lobby, key, certificate, mallory, topic, heads, .. } =
        stranger_on_lobby();
    let bobs_join = heads.iter().find(|e| e.author == "bob").expect("bob's join is the head").id;
    let join = std::iter::repeat_with(|| {
        sealed(&key, &certificate, lobby, &[lobby], 1, now_ms(), EventPayload::Control(Action::Join))
    })
    .find(|bytes| SignedEvent::decode(bytes).ok().and_then(|e| e.id()).is_some_and(|id| id < bobs_join))
    .expect("a join sorting first");
    mallory.publish(&topic, join);
    for node in [&mut alice, &mut bob] {
        node.wait_for("carol's join", |v| is(v, "joined", "carol"));
    }
    alice.send("/leave lobby");
    let admin = bob.wait_for("a new admin", |v| v["type"] == "admin" && v["room"] == "lobby");
    assert_eq!((&admin["user"], &admin["by"]), (&"bob".into(), &"alice".into()), "{admin}");
    bob.wait_for("alice left", |v| is(v, "left", "alice"));
    no_event_within(&mut bob, QUIET, "carol made an admin", |v| is(v, "admin", "carol"));
    bob.send("/members lobby");
    let listed = bob.wait_type("members");
    let admins: Vec<&str> = listed["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter(|m| m["admin"] == true)
        .filter_map(|m| m["user"].as_str())
        .collect();
    assert_eq!(admins, ["bob"], "{listed}");
}

/// alice and bob in #lobby; carol, certified, her key made to sort before theirs (so that she is
/// the member a joiner asks first), announces herself in the room through a crafted peer and
/// refuses every request for its heads. dave's one `/join lobby` asks her, then the next member,
/// and joins (without asking on, carol's refusal was the join's answer, every time). dave leaves;
/// carol now gives the heads and refuses the join handed to her with the first catch-up
/// request: dave's one `/join` hands it to the next member, and joins.
#[test]
fn a_member_refusing_a_joiner_does_not_keep_them_out() {
    let (carol_dir, dave_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let LoopbackTrio { boot: _boot, boot_addr, mut alice, alice_addr, mut bob, .. } = loopback_trio(&[], [None, None]);
    let lobby = lobby_of_alice_and_bob(&mut alice, &mut bob);
    let members: Vec<PeerId> = [&alice, &bob].iter().map(|n| n.ready_peer_id().parse().expect("a peer id")).collect();
    let key = std::iter::repeat_with(Keypair::generate_ed25519)
        .find(|k| members.iter().all(|m| k.public().to_peer_id() < *m))
        .expect("a key sorting first");
    let encoded = key.to_protobuf_encoding().expect("an encoded key");
    std::fs::write(carol_dir.path().join(meshchat::identity::KEY_FILE), encoded).unwrap();
    let (key, certificate) = certified_stranger(&boot_addr, carol_dir.path());
    assert!(members.iter().all(|m| key.public().to_peer_id() < *m), "carol's node took the key given");

    let (mut dave, dave_addr) = third_node("dave", &boot_addr, dave_dir.path());
    support::chat::register(&mut dave, "dave", support::chat::PASSWORDS[3]);
    let mallory = SyncPeer::new(key.clone());
    // What carol is asked: the heads, and joins handed over with a catch-up request.
    let (heads_asked, joins_handed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let counted = {
        let (heads_asked, joins_handed) = (heads_asked.clone(), joins_handed.clone());
        move |request: &SyncRequest| match request {
            SyncRequest::Heads { .. } => heads_asked.fetch_add(1, Ordering::SeqCst),
            SyncRequest::CatchUp(c) if c.join.is_some() => joins_handed.fetch_add(1, Ordering::SeqCst),
            SyncRequest::CatchUp(_) => 0,
        }
    };
    let count = counted.clone();
    mallory.serve(move |request| {
        count(&request);
        SyncResponse::Refused(SyncRefusal::NotMember)
    });
    let at_alice = mallory.dial(&alice_addr);
    let create = opened(&asked_heads(&mallory, at_alice, lobby, &certificate));
    let creator = create.iter().find(|e| e.id == lobby).expect("the room's create, beside its heads").account;
    let at_dave = mallory.dial(&dave_addr);
    announce_in_lobby(&mallory, at_dave, (&key, &certificate), lobby, creator);
    support::chat::wait_online(&mut dave, "carol");
    let mut join = |dave: &mut NodeProc, when: &str| {
        dave.send("/join lobby");
        let answer = dave.wait_for("the join's answer", |v| v["type"] == "error" || is(v, "joined", "dave"));
        assert!(is(&answer, "joined", "dave"), "{when}: {answer}");
        alice.wait_for("dave's join", |v| is(v, "joined", "dave"));
    };
    join(&mut dave, "carol refusing the heads");
    assert_eq!(heads_asked.load(Ordering::SeqCst), 1, "carol was asked first");

    // Now carol gives the heads (as alice gives them) and refuses the join handed to her with
    // the first catch-up request: the join goes to the next member.
    dave.send("/leave lobby");
    dave.wait_for("dave left", |v| is(v, "left", "dave"));
    let heads = asked_heads(&mallory, at_alice, lobby, &certificate);
    mallory.serve(move |request| {
        counted(&request);
        match request {
            SyncRequest::Heads { .. } => SyncResponse::Heads { events: heads.clone() },
            _ => SyncResponse::Refused(SyncRefusal::NotMember),
        }
    });
    join(&mut dave, "carol refusing the join");
    // (Once in, dave's node hands the join to every other member as it catches up from them.)
    assert!(joins_handed.load(Ordering::SeqCst) >= 1, "carol was handed the join");
}

/// carol, certified, makes a room #lobby of her own and her crafted peer announces itself in it
/// as a room created by alice (whose node is gone), answering a request for its heads with its
/// create event. bob's `/join lobby` is refused with what the create says; nothing is signed:
/// the crafted peer is asked for the heads and nothing more (without the check, the join is
/// signed and handed over with a catch-up request).
#[test]
fn a_room_announced_under_another_creator_is_not_joined() {
    let (alice_dir, carol_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let LoopbackTrio { boot: _boot, boot_addr, mut alice, mut bob, bob_addr, .. } =
        loopback_trio(&[], [Some(alice_dir.path()), None]);
    support::chat::register(&mut alice, "alice", support::chat::PASSWORDS[0]);
    support::chat::register(&mut bob, "bob", support::chat::PASSWORDS[1]);
    let (_, alices) = quit_for_identity(&mut alice, alice_dir.path());
    let (key, certificate) = certified_stranger(&boot_addr, carol_dir.path());

    let create = EventBody {
        author: certificate.body.account,
        room: None,
        prev: Vec::new(),
        depth: 0,
        ts_ms: now_ms(),
        nonce: rand::random(),
        payload: EventPayload::Create { name: "lobby".into() },
    };
    let create = SignedEvent::seal(&key, &certificate, &create).expect("a signed create");
    let room = create.open_stored().expect("the create").id;
    let mallory = SyncPeer::new(key.clone());
    mallory.serve(move |request| match request {
        SyncRequest::Heads { .. } => SyncResponse::Heads { events: vec![create.clone()] },
        _ => SyncResponse::Refused(SyncRefusal::UnknownRoom),
    });
    let at_bob = mallory.dial(&bob_addr);
    announce_in_lobby(&mallory, at_bob, (&key, &certificate), room, alices.body.account);

    let mut answers = Vec::new();
    for _ in 0..50 {
        bob.send("/join lobby");
        let answer = bob.wait_for("the join's answer", |v| v["type"] == "error" || is(v, "joined", "bob"));
        let refused = answer["message"].as_str().is_some_and(|m| m.contains("announced as"));
        answers.push(answer);
        if refused || answers.last().is_some_and(|a| a["type"] != "error") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let refusal = answers.last().cloned().unwrap_or_default();
    assert!(refusal["message"].as_str().is_some_and(|m| m.contains("announced as")), "{answers:?}");
    assert_eq!(refusal["code"], "no_such_room", "{refusal}");
    let message = refusal["message"].as_str().unwrap_or_default();
    assert!(message.contains("created by alice") && message.contains("created by carol"), "{message}");
    assert_eq!(mallory.asked_of_it(), 1, "the heads only: no join handed over");
}

/// alice kicks bob while his node is away, then writes "after the kick" and makes carol an
/// admin. bob's key and certificate in a crafted peer ask alice for everything: the answer
/// holds the room's events up to and including the kick, none after it, and the messages
/// written before the kick, none after.
#[test]
fn a_kicked_member_catches_up_to_the_kick_and_no_further() {
    let (bob_dir, carol_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let LoopbackTrio { boot: _boot, boot_addr, mut alice, alice_addr, mut bob, .. } =
        loopback_trio(&[], [None, Some(bob_dir.path())]);
    let lobby = lobby_of_alice_and_bob(&mut alice, &mut bob);
    let (mut carol, _) = third_node("carol", &boot_addr, carol_dir.path());
    carol_joins(&mut carol, &mut [&mut alice, &mut bob]);
    bob.send("bob, before the kick");
    alice.wait_for("bob's message", |v| is_message(v, "bob", "bob, before the kick"));
    alice.send("alice, before the kick");
    bob.wait_for("alice's message", |v| is_message(v, "alice", "alice, before the kick"));
    let (key, certificate) = quit_for_identity(&mut bob, bob_dir.path());

    alice.send("/kick bob");
    alice.wait_for("bob kicked", |v| is(v, "kicked", "bob"));
    alice.send("after the kick");
    alice.send("/op carol");
    carol.wait_for("alice's message", |v| is_message(v, "alice", "after the kick"));
    carol.wait_for("carol made an admin", |v| v["type"] == "admin" && v["user"] == "carol");

    let mallory = SyncPeer::new(key);
    let at_alice = mallory.dial(&alice_addr);
    let answer = mallory.ask(at_alice, catch_up_everything(lobby, &certificate));
    let SyncResponse::Page { events, more_events, messages, more_messages, keys } = answer else {
        panic!("a page for bob, kicked: {answer:?}");
    };
    assert!(!more_events && !more_messages, "one page holds it all");
    let kick = EventPayload::Control(Action::Kick(certificate.body.account));
    assert!(keys.is_empty(), "keys passed to bob, kicked: {keys:?}");
    let (actions, texts) = page_up_to(&events, &messages, &kick, &mut kept_keyring(bob_dir.path()));
    for (author, payload) in [
        ("alice", EventPayload::Create { name: "lobby".into() }),
        ("bob", EventPayload::Control(Action::Join)),
        ("carol", EventPayload::Control(Action::Join)),
    ] {
        assert!(actions.contains(&(author.to_string(), payload.clone())), "{author} {payload:?} in {actions:?}");
    }
    assert!(!actions.iter().any(|(_, p)| matches!(p, EventPayload::Control(Action::Op(_)))), "{actions:?}");
    for text in ["bob, before the kick", "alice, before the kick"] {
        assert!(texts.iter().any(|t| t == text), "{text:?} in {texts:?}");
    }
    assert!(!texts.iter().any(|t| t == "after the kick"), "a message written after the kick: {texts:?}");
}

/// A member (bob's key and certificate in a crafted peer, his node gone) announces itself in the
/// room, and answers alice's catch-up with pages of forged events, each opened by an event alice
/// knows (a different one each page, so that the page seems to move on) and saying more follow.
/// Every forged event costs alice a signature check: she asks for one page and no more, and
/// the room goes on.
#[test]
fn a_member_serving_forged_catch_up_pages_is_asked_for_one_and_no_more() {
    let BobGone { boot: _boot, mut alice, alice_addr, lobby, key, certificate } = lobby_with_bob_gone();
    let mallory = SyncPeer::new(key.clone());
    let at_alice = mallory.dial(&alice_addr);
    let known = events_served(&mallory, at_alice, lobby, &certificate);
    let opened_known = opened(&known);
    assert!(known.len() >= 2, "the create and the joins: {opened_known:?}");
    let creator = opened_known.iter().find(|e| e.id == lobby).expect("the create").body.author;
    let (prev, depth) = heads_of(&opened_known);
    // Well made but for a signature byte: each is checked, and fails.
    let forged: Vec<SignedEvent> = (0..999)
        .map(|_| {
            let bytes = sealed(&key, &certificate, lobby, &prev, depth, now_ms(), EventPayload::Control(Action::Leave));
            let mut event = SignedEvent::decode(&bytes).expect("an event");
            event.signature[0] ^= 0xff;
            event
        })
        .collect();
    let mut pages = 0usize;
    mallory.serve(move |_| {
        pages += 1;
        let mut events = vec![known[pages % known.len()].clone()];
        events.extend(forged.iter().cloned());
        SyncResponse::Page { events, more_events: true, messages: Vec::new(), more_messages: false, keys: Vec::new() }
    });
    // Bob online again, in the lobby: alice catches the room up from him.
    announce_in_lobby(&mallory, at_alice, (&key, &certificate), lobby, creator);
    alice.wait_for("bob online", |v| v["type"] == "presence" && v["user"] == "bob" && v["state"] == "online");
    let asked = std::time::Instant::now();
    while mallory.asked_of_it() == 0 && asked.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(mallory.asked_of_it() >= 1, "alice never caught up from bob");
    // Time for many more pages, were they asked for.
    std::thread::sleep(Duration::from_secs(3));
    assert!(mallory.asked_of_it() <= 2, "pages of forged events asked for: {}", mallory.asked_of_it());
    alice.send("alice goes on");
    alice.wait_for("her message", |v| is_message(v, "alice", "alice goes on"));
    assert_eq!(members(&mut alice), ["alice", "bob"]);
}

/// A member (bob's key and certificate in a crafted peer, his node gone) answers alice's
/// catch-up with a page holding a message of his and its session's key, and beside them keys of
/// sessions made up on the spot, named after alice (whose share of sessions they would fill,
/// her later messages then unread) or after nobody in the room. alice shows bob's message and
/// keeps its key; she keeps none of the made-up ones.
#[test]
fn keys_a_catch_up_page_names_after_someone_else_are_not_kept() {
    let (alice_dir, bob_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let LoopbackTrio { boot: _boot, mut alice, alice_addr, mut bob, .. } =
        loopback_trio(&[], [Some(alice_dir.path()), Some(bob_dir.path())]);
    let lobby = lobby_of_alice_and_bob(&mut alice, &mut bob);
    let (key, certificate) = quit_for_identity(&mut bob, bob_dir.path());
    let mallory = SyncPeer::new(key.clone());
    let at_alice = mallory.dial(&alice_addr);
    let known = opened(&events_served(&mallory, at_alice, lobby, &certificate));
    let alices = known.iter().find(|e| e.id == lobby).expect("the create").body.author;
    let (prev, depth) = heads_of(&known);
    let mut bobs = Writer::new(lobby, &certificate);
    let (message, bobs_key) = bobs.message(&prev, 7, "bob, served in a page");
    let message = SignedEvent::decode(&sealed(&key, &certificate, lobby, &prev, depth, now_ms(), message)).unwrap();
    let mut made_up: Vec<RoomKey> = Vec::new();
    for author in [alices, AccountId::from_bytes([7; 16])] {
        for n in 1..=20 {
            let sealing = Keyring::default().seal(lobby, author, &BTreeSet::from([author]), &prev, n, "made up");
            made_up.push(sealing.key);
        }
    }
    let page_keys: Vec<RoomKey> = std::iter::once(bobs_key.clone()).chain(made_up.iter().cloned()).collect();
    mallory.serve(move |_| SyncResponse::Page {
        events: Vec::new(),
        more_events: false,
        messages: vec![message.clone()],
        more_messages: false,
        keys: page_keys.clone(),
    });
    announce_in_lobby(&mallory, at_alice, (&key, &certificate), lobby, alices);
    alice.wait_for("bob's message, opened", |v| is_message(v, "bob", "bob, served in a page"));
    alice.send("/quit");
    alice.wait_exit(Duration::from_secs(10));
    let kept = meshchat::store::NodeStore::open(alice_dir.path()).unwrap().room_keys().unwrap();
    assert!(kept.iter().any(|k| k.session == bobs_key.session && k.author == certificate.body.account));
    let planted: Vec<&RoomKey> = kept.iter().filter(|k| made_up.iter().any(|m| m.session == k.session)).collect();
    assert!(planted.is_empty(), "{} made-up keys kept", planted.len());
}
