//! The thread beside the event loop that reads the node database for peers' catch-up
//! requests: the signed events the room engine chose and the messages beyond the asker's
//! marks, decoded, come back to the loop as a [`ReadDone`] with the ticket they went out with,
//! and the loop answers the peer then. A page of 10,000 events is read there, not on the loop.
//!
//! Owns a [`StoreReader`] (read-only) and nothing else: never writes, never decides what a
//! peer may have (the engine did, before the job was made), never touches the swarm.

use std::collections::HashMap;

use libp2p::request_response::ResponseChannel;
use tokio::sync::mpsc;

use crate::account::AccountId;
use crate::protocol::sync::{Mark, SyncResponse};
use crate::room::EventId;
use crate::room::event::{EventBody, EventPayload, SignedEvent};
use crate::store::{CatchUpSource, StoreError, StoreReader};

/// Jobs waiting for the thread at most; beyond, the store worker reads them.
const QUEUE: usize = 64;

/// The messages a page carries: those beyond `marks` (and `after`), up to `limit`, none deeper
/// than `until`.
#[derive(Debug)]
pub(super) struct MessagesWanted {
    pub marks: Vec<Mark>,
    pub after: Option<Mark>,
    pub limit: usize,
    pub until: Option<u64>,
}

/// What to read for one answer.
#[derive(Debug)]
pub(super) struct ReadJob {
    pub ticket: u64,
    pub room: EventId,
    pub events: Vec<EventId>,
    pub messages: Option<MessagesWanted>,
}

/// What was read, decoded; a failed read is logged and reads as nothing.
#[derive(Debug, Default)]
pub(super) struct ReadDone {
    pub ticket: u64,
    pub events: Vec<SignedEvent>,
    pub messages: Vec<SignedEvent>,
    pub more_messages: bool,
    /// The group sessions the messages are sealed with, each once (for the keys the page
    /// carries).
    pub sessions: Vec<String>,
}

/// A handle to the reading thread; dropping it ends the thread once its jobs are done.
#[derive(Debug)]
pub(super) struct StoreReads {
    jobs: std::sync::mpsc::SyncSender<ReadJob>,
}

impl StoreReads {
    /// Runs `reader` on its own thread; what it reads goes to `done`.
    pub(super) fn spawn(reader: StoreReader, done: mpsc::UnboundedSender<ReadDone>) -> Result<StoreReads, StoreError> {
        let (jobs, channel) = std::sync::mpsc::sync_channel::<ReadJob>(QUEUE);
        std::thread::Builder::new()
            .name("meshchat-store-reads".into())
            .spawn(move || {
                for job in channel {
                    if done.send(read(&reader, job)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the reading thread: {e}")))?;
        Ok(StoreReads { jobs })
    }

    /// Hands `job` to the thread; gives it back when the thread is busy with [`QUEUE`] others
    /// or gone.
    pub(super) fn hand(&self, job: ReadJob) -> Result<(), Box<ReadJob>> {
        self.jobs.try_send(job).map_err(|e| match e {
            std::sync::mpsc::TrySendError::Full(job) | std::sync::mpsc::TrySendError::Disconnected(job) => {
                Box::new(job)
            }
        })
    }
}

/// What a read is for: the answer it makes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Answer {
    /// The room's heads.
    Heads,
    /// A page of `room` for `asker`; when `more_events`, no messages were read and the asker
    /// is told more follow.
    Page { more_events: bool, room: EventId, asker: AccountId },
}

impl Answer {
    /// The answer `done` makes.
    pub(super) fn with(self, done: ReadDone) -> SyncResponse {
        match self {
            Answer::Heads => SyncResponse::Heads { events: done.events },
            Answer::Page { more_events, .. } => SyncResponse::Page {
                events: done.events,
                more_events,
                messages: done.messages,
                more_messages: more_events || done.more_messages,
                keys: Vec::new(),
            },
        }
    }
}

/// The reads waiting for what was queued before them to be committed, those handed to the
/// thread, and the peers waiting for them, by ticket.
#[derive(Debug)]
pub(super) struct Serving {
    reads: Option<StoreReads>,
    /// Where the thread's reads come (and the store worker's, when the thread cannot take one).
    sender: mpsc::UnboundedSender<ReadDone>,
    pub(super) done: mpsc::UnboundedReceiver<ReadDone>,
    /// Reads not handed over yet.
    queued: HashMap<u64, ReadJob>,
    waiting: HashMap<u64, (ResponseChannel<SyncResponse>, Answer)>,
    next_ticket: u64,
}

impl Serving {
    /// The thread reading `reader`, or none (every read then runs on the store worker).
    pub(super) fn start(reader: Result<StoreReader, StoreError>) -> Serving {
        let (sender, done) = mpsc::unbounded_channel();
        let reads = match reader.and_then(|reader| StoreReads::spawn(reader, sender.clone())) {
            Ok(reads) => Some(reads),
            Err(e) => {
                tracing::warn!(error = %e, "catch-up answers are read by the store worker");
                None
            }
        };
        Serving { reads, sender, done, queued: HashMap::new(), waiting: HashMap::new(), next_ticket: 0 }
    }

    /// Keeps the read for `answer` on `channel` until what was queued to the store before it is
    /// committed ([`Self::go`]); its ticket.
    pub(super) fn queue(
        &mut self,
        room: EventId,
        events: Vec<EventId>,
        messages: Option<MessagesWanted>,
        channel: ResponseChannel<SyncResponse>,
        answer: Answer,
    ) -> u64 {
        self.next_ticket = self.next_ticket.wrapping_add(1);
        let ticket = self.next_ticket;
        self.queued.insert(ticket, ReadJob { ticket, room, events, messages });
        self.waiting.insert(ticket, (channel, answer));
        ticket
    }

    /// What was queued before read `ticket` is committed: hands it to the thread. Gives the
    /// job back, with where its answer goes, when the thread cannot take it (the caller has
    /// the store worker read it).
    pub(super) fn go(&mut self, ticket: u64) -> Option<(ReadJob, mpsc::UnboundedSender<ReadDone>)> {
        let job = self.queued.remove(&ticket)?;
        let Some(reads) = &self.reads else { return Some((job, self.sender.clone())) };
        match reads.hand(job) {
            Ok(()) => None,
            Err(job) => Some((*job, self.sender.clone())),
        }
    }

    /// The peer waiting for `done`, and what its answer is.
    pub(super) fn take(&mut self, done: &ReadDone) -> Option<(ResponseChannel<SyncResponse>, Answer)> {
        self.waiting.remove(&done.ticket)
    }
}

/// Carries out `job` on `reader` (the thread's, or the store worker's connection when the
/// thread cannot take it).
pub(super) fn read(reader: &dyn CatchUpSource, job: ReadJob) -> ReadDone {
    let ReadJob { ticket, room, events, messages } = job;
    let decoded =
        |rows: Vec<Vec<u8>>| -> Vec<SignedEvent> { rows.iter().filter_map(|b| SignedEvent::decode(b).ok()).collect() };
    let events = match reader.room_event_bytes(&events) {
        Ok(rows) => decoded(rows),
        Err(e) => {
            tracing::error!(%room, error = %e, "cannot read room events for a catch-up answer");
            Vec::new()
        }
    };
    let (messages, more_messages) = match messages {
        None => (Vec::new(), false),
        Some(w) => match reader.messages_beyond(&room, &w.marks, w.after.as_ref(), w.limit, w.until) {
            Ok((rows, more)) => (decoded(rows), more),
            Err(e) => {
                tracing::error!(%room, error = %e, "cannot read messages for a catch-up answer");
                (Vec::new(), false)
            }
        },
    };
    let sessions = sessions_of(&messages);
    ReadDone { ticket, events, messages, more_messages, sessions }
}

/// The group sessions `messages` are sealed with, each once.
fn sessions_of(messages: &[SignedEvent]) -> Vec<String> {
    let mut sessions: Vec<String> = messages
        .iter()
        .filter_map(|m| match cbor4ii::serde::from_slice::<EventBody>(&m.body).ok()?.payload {
            EventPayload::Message { sealed, .. } => Some(sealed.session),
            _ => None,
        })
        .collect();
    sessions.sort();
    sessions.dedup();
    sessions
}

#[cfg(test)]
mod tests {
    use libp2p::identity::Keypair;

    use super::*;
    use crate::cert::Authority;
    use crate::room::event::{EventBody, EventPayload};
    use crate::store::NodeStore;
    use crate::testing::account_of;

    /// A room's create event, sealed by alice.
    fn create() -> SignedEvent {
        let key = Keypair::ed25519_from_bytes([1; 32]).unwrap();
        let peer = key.public().to_peer_id().to_bytes();
        let cert = Authority::from_secret(&[5; 32]).issue(account_of("alice"), "alice", &peer, 1_800_000_000, 1);
        let body = EventBody {
            author: account_of("alice"),
            room: None,
            prev: vec![],
            depth: 0,
            ts_ms: 1_800_000_000_000,
            nonce: 1,
            payload: EventPayload::Create { name: "lobby".into() },
        };
        SignedEvent::seal(&key, &cert, &body).unwrap()
    }

    #[test]
    fn a_page_with_more_events_says_more_messages_follow_without_reading_them() {
        let done = ReadDone { ticket: 1, ..ReadDone::default() };
        let SyncResponse::Page { more_events, more_messages, .. } =
            Answer::Page { more_events: true, room: EventId::from_bytes([1; 32]), asker: account_of("a") }.with(done)
        else {
            panic!("a page")
        };
        assert!(more_events && more_messages);
        let done = ReadDone { ticket: 2, ..ReadDone::default() };
        let SyncResponse::Page { more_events, more_messages, .. } =
            Answer::Page { more_events: false, room: EventId::from_bytes([1; 32]), asker: account_of("a") }.with(done)
        else {
            panic!("a page")
        };
        assert!(!more_events && !more_messages);
        assert_eq!(Answer::Heads.with(ReadDone::default()), SyncResponse::Heads { events: vec![] });
    }

    #[test]
    fn the_thread_reads_what_was_written_and_answers_by_ticket() {
        let dir = tempfile::tempdir().unwrap();
        let store = NodeStore::open(dir.path()).unwrap();
        let create = create();
        let room = create.id().unwrap();
        let (unknown, garbled) = (EventId::from_bytes([3; 32]), EventId::from_bytes([4; 32]));
        store.save_room_event(&room, &room, 0, &create.encode()).unwrap();
        // Bytes that do not decode as an event are left out of the answer.
        store.save_room_event(&room, &garbled, 1, b"not an event").unwrap();
        let (tx, mut done) = mpsc::unbounded_channel();
        let reads = StoreReads::spawn(store.reader().unwrap(), tx).unwrap();
        let job = ReadJob { ticket: 7, room, events: vec![garbled, room, unknown], messages: None };
        assert!(reads.hand(job).is_ok());
        let answer = done.blocking_recv().expect("an answer");
        assert_eq!((answer.ticket, answer.events, answer.more_messages), (7, vec![create], false));
        drop(reads);
        assert!(done.blocking_recv().is_none(), "the thread ends with its handle");
    }
}
