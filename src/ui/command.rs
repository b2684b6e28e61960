//! The command grammar (DESIGN.md, "Commands"), parsed once, here, for every front-end.
//!
//! A line that does not start with `/` is text for the focused room or user; `//text` sends text
//! that starts with a slash. [`COMMANDS`] is the one table of commands: the parser, `/help` and
//! "did you mean" all read it.

use thiserror::Error;

use super::suggest;
use crate::node::ErrorCode;
use crate::trust::{KEY_DIGITS, MIN_PREFIX_DIGITS};

/// The longest input line accepted, in bytes. Longer lines are refused with `too_long`.
pub const MAX_INPUT_LINE_BYTES: usize = 8 * 1024;

/// One entry of the command table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// The name without the slash.
    pub name: &'static str,
    /// Arguments, as shown in usage lines.
    pub args: &'static str,
    /// What it does, in one line.
    pub summary: &'static str,
    /// An example invocation.
    pub example: &'static str,
}

impl CommandSpec {
    /// `/name ARGS`.
    pub fn usage(&self) -> String {
        if self.args.is_empty() { format!("/{}", self.name) } else { format!("/{} {}", self.name, self.args) }
    }
}

/// Every command of the grammar, in the order `/help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "register",
        args: "NAME",
        summary: "create an account (then type the password) and log in",
        example: "/register alice",
    },
    CommandSpec { name: "login", args: "NAME", summary: "log in (then type the password)", example: "/login alice" },
    CommandSpec {
        name: "logout",
        args: "",
        summary: "log out; your rooms wait for your next login",
        example: "/logout",
    },
    CommandSpec { name: "rename", args: "NEWNAME", summary: "change your unique username", example: "/rename alice2" },
    CommandSpec {
        name: "nick",
        args: "NICKNAME",
        summary: "change the nickname others see beside your username",
        example: "/nick Alice in Wonderland",
    },
    CommandSpec { name: "who", args: "", summary: "list the users online", example: "/who" },
    CommandSpec { name: "rooms", args: "", summary: "list the rooms with their member counts", example: "/rooms" },
    CommandSpec {
        name: "create",
        args: "ROOM",
        summary: "create a room (you become its admin) and focus it",
        example: "/create lobby",
    },
    CommandSpec { name: "join", args: "ROOM", summary: "join a room and focus it", example: "/join lobby" },
    CommandSpec {
        name: "leave",
        args: "[ROOM]",
        summary: "leave a room (default: the focused one)",
        example: "/leave lobby",
    },
    CommandSpec {
        name: "members",
        args: "[ROOM]",
        summary: "list a room's members in join order, admins marked",
        example: "/members lobby",
    },
    CommandSpec {
        name: "kick",
        args: "USER [ROOM]",
        summary: "remove a member (admins only)",
        example: "/kick mallory lobby",
    },
    CommandSpec {
        name: "ban",
        args: "USER [ROOM]",
        summary: "remove a member and keep them out (admins only)",
        example: "/ban mallory lobby",
    },
    CommandSpec {
        name: "unban",
        args: "USER [ROOM]",
        summary: "let a banned user join again (admins only)",
        example: "/unban mallory lobby",
    },
    CommandSpec {
        name: "op",
        args: "USER [ROOM]",
        summary: "make a member admin (admins only)",
        example: "/op bob lobby",
    },
    CommandSpec {
        name: "msg",
        args: "USER TEXT",
        summary: "send a private message",
        example: "/msg bob see you at noon",
    },
    CommandSpec {
        name: "query",
        args: "USER",
        summary: "focus a private conversation: plain text goes there",
        example: "/query bob",
    },
    CommandSpec { name: "focus", args: "ROOM|@USER", summary: "choose where plain text goes", example: "/focus @bob" },
    CommandSpec {
        name: "mute",
        args: "ROOM|@USER",
        summary: "turn notifications off for a room or a user",
        example: "/mute lobby",
    },
    CommandSpec { name: "unmute", args: "ROOM|@USER", summary: "turn notifications on again", example: "/unmute @bob" },
    CommandSpec {
        name: "history",
        args: "[N]",
        summary: "show the last N messages where you are focused",
        example: "/history 50",
    },
    CommandSpec { name: "open", args: "N", summary: "open link number N in the browser", example: "/open 2" },
    CommandSpec {
        name: "status",
        args: "",
        summary: "show this node: peer id, user, peers, bootstrap, rooms",
        example: "/status",
    },
    CommandSpec {
        name: "trust",
        args: "KEY",
        summary: "confirm the bootstrap node's key: its 64 hex digits, or a unique prefix of at least 8",
        example: "/trust 3f2a9c01",
    },
    CommandSpec {
        name: "help",
        args: "[COMMAND]",
        summary: "list the commands, or explain one",
        example: "/help kick",
    },
    CommandSpec {
        name: "quit",
        args: "",
        summary: "leave meshchat (your rooms wait for your next login)",
        example: "/quit",
    },
];

/// Looks a command up by name (without the slash, any case).
pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    let name = name.trim_start_matches('/');
    COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// Where plain text goes, or what a mute applies to: a room or a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Room(String),
    User(String),
}

impl Target {
    /// `ROOM`, `#ROOM` or `@USER`.
    fn parse(word: &str) -> Option<Target> {
        if let Some(user) = word.strip_prefix('@') {
            (!user.is_empty()).then(|| Target::User(user.to_string()))
        } else {
            let room = word.strip_prefix('#').unwrap_or(word);
            (!room.is_empty()).then(|| Target::Room(room.to_string()))
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Room(room) => write!(f, "#{room}"),
            Target::User(user) => write!(f, "@{user}"),
        }
    }
}

/// A parsed input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Plain text for the focused room or user.
    Say(String),
    Register {
        user: String,
    },
    Login {
        user: String,
    },
    Logout,
    Rename {
        new: String,
    },
    Nick {
        nick: String,
    },
    Who,
    Rooms,
    Create {
        room: String,
    },
    Join {
        room: String,
    },
    Leave {
        room: Option<String>,
    },
    Members {
        room: Option<String>,
    },
    Kick {
        user: String,
        room: Option<String>,
    },
    Ban {
        user: String,
        room: Option<String>,
    },
    Unban {
        user: String,
        room: Option<String>,
    },
    Op {
        user: String,
        room: Option<String>,
    },
    Msg {
        user: String,
        text: String,
    },
    Query {
        user: String,
    },
    Focus(Target),
    Mute(Target),
    Unmute(Target),
    History {
        count: Option<usize>,
    },
    Open {
        link: usize,
    },
    Status,
    /// Confirm a bootstrap key: hex digits, lower-case.
    Trust {
        key: String,
    },
    Help {
        command: Option<String>,
    },
    Quit,
}

impl Command {
    /// The command's name in the table (`"say"` for plain text).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Say(_) => "say",
            Command::Register { .. } => "register",
            Command::Login { .. } => "login",
            Command::Logout => "logout",
            Command::Rename { .. } => "rename",
            Command::Nick { .. } => "nick",
            Command::Who => "who",
            Command::Rooms => "rooms",
            Command::Create { .. } => "create",
            Command::Join { .. } => "join",
            Command::Leave { .. } => "leave",
            Command::Members { .. } => "members",
            Command::Kick { .. } => "kick",
            Command::Ban { .. } => "ban",
            Command::Unban { .. } => "unban",
            Command::Op { .. } => "op",
            Command::Msg { .. } => "msg",
            Command::Query { .. } => "query",
            Command::Focus(_) => "focus",
            Command::Mute(_) => "mute",
            Command::Unmute(_) => "unmute",
            Command::History { .. } => "history",
            Command::Open { .. } => "open",
            Command::Status => "status",
            Command::Trust { .. } => "trust",
            Command::Help { .. } => "help",
            Command::Quit => "quit",
        }
    }
}

/// Why a line is not a command.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("unknown command /{name}{}", suggestion.as_ref().map(|s| format!(" (did you mean /{s}?)")).unwrap_or_default())]
    Unknown { name: String, suggestion: Option<String> },
    #[error("usage: {usage}: {problem}")]
    Usage { usage: String, problem: String },
    #[error("the line is {len} bytes long; the limit is {MAX_INPUT_LINE_BYTES}")]
    TooLong { len: usize },
    #[error("the line contains control characters (such as NUL or ESC); meshchat does not send them")]
    ControlCharacters,
}

impl ParseError {
    /// The `error` event code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            ParseError::Unknown { .. } => ErrorCode::InvalidCommand,
            ParseError::Usage { .. } | ParseError::ControlCharacters => ErrorCode::Usage,
            ParseError::TooLong { .. } => ErrorCode::TooLong,
        }
    }
}

/// Parses one input line. `Ok(None)` for a blank line.
pub fn parse(line: &str) -> Result<Option<Command>, ParseError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.len() > MAX_INPUT_LINE_BYTES {
        return Err(ParseError::TooLong { len: line.len() });
    }
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ParseError::ControlCharacters);
    }
    if line.trim().is_empty() {
        return Ok(None);
    }
    let Some(body) = line.strip_prefix('/') else {
        return Ok(Some(Command::Say(line.to_string())));
    };
    if body.starts_with('/') {
        return Ok(Some(Command::Say(body.to_string())));
    }
    let (name, rest) = match body.split_once(char::is_whitespace) {
        Some((name, rest)) => (name, rest.trim()),
        None => (body, ""),
    };
    let Some(spec) = spec(name) else {
        let names = COMMANDS.iter().map(|c| c.name);
        return Err(ParseError::Unknown {
            name: name.to_string(),
            suggestion: suggest::closest(name, names).map(str::to_string),
        });
    };
    let args = Args { spec, rest };
    let command = match spec.name {
        "register" => Command::Register { user: args.one()? },
        "login" => Command::Login { user: args.one()? },
        "logout" => args.none(Command::Logout)?,
        "rename" => Command::Rename { new: args.one()? },
        "nick" => Command::Nick { nick: args.rest()? },
        "who" => args.none(Command::Who)?,
        "rooms" => args.none(Command::Rooms)?,
        "create" => Command::Create { room: args.room()? },
        "join" => Command::Join { room: args.room()? },
        "leave" => Command::Leave { room: args.optional_room()? },
        "members" => Command::Members { room: args.optional_room()? },
        "kick" => {
            let (user, room) = args.user_and_room()?;
            Command::Kick { user, room }
        }
        "ban" => {
            let (user, room) = args.user_and_room()?;
            Command::Ban { user, room }
        }
        "unban" => {
            let (user, room) = args.user_and_room()?;
            Command::Unban { user, room }
        }
        "op" => {
            let (user, room) = args.user_and_room()?;
            Command::Op { user, room }
        }
        "msg" => {
            let (user, text) = args.user_and_text()?;
            Command::Msg { user, text }
        }
        "query" => Command::Query { user: args.user()? },
        "focus" => Command::Focus(args.target()?),
        "mute" => Command::Mute(args.target()?),
        "unmute" => Command::Unmute(args.target()?),
        "history" => Command::History { count: args.optional_count()? },
        "open" => Command::Open { link: args.count()? },
        "status" => args.none(Command::Status)?,
        "trust" => Command::Trust { key: args.key()? },
        "help" => Command::Help { command: args.optional_word()?.map(|c| c.trim_start_matches('/').to_string()) },
        "quit" => args.none(Command::Quit)?,
        other => unreachable!("command table entry /{other} has no parser"),
    };
    Ok(Some(command))
}

/// The arguments of one command, with the spec for usage errors.
struct Args<'a> {
    spec: &'static CommandSpec,
    rest: &'a str,
}

impl Args<'_> {
    fn usage(&self, problem: impl Into<String>) -> ParseError {
        ParseError::Usage { usage: self.spec.usage(), problem: problem.into() }
    }

    fn words(&self) -> Vec<&str> {
        self.rest.split_whitespace().collect()
    }

    fn none(&self, command: Command) -> Result<Command, ParseError> {
        if self.rest.is_empty() { Ok(command) } else { Err(self.usage("takes no arguments")) }
    }

    fn one(&self) -> Result<String, ParseError> {
        match self.words().as_slice() {
            [word] => Ok(word.to_string()),
            [] => Err(self.usage(format!("missing {}", self.spec.args))),
            _ => Err(self.usage(format!("expects one {}", self.spec.args))),
        }
    }

    fn rest(&self) -> Result<String, ParseError> {
        if self.rest.is_empty() {
            Err(self.usage(format!("missing {}", self.spec.args)))
        } else {
            Ok(self.rest.to_string())
        }
    }

    fn optional_word(&self) -> Result<Option<String>, ParseError> {
        match self.words().as_slice() {
            [] => Ok(None),
            [word] => Ok(Some(word.to_string())),
            _ => Err(self.usage("expects at most one argument")),
        }
    }

    fn room(&self) -> Result<String, ParseError> {
        let room = self.one()?;
        strip_room(&room).ok_or_else(|| self.usage("the room name is empty"))
    }

    fn optional_room(&self) -> Result<Option<String>, ParseError> {
        match self.optional_word()? {
            None => Ok(None),
            Some(room) => strip_room(&room).map(Some).ok_or_else(|| self.usage("the room name is empty")),
        }
    }

    fn user(&self) -> Result<String, ParseError> {
        let user = self.one()?;
        strip_user(&user).ok_or_else(|| self.usage("the username is empty"))
    }

    fn user_and_room(&self) -> Result<(String, Option<String>), ParseError> {
        match self.words().as_slice() {
            [user] => Ok((self.checked_user(user)?, None)),
            [user, room] => {
                let room = strip_room(room).ok_or_else(|| self.usage("the room name is empty"))?;
                Ok((self.checked_user(user)?, Some(room)))
            }
            [] => Err(self.usage("missing USER")),
            _ => Err(self.usage("expects a user and at most one room")),
        }
    }

    fn checked_user(&self, word: &str) -> Result<String, ParseError> {
        strip_user(word).ok_or_else(|| self.usage("the username is empty"))
    }

    fn user_and_text(&self) -> Result<(String, String), ParseError> {
        let Some((user, text)) = self.rest.split_once(char::is_whitespace) else {
            return Err(self.usage(if self.rest.is_empty() { "missing USER and TEXT" } else { "missing TEXT" }));
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(self.usage("missing TEXT"));
        }
        Ok((self.checked_user(user)?, text.to_string()))
    }

    fn target(&self) -> Result<Target, ParseError> {
        let word = self.one()?;
        Target::parse(&word).ok_or_else(|| self.usage("name a room (lobby or #lobby) or a user (@bob)"))
    }

    /// A bootstrap key or a prefix of one: hex digits, as many as [`crate::trust`] takes.
    fn key(&self) -> Result<String, ParseError> {
        let word = self.one()?;
        let digits = MIN_PREFIX_DIGITS..=KEY_DIGITS;
        if word.bytes().all(|b| b.is_ascii_hexdigit()) && digits.contains(&word.len()) {
            Ok(word.to_ascii_lowercase())
        } else {
            Err(self.usage(format!(
                "'{word}' is not a bootstrap key: give its {KEY_DIGITS} hex digits, or at least {MIN_PREFIX_DIGITS} of them"
            )))
        }
    }

    fn count(&self) -> Result<usize, ParseError> {
        let word = self.one()?;
        parse_count(&word).ok_or_else(|| self.usage(format!("'{word}' is not a positive number")))
    }

    fn optional_count(&self) -> Result<Option<usize>, ParseError> {
        match self.optional_word()? {
            None => Ok(None),
            Some(word) => {
                parse_count(&word).map(Some).ok_or_else(|| self.usage(format!("'{word}' is not a positive number")))
            }
        }
    }
}

fn parse_count(word: &str) -> Option<usize> {
    word.parse::<usize>().ok().filter(|n| *n > 0)
}

fn strip_room(word: &str) -> Option<String> {
    let room = word.strip_prefix('#').unwrap_or(word);
    (!room.is_empty()).then(|| room.to_string())
}

fn strip_user(word: &str) -> Option<String> {
    let user = word.strip_prefix('@').unwrap_or(word);
    (!user.is_empty()).then(|| user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        parse(line).unwrap().unwrap()
    }

    fn err(line: &str) -> ParseError {
        parse(line).unwrap_err()
    }

    #[test]
    fn plain_text_is_said() {
        assert_eq!(ok("hello there"), Command::Say("hello there".into()));
        assert_eq!(ok("//not a command"), Command::Say("/not a command".into()));
        assert_eq!(ok("  leading spaces"), Command::Say("  leading spaces".into()));
    }

    #[test]
    fn blank_lines_are_nothing() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("   \r\n").unwrap(), None);
    }

    #[test]
    fn every_command_in_the_table_parses_its_example() {
        for spec in COMMANDS {
            let parsed = parse(spec.example);
            assert!(matches!(parsed, Ok(Some(_))), "{} -> {parsed:?}", spec.example);
        }
    }

    #[test]
    fn commands_with_arguments() {
        assert_eq!(ok("/login alice"), Command::Login { user: "alice".into() });
        assert_eq!(ok("/nick  Alice  W "), Command::Nick { nick: "Alice  W".into() });
        assert_eq!(ok("/join #lobby"), Command::Join { room: "lobby".into() });
        assert_eq!(ok("/leave"), Command::Leave { room: None });
        assert_eq!(ok("/kick @bob #lobby"), Command::Kick { user: "bob".into(), room: Some("lobby".into()) });
        assert_eq!(ok("/msg bob  hi  there "), Command::Msg { user: "bob".into(), text: "hi  there".into() });
        assert_eq!(ok("/focus @bob"), Command::Focus(Target::User("bob".into())));
        assert_eq!(ok("/mute #lobby"), Command::Mute(Target::Room("lobby".into())));
        assert_eq!(ok("/history"), Command::History { count: None });
        assert_eq!(ok("/history 20"), Command::History { count: Some(20) });
        assert_eq!(ok("/open 3"), Command::Open { link: 3 });
        assert_eq!(ok("/help /kick"), Command::Help { command: Some("kick".into()) });
        assert_eq!(ok("/STATUS"), Command::Status);
        assert_eq!(ok("/trust 3F2A9C01"), Command::Trust { key: "3f2a9c01".into() });
    }

    #[test]
    fn usage_errors_name_the_usage() {
        let e = err("/login");
        assert_eq!(e.code(), ErrorCode::Usage);
        assert!(e.to_string().contains("/login NAME"), "{e}");
        assert_eq!(err("/msg bob").code(), ErrorCode::Usage);
        assert_eq!(err("/quit now").code(), ErrorCode::Usage);
        assert_eq!(err("/history zero").code(), ErrorCode::Usage);
        assert_eq!(err("/history 0").code(), ErrorCode::Usage);
        assert_eq!(err("/open").code(), ErrorCode::Usage);
        assert_eq!(err("/focus @").code(), ErrorCode::Usage);
        assert_eq!(err("/kick a b c").code(), ErrorCode::Usage);
        assert_eq!(err("/join #").code(), ErrorCode::Usage);
        assert_eq!(err("/trust").code(), ErrorCode::Usage);
        assert_eq!(err("/trust 3f2a9c0").code(), ErrorCode::Usage);
        assert_eq!(err("/trust 3f2a9c0g").code(), ErrorCode::Usage);
        assert_eq!(err(&format!("/trust {}", "a".repeat(65))).code(), ErrorCode::Usage);
    }

    #[test]
    fn unknown_commands_suggest_a_close_one() {
        let e = err("/stauts");
        assert_eq!(e.code(), ErrorCode::InvalidCommand);
        assert_eq!(e.to_string(), "unknown command /stauts (did you mean /status?)");
        let e = err("/xyzzy");
        assert_eq!(e.to_string(), "unknown command /xyzzy");
        let e = err("/");
        assert_eq!(e.code(), ErrorCode::InvalidCommand);
    }

    #[test]
    fn hostile_lines_are_refused() {
        assert_eq!(err(&"a".repeat(100_000)).code(), ErrorCode::TooLong);
        assert_eq!(err("hi\0there").code(), ErrorCode::Usage);
        assert_eq!(err("\x1b[2Jclear").code(), ErrorCode::Usage);
        assert_eq!(ok("tab\tok"), Command::Say("tab\tok".into()));
    }

    #[test]
    fn every_parsed_command_names_its_table_entry() {
        for spec in COMMANDS {
            let command = ok(spec.example);
            assert_eq!(command.name(), spec.name);
        }
    }

    #[test]
    fn lookup_by_name_ignores_case_and_slash() {
        assert_eq!(spec("/Kick").map(|s| s.name), Some("kick"));
        assert!(spec("nope").is_none());
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    /// Characters that exercise the parser: white space of several kinds, slashes, sigils,
    /// control characters, digits and non-ASCII text.
    fn any_char() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => prop::sample::select(vec![' ', '\t', '/', '@', '#', '0', '1', 'a', 'Z', '-', '\r', '\n']),
            2 => any::<char>(),
            1 => prop::sample::select(vec!['\0', '\x1b', '\x7f', '\u{85}', '\u{a0}', '\u{2028}', '\u{3000}']),
            1 => prop::sample::select(vec!['\u{200b}', '\u{feff}']),
            1 => prop::sample::select(vec!['\u{e9}', '\u{1f600}', '\u{202e}', '\u{fffd}']),
        ]
    }

    fn chars() -> impl Strategy<Value = String> {
        prop::collection::vec(any_char(), 0..40).prop_map(|c| c.into_iter().collect::<String>())
    }

    fn any_line() -> impl Strategy<Value = String> {
        let name = prop::sample::select(COMMANDS).prop_map(|c| c.name.to_string());
        prop_oneof![
            chars(),
            (name, chars()).prop_map(|(name, rest)| format!("/{name} {rest}")),
            (prop::sample::select(COMMANDS), chars()).prop_map(|(c, rest)| format!("/{}{rest}", c.name.to_uppercase())),
            chars().prop_map(|rest| format!("/{rest}")),
            (MAX_INPUT_LINE_BYTES - 3..MAX_INPUT_LINE_BYTES + 3, prop::sample::select(vec!["a", "\u{e9}", " ", "/"]))
                .prop_map(|(n, s)| format!("/msg bob {}", s.repeat(n / s.len()))),
            (MAX_INPUT_LINE_BYTES - 3..MAX_INPUT_LINE_BYTES + 3).prop_map(|n| "x".repeat(n)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_line_parses_to_nothing_a_command_or_a_coded_error(line in any_line()) {
            let bare = line.trim_end_matches(['\r', '\n']);
            match parse(&line) {
                Ok(None) => prop_assert!(bare.trim().is_empty()),
                Ok(Some(command)) => {
                    prop_assert!(bare.len() <= MAX_INPUT_LINE_BYTES);
                    prop_assert!(!bare.chars().any(|c| c.is_control() && c != '\t'));
                    let name = command.name();
                    prop_assert!(name == "say" || COMMANDS.iter().any(|c| c.name == name), "{}", name);
                    if name != "say" {
                        prop_assert!(spec(bare.split_whitespace().next().unwrap_or("")).is_some());
                    }
                    match &command {
                        Command::Say(text) => prop_assert!(!text.trim().is_empty()),
                        Command::Register { user: word }
                        | Command::Login { user: word }
                        | Command::Rename { new: word }
                        | Command::Create { room: word }
                        | Command::Join { room: word }
                        | Command::Query { user: word } => {
                            prop_assert!(!word.is_empty() && !word.contains(char::is_whitespace), "{:?}", command);
                        }
                        Command::Msg { user, text } => {
                            prop_assert!(!user.is_empty() && !user.contains(char::is_whitespace));
                            prop_assert!(!text.trim().is_empty());
                        }
                        Command::History { count: Some(n) } | Command::Open { link: n } => prop_assert!(*n > 0),
                        _ => {}
                    }
                }
                Err(error) => {
                    let code = error.code();
                    prop_assert!(matches!(code, ErrorCode::InvalidCommand | ErrorCode::Usage | ErrorCode::TooLong));
                    prop_assert!(!error.to_string().is_empty());
                    if code == ErrorCode::TooLong {
                        prop_assert!(bare.len() > MAX_INPUT_LINE_BYTES);
                    }
                }
            }
        }

        #[test]
        fn any_text_at_all_parses_without_panicking(line in ".{0,80}") {
            let _ = parse(&line).map(|command| command.map(|c| c.name()));
        }
    }
}
