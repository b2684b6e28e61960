//! [`Client`]: the cheap, cloneable handle through which the rest of the program talks to the
//! node's event loop. Each method sends one request and awaits its answer on a oneshot channel.

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::ui::Status;

/// A request to the event loop, with the channel for its answer.
#[derive(Debug)]
pub(crate) enum Request {
    Status { reply: oneshot::Sender<Status> },
    Shutdown { reply: oneshot::Sender<()> },
}

/// The node is gone.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ClientError {
    #[error("the node has stopped")]
    Stopped,
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

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(make(reply))
            .await
            .map_err(|_| ClientError::Stopped)?;
        answer.await.map_err(|_| ClientError::Stopped)
    }

    /// A snapshot of the node.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.ask(|reply| Request::Status { reply }).await
    }

    /// Stops the node and waits until its connections are closed. Stopping a stopped node is
    /// not an error.
    pub async fn shutdown(&self) {
        let _ = self.ask(|reply| Request::Shutdown { reply }).await;
    }
}
