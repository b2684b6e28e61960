//! Catch-up without end, both ways, against real nodes on loopback with crafted peers built on
//! the library: a certified peer asking for a room's heads over and over is answered up to the
//! serving limit and then refused as busy; a member serving pages of messages it signed without
//! end has them taken up to the limit of what one account's pages bring, and is asked for no
//! more pages. Either way the room goes on.

mod support;

use std::time::{Duration, Instant};

use meshchat::clock::now_ms;
use meshchat::protocol::sync::{SyncRefusal, SyncRequest, SyncResponse};
use meshchat::room::engine::{SERVE_BURST, SERVED_MESSAGE_BURST, SERVED_MESSAGES_PER_SEC};
use meshchat::room::event::SignedEvent;
use support::chat::{LoopbackTrio, loopback_trio};
use support::crafted::{announce_in_lobby, events_served, heads_of, opened, sealed};
use support::lobby::{BobGone, certified_stranger, is_message, lobby_of_alice_and_bob, lobby_with_bob_gone};
use support::room_keys::Writer;
use support::sync_peer::SyncPeer;

/// Messages in a catch-up page (as a node serves them).
const PAGE: usize = 500;

/// A certified peer asking for a room's heads without end is answered up to the serving limit,
/// then refused as busy; the node goes on delivering the room's messages meanwhile.
#[test]
fn catch_up_asked_without_end_is_refused_as_busy_and_the_room_goes_on() {
    let carol_dir = tempfile::tempdir().unwrap();
    let LoopbackTrio { boot: _boot, boot_addr, mut alice, alice_addr, mut bob, .. } = loopback_trio(&[], [None, None]);
    let lobby = lobby_of_alice_and_bob(&mut alice, &mut bob);
    let (carol_key, certificate) = certified_stranger(&boot_addr, carol_dir.path());
    let carol = SyncPeer::new(carol_key);
    let at_alice = carol.dial(&alice_addr);
    let asked = 2 * SERVE_BURST as usize;
    let answers: Vec<SyncResponse> = (0..asked)
        .map(|_| carol.ask(at_alice, SyncRequest::Heads { room: lobby, certificate: certificate.clone() }))
        .collect();
    let busy = answers.iter().filter(|a| **a == SyncResponse::Refused(SyncRefusal::Busy)).count();
    let served = answers.iter().filter(|a| matches!(a, SyncResponse::Heads { .. })).count();
    assert_eq!(served + busy, asked, "each answered or refused as busy");
    assert!(served >= SERVE_BURST as usize, "the burst is served: {served}");
    assert!(busy > 0, "then refused as busy ({served} of {asked} served)");
    alice.send("still here");
    bob.wait_for("alice's message after the flood", |v| is_message(v, "alice", "still here"));
}

/// A member (bob's key and certificate in a crafted peer, his node gone) answers alice's
/// catch-up with page after page of 500 new messages he signed, each saying more follow. alice
/// takes what the limit lets through at once, then asks for no more pages; without the limit
/// she would go on to the most pages one catch-up asks for (1,000: 500,000 messages).
#[test]
fn a_member_serving_messages_without_end_is_asked_for_no_more_than_the_limit() {
    let BobGone { boot: _boot, mut alice, alice_addr, lobby, key, certificate } = lobby_with_bob_gone();
    let mallory = SyncPeer::new(key.clone());
    let at_alice = mallory.dial(&alice_addr);
    let known = opened(&events_served(&mallory, at_alice, lobby, &certificate));
    let creator = known.iter().find(|e| e.id == lobby).expect("the create").body.author;
    let (prev, depth) = heads_of(&known);
    let mut writer = Writer::new(lobby, &certificate);
    let (signer, signed_as) = (key.clone(), certificate.clone());
    let mut seq = 0u64;
    mallory.serve(move |request| {
        if !matches!(request, SyncRequest::CatchUp(_)) {
            return SyncResponse::Refused(SyncRefusal::NotMember);
        }
        let mut keys = Vec::new();
        let messages: Vec<SignedEvent> = (0..PAGE)
            .map(|_| {
                seq += 1;
                let (payload, key) = writer.message(&prev, seq, &format!("minted {seq}"));
                if keys.is_empty() {
                    keys.push(key);
                }
                let bytes = sealed(&signer, &signed_as, lobby, &prev, depth, now_ms(), payload);
                SignedEvent::decode(&bytes).expect("an event")
            })
            .collect();
        SyncResponse::Page { events: Vec::new(), more_events: false, messages, more_messages: true, keys }
    });
    announce_in_lobby(&mallory, at_alice, (&key, &certificate), lobby, creator);
    // Until no page has been asked for 3 s (bounded).
    let started = Instant::now();
    let (mut asked, mut since) = (0, Instant::now());
    while since.elapsed() < Duration::from_secs(3) && started.elapsed() < Duration::from_secs(90) {
        std::thread::sleep(Duration::from_millis(100));
        if mallory.asked_of_it() != asked {
            (asked, since) = (mallory.asked_of_it(), Instant::now());
        }
    }
    let burst_pages = SERVED_MESSAGE_BURST as usize / PAGE;
    // What the limit gives back while the burst is taken in, a page at a time.
    let refilled = (started.elapsed().as_secs_f64() * f64::from(SERVED_MESSAGES_PER_SEC) / PAGE as f64).ceil() as usize;
    assert!(asked > burst_pages, "the limit's burst is taken ({asked} pages asked)");
    assert!(
        asked <= burst_pages + refilled + 2,
        "then no more pages are asked for ({asked} pages asked in {:?})",
        started.elapsed()
    );
    alice.wait_for("the last message of the burst", |v| {
        is_message(v, "bob", &format!("minted {}", SERVED_MESSAGE_BURST))
    });
    alice.send("alice goes on");
    alice.wait_for("her message", |v| is_message(v, "alice", "alice goes on"));
}
