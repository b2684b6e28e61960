//! `/search` as users see it, on loopback: words, prefixes, phrases, diacritics, `from:`, a room
//! or a conversation only, pages of 20 with `/search more`, `/history around N`; only what the
//! user searching may read (their rooms now, their own conversations), after a restart too, and
//! never another user's of the same node.

mod support;

use serde_json::Value;
use support::chat::{PASSWORDS, expect_error, join_room, loopback_trio, register, str_of};
use support::{NodeBuilder, NodeProc};

/// The answer to `/search LINE`.
fn search(node: &mut NodeProc, line: &str) -> Value {
    node.send(&format!("/search {line}"));
    node.wait_for(&format!("search {line}"), |v| v["type"] == "search" || v["type"] == "error")
}

/// The texts of the results of `/search LINE`, in order.
fn found(node: &mut NodeProc, line: &str) -> Vec<String> {
    let answer = search(node, line);
    assert_eq!(answer["type"], "search", "{answer}");
    answer["results"].as_array().unwrap().iter().map(|r| str_of(r, "text").to_string()).collect()
}

/// The words `result` says it matched.
fn matched(result: &Value) -> Vec<String> {
    let text: Vec<char> = str_of(result, "text").chars().collect();
    let ranges = result["matches"].as_array().unwrap();
    let range = |r: &Value| (r[0].as_u64().unwrap() as usize, r[1].as_u64().unwrap() as usize);
    ranges.iter().map(range).map(|(a, b)| text[a..b].iter().collect()).collect()
}

fn say(node: &mut NodeProc, room: &str, text: &str) {
    node.send(&format!("/focus #{room}"));
    node.send(text);
    node.wait_for(&format!("{text:?} shown"), |v| v["type"] == "message" && v["room"] == room && v["text"] == text);
}

#[test]
fn a_user_finds_what_they_may_read_and_nothing_else() {
    let alice_dir = tempfile::tempdir().unwrap();
    let trio = loopback_trio(&[], [Some(alice_dir.path()), None]);
    let (boot_addr, _boot, mut alice, mut bob) = (trio.boot_addr, trio.boot, trio.alice, trio.bob);
    register(&mut alice, "alice", PASSWORDS[0]);
    register(&mut bob, "bob", PASSWORDS[1]);
    alice.send("/create ops");
    alice.wait_for("ops created", |v| v["type"] == "room_created" && v["room"] == "ops");
    join_room(&mut bob, "ops");
    say(&mut alice, "ops", "we deployed the release on friday");
    say(&mut alice, "ops", "Café crème for everyone");
    for n in 1..=24 {
        say(&mut alice, "ops", &format!("lunch number {n}"));
    }
    bob.wait_for("the last lunch", |v| v["type"] == "message" && v["text"] == "lunch number 24");
    bob.send("/msg alice the deploy went fine");
    alice.wait_for("bob's message", |v| v["type"] == "dm" && v["text"] == "the deploy went fine");
    alice.send("/create secret");
    alice.wait_for("secret created", |v| v["type"] == "room_created" && v["room"] == "secret");
    say(&mut alice, "secret", "deploy the secret plan");

    // Prefixes find every form, in every room and conversation of alice's, matched words marked.
    let answer = search(&mut alice, "deploy*");
    assert_eq!(answer["query"], "deploy*");
    let results = answer["results"].as_array().unwrap();
    let mut texts: Vec<&str> = results.iter().map(|r| str_of(r, "text")).collect();
    texts.sort_unstable();
    assert_eq!(texts, ["deploy the secret plan", "the deploy went fine", "we deployed the release on friday"]);
    for result in results {
        let words = matched(result);
        assert!(words.len() == 1 && words[0].starts_with("deploy"), "{result}");
    }
    let dm = results.iter().find(|r| r["type"] == "dm").expect("the direct message");
    assert_eq!((dm["from"].as_str(), dm["to"].as_str()), (Some("bob"), Some("alice")));
    assert_eq!(answer["more"], false);

    // A word alone, a phrase, diacritics, a room or a conversation only, an author.
    let mut words = found(&mut alice, "deploy");
    words.sort_unstable();
    assert_eq!(words, ["deploy the secret plan", "the deploy went fine"], "not \"deployed\"");
    assert_eq!(found(&mut alice, "\"release on friday\""), ["we deployed the release on friday"]);
    assert!(found(&mut alice, "\"friday on release\"").is_empty());
    assert_eq!(found(&mut alice, "cafe CREME"), ["Café crème for everyone"]);
    assert_eq!(found(&mut alice, "deploy* #ops"), ["we deployed the release on friday"]);
    assert_eq!(found(&mut alice, "deploy* @bob"), ["the deploy went fine"]);
    assert_eq!(found(&mut alice, "deploy* from:bob"), ["the deploy went fine"]);
    alice.send("/search deploy from:nobody");
    assert!(expect_error(&mut alice, "no_such_user").contains("nobody"));

    // Twenty at a time, numbered; then the rest; then the messages around one of them.
    let first = search(&mut alice, "lunch");
    let numbers: Vec<u64> = first["results"].as_array().unwrap().iter().map(|r| r["n"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (1..=20).collect::<Vec<u64>>());
    assert_eq!(first["more"], true);
    let rest = search(&mut alice, "more");
    let numbers: Vec<u64> = rest["results"].as_array().unwrap().iter().map(|r| r["n"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (21..=24).collect::<Vec<u64>>());
    assert_eq!(rest["more"], false);
    let all: Vec<&Value> =
        first["results"].as_array().unwrap().iter().chain(rest["results"].as_array().unwrap()).collect();
    let mut lunches: Vec<&str> = all.iter().map(|r| str_of(r, "text")).collect();
    lunches.sort_unstable();
    lunches.dedup();
    assert_eq!(lunches.len(), 24, "every lunch once: {lunches:?}");
    let picked = str_of(all[20], "text").to_string();
    alice.send("/history around 21");
    let around = alice.wait_type("history");
    assert_eq!(around["target"], "#ops");
    let texts: Vec<&str> = around["messages"].as_array().unwrap().iter().map(|m| str_of(m, "text")).collect();
    let at = texts.iter().position(|t| *t == picked).unwrap_or_else(|| panic!("{picked} not in {texts:?}"));
    assert!(at > 0 && at + 1 < texts.len(), "messages on both sides: {texts:?}");
    alice.send("/history around 25");
    assert!(expect_error(&mut alice, "usage").contains("1 to 24"));

    // Bob reads ops and his conversation with alice, not alice's secret room.
    let mut bobs: Vec<String> = found(&mut bob, "deploy*");
    bobs.sort_unstable();
    assert_eq!(bobs, ["the deploy went fine", "we deployed the release on friday"]);
    assert!(found(&mut bob, "secret").is_empty());
    let refused = search(&mut bob, "plan #secret");
    assert_eq!(refused["type"], "error");
    assert!(refused["code"] == "not_member" || refused["code"] == "no_such_room", "{refused}");

    // After a restart alice finds the same; then carol, on alice's node, finds nothing of hers.
    alice.send("/quit");
    alice.wait_exit(std::time::Duration::from_secs(10));
    let mut alice =
        NodeBuilder::loopback("alice again").args(&["--peer", &boot_addr]).data_dir(alice_dir.path()).spawn();
    alice.wait_for("resumed", |v| v["type"] == "logged_in" && v["resumed"] == true);
    assert_eq!(found(&mut alice, "friday"), ["we deployed the release on friday"]);
    alice.send("/logout");
    alice.wait_type("logged_out");
    alice.send("/search more");
    assert!(expect_error(&mut alice, "not_logged_in").contains("log in"));
    register(&mut alice, "carol", PASSWORDS[2]);
    alice.send("/search more");
    assert!(expect_error(&mut alice, "usage").contains("/search WORDS first"), "alice's last search is not carol's");
    assert!(found(&mut alice, "deploy*").is_empty(), "carol finds none of alice's rooms or conversations");
}
