//! The `--json` renderer: one JSON object per line for every [`UiEvent`] that DESIGN.md lists.
//!
//! serde_json escapes every control character, so nothing a peer sends can reach the terminal
//! raw through this path.

use crate::node::UiEvent;

/// The event as one line of JSON, without the newline; none for an event that is the
/// terminal's only ([`UiEvent::Unfocused`]: DESIGN.md lists no such line).
pub fn line(event: &UiEvent) -> Option<String> {
    if matches!(event, UiEvent::Unfocused) {
        return None;
    }
    // Serialising these plain types cannot fail; fall back to an error event all the same.
    Some(
        serde_json::to_string(event).unwrap_or_else(|e| {
            format!(r#"{{"type":"error","code":"internal","message":"cannot encode event: {e}"}}"#)
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let line = line(&UiEvent::info("a\x1b[2Jb\0")).unwrap();
        assert_eq!(line, r#"{"type":"info","message":"a\u001b[2Jb\u0000"}"#);
        assert!(!line.contains('\n'));
    }

    #[test]
    fn an_ended_focus_is_no_line() {
        assert_eq!(line(&UiEvent::Unfocused), None);
        assert!(line(&UiEvent::Focus { target: "#lobby".into() }).is_some());
    }
}
