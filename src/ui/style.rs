//! The terminal's look: the SGR codes of every kind of line, and the stable colour of each
//! username. Whether colour is on at all (`--color`, `NO_COLOR`, whether stdout is a terminal)
//! is decided before, by [`crate::config::ColorChoice`]; a [`Palette`] only carries the answer.
//!
//! Styling is explicit state ([`Palette`]) rather than a process-wide switch, so two renderers
//! (and parallel tests) never disagree about whether colour is on.

/// SGR parameters of each kind of text.
pub mod sgr {
    /// Time stamps, system notices, the link numbers.
    pub const DIM: &str = "2";
    pub const BOLD: &str = "1";
    pub const ITALIC: &str = "3";
    pub const UNDERLINE: &str = "4";
    pub const STRIKE: &str = "9";
    /// `code` spans: reverse video reads well on dark and light backgrounds.
    pub const CODE: &str = "7";
    /// Errors.
    pub const ERROR: &str = "1;31";
    /// Notifications of messages elsewhere.
    pub const NOTIFY: &str = "1;35";
    /// Direct-message brackets.
    pub const DM: &str = "35";
    /// Room names.
    pub const ROOM: &str = "34";
    /// Connection trouble (peer/bootstrap lost).
    pub const TROUBLE: &str = "33";
    /// Connection restored (peer/bootstrap found).
    pub const GOOD: &str = "32";
    /// Account and room notices.
    pub const NOTICE: &str = "36";
    /// Removals (kick, ban).
    pub const REMOVAL: &str = "31";
    /// Words a search matched: black on yellow, on any background.
    pub const MATCH: &str = "30;43";
}

/// Colours a username may get: readable on dark and light backgrounds (no black, white or grey).
const USER_COLORS: &[&str] = &["31", "32", "33", "34", "35", "36", "91", "92", "94", "95", "96"];

/// The SGR colour of `user`: the same on every machine and in every session.
pub fn user_color(user: &str) -> &'static str {
    // FNV-1a over the lower-cased name: stable, unlike std's randomly seeded hasher.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in user.bytes().map(|b| b.to_ascii_lowercase()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    USER_COLORS[hash as usize % USER_COLORS.len()]
}

/// Applies SGR styles when colour is on, and nothing when it is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    color: bool,
}

impl Palette {
    /// A palette that colours when `color` is true.
    pub fn new(color: bool) -> Self {
        Palette { color }
    }

    /// Whether colour (and with it formatting and hyperlinks) is on.
    pub fn color(&self) -> bool {
        self.color
    }

    /// `text` wrapped in the SGR `params` and a reset.
    pub fn paint(&self, params: &str, text: &str) -> String {
        if self.color && !text.is_empty() { format!("\x1b[{params}m{text}\x1b[0m") } else { text.to_string() }
    }

    /// `user` in its own colour, bold if `bold`.
    pub fn user(&self, user_for_color: &str, shown: &str, bold: bool) -> String {
        let color = user_color(user_for_color);
        if bold { self.paint(&format!("1;{color}"), shown) } else { self.paint(color, shown) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_colors_are_stable_and_spread() {
        assert_eq!(user_color("alice"), user_color("alice"));
        assert_eq!(user_color("Alice"), user_color("alice"));
        let names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];
        let distinct: std::collections::HashSet<_> = names.iter().map(|n| user_color(n)).collect();
        assert!(distinct.len() >= 4, "{distinct:?}");
        for color in USER_COLORS {
            assert!(!["30", "37", "90", "97"].contains(color));
        }
    }

    #[test]
    fn painting_is_a_no_op_without_color() {
        assert_eq!(Palette::new(false).paint("1", "x"), "x");
        assert_eq!(Palette::new(true).paint("1", "x"), "\x1b[1mx\x1b[0m");
        assert_eq!(Palette::new(true).paint("1", ""), "");
    }
}
