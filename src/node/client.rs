//! [`Client`]: the cheap, cloneable handle through which the rest of the program talks to the
//! node's event loop. Each method sends one request and awaits its answer on a oneshot channel.
//! What a command changes is also reported as [`UiEvent`]s on the node's event stream.

use tokio::sync::{mpsc, oneshot};

use super::event::{CommandError, MemberView, OnlineUser, RoomEncryption, RoomSummary, SearchResult, Status, UiEvent};
use crate::protocol::auth::AuthRequest;

/// The answer to a command that either works or says why not.
pub(crate) type Done = oneshot::Sender<Result<(), CommandError>>;

/// A request to the event loop, with the channel for its answer.
#[derive(Debug)]
pub(crate) enum Request {
    Status {
        reply: oneshot::Sender<Status>,
    },
    /// Register, log in or rename through the bootstrap node.
    Account {
        request: AuthRequest,
        reply: Done,
    },
    Logout {
        reply: Done,
    },
    /// Confirm a bootstrap key (hex digits: the whole key or a prefix of a key seen).
    Trust {
        key: String,
        reply: Done,
    },
    Nick {
        nick: String,
        reply: Done,
    },
    Who {
        reply: oneshot::Sender<Result<Vec<OnlineUser>, CommandError>>,
    },
    Room {
        command: RoomCommand,
        reply: oneshot::Sender<Result<RoomReply, CommandError>>,
    },
    Direct {
        command: DirectCommand,
        reply: Done,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// A room command. A room of `None` means the focused room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomCommand {
    Create(String),
    Join(String),
    Leave(Option<String>),
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
    Members(Option<String>),
    List,
    Focus(String),
    /// `#room` or `@user`.
    Mute(String),
    Unmute(String),
    History(Option<usize>),
    /// `/history around N`: the messages around result `N` of the last search.
    HistoryAround(usize),
    /// `/search`.
    Search(crate::search::SearchLine),
    /// Text for the focused room.
    Say(String),
    /// Text for a named room.
    Send {
        room: String,
        text: String,
    },
}

/// A direct-message command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectCommand {
    /// `/msg USER TEXT`.
    Send { user: String, text: String },
    /// `/query USER`, `/focus @USER`: plain text goes to this user from now on.
    Query(String),
}

/// What a room command answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomReply {
    Done,
    Members {
        room: String,
        members: Vec<MemberView>,
        encryption: RoomEncryption,
    },
    Rooms(Vec<RoomSummary>),
    /// `message` or `dm` events, oldest first.
    History {
        target: String,
        messages: Vec<UiEvent>,
    },
    Search {
        query: String,
        results: Vec<SearchResult>,
        more: bool,
    },
}

/// A handle to a running node.
#[derive(Debug, Clone)]
pub struct Client {
    requests: mpsc::Sender<Request>,
}

impl Client {
    pub(crate) fn new(requests: mpsc::Sender<Request>) -> Self {
        Client { requests }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> Result<T, CommandError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(make(reply)).await.map_err(|_| CommandError::stopped())?;
        answer.await.map_err(|_| CommandError::stopped())
    }

    /// A snapshot of the node.
    pub async fn status(&self) -> Result<Status, CommandError> {
        self.ask(|reply| Request::Status { reply }).await
    }

    /// Creates an account and logs in.
    pub async fn register(&self, username: &str, password: &str) -> Result<(), CommandError> {
        let request = AuthRequest::Register { username: username.into(), password: password.into() };
        self.ask(|reply| Request::Account { request, reply }).await?
    }

    /// Logs in.
    pub async fn login(&self, username: &str, password: &str) -> Result<(), CommandError> {
        let request = AuthRequest::Login { username: username.into(), password: password.into() };
        self.ask(|reply| Request::Account { request, reply }).await?
    }

    /// Changes the username.
    pub async fn rename(&self, new_username: &str) -> Result<(), CommandError> {
        let request = AuthRequest::Rename { new_username: new_username.into() };
        self.ask(|reply| Request::Account { request, reply }).await?
    }

    /// Trusts the bootstrap key `key`: its 64 hex digits, or a prefix of at least 8 of exactly
    /// one unconfirmed key seen. It is pinned; a `bootstrap` event `trusted` follows.
    pub async fn trust(&self, key: &str) -> Result<(), CommandError> {
        let key = key.to_string();
        self.ask(|reply| Request::Trust { key, reply }).await?
    }

    /// Logs out.
    pub async fn logout(&self) -> Result<(), CommandError> {
        self.ask(|reply| Request::Logout { reply }).await?
    }

    /// Changes the display nickname.
    pub async fn nick(&self, nick: &str) -> Result<(), CommandError> {
        let nick = nick.to_string();
        self.ask(|reply| Request::Nick { nick, reply }).await?
    }

    /// The users online, this one included.
    pub async fn who(&self) -> Result<Vec<OnlineUser>, CommandError> {
        self.ask(|reply| Request::Who { reply }).await?
    }

    /// Carries out a room command.
    pub async fn room(&self, command: RoomCommand) -> Result<RoomReply, CommandError> {
        self.ask(|reply| Request::Room { command, reply }).await?
    }

    /// Creates a room (this user becomes its admin) and focuses it.
    pub async fn create_room(&self, room: &str) -> Result<(), CommandError> {
        self.room(RoomCommand::Create(room.into())).await.map(drop)
    }

    /// Joins a room and focuses it.
    pub async fn join_room(&self, room: &str) -> Result<(), CommandError> {
        self.room(RoomCommand::Join(room.into())).await.map(drop)
    }

    /// Sends `text` to `room`.
    pub async fn send_to_room(&self, room: &str, text: &str) -> Result<(), CommandError> {
        self.room(RoomCommand::Send { room: room.into(), text: text.into() }).await.map(drop)
    }

    /// Carries out a direct-message command.
    pub async fn direct(&self, command: DirectCommand) -> Result<(), CommandError> {
        self.ask(|reply| Request::Direct { command, reply }).await?
    }

    /// Sends a direct message to `user` (it waits in the outbox while `user` is offline).
    pub async fn send_dm(&self, user: &str, text: &str) -> Result<(), CommandError> {
        self.direct(DirectCommand::Send { user: user.into(), text: text.into() }).await
    }

    /// Stops the node and waits until its connections are closed. Stopping a stopped node is
    /// not an error.
    pub async fn shutdown(&self) {
        let _ = self.ask(|reply| Request::Shutdown { reply }).await;
    }
}
