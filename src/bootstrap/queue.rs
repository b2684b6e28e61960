//! The order the account worker serves requests in: pure, with the time passed in. It owns the
//! waiting jobs and the choice of the next one; it never hashes, reads a clock or touches
//! storage, and it never drops a job silently: every job it will not serve is handed back so
//! that it is answered `rate_limited`.
//!
//! Jobs that do not hash (renew, rename, logout, look-up) are [`Class::Quick`] and go first,
//! but never more than [`QUEUE_QUICK_IN_A_ROW`] of them in a row while a hashing job waits, so
//! a stream of quick jobs cannot keep the hashing ones waiting until they are too late.
//! Logins from known machines — peers that held a certificate of the account they ask for —
//! are [`Class::Known`] and go before everyone else's ([`Class::Stranger`]: other hashing jobs,
//! and the jobs of peers with no session, which can only be refused). Within a class the
//! oldest goes first. A hashing job that waited longer than the queue's limit
//! ([`QUEUE_WAIT_MAX`]) is handed back without hashing: its asker is better told to try again
//! than kept waiting for an answer it may no longer be listening for.
//!
//! Room is shared so that nobody takes all of it: one asker (a peer) keeps at most
//! [`QUEUE_PER_ASKER_MAX`] jobs waiting, one host (named by the caller) at most
//! [`QUEUE_PER_HOST_STRANGERS_MAX`] strangers' jobs, since peer ids cost nothing, and hashing
//! jobs never take the last [`QUEUE_KEPT_FOR_QUICK`] places, so renewals find room however many
//! logins wait.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The longest a hashing job waits for the worker before it is refused.
pub const QUEUE_WAIT_MAX: Duration = Duration::from_secs(3);
/// The most jobs the worker keeps waiting (all classes together).
pub const QUEUE_MAX_JOBS: usize = 512;
/// The places of [`QUEUE_MAX_JOBS`] that only quick jobs may take.
pub const QUEUE_KEPT_FOR_QUICK: usize = QUEUE_MAX_JOBS / 4;
/// The most jobs one asker keeps waiting (a node asks one thing at a time, a few look-ups at
/// most).
pub const QUEUE_PER_ASKER_MAX: usize = 8;

/// The most strangers' jobs one host keeps waiting, all its peers together: a sixth of the
/// places hashing jobs may take, so six hosts or more are needed to fill them.
pub const QUEUE_PER_HOST_STRANGERS_MAX: usize = (QUEUE_MAX_JOBS - QUEUE_KEPT_FOR_QUICK) / 6;

/// The most quick jobs served in a row while a hashing job waits: then the hashing job.
pub const QUEUE_QUICK_IN_A_ROW: u32 = 8;

/// How urgent a job is; served in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Does not hash, for a peer with a session.
    Quick,
    /// Hashes, for a machine that held a certificate of the account it asks for.
    Known,
    /// Hashes, for anyone else; or asked by a peer with no session (to be refused).
    Stranger,
}

const CLASSES: usize = 3;

impl Class {
    fn index(self) -> usize {
        match self {
            Class::Quick => 0,
            Class::Known => 1,
            Class::Stranger => 2,
        }
    }
}

/// What to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<J> {
    /// Serve this job now.
    Serve(J),
    /// This job waited too long: answer it `rate_limited` without serving it.
    TooLate(J),
}

/// What became of a job pushed.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed<J> {
    /// It waits.
    Queued,
    /// It waits, and this stranger's job gave way to it: answer that one `rate_limited`.
    Displaced(J),
    /// It was not queued: answer it `rate_limited`.
    Refused(J),
}

impl<J> Pushed<J> {
    /// The job handed back, if any (the new one or the one that gave way).
    pub fn handed_back(self) -> Option<J> {
        match self {
            Pushed::Queued => None,
            Pushed::Displaced(job) | Pushed::Refused(job) => Some(job),
        }
    }
}

/// A job waiting, with who asked and when it arrived.
#[derive(Debug)]
struct Waiting<J> {
    arrived: Instant,
    asker: Vec<u8>,
    /// The asker's host, for a stranger's job (the only ones counted per host).
    host: Option<String>,
    job: J,
}

/// The jobs waiting for the worker.
#[derive(Debug)]
pub struct JobQueue<J> {
    queues: [VecDeque<Waiting<J>>; CLASSES],
    /// How many jobs each asker has waiting (askers with none are not kept).
    per_asker: HashMap<Vec<u8>, usize>,
    /// How many strangers' jobs each host has waiting (hosts with none are not kept).
    per_host: HashMap<String, usize>,
    max_jobs: usize,
    /// The most hashing jobs (known and strangers') waiting.
    max_hashing: usize,
    max_wait: Duration,
    /// Quick jobs served since the last hashing job.
    quick_in_a_row: u32,
}

impl<J> JobQueue<J> {
    /// A queue of at most `max_jobs` jobs, of which [`QUEUE_KEPT_FOR_QUICK`] (a quarter, when
    /// `max_jobs` is smaller) only for quick ones, whose hashing jobs wait at most `max_wait`.
    pub fn new(max_jobs: usize, max_wait: Duration) -> Self {
        let kept_for_quick = QUEUE_KEPT_FOR_QUICK.min(max_jobs / 4);
        JobQueue {
            queues: Default::default(),
            per_asker: HashMap::new(),
            per_host: HashMap::new(),
            max_jobs,
            max_hashing: max_jobs.saturating_sub(kept_for_quick),
            max_wait,
            quick_in_a_row: 0,
        }
    }

    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.iter().all(VecDeque::is_empty)
    }

    /// Hashing jobs waiting.
    fn hashing(&self) -> usize {
        self.queues[Class::Known.index()].len().saturating_add(self.queues[Class::Stranger.index()].len())
    }

    /// Queues `job` of `class`, asked by `asker` on host `host`, which arrived at `arrived`. A
    /// job is refused when its asker has [`QUEUE_PER_ASKER_MAX`] waiting already, or when it is
    /// a stranger's and its host has [`QUEUE_PER_HOST_STRANGERS_MAX`] strangers' jobs waiting.
    /// When the queue (or, for a job of the known or the strangers' class, the room those may
    /// take) is full, a stranger's job makes room for a more urgent one (the newest stranger's
    /// job gives way), else the new job is refused.
    pub fn push(&mut self, job: J, class: Class, asker: &[u8], host: &str, arrived: Instant) -> Pushed<J> {
        if self.per_asker.get(asker).is_some_and(|n| *n >= QUEUE_PER_ASKER_MAX) {
            return Pushed::Refused(job);
        }
        let host = (class == Class::Stranger).then(|| host.to_string());
        if let Some(host) = &host
            && self.per_host.get(host).is_some_and(|n| *n >= QUEUE_PER_HOST_STRANGERS_MAX)
        {
            return Pushed::Refused(job);
        }
        let full = self.len() >= self.max_jobs || (class != Class::Quick && self.hashing() >= self.max_hashing);
        let mut pushed = Pushed::Queued;
        if full {
            if class == Class::Stranger {
                return Pushed::Refused(job);
            }
            match self.queues[Class::Stranger.index()].pop_back() {
                Some(evicted) => pushed = Pushed::Displaced(self.forget(evicted)),
                None => return Pushed::Refused(job),
            }
        }
        *self.per_asker.entry(asker.to_vec()).or_insert(0) += 1;
        if let Some(host) = &host {
            *self.per_host.entry(host.clone()).or_insert(0) += 1;
        }
        self.queues[class.index()].push_back(Waiting { arrived, asker: asker.to_vec(), host, job });
        pushed
    }

    /// The next thing to do at `now`: first any hashing job that waited too long (oldest
    /// first), then the oldest job of the most urgent class, except that after
    /// [`QUEUE_QUICK_IN_A_ROW`] quick jobs in a row a waiting hashing job goes first.
    pub fn next(&mut self, now: Instant) -> Option<Next<J>> {
        for class in [Class::Known, Class::Stranger] {
            let queue = &mut self.queues[class.index()];
            let expired = queue.front().is_some_and(|w| now.saturating_duration_since(w.arrived) > self.max_wait);
            if expired && let Some(waiting) = queue.pop_front() {
                return Some(Next::TooLate(self.forget(waiting)));
            }
        }
        let hashing_turn = self.quick_in_a_row >= QUEUE_QUICK_IN_A_ROW && self.hashing() > 0;
        let skip = if hashing_turn { 1 } else { 0 };
        let (class, waiting) = [Class::Quick, Class::Known, Class::Stranger]
            .into_iter()
            .skip(skip)
            .find_map(|class| self.queues[class.index()].pop_front().map(|waiting| (class, waiting)))?;
        self.quick_in_a_row = match class {
            Class::Quick => self.quick_in_a_row.saturating_add(1),
            Class::Known | Class::Stranger => 0,
        };
        Some(Next::Serve(self.forget(waiting)))
    }

    /// The job of `waiting`, which leaves the queue: no longer counted for its asker and host.
    fn forget(&mut self, waiting: Waiting<J>) -> J {
        if let Some(n) = self.per_asker.get_mut(&waiting.asker) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_asker.remove(&waiting.asker);
            }
        }
        if let Some(host) = &waiting.host
            && let Some(n) = self.per_host.get_mut(host)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_host.remove(host);
            }
        }
        waiting.job
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut JobQueue<&'static str>, now: Instant) -> Vec<Next<&'static str>> {
        std::iter::from_fn(|| q.next(now)).collect()
    }

    /// Queues `job`, asked by `asker`: the job handed back, if any.
    fn handed_back(
        q: &mut JobQueue<&'static str>,
        job: &'static str,
        class: Class,
        asker: &[u8],
        at: Instant,
    ) -> Option<&'static str> {
        q.push(job, class, asker, "host", at).handed_back()
    }

    /// Queues `job`, asked by an asker of its own name.
    fn push(q: &mut JobQueue<&'static str>, job: &'static str, class: Class, at: Instant) -> Option<&'static str> {
        q.push(job, class, job.as_bytes(), job, at).handed_back()
    }

    #[test]
    fn quick_jobs_then_known_machines_then_strangers_oldest_first() {
        let t = Instant::now();
        let mut q = JobQueue::new(16, QUEUE_WAIT_MAX);
        push(&mut q, "stranger 1", Class::Stranger, t);
        push(&mut q, "known 1", Class::Known, t + Duration::from_millis(1));
        push(&mut q, "stranger 2", Class::Stranger, t + Duration::from_millis(2));
        push(&mut q, "renew", Class::Quick, t + Duration::from_millis(3));
        push(&mut q, "known 2", Class::Known, t + Duration::from_millis(4));
        assert_eq!(q.len(), 5);
        let order = drain(&mut q, t + Duration::from_millis(10));
        assert_eq!(
            order,
            ["renew", "known 1", "known 2", "stranger 1", "stranger 2"]
                .map(Next::Serve)
                .into_iter()
                .collect::<Vec<_>>()
        );
        assert!(q.is_empty());
    }

    #[test]
    fn hashing_jobs_that_waited_too_long_are_handed_back_first() {
        let t = Instant::now();
        let mut q = JobQueue::new(16, QUEUE_WAIT_MAX);
        push(&mut q, "old stranger", Class::Stranger, t);
        push(&mut q, "old known", Class::Known, t + Duration::from_millis(1));
        push(&mut q, "old lookup", Class::Quick, t);
        push(&mut q, "new stranger", Class::Stranger, t + QUEUE_WAIT_MAX);
        let later = t + QUEUE_WAIT_MAX + Duration::from_millis(500);
        assert_eq!(
            drain(&mut q, later),
            vec![
                Next::TooLate("old known"),
                Next::TooLate("old stranger"),
                Next::Serve("old lookup"),
                Next::Serve("new stranger"),
            ]
        );
    }

    #[test]
    fn a_full_queue_refuses_strangers_and_makes_room_for_the_rest() {
        let t = Instant::now();
        let mut q = JobQueue::new(3, QUEUE_WAIT_MAX);
        assert_eq!(push(&mut q, "s1", Class::Stranger, t), None);
        assert_eq!(push(&mut q, "s2", Class::Stranger, t), None);
        assert_eq!(push(&mut q, "k1", Class::Known, t), None);
        assert_eq!(q.push("s3", Class::Stranger, b"s3", "s3", t), Pushed::Refused("s3"));
        assert_eq!(
            q.push("k2", Class::Known, b"k2", "k2", t),
            Pushed::Displaced("s2"),
            "the newest stranger's job gives way"
        );
        assert_eq!(q.push("renew", Class::Quick, b"renew", "renew", t), Pushed::Displaced("s1"));
        assert_eq!(q.push("k3", Class::Known, b"k3", "k3", t), Pushed::Refused("k3"), "no stranger left to give way");
        assert_eq!(drain(&mut q, t), ["renew", "k1", "k2"].map(Next::Serve).into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn hashing_jobs_never_take_the_places_kept_for_quick_ones() {
        let t = Instant::now();
        let mut q = JobQueue::new(8, QUEUE_WAIT_MAX);
        let askers: Vec<String> = (0..8).map(|i| format!("peer {i}")).collect();
        let hashing = 8 - 8 / 4;
        for (i, asker) in askers.iter().enumerate().take(hashing) {
            assert_eq!(handed_back(&mut q, "login", Class::Known, asker.as_bytes(), t), None, "{i}");
        }
        assert_eq!(handed_back(&mut q, "one more login", Class::Known, b"another", t), Some("one more login"));
        assert_eq!(handed_back(&mut q, "a stranger's", Class::Stranger, b"stranger", t), Some("a stranger's"));
        for asker in &askers[hashing..] {
            assert_eq!(
                handed_back(&mut q, "renew", Class::Quick, asker.as_bytes(), t),
                None,
                "quick jobs have their own room"
            );
        }
        assert_eq!(q.len(), 8);
    }

    #[test]
    fn one_asker_keeps_a_bounded_number_of_jobs_waiting() {
        let t = Instant::now();
        let mut q = JobQueue::new(QUEUE_MAX_JOBS, QUEUE_WAIT_MAX);
        for _ in 0..QUEUE_PER_ASKER_MAX {
            assert_eq!(handed_back(&mut q, "login", Class::Known, b"mallory", t), None);
        }
        assert_eq!(handed_back(&mut q, "login", Class::Known, b"mallory", t), Some("login"));
        assert_eq!(handed_back(&mut q, "renew", Class::Quick, b"mallory", t), Some("renew"), "whatever the class");
        assert_eq!(handed_back(&mut q, "alice", Class::Known, b"home", t), None, "others are not held back");
        assert_eq!(q.next(t), Some(Next::Serve("login")));
        assert_eq!(handed_back(&mut q, "renew", Class::Quick, b"mallory", t), None, "a job served frees its place");
    }

    #[test]
    fn a_stream_of_quick_jobs_lets_a_waiting_hashing_job_through_in_time() {
        let t = Instant::now();
        let mut q = JobQueue::new(QUEUE_MAX_JOBS, QUEUE_WAIT_MAX);
        assert_eq!(handed_back(&mut q, "alice", Class::Known, b"home", t), None);
        // One renewal more every millisecond, for longer than a hashing job may wait.
        let mut served_quick = 0;
        let mut step = 0;
        let alice = loop {
            step += 1;
            let now = t + Duration::from_millis(step);
            assert_eq!(handed_back(&mut q, "renew", Class::Quick, b"flood", now), None);
            match q.next(now) {
                Some(Next::Serve("renew")) => served_quick += 1,
                Some(other) => break (other, now),
                None => panic!("the queue ran dry"),
            }
            assert!(now < t + 2 * QUEUE_WAIT_MAX, "alice's login was never reached");
        };
        assert_eq!(alice.0, Next::Serve("alice"), "served, not handed back as too late");
        assert!(alice.1.saturating_duration_since(t) < QUEUE_WAIT_MAX);
        assert_eq!(served_quick, QUEUE_QUICK_IN_A_ROW);
        // Then quick jobs again, first.
        assert_eq!(handed_back(&mut q, "stranger", Class::Stranger, b"stranger", t), None);
        assert_eq!(q.next(alice.1), Some(Next::Serve("renew")));
    }

    #[test]
    fn one_host_s_strangers_take_a_share_of_the_room_and_other_hosts_find_theirs() {
        let t = Instant::now();
        let mut q = JobQueue::new(QUEUE_MAX_JOBS, QUEUE_WAIT_MAX);
        // mallory's host asks from ever new peer ids, each under its own limit.
        let mut queued = 0;
        for i in 0..QUEUE_MAX_JOBS {
            let peer = format!("mallory-{i}");
            queued += usize::from(q.push("guess", Class::Stranger, peer.as_bytes(), "10.0.0.66", t) == Pushed::Queued);
        }
        assert_eq!(queued, QUEUE_PER_HOST_STRANGERS_MAX);
        assert_eq!(q.push("alice", Class::Stranger, b"laptop", "10.0.0.5", t), Pushed::Queued, "another host");
        assert_eq!(q.push("known", Class::Known, b"mallory-home", "10.0.0.66", t), Pushed::Queued, "not a stranger's");
        // A job served frees its host's place.
        assert_eq!(q.next(t), Some(Next::Serve("known")));
        assert_eq!(q.next(t), Some(Next::Serve("guess")));
        assert_eq!(q.push("guess", Class::Stranger, b"mallory-new", "10.0.0.66", t), Pushed::Queued);
    }

    #[test]
    fn an_empty_queue_has_nothing_to_do() {
        let mut q: JobQueue<()> = JobQueue::new(1, QUEUE_WAIT_MAX);
        assert_eq!(q.next(Instant::now()), None);
    }
}
