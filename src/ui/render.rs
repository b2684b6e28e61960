//! The text renderer: turns a [`UiEvent`] into the lines a person reads.
//!
//! Every kind of line has its own look: each username in its own stable colour, your own
//! messages in bold, system notices cyan, notifications magenta (with the terminal bell when
//! they are about somewhere else than the focus), errors red, connection trouble yellow. Message
//! text gets its formatting and numbered links through [`format`]. All text that came from
//! outside passes through [`sanitize::visible`] first, so no peer can drive the terminal.
//!
//! The [`Renderer`] keeps what it needs to know across events: who "me" is (from `logged_in`,
//! `logged_out`, `renamed`) and the session's links.

use super::format;
use super::links::SharedLinks;
use super::sanitize::visible;
use super::style::{Palette, sgr};
use crate::node::{
    BootstrapState, ChatMessage, DirectMessage, OnlineState, PeerState, RoomEncryption, Status, UiEvent,
};
use crate::pinned_key::grouped;

/// The terminal bell.
pub const BELL: char = '\x07';

/// Renders events as text lines, remembering the user's own name and the links shown.
#[derive(Debug, Clone)]
pub struct Renderer {
    palette: Palette,
    bell: bool,
    local_time: bool,
    me: Option<String>,
    links: SharedLinks,
}

impl Renderer {
    /// A renderer that colours (and formats, and makes hyperlinks) when `color` is true, and
    /// numbers links in `links`. It rings the bell and shows local time unless told otherwise.
    pub fn new(color: bool, links: SharedLinks) -> Self {
        Renderer { palette: Palette::new(color), bell: true, local_time: true, me: None, links }
    }

    /// Whether notifications ring the terminal bell.
    pub fn with_bell(mut self, bell: bool) -> Self {
        self.bell = bell;
        self
    }

    /// Shows time stamps in UTC instead of local time.
    pub fn with_utc(mut self) -> Self {
        self.local_time = false;
        self
    }

    /// The logged-in username, as far as the events told.
    pub fn me(&self) -> Option<&str> {
        self.me.as_deref()
    }

    fn is_me(&self, user: &str) -> bool {
        self.me.as_deref() == Some(user)
    }

    /// Learns from `event`, then returns its text (may span several lines; no trailing newline;
    /// empty when there is nothing to show).
    pub fn render(&mut self, event: &UiEvent) -> String {
        match event {
            UiEvent::LoggedIn { user, .. } => self.me = Some(user.clone()),
            UiEvent::LoggedOut { .. } => self.me = None,
            UiEvent::Renamed { old, new } if self.is_me(old) => self.me = Some(new.clone()),
            _ => {}
        }
        self.text(event)
    }

    fn dim(&self, text: &str) -> String {
        self.palette.paint(sgr::DIM, text)
    }

    fn notice(&self, text: &str) -> String {
        self.palette.paint(sgr::NOTICE, text)
    }

    /// A username in its colour; your own in bold.
    fn user(&self, user: &str) -> String {
        self.palette.user(user, &visible(user), self.is_me(user))
    }

    fn room(&self, room: &str) -> String {
        self.palette.paint(sgr::ROOM, &format!("#{}", visible(room)))
    }

    fn text(&self, event: &UiEvent) -> String {
        let p = &self.palette;
        match event {
            UiEvent::Ready { peer_id, listen, authority_key } => {
                let mut out =
                    format!("{} {}", self.dim("*** meshchat ready, peer id"), p.paint(sgr::BOLD, &visible(peer_id)));
                for addr in listen {
                    out.push_str(&format!("\n{} {}", self.dim("    listening on"), visible(addr)));
                }
                if let Some(key) = authority_key {
                    out.push_str(&format!(
                        "\n{} {}",
                        self.dim("    bootstrap authority key"),
                        p.paint(sgr::BOLD, &visible(&grouped(key)))
                    ));
                }
                out.push_str(&format!("\n{}", self.dim("    type /help for the commands")));
                out
            }
            UiEvent::Bootstrap { peer_id, state, key } => self.bootstrap(peer_id.as_deref(), *state, key.as_deref()),
            UiEvent::Peer { peer_id, state } => match state {
                PeerState::Connected => format!("{} {}", p.paint(sgr::GOOD, "+++ connected to"), visible(peer_id)),
                PeerState::Disconnected => {
                    format!("{} {}", p.paint(sgr::TROUBLE, "--- disconnected from"), visible(peer_id))
                }
            },
            UiEvent::Registered { user } => format!("{} {}", self.notice("*** registered"), self.user(user)),
            UiEvent::LoggedIn { user, nick, resumed } => format!(
                "{} {} ({}){}",
                self.notice("*** logged in as"),
                self.user(user),
                visible(nick),
                if *resumed { ", session resumed" } else { "" }
            ),
            UiEvent::LoggedOut { user } => format!("{} {}", self.notice("*** logged out:"), self.user(user)),
            UiEvent::Renamed { old, new } => {
                format!("{} {} {} {}", self.notice("***"), self.user(old), self.notice("is now"), self.user(new))
            }
            UiEvent::Nick { user, nick } => format!(
                "{} {} {} '{}'",
                self.notice("***"),
                self.user(user),
                self.notice("is now known as"),
                visible(nick)
            ),
            UiEvent::Presence { user, nick, state } => match state {
                OnlineState::Online => format!(
                    "{} {} ({}) {}",
                    p.paint(sgr::GOOD, "-->"),
                    self.user(user),
                    visible(nick),
                    p.paint(sgr::GOOD, "is online")
                ),
                OnlineState::Offline => format!(
                    "{} {} ({}) {}",
                    p.paint(sgr::TROUBLE, "<--"),
                    self.user(user),
                    visible(nick),
                    p.paint(sgr::TROUBLE, "went offline")
                ),
            },
            UiEvent::Online { users } => {
                if users.is_empty() {
                    return self.dim("nobody is online");
                }
                let mut out = self.dim(&format!("{} online:", users.len()));
                for u in users {
                    out.push_str(&format!("\n  {} ({})", self.user(&u.user), visible(&u.nick)));
                }
                out
            }
            UiEvent::Status(status) => self.status(status),
            UiEvent::Rooms { rooms } => {
                if rooms.is_empty() {
                    return self.dim("no rooms yet: /create one");
                }
                let mut out = self.dim(&format!("{} rooms:", rooms.len()));
                for r in rooms {
                    out.push_str(&format!("\n  {} ({} members)", self.room(&r.room), r.members));
                }
                out
            }
            UiEvent::RoomCreated { room, user } => {
                format!("{} {} {} {}", self.notice("***"), self.user(user), self.notice("created"), self.room(room))
            }
            UiEvent::Joined { room, user } => format!(
                "{} {} {} {}",
                p.paint(sgr::GOOD, "-->"),
                self.user(user),
                p.paint(sgr::GOOD, "joined"),
                self.room(room)
            ),
            UiEvent::Left { room, user } => format!(
                "{} {} {} {}",
                p.paint(sgr::TROUBLE, "<--"),
                self.user(user),
                p.paint(sgr::TROUBLE, "left"),
                self.room(room)
            ),
            UiEvent::Kicked { room, user, by } => self.removal("was kicked from", room, user, by),
            UiEvent::Banned { room, user, by } => self.removal("was banned from", room, user, by),
            UiEvent::Admin { room, user, by } => match by {
                Some(by) => format!(
                    "{} {} {} {} {} {}",
                    self.notice("***"),
                    self.user(user),
                    self.notice("is now admin of"),
                    self.room(room),
                    self.notice("by"),
                    self.user(by)
                ),
                None => format!(
                    "{} {} {} {} {}",
                    self.notice("***"),
                    self.user(user),
                    self.notice("is now admin of"),
                    self.room(room),
                    self.dim("(the oldest member)")
                ),
            },
            UiEvent::Members { room, members, encryption } => {
                let list: Vec<String> = members
                    .iter()
                    .map(|m| if m.admin { format!("@{}", self.user(&m.user)) } else { self.user(&m.user) })
                    .collect();
                let members =
                    format!("{} {}{} {}", self.dim("members of"), self.room(room), self.dim(":"), list.join(" "));
                format!("{members}\n{}", self.dim(&encryption_line(encryption)))
            }
            UiEvent::Message(message) => self.message(message),
            UiEvent::Dm(dm) => self.dm(dm),
            UiEvent::Delivered { to, .. } => format!("{} {}", self.dim("*** delivered to"), self.user(to)),
            UiEvent::Notification { room, from, focused, .. } => {
                if *focused {
                    return String::new();
                }
                let place = match (room, from) {
                    (Some(room), _) => format!("#{}", visible(room)),
                    (None, Some(from)) => format!("@{}", visible(from)),
                    (None, None) => String::new(),
                };
                let bell = if self.bell { BELL.to_string() } else { String::new() };
                format!("{}{bell}", p.paint(sgr::NOTIFY, &format!("(!) new message in {place}")))
            }
            UiEvent::Muted { target } => format!("{} {}", self.dim("*** muted"), visible(target)),
            UiEvent::Unmuted { target } => format!("{} {}", self.dim("*** unmuted"), visible(target)),
            UiEvent::Focus { target } => {
                format!("{} {}", self.notice("*** now talking in"), p.paint(sgr::BOLD, &visible(target)))
            }
            // The leave, kick, ban or logout that ended the focus was shown; the prompt shows the rest.
            UiEvent::Unfocused => String::new(),
            UiEvent::History { target, messages } => {
                let mut out = self.dim(&format!("--- history of {} ---", visible(target)));
                for m in messages {
                    let line = match m {
                        UiEvent::Message(m) => self.message(m),
                        UiEvent::Dm(m) => self.dm(m),
                        _ => continue,
                    };
                    out.push('\n');
                    out.push_str(&line);
                }
                out.push('\n');
                out.push_str(&self.dim("--- end of history ---"));
                out
            }
            UiEvent::Info { message } => self.notice(&visible(message)),
            UiEvent::Error { code, message, key } => {
                let mut out = format!(
                    "{} {} {}",
                    p.paint(sgr::ERROR, "!!!"),
                    p.paint(sgr::REMOVAL, &visible(message)),
                    self.dim(&format!("[{}]", code.as_str()))
                );
                if let Some(key) = key {
                    out.push_str(&format!("\n    key {}", p.paint(sgr::BOLD, &visible(&grouped(key)))));
                }
                out
            }
        }
    }

    /// A bootstrap node found, lost, unconfirmed (with its key to compare), or a key trusted.
    fn bootstrap(&self, peer_id: Option<&str>, state: BootstrapState, key: Option<&str>) -> String {
        let p = &self.palette;
        let peer = visible(peer_id.unwrap_or_default());
        let key = p.paint(sgr::BOLD, &visible(&grouped(key.unwrap_or_default())));
        match state {
            BootstrapState::Found => format!("{} {peer}", p.paint(sgr::GOOD, "+++ bootstrap node in reach:")),
            BootstrapState::Lost => format!("{} {peer}", p.paint(sgr::TROUBLE, "--- bootstrap node lost:")),
            BootstrapState::Unconfirmed => format!(
                "{} {peer}\n    key {key}\n{}",
                p.paint(sgr::TROUBLE, "??? bootstrap node with a key not confirmed yet:"),
                self.dim("    compare it with the key the bootstrap node printed at its start, then /trust KEY")
            ),
            BootstrapState::Trusted => format!("{} {key}", p.paint(sgr::GOOD, "+++ trusted bootstrap key")),
        }
    }

    fn removal(&self, what: &str, room: &str, user: &str, by: &str) -> String {
        let p = &self.palette;
        format!(
            "{} {} {} {} {} {}",
            p.paint(sgr::REMOVAL, "<--"),
            self.user(user),
            p.paint(sgr::REMOVAL, what),
            self.room(room),
            p.paint(sgr::REMOVAL, "by"),
            self.user(by)
        )
    }

    fn clock(&self, ts_ms: u64) -> String {
        self.dim(&clock(ts_ms, self.local_time))
    }

    /// Message text, formatted, its links numbered.
    fn body(&self, text: &str) -> String {
        format::format_text(&visible(text), self.palette.color(), &mut self.links.lock())
    }

    fn message(&self, m: &ChatMessage) -> String {
        let nick = visible(&m.nick);
        // The nickname is the author's choice; the username (from the certificate) is the truth.
        let shown = if m.nick == m.from { format!("<{nick}>") } else { format!("<{nick} ({})>", visible(&m.from)) };
        format!(
            "{} {} {} {}",
            self.clock(m.ts),
            self.room(&m.room),
            self.palette.user(&m.from, &shown, self.is_me(&m.from)),
            if m.unreadable {
                self.palette.paint(sgr::DIM, "(a message that cannot be decrypted: no key for it reached this node)")
            } else {
                self.body(&m.text)
            }
        )
    }

    fn dm(&self, m: &DirectMessage) -> String {
        let p = &self.palette;
        format!(
            "{} {}{} {} {}{} {}",
            self.clock(m.ts),
            p.paint(sgr::DM, "["),
            self.user(&m.from),
            p.paint(sgr::DM, "→"),
            self.user(&m.to),
            p.paint(sgr::DM, "]"),
            self.body(&m.text)
        )
    }

    fn status(&self, status: &Status) -> String {
        let mut lines = vec![format!("{} {}", self.dim("peer id  "), visible(&status.peer_id))];
        let user = status.user.as_deref().map(|u| self.user(u));
        lines.push(format!("{} {}", self.dim("user     "), user.as_deref().unwrap_or("(not logged in)")));
        let bootstrap = status.bootstrap.as_deref().map(visible);
        lines.push(format!("{} {}", self.dim("bootstrap"), bootstrap.as_deref().unwrap_or("(none in reach)")));
        lines.push(format!("{} {}", self.dim("peers    "), status.peers.len()));
        for peer in &status.peers {
            lines.push(format!("    {}", visible(peer)));
        }
        let rooms = if status.rooms.is_empty() {
            "(none)".to_string()
        } else {
            status.rooms.iter().map(|r| self.room(r)).collect::<Vec<_>>().join(" ")
        };
        lines.push(format!("{} {}", self.dim("rooms    "), rooms));
        for room in &status.encryption {
            lines.push(format!("    {} {}", self.room(&room.room), self.dim(&encryption_line(room))));
        }
        lines.push(format!("{} {}", self.dim("outbox   "), status.outbox));
        for problem in &status.problems {
            lines.push(format!("{} {}", self.palette.paint(sgr::TROUBLE, "!!! trouble:"), visible(problem)));
        }
        for addr in &status.listen {
            lines.push(format!("{} {}", self.dim("listening"), visible(addr)));
        }
        lines.join("\n")
    }
}

/// What a room's encryption is, in words.
fn encryption_line(room: &RoomEncryption) -> String {
    if !room.encrypted {
        return "not encrypted".to_string();
    }
    match room.key_holders {
        Some(holders) => format!("encrypted: {holders} of {} members hold your current key", room.members),
        None => "encrypted: your next message here begins a new key".to_string(),
    }
}

/// `HH:MM` of a time in milliseconds since the Unix epoch, in local time or UTC.
pub fn clock(ts_ms: u64, local: bool) -> String {
    let secs = ts_ms / 1000;
    let utc = || format!("{:02}:{:02}", (secs / 3600) % 24, (secs / 60) % 60);
    if !local {
        return utc();
    }
    let Ok(time) = libc::time_t::try_from(secs) else { return utc() };
    // SAFETY: localtime_r reads `time` and writes into the zeroed `tm` we own; it is thread-safe.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&time, &mut tm) }.is_null() {
        return utc();
    }
    format!("{:02}:{:02}", tm.tm_hour, tm.tm_min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{ErrorCode, NotificationKind};

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
        let note = |focused| UiEvent::Notification {
            kind: NotificationKind::Room,
            room: Some("dev".into()),
            from: None,
            focused,
        };
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
        }));
        assert!(text.contains("peers     2"), "{text}");
        assert!(text.contains("#lobby encrypted: 2 of 3 members hold your current key"), "{text}");
        assert!(text.contains("#dev encrypted: your next message here begins a new key"), "{text}");
        assert!(text.contains("!!! trouble: no bootstrap node in reach"), "{text}");
        assert!(text.contains("(not logged in)"));
        assert!(text.contains("/ip4/127.0.0.1/tcp/1"));
    }

    #[test]
    fn utc_clock() {
        assert_eq!(clock((23 * 3600 + 59 * 60 + 59) * 1000, false), "23:59");
        assert_eq!(clock(86_400_000 + 61_000, false), "00:01");
        assert_eq!(clock(0, true).len(), 5);
    }
}
