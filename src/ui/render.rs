//! The text renderer: turns a [`UiEvent`] into the coloured line a person reads.
//!
//! Every kind of line has its own look: system notices dim, errors red, connection changes in
//! their own colour. All text that came from outside passes through [`sanitize::visible`].

use colored::Colorize;

use super::event::{BootstrapState, ChatMessage, DirectMessage, OnlineState, PeerState, Status, UiEvent};
use super::sanitize::visible;

/// The text for one event (may span several lines; no trailing newline).
pub fn render(event: &UiEvent) -> String {
    match event {
        UiEvent::Ready { peer_id, listen, authority_key } => {
            let mut out = format!("{} {}", "*** meshchat ready, peer id".bright_black(), visible(peer_id).bold());
            for addr in listen {
                out.push_str(&format!("\n{} {}", "    listening on".bright_black(), visible(addr)));
            }
            if let Some(key) = authority_key {
                out.push_str(&format!("\n{} {}", "    bootstrap authority key".bright_black(), visible(key)));
            }
            out.push_str(&format!("\n{}", "    type /help for the commands".bright_black()));
            out
        }
        UiEvent::Bootstrap { peer_id, state } => match state {
            BootstrapState::Found => format!("{} {}", "+++ bootstrap node in reach:".green(), visible(peer_id)),
            BootstrapState::Lost => format!("{} {}", "--- bootstrap node lost:".yellow(), visible(peer_id)),
        },
        UiEvent::Registered { user } => format!("{} {}", "*** registered".cyan(), visible(user).bold()),
        UiEvent::LoggedIn { user, nick, resumed } => format!(
            "{} {} ({}){}",
            "*** logged in as".cyan(),
            visible(user).bold(),
            visible(nick),
            if *resumed { ", session resumed" } else { "" }
        ),
        UiEvent::LoggedOut { user } => format!("{} {}", "*** logged out:".cyan(), visible(user)),
        UiEvent::Renamed { old, new } => {
            format!("{} {} {} {}", "***".cyan(), visible(old), "is now".cyan(), visible(new).bold())
        }
        UiEvent::Nick { user, nick } => {
            format!("{} {} {} '{}'", "***".cyan(), visible(user).bold(), "is now known as".cyan(), visible(nick))
        }
        UiEvent::Presence { user, nick, state } => match state {
            OnlineState::Online => format!(
                "{} (({})) AKA '{}' {}",
                "-->".green(),
                visible(user).bold(),
                visible(nick),
                "is online".green()
            ),
            OnlineState::Offline => {
                format!("{} (({})) AKA '{}' {}", "<--".yellow(), visible(user), visible(nick), "went offline".yellow())
            }
        },
        UiEvent::Online { users } => {
            if users.is_empty() {
                return format!("{}", "nobody is online".bright_black());
            }
            let mut out = format!("{}", format!("{} online:", users.len()).bright_black());
            for u in users {
                out.push_str(&format!("\n  (({})) AKA '{}'", visible(&u.user).bold(), visible(&u.nick)));
            }
            out
        }
        UiEvent::Peer { peer_id, state } => match state {
            PeerState::Connected => format!("{} {}", "+++ connected to".green(), visible(peer_id)),
            PeerState::Disconnected => {
                format!("{} {}", "--- disconnected from".yellow(), visible(peer_id))
            }
        },
        UiEvent::Status(status) => render_status(status),
        UiEvent::Rooms { rooms } => {
            if rooms.is_empty() {
                return format!("{}", "no rooms yet: /create one".bright_black());
            }
            let mut out = format!("{}", format!("{} rooms:", rooms.len()).bright_black());
            for r in rooms {
                out.push_str(&format!("\n  #{} ({} members)", visible(&r.room).bold(), r.members));
            }
            out
        }
        UiEvent::RoomCreated { room, user } => {
            format!("{} {} {} #{}", "***".cyan(), visible(user).bold(), "created".cyan(), visible(room))
        }
        UiEvent::Joined { room, user } => {
            format!("{} {} {} #{}", "-->".green(), visible(user).bold(), "joined".green(), visible(room))
        }
        UiEvent::Left { room, user } => {
            format!("{} {} {} #{}", "<--".yellow(), visible(user), "left".yellow(), visible(room))
        }
        UiEvent::Kicked { room, user, by } => format!(
            "{} {} {} #{} {} {}",
            "<--".red(),
            visible(user).bold(),
            "was kicked from".red(),
            visible(room),
            "by".red(),
            visible(by)
        ),
        UiEvent::Banned { room, user, by } => format!(
            "{} {} {} #{} {} {}",
            "<--".red(),
            visible(user).bold(),
            "was banned from".red(),
            visible(room),
            "by".red(),
            visible(by)
        ),
        UiEvent::Admin { room, user, by } => match by {
            Some(by) => format!(
                "{} {} {} #{} ({} {})",
                "***".cyan(),
                visible(user).bold(),
                "is now admin of".cyan(),
                visible(room),
                "by".cyan(),
                visible(by)
            ),
            None => format!(
                "{} {} {} #{} {}",
                "***".cyan(),
                visible(user).bold(),
                "is now admin of".cyan(),
                visible(room),
                "(the oldest member)".bright_black()
            ),
        },
        UiEvent::Members { room, members } => {
            let list: Vec<String> = members
                .iter()
                .map(|m| if m.admin { format!("@{}", visible(&m.user)) } else { visible(&m.user).into_owned() })
                .collect();
            format!("{} #{}: {}", "members of".bright_black(), visible(room), list.join(" "))
        }
        UiEvent::Message(message) => render_message(message),
        UiEvent::Dm(dm) => render_dm(dm),
        UiEvent::Delivered { to, .. } => format!("{} {}", "*** delivered to".bright_black(), visible(to)),
        UiEvent::Notification { room, from, focused, .. } => {
            if *focused {
                return String::new();
            }
            let place = match (room, from) {
                (Some(room), _) => format!("#{}", visible(room)),
                (None, Some(from)) => format!("@{}", visible(from)),
                (None, None) => String::new(),
            };
            format!("{} {}\x07", "(!) new message in".magenta(), place.magenta().bold())
        }
        UiEvent::Muted { target } => format!("{} {}", "*** muted".bright_black(), visible(target)),
        UiEvent::Unmuted { target } => format!("{} {}", "*** unmuted".bright_black(), visible(target)),
        UiEvent::Focus { target } => format!("{} {}", "*** now talking in".bright_black(), visible(target).bold()),
        UiEvent::History { target, messages } => {
            let mut out = format!("{}", format!("--- history of {} ---", visible(target)).bright_black());
            for m in messages {
                match m {
                    UiEvent::Message(m) => {
                        out.push('\n');
                        out.push_str(&render_message(m));
                    }
                    UiEvent::Dm(m) => {
                        out.push('\n');
                        out.push_str(&render_dm(m));
                    }
                    _ => {}
                }
            }
            out.push_str(&format!("\n{}", "--- end of history ---".bright_black()));
            out
        }
        UiEvent::Info { message } => format!("{}", visible(message).bright_black()),
        UiEvent::Error { code, message } => format!(
            "{} {} {}",
            "!!!".red().bold(),
            visible(message).red(),
            format!("[{}]", code.as_str()).bright_black()
        ),
    }
}

fn clock(ts_ms: u64) -> String {
    let secs = ts_ms / 1000;
    format!("{:02}:{:02}", (secs / 3600) % 24, (secs / 60) % 60)
}

fn render_message(m: &ChatMessage) -> String {
    format!(
        "{} {} <{}> {}",
        clock(m.ts).bright_black(),
        format!("#{}", visible(&m.room)).blue(),
        visible(&m.nick).bold(),
        visible(&m.text)
    )
}

fn render_dm(m: &DirectMessage) -> String {
    format!(
        "{} {} {}",
        clock(m.ts).bright_black(),
        format!("[{} -> {}]", visible(&m.from), visible(&m.to)).magenta(),
        visible(&m.text)
    )
}

fn render_status(status: &Status) -> String {
    let mut lines = vec![format!("{} {}", "peer id  ".bright_black(), visible(&status.peer_id))];
    let user = status.user.as_deref().map(visible);
    lines.push(format!("{} {}", "user     ".bright_black(), user.as_deref().unwrap_or("(not logged in)")));
    let bootstrap = status.bootstrap.as_deref().map(visible);
    lines.push(format!("{} {}", "bootstrap".bright_black(), bootstrap.as_deref().unwrap_or("(none in reach)")));
    lines.push(format!("{} {}", "peers    ".bright_black(), status.peers.len()));
    for peer in &status.peers {
        lines.push(format!("    {}", visible(peer)));
    }
    let rooms = if status.rooms.is_empty() {
        "(none)".to_string()
    } else {
        status.rooms.iter().map(|r| format!("#{}", visible(r))).collect::<Vec<_>>().join(" ")
    };
    lines.push(format!("{} {}", "rooms    ".bright_black(), rooms));
    lines.push(format!("{} {}", "outbox   ".bright_black(), status.outbox));
    for addr in &status.listen {
        lines.push(format!("{} {}", "listening".bright_black(), visible(addr)));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::event::ErrorCode;

    fn plain(event: &UiEvent) -> String {
        colored::control::set_override(false);
        render(event)
    }

    #[test]
    fn errors_show_message_and_code() {
        let text = plain(&UiEvent::error(ErrorCode::Usage, "usage: /login NAME: missing NAME"));
        assert_eq!(text, "!!! usage: /login NAME: missing NAME [usage]");
    }

    #[test]
    fn escapes_from_outside_are_made_visible() {
        let text = plain(&UiEvent::info("evil\x1b]0;title\x07"));
        assert!(!text.contains('\x1b'));
        assert!(text.contains('\u{241b}'));
    }

    #[test]
    fn status_lists_peers_and_rooms() {
        let text = plain(&UiEvent::Status(Status {
            peer_id: "me".into(),
            user: None,
            peers: vec!["p1".into(), "p2".into()],
            bootstrap: None,
            rooms: vec![],
            outbox: 3,
            listen: vec!["/ip4/127.0.0.1/tcp/1".into()],
        }));
        assert!(text.contains("peers     2"), "{text}");
        assert!(text.contains("(not logged in)"));
        assert!(text.contains("/ip4/127.0.0.1/tcp/1"));
    }
}
