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
use crate::pinned_key::{KEY_DIGITS, MIN_PREFIX_DIGITS};

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
    /// Example invocations, the simplest first.
    pub examples: &'static [&'static str],
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
        examples: &["/register alice"],
        parse: |a| Ok(Command::Register { user: a.one()? }),
    },
    CommandSpec {
        name: "login",
        args: &[NAME],
        summary: "log in (then type the password)",
        examples: &["/login alice"],
        parse: |a| Ok(Command::Login { user: a.one()? }),
    },
    CommandSpec {
        name: "logout",
        args: &[],
        summary: "log out; your rooms wait for your next login",
        examples: &["/logout"],
        parse: |a| a.none(Command::Logout),
    },
    CommandSpec {
        name: "rename",
        args: &[arg("NEWNAME", ArgKind::Free)],
        summary: "change your unique username",
        examples: &["/rename alice2"],
        parse: |a| Ok(Command::Rename { new: a.one()? }),
    },
    CommandSpec {
        name: "nick",
        args: &[arg("NICKNAME", ArgKind::Free)],
        summary: "change the nickname others see beside your username",
        examples: &["/nick Alice in Wonderland"],
        parse: |a| Ok(Command::Nick { nick: a.rest()? }),
    },
    CommandSpec {
        name: "who",
        args: &[],
        summary: "list the users online",
        examples: &["/who"],
        parse: |a| a.none(Command::Who),
    },
    CommandSpec {
        name: "rooms",
        args: &[],
        summary: "list the rooms with their member counts",
        examples: &["/rooms"],
        parse: |a| a.none(Command::Room(RoomCommand::List)),
    },
    CommandSpec {
        name: "create",
        args: &[ROOM],
        summary: "create a room (you become its admin) and focus it",
        examples: &["/create lobby"],
        parse: |a| Ok(Command::Room(RoomCommand::Create(a.room()?))),
    },
    CommandSpec {
        name: "join",
        args: &[ROOM],
        summary: "join a room and focus it",
        examples: &["/join lobby"],
        parse: |a| Ok(Command::Room(RoomCommand::Join(a.room()?))),
    },
    CommandSpec {
        name: "leave",
        args: &[OPTIONAL_ROOM],
        summary: "leave a room (default: the focused one)",
        examples: &["/leave lobby"],
        parse: |a| Ok(Command::Room(RoomCommand::Leave(a.optional_room()?))),
    },
    CommandSpec {
        name: "members",
        args: &[OPTIONAL_ROOM],
        summary: "list a room's members in join order, admins marked",
        examples: &["/members lobby"],
        parse: |a| Ok(Command::Room(RoomCommand::Members(a.optional_room()?))),
    },
    CommandSpec {
        name: "kick",
        args: &[USER, OPTIONAL_ROOM],
        summary: "remove a member (admins only)",
        examples: &["/kick mallory lobby"],
        parse: |a| a.user_and_room().map(|(user, room)| Command::Room(RoomCommand::Kick { user, room })),
    },
    CommandSpec {
        name: "ban",
        args: &[USER, OPTIONAL_ROOM],
        summary: "remove a member and keep them out (admins only)",
        examples: &["/ban mallory lobby"],
        parse: |a| a.user_and_room().map(|(user, room)| Command::Room(RoomCommand::Ban { user, room })),
    },
    CommandSpec {
        name: "unban",
        args: &[USER, OPTIONAL_ROOM],
        summary: "let a banned user join again (admins only)",
        examples: &["/unban mallory lobby"],
        parse: |a| a.user_and_room().map(|(user, room)| Command::Room(RoomCommand::Unban { user, room })),
    },
    CommandSpec {
        name: "op",
        args: &[USER, OPTIONAL_ROOM],
        summary: "make a member admin (admins only)",
        examples: &["/op bob lobby"],
        parse: |a| a.user_and_room().map(|(user, room)| Command::Room(RoomCommand::Op { user, room })),
    },
    CommandSpec {
        name: "msg",
        args: &[USER, arg("TEXT", ArgKind::Text)],
        summary: "send a private message",
        examples: &["/msg bob see you at noon"],
        parse: |a| a.user_and_text().map(|(user, text)| Command::Direct(DirectCommand::Send { user, text })),
    },
    CommandSpec {
        name: "query",
        args: &[USER],
        summary: "focus a private conversation: plain text goes there",
        examples: &["/query bob"],
        parse: |a| Ok(Command::Direct(DirectCommand::Query(a.user()?))),
    },
    CommandSpec {
        name: "focus",
        args: &[TARGET],
        summary: "choose where plain text goes",
        examples: &["/focus @bob"],
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
        examples: &["/mute lobby"],
        parse: |a| Ok(Command::Room(RoomCommand::Mute(a.target()?.to_string()))),
    },
    CommandSpec {
        name: "unmute",
        args: &[TARGET],
        summary: "turn notifications on again",
        examples: &["/unmute @bob"],
        parse: |a| Ok(Command::Room(RoomCommand::Unmute(a.target()?.to_string()))),
    },
    CommandSpec {
        name: "history",
        args: &[arg("[around]", ArgKind::Free), arg("[N]", ArgKind::Free)],
        summary: "show the last N messages where you are focused, or those around search result N",
        examples: &["/history 50", "/history around 3"],
        parse: |a| match a.words().as_slice() {
            ["around", _] => Ok(Command::Room(RoomCommand::HistoryAround(a.after_first().count()?))),
            ["around"] => Err(a.usage("around which search result? e.g. /history around 3")),
            _ => Ok(Command::Room(RoomCommand::History(a.optional_count()?))),
        },
    },
    CommandSpec {
        name: "search",
        args: &[arg("WORDS", ArgKind::Text), arg("[#ROOM|@USER]", ArgKind::RoomOrUser)],
        summary: "search your rooms and conversations: word, prefix*, \"a phrase\", from:NAME; 20 results at a time",
        examples: &[
            "/search deploy",
            "/search deploy* from:alice #ops",
            "/search \"release notes\" @bob",
            "/search more",
        ],
        parse: |a| match crate::search::SearchLine::parse(a.rest) {
            Ok(line) => Ok(Command::Room(RoomCommand::Search(line))),
            Err(e) => Err(a.usage(e.to_string())),
        },
    },
    CommandSpec {
        name: "open",
        args: &[arg("N", ArgKind::Free)],
        summary: "open link number N in the browser",
        examples: &["/open 2"],
        parse: |a| Ok(Command::Open { link: a.count()? }),
    },
    CommandSpec {
        name: "status",
        args: &[],
        summary: "show this node: peer id, user, peers, bootstrap, rooms",
        examples: &["/status"],
        parse: |a| a.none(Command::Status),
    },
    CommandSpec {
        name: "trust",
        args: &[arg("KEY", ArgKind::Key)],
        summary: "confirm the bootstrap node's key: its 64 hex digits, or a unique prefix of at least 8",
        examples: &["/trust 3f2a9c01"],
        parse: |a| Ok(Command::Trust { key: a.key()? }),
    },
    CommandSpec {
        name: "help",
        args: &[arg("[COMMAND]", ArgKind::Command)],
        summary: "list the commands, or explain one",
        examples: &["/help kick"],
        parse: |a| Ok(Command::Help { command: a.optional_word()?.map(|c| c.trim_start_matches('/').to_string()) }),
    },
    CommandSpec {
        name: "quit",
        args: &[],
        summary: "leave meshchat (your rooms wait for your next login)",
        examples: &["/quit"],
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
        Some(spec) => {
            let examples = match spec.examples {
                [one] => format!("example: {one}"),
                many => format!("examples:\n    {}", many.join("\n    ")),
            };
            UiEvent::info(format!("{}\n  {}\n  {examples}", spec.usage(), spec.summary))
        }
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

    /// The arguments after the first word.
    fn after_first(&self) -> Args<'_> {
        let rest = self.rest.split_once(char::is_whitespace).map_or("", |(_, rest)| rest.trim());
        Args { spec: self.spec, rest }
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

    /// A bootstrap key or a prefix of one: hex digits, as many as [`crate::pinned_key`] takes.
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
mod tests;
