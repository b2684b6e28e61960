//! The bot example, a program built on the library's `Client` without the REPL: it logs in,
//! joins a room, and answers direct messages.

mod support;

use support::NodeBuilder;
use support::chat::{expect_bootstrap, join_room, register, str_of};

#[test]
fn the_bot_joins_its_room_and_answers_direct_messages() {
    let mut boot = NodeBuilder::loopback("bootstrap").args(&["bootstrap"]).spawn();
    let ready = boot.ready();
    let boot_addr = ready["listen"][0].as_str().unwrap().to_string();
    let mut bot = NodeBuilder::new("bot")
        .example("bot")
        .args(&["--user", "helperbot", "--password", "a long bot passphrase 42", "--room", "lobby"])
        .args(&["--listen", "/ip4/127.0.0.1/tcp/0", "--peer", &boot_addr])
        .trusting(&ready)
        .spawn();
    bot.wait_for("bot in its room", |v| v["type"] == "room_created" && v["room"] == "lobby");

    let mut alice = NodeBuilder::loopback("alice").args(&["--peer", &boot_addr]).spawn();
    expect_bootstrap(&mut alice);
    register(&mut alice, "alice", "correct horse battery staple");
    alice.wait_for("bot online", |v| v["type"] == "presence" && v["user"] == "helperbot");
    alice.send("/msg helperbot !ping");
    alice.wait_for("pong", |v| v["type"] == "dm" && v["from"] == "helperbot" && v["text"] == "pong");
    alice.send("/msg helperbot hello there");
    alice.wait_for("echo", |v| v["type"] == "dm" && v["from"] == "helperbot" && v["text"] == "you said: hello there");

    join_room(&mut alice, "lobby");
    alice.send("/history");
    let history = alice.wait_type("history");
    let first = &history["messages"][0];
    assert_eq!(first["from"], "helperbot", "{history}");
    assert!(str_of(first, "text").contains("send me a direct message"), "{history}");
}
