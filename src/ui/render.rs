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

use super::clock::{clock, date_and_clock};
use super::format;
use super::links::SharedLinks;
use super::sanitize::visible;
use super::style::{Palette, sgr};
use crate::node::{
    BootstrapState, ChatMessage, DirectMessage, OnlineState, PeerPath, PeerState, Reachability, RoomEncryption,
    SearchResult, Status, UiEvent,
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
                PeerState::Direct => format!(
                    "{} {} {}",
                    p.paint(sgr::GOOD, "+++ connected directly to"),
                    visible(peer_id),
                    self.dim("(was through the relay)")
                ),
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
            UiEvent::Search { query, results, more } => self.search(query, results, *more),
            // A notice of several lines (`/help`) keeps its lines; each is made safe on its own.
            UiEvent::Info { message } => {
                message.split('\n').map(|line| self.notice(&visible(line))).collect::<Vec<_>>().join("\n")
            }
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

    /// Search results: each numbered, with where and when, the matched words highlighted.
    fn search(&self, query: &str, results: &[SearchResult], more: bool) -> String {
        let p = &self.palette;
        let first = results.first().map_or(0, |r| r.n);
        let head = match results.last() {
            None => format!("--- nothing found for {} ---", visible(query)),
            Some(last) if first == 1 => format!("--- results 1 to {} for {} ---", last.n, visible(query)),
            Some(last) => format!("--- results {first} to {} for {} ---", last.n, visible(query)),
        };
        let mut out = self.dim(&head);
        let when = |ts| self.dim(&date_and_clock(ts, self.local_time));
        for result in results {
            let (line, text) = match &result.found {
                UiEvent::Message(m) => {
                    let from = self.palette.user(&m.from, &format!("<{}>", visible(&m.from)), self.is_me(&m.from));
                    (format!("{} {} {from}", when(m.ts), self.room(&m.room)), &m.text)
                }
                UiEvent::Dm(m) => {
                    let (open, arrow, close) = (p.paint(sgr::DM, "["), p.paint(sgr::DM, "→"), p.paint(sgr::DM, "]"));
                    let (from, to) = (self.user(&m.from), self.user(&m.to));
                    (format!("{} {open}{from} {arrow} {to}{close}", when(m.ts)), &m.text)
                }
                _ => continue,
            };
            let number = self.dim(&format!("[{}]", result.n));
            out.push_str(&format!("\n{number} {line} {}", self.highlighted(text, &result.matches)));
        }
        let tail = if more {
            "--- /search more shows the next; /history around N shows result N in its place ---"
        } else if results.is_empty() {
            return out;
        } else {
            "--- /history around N shows result N in its place ---"
        };
        out.push('\n');
        out.push_str(&self.dim(tail));
        out
    }

    /// `text` with the character ranges `matches` highlighted.
    fn highlighted(&self, text: &str, matches: &[(usize, usize)]) -> String {
        let mut out = String::new();
        let mut at = 0;
        for &range in matches {
            let (start, end) = crate::search::byte_range(text, range);
            if start < at || end <= start {
                continue;
            }
            out.push_str(&visible(&text[at..start]));
            out.push_str(&self.palette.paint(sgr::MATCH, &visible(&text[start..end])));
            at = end;
        }
        out.push_str(&visible(&text[at..]));
        out
    }

    fn status(&self, status: &Status) -> String {
        let mut lines = vec![format!("{} {}", self.dim("peer id  "), visible(&status.peer_id))];
        let user = status.user.as_deref().map(|u| self.user(u));
        lines.push(format!("{} {}", self.dim("user     "), user.as_deref().unwrap_or("(not logged in)")));
        let bootstrap = status.bootstrap.as_deref().map(visible);
        lines.push(format!("{} {}", self.dim("bootstrap"), bootstrap.as_deref().unwrap_or("(none in reach)")));
        lines.push(format!("{} {}", self.dim("peers    "), status.peers.len()));
        for peer in &status.peers {
            let connection = status.connections.iter().find(|c| &c.peer_id == peer);
            let user = connection.and_then(|c| c.user.as_deref()).map(|u| format!(" {}", self.user(u)));
            let path = match connection.map(|c| c.path) {
                Some(PeerPath::Direct) => " direct".to_string(),
                Some(PeerPath::Relayed) => format!(" {}", self.palette.paint(sgr::TROUBLE, "relayed")),
                None => String::new(),
            };
            lines.push(format!("    {}{}{}", visible(peer), user.unwrap_or_default(), path));
        }
        let reach = match (status.reachability, &status.relay) {
            (Reachability::Unknown, _) => None,
            (Reachability::Public, _) => Some("public: other sites dial this node".to_string()),
            (Reachability::Private, Some(relay)) => Some(format!("private: reached through relay {}", visible(relay))),
            (Reachability::Private, None) => Some("private: no relay reservation yet".to_string()),
        };
        if let Some(reach) = reach {
            lines.push(format!("{} {}", self.dim("reach    "), reach));
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

#[cfg(test)]
mod tests;
