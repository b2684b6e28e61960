//! The front-end's dispatcher: takes input lines, parses them with [`super::command`], carries
//! them out through the node's [`Client`], and turns every answer into a [`UiEvent`] on the same
//! event channel the node reports on. Used by the REPL and the stdin line reader alike.

use tokio::sync::mpsc;

use super::command::{self, Command, ParseError};
use super::links::SharedLinks;
use crate::node::{Client, CommandError, ErrorCode, RoomCommand, RoomReply, UiEvent};

/// What an input source yields: a line, or the fact that a line was too long to keep.
pub type InputLine = Result<String, ParseError>;

/// Whether the front-end should keep reading input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// `/register NAME` or `/login NAME` waiting for its password line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AwaitingPassword {
    register: bool,
    user: String,
}

/// Whether the line after `command` is a password (never parsed, never kept in history).
pub fn password_follows(command: &Command) -> bool {
    matches!(command, Command::Register { .. } | Command::Login { .. })
}

/// Carries out the user's commands.
#[derive(Debug)]
pub struct App {
    client: Client,
    events: mpsc::Sender<UiEvent>,
    awaiting_password: Option<AwaitingPassword>,
    /// The links the renderer numbered, for `/open N`.
    links: SharedLinks,
}

impl App {
    /// An app for the node behind `client`, reporting on `events`.
    pub fn new(client: Client, events: mpsc::Sender<UiEvent>) -> Self {
        App { client, events, awaiting_password: None, links: SharedLinks::default() }
    }

    /// Opens links from `links` (the book the renderer numbers them in) on `/open N`.
    pub fn with_links(mut self, links: SharedLinks) -> Self {
        self.links = links;
        self
    }

    async fn emit(&self, event: UiEvent) {
        let _ = self.events.send(event).await;
    }

    /// Handles one input line.
    pub async fn handle_input(&mut self, input: InputLine) -> Flow {
        if let Some(awaiting) = self.awaiting_password.take() {
            match input {
                Ok(password) => self.submit_password(awaiting, password.trim_end_matches(['\r', '\n'])).await,
                Err(error) => self.emit(UiEvent::error(error.code(), error.to_string())).await,
            }
            return Flow::Continue;
        }
        match input.and_then(|line| command::parse(&line)) {
            Ok(Some(command)) => self.run(command).await,
            Ok(None) => Flow::Continue,
            Err(error) => {
                self.emit(UiEvent::error(error.code(), error.to_string())).await;
                Flow::Continue
            }
        }
    }

    /// Carries out one command of the table (`command.rs`); here is the one place each is run.
    async fn run(&mut self, command: Command) -> Flow {
        match command {
            Command::Quit => return Flow::Quit,
            Command::Help { command: None } => self.emit(UiEvent::info(command::help_overview())).await,
            Command::Help { command: Some(name) } => self.emit(command::help_for(&name)).await,
            Command::Status => {
                let event = match self.client.status().await {
                    Ok(status) => UiEvent::Status(status),
                    Err(error) => error.to_event(),
                };
                self.emit(event).await;
            }
            Command::Who => {
                let event = match self.client.who().await {
                    Ok(users) => UiEvent::Online { users },
                    Err(error) => error.to_event(),
                };
                self.emit(event).await;
            }
            Command::Register { user } => self.awaiting_password = Some(AwaitingPassword { register: true, user }),
            Command::Login { user } => self.awaiting_password = Some(AwaitingPassword { register: false, user }),
            Command::Trust { key } => self.report(self.client.trust(&key).await).await,
            Command::Logout => self.report(self.client.logout().await).await,
            Command::Rename { new } => self.report(self.client.rename(&new).await).await,
            Command::Nick { nick } => self.report(self.client.nick(&nick).await).await,
            Command::Say(text) => self.room(RoomCommand::Say(text)).await,
            Command::Room(command) => self.room(command).await,
            Command::Direct(command) => self.report(self.client.direct(command).await).await,
            Command::Open { link } => self.open_link(link).await,
        }
        Flow::Continue
    }
}

impl App {
    async fn submit_password(&mut self, awaiting: AwaitingPassword, password: &str) {
        let result = if awaiting.register {
            self.client.register(&awaiting.user, password).await
        } else {
            self.client.login(&awaiting.user, password).await
        };
        self.report(result).await;
    }

    /// Carries out a room command; answers that carry data become their events.
    async fn room(&self, command: RoomCommand) {
        let event = match self.client.room(command).await {
            Ok(RoomReply::Done) => return,
            Ok(RoomReply::Members { room, members, encryption }) => UiEvent::Members { room, members, encryption },
            Ok(RoomReply::Rooms(rooms)) => UiEvent::Rooms { rooms },
            Ok(RoomReply::History { target, messages }) => UiEvent::History { target, messages },
            Ok(RoomReply::Search { query, results, more }) => UiEvent::Search { query, results, more },
            Err(error) => error.to_event(),
        };
        self.emit(event).await;
    }

    /// Success is reported by the node's own events; a failure becomes an `error` event.
    async fn report(&self, result: Result<(), CommandError>) {
        if let Err(error) = result {
            self.emit(error.to_event()).await;
        }
    }
}

impl App {
    /// `/open N`: link number N in the browser, without waiting for the browser.
    async fn open_link(&self, n: usize) {
        let url = self.links.lock().get(n).map(str::to_string);
        let event = match url {
            None => {
                UiEvent::error(ErrorCode::Usage, format!("usage: /open N: {}", no_link(n, self.links.lock().last())))
            }
            Some(url) => {
                let shown = url.clone();
                match tokio::task::spawn_blocking(move || open::that_detached(&url)).await {
                    Ok(Ok(())) => UiEvent::info(format!("opening [{n}] {shown}")),
                    Ok(Err(e)) => {
                        UiEvent::error(ErrorCode::Unavailable, format!("cannot start a browser for [{n}] {shown}: {e}"))
                    }
                    Err(e) => UiEvent::error(ErrorCode::Internal, format!("cannot start a browser: {e}")),
                }
            }
        };
        self.emit(event).await;
    }
}

/// Why `/open n` has nothing to open, given the number of the latest link.
fn no_link(n: usize, last: usize) -> String {
    if last == 0 {
        return format!("there is no link [{n}]; no links have been shown yet");
    }
    let first = last.saturating_sub(super::links::KEPT_LINKS - 1).max(1);
    if first == last {
        format!("there is no link [{n}]; the only link is [{last}]")
    } else {
        format!("there is no link [{n}]; the links are [{first}] to [{last}]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_links_say_which_exist() {
        assert_eq!(no_link(3, 0), "there is no link [3]; no links have been shown yet");
        assert_eq!(no_link(3, 1), "there is no link [3]; the only link is [1]");
        assert_eq!(no_link(1, 150), "there is no link [1]; the links are [51] to [150]");
    }
}
