//! [`Client`]: the cheap, cloneable handle through which the rest of the program talks to the
//! node's event loop. Each method sends one request and awaits its answer on a oneshot channel.
//! What a command changes is also reported as [`crate::ui::UiEvent`]s on the node's event stream.

use tokio::sync::{mpsc, oneshot};

use super::CommandError;
use crate::protocol::auth::AuthRequest;
use crate::ui::{OnlineUser, Status};

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
    Nick {
        nick: String,
        reply: Done,
    },
    Who {
        reply: oneshot::Sender<Result<Vec<OnlineUser>, CommandError>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
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

    /// Stops the node and waits until its connections are closed. Stopping a stopped node is
    /// not an error.
    pub async fn shutdown(&self) {
        let _ = self.ask(|reply| Request::Shutdown { reply }).await;
    }
}
