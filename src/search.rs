//! The search grammar: what a user types after `/search`, read into a [`SearchQuery`] (words,
//! prefixes, phrases, `from:NAME`, and `#ROOM` or `@USER` for where), and that query written as
//! a full-text match for SQLite's FTS5; and the matched words read back out of FTS5's
//! `highlight()` as byte ranges of the message's text.
//!
//! Every word and phrase goes to FTS5 quoted, so nothing a user types is taken as FTS5's own
//! syntax (columns, `NEAR`, `OR`, brackets): a query either reads as the words typed or is
//! refused with a [`SearchError`] that says why. Pure: never reads the store, never resolves a
//! name (the node does both).

use std::fmt;

use thiserror::Error;

/// Results shown at once; `/search more` shows the next as many.
pub const PAGE: usize = 20;
/// The most words and phrases in one query.
pub const MAX_TERMS: usize = 16;
/// The longest query, in bytes.
pub const MAX_QUERY_BYTES: usize = 512;
/// What `highlight()` is asked to put before a matched word. A control character no message
/// shows: a text that holds it gets no highlights (see [`matched_ranges`]).
pub const MARK_START: char = '\u{2}';
/// What `highlight()` is asked to put after a matched word.
pub const MARK_END: char = '\u{3}';

/// Where a search looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `#ROOM`: that room only.
    Room(String),
    /// `@USER`: the conversation with that user only.
    User(String),
}

/// A word or a phrase to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// As typed (a phrase's words with the spaces between them).
    pub text: String,
    /// `"…"`: the words in this order.
    pub phrase: bool,
    /// `…*`: the last word may go on (`deploy*` finds "deployed").
    pub prefix: bool,
}

/// A search: every term must be found (in any order, unless a phrase), by `from` if given,
/// where `scope` says (everywhere the user may read, if not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub terms: Vec<Term>,
    /// `from:NAME`: written by this username.
    pub from: Option<String>,
    pub scope: Option<Scope>,
}

/// What `/search` was asked: a query, or the next results of the last one (`more`), or both
/// (`/search WORDS more`: the next results of this query if it was the last one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchLine {
    pub query: Option<SearchQuery>,
    pub more: bool,
}

/// Why a search line was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SearchError {
    #[error("search for at least one word, e.g. /search deploy*")]
    NoWords,
    #[error("a search is at most {MAX_QUERY_BYTES} bytes")]
    TooLong,
    #[error("a search has at most {MAX_TERMS} words and phrases")]
    TooManyTerms,
    #[error("say where to search once: one #ROOM or one @USER")]
    TwoScopes,
    #[error("say from: once")]
    TwoAuthors,
    #[error("from: needs a username, e.g. from:alice")]
    NoAuthor,
    #[error("{0} needs a name after it")]
    NoName(char),
}

impl SearchLine {
    /// Reads what follows `/search`.
    pub fn parse(line: &str) -> Result<SearchLine, SearchError> {
        if line.len() > MAX_QUERY_BYTES {
            return Err(SearchError::TooLong);
        }
        let mut tokens = tokens(line);
        let more = matches!(tokens.last(), Some(Token::Bare(word)) if word.eq_ignore_ascii_case("more"));
        if more {
            tokens.pop();
        }
        if more && tokens.is_empty() {
            return Ok(SearchLine { query: None, more });
        }
        let (mut terms, mut from, mut scope) = (Vec::new(), None, None);
        for token in tokens {
            match token {
                Token::Quoted { text, prefix } => {
                    if has_word(&text) {
                        terms.push(Term { text, phrase: true, prefix });
                    }
                }
                Token::Bare(word) => {
                    if let Some(name) = strip_prefix_ignore_case(&word, "from:") {
                        if name.is_empty() {
                            return Err(SearchError::NoAuthor);
                        }
                        if from.replace(name.to_string()).is_some() {
                            return Err(SearchError::TwoAuthors);
                        }
                    } else if let Some(place) = scope_of(&word)? {
                        if scope.replace(place).is_some() {
                            return Err(SearchError::TwoScopes);
                        }
                    } else {
                        let (text, prefix) = match word.strip_suffix('*') {
                            Some(stem) => (stem.trim_end_matches('*').to_string(), true),
                            None => (word, false),
                        };
                        if has_word(&text) {
                            terms.push(Term { text, phrase: false, prefix });
                        }
                    }
                }
            }
        }
        if terms.is_empty() {
            return Err(SearchError::NoWords);
        }
        if terms.len() > MAX_TERMS {
            return Err(SearchError::TooManyTerms);
        }
        Ok(SearchLine { query: Some(SearchQuery { terms, from, scope }), more })
    }
}

impl SearchQuery {
    /// The query as an FTS5 match: each term quoted (quotes inside doubled), `*` after a prefix,
    /// all of them required.
    pub fn fts_match(&self) -> String {
        let quoted: Vec<String> = self
            .terms
            .iter()
            .map(|term| {
                let star = if term.prefix { "*" } else { "" };
                format!("\"{}\"{star}", term.text.replace('"', "\"\""))
            })
            .collect();
        quoted.join(" ")
    }
}

/// The query as a user would type it again: terms, then `from:`, then where.
impl fmt::Display for SearchQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .terms
            .iter()
            .map(|term| {
                let star = if term.prefix { "*" } else { "" };
                // A bare `more` would read as "the next results" again.
                let quoted = term.phrase || term.text.eq_ignore_ascii_case("more");
                if quoted { format!("\"{}\"{star}", term.text) } else { format!("{}{star}", term.text) }
            })
            .collect();
        if let Some(from) = &self.from {
            parts.push(format!("from:{from}"));
        }
        match &self.scope {
            Some(Scope::Room(room)) => parts.push(format!("#{room}")),
            Some(Scope::User(user)) => parts.push(format!("@{user}")),
            None => {}
        }
        f.write_str(&parts.join(" "))
    }
}

/// The ranges of `text` that `marked` (the same text as FTS5's `highlight()` gave it back, with
/// [`MARK_START`] and [`MARK_END`] around each match) marks, in characters (Unicode scalar
/// values, as scripts count them): `(first, end)`. None when `marked` is not `text` with marks
/// (a text that holds a mark character itself).
pub fn matched_ranges(marked: &str, text: &str) -> Vec<(usize, usize)> {
    let (mut ranges, mut plain, mut start) = (Vec::new(), String::with_capacity(text.len()), None);
    let mut count = 0usize;
    for c in marked.chars() {
        match c {
            MARK_START if start.is_none() => start = Some(count),
            MARK_END => match start.take() {
                Some(begin) if begin < count => ranges.push((begin, count)),
                Some(_) => {}
                None => return Vec::new(),
            },
            MARK_START => return Vec::new(),
            c => {
                plain.push(c);
                count += 1;
            }
        }
    }
    if start.is_some() || plain != text { Vec::new() } else { ranges }
}

/// The byte range of `text` that character range `range` covers (clamped to the text).
pub fn byte_range(text: &str, (first, end): (usize, usize)) -> (usize, usize) {
    let at = |n: usize| text.char_indices().nth(n).map_or(text.len(), |(i, _)| i);
    (at(first), at(end))
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Bare(String),
    Quoted { text: String, prefix: bool },
}

/// Splits on white space, a `"…"` (to the end if never closed) being one token.
fn tokens(line: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let text: String = chars.by_ref().take_while(|&c| c != '"').collect();
            let prefix = chars.next_if_eq(&'*').is_some();
            tokens.push(Token::Quoted { text: text.split_whitespace().collect::<Vec<_>>().join(" "), prefix });
        } else {
            let mut word = String::new();
            while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '"') {
                word.push(c);
            }
            tokens.push(Token::Bare(word));
        }
    }
    tokens
}

/// `#ROOM` or `@USER`, if `word` is one.
fn scope_of(word: &str) -> Result<Option<Scope>, SearchError> {
    let mut chars = word.chars();
    let (Some(sign @ ('#' | '@')), rest) = (chars.next(), chars.as_str()) else { return Ok(None) };
    if rest.is_empty() {
        return Err(SearchError::NoName(sign));
    }
    Ok(Some(if sign == '#' { Scope::Room(rest.to_string()) } else { Scope::User(rest.to_string()) }))
}

fn strip_prefix_ignore_case<'a>(word: &'a str, prefix: &str) -> Option<&'a str> {
    let head = word.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &word[prefix.len()..])
}

/// Whether `text` holds anything the tokenizer keeps (a letter or a digit, in any script).
fn has_word(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn query(line: &str) -> SearchQuery {
        let parsed = SearchLine::parse(line).unwrap();
        assert!(!parsed.more);
        parsed.query.unwrap()
    }

    fn word(text: &str, prefix: bool) -> Term {
        Term { text: text.into(), phrase: false, prefix }
    }

    #[test]
    fn words_prefixes_phrases_author_and_place() {
        let q = query(r#"deploy* "release notes" From:alice #ops"#);
        assert_eq!(q.terms, [word("deploy", true), Term { text: "release notes".into(), phrase: true, prefix: false }]);
        assert_eq!(q.from.as_deref(), Some("alice"));
        assert_eq!(q.scope, Some(Scope::Room("ops".into())));
        assert_eq!(q.fts_match(), r#""deploy"* "release notes""#);
        assert_eq!(q.to_string(), r#"deploy* "release notes" from:alice #ops"#);
        assert_eq!(query("@bob lunch").scope, Some(Scope::User("bob".into())));
    }

    #[test]
    fn nothing_typed_is_taken_as_fts5_syntax() {
        let q = query(r#"a:b NEAR(x y) OR -z "say ""hi""#);
        assert_eq!(q.fts_match(), r#""a:b" "NEAR(x" "y)" "OR" "-z" "say""#.to_string() + r#" "hi""#);
        // Quotes inside a bare word cannot happen (they start a phrase); inside a term they are
        // doubled.
        let q = SearchQuery { terms: vec![word("x\"y", false)], from: None, scope: None };
        assert_eq!(q.fts_match(), r#""x""y""#);
    }

    #[test]
    fn more_alone_or_after_a_query() {
        assert_eq!(SearchLine::parse("more"), Ok(SearchLine { query: None, more: true }));
        let line = SearchLine::parse("lunch more").unwrap();
        assert!(line.more);
        assert_eq!(line.query.unwrap().terms, [word("lunch", false)]);
        // The word itself, quoted.
        assert_eq!(query(r#""more""#).terms, [Term { text: "more".into(), phrase: true, prefix: false }]);
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(SearchLine::parse(""), Err(SearchError::NoWords));
        assert_eq!(SearchLine::parse("-- ... *"), Err(SearchError::NoWords));
        assert_eq!(SearchLine::parse("from:alice"), Err(SearchError::NoWords));
        assert_eq!(SearchLine::parse("x from:"), Err(SearchError::NoAuthor));
        assert_eq!(SearchLine::parse("x from:a from:b"), Err(SearchError::TwoAuthors));
        assert_eq!(SearchLine::parse("x #a @b"), Err(SearchError::TwoScopes));
        assert_eq!(SearchLine::parse("x #"), Err(SearchError::NoName('#')));
        let many = vec!["w"; MAX_TERMS + 1].join(" ");
        assert_eq!(SearchLine::parse(&many), Err(SearchError::TooManyTerms));
        assert_eq!(SearchLine::parse(&"w".repeat(MAX_QUERY_BYTES + 1)), Err(SearchError::TooLong));
    }

    #[test]
    fn scripts_other_than_latin_are_words() {
        assert_eq!(query("Привет 東京*").fts_match(), r#""Привет" "東京"*"#);
    }

    #[test]
    fn highlights_become_ranges_of_the_text() {
        let text = "we deployed it, deploy again";
        let marked = "we \u{2}deployed\u{3} it, \u{2}deploy\u{3} again";
        let ranges = matched_ranges(marked, text);
        let words: Vec<&str> = ranges.iter().map(|&r| byte_range(text, r)).map(|(a, b)| &text[a..b]).collect();
        assert_eq!(words, ["deployed", "deploy"]);
        // A text that is not the marked one, or marks that do not pair, give none.
        assert!(matched_ranges(marked, "other").is_empty());
        assert!(matched_ranges("\u{3}x", "x").is_empty());
        assert!(matched_ranges("\u{2}x", "x").is_empty());
        let multibyte = "café \u{2}crème\u{3}";
        let ranges = matched_ranges(multibyte, "café crème");
        assert_eq!(ranges, [(5, 10)], "counted in characters");
        let (a, b) = byte_range("café crème", ranges[0]);
        assert_eq!(&"café crème"[a..b], "crème");
    }

    proptest! {
        /// Any line either is refused or reads as a match of quoted terms only.
        #[test]
        fn any_line_parses_or_is_refused(line in "\\PC{0,80}") {
            if let Ok(SearchLine { query: Some(query), .. }) = SearchLine::parse(&line) {
                prop_assert!(!query.terms.is_empty() && query.terms.len() <= MAX_TERMS);
                let fts = query.fts_match();
                prop_assert!(fts.starts_with('"'));
                // Parsing the query shown again gives the same query.
                let again = SearchLine::parse(&query.to_string()).unwrap().query.unwrap();
                prop_assert_eq!(again.terms.len(), query.terms.len());
            }
        }

        #[test]
        fn ranges_lie_on_char_boundaries(text in "\\PC{0,40}", cut in 0usize..40) {
            let cut = text.char_indices().map(|(i, _)| i).nth(cut).unwrap_or(text.len());
            let marked = format!("{}{MARK_START}{}{MARK_END}", &text[..cut], &text[cut..]);
            for range in matched_ranges(&marked, &text) {
                let (a, b) = byte_range(&text, range);
                prop_assert!(text.is_char_boundary(a) && text.is_char_boundary(b) && a < b);
            }
        }
    }
}
