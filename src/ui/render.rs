//! The text renderer: turns a [`UiEvent`] into the coloured line a person reads.
//!
//! Every kind of line has its own look: system notices dim, errors red, connection changes in
//! their own colour. All text that came from outside passes through [`sanitize::visible`].

use colored::Colorize;

use super::event::{BootstrapState, OnlineState, PeerState, Status, UiEvent};
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
        UiEvent::Info { message } => format!("{}", visible(message).bright_black()),
        UiEvent::Error { code, message } => format!(
            "{} {} {}",
            "!!!".red().bold(),
            visible(message).red(),
            format!("[{}]", code.as_str()).bright_black()
        ),
    }
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
            listen: vec!["/ip4/127.0.0.1/tcp/1".into()],
        }));
        assert!(text.contains("peers     2"), "{text}");
        assert!(text.contains("(not logged in)"));
        assert!(text.contains("/ip4/127.0.0.1/tcp/1"));
    }
}
