//! The store worker: the thread that owns the node database's connection (a [`NodeStore`]). It
//! takes the jobs the event loop queued ([`StoreHandle`]), in their order, and runs those that
//! wait together in one transaction (at most [`MAX_BATCH`]). An urgent job is done at once, with
//! what waits beside it; one due by a time (this node's own message) by then, with what comes
//! until then. Jobs written behind: asleep, the worker wakes for the first and gathers those that
//! come in the next [`WRITE_BEHIND`]; awake (for [`STAY_AWAKE`] after a batch) it is not woken
//! for them, and takes them every [`WRITE_BEHIND`]. Under a stream of messages one commit then
//! carries the messages of many milliseconds, and queuing one costs no wake-up. Once the
//! transaction is committed, what the jobs returned goes back to the loop as one [`Written`].
//! When no job has come for a while it copies the write-ahead log into the database
//! ([`NodeStore::checkpoint_if_quiet`]).
//!
//! Owns the connection and nothing else: never decides what to write or read (the jobs say),
//! never touches the swarm. It ends once every handle is dropped and the jobs queued are done;
//! the loop then hears its end as the closing of the answers' channel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc as tokio_mpsc;

use super::state::store::{Job, JobQueue, StoreHandle, Taken, WRITE_BEHIND, Written, earliest};
use crate::store::{NodeStore, StoreError};

/// At most this many jobs share one transaction.
pub(super) const MAX_BATCH: usize = 512;
/// How long the worker sleeps, quiet, before it looks whether to copy the log back.
const IDLE_LOOK: Duration = Duration::from_millis(500);
/// After a batch, the worker looks for jobs every [`WRITE_BEHIND`] this long before it sleeps.
const STAY_AWAKE: Duration = Duration::from_secs(1);

/// Starts the worker on `store`: the handle to queue jobs, and where what they return comes.
pub(super) fn spawn(store: NodeStore) -> Result<(StoreHandle, tokio_mpsc::UnboundedReceiver<Written>), StoreError> {
    let queue = Arc::new(JobQueue::default());
    let (done, answers) = tokio_mpsc::unbounded_channel();
    let jobs = Arc::clone(&queue);
    std::thread::Builder::new()
        .name("meshchat-store".into())
        .spawn(move || work(&store, &jobs, &done))
        .map_err(|e| StoreError::Corrupt(format!("cannot start the store worker: {e}")))?;
    Ok((StoreHandle::new(queue), answers))
}

fn work(store: &NodeStore, queue: &JobQueue, done: &tokio_mpsc::UnboundedSender<Written>) {
    let mut awake_until = Instant::now();
    loop {
        let asleep = Instant::now() >= awake_until;
        let wait = if asleep { IDLE_LOOK } else { WRITE_BEHIND };
        let first = match queue.first(MAX_BATCH, wait, asleep) {
            Taken::Jobs(jobs) => jobs,
            Taken::Nothing => {
                store.checkpoint_if_quiet(Instant::now());
                continue;
            }
            Taken::Closed => return,
        };
        // Woken by a job that can wait: others are gathered for it; taken at a look, they
        // waited already.
        let gather = asleep && !first.iter().any(Job::urgent);
        let written = run_batch(store, first, queue, gather);
        awake_until = Instant::now() + STAY_AWAKE;
        if !written.dones.is_empty() {
            // The loop gone, the worker still writes what is queued, then ends.
            let _ = done.send(written);
        }
        store.checkpoint_if_quiet(Instant::now());
    }
}

/// Runs `first` and the jobs queued behind it in one transaction: when `gather` and none of them
/// is urgent, those that come up to [`WRITE_BEHIND`] later, or until the earliest time one of
/// them is due by, or an urgent one comes; else those queued now.
fn run_batch(store: &NodeStore, first: Vec<Job>, queue: &JobQueue, gather: bool) -> Written {
    let began = store.begin();
    if let Err(error) = &began {
        // Still run, each statement its own transaction.
        tracing::error!(%error, "cannot begin a transaction");
    }
    let mut due = Instant::now() + if gather { WRITE_BEHIND } else { Duration::ZERO };
    let (mut urgent, mut count) = (false, 0);
    let mut dones = Vec::new();
    let mut jobs = first;
    loop {
        due = earliest(due, &jobs);
        for job in jobs {
            urgent |= job.urgent();
            count += 1;
            dones.extend((job.work)(store));
        }
        let room = MAX_BATCH.saturating_sub(count);
        if room == 0 {
            break;
        }
        jobs = match queue.more(room, (!urgent).then_some(due)) {
            Taken::Jobs(jobs) => jobs,
            Taken::Nothing | Taken::Closed => break,
        };
    }
    let committed = match began {
        Ok(()) => match store.commit() {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(%error, jobs = count, "cannot commit what was written");
                store.rollback();
                false
            }
        },
        Err(_) => true,
    };
    Written { dones, committed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::state::store::Done;
    use crate::store::tests::stored;

    #[test]
    fn jobs_run_in_order_and_what_they_return_comes_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (handle, mut answers) = spawn(NodeStore::open(dir.path()).unwrap()).unwrap();
        let message = stored("m1", "lobby", 1, b"pb");
        let first = message.clone();
        handle.run(move |store| store.save_message(&first, b"e").ok().map(|new| Done::Failed(format!("{new}"))));
        let again = message.clone();
        handle.run(move |store| store.save_message(&again, b"e").ok().map(|new| Done::Failed(format!("{new}"))));
        let room = message.room;
        handle.run(move |store| Some(Done::Failed(format!("{}", store.recent_messages(&room, 10).unwrap().len()))));
        let mut said = Vec::new();
        while said.len() < 3 {
            let written = answers.blocking_recv().expect("answers");
            assert!(written.committed);
            for done in written.dones {
                let Done::Failed(text) = done else { panic!("{done:?}") };
                said.push(text);
            }
        }
        assert_eq!(said, ["true", "false", "1"], "kept once, in the order queued; a read sees the writes before it");
        drop(handle);
        assert!(answers.blocking_recv().is_none(), "the worker ends with its handles");
        let reopened = NodeStore::open(dir.path()).unwrap();
        assert_eq!(reopened.recent_messages(&room, 10).unwrap().len(), 1);
    }

    #[test]
    fn jobs_written_behind_and_urgent_ones_come_back_in_the_order_queued() {
        let dir = tempfile::tempdir().unwrap();
        let (handle, mut answers) = spawn(NodeStore::open(dir.path()).unwrap()).unwrap();
        let said = |word: &'static str| move |_: &NodeStore| Some(Done::Failed(word.to_string()));
        handle.run_behind(said("behind"));
        handle.write("write nothing", |_| Ok(()));
        handle.run_soon(said("soon"));
        handle.run_behind(said("behind again"));
        handle.run(said("at once"));
        let mut heard = Vec::new();
        while heard.len() < 4 {
            let written = answers.blocking_recv().expect("answers");
            assert!(written.committed);
            heard.extend(written.dones.into_iter().map(|done| format!("{done:?}")));
        }
        assert_eq!(heard, ["Failed(behind)", "Failed(soon)", "Failed(behind again)", "Failed(at once)"]);
    }

    /// A job due by a time ends the worker's wait for more, whether it is gathering a batch or
    /// waiting for its next look; one written behind does not.
    #[test]
    fn a_job_due_by_a_time_cuts_the_wait_short() {
        use crate::node::state::store::Due;
        let long = Duration::from_secs(30);
        let job = |due| Job { work: Box::new(|_: &NodeStore| None), due };
        let queue = JobQueue::default();
        let started = Instant::now();
        queue.push(job(Due::Behind));
        queue.push(job(Due::By(Instant::now() + Duration::from_millis(20))));
        let Taken::Jobs(jobs) = queue.first(MAX_BATCH, long, false) else { panic!("jobs") };
        assert_eq!(jobs.len(), 2, "both taken once the second is due");
        queue.push(job(Due::By(Instant::now() + Duration::from_millis(20))));
        let Taken::Jobs(jobs) = queue.more(MAX_BATCH, Some(Instant::now() + long)) else { panic!("jobs") };
        assert_eq!(jobs.len(), 1);
        assert!(started.elapsed() < long / 2, "neither waited for the long wait: {:?}", started.elapsed());

        let until = Instant::now() + Duration::from_millis(50);
        queue.push(job(Due::Behind));
        let Taken::Jobs(jobs) = queue.more(MAX_BATCH, Some(until)) else { panic!("jobs") };
        assert_eq!(jobs.len(), 1);
        assert!(Instant::now() >= until, "a job written behind waits for the batch's time");
    }
}
