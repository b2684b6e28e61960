//! Message text as it is shown: `*bold*`, `_italic_`, `~strike~` and `` `code` `` become SGR
//! attributes, web links become numbered OSC 8 hyperlinks.
//!
//! A marker opens only at the start or after whitespace or punctuation, with a non-space
//! character after it, and closes only before the end, whitespace or punctuation, with a
//! non-space character before it; anything else (`snake_case_names`, `2*3*4`, an unbalanced
//! `*`) stays literal. Nothing is formatted inside `code`, nor inside a link. With colour off,
//! the text stays as typed, markers included, and links only get their number.
//!
//! The input must already have passed through [`super::sanitize::visible`].

use super::links::{self, LinkBook};
use super::style::sgr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Bold,
    Italic,
    Strike,
    Code,
}

impl Mark {
    fn of(c: char) -> Option<Mark> {
        match c {
            '*' => Some(Mark::Bold),
            '_' => Some(Mark::Italic),
            '~' => Some(Mark::Strike),
            '`' => Some(Mark::Code),
            _ => None,
        }
    }

    fn sgr(self) -> &'static str {
        match self {
            Mark::Bold => sgr::BOLD,
            Mark::Italic => sgr::ITALIC,
            Mark::Strike => sgr::STRIKE,
            Mark::Code => sgr::CODE,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Node {
    Text(String),
    Link(String),
    Styled(Mark, Vec<Node>),
}

/// `text` with its formatting and links rendered; every link is recorded in `book`.
pub fn format_text(text: &str, color: bool, book: &mut LinkBook) -> String {
    let chars: Vec<char> = text.chars().collect();
    let links = link_ranges(text);
    let mut out = String::with_capacity(text.len() + 16);
    if !color {
        let mut at = 0;
        for (start, end) in links {
            out.extend(&chars[at..start]);
            let url: String = chars[start..end].iter().collect();
            let n = book.add(&links::safe_target(&url));
            out.push_str(&format!("{url} [{n}]"));
            at = end;
        }
        out.extend(&chars[at..]);
        return out;
    }
    let parser = Parser { chars: &chars, links: &links };
    let nodes = parser.parse(0, chars.len(), &[]);
    let mut active = Vec::new();
    emit(&nodes, &mut active, book, &mut out);
    out
}

/// Link ranges in `char` indices.
fn link_ranges(text: &str) -> Vec<(usize, usize)> {
    let found = links::find(text);
    if found.is_empty() {
        return found;
    }
    let index_of = |byte: usize| text[..byte].chars().count();
    found.into_iter().map(|(s, e)| (index_of(s), index_of(e))).collect()
}

fn is_boundary(c: Option<&char>) -> bool {
    match c {
        None => true,
        Some(c) => c.is_whitespace() || c.is_ascii_punctuation() || matches!(c, '«' | '»' | '“' | '”' | '‘' | '’'),
    }
}

struct Parser<'a> {
    chars: &'a [char],
    links: &'a [(usize, usize)],
}

impl Parser<'_> {
    fn in_link(&self, i: usize) -> bool {
        self.links.iter().any(|(s, e)| (*s..*e).contains(&i))
    }

    fn link_at(&self, i: usize) -> Option<usize> {
        self.links.iter().find(|(s, _)| *s == i).map(|(_, e)| *e)
    }

    fn can_open(&self, i: usize, hi: usize) -> bool {
        let prev = i.checked_sub(1).and_then(|p| self.chars.get(p));
        i + 1 < hi && !self.chars[i + 1].is_whitespace() && is_boundary(prev) && !self.in_link(i)
    }

    /// The closing marker for an opener at `i`, before `hi`.
    fn close(&self, i: usize, hi: usize) -> Option<usize> {
        let c = self.chars[i];
        (i + 2..hi).find(|&j| {
            self.chars[j] == c
                && !self.chars[j - 1].is_whitespace()
                && is_boundary(self.chars.get(j + 1))
                && !self.in_link(j)
                && !self.links.iter().any(|(s, e)| *s > i && *s < j && *e > j)
        })
    }

    fn parse(&self, lo: usize, hi: usize, active: &[Mark]) -> Vec<Node> {
        let mut nodes = Vec::new();
        let mut text = String::new();
        let mut i = lo;
        while i < hi {
            if let Some(end) = self.link_at(i).filter(|e| *e <= hi) {
                flush(&mut text, &mut nodes);
                nodes.push(Node::Link(self.chars[i..end].iter().collect()));
                i = end;
                continue;
            }
            let c = self.chars[i];
            if let Some(mark) = Mark::of(c).filter(|m| !active.contains(m))
                && self.can_open(i, hi)
                && let Some(j) = self.close(i, hi)
            {
                flush(&mut text, &mut nodes);
                let inner = if mark == Mark::Code {
                    vec![Node::Text(self.chars[i + 1..j].iter().collect())]
                } else {
                    let mut nested = active.to_vec();
                    nested.push(mark);
                    self.parse(i + 1, j, &nested)
                };
                nodes.push(Node::Styled(mark, inner));
                i = j + 1;
                continue;
            }
            text.push(c);
            i += 1;
        }
        flush(&mut text, &mut nodes);
        nodes
    }
}

fn flush(text: &mut String, nodes: &mut Vec<Node>) {
    if !text.is_empty() {
        nodes.push(Node::Text(std::mem::take(text)));
    }
}

/// Resets every attribute, then turns the still-active ones back on.
fn restore(active: &[&str], out: &mut String) {
    out.push_str("\x1b[0m");
    if !active.is_empty() {
        out.push_str(&format!("\x1b[{}m", active.join(";")));
    }
}

fn emit(nodes: &[Node], active: &mut Vec<&'static str>, book: &mut LinkBook, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Link(url) => {
                let target = links::safe_target(url);
                let n = book.add(&target);
                out.push_str(&format!("\x1b]8;;{target}\x1b\\\x1b[{}m{url}\x1b[24m\x1b]8;;\x1b\\", sgr::UNDERLINE));
                out.push_str(&format!(" \x1b[{}m[{n}]", sgr::DIM));
                restore(active, out);
            }
            Node::Styled(mark, inner) => {
                out.push_str(&format!("\x1b[{}m", mark.sgr()));
                active.push(mark.sgr());
                emit(inner, active, book, out);
                active.pop();
                restore(active, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(text: &str) -> String {
        format_text(text, true, &mut LinkBook::default())
    }

    fn off(text: &str) -> String {
        format_text(text, false, &mut LinkBook::default())
    }

    #[test]
    fn markers_become_attributes_and_are_reset() {
        assert_eq!(on("a *b* c"), "a \x1b[1mb\x1b[0m c");
        assert_eq!(on("_it_"), "\x1b[3mit\x1b[0m");
        assert_eq!(on("~gone~!"), "\x1b[9mgone\x1b[0m!");
        assert_eq!(on("run `ls -l`."), "run \x1b[7mls -l\x1b[0m.");
    }

    #[test]
    fn nested_markers_restore_the_outer_one() {
        assert_eq!(on("*bold _both_ bold*"), "\x1b[1mbold \x1b[3mboth\x1b[0m\x1b[1m bold\x1b[0m");
    }

    #[test]
    fn nothing_is_formatted_inside_code() {
        assert_eq!(on("`*not bold* _x_`"), "\x1b[7m*not bold* _x_\x1b[0m");
    }

    #[test]
    fn markers_inside_words_and_unbalanced_ones_stay_literal() {
        for text in [
            "snake_case_names",
            "2*3*4",
            "a * b * c",
            "*unbalanced",
            "half_way",
            "~ spaced ~",
            "` `",
            "**",
            "x_y_ z",
            "under_score and _ alone",
        ] {
            assert_eq!(on(text), text, "{text:?}");
        }
        assert_eq!(on("_snake_case_"), "\x1b[3msnake_case\x1b[0m");
    }

    #[test]
    fn links_become_numbered_hyperlinks() {
        let mut book = LinkBook::default();
        let text = format_text("see https://example.com/a_b_c now", true, &mut book);
        assert_eq!(
            text,
            "see \x1b]8;;https://example.com/a_b_c\x1b\\\x1b[4mhttps://example.com/a_b_c\x1b[24m\x1b]8;;\x1b\\ \x1b[2m[1]\x1b[0m now"
        );
        let text = format_text("*https://e.com* and http://f.com", true, &mut book);
        assert!(text.starts_with("\x1b[1m\x1b]8;;https://e.com\x1b\\"), "{text:?}");
        assert!(text.contains("\x1b[2m[2]\x1b[0m\x1b[1m\x1b[0m and "), "{text:?}");
        assert!(text.ends_with("\x1b[2m[3]\x1b[0m"), "{text:?}");
        assert_eq!(book.get(3), Some("http://f.com"));
    }

    #[test]
    fn without_color_the_text_stays_as_typed() {
        assert_eq!(off("*b* _i_ `c` ~s~"), "*b* _i_ `c` ~s~");
        assert_eq!(off("go to https://example.com/x."), "go to https://example.com/x [1].");
    }

    /// The text with our own SGR and OSC 8 sequences taken out.
    fn strip_ours(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('\x1b') {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            if let Some(osc) = rest.strip_prefix("\x1b]8;;") {
                let end = osc.find("\x1b\\").expect("hyperlinks are terminated");
                rest = &osc[end + 2..];
            } else {
                let end = rest.find('m').expect("SGR sequences end with m");
                assert!(rest[2..end].bytes().all(|b| b.is_ascii_digit() || b == b';'), "{rest:?}");
                rest = &rest[end + 1..];
            }
        }
        out.push_str(rest);
        out
    }

    proptest::proptest! {
        #[test]
        fn any_text_renders_without_panics_or_foreign_escapes(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "*", "_", "~", "`", " ", "a", "b_c", "2*3", ".", ",", "é", "\x1b", "\x07", "[", "\n",
                    "https://e.com/x_y", "http://f.org", "(", ")",
                ]),
                0..40,
            )
        ) {
            let raw: String = parts.concat();
            let safe = crate::ui::sanitize::visible(&raw);
            let mut book = LinkBook::default();
            let colored = format_text(&safe, true, &mut book);
            let visible_text = strip_ours(&colored);
            proptest::prop_assert!(!visible_text.chars().any(|c| c.is_control()), "{:?}", colored);
            let mut plain_book = LinkBook::default();
            let plain = format_text(&safe, false, &mut plain_book);
            proptest::prop_assert!(!plain.chars().any(|c| c.is_control()), "{:?}", plain);
            if plain_book.last() == 0 {
                proptest::prop_assert_eq!(plain, safe.to_string());
            }
        }
    }

    #[test]
    fn a_link_with_an_escape_inside_is_never_emitted_raw() {
        let safe = crate::ui::sanitize::visible("https://e.com/a\x1b]8;;https://evil\x07b");
        let mut book = LinkBook::default();
        let text = format_text(&safe, true, &mut book);
        assert!(!text.contains('\x07'));
        let escapes: Vec<&str> = text.match_indices('\x1b').map(|(i, _)| &text[i..(i + 4).min(text.len())]).collect();
        assert!(escapes.iter().all(|e| e.starts_with("\x1b]8;") || e.starts_with("\x1b[") || e.starts_with("\x1b\\")));
        let url = book.get(1).unwrap_or_default().to_string();
        assert!(url.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{url:?}");
    }
}
