//! Mailboxes in the LAN lab: a direct message written while its receiver is offline waits,
//! sealed, at the bootstrap node's mailbox, and reaches the receiver when they come back even
//! though the sender has gone too; it is shown once, the sender sees `delivered` when next
//! online, the mailbox's files never hold its text, and a mailbox over quota refuses with a
//! clear error while nothing is lost. A certified peer built on the library collects nothing
//! of anyone else's, deletes nothing of anyone else's, and cannot pass a letter off as another
//! user's; asking without end, it is answered a burst, then refused, while others are served. A
//! peer opening more mailbox streams at once than a connection holds has the rest dropped.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::chat::{PASSWORDS, lab_user, no_event_within, str_of, wait_online};
use support::{Lab, NodeProc};

fn is_dm(v: &Value, from: &str, to: &str, text: &str) -> bool {
    v["type"] == "dm" && v["from"] == from && v["to"] == to && v["text"] == text
}

/// The bootstrap (the mailbox) on host 0, alice on host 1 online, bob (host 2) away; their
/// data directories.
struct BobAway {
    boot_dir: tempfile::TempDir,
    dirs: Vec<tempfile::TempDir>,
    _boot: NodeProc,
    alice: NodeProc,
}

/// Starts the bootstrap, alice and bob, who see each other online; then bob quits and alice
/// sees him go.
fn alice_then_bob_away(lab: &Lab) -> BobAway {
    let boot_dir = tempfile::tempdir().unwrap();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut boot = lab.node(0, "bootstrap").args(&["bootstrap"]).data_dir(boot_dir.path()).spawn();
    boot.ready();
    let mut alice = lab_user(lab, 1, "alice", PASSWORDS[0], dirs[0].path());
    let mut bob = lab_user(lab, 2, "bob", PASSWORDS[1], dirs[1].path());
    wait_online(&mut alice, "bob");
    wait_online(&mut bob, "alice");
    bob.send("/quit");
    bob.wait_exit(Duration::from_secs(10));
    alice.wait_for("bob offline", |v| v["type"] == "presence" && v["user"] == "bob" && v["state"] == "offline");
    BobAway { boot_dir, dirs, _boot: boot, alice }
}

/// On loopback: the bootstrap (the mailbox), alice online and bob away, with their data in
/// `dirs`; the bootstrap's address, the bootstrap and alice.
fn loopback_bob_away(dirs: [&std::path::Path; 2]) -> (String, NodeProc, NodeProc) {
    let trio = support::chat::loopback_trio(&[], [Some(dirs[0]), Some(dirs[1])]);
    let (boot_addr, boot, mut alice, mut bob) = (trio.boot_addr, trio.boot, trio.alice, trio.bob);
    support::chat::register(&mut alice, "alice", PASSWORDS[0]);
    support::chat::register(&mut bob, "bob", PASSWORDS[1]);
    wait_online(&mut alice, "bob");
    bob.send("/quit");
    bob.wait_exit(Duration::from_secs(10));
    alice.wait_for("bob offline", |v| v["type"] == "presence" && v["user"] == "bob" && v["state"] == "offline");
    (boot_addr, boot, alice)
}

/// Every file in `dir`, read whole.
fn files_hold(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut holding = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && std::fs::read(&path).unwrap().windows(needle.len()).any(|w| w == needle) {
            holding.push(path.display().to_string());
        }
    }
    holding
}

fn letters_kept(boot_dir: &std::path::Path) -> i64 {
    let db = rusqlite::Connection::open(boot_dir.join("node.db")).unwrap();
    db.query_row("SELECT COUNT(*) FROM letters", [], |r| r.get(0)).unwrap()
}

#[test]
fn a_message_waits_at_the_mailbox_while_sender_and_receiver_are_both_away() {
    let Some(lab) = Lab::start(3) else { return };
    let BobAway { boot_dir, dirs, _boot, mut alice } = alice_then_bob_away(&lab);

    let text = "the spare key is under the blue flowerpot";
    alice.send(&format!("/msg bob {text}"));
    let sent = alice.wait_for("the message kept", |v| is_dm(v, "alice", "bob", text));
    let id = str_of(&sent, "id").to_string();
    // She quits at once: her node leaves the letter before it stops.
    alice.send("/quit");
    alice.wait_exit(Duration::from_secs(10));
    assert_eq!(letters_kept(boot_dir.path()), 1);

    // The mailbox keeps the letter, sealed: its files never hold the text.
    assert_eq!(files_hold(boot_dir.path(), text.as_bytes()), Vec::<String>::new());
    assert_eq!(files_hold(boot_dir.path(), b"blue flowerpot"), Vec::<String>::new());

    // Bob comes back while alice is away: the message comes from the mailbox, once.
    let mut bob = lab.node(2, "bob again").data_dir(dirs[1].path()).spawn();
    bob.wait_for("resumed", |v| v["type"] == "logged_in" && v["resumed"] == true);
    let got = bob.wait_for("the message from the mailbox", |v| is_dm(v, "alice", "bob", text));
    assert_eq!(got["id"], id.as_str());
    bob.wait_for("notified", |v| v["type"] == "notification" && v["kind"] == "dm" && v["from"] == "alice");
    for _ in 0..50 {
        if letters_kept(boot_dir.path()) == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(letters_kept(boot_dir.path()), 0, "the letter is deleted once bob took it");

    // Alice comes back: her outbox sends it again, bob confirms it without showing it again.
    let mut alice = lab.node(1, "alice again").data_dir(dirs[0].path()).spawn();
    alice.wait_for("resumed", |v| v["type"] == "logged_in" && v["resumed"] == true);
    alice.wait_for("delivered", |v| v["type"] == "delivered" && v["id"] == id.as_str() && v["to"] == "bob");
    assert_eq!(alice.status()["outbox"], 0);
    no_event_within(&mut bob, Duration::from_millis(500), "the message twice", |v| v["type"] == "dm");
    bob.send("/query alice");
    bob.send("/history 5");
    let history = bob.wait_type("history");
    let texts: Vec<&str> = history["messages"].as_array().unwrap().iter().map(|m| str_of(m, "text")).collect();
    assert_eq!(texts, [text], "kept once");
}

#[test]
fn a_mailbox_over_quota_refuses_clearly_and_nothing_is_lost() {
    let Some(lab) = Lab::start(3) else { return };
    let BobAway { boot_dir, dirs, _boot, mut alice } = alice_then_bob_away(&lab);

    let quota = meshchat::mailbox::MAX_LETTERS_PER_PAIR as usize;
    let total = quota + 3;
    for i in 1..=total {
        alice.send(&format!("/msg bob note {i}"));
    }
    let refusal = alice.wait_for("the mailbox's refusal", |v| v["type"] == "error");
    assert_eq!(refusal["code"], "unavailable", "{refusal}");
    let message = str_of(&refusal, "message");
    assert!(message.contains("refused") && message.contains("bob") && message.contains("outbox"), "{message}");
    alice.wait_for("the last kept", |v| is_dm(v, "alice", "bob", &format!("note {total}")));
    assert_eq!(alice.status()["outbox"], total);
    assert_eq!(letters_kept(boot_dir.path()), quota as i64, "{message}");

    // Bob comes back: all of them, each once, in order, from the mailbox and the outbox.
    let mut bob = lab.node(2, "bob again").data_dir(dirs[1].path()).spawn();
    bob.wait_for("resumed", |v| v["type"] == "logged_in" && v["resumed"] == true);
    let mut texts = Vec::new();
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while texts.len() < total && std::time::Instant::now() < until {
        for v in bob.take_within(Duration::from_millis(200)) {
            if v["type"] == "dm" {
                texts.push(str_of(&v, "text").to_string());
            }
        }
    }
    if texts.len() < total {
        let events = alice.take_within(Duration::from_millis(100));
        panic!(
            "bob has {} of {total}; alice: {}\n{events:?}\nalice's log:\n{}",
            texts.len(),
            alice.status(),
            alice.stderr_text()
        );
    }
    let expected: Vec<String> = (1..=total).map(|i| format!("note {i}")).collect();
    assert_eq!(texts, expected);
    no_event_within(&mut bob, Duration::from_millis(500), "a note twice", |v| v["type"] == "dm");
    for _ in 0..100 {
        if alice.status()["outbox"] == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(alice.status()["outbox"], 0, "every note confirmed");
}

#[test]
fn a_hostile_certified_peer_reads_nothing_takes_nothing_and_forges_nothing() {
    use meshchat::mailbox::letter;
    use meshchat::protocol::dm::{self, DmRequest};
    use meshchat::protocol::mailbox::{MailboxRefusal, MailboxRequest, MailboxResponse};
    use meshchat::store::NodeStore;
    use support::NodeBuilder;
    use support::lobby::certified_stranger;
    use support::sync_peer::SyncPeer;

    let (alice_dir, bob_dir, carol_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (boot_addr, _boot, mut alice) = loopback_bob_away([alice_dir.path(), bob_dir.path()]);
    let text = "meet at the north gate at nine";
    alice.send(&format!("/msg bob {text}"));
    let id = str_of(&alice.wait_for("kept", |v| is_dm(v, "alice", "bob", text)), "id").to_string();
    alice.wait_for("left at the mailbox", |v| v["type"] == "info" && str_of(v, "message").contains("mailbox"));

    // Mallory holds carol's key and certificate, and bob's certificate (not his key).
    let (key, carol) = certified_stranger(&boot_addr, carol_dir.path());
    let bob_cert = NodeStore::open(bob_dir.path()).unwrap().session().unwrap().unwrap().certificate;
    let alice_cert = NodeStore::open(alice_dir.path()).unwrap().session().unwrap().unwrap().certificate;
    let mallory = SyncPeer::new(key.clone());
    let mailbox = mallory.dial(&boot_addr.parse().unwrap());

    // Her own letters are none; bob's are not hers to collect, nor to delete.
    let mine = mallory.mailbox(mailbox, MailboxRequest::Collect { certificate: carol.clone(), after: 0 });
    assert_eq!(mine, MailboxResponse::Letters { letters: vec![], more: false, next: 0 });
    let as_bob = mallory.mailbox(mailbox, MailboxRequest::Collect { certificate: bob_cert.clone(), after: 0 });
    assert_eq!(as_bob, MailboxResponse::Refused(MailboxRefusal::BadCertificate));
    let deleted = mallory.mailbox(mailbox, MailboxRequest::Taken { certificate: carol.clone(), ids: vec![id.clone()] });
    assert_eq!(deleted, MailboxResponse::Deleted, "answered, but only her own letters could go");

    // A letter "from alice": alice's certificate inside, sealed to bob's node, signed by Mallory.
    let forged_text = "change of plan: meet at the docks";
    let forged = DmRequest {
        certificate: alice_cert,
        to: bob_cert.body.account,
        seq: 2,
        id: dm::new_id(),
        ts_ms: meshchat::clock::now_ms(),
        text: forged_text.into(),
    };
    let sealed = letter::seal(&forged, &key, &bob_cert.body.peer_id).unwrap();
    let leave = MailboxRequest::Leave {
        certificate: carol,
        to: bob_cert.body.account,
        id: forged.id.clone(),
        written_ms: forged.ts_ms,
        sealed,
    };
    assert_eq!(mallory.mailbox(mailbox, leave.clone()), MailboxResponse::Kept, "a mailbox cannot read what it keeps");
    // For nobody the mailbox knows, or written more than 14 days ago: refused, each saying why.
    let MailboxRequest::Leave { certificate, sealed, .. } = leave else { unreachable!() };
    let nobody = MailboxRequest::Leave {
        certificate: certificate.clone(),
        to: meshchat::account::AccountId::random(),
        id: dm::new_id(),
        written_ms: forged.ts_ms,
        sealed: sealed.clone(),
    };
    assert_eq!(mallory.mailbox(mailbox, nobody), MailboxResponse::Refused(MailboxRefusal::UnknownRecipient));
    let old = MailboxRequest::Leave {
        certificate,
        to: bob_cert.body.account,
        id: dm::new_id(),
        written_ms: forged.ts_ms - meshchat::mailbox::KEEP_MS - 60_000,
        sealed,
    };
    assert_eq!(mallory.mailbox(mailbox, old), MailboxResponse::Refused(MailboxRefusal::TooOld));

    // Bob comes back while alice is away: alice's message, from the mailbox, once; never
    // Mallory's.
    alice.send("/quit");
    alice.wait_exit(Duration::from_secs(10));
    let mut bob = NodeBuilder::loopback("bob again").args(&["--peer", &boot_addr]).data_dir(bob_dir.path()).spawn();
    bob.wait_for("resumed", |v| v["type"] == "logged_in" && v["resumed"] == true);
    let got = bob.wait_for("alice's message", |v| is_dm(v, "alice", "bob", text));
    assert_eq!(got["id"], id.as_str());
    no_event_within(&mut bob, Duration::from_secs(2), "the forged letter", |v| v["type"] == "dm");
    assert!(!bob.history().iter().any(|v| str_of(v, "text") == forged_text));
}

#[test]
fn a_certified_peer_asking_without_end_is_answered_a_burst_then_refused_while_others_are_served() {
    use meshchat::protocol::mailbox::{MailboxRefusal, MailboxRequest, MailboxResponse};
    use support::NodeBuilder;
    use support::lobby::certified_stranger;
    use support::sync_peer::SyncPeer;
    // What the mailbox answers one account's collections: two rounds of 8 pages at once, then
    // one a second.
    const COLLECT_BURST: usize = 16;
    const COLLECTS_PER_SEC: f64 = 1.0;
    const ASKED: usize = 60;

    let (alice_dir, bob_dir, carol_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (boot_addr, _boot, mut alice) = loopback_bob_away([alice_dir.path(), bob_dir.path()]);

    // Mallory, certified as carol, asks the mailbox for her letters over and over.
    let (key, carol) = certified_stranger(&boot_addr, carol_dir.path());
    let mallory = SyncPeer::new(key);
    let mailbox = mallory.dial(&boot_addr.parse().unwrap());
    let started = std::time::Instant::now();
    let answers: Vec<MailboxResponse> = (0..ASKED)
        .map(|_| mallory.mailbox(mailbox, MailboxRequest::Collect { certificate: carol.clone(), after: 0 }))
        .collect();
    let took = started.elapsed();
    let answered = answers.iter().filter(|a| matches!(a, MailboxResponse::Letters { .. })).count();
    let refused = answers.iter().filter(|a| **a == MailboxResponse::Refused(MailboxRefusal::Unavailable)).count();
    assert_eq!(answered + refused, ASKED, "{answers:?}");
    // Carol's own node collected once or twice when she logged in: the rest of the burst is
    // answered, in a row.
    let in_a_row = answers.iter().take_while(|a| matches!(a, MailboxResponse::Letters { .. })).count();
    assert!(in_a_row >= COLLECT_BURST - 2, "the burst is answered: {answers:?}");
    eprintln!("{answered} of {ASKED} collections answered, {refused} refused, in {took:?}");
    let allowed = COLLECT_BURST + (took.as_secs_f64() * COLLECTS_PER_SEC).ceil() as usize;
    assert!(answered <= allowed, "{answered} of {ASKED} answered in {took:?}");
    assert!(refused > 0, "none refused in {took:?}");

    // The mailbox keeps answering others at once: alice's letter to bob is kept.
    let text = "the last train leaves at ten";
    alice.send(&format!("/msg bob {text}"));
    alice.wait_for("kept", |v| is_dm(v, "alice", "bob", text));
    alice.wait_for("left at the mailbox", |v| v["type"] == "info" && str_of(v, "message").contains("mailbox"));

    // Bob comes back while alice is away: her message comes from the mailbox.
    alice.send("/quit");
    alice.wait_exit(Duration::from_secs(10));
    let mut bob = NodeBuilder::loopback("bob again").args(&["--peer", &boot_addr]).data_dir(bob_dir.path()).spawn();
    bob.wait_for("resumed", |v| v["type"] == "logged_in" && v["resumed"] == true);
    bob.wait_for("alice's message", |v| is_dm(v, "alice", "bob", text));
}

#[test]
fn a_peer_opening_more_mailbox_streams_at_once_than_a_connection_holds_has_the_rest_dropped() {
    use meshchat::cert::Authority;
    use meshchat::protocol::mailbox::{MailboxRefusal, MailboxRequest, MailboxResponse};
    use support::NodeBuilder;
    use support::sync_peer::SyncPeer;
    // What the node holds of mailbox streams per connection; libp2p's default is 100, and the
    // crafted peer's own side holds as many.
    const MAX_STREAMS: usize = 64;
    const OPENED: usize = 96;

    let mut boot = NodeBuilder::loopback("bootstrap").args(&["bootstrap"]).spawn();
    let boot_addr: libp2p::Multiaddr = boot.ready()["listen"][0].as_str().expect("a listen address").parse().unwrap();
    let key = libp2p::identity::Keypair::generate_ed25519();
    // Certified by another authority: each request is refused at once, without a store job.
    let forged = Authority::from_secret(&[9; 32]).issue(
        meshchat::account::AccountId::random(),
        "mallory",
        &key.public().to_peer_id().to_bytes(),
        meshchat::clock::unix_now(),
        1,
    );
    let mallory = SyncPeer::new(key);
    let mailbox = mallory.dial(&boot_addr);
    let collect = MailboxRequest::Collect { certificate: forged, after: 0 };
    let answers = mallory.mailbox_all(mailbox, vec![collect.clone(); OPENED]);
    let refused = MailboxResponse::Refused(MailboxRefusal::BadCertificate);
    let answered = answers.iter().filter(|a| a.as_ref().is_ok_and(|a| *a == refused)).count();
    let failed: Vec<&String> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    eprintln!("{answered} of {OPENED} streams opened at once answered, {} dropped", failed.len());
    assert_eq!(answered + failed.len(), OPENED, "{answers:?}");
    assert!(answered >= 1 && !failed.is_empty(), "{answered} answered of {OPENED}; at most {MAX_STREAMS} held");
    // The connection and the node go on.
    assert_eq!(mallory.mailbox(mailbox, collect), refused);
}
