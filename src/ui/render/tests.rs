//! Tests of the terminal renderer: every kind of event as text, plain and coloured.

use super::*;
use crate::node::{ErrorCode, NotificationKind, PeerConnection};

fn plain(event: &UiEvent) -> String {
    Renderer::new(false, SharedLinks::default()).with_utc().render(event)
}

fn colored() -> Renderer {
    Renderer::new(true, SharedLinks::default()).with_utc()
}

fn message(from: &str, text: &str) -> UiEvent {
    UiEvent::Message(ChatMessage {
        room: "lobby".into(),
        from: from.into(),
        nick: from.into(),
        text: text.into(),
        id: "m1".into(),
        ts: (12 * 3600 + 3 * 60) * 1000,
        unreadable: false,
    })
}

fn logged_in(user: &str) -> UiEvent {
    UiEvent::LoggedIn { user: user.into(), nick: user.into(), resumed: false }
}

#[test]
fn search_results_show_where_when_and_the_words_matched() {
    let result = |n, event| SearchResult { n, found: event, matches: vec![(3, 9)] };
    let dm = UiEvent::Dm(DirectMessage {
        from: "bob".into(),
        to: "alice".into(),
        text: "hi deploy".into(),
        id: "d".into(),
        ts: 0,
    });
    let event = UiEvent::Search {
        query: "deploy*".into(),
        results: vec![result(21, message("bob", "we deployed")), result(22, dm)],
        more: true,
    };
    let text = plain(&event);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "--- results 21 to 22 for deploy* ---");
    assert_eq!(lines[1], "[21] 1970-01-01 12:03 #lobby <bob> we deployed");
    assert_eq!(lines[2], "[22] 1970-01-01 00:00 [bob → alice] hi deploy");
    assert!(lines[3].contains("/search more"));
    let text = colored().render(&event);
    assert!(text.contains("we \x1b[30;43mdeploy\x1b[0med"), "{text:?}");
    let none = plain(&UiEvent::Search { query: "x".into(), results: vec![], more: false });
    assert_eq!(none, "--- nothing found for x ---");
}

#[test]
fn a_notice_of_several_lines_keeps_them_and_nothing_else_drives_the_terminal() {
    assert_eq!(
        plain(&UiEvent::info("/kick USER\n  example: /kick bob\x1b[2J")),
        "/kick USER\n  example: /kick bob␛[2J"
    );
}

#[test]
fn errors_show_message_and_code() {
    let text = plain(&UiEvent::error(ErrorCode::Usage, "usage: /login NAME: missing NAME"));
    assert_eq!(text, "!!! usage: /login NAME: missing NAME [usage]");
    let text = colored().render(&UiEvent::error(ErrorCode::Usage, "no"));
    assert_eq!(text, "\x1b[1;31m!!!\x1b[0m \x1b[31mno\x1b[0m \x1b[2m[usage]\x1b[0m");
}

#[test]
fn escapes_from_outside_are_made_visible() {
    let text = plain(&UiEvent::info("evil\x1b]0;title\x07"));
    assert!(!text.contains('\x1b'));
    assert!(text.contains('\u{241b}'));
    let mut r = colored();
    let evil = UiEvent::Message(ChatMessage {
        room: "lob\x1b[2Jby".into(),
        from: "mal\x07lory".into(),
        nick: "\x1b]0;pwned\x07".into(),
        text: "\x1b[31mred\x1b[0m \u{9b}2J".into(),
        id: "x".into(),
        ts: 0,
        unreadable: false,
    });
    let text = r.render(&evil);
    assert!(!text.contains('\x07'), "{text:?}");
    assert!(!text.contains('\u{9b}'), "{text:?}");
    assert!(!text.contains("\x1b[2J") && !text.contains("\x1b]0;"), "{text:?}");
    assert!(text.contains("\u{241b}[31mred\u{241b}[0m"), "{text:?}");
}

#[test]
fn messages_show_time_room_colored_name_and_formatted_text() {
    let mut r = colored();
    let text = r.render(&message("bob", "hi *there*"));
    let bob = crate::ui::style::user_color("bob");
    assert_eq!(
        text,
        format!("\x1b[2m12:03\x1b[0m \x1b[34m#lobby\x1b[0m \x1b[{bob}m<bob>\x1b[0m hi \x1b[1mthere\x1b[0m")
    );
    assert_eq!(plain(&message("bob", "hi *there*")), "12:03 #lobby <bob> hi *there*");
}

#[test]
fn your_own_messages_are_bold_once_logged_in() {
    let mut r = colored();
    let alice = crate::ui::style::user_color("alice");
    assert!(r.render(&message("alice", "x")).contains(&format!("\x1b[{alice}m<alice>")));
    r.render(&logged_in("alice"));
    assert!(r.render(&message("alice", "x")).contains(&format!("\x1b[1;{alice}m<alice>")));
    r.render(&UiEvent::Renamed { old: "alice".into(), new: "alice2".into() });
    assert_eq!(r.me(), Some("alice2"));
    r.render(&UiEvent::LoggedOut { user: "alice2".into() });
    assert_eq!(r.me(), None);
}

#[test]
fn a_nickname_never_hides_the_username() {
    let mut event = message("mallory", "hi");
    if let UiEvent::Message(m) = &mut event {
        m.nick = "alice".into();
    }
    assert_eq!(plain(&event), "12:03 #lobby <alice (mallory)> hi");
}

#[test]
fn direct_messages_show_both_parties() {
    let dm = UiEvent::Dm(DirectMessage {
        from: "alice".into(),
        to: "bob".into(),
        text: "psst _quiet_".into(),
        id: "d".into(),
        ts: 0,
    });
    assert_eq!(plain(&dm), "00:00 [alice → bob] psst _quiet_");
    let mut r = colored();
    r.render(&logged_in("alice"));
    let (a, b) = (crate::ui::style::user_color("alice"), crate::ui::style::user_color("bob"));
    assert_eq!(
        r.render(&dm),
        format!(
            "\x1b[2m00:00\x1b[0m \x1b[35m[\x1b[0m\x1b[1;{a}malice\x1b[0m \x1b[35m→\x1b[0m \x1b[{b}mbob\x1b[0m\x1b[35m]\x1b[0m psst \x1b[3mquiet\x1b[0m"
        )
    );
}

#[test]
fn history_lists_messages_and_dms() {
    let dm = UiEvent::Dm(DirectMessage {
        from: "bob".into(),
        to: "alice".into(),
        text: "yo".into(),
        id: "d".into(),
        ts: 60_000,
    });
    let text = plain(&UiEvent::History { target: "#lobby".into(), messages: vec![message("bob", "one"), dm] });
    assert_eq!(
        text,
        "--- history of #lobby ---\n12:03 #lobby <bob> one\n00:01 [bob → alice] yo\n--- end of history ---"
    );
}

#[test]
fn notifications_ring_only_when_elsewhere() {
    let note =
        |focused| UiEvent::Notification { kind: NotificationKind::Room, room: Some("dev".into()), from: None, focused };
    let mut r = colored();
    assert_eq!(r.render(&note(true)), "");
    assert_eq!(r.render(&note(false)), "\x1b[1;35m(!) new message in #dev\x1b[0m\x07");
    let mut quiet = Renderer::new(false, SharedLinks::default()).with_bell(false);
    assert_eq!(quiet.render(&note(false)), "(!) new message in #dev");
}

#[test]
fn links_in_messages_are_numbered_across_the_session() {
    let links = SharedLinks::default();
    let mut r = Renderer::new(true, links.clone()).with_utc();
    r.render(&message("bob", "https://a.example"));
    let text = r.render(&message("bob", "and https://b.example/x?y=1"));
    assert!(
        text.ends_with(
            "and \x1b]8;;https://b.example/x?y=1\x1b\\\x1b[4mhttps://b.example/x?y=1\x1b[24m\x1b]8;;\x1b\\ \x1b[2m[2]\x1b[0m"
        ),
        "{text:?}"
    );
    assert_eq!(links.lock().get(2), Some("https://b.example/x?y=1"));
    assert_eq!(plain(&message("bob", "https://c.example")), "12:03 #lobby <bob> https://c.example [1]");
}

#[test]
fn a_url_with_an_escape_inside_cannot_end_the_hyperlink() {
    let mut r = colored();
    let text = r.render(&message("bob", "https://e.com/\x1b\\\x1b]8;;https://evil.example\x07x"));
    assert!(!text.contains('\x07'), "{text:?}");
    // Every escape is one of ours: SGR, or an OSC 8 opened with a printable target and closed.
    let mut rest = text.as_str();
    let mut hyperlinks = 0;
    while let Some(at) = rest.find('\x1b') {
        rest = &rest[at + 1..];
        if let Some(osc) = rest.strip_prefix("]8;;") {
            let end = osc.find("\x1b\\").expect("the hyperlink is terminated");
            let target = &osc[..end];
            assert!(target.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{target:?}");
            hyperlinks += usize::from(!target.is_empty());
            rest = &osc[end + 2..];
        } else {
            assert!(rest.starts_with('['), "a foreign escape in {text:?}");
        }
    }
    assert_eq!(hyperlinks, 2, "{text:?}");
    assert!(text.contains("\x1b]8;;https://e.com/%E2%90%9B\\%E2%90%9B\x1b\\"), "{text:?}");
}

#[test]
fn connection_trouble_and_errors_have_their_own_colours() {
    let mut r = colored();
    let lost = r.render(&UiEvent::bootstrap("p", BootstrapState::Lost));
    assert_eq!(lost, "\x1b[33m--- bootstrap node lost:\x1b[0m p");
    let gone = r.render(&UiEvent::Peer { peer_id: "p".into(), state: PeerState::Disconnected });
    assert_eq!(gone, "\x1b[33m--- disconnected from\x1b[0m p");
    let found = r.render(&UiEvent::bootstrap("p", BootstrapState::Found));
    assert_eq!(found, "\x1b[32m+++ bootstrap node in reach:\x1b[0m p");
    let key = "3f2a9c01".repeat(8);
    let unconfirmed = plain(&UiEvent::Bootstrap {
        peer_id: Some("p".into()),
        state: BootstrapState::Unconfirmed,
        key: Some(key.clone()),
    });
    assert!(unconfirmed.contains("key 3f2a 9c01 3f2a"), "{unconfirmed}");
    assert!(unconfirmed.contains("/trust"), "{unconfirmed}");
    let trusted = plain(&UiEvent::Bootstrap { peer_id: None, state: BootstrapState::Trusted, key: Some(key) });
    assert!(trusted.starts_with("+++ trusted bootstrap key 3f2a 9c01"), "{trusted}");
    assert_eq!(r.render(&UiEvent::info("hello")), "\x1b[36mhello\x1b[0m");
}

#[test]
fn status_lists_peers_and_rooms() {
    let text = plain(&UiEvent::Status(Status {
        peer_id: "me".into(),
        user: None,
        peers: vec!["p1".into(), "p2".into()],
        bootstrap: None,
        rooms: vec!["lobby".into(), "dev".into()],
        encryption: vec![
            RoomEncryption { room: "lobby".into(), encrypted: true, members: 3, key_holders: Some(2) },
            RoomEncryption { room: "dev".into(), encrypted: true, members: 2, key_holders: None },
        ],
        outbox: 3,
        certificate_expires_in: None,
        problems: vec!["no bootstrap node in reach".into()],
        listen: vec!["/ip4/127.0.0.1/tcp/1".into()],
        connections: vec![
            PeerConnection { peer_id: "p1".into(), user: Some("bob".into()), path: PeerPath::Direct },
            PeerConnection { peer_id: "p2".into(), user: None, path: PeerPath::Relayed },
        ],
        reachability: Reachability::Private,
        relay: Some("r1".into()),
    }));
    assert!(text.contains("p1 bob direct"), "{text}");
    assert!(text.contains("p2 relayed"), "{text}");
    assert!(text.contains("reach     private: reached through relay r1"), "{text}");
    assert!(text.contains("peers     2"), "{text}");
    assert!(text.contains("#lobby encrypted: 2 of 3 members hold your current key"), "{text}");
    assert!(text.contains("#dev encrypted: your next message here begins a new key"), "{text}");
    assert!(text.contains("!!! trouble: no bootstrap node in reach"), "{text}");
    assert!(text.contains("(not logged in)"));
    assert!(text.contains("/ip4/127.0.0.1/tcp/1"));
}
