//! Links in message text: finding them (with `linkify`), the session's numbered list of the
//! links shown (`[1]`, `[2]`, … for `/open N`), and making a URL safe to put inside an OSC 8
//! hyperlink sequence.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use linkify::{LinkFinder, LinkKind};

/// How many of the latest links `/open` still knows.
pub const KEPT_LINKS: usize = 100;

/// The links shown this session, numbered from 1 and never reused.
#[derive(Debug, Default)]
pub struct LinkBook {
    last: usize,
    links: VecDeque<(usize, String)>,
}

impl LinkBook {
    /// Records `url` and returns its number.
    pub fn add(&mut self, url: &str) -> usize {
        self.last += 1;
        self.links.push_back((self.last, url.to_string()));
        while self.links.len() > KEPT_LINKS {
            self.links.pop_front();
        }
        self.last
    }

    /// Link number `n`, if it is among the latest [`KEPT_LINKS`].
    pub fn get(&self, n: usize) -> Option<&str> {
        self.links.iter().find(|(k, _)| *k == n).map(|(_, url)| url.as_str())
    }

    /// The number the latest link got (0 before any).
    pub fn last(&self) -> usize {
        self.last
    }
}

/// The link book shared by the renderer (which numbers links) and the app (which opens them).
#[derive(Debug, Clone, Default)]
pub struct SharedLinks(Arc<Mutex<LinkBook>>);

impl SharedLinks {
    /// The book, locked. A panic elsewhere while holding the lock does not make it unusable.
    pub fn lock(&self) -> MutexGuard<'_, LinkBook> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Byte ranges of the web links (`http://`, `https://`) in `text`, in order.
pub fn find(text: &str) -> Vec<(usize, usize)> {
    let mut finder = LinkFinder::new();
    finder.kinds(&[LinkKind::Url]);
    finder
        .links(text)
        .filter(|link| {
            let lower = link.as_str().get(..8).unwrap_or(link.as_str()).to_ascii_lowercase();
            lower.starts_with("http://") || lower.starts_with("https://")
        })
        .map(|link| (link.start(), link.end()))
        .collect()
}

/// `url` with every byte outside printable ASCII percent-encoded: the result can never end
/// or extend an escape sequence (no ESC, BEL, C1 controls or spaces), so it is safe as the
/// target of an OSC 8 hyperlink and as an argument for a browser.
pub fn safe_target(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for byte in url.bytes() {
        if (0x21..=0x7e).contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_numbered_for_the_session_and_the_oldest_forgotten() {
        let mut book = LinkBook::default();
        assert_eq!(book.add("https://a.example/"), 1);
        assert_eq!(book.add("https://b.example/"), 2);
        assert_eq!(book.get(1), Some("https://a.example/"));
        assert_eq!(book.get(3), None);
        for i in 0..KEPT_LINKS {
            book.add(&format!("https://x.example/{i}"));
        }
        assert_eq!(book.last(), KEPT_LINKS + 2);
        assert_eq!(book.get(1), None);
        assert_eq!(book.get(2), None);
        assert_eq!(book.get(3), Some("https://x.example/0"));
    }

    #[test]
    fn only_web_links_are_found() {
        let text = "see https://example.com/a_b, mail bob@example.com or ftp://x.example/ and http://y.example";
        let found: Vec<&str> = find(text).into_iter().map(|(s, e)| &text[s..e]).collect();
        assert_eq!(found, vec!["https://example.com/a_b", "http://y.example"]);
    }

    #[test]
    fn targets_cannot_carry_escapes() {
        assert_eq!(safe_target("https://e.com/a?b=c#d"), "https://e.com/a?b=c#d");
        assert_eq!(safe_target("https://e.com/\x1b]8;;x\x07 \u{9b}"), "https://e.com/%1B]8;;x%07%20%C2%9B");
    }
}
