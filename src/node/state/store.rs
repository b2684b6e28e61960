//! The event loop's handle on the node database: the queue of jobs for the store worker (the
//! thread that owns the connection, `node/store_worker.rs`) and what comes back from it. A job
//! is a function of the store, run on that thread in the order queued, inside one transaction
//! with the jobs queued beside it; what it returns ([`Done`]) comes back to the loop once that
//! transaction is committed, in a [`Written`], and the loop takes it as an input. A read queued
//! after a write sees it.
//!
//! Data only: this module holds no thread, never touches a connection itself, and never decides
//! what to write (the adapters do, from what the engines output).

use std::sync::mpsc;

use libp2p::PeerId;

use crate::account::AccountId;
use crate::dm::{Channel, Received, StoredDm};
use crate::node::client::RoomReply;
use crate::node::event::{ChatMessage, CommandError};
use crate::room::EventId;
use crate::room::event::SignedEvent;
use crate::store::{NodeStore, Session, StoreError, StoredMessage};

use super::direct::Sender;
use super::rooms::{Paging, RoomDone};

/// What the node reads of its database once, before the worker takes the connection and the
/// loop starts: what it keeps in memory from then on.
pub(crate) struct Loaded {
    pub(crate) room_events: Vec<Vec<u8>>,
    pub(crate) mutes: Vec<String>,
    pub(crate) session: Result<Option<Session>, String>,
    pub(crate) labels: Vec<(AccountId, String, u64)>,
    pub(crate) nicknames: Vec<(AccountId, String)>,
    /// The highest number kept from each peer in each room.
    pub(crate) streams: Vec<(EventId, PeerId, u64)>,
    /// The number of the last direct message each owner wrote in each conversation.
    pub(crate) dm_numbers: Vec<(AccountId, AccountId, u64)>,
}

impl Loaded {
    /// Reads it all from `store`; what cannot be read is logged and starts empty.
    pub(crate) fn read(store: &NodeStore) -> Loaded {
        fn or_empty<T>(what: &str, read: Result<Vec<T>, StoreError>) -> Vec<T> {
            read.unwrap_or_else(|error| {
                tracing::error!(%error, "cannot read {what}");
                Vec::new()
            })
        }
        let streams = or_empty("the message numbers kept", store.message_streams())
            .into_iter()
            .filter_map(|(room, peer, seq)| Some((room, PeerId::from_bytes(&peer).ok()?, seq)))
            .collect();
        Loaded {
            room_events: or_empty("the rooms", store.room_events()),
            mutes: or_empty("the mutes", store.mutes()),
            session: store.session().map_err(|e| e.to_string()),
            labels: or_empty("the accounts seen", store.labels()),
            nicknames: or_empty("the nicknames", store.nicknames()),
            streams,
            dm_numbers: or_empty("the direct messages' numbers", store.dm_numbers()),
        }
    }
}

/// A job for the store worker: runs there on the store, inside the batch's transaction.
pub(crate) type Job = Box<dyn FnOnce(&NodeStore) -> Option<Done> + Send>;

/// A room message taken in, as the adapter shows it once it is kept.
#[derive(Debug)]
pub(crate) struct TakenMessage {
    pub(crate) id: EventId,
    pub(crate) room: EventId,
    pub(crate) peer: PeerId,
    pub(crate) seq: u64,
    pub(crate) message: ChatMessage,
    pub(crate) shown_as: ShownAs,
}

/// How a room message taken in is shown once kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShownAs {
    /// This node's own: shown at once.
    Own,
    /// Heard live: shown in its sender's order.
    Live,
    /// Handed over or from a catch-up: shown when `show`, and its sender's stream moves on.
    Fetched { show: bool },
}

/// What a job hands back to the loop.
pub(crate) enum Done {
    /// A write the user asked for failed: they are told.
    Failed(String),
    /// A room message was kept (`new`: it was not kept before).
    Message { taken: Box<TakenMessage>, new: bool },
    /// The marks of a catch-up's first page were read into `paging`: the request can go.
    FirstPage { peer: PeerId, paging: Box<Paging>, join: Option<Box<SignedEvent>> },
    /// A room's recent messages, for `/history` of the room labelled `target`.
    History { target: String, reply: RoomDone, messages: Result<Vec<StoredMessage>, StoreError> },
    /// A command's answer, made on the worker.
    Reply { reply: RoomDone, answer: Result<RoomReply, CommandError> },
    /// Message `id` this user wrote was kept (`error`: why not).
    DmKept { id: String, error: Option<String> },
    /// A message received from `sender` (number `seq`, id `id`) was kept (`ok`), and its
    /// request, held as `channel`, can be answered.
    DmKeptReceived { channel: Channel, ok: bool, sender: Sender, seq: u64, id: String },
    /// The oldest message waiting for `to`.
    DmOldest { to: AccountId, dm: Result<Option<StoredDm>, String> },
    /// Whom messages wait for (`None`: it could not be read).
    DmWaiting(Option<Vec<AccountId>>),
    /// What the database knows of a request's sender and id, read into it.
    DmSeen(Box<Received>),
    /// Everything queued before the catch-up answer of `ticket` is committed: it can be read.
    Committed { ticket: u64 },
}

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Done::Failed(why) => write!(f, "Failed({why})"),
            Done::Message { taken, new } => write!(f, "Message({}, {new})", taken.message.id),
            Done::FirstPage { paging, .. } => write!(f, "FirstPage({})", paging.room),
            Done::History { target, .. } => write!(f, "History({target})"),
            Done::Reply { .. } => f.write_str("Reply"),
            Done::Committed { ticket } => write!(f, "Committed({ticket})"),
            Done::DmKept { id, error } => write!(f, "DmKept({id}, {error:?})"),
            Done::DmKeptReceived { id, ok, .. } => write!(f, "DmKeptReceived({id}, {ok})"),
            Done::DmOldest { to, .. } => write!(f, "DmOldest({to})"),
            Done::DmWaiting(waiting) => write!(f, "DmWaiting({waiting:?})"),
            Done::DmSeen(received) => write!(f, "DmSeen({})", received.request.id),
        }
    }
}

/// What a batch of jobs gave back, and whether its transaction was committed.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) dones: Vec<Done>,
    pub(crate) committed: bool,
}

/// The loop's end of the queue to the store worker.
#[derive(Clone)]
pub(crate) struct StoreHandle {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreHandle")
    }
}

impl StoreHandle {
    pub(crate) fn new(jobs: mpsc::Sender<Job>) -> StoreHandle {
        StoreHandle { jobs }
    }

    /// Queues `job`; what it returns comes back once committed.
    pub(crate) fn run(&self, job: impl FnOnce(&NodeStore) -> Option<Done> + Send + 'static) {
        if self.jobs.send(Box::new(job)).is_err() {
            tracing::error!("the store worker is gone: a write or read is lost");
        }
    }

    /// Queues a write whose failure is logged as `what`.
    pub(crate) fn write(
        &self,
        what: &'static str,
        write: impl FnOnce(&NodeStore) -> Result<(), StoreError> + Send + 'static,
    ) {
        self.run(move |store| {
            if let Err(error) = write(store) {
                tracing::error!(%error, "cannot {what}");
            }
            None
        });
    }

    /// Queues a write whose failure the user is told of, as `what`.
    pub(crate) fn write_or_tell(
        &self,
        what: &'static str,
        write: impl FnOnce(&NodeStore) -> Result<(), StoreError> + Send + 'static,
    ) {
        self.run(move |store| {
            write(store).err().map(|error| {
                tracing::error!(%error, "cannot {what}");
                Done::Failed(format!("cannot {what}: {error}"))
            })
        });
    }
}
