//! The event loop's handle on the node database: the queue of jobs for the store worker (the
//! thread that owns the connection, `node/store_worker.rs`) and what comes back from it. A job
//! is a function of the store, run on that thread in the order queued, inside one transaction
//! with the jobs queued beside it; what it returns ([`Done`]) comes back to the loop once that
//! transaction is committed, in a [`Written`], and the loop takes it as an input. A read queued
//! after a write sees it. A job someone waits for is done at once; this node's own message,
//! which its user waits to see, within [`SHOWN_WITHIN`]; one nobody waits for (a write, a
//! message already shown) is written behind, up to [`WRITE_BEHIND`] later; each with those that
//! come meanwhile: under a stream of messages, one commit carries many.
//!
//! Data only: this module holds no thread, never touches a connection itself, and never decides
//! what to write (the adapters do, from what the engines output).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use libp2p::PeerId;

use crate::account::AccountId;
use crate::dm::{Channel, Received, StoredDm};
use crate::e2e::RoomKey;
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
    /// With the rows they were kept in.
    pub(crate) room_events: Vec<(u64, Vec<u8>)>,
    pub(crate) mutes: Vec<String>,
    pub(crate) session: Result<Option<Session>, String>,
    pub(crate) labels: Vec<(AccountId, String, u64)>,
    pub(crate) nicknames: Vec<(AccountId, String)>,
    /// The highest number kept from each peer in each room.
    pub(crate) streams: Vec<(EventId, PeerId, u64)>,
    /// The number of the last direct message each owner wrote in each conversation.
    pub(crate) dm_numbers: Vec<(AccountId, AccountId, u64)>,
    /// The keys of group sessions kept.
    pub(crate) room_keys: Vec<RoomKey>,
    /// The peer of each account's newest certificate seen, with its serial.
    pub(crate) account_peers: Vec<(AccountId, Vec<u8>, u64)>,
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
            room_events: or_empty("the rooms", store.room_events_in_rows()),
            mutes: or_empty("the mutes", store.mutes()),
            session: store.session().map_err(|e| e.to_string()),
            labels: or_empty("the accounts seen", store.labels()),
            nicknames: or_empty("the nicknames", store.nicknames()),
            streams,
            dm_numbers: or_empty("the direct messages' numbers", store.dm_numbers()),
            room_keys: or_empty("the room keys", store.room_keys()),
            account_peers: or_empty("the accounts' peers", store.account_peers()),
        }
    }
}

/// How long a job nobody waits for waits for others to share its transaction. A commit costs
/// far more than the rows in it (each page changed is written to the log whole, and the search
/// index writes a segment), so under a stream of messages this sets most of what storing costs:
/// about 90 µs of the store worker's CPU per message kept at 20 ms, 30 µs at 100 ms, in the
/// suite's room of 8 (a message every 5 ms). A message heard live is shown before it is written,
/// so this is also how much of the latest history a node that crashes loses; its peers give it
/// back at the next catch-up.
pub(crate) const WRITE_BEHIND: Duration = Duration::from_millis(100);
/// How long this node's own message, shown once written, waits for others to share its
/// transaction.
pub(crate) const SHOWN_WITHIN: Duration = Duration::from_millis(20);

/// What a job does on the store, inside the batch's transaction.
pub(crate) type Work = Box<dyn FnOnce(&NodeStore) -> Option<Done> + Send>;

/// A job for the store worker.
pub(crate) struct Job {
    pub(crate) work: Work,
    pub(crate) due: Due,
}

/// By when a job's transaction is to be committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Someone waits for it: at once, with what is queued.
    Now,
    /// Someone waits to see it: by then, with what comes meanwhile.
    By(Instant),
    /// Nobody waits for it: within [`WRITE_BEHIND`], with what comes meanwhile.
    Behind,
}

impl Job {
    pub(crate) fn urgent(&self) -> bool {
        self.due == Due::Now
    }

    /// When it is due, if by a time.
    pub(crate) fn by(&self) -> Option<Instant> {
        match self.due {
            Due::By(at) => Some(at),
            Due::Now | Due::Behind => None,
        }
    }
}

/// The earliest of `until` and the times the `jobs` are due by.
pub(crate) fn earliest<'j>(until: Instant, jobs: impl IntoIterator<Item = &'j Job>) -> Instant {
    jobs.into_iter().filter_map(Job::by).fold(until, Instant::min)
}

/// A room message taken in, as the adapter shows it once it is kept.
#[derive(Debug)]
pub(crate) struct TakenMessage {
    pub(crate) id: EventId,
    pub(crate) room: EventId,
    pub(crate) peer: PeerId,
    pub(crate) seq: u64,
    pub(crate) message: ChatMessage,
    pub(crate) shown_as: ShownAs,
    /// This copy noted the message as waiting for its key (the note is this copy's to drop
    /// when the store says the message was kept before).
    pub(crate) noted_key_wait: bool,
}

/// How a room message taken in is shown once kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShownAs {
    /// This node's own: shown at once.
    Own,
    /// Heard live: shown in its sender's order.
    Live,
    /// Handed over or from a catch-up: shown when `show`, in its sender's order like one heard
    /// live; else its sender's stream moves on past it.
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
    /// What a catch-up page of `room` from `peer` brought is kept: the join it answers, or the
    /// catch-up if that was its last page.
    PageKept { peer: PeerId, room: EventId, join: Option<RoomDone>, ended: Option<Box<Paging>> },
    /// A command's answer, made on the worker.
    Reply { reply: RoomDone, answer: Result<RoomReply, CommandError> },
    /// Message `id` this user wrote was kept (`error`: why not).
    DmKept { id: String, error: Option<String> },
    /// A message received from `sender` (number `seq`, id `id`) was kept (`ok`; `known`: it was
    /// kept already), and its request, held as `channel`, can be answered.
    DmKeptReceived { channel: Channel, ok: bool, known: bool, sender: Sender, seq: u64, id: String },
    /// The oldest message waiting for `to`.
    DmOldest { to: AccountId, dm: Result<Option<StoredDm>, String> },
    /// Whom messages wait for (`None`: it could not be read).
    DmWaiting(Option<Vec<AccountId>>),
    /// What the database knows of a request's sender and id, read into it.
    DmSeen(Box<Received>),
    /// The messages of `room` sealed with `session` that could not be read, with their events.
    Sealed { room: EventId, session: String, rows: Vec<(StoredMessage, Vec<u8>)> },
    /// Everything queued before the catch-up answer of `ticket` is committed: it can be read.
    Committed { ticket: u64 },
    /// A search was run: one page of its results (`offset` shown before), or why not.
    Searched {
        reply: RoomDone,
        query: crate::search::SearchQuery,
        offset: usize,
        page: Result<(Vec<super::search::Hit>, bool), crate::node::CommandError>,
    },
    /// This node, as a mailbox, answers the request held as `channel`.
    MailboxAnswer { channel: u64, response: crate::protocol::mailbox::MailboxResponse },
    /// The session saved or forgotten is committed: what the session engine had to tell the
    /// user then.
    SessionSaved(Vec<crate::session::Output>),
}

impl std::fmt::Debug for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Done::Failed(why) => write!(f, "Failed({why})"),
            Done::Message { taken, new } => write!(f, "Message({}, {new})", taken.message.id),
            Done::FirstPage { paging, .. } => write!(f, "FirstPage({})", paging.room),
            Done::PageKept { room, ended, .. } => write!(f, "PageKept({room}, {})", ended.is_some()),
            Done::Reply { .. } => f.write_str("Reply"),
            Done::Committed { ticket } => write!(f, "Committed({ticket})"),
            Done::SessionSaved(held) => write!(f, "SessionSaved({})", held.len()),
            Done::Searched { query, offset, .. } => write!(f, "Searched({query}, {offset})"),
            Done::MailboxAnswer { channel, .. } => write!(f, "MailboxAnswer({channel})"),
            Done::Sealed { room, rows, .. } => write!(f, "Sealed({room}, {})", rows.len()),
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

/// The jobs queued for the store worker. An urgent job wakes the worker, and so does one due by a
/// time (the worker then waits no longer than that); one written behind wakes it only when it is
/// asleep (quiet for a while), else it waits for the worker's next look (at most
/// [`WRITE_BEHIND`] later): a stream of messages heard costs no wake-up each.
#[derive(Default)]
pub(crate) struct JobQueue {
    state: Mutex<Queued>,
    wake: Condvar,
}

#[derive(Default)]
struct Queued {
    jobs: VecDeque<Job>,
    /// The worker is asleep: any job wakes it.
    asleep: bool,
    /// Every handle is gone: no more jobs come.
    closed: bool,
}

/// What the worker takes off the queue.
pub(crate) enum Taken {
    Jobs(Vec<Job>),
    /// Nothing came by then.
    Nothing,
    /// Nothing is left and nothing more comes.
    Closed,
}

impl JobQueue {
    fn lock(&self) -> MutexGuard<'_, Queued> {
        // A job that panicked while the lock was held left the queue as it was: go on.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn push(&self, job: Job) {
        let mut state = self.lock();
        let wake = job.due != Due::Behind || state.asleep;
        state.jobs.push_back(job);
        drop(state);
        if wake {
            self.wake.notify_one();
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    /// For the worker: the jobs queued (at most `max`), waiting up to `wait` for one (`asleep`:
    /// any job wakes it; else only an urgent one, or one whose time is up, and the others are
    /// taken once `wait` is over).
    pub(crate) fn first(&self, max: usize, wait: Duration, asleep: bool) -> Taken {
        let mut state = self.lock();
        state.asleep = asleep;
        let look = Instant::now() + wait;
        loop {
            let ready = state.jobs.iter().any(Job::urgent) || (asleep && !state.jobs.is_empty());
            let deadline = earliest(look, &state.jobs);
            let left = deadline.saturating_duration_since(Instant::now());
            if ready || state.closed || left.is_zero() {
                break;
            }
            state = self.wake.wait_timeout(state, left).map(|(s, _)| s).unwrap_or_else(|e| e.into_inner().0);
        }
        state.asleep = false;
        Self::take(&mut state, max)
    }

    /// For the worker gathering a batch: the jobs queued (at most `max`); when `until` is given,
    /// first waits until then, or until a job queued meanwhile is due (urgent, or by an earlier
    /// time).
    pub(crate) fn more(&self, max: usize, until: Option<Instant>) -> Taken {
        let mut state = self.lock();
        if let Some(until) = until {
            while !state.jobs.iter().any(Job::urgent) && !state.closed {
                let until = earliest(until, &state.jobs);
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                state = self.wake.wait_timeout(state, left).map(|(s, _)| s).unwrap_or_else(|e| e.into_inner().0);
            }
        }
        Self::take(&mut state, max)
    }

    fn take(state: &mut Queued, max: usize) -> Taken {
        if state.jobs.is_empty() {
            return if state.closed { Taken::Closed } else { Taken::Nothing };
        }
        let n = state.jobs.len().min(max);
        Taken::Jobs(state.jobs.drain(..n).collect())
    }
}

/// Closes the queue when the last handle goes.
struct Closer(Arc<JobQueue>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The loop's end of the queue to the store worker.
#[derive(Clone)]
pub(crate) struct StoreHandle {
    queue: Arc<Closer>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreHandle")
    }
}

impl StoreHandle {
    /// A handle on `queue`; once it and its clones are gone, the queue is closed.
    pub(crate) fn new(queue: Arc<JobQueue>) -> StoreHandle {
        StoreHandle { queue: Arc::new(Closer(queue)) }
    }

    /// Queues `job`, done at once; what it returns comes back once committed.
    pub(crate) fn run(&self, job: impl FnOnce(&NodeStore) -> Option<Done> + Send + 'static) {
        self.queue(Job { work: Box::new(job), due: Due::Now });
    }

    /// Queues `job`, committed within [`SHOWN_WITHIN`]; what it returns comes back then.
    pub(crate) fn run_soon(&self, job: impl FnOnce(&NodeStore) -> Option<Done> + Send + 'static) {
        self.queue(Job { work: Box::new(job), due: Due::By(Instant::now() + SHOWN_WITHIN) });
    }

    /// Queues `job`, written behind (within [`WRITE_BEHIND`]); what it returns comes back once
    /// committed.
    pub(crate) fn run_behind(&self, job: impl FnOnce(&NodeStore) -> Option<Done> + Send + 'static) {
        self.queue(Job { work: Box::new(job), due: Due::Behind });
    }

    fn queue(&self, job: Job) {
        self.queue.0.push(job);
    }

    /// Queues a write, written behind, whose failure is logged as `what`.
    pub(crate) fn write(
        &self,
        what: &'static str,
        write: impl FnOnce(&NodeStore) -> Result<(), StoreError> + Send + 'static,
    ) {
        self.run_behind(logged(what, write));
    }

    /// Queues a write committed at once (the user was told of what it keeps), whose failure is
    /// logged as `what`.
    pub(crate) fn write_now(
        &self,
        what: &'static str,
        write: impl FnOnce(&NodeStore) -> Result<(), StoreError> + Send + 'static,
    ) {
        self.run(logged(what, write));
    }

    /// Queues a write, written behind, whose failure the user is told of, as `what`.
    pub(crate) fn write_or_tell(
        &self,
        what: &'static str,
        write: impl FnOnce(&NodeStore) -> Result<(), StoreError> + Send + 'static,
    ) {
        self.run_behind(move |store| {
            write(store).err().map(|error| {
                tracing::error!(%error, "cannot {what}");
                Done::Failed(format!("cannot {what}: {error}"))
            })
        });
    }
}

/// `write` as a job whose failure is logged as `what`.
fn logged(
    what: &'static str,
    write: impl FnOnce(&NodeStore) -> Result<(), StoreError> + Send + 'static,
) -> impl FnOnce(&NodeStore) -> Option<Done> + Send + 'static {
    move |store| {
        if let Err(error) = write(store) {
            tracing::error!(%error, "cannot {what}");
        }
        None
    }
}
