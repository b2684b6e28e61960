//! Tab completion and hints for the REPL, as pure functions of the line being typed and what
//! the events taught us ([`Known`]): command names (`/jo` → `/join `), then each argument by
//! its [`ArgKind`] in the command table (rooms, users, `ROOM|@USER`, commands, the unconfirmed
//! bootstrap keys for `/trust KEY`), and usernames in plain text. The hint is the rest of the
//! command's usage, shown dimmed after the cursor.

use super::command::{self, ArgKind, COMMANDS, CommandSpec};
use super::prompt::Known;

/// A completion: what is listed, and what replaces the word being typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub display: String,
    pub replacement: String,
}

/// The start of the word being completed and the candidates for it.
pub fn complete(line: &str, pos: usize, known: &Known) -> (usize, Vec<Candidate>) {
    let Some(before) = line.get(..pos) else { return (pos, Vec::new()) };
    let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let word = &before[start..];
    if start == 0 && word.starts_with('/') && !word.starts_with("//") {
        let typed = &word[1..];
        let candidates = COMMANDS
            .iter()
            .filter(|c| starts_with_ignore_case(c.name, typed))
            .map(|c| Candidate { display: format!("/{}", c.name), replacement: format!("/{} ", c.name) })
            .collect();
        return (start, candidates);
    }
    let kind = match command_of(before) {
        Some((spec, index)) => arg_kind(spec, index),
        None => ArgKind::Text,
    };
    (start, names(kind, word, known))
}

/// The hint after the cursor: the rest of the command name and its arguments' usage.
pub fn hint(line: &str, pos: usize) -> Option<String> {
    if pos != line.len() || !line.starts_with('/') || line.starts_with("//") {
        return None;
    }
    let body = &line[1..];
    match body.split_once(char::is_whitespace) {
        None => {
            let mut matching = COMMANDS.iter().filter(|c| starts_with_ignore_case(c.name, body));
            let spec = match (matching.next(), matching.next()) {
                (Some(only), None) => only,
                _ => command::spec(body)?,
            };
            let rest = &spec.name[body.len()..];
            let args = if spec.args.is_empty() { String::new() } else { format!(" {}", spec.args_usage()) };
            let hint = format!("{rest}{args}");
            (!hint.is_empty()).then_some(hint)
        }
        Some((name, rest)) => {
            let spec = command::spec(name)?;
            let args: Vec<&str> = spec.args.iter().map(|a| a.usage).collect();
            let typed = rest.split_whitespace().count();
            let at_new_word = rest.is_empty() || rest.ends_with(char::is_whitespace);
            // The word being typed (if any) is argument `typed - 1`; the usage goes on after it.
            let remaining = args.get(typed..).filter(|r| !r.is_empty())?.join(" ");
            Some(if at_new_word { remaining } else { format!(" {remaining}") })
        }
    }
}

/// The command on the line and the index of the argument being typed.
fn command_of(before: &str) -> Option<(&'static CommandSpec, usize)> {
    let body = before.strip_prefix('/').filter(|b| !b.starts_with('/'))?;
    let (name, rest) = body.split_once(char::is_whitespace)?;
    let spec = command::spec(name)?;
    let done = rest.split_whitespace().count();
    let index = if rest.is_empty() || rest.ends_with(char::is_whitespace) { done } else { done.saturating_sub(1) };
    Some((spec, index))
}

/// The kind of argument `index`; text at the end runs on, and names in it complete.
fn arg_kind(spec: &CommandSpec, index: usize) -> ArgKind {
    let text_at_end = spec.args.last().filter(|a| a.kind == ArgKind::Text);
    spec.args.get(index).or(text_at_end).map_or(ArgKind::Free, |a| a.kind)
}

fn names(kind: ArgKind, word: &str, known: &Known) -> Vec<Candidate> {
    let candidate = |shown: String| Candidate { display: shown.clone(), replacement: format!("{shown} ") };
    // Names come from peers: one that could drive the terminal is never offered.
    let printable = |name: &&String| !name.chars().any(|c| c.is_control() || c.is_whitespace());
    let users = |prefix: &str, typed: &str| -> Vec<Candidate> {
        known
            .users
            .iter()
            .filter(printable)
            .filter(|u| Some(u.as_str()) != known.me.as_deref() && starts_with_ignore_case(u, typed))
            .map(|u| candidate(format!("{prefix}{u}")))
            .collect()
    };
    let rooms = |prefix: &str, typed: &str| -> Vec<Candidate> {
        known
            .rooms
            .iter()
            .filter(printable)
            .filter(|r| starts_with_ignore_case(r, typed))
            .map(|r| candidate(format!("{prefix}{r}")))
            .collect()
    };
    match kind {
        ArgKind::Free => Vec::new(),
        ArgKind::Command => COMMANDS
            .iter()
            .filter(|c| starts_with_ignore_case(c.name, word.trim_start_matches('/')))
            .map(|c| candidate(c.name.to_string()))
            .collect(),
        ArgKind::Key => known
            .keys_to_confirm()
            .into_iter()
            .filter(|(_, key)| starts_with_ignore_case(key, word))
            .map(|(_, key)| candidate(key))
            .collect(),
        ArgKind::Room => match word.strip_prefix('#') {
            Some(typed) => rooms("#", typed),
            None => rooms("", word),
        },
        ArgKind::User | ArgKind::Text => match (word.strip_prefix('@'), word.strip_prefix('#')) {
            (Some(typed), _) => users("@", typed),
            (_, Some(typed)) => rooms("#", typed),
            _ => users("", word),
        },
        ArgKind::RoomOrUser => match word.strip_prefix('@') {
            Some(typed) => users("@", typed),
            None => {
                let typed = word.strip_prefix('#').unwrap_or(word);
                let mut all = rooms("#", typed);
                all.extend(users("@", typed));
                all
            }
        },
    }
}

fn starts_with_ignore_case(name: &str, typed: &str) -> bool {
    name.get(..typed.len()).is_some_and(|head| head.eq_ignore_ascii_case(typed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known {
        let mut k = Known { me: Some("alice".into()), ..Known::default() };
        k.users.extend(["alice", "bob", "bea", "carol"].map(String::from));
        k.rooms.extend(["lobby", "lounge", "dev"].map(String::from));
        k
    }

    fn replacements(line: &str) -> Vec<String> {
        complete(line, line.len(), &known()).1.into_iter().map(|c| c.replacement).collect()
    }

    #[test]
    fn commands_complete_with_a_space() {
        assert_eq!(replacements("/jo"), ["/join "]);
        assert_eq!(replacements("/JO"), ["/join "]);
        assert_eq!(replacements("/lo"), ["/login ", "/logout "]);
        assert!(replacements("/zz").is_empty());
        assert_eq!(complete("/jo", 3, &known()).0, 0);
    }

    #[test]
    fn arguments_complete_by_kind() {
        assert_eq!(replacements("/join lo"), ["lobby ", "lounge "]);
        assert_eq!(replacements("/join #d"), ["#dev "]);
        assert_eq!(replacements("/kick b"), ["bea ", "bob "]);
        assert_eq!(replacements("/kick bob l"), ["lobby ", "lounge "]);
        assert_eq!(replacements("/focus @c"), ["@carol "]);
        assert_eq!(replacements("/focus d"), ["#dev "]);
        assert_eq!(replacements("/msg bo"), ["bob "]);
        assert_eq!(replacements("/msg bob hi c"), ["carol "]);
        assert_eq!(replacements("/help ki"), ["kick "]);
        assert!(replacements("/history 1").is_empty());
        assert!(replacements("/register b").is_empty());
    }

    #[test]
    fn trust_completes_the_unconfirmed_keys() {
        let mut k = known();
        k.unconfirmed = vec![("p1".into(), "3f2a9c01".repeat(8)), ("p2".into(), "77".repeat(32))];
        let keys: Vec<String> = complete("/trust 3f", 9, &k).1.into_iter().map(|c| c.replacement).collect();
        assert_eq!(keys, [format!("{} ", "3f2a9c01".repeat(8))]);
    }

    #[test]
    fn plain_text_completes_usernames_but_not_your_own() {
        assert_eq!(replacements("hi b"), ["bea ", "bob "]);
        assert_eq!(replacements("thanks @ca"), ["@carol "]);
        assert!(replacements("a").is_empty());
        let (start, _) = complete("hi bo", 5, &known());
        assert_eq!(start, 3);
    }

    #[test]
    fn names_that_could_drive_the_terminal_are_not_offered() {
        let mut k = known();
        k.rooms.insert("lo\x1b[2J".into());
        let rooms: Vec<String> = complete("/join lo", 8, &k).1.into_iter().map(|c| c.replacement).collect();
        assert_eq!(rooms, ["lobby ", "lounge "]);
    }

    #[test]
    fn hints_show_the_rest_of_the_usage() {
        assert_eq!(hint("/jo", 3).as_deref(), Some("in ROOM"));
        assert_eq!(hint("/join", 5).as_deref(), Some(" ROOM"));
        assert_eq!(hint("/join ", 6).as_deref(), Some("ROOM"));
        assert_eq!(hint("/join lobby", 11), None);
        assert_eq!(hint("/kick bob", 9).as_deref(), Some(" [ROOM]"));
        assert_eq!(hint("/kick bob ", 10).as_deref(), Some("[ROOM]"));
        assert_eq!(hint("/who", 4), None);
        assert_eq!(hint("/lo", 3), None);
        assert_eq!(hint("/login", 6).as_deref(), Some(" NAME"));
        assert_eq!(hint("hello", 5), None);
        assert_eq!(hint("/jo", 1), None);
    }
}
