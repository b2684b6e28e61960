//! What the REPL's input side knows from the events the output side sees: where plain text
//! goes (the focus), unread counts of the rooms and conversations elsewhere, and the usernames
//! and room names seen so far (for tab completion). [`PromptState`] is shared between the
//! output thread, which updates it, and the editor thread, which reads it when a line starts.
//!
//! The focus and whether a message counts as unread are the node's decisions
//! (`node/attention.rs`), taken from its `focus`, `unfocused` and `notification` events as
//! they come; nothing here works them out again. Nothing here waits for anything.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use super::style::Palette;
use crate::node::{BootstrapState, NotificationKind, PeerState, UiEvent};

/// The prompt when nothing is focused and nothing is unread.
pub const BARE_PROMPT: &str = "> ";

/// Focus, unread counts and known names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Known {
    /// The logged-in username.
    pub me: Option<String>,
    /// `#room` or `@user`: where plain text goes.
    pub focus: Option<String>,
    /// Unread messages per `#room` / `@user`, in the order they first arrived.
    pub unread: Vec<(String, usize)>,
    /// Usernames seen (online or not).
    pub users: BTreeSet<String>,
    /// Room names seen, without `#`.
    pub rooms: BTreeSet<String>,
    /// Bootstrap nodes in reach whose key is not confirmed: (peer id, key in hex).
    pub unconfirmed: Vec<(String, String)>,
    /// Whether a bootstrap key is trusted (one was found or confirmed).
    pub bootstrap_trusted: bool,
}

impl Known {
    /// Learns from one event.
    pub fn observe(&mut self, event: &UiEvent) {
        match event {
            UiEvent::LoggedIn { user, .. } => {
                self.me = Some(user.clone());
                self.users.insert(user.clone());
            }
            UiEvent::LoggedOut { .. } => {
                self.me = None;
                self.unread.clear();
            }
            UiEvent::Registered { user } => {
                self.users.insert(user.clone());
            }
            UiEvent::Renamed { old, new } => {
                self.users.remove(old);
                self.users.insert(new.clone());
                if self.me.as_deref() == Some(old) {
                    self.me = Some(new.clone());
                }
                // The focus, if it is this user, comes again from the node by the new name.
                let (old_target, new_target) = (format!("@{old}"), format!("@{new}"));
                for (target, _) in &mut self.unread {
                    if *target == old_target {
                        *target = new_target.clone();
                    }
                }
            }
            UiEvent::Nick { user, .. } | UiEvent::Presence { user, .. } => {
                self.users.insert(user.clone());
            }
            UiEvent::Bootstrap { peer_id, state, key } => self.observe_bootstrap(peer_id.as_deref(), *state, key),
            UiEvent::Peer { peer_id, state: PeerState::Disconnected } => {
                self.unconfirmed.retain(|(peer, _)| peer != peer_id);
            }
            UiEvent::Online { users } => self.users.extend(users.iter().map(|u| u.user.clone())),
            UiEvent::Rooms { rooms } => self.rooms.extend(rooms.iter().map(|r| r.room.clone())),
            UiEvent::RoomCreated { room, user } | UiEvent::Joined { room, user } => {
                self.rooms.insert(room.clone());
                self.users.insert(user.clone());
            }
            UiEvent::Members { room, members, .. } => {
                self.rooms.insert(room.clone());
                self.users.extend(members.iter().map(|m| m.user.clone()));
            }
            UiEvent::Message(m) => {
                self.rooms.insert(m.room.clone());
                self.users.insert(m.from.clone());
            }
            UiEvent::Dm(m) => {
                self.users.insert(m.from.clone());
                self.users.insert(m.to.clone());
            }
            UiEvent::Focus { target } => {
                if let Some(room) = target.strip_prefix('#') {
                    self.rooms.insert(room.to_string());
                }
                self.unread.retain(|(t, _)| t != target);
                self.focus = Some(target.clone());
            }
            UiEvent::Unfocused => self.focus = None,
            UiEvent::Notification { kind, room, from, focused } => {
                let target = match (kind, room, from) {
                    (NotificationKind::Room, Some(room), _) => format!("#{room}"),
                    (NotificationKind::Dm, _, Some(from)) => format!("@{from}"),
                    _ => return,
                };
                if *focused {
                    return;
                }
                match self.unread.iter_mut().find(|(t, _)| *t == target) {
                    Some((_, count)) => *count += 1,
                    None => self.unread.push((target, 1)),
                }
            }
            _ => {}
        }
    }

    fn observe_bootstrap(&mut self, peer_id: Option<&str>, state: BootstrapState, key: &Option<String>) {
        match (state, peer_id, key) {
            (BootstrapState::Unconfirmed, Some(peer), Some(key))
                if !self.bootstrap_trusted && !self.unconfirmed.iter().any(|(p, _)| p == peer) =>
            {
                self.unconfirmed.push((peer.to_string(), key.clone()));
            }
            (BootstrapState::Found | BootstrapState::Trusted, _, _) => {
                self.bootstrap_trusted = true;
                self.unconfirmed.clear();
            }
            _ => {}
        }
    }

    /// The unconfirmed bootstrap keys to ask about before a password is typed: none once a key
    /// is trusted. Each key once, with the first peer that has it.
    pub fn keys_to_confirm(&self) -> Vec<(String, String)> {
        if self.bootstrap_trusted {
            return Vec::new();
        }
        let mut keys: Vec<(String, String)> = Vec::new();
        for (peer, key) in &self.unconfirmed {
            if !keys.iter().any(|(_, k)| k == key) {
                keys.push((peer.clone(), key.clone()));
            }
        }
        keys
    }

    /// The prompt's parts: the focus, and the unread summary.
    fn parts(&self) -> (Option<String>, Option<String>) {
        let total: usize = self.unread.iter().map(|(_, n)| n).sum();
        let unread = (total > 0).then(|| {
            let targets: Vec<&str> = self.unread.iter().map(|(t, _)| t.as_str()).collect();
            format!("{total} unread {}", targets.join(" "))
        });
        (self.focus.clone(), unread)
    }

    /// The prompt, e.g. `[#lobby · 3 unread @bob]> `.
    pub fn prompt(&self) -> String {
        self.prompt_with(&Palette::new(false))
    }

    /// The prompt, styled with `palette` (the same width as [`Self::prompt`]).
    pub fn prompt_with(&self, palette: &Palette) -> String {
        let (focus, unread) = self.parts();
        let mut parts = Vec::new();
        if let Some(focus) = focus {
            parts.push(palette.paint(super::style::sgr::BOLD, &super::sanitize::visible(&focus)));
        }
        if let Some(unread) = unread {
            parts.push(palette.paint(super::style::sgr::NOTIFY, &super::sanitize::visible(&unread)));
        }
        if parts.is_empty() { BARE_PROMPT.to_string() } else { format!("[{}]{BARE_PROMPT}", parts.join(" · ")) }
    }
}

/// [`Known`], shared between threads.
#[derive(Debug, Clone, Default)]
pub struct PromptState(Arc<Mutex<Known>>);

impl PromptState {
    /// The known state, locked (a panic elsewhere while holding it does not make it unusable).
    pub fn known(&self) -> MutexGuard<'_, Known> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Learns from one event.
    pub fn observe(&self, event: &UiEvent) {
        self.known().observe(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{ChatMessage, MemberView, OnlineState, RoomEncryption};

    fn note(room: Option<&str>, from: Option<&str>, focused: bool) -> UiEvent {
        UiEvent::Notification {
            kind: if room.is_some() { NotificationKind::Room } else { NotificationKind::Dm },
            room: room.map(str::to_string),
            from: from.map(str::to_string),
            focused,
        }
    }

    #[test]
    fn what_counts_as_unread_is_the_nodes_decision() {
        let mut k = Known::default();
        k.observe(&UiEvent::Focus { target: "#lobby".into() });
        k.observe(&note(Some("dev"), None, true));
        assert_eq!(k.prompt(), "[#lobby]> ", "a message the node calls focused is never unread");
        k.observe(&UiEvent::Unfocused);
        k.observe(&note(Some("lobby"), None, false));
        assert_eq!(k.prompt(), "[1 unread #lobby]> ");
    }

    #[test]
    fn the_prompt_shows_focus_and_unread_counts() {
        let mut k = Known::default();
        assert_eq!(k.prompt(), "> ");
        k.observe(&UiEvent::Focus { target: "#lobby".into() });
        assert_eq!(k.prompt(), "[#lobby]> ");
        k.observe(&note(Some("lobby"), None, true));
        assert_eq!(k.prompt(), "[#lobby]> ");
        k.observe(&note(None, Some("bob"), false));
        k.observe(&note(None, Some("bob"), false));
        k.observe(&note(Some("dev"), None, false));
        assert_eq!(k.prompt(), "[#lobby · 3 unread @bob #dev]> ");
        k.observe(&UiEvent::Focus { target: "@bob".into() });
        assert_eq!(k.prompt(), "[@bob · 1 unread #dev]> ");
        assert_eq!(k.prompt_with(&Palette::new(true)), "[\x1b[1m@bob\x1b[0m · \x1b[1;35m1 unread #dev\x1b[0m]> ");
        k.observe(&UiEvent::LoggedOut { user: "alice".into() });
        assert_eq!(k.prompt(), "[@bob]> ", "the node says when the focus ends");
        k.observe(&UiEvent::Unfocused);
        assert_eq!(k.prompt(), "> ");
    }

    #[test]
    fn names_are_learned_from_events() {
        let mut k = Known::default();
        k.observe(&UiEvent::LoggedIn { user: "alice".into(), nick: "A".into(), resumed: false });
        k.observe(&UiEvent::Presence { user: "bob".into(), nick: "B".into(), state: OnlineState::Online });
        k.observe(&UiEvent::Joined { room: "lobby".into(), user: "carol".into() });
        k.observe(&UiEvent::Members {
            room: "dev".into(),
            members: vec![MemberView { user: "dave".into(), admin: true }],
            encryption: RoomEncryption { room: "dev".into(), encrypted: true, members: 1, key_holders: None },
        });
        k.observe(&UiEvent::Message(ChatMessage {
            room: "ops".into(),
            from: "erin".into(),
            nick: "E".into(),
            text: "x".into(),
            id: "i".into(),
            ts: 0,
            unreadable: false,
        }));
        k.observe(&UiEvent::Renamed { old: "bob".into(), new: "robert".into() });
        let users: Vec<&str> = k.users.iter().map(String::as_str).collect();
        assert_eq!(users, ["alice", "carol", "dave", "erin", "robert"]);
        let rooms: Vec<&str> = k.rooms.iter().map(String::as_str).collect();
        assert_eq!(rooms, ["dev", "lobby", "ops"]);
        assert_eq!(k.me.as_deref(), Some("alice"));
    }

    #[test]
    fn unconfirmed_bootstrap_keys_are_asked_about_until_one_is_trusted() {
        let mut k = Known::default();
        let unconfirmed = |peer: &str, key: &str| UiEvent::Bootstrap {
            peer_id: Some(peer.into()),
            state: BootstrapState::Unconfirmed,
            key: Some(key.into()),
        };
        k.observe(&unconfirmed("p1", "aa"));
        k.observe(&unconfirmed("p2", "bb"));
        k.observe(&unconfirmed("p3", "aa"));
        assert_eq!(k.keys_to_confirm(), [("p1".to_string(), "aa".to_string()), ("p2".into(), "bb".into())]);
        k.observe(&UiEvent::Peer { peer_id: "p2".into(), state: PeerState::Disconnected });
        assert_eq!(k.keys_to_confirm(), [("p1".to_string(), "aa".to_string())]);
        k.observe(&UiEvent::Bootstrap { peer_id: None, state: BootstrapState::Trusted, key: Some("aa".into()) });
        assert!(k.keys_to_confirm().is_empty());
        k.observe(&unconfirmed("p4", "cc"));
        assert!(k.keys_to_confirm().is_empty(), "a trusted key is never asked about again");
    }

    #[test]
    fn hostile_names_cannot_style_the_prompt() {
        let mut k = Known::default();
        k.observe(&UiEvent::Focus { target: "#a\x1b[2Jb".into() });
        assert_eq!(k.prompt(), "[#a\u{241b}[2Jb]> ");
    }
}
