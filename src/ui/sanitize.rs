//! Makes text from peers and users safe to print: nothing in it may drive the terminal.
//!
//! C0 controls (except tab) and DEL become their visible Unicode "control pictures" (ESC shows as
//! `␛`); C1 controls and other format-changing code points that terminals interpret become `�`.

use std::borrow::Cow;

/// Text with every control character made visible.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_replacing) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().map(replacement).collect())
}

fn needs_replacing(c: char) -> bool {
    (c.is_control() && c != '\t') || is_bidi_override(c)
}

fn replacement(c: char) -> char {
    match c {
        '\t' => '\t',
        '\u{7f}' => '\u{2421}',
        c if (c as u32) < 0x20 => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
        c if needs_replacing(c) => '\u{fffd}',
        c => c,
    }
}

/// Bidirectional overrides and isolates can reorder what the user sees.
fn is_bidi_override(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_untouched() {
        assert!(matches!(visible("hello, wörld\t!"), Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_and_controls_become_visible() {
        assert_eq!(visible("a\x1b[31mb"), "a\u{241b}[31mb");
        assert_eq!(visible("nul\0"), "nul\u{2400}");
        assert_eq!(visible("bell\x07"), "bell\u{2407}");
        assert_eq!(visible("del\x7f"), "del\u{2421}");
        assert_eq!(visible("csi\u{9b}2J"), "csi\u{fffd}2J");
        assert_eq!(visible("line\nbreak"), "line\u{240a}break");
        assert_eq!(visible("rtl\u{202e}txt"), "rtl\u{fffd}txt");
    }
}
