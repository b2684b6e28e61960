//! End-to-end encryption of rooms against crafted peers built on the library, on loopback: a
//! certified user who never joined but listens on the room's topic, and a member who is kicked
//! (or banned) and stays on the topic with every key their node held. Each hears the envelopes
//! and decrypts none it must not, nor gets a key for them from any member; the kicked one reads
//! again once they rejoin, the banned one once unbanned and back. A message whose key a member's
//! peer gives only after the reader gave up waiting is shown again once it can be read.
//!
//! Each refusal sits beside what does get through (the same crafted peer reading a message while
//! still a member, the members reading each other), so that a test cannot pass for want of
//! messages.

mod support;

use std::time::{Duration, Instant};

use libp2p::PeerId;
use meshchat::cert::Certificate;
use meshchat::clock::now_ms;
use meshchat::e2e::Keyring;
use meshchat::protocol::keys::{KeysRefusal, KeysRequest, KeysResponse};
use meshchat::room::EventId;
use meshchat::room::event::{EventPayload, SignedEvent};
use support::chat::{LoopbackTrio, expect_error, join_room, loopback_trio};
use support::crafted::{asked_heads, heads_of, opened, sealed};
use support::lobby::{
    BobGone, carol_joins, certified_stranger, history, is, is_message, lobby_of_alice_and_bob, lobby_with_bob_gone,
    quit_for_identity, third_node,
};
use support::room_keys::{Writer, give, kept_keyring, open_all};
use support::sync_peer::SyncPeer;
use support::{NodeBuilder, NodeProc};

/// How long a crafted peer waits to hear what members wrote.
const HEAR_WITHIN: Duration = Duration::from_secs(15);

/// The room message events of `room` dated `since` (ms) or later that `peer` hears from now,
/// until it holds `count` of them (panics after [`HEAR_WITHIN`]); what else it hears is dropped
/// (gossip may bring older messages late).
fn hear_messages(peer: &SyncPeer, room: EventId, since: u64, count: usize) -> Vec<SignedEvent> {
    let deadline = Instant::now() + HEAR_WITHIN;
    let mut messages = Vec::new();
    while messages.len() < count {
        assert!(Instant::now() < deadline, "heard {} of {count} messages: {messages:?}", messages.len());
        for data in peer.heard() {
            let Ok(signed) = SignedEvent::decode(&data) else { continue };
            let Some(event) = signed.open_stored() else { continue };
            let message = matches!(event.body.payload, EventPayload::Message { .. });
            if event.room == room && message && event.body.ts_ms >= since {
                messages.push(signed);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    messages
}

/// The sessions `messages` are sealed with, each once.
fn sessions_of(messages: &[SignedEvent]) -> Vec<String> {
    let mut sessions: Vec<String> = messages
        .iter()
        .filter_map(|m| match m.open_stored()?.body.payload {
            EventPayload::Message { sealed, .. } => Some(sealed.session),
            _ => None,
        })
        .collect();
    sessions.sort();
    sessions.dedup();
    sessions
}

/// The authors of `messages`, sorted.
fn authors_of(messages: &[SignedEvent]) -> Vec<String> {
    let mut authors: Vec<String> = messages.iter().filter_map(|m| m.open_stored()).map(|e| e.author).collect();
    authors.sort();
    authors
}

/// Asks each of `members` for the keys of `sessions` of `room` as the holder of `certificate`:
/// each refuses, for it is not a member.
fn asked_keys_are_refused(
    peer: &SyncPeer,
    members: &[PeerId],
    certificate: &Certificate,
    room: EventId,
    sessions: &[String],
) {
    for &member in members {
        let request = KeysRequest::Ask { certificate: certificate.clone(), room, sessions: sessions.to_vec() };
        let answer = peer.keys(member, request);
        assert_eq!(answer, KeysResponse::Refused(KeysRefusal::NotMember), "keys of {sessions:?} from {member}");
    }
}

/// The texts `/history` lists on `node` once all of `texts` are among them (asked again until
/// then, for [`HEAR_WITHIN`] at most).
fn history_with(node: &mut NodeProc, texts: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + HEAR_WITHIN;
    loop {
        let kept = history(node);
        if texts.iter().all(|t| kept.iter().any(|k| k == t)) {
            return kept;
        }
        assert!(Instant::now() < deadline, "{}: {texts:?} not all in {kept:?}", node.name);
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// carol, certified but never in #lobby, listens on its topic with a crafted peer while alice
/// and bob talk. She hears their envelopes and decrypts none; alice and bob each refuse her the
/// keys of every session she heard; a key she gives them of her own making is refused.
#[test]
fn a_certified_stranger_on_the_topic_decrypts_nothing() {
    let carol_dir = tempfile::tempdir().unwrap();
    let LoopbackTrio { boot: _boot, boot_addr, mut alice, alice_addr, mut bob, bob_addr, .. } =
        loopback_trio(&[], [None, None]);
    let lobby = lobby_of_alice_and_bob(&mut alice, &mut bob);
    alice.send("before carol listens");
    bob.wait_for("alice's message", |v| is_message(v, "alice", "before carol listens"));
    let (key, certificate) = certified_stranger(&boot_addr, carol_dir.path());

    let mallory = SyncPeer::new(key);
    let ([at_alice, at_bob], _) = mallory.on_room(&lobby, [&alice_addr, &bob_addr]);
    let listening = now_ms();
    alice.send("alice, while carol listens");
    bob.wait_for("alice's message", |v| is_message(v, "alice", "alice, while carol listens"));
    bob.send("bob, while carol listens");
    alice.wait_for("bob's message", |v| is_message(v, "bob", "bob, while carol listens"));

    let heard = hear_messages(&mallory, lobby, listening, 2);
    assert_eq!(authors_of(&heard), ["alice", "bob"]);
    let opened = open_all(&mut Keyring::default(), &heard);
    assert!(opened.iter().all(Option::is_none), "a stranger read {opened:?}");
    asked_keys_are_refused(&mallory, &[at_alice, at_bob], &certificate, lobby, &sessions_of(&heard));

    let mut carols = support::room_keys::Writer::new(lobby, &certificate);
    let (_, made_up) = carols.message(&[], 1, "let me in");
    let answer = support::room_keys::give(&mallory, at_alice, &certificate, &made_up);
    assert_eq!(answer, KeysResponse::Refused(KeysRefusal::NotMember), "a stranger's key given");
}

/// How a member is removed in [`a_removed_member_on_the_topic_decrypts_nothing_written_after`].
#[derive(Clone, Copy, PartialEq)]
enum Removal {
    Kick,
    Ban,
}

/// alice, bob and carol in #lobby; bob's node quits, and a crafted peer with his key,
/// certificate and every room key his node kept listens on the room's topic. It reads what
/// alice writes while bob is a member; then alice removes him, and it hears what alice and
/// carol write after, reads none of it, and is refused those sessions' keys by both. bob's
/// node back: after a kick it rejoins and reads both the new messages and the ones written
/// while he was out (a joiner gets the room's history); after a ban it may not join, until
/// alice unbans him.
fn a_removed_member_on_the_topic_decrypts_nothing_written_after(removal: Removal) {
    let (bob_dir, carol_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let LoopbackTrio { boot: _boot, boot_addr, mut alice, alice_addr, mut bob, .. } =
        loopback_trio(&[], [None, Some(bob_dir.path())]);
    let lobby = lobby_of_alice_and_bob(&mut alice, &mut bob);
    let (mut carol, carol_addr) = third_node("carol", &boot_addr, carol_dir.path());
    carol_joins(&mut carol, &mut [&mut alice, &mut bob]);
    carol.send("carol, before");
    bob.wait_for("carol's message", |v| is_message(v, "carol", "carol, before"));
    let (key, certificate) = quit_for_identity(&mut bob, bob_dir.path());
    let mut ring = kept_keyring(bob_dir.path());

    let mallory = SyncPeer::new(key);
    let ([at_alice, at_carol], _) = mallory.on_room(&lobby, [&alice_addr, &carol_addr]);
    // While bob is a member, what alice writes opens: her session began while his node was
    // away, and its key is his for the asking.
    let listening = now_ms();
    alice.send("alice, to bob still a member");
    carol.wait_for("alice's message", |v| is_message(v, "alice", "alice, to bob still a member"));
    let before = hear_messages(&mallory, lobby, listening, 1);
    let request = KeysRequest::Ask { certificate: certificate.clone(), room: lobby, sessions: sessions_of(&before) };
    let KeysResponse::Keys(keys) = mallory.keys(at_alice, request) else { panic!("alice's key for bob, a member") };
    for key in keys {
        ring.take(key).expect("alice's key");
    }
    assert_eq!(open_all(&mut ring, &before), [Some("alice, to bob still a member".to_string())]);

    let (command, shown) = match removal {
        Removal::Kick => ("/kick bob", "kicked"),
        Removal::Ban => ("/ban bob", "banned"),
    };
    alice.send(command);
    carol.wait_for("bob removed", |v| is(v, shown, "bob") && v["by"] == "alice");
    let removed = now_ms();
    alice.send("alice, after");
    carol.wait_for("alice's message", |v| is_message(v, "alice", "alice, after"));
    carol.send("carol, after");
    alice.wait_for("carol's message", |v| is_message(v, "carol", "carol, after"));

    let after = hear_messages(&mallory, lobby, removed, 2);
    assert_eq!(authors_of(&after), ["alice", "carol"], "bob keeps every envelope");
    let opened = open_all(&mut ring, &after);
    assert!(opened.iter().all(Option::is_none), "bob, removed, read {opened:?}");
    let sessions = sessions_of(&after);
    assert!(sessions.iter().all(|s| ring.key(&lobby, s).is_none()), "a session bob held went on after his removal");
    asked_keys_are_refused(&mallory, &[at_alice, at_carol], &certificate, lobby, &sessions);
    drop(mallory);

    let mut bob = NodeBuilder::loopback("bob").args(&["--peer", &boot_addr]).data_dir(bob_dir.path()).spawn();
    bob.wait_for("bob logged in", |v| v["type"] == "logged_in" && v["user"] == "bob");
    bob.wait_for("bob's removal caught up", |v| is(v, shown, "bob"));
    if removal == Removal::Ban {
        bob.send("/join lobby");
        expect_error(&mut bob, "banned");
        alice.send("/unban bob lobby");
        alice.wait_for("bob unbanned", |v| {
            v["type"] == "info" && v["message"].as_str().is_some_and(|m| m.starts_with("bob may join #lobby again"))
        });
    }
    join_room(&mut bob, "lobby");
    alice.wait_for("bob back", |v| is(v, "joined", "bob"));
    alice.send("welcome back");
    bob.wait_for("alice's message", |v| is_message(v, "alice", "welcome back"));
    history_with(&mut bob, &["carol, before", "alice, after", "carol, after", "welcome back"]);
}

#[test]
fn a_kicked_member_on_the_topic_decrypts_nothing_written_after_and_reads_again_on_rejoining() {
    a_removed_member_on_the_topic_decrypts_nothing_written_after(Removal::Kick);
}

#[test]
fn a_banned_member_on_the_topic_decrypts_nothing_written_after_and_reads_again_once_unbanned() {
    a_removed_member_on_the_topic_decrypts_nothing_written_after(Removal::Ban);
}

/// bob's node quits and a crafted peer with his key and certificate writes to #lobby without
/// giving alice the key of its session: alice waits for the key, then shows the message as one
/// that cannot be decrypted. When the key comes after all, she shows it again, read: a second
/// `message` event with the same id, its text and no `unreadable`; her history has it read.
#[test]
fn a_message_whose_key_comes_late_is_shown_again_once_it_can_be_read() {
    let BobGone { boot: _boot, mut alice, alice_addr, lobby, key, certificate } = lobby_with_bob_gone();
    let mallory = SyncPeer::new(key.clone());
    let ([at_alice], topic) = mallory.on_room(&lobby, [&alice_addr]);
    let (prev, depth) = heads_of(&opened(&asked_heads(&mallory, at_alice, lobby, &certificate)));
    let mut bobs = Writer::new(lobby, &certificate);
    let (late, session_key) = bobs.message(&prev, 1, "bob, read late");
    mallory.publish(&topic, sealed(&key, &certificate, lobby, &prev, depth, now_ms(), late));
    let unreadable = alice.wait_for("bob's message", |v| v["type"] == "message" && v["from"] == "bob");
    assert_eq!((&unreadable["unreadable"], &unreadable["text"]), (&true.into(), &"".into()), "{unreadable}");

    assert_eq!(give(&mallory, at_alice, &certificate, &session_key), KeysResponse::Taken);
    let read = alice.wait_for("bob's message, read", |v| is_message(v, "bob", "bob, read late"));
    assert_eq!(read["id"], unreadable["id"]);
    assert!(read["unreadable"].is_null(), "{read}");
    history_with(&mut alice, &["bob, read late"]);
}
