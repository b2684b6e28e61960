//! A node as a user or a script meets it, on loopback without mDNS: start-up, `ready`, `--peer`
//! connections, re-dialling, hostile input, identity across restarts, the data-dir lock and the
//! ways a node ends.

mod support;

use std::net::TcpListener;
use std::time::Duration;

use serde_json::Value;
use support::NodeBuilder;

fn listen_addrs(ready: &Value) -> Vec<String> {
    ready["listen"].as_array().expect("listen is a list").iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

fn peer_id(ready: &Value) -> String {
    ready["peer_id"].as_str().expect("peer_id").to_string()
}

/// A TCP port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn ready_lists_the_peer_id_and_the_real_listen_addresses() {
    let mut node = NodeBuilder::new("a")
        .args(&["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1"])
        .spawn();
    let ready = node.ready();
    assert!(peer_id(&ready).starts_with("12D3KooW"), "{ready}");
    let addrs = listen_addrs(&ready);
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    let tcp = addrs.iter().find(|a| a.contains("/tcp/")).expect("a TCP address");
    let quic = addrs.iter().find(|a| a.ends_with("/quic-v1")).expect("a QUIC address");
    assert!(!tcp.ends_with("/tcp/0"), "the port is real: {tcp}");
    assert!(!quic.contains("/udp/0/"), "the port is real: {quic}");
    // The address is really listening.
    let port: u16 = tcp.rsplit('/').next().unwrap().parse().unwrap();
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the advertised port");
}

#[test]
fn two_nodes_connect_through_peer() {
    let mut a = NodeBuilder::loopback("a").spawn();
    let ready_a = a.ready();
    let addr_a = listen_addrs(&ready_a).remove(0);
    let mut b = NodeBuilder::loopback("b").args(&["--peer", &addr_a]).spawn();
    let ready_b = b.ready();
    b.wait_peer(&peer_id(&ready_a), "connected");
    a.wait_peer(&peer_id(&ready_b), "connected");
    let status = b.status();
    assert_eq!(status["peers"], serde_json::json!([peer_id(&ready_a)]));
    assert_eq!(status["peer_id"], peer_id(&ready_b).as_str());
    assert!(status["user"].is_null());
}

#[test]
fn a_killed_peer_is_reported_and_redialled_when_it_comes_back() {
    let port = free_port();
    let addr = format!("/ip4/127.0.0.1/tcp/{port}");
    let dir = tempfile::tempdir().unwrap();
    let mut a = NodeBuilder::new("a").args(&["--no-mdns", "--listen", &addr]).data_dir(dir.path()).spawn();
    let id_a = peer_id(&a.ready());
    let mut b = NodeBuilder::loopback("b").args(&["--peer", &addr]).spawn();
    let id_b = peer_id(&b.ready());
    b.wait_peer(&id_a, "connected");
    a.wait_peer(&id_b, "connected");

    a.kill();
    b.wait_peer(&id_a, "disconnected");

    let mut a = NodeBuilder::new("a again").args(&["--no-mdns", "--listen", &addr]).data_dir(dir.path()).spawn();
    assert_eq!(peer_id(&a.ready()), id_a);
    b.wait_peer(&id_a, "connected");
    a.wait_peer(&id_b, "connected");
}

#[test]
fn an_unreachable_peer_is_reported_without_ending_the_node() {
    let port = free_port();
    let mut node = NodeBuilder::loopback("a").args(&["--peer", &format!("/ip4/127.0.0.1/tcp/{port}")]).spawn();
    node.ready();
    let info = node.wait_for("an info about the unreachable peer", |v| {
        v["type"] == "info" && v["message"].as_str().unwrap_or("").contains("cannot reach peer")
    });
    assert!(info["message"].as_str().unwrap().contains("retrying"), "{info}");
    assert_eq!(node.status()["peers"], serde_json::json!([]));
}

#[test]
fn hostile_input_gets_errors_and_the_node_keeps_answering() {
    let mut node = NodeBuilder::loopback("a").spawn();
    node.ready();

    node.send("/frobnicate");
    let error = node.wait_type("error");
    assert_eq!(error["code"], "invalid_command");
    assert!(error["message"].as_str().unwrap().contains("/frobnicate"));

    node.send("/stauts");
    let error = node.wait_type("error");
    assert_eq!(error["code"], "invalid_command");
    assert!(error["message"].as_str().unwrap().contains("did you mean /status?"), "{error}");

    let mut long = vec![b'x'; 100_000];
    long.push(b'\n');
    node.send_bytes(&long);
    assert_eq!(node.wait_type("error")["code"], "too_long");

    node.send_bytes(b"nul\0byte\n");
    assert_eq!(node.wait_type("error")["code"], "usage");

    node.send_bytes(b"\x1b[2J\x1b]0;pwned\x07/status\n");
    assert_eq!(node.wait_type("error")["code"], "usage");

    node.send_bytes(b"/status \xff\xfe\n");
    assert_eq!(node.wait_type("error")["code"], "usage");

    node.send("");
    node.send("   ");
    node.send("/login");
    let error = node.wait_type("error");
    assert_eq!(error["code"], "usage");
    assert!(error["message"].as_str().unwrap().contains("/login NAME"), "{error}");

    let status = node.status();
    assert!(status["peer_id"].is_string());
    // Nothing else was reported: blank lines are silent.
    let rest: Vec<Value> = node.events_within(Duration::from_millis(300));
    assert!(rest.is_empty(), "unexpected events: {rest:?}");
}

#[test]
fn help_lists_every_command_and_explains_one() {
    let mut node = NodeBuilder::loopback("a").spawn();
    node.ready();
    node.send("/help");
    let help = node.wait_type("info");
    let text = help["message"].as_str().unwrap();
    for command in ["/register NAME", "/msg USER TEXT", "/kick USER [ROOM]", "/quit"] {
        assert!(text.contains(command), "{command} missing from {text}");
    }
    node.send("/help msg");
    let help = node.wait_type("info");
    assert!(help["message"].as_str().unwrap().contains("example: /msg bob"), "{help}");
}

#[test]
fn the_peer_id_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = NodeBuilder::loopback("first").data_dir(dir.path()).spawn();
    let id = peer_id(&first.ready());
    first.send("/quit");
    assert!(first.wait_exit(Duration::from_secs(10)).success());

    let mut second = NodeBuilder::loopback("second").data_dir(dir.path()).spawn();
    assert_eq!(peer_id(&second.ready()), id);
}

#[test]
fn a_second_node_on_the_same_data_dir_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = NodeBuilder::loopback("first").data_dir(dir.path()).spawn();
    first.ready();
    let mut second = NodeBuilder::loopback("second").data_dir(dir.path()).spawn();
    let status = second.wait_exit(Duration::from_secs(10));
    assert!(!status.success());
    let stderr = second.stderr_text();
    assert!(stderr.contains("in use by another meshchat process"), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", first.pid())), "{stderr}");
    // The first node is unharmed.
    first.status();
}

#[test]
fn quit_end_of_input_and_sigterm_end_the_node_cleanly() {
    let mut quit = NodeBuilder::loopback("quit").spawn();
    quit.ready();
    quit.send("/quit");
    assert_eq!(quit.wait_exit(Duration::from_secs(10)).code(), Some(0));

    let mut eof = NodeBuilder::loopback("eof").spawn();
    eof.ready();
    eof.close_stdin();
    assert_eq!(eof.wait_exit(Duration::from_secs(10)).code(), Some(0));

    let mut term = NodeBuilder::loopback("term").spawn();
    term.ready();
    term.signal(libc::SIGTERM);
    assert_eq!(term.wait_exit(Duration::from_secs(10)).code(), Some(0));
}

#[test]
fn a_stopping_node_is_seen_leaving_by_its_peer() {
    let mut a = NodeBuilder::loopback("a").spawn();
    let ready_a = a.ready();
    let mut b = NodeBuilder::loopback("b").args(&["--peer", &listen_addrs(&ready_a)[0]]).spawn();
    let id_b = peer_id(&b.ready());
    a.wait_peer(&id_b, "connected");
    b.signal(libc::SIGTERM);
    assert_eq!(b.wait_exit(Duration::from_secs(10)).code(), Some(0));
    a.wait_peer(&id_b, "disconnected");
}

#[test]
fn bad_options_are_refused_clearly() {
    let mut node = NodeBuilder::new("bad").args(&["--peer", "/ip4/127.0.0.1"]).spawn();
    assert!(!node.wait_exit(Duration::from_secs(10)).success());
    assert!(node.stderr_text().contains("--peer /ip4/127.0.0.1"), "{}", node.stderr_text());

    let mut node = NodeBuilder::new("busy").args(&["--no-mdns", "--listen", "/ip4/203.0.113.1/tcp/0"]).spawn();
    assert!(!node.wait_exit(Duration::from_secs(10)).success());
    assert!(node.stderr_text().contains("cannot listen on /ip4/203.0.113.1/tcp/0"), "{}", node.stderr_text());
}
