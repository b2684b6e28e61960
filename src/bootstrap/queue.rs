//! The order the account worker serves requests in: pure, with the time passed in. It owns the
//! waiting jobs and the choice of the next one; it never hashes, reads a clock or touches
//! storage, and it never drops a job silently: every job it will not serve is handed back so
//! that it is answered `rate_limited`.
//!
//! Jobs that do not hash (renew, rename, logout, look-up) are [`Class::Quick`] and go first.
//! Hashing jobs (register, login) from known machines — peers that ever held a certificate of
//! any account, which covers peers asking for an account whose certificate they held — are
//! [`Class::Known`] and go before everyone else's ([`Class::Stranger`]). Within a class the
//! oldest goes first. A hashing job that waited longer than the queue's limit
//! ([`QUEUE_WAIT_MAX`]) is handed back without hashing: its asker is better told to try again
//! than kept waiting for an answer it may no longer be listening for.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The longest a hashing job waits for the worker before it is refused.
pub const QUEUE_WAIT_MAX: Duration = Duration::from_secs(3);
/// The most jobs the worker keeps waiting (all classes together).
pub const QUEUE_MAX_JOBS: usize = 512;

/// How urgent a job is; served in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Does not hash.
    Quick,
    /// Hashes, for a machine that held a certificate.
    Known,
    /// Hashes, for anyone else.
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

/// The jobs waiting for the worker.
#[derive(Debug)]
pub struct JobQueue<J> {
    queues: [VecDeque<(Instant, J)>; CLASSES],
    max_jobs: usize,
    max_wait: Duration,
}

impl<J> JobQueue<J> {
    /// A queue of at most `max_jobs` jobs, whose hashing jobs wait at most `max_wait`.
    pub fn new(max_jobs: usize, max_wait: Duration) -> Self {
        JobQueue { queues: Default::default(), max_jobs, max_wait }
    }

    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.iter().all(VecDeque::is_empty)
    }

    /// Queues `job` of `class`, which arrived at `arrived`. When the queue is full, a
    /// stranger's job makes room for a more urgent one (the newest stranger's job is handed
    /// back), else the new job is handed back. A job handed back is to be answered
    /// `rate_limited`.
    pub fn push(&mut self, job: J, class: Class, arrived: Instant) -> Option<J> {
        let mut refused = None;
        if self.len() >= self.max_jobs {
            if class == Class::Stranger {
                return Some(job);
            }
            match self.queues[Class::Stranger.index()].pop_back() {
                Some((_, evicted)) => refused = Some(evicted),
                None => return Some(job),
            }
        }
        self.queues[class.index()].push_back((arrived, job));
        refused
    }

    /// The next thing to do at `now`: first any hashing job that waited too long (oldest
    /// first), then the oldest job of the most urgent class.
    pub fn next(&mut self, now: Instant) -> Option<Next<J>> {
        for class in [Class::Known, Class::Stranger] {
            let queue = &mut self.queues[class.index()];
            let expired =
                queue.front().is_some_and(|(arrived, _)| now.saturating_duration_since(*arrived) > self.max_wait);
            if expired && let Some((_, job)) = queue.pop_front() {
                return Some(Next::TooLate(job));
            }
        }
        self.queues.iter_mut().find_map(VecDeque::pop_front).map(|(_, job)| Next::Serve(job))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut JobQueue<&'static str>, now: Instant) -> Vec<Next<&'static str>> {
        std::iter::from_fn(|| q.next(now)).collect()
    }

    #[test]
    fn quick_jobs_then_known_machines_then_strangers_oldest_first() {
        let t = Instant::now();
        let mut q = JobQueue::new(16, QUEUE_WAIT_MAX);
        q.push("stranger 1", Class::Stranger, t);
        q.push("known 1", Class::Known, t + Duration::from_millis(1));
        q.push("stranger 2", Class::Stranger, t + Duration::from_millis(2));
        q.push("renew", Class::Quick, t + Duration::from_millis(3));
        q.push("known 2", Class::Known, t + Duration::from_millis(4));
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
        q.push("old stranger", Class::Stranger, t);
        q.push("old known", Class::Known, t + Duration::from_millis(1));
        q.push("old lookup", Class::Quick, t);
        q.push("new stranger", Class::Stranger, t + QUEUE_WAIT_MAX);
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
        assert_eq!(q.push("s1", Class::Stranger, t), None);
        assert_eq!(q.push("s2", Class::Stranger, t), None);
        assert_eq!(q.push("k1", Class::Known, t), None);
        assert_eq!(q.push("s3", Class::Stranger, t), Some("s3"));
        assert_eq!(q.push("k2", Class::Known, t), Some("s2"), "the newest stranger's job gives way");
        assert_eq!(q.push("renew", Class::Quick, t), Some("s1"));
        assert_eq!(q.push("k3", Class::Known, t), Some("k3"), "no stranger left to give way");
        assert_eq!(drain(&mut q, t), ["renew", "k1", "k2"].map(Next::Serve).into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn an_empty_queue_has_nothing_to_do() {
        let mut q: JobQueue<()> = JobQueue::new(1, QUEUE_WAIT_MAX);
        assert_eq!(q.next(Instant::now()), None);
    }
}
