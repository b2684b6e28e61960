//! The command grammar (DESIGN.md, "Commands"), parsed once, here, for every front-end.
//!
//! A line that does not start with `/` is text for the focused room or user; `//text` sends text
//! that starts with a slash. Every other line names a command of [`COMMANDS`], the one table of
//! commands. An entry ([`CommandSpec`]) holds the name, the arguments (each with its word in the
//! usage line and the [`ArgKind`] that tab completion offers for it), the one-line summary and
//! the example `/help` shows, and the function that parses the arguments into a [`Command`].
//! The parser, `/help`, "did you mean" and completion (`complete.rs`) all read the table, so a
//! new command is one entry here plus its arm in the dispatcher, `App::run` (`app.rs`).
//!
//! An entry parses but does not run. Running awaits the node, and `App` is async: a run
//! function in the table would return a boxed future borrowing the `App` and be handed back an
//! untyped value to take apart again, and the grammar would depend on the dispatcher (the REPL
//! parses a line without running it, to learn whether a password follows). So the entry builds
//! a typed [`Command`] and `App::run` matches on it once. Room and direct-message commands parse
//! straight into the node's own [`RoomCommand`] and [`DirectCommand`], which are not declared
//! twice.

use thiserror::Error;

use super::suggest;
use crate::node::{DirectCommand, ErrorCode, RoomCommand, UiEvent};
use crate::trust::{KEY_DIGITS, MIN_PREFIX_DIGITS};

/// The longest input line accepted, in bytes. Longer lines are refused with `too_long`.
pub const MAX_INPUT_LINE_BYTES: usize = 8 * 1024;

/// What an argument names, which is what tab completion offers for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// Nothing to offer: a new name, a number, a nickname.
    Free,
    User,
    Room,
    /// `ROOM`, `#ROOM` or `@USER`.
    RoomOrUser,
    /// A command name.
    Command,
    /// An unconfirmed bootstrap key.
    Key,
    /// Text to the end of the line, in which usernames complete.
    Text,
}

/// One argument of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arg {
    /// Its word in usage lines, in brackets when it may be left out.
    pub usage: &'static str,
    pub kind: ArgKind,
}

const fn arg(usage: &'static str, kind: ArgKind) -> Arg {
    Arg { usage, kind }
}

const NAME: Arg = arg("NAME", ArgKind::Free);
const USER: Arg = arg("USER", ArgKind::User);
const ROOM: Arg = arg("ROOM", ArgKind::Room);
const OPTIONAL_ROOM: Arg = arg("[ROOM]", ArgKind::Room);
const TARGET: Arg = arg("ROOM|@USER", ArgKind::RoomOrUser);

/// One entry of the command table.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// The name without the slash.
    pub name: &'static str,
    pub args: &'static [Arg],
    /// What it does, in one line.
    pub summary: &'static str,
    /// An example invocation.
    pub example: &'static str,
    /// Parses the arguments (the rest of the line, trimmed).
    parse: fn(&Args<'_>) -> Result<Command, ParseError>,
}

impl CommandSpec {
    /// `/name ARGS`.
    pub fn usage(&self) -> String {
        let mut usage = format!("/{}", self.name);
        for arg in self.args {
            usage.push(' ');
            usage.push_str(arg.usage);
        }
        usage
    }

    /// The arguments as the usage line shows them: `USER [ROOM]`.
    pub fn args_usage(&self) -> String {
        self.args.iter().map(|a| a.usage).collect::<Vec<_>>().join(" ")
    }
}

/// Every command of the grammar, in the order `/help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "register",
        args: &[NAME],
        summary: "create an account (then type the password) and log in",
        example: "/register alice",
        parse: |a| Ok(Command::Register { user: a.one()? }),
    },
    CommandSpec {
        name: "login",
        args: &[NAME],
        summary: "log in (then type the password)",
        example: "/login alice",
        parse: |a| Ok(Command::Login { user: a.one()? }),
    },
    CommandSpec {
        name: "logout",
        args: &[],
        summary: "log out; your rooms wait for your next login",
        example: "/logout",
        parse: |a| a.none(Command::Logout),
    },
    CommandSpec {
        name: "rename",
        args: &[arg("NEWNAME", ArgKind::Free)],
        summary: "change your unique username",
        example: "/rename alice2",
        parse: |a| Ok(Command::Rename { new: a.one()? }),
    },
    CommandSpec {
        name: "nick",
        args: &[arg("NICKNAME", ArgKind::Free)],
        summary: "change the nickname others see beside your username",
        example: "/nick Alice in Wonderland",
        parse: |a| Ok(Command::Nick { nick: a.rest()? }),
    },
    CommandSpec {
        name: "who",
        args: &[],
        summary: "list the users online",
        example: "/who",
        parse: |a| a.none(Command::Who),
    },
    CommandSpec {
        name: "rooms",
        args: &[],
        summary: "list the rooms with their member counts",
        example: "/rooms",
        parse: |a| a.none(Command::Room(RoomCommand::List)),
    },
    CommandSpec {
        name: "create",
        args: &[ROOM],
        summary: "create a room (you become its admin) and focus it",
        example: "/create lobby",
        parse: |a| Ok(Command::Room(RoomCommand::Create(a.room()?))),
    },
    CommandSpec {
        name: "join",
        args: &[ROOM],
        summary: "join a room and focus it",
        example: "/join lobby",
        parse: |a| Ok(Command::Room(RoomCommand::Join(a.room()?))),
    },
    CommandSpec {
        name: "leave",
        args: &[OPTIONAL_ROOM],
        summary: "leave a room (default: the focused one)",
        example: "/leave lobby",
        parse: |a| Ok(Command::Room(RoomCommand::Leave(a.optional_room()?))),
    },
    CommandSpec {
        name: "members",
        args: &[OPTIONAL_ROOM],
        summary: "list a room's members in join order, admins marked",
        example: "/members lobby",
        parse: |a| Ok(Command::Room(RoomCommand::Members(a.optional_room()?))),
    },
    CommandSpec {
        name: "kick",
        args: &[USER, OPTIONAL_ROOM],
        summary: "remove a member (admins only)",
        example: "/kick mallory lobby",
        parse: |a| a.user_and_room().map(|(user, room)| Command::Room(RoomCommand::Kick { user, room })),
    },
    CommandSpec {
        name: "ban",
        args: &[USER, OPTIONAL_ROOM],
        summary: "remove a member and keep them out (admins only)",
        example: "/ban mallory lobby",
        parse: |a| a.user_and_room().map(|(user, room)| Command::Room(RoomCommand::Ban { user, room })),
    },
    CommandSpec {
        name: "unban",
        args: &[USER, OPTIONAL_ROOM],
        summary: "let a banned user join again (admins only)",
        example: "/unban mallory lobby",
        parse: |a| a.user_and_room().map(|(user, room)| Command::Room(RoomCommand::Unban { user, room })),
    },
    CommandSpec {
        name: "op",
        args: &[USER, OPTIONAL_ROOM],
        summary: "make a member admin (admins only)",
        example: "/op bob lobby",
        parse: |a| a.user_and_room().map(|(user, room)| Command::Room(RoomCommand::Op { user, room })),
    },
    CommandSpec {
        name: "msg",
        args: &[USER, arg("TEXT", ArgKind::Text)],
        summary: "send a private message",
        example: "/msg bob see you at noon",
        parse: |a| a.user_and_text().map(|(user, text)| Command::Direct(DirectCommand::Send { user, text })),
    },
    CommandSpec {
        name: "query",
        args: &[USER],
        summary: "focus a private conversation: plain text goes there",
        example: "/query bob",
        parse: |a| Ok(Command::Direct(DirectCommand::Query(a.user()?))),
    },
    CommandSpec {
        name: "focus",
        args: &[TARGET],
        summary: "choose where plain text goes",
        example: "/focus @bob",
        parse: |a| {
            Ok(match a.target()? {
                Target::Room(room) => Command::Room(RoomCommand::Focus(room)),
                Target::User(user) => Command::Direct(DirectCommand::Query(user)),
            })
        },
    },
    CommandSpec {
        name: "mute",
        args: &[TARGET],
        summary: "turn notifications off for a room or a user",
        example: "/mute lobby",
        parse: |a| Ok(Command::Room(RoomCommand::Mute(a.target()?.to_string()))),
    },
    CommandSpec {
        name: "unmute",
        args: &[TARGET],
        summary: "turn notifications on again",
        example: "/unmute @bob",
        parse: |a| Ok(Command::Room(RoomCommand::Unmute(a.target()?.to_string()))),
    },
    CommandSpec {
        name: "history",
        args: &[arg("[N]", ArgKind::Free)],
        summary: "show the last N messages where you are focused",
        example: "/history 50",
        parse: |a| Ok(Command::Room(RoomCommand::History(a.optional_count()?))),
    },
    CommandSpec {
        name: "open",
        args: &[arg("N", ArgKind::Free)],
        summary: "open link number N in the browser",
        example: "/open 2",
        parse: |a| Ok(Command::Open { link: a.count()? }),
    },
    CommandSpec {
        name: "status",
        args: &[],
        summary: "show this node: peer id, user, peers, bootstrap, rooms",
        example: "/status",
        parse: |a| a.none(Command::Status),
    },
    CommandSpec {
        name: "trust",
        args: &[arg("KEY", ArgKind::Key)],
        summary: "confirm the bootstrap node's key: its 64 hex digits, or a unique prefix of at least 8",
        example: "/trust 3f2a9c01",
        parse: |a| Ok(Command::Trust { key: a.key()? }),
    },
    CommandSpec {
        name: "help",
        args: &[arg("[COMMAND]", ArgKind::Command)],
        summary: "list the commands, or explain one",
        example: "/help kick",
        parse: |a| Ok(Command::Help { command: a.optional_word()?.map(|c| c.trim_start_matches('/').to_string()) }),
    },
    CommandSpec {
        name: "quit",
        args: &[],
        summary: "leave meshchat (your rooms wait for your next login)",
        example: "/quit",
        parse: |a| a.none(Command::Quit),
    },
];

/// Looks a command up by name (without the slash, any case).
pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    let name = name.trim_start_matches('/');
    COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// The command whose name is closest to `name`, for "did you mean".
fn closest(name: &str) -> Option<&'static str> {
    suggest::closest(name, COMMANDS.iter().map(|c| c.name))
}

/// The answer to `/help`: every command with its usage and what it does.
pub fn help_overview() -> String {
    let width = COMMANDS.iter().map(|c| c.usage().len()).max().unwrap_or(0);
    let mut text = String::from("Commands (text without a leading / goes to the focused room or user):");
    for spec in COMMANDS {
        text.push_str(&format!("\n  {:width$}  {}", spec.usage(), spec.summary));
    }
    text.push_str("\n/help COMMAND explains one command.");
    text
}

/// The answer to `/help COMMAND`.
pub fn help_for(name: &str) -> UiEvent {
    match spec(name) {
        Some(spec) => UiEvent::info(format!("{}\n  {}\n  example: {}", spec.usage(), spec.summary, spec.example)),
        None => {
            let hint = closest(name).map(|s| format!(" (did you mean /{s}?)")).unwrap_or_default();
            UiEvent::error(ErrorCode::InvalidCommand, format!("no command /{name}{hint}; /help lists them"))
        }
    }
}

/// A parsed input line, for the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Plain text for the focused room or user.
    Say(String),
    /// A room command (`/join`, `/kick`, `/focus ROOM`, `/mute`, `/history`, ...).
    Room(RoomCommand),
    /// A direct-message command (`/msg`, `/query`, `/focus @USER`).
    Direct(DirectCommand),
    /// The next line is the password.
    Register {
        user: String,
    },
    /// The next line is the password.
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
        return Err(ParseError::Unknown { name: name.to_string(), suggestion: closest(name).map(str::to_string) });
    };
    (spec.parse)(&Args { spec, rest }).map(Some)
}

/// Where plain text goes, or what a mute applies to: a room or a user.
enum Target {
    Room(String),
    User(String),
}

impl Target {
    /// `ROOM`, `#ROOM` or `@USER`.
    fn parse(word: &str) -> Option<Target> {
        if let Some(user) = word.strip_prefix('@') {
            (!user.is_empty()).then(|| Target::User(user.to_string()))
        } else {
            strip_room(word).map(Target::Room)
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

/// The arguments of one command, with its entry for usage errors.
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
            [] => Err(self.usage(format!("missing {}", self.spec.args_usage()))),
            _ => Err(self.usage(format!("expects one {}", self.spec.args_usage()))),
        }
    }

    fn rest(&self) -> Result<String, ParseError> {
        if self.rest.is_empty() {
            Err(self.usage(format!("missing {}", self.spec.args_usage())))
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

    fn room(command: RoomCommand) -> Command {
        Command::Room(command)
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
    fn the_table_is_well_formed() {
        for (i, spec) in COMMANDS.iter().enumerate() {
            assert!(!spec.name.is_empty() && spec.name.bytes().all(|b| b.is_ascii_lowercase()), "{}", spec.name);
            assert!(COMMANDS[..i].iter().all(|c| c.name != spec.name), "/{} twice", spec.name);
            assert_eq!(spec.example.split_whitespace().next(), Some(format!("/{}", spec.name).as_str()));
            for arg in spec.args {
                assert!(!arg.usage.is_empty() && !arg.usage.contains(char::is_whitespace), "{}", spec.usage());
            }
        }
    }

    #[test]
    fn every_command_in_the_table_parses_its_example() {
        for spec in COMMANDS {
            let parsed = parse(spec.example);
            assert!(matches!(parsed, Ok(Some(_))), "{} -> {parsed:?}", spec.example);
        }
    }

    #[test]
    fn usage_lines_come_from_the_arguments() {
        assert_eq!(spec("kick").unwrap().usage(), "/kick USER [ROOM]");
        assert_eq!(spec("msg").unwrap().usage(), "/msg USER TEXT");
        assert_eq!(spec("focus").unwrap().args_usage(), "ROOM|@USER");
        assert_eq!(spec("quit").unwrap().usage(), "/quit");
    }

    #[test]
    fn commands_with_arguments() {
        assert_eq!(ok("/login alice"), Command::Login { user: "alice".into() });
        assert_eq!(ok("/nick  Alice  W "), Command::Nick { nick: "Alice  W".into() });
        assert_eq!(ok("/join #lobby"), room(RoomCommand::Join("lobby".into())));
        assert_eq!(ok("/leave"), room(RoomCommand::Leave(None)));
        assert_eq!(ok("/rooms"), room(RoomCommand::List));
        assert_eq!(ok("/kick @bob #lobby"), room(RoomCommand::Kick { user: "bob".into(), room: Some("lobby".into()) }));
        assert_eq!(
            ok("/msg bob  hi  there "),
            Command::Direct(DirectCommand::Send { user: "bob".into(), text: "hi  there".into() })
        );
        assert_eq!(ok("/query @bob"), Command::Direct(DirectCommand::Query("bob".into())));
        assert_eq!(ok("/focus @bob"), Command::Direct(DirectCommand::Query("bob".into())));
        assert_eq!(ok("/focus #lobby"), room(RoomCommand::Focus("lobby".into())));
        assert_eq!(ok("/mute #lobby"), room(RoomCommand::Mute("#lobby".into())));
        assert_eq!(ok("/unmute bob"), room(RoomCommand::Unmute("#bob".into())));
        assert_eq!(ok("/unmute @bob"), room(RoomCommand::Unmute("@bob".into())));
        assert_eq!(ok("/history"), room(RoomCommand::History(None)));
        assert_eq!(ok("/history 20"), room(RoomCommand::History(Some(20))));
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
        assert_eq!(e.to_string(), "usage: /login NAME: missing NAME");
        assert_eq!(err("/login a b").to_string(), "usage: /login NAME: expects one NAME");
        assert_eq!(err("/nick").to_string(), "usage: /nick NICKNAME: missing NICKNAME");
        assert_eq!(err("/msg bob").to_string(), "usage: /msg USER TEXT: missing TEXT");
        assert_eq!(err("/msg").to_string(), "usage: /msg USER TEXT: missing USER and TEXT");
        assert_eq!(err("/quit now").to_string(), "usage: /quit: takes no arguments");
        assert_eq!(err("/kick").to_string(), "usage: /kick USER [ROOM]: missing USER");
        assert_eq!(err("/help a b").to_string(), "usage: /help [COMMAND]: expects at most one argument");
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
    fn lookup_by_name_ignores_case_and_slash() {
        assert_eq!(spec("/Kick").map(|s| s.name), Some("kick"));
        assert!(spec("nope").is_none());
    }

    #[test]
    fn the_overview_lists_every_command() {
        let text = help_overview();
        assert!(text.starts_with("Commands (text without a leading / goes to the focused room or user):\n"));
        assert!(text.contains("\n  /kick USER [ROOM]  "), "{text}");
        for spec in COMMANDS {
            assert!(text.contains(&format!("{}  ", spec.usage())), "missing {}", spec.name);
            assert!(text.contains(spec.summary), "missing {}", spec.name);
        }
        assert!(text.ends_with("\n/help COMMAND explains one command."));
    }

    #[test]
    fn help_for_a_command_shows_usage_and_example() {
        let UiEvent::Info { message } = help_for("kick") else { panic!("expected info") };
        assert!(message.starts_with("/kick USER [ROOM]"));
        assert!(message.contains("example: /kick mallory lobby"));
        let UiEvent::Error { code, message, .. } = help_for("kik") else { panic!("expected error") };
        assert_eq!(code, ErrorCode::InvalidCommand);
        assert!(message.contains("did you mean /kick?"), "{message}");
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
                    if let Command::Say(text) = &command {
                        prop_assert!(!text.trim().is_empty());
                        prop_assert!(!bare.starts_with('/') || bare.starts_with("//"));
                    } else {
                        prop_assert!(spec(bare.split_whitespace().next().unwrap_or("")).is_some());
                    }
                    match &command {
                        Command::Register { user: word }
                        | Command::Login { user: word }
                        | Command::Rename { new: word }
                        | Command::Room(RoomCommand::Create(word) | RoomCommand::Join(word))
                        | Command::Direct(DirectCommand::Query(word)) => {
                            prop_assert!(!word.is_empty() && !word.contains(char::is_whitespace), "{:?}", command);
                        }
                        Command::Direct(DirectCommand::Send { user, text }) => {
                            prop_assert!(!user.is_empty() && !user.contains(char::is_whitespace));
                            prop_assert!(!text.trim().is_empty());
                        }
                        Command::Room(RoomCommand::History(Some(n))) | Command::Open { link: n } => prop_assert!(*n > 0),
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
            let _ = parse(&line);
        }
    }
}
