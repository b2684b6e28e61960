//! Accounts through the bootstrap node, in the LAN lab: every refusal with its code, register,
//! login, nickname, rename, logout and `/who` as seen from another node, sessions resumed after a
//! restart, guessing throttled (the guessers, never the owner's own machine), untrusted
//! bootstraps refused, and the bootstrap's files.

mod support;

use std::time::Duration;

use support::chat::{expect_bootstrap, expect_error, lab_user, loopback_trio, register, str_of, who};
use support::{Lab, NodeBuilder, NodeProc};

const GOOD: &str = "correct horse battery staple";
const GOOD_B: &str = "Tr0ub4dor&3-mesh-lantern";

/// `/who` on `node` shows `user` with `nick` (presence may take a moment to arrive).
fn eventually_online(node: &mut NodeProc, user: &str, nick: &str) {
    for _ in 0..50 {
        if who(node).iter().any(|(u, n)| u == user && n == nick) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let last = who(node);
    panic!("{}: {user} ({nick}) never online; who = {last:?}", node.name);
}

#[test]
fn the_life_of_an_account_as_another_node_sees_it() {
    let Some(lab) = Lab::start(3) else { return };
    let mut boot = lab.node(0, "bootstrap").args(&["bootstrap"]).spawn();
    let ready = boot.ready();
    assert_eq!(str_of(&ready, "authority_key").len(), 64, "{ready}");
    let dir_a = tempfile::tempdir().unwrap();
    let mut a = lab.node(1, "a").data_dir(dir_a.path()).spawn();
    let mut b = lab.node(2, "b").spawn();
    a.ready();
    b.ready();
    expect_bootstrap(&mut a);
    expect_bootstrap(&mut b);

    a.send("/register al");
    a.send(GOOD);
    assert!(expect_error(&mut a, "invalid_username").contains("3–24"));

    a.send("/register alice");
    a.send("password");
    let advice = expect_error(&mut a, "weak_password");
    assert!(advice.contains("needs 3/4") && advice.contains("common"), "{advice}");

    a.send("/register alice");
    a.send(GOOD);
    a.wait_for("registered", |v| v["type"] == "registered" && v["user"] == "alice");
    let logged_in = a.wait_type("logged_in");
    assert_eq!(logged_in["user"], "alice");
    assert_eq!(logged_in["resumed"], false);

    b.send("/register ALICE");
    b.send(GOOD);
    assert!(expect_error(&mut b, "username_taken").contains("ALICE"));
    b.send("/login alice");
    b.send("not the password");
    assert!(expect_error(&mut b, "wrong_credentials").contains("wrong username or password"));
    b.send("/register bob");
    b.send(GOOD_B);
    b.wait_for("bob logged in", |v| v["type"] == "logged_in" && v["user"] == "bob");

    eventually_online(&mut b, "alice", "alice");
    eventually_online(&mut a, "bob", "bob");

    a.send("/nick Alice W");
    a.wait_for("own nick", |v| v["type"] == "nick" && v["user"] == "alice");
    b.wait_for("alice's nick", |v| v["type"] == "nick" && v["user"] == "alice" && v["nick"] == "Alice W");

    b.send("/query alice");
    b.wait_for("alice focused", |v| v["type"] == "focus" && v["target"] == "@alice");
    a.send("/rename alicia");
    a.wait_for("own rename", |v| v["type"] == "renamed" && v["old"] == "alice" && v["new"] == "alicia");
    b.wait_for("alice renamed", |v| v["type"] == "renamed" && v["old"] == "alice" && v["new"] == "alicia");
    // The conversation stays focused, and is told again by its new name.
    b.wait_for("focus renamed", |v| v["type"] == "focus" && v["target"] == "@alicia");
    let online = who(&mut b);
    assert!(online.contains(&("alicia".into(), "Alice W".into())), "{online:?}");
    assert!(!online.iter().any(|(u, _)| u == "alice"), "the old name is gone: {online:?}");
    assert_eq!(a.status()["user"], "alicia");

    a.send("/logout");
    a.wait_for("logged out", |v| v["type"] == "logged_out" && v["user"] == "alicia");
    b.wait_for("alicia offline", |v| v["type"] == "presence" && v["user"] == "alicia" && v["state"] == "offline");
    a.send("/login alicia");
    a.send(GOOD);
    a.wait_for("logged in again", |v| v["type"] == "logged_in" && v["user"] == "alicia");

    // The old name stays with alicia's account (30 days by default): nobody else takes it.
    b.send("/logout");
    b.wait_type("logged_out");
    b.send("/register alice");
    b.send(GOOD_B);
    assert!(expect_error(&mut b, "username_taken").contains("alice"));
    b.send("/login bob");
    b.send(GOOD_B);
    b.wait_for("bob again", |v| v["type"] == "logged_in" && v["user"] == "bob");

    // A restart resumes the session without a password.
    a.send("/quit");
    assert!(a.wait_exit(Duration::from_secs(10)).success());
    let mut a = lab.node(1, "a again").data_dir(dir_a.path()).spawn();
    let resumed = a.wait_type("logged_in");
    assert_eq!(resumed["user"], "alicia");
    assert_eq!(resumed["resumed"], true);
    assert_eq!(resumed["nick"], "Alice W");
    eventually_online(&mut b, "alicia", "Alice W");
}

#[test]
fn guessing_a_password_meets_rate_limited() {
    let Some(lab) = Lab::start(2) else { return };
    let mut boot = lab.node(0, "bootstrap").args(&["bootstrap"]).spawn();
    boot.ready();
    let mut a = lab.node(1, "a").spawn();
    expect_bootstrap(&mut a);
    a.send("/register carol");
    a.send(GOOD);
    a.wait_type("logged_in");
    a.send("/logout");
    a.wait_type("logged_out");

    let mut codes = Vec::new();
    for i in 0..12 {
        a.send("/login carol");
        a.send(&format!("guess number {i}"));
        let error = a.wait_type("error");
        codes.push(str_of(&error, "code").to_string());
    }
    assert_eq!(codes[0], "wrong_credentials");
    assert_eq!(codes[11], "rate_limited", "{codes:?}");
    // Throttled before hashing: even the right password waits now.
    a.send("/login carol");
    a.send(GOOD);
    let message = expect_error(&mut a, "rate_limited");
    assert!(message.contains("try again in"), "{message}");
}

#[test]
fn guessers_are_held_back_and_the_owner_logs_in_from_her_own_machine_at_once() {
    let Some(lab) = Lab::start(5) else { return };
    let mut boot = lab.node(0, "bootstrap").args(&["bootstrap"]).spawn();
    boot.ready();
    let home = tempfile::tempdir().unwrap();
    let mut alice = lab_user(&lab, 1, "alice", GOOD, home.path());
    alice.send("/logout");
    alice.wait_for("alice logged out", |v| v["type"] == "logged_out" && v["user"] == "alice");

    // Three fresh nodes guess alice's password until each is refused with rate_limited.
    let mut guessers: Vec<NodeProc> = (0..3).map(|i| lab.node(2 + i, &format!("guesser {i}")).spawn()).collect();
    for guesser in &mut guessers {
        expect_bootstrap(guesser);
    }
    for guesser in &mut guessers {
        let mut codes = Vec::new();
        for i in 0..12 {
            guesser.send("/login alice");
            guesser.send(&format!("guess number {i}"));
            let error = guesser.wait_type("error");
            codes.push(str_of(&error, "code").to_string());
            if codes.last().is_some_and(|c| c == "rate_limited") {
                break;
            }
        }
        let (last, before) = codes.split_last().unwrap();
        assert_eq!(last, "rate_limited", "{}: {codes:?}", guesser.name);
        assert!(before.iter().all(|c| c == "wrong_credentials"), "{}: {codes:?}", guesser.name);
    }

    // alice's own machine held her certificate: her right password gets her in at once.
    let started = std::time::Instant::now();
    alice.send("/login alice");
    alice.send(GOOD);
    let answer = alice.wait_for("alice's login answer", |v| v["type"] == "logged_in" || v["type"] == "error");
    assert_eq!(answer["type"], "logged_in", "{answer}");
    assert_eq!(answer["user"], "alice", "{answer}");
    println!(
        "alice logged in from her own machine in {:.0} ms, three guessers blocked",
        started.elapsed().as_secs_f64() * 1000.0
    );

    // The guessers are still refused, before any hashing: even the right password waits.
    for guesser in &mut guessers {
        guesser.send("/login alice");
        guesser.send(GOOD);
        let answer = guesser.wait_for("login answer", |v| v["type"] == "logged_in" || v["type"] == "error");
        assert_eq!(answer["code"], "rate_limited", "{}: {answer}", guesser.name);
        assert!(str_of(&answer, "message").contains("try again in"), "{answer}");
    }
}

#[test]
fn without_a_bootstrap_login_fails_fast_with_no_bootstrap() {
    let mut node = NodeBuilder::loopback("alone").spawn();
    node.ready();
    let started = std::time::Instant::now();
    node.send("/login alice");
    node.send(GOOD);
    let message = expect_error(&mut node, "no_bootstrap");
    assert!(message.contains("no bootstrap node in reach"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(10));
    node.send("/register alice");
    node.send(GOOD);
    expect_error(&mut node, "no_bootstrap");
    node.status();
}

/// What a node said of the session holds after `kill -9` the moment it said it: logged in, it
/// starts logged in; logged out, it starts logged out.
#[test]
fn a_node_killed_the_moment_it_tells_of_the_session_starts_as_it_told() {
    let dir = tempfile::tempdir().unwrap();
    let trio = loopback_trio(&[], [Some(dir.path()), None]);
    let (boot_addr, mut alice) = (trio.boot_addr, trio.alice);
    register(&mut alice, "alice", GOOD);
    alice.kill();

    let restart = || NodeBuilder::loopback("alice again").args(&["--peer", &boot_addr]).data_dir(dir.path()).spawn();
    let mut alice = restart();
    alice.wait_for("resumed", |v| v["type"] == "logged_in" && v["user"] == "alice" && v["resumed"] == true);
    alice.send("/logout");
    alice.wait_type("logged_out");
    alice.kill();

    let mut alice = restart();
    alice.ready();
    let status = alice.status();
    assert!(status["user"].is_null(), "logged out, yet resumed: {status}");
}

#[test]
fn the_bootstrap_keeps_only_argon2id_hashes_and_survives_kill_9() {
    let Some(lab) = Lab::start(2) else { return };
    let boot_dir = tempfile::tempdir().unwrap();
    let mut boot = lab.node(0, "bootstrap").args(&["bootstrap"]).data_dir(boot_dir.path()).spawn();
    boot.ready();
    let mut a = lab.node(1, "a").spawn();
    expect_bootstrap(&mut a);
    let password = "unmistakable plaintext marker 7731";
    a.send("/register dave");
    a.send(password);
    a.wait_type("logged_in");
    a.send("/logout");
    a.wait_type("logged_out");
    // Hashing and writing while the process dies.
    for i in 0..3 {
        a.send(&format!("/register erin{i}"));
        a.send(GOOD);
    }
    std::thread::sleep(Duration::from_millis(30));
    boot.kill();

    for entry in std::fs::read_dir(boot_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(password.len()).any(|w| w == password.as_bytes()),
            "{} holds the plaintext password",
            path.display()
        );
    }
    let db = rusqlite::Connection::open(boot_dir.path().join("accounts.db")).unwrap();
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let mut statement = db.prepare("SELECT password_hash FROM accounts").unwrap();
    let hashes: Vec<String> = statement.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert!(!hashes.is_empty());
    for hash in hashes {
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    }
}

#[test]
fn a_bootstrap_with_another_key_and_its_certificates_are_refused() {
    let Some(lab) = Lab::start(3) else { return };
    let boot_dir = tempfile::tempdir().unwrap();
    let mut boot = lab.node(0, "bootstrap").args(&["bootstrap"]).data_dir(boot_dir.path()).spawn();
    boot.ready();
    let key_file = boot_dir.path().join("authority.pub");
    let mut a = lab.node(1, "a").args(&["--bootstrap-key", key_file.to_str().unwrap()]).spawn();
    // A rogue node that hosts its own account database, and so signs its own certificates.
    let mut rogue = lab.node(2, "rogue").args(&["--bootstrap"]).spawn();
    a.ready();
    rogue.ready();
    rogue.send("/register mallory");
    rogue.send(GOOD);
    rogue.wait_for("mallory", |v| v["type"] == "logged_in" && v["user"] == "mallory");

    let message = expect_error(&mut a, "untrusted_bootstrap");
    assert!(message.contains("it is ignored"), "{message}");
    expect_bootstrap(&mut a);
    a.send("/register alice");
    a.send(GOOD);
    a.wait_for("alice", |v| v["type"] == "logged_in" && v["user"] == "alice");
    assert_eq!(a.status()["bootstrap"], boot.ready_peer_id());

    // Mallory's presence is signed by the wrong authority: a never shows it.
    std::thread::sleep(Duration::from_secs(1));
    rogue.send("/nick Totally Legit");
    std::thread::sleep(Duration::from_millis(500));
    let online = who(&mut a);
    assert!(!online.iter().any(|(u, _)| u == "mallory"), "{online:?}");
    let events = a.events_within(Duration::from_millis(200));
    assert!(!events.iter().any(|e| e.to_string().contains("mallory")), "{events:?}");
}

/// Rows for `user` in the `accounts` table of the bootstrap database in `dir`, read-only.
fn account_rows(dir: &std::path::Path, user: &str) -> i64 {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let db = rusqlite::Connection::open_with_flags(dir.join("accounts.db"), flags).unwrap();
    db.query_row("SELECT COUNT(*) FROM accounts WHERE username = ?1", [user], |r| r.get(0)).unwrap()
}

/// A key in groups of four hex digits, as the node shows it to a person.
fn grouped(key: &str) -> String {
    key.as_bytes().chunks(4).map(|g| String::from_utf8_lossy(g).into_owned()).collect::<Vec<_>>().join(" ")
}

#[test]
fn first_contact_with_a_bootstrap_is_confirmed_by_the_user() {
    let Some(lab) = Lab::start(3) else { return };
    // A rogue bootstrap node is met first; the real one comes a moment later.
    let rogue_dir = tempfile::tempdir().unwrap();
    let mut rogue = lab.node(1, "rogue").args(&["bootstrap"]).data_dir(rogue_dir.path()).spawn();
    let rogue_ready = rogue.ready();
    let rogue_key = str_of(&rogue_ready, "authority_key").to_string();
    let mut a = lab.node(2, "a").spawn();
    a.ready();
    let met = a.wait_for("rogue unconfirmed", |v| v["type"] == "bootstrap" && v["state"] == "unconfirmed");
    assert_eq!(met["peer_id"], rogue.ready_peer_id(), "{met}");
    assert_eq!(met["key"], rogue_key.as_str(), "{met}");

    let boot_dir = tempfile::tempdir().unwrap();
    let mut boot = lab.node(0, "bootstrap").args(&["bootstrap"]).data_dir(boot_dir.path()).spawn();
    let boot_ready = boot.ready();
    let real_key = str_of(&boot_ready, "authority_key").to_string();
    a.wait_for("real bootstrap unconfirmed", |v| {
        v["type"] == "bootstrap" && v["state"] == "unconfirmed" && v["key"] == real_key.as_str()
    });
    assert!(!a.data_dir.join("bootstrap.pub").exists(), "nothing is pinned on its own");

    // No password leaves the node while no key is trusted; the password line is still taken.
    a.send("/register alice");
    a.send(GOOD);
    let refused = a.wait_for("bootstrap_unconfirmed", |v| v["type"] == "error" && v["code"] == "bootstrap_unconfirmed");
    assert_eq!(refused["key"], rogue_key.as_str(), "the first key in reach: {refused}");
    let message = str_of(&refused, "message");
    assert!(message.contains(&grouped(&rogue_key)) && message.contains(&grouped(&real_key)), "{message}");
    assert!(message.contains("nothing was sent"), "{message}");
    a.send("/login alice");
    a.send(GOOD);
    expect_error(&mut a, "bootstrap_unconfirmed");
    assert_eq!(a.status()["user"], serde_json::Value::Null, "the password lines were not taken as commands");
    assert_eq!(account_rows(rogue_dir.path(), "alice"), 0);

    // The user compares the key with the one the real bootstrap printed, and trusts it.
    a.send("/trust 0000000");
    assert!(expect_error(&mut a, "usage").contains("at least 8"));
    let trusted = support::chat::trust(&mut a, &real_key[..12]);
    assert_eq!(trusted["key"], real_key.as_str(), "{trusted}");
    assert_eq!(trusted.get("peer_id"), None, "{trusted}");
    let refusal = expect_error(&mut a, "untrusted_bootstrap");
    assert!(refusal.contains(&rogue_key), "{refusal}");
    a.wait_for("real bootstrap found", |v| {
        v["type"] == "bootstrap" && v["state"] == "found" && v["peer_id"] == boot.ready_peer_id().as_str()
    });
    let pinned = std::fs::read_to_string(a.data_dir.join("bootstrap.pub")).unwrap();
    assert_eq!(pinned.trim(), real_key);

    a.send("/register alice");
    a.send(GOOD);
    a.wait_for("alice", |v| v["type"] == "logged_in" && v["user"] == "alice");
    assert_eq!(a.status()["bootstrap"], boot.ready_peer_id());
    assert_eq!(account_rows(boot_dir.path(), "alice"), 1);
    assert_eq!(account_rows(rogue_dir.path(), "alice"), 0, "the rogue never heard of alice");

    // Another key is refused by /trust too, saying which file to delete.
    a.send(&format!("/trust {rogue_key}"));
    let conflict = expect_error(&mut a, "untrusted_bootstrap");
    assert!(conflict.contains("bootstrap.pub") && conflict.contains("delete"), "{conflict}");
    drop(rogue);
}
