//! The timing code shared by meshchat and ngircd: a room (a meshchat room or an IRC channel)
//! seen as senders and receivers of numbered messages `bench S I` (sender S, message I), with
//! the send instant of each message and the arrival instant at each receiver. Latency and
//! throughput are computed from these alone, whatever carried the messages.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

/// The name of a node's store worker thread.
const STORE_THREAD: &str = "meshchat-store";

/// One message arriving at one receiver: (receiver, sender, index, when).
pub type Arrival = (usize, usize, usize, Instant);

/// The text of message `index` of `sender`.
pub fn text(sender: usize, index: usize) -> String {
    format!("bench {sender} {index}")
}

/// Parses a text made by [`text`].
pub fn parse(text: &str) -> Option<(usize, usize)> {
    let mut parts = text.strip_prefix("bench ")?.split(' ');
    let sender = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse().ok()?;
    Some((sender, index))
}

/// A room under test: members that can send, and one stream of arrivals for all of them.
pub trait Room {
    /// Number of members.
    fn size(&self) -> usize;
    /// Sends `text` from member `sender`; returns when the sender's client has accepted it.
    fn send(&self, sender: usize, text: String) -> impl std::future::Future<Output = ()> + Send;
    /// The arrivals stream.
    fn arrivals(&mut self) -> &mut mpsc::UnboundedReceiver<Arrival>;
    /// A process besides this one that carries the messages (a server), whose CPU counts too.
    fn outside_process(&self) -> Option<u32> {
        None
    }
}

/// CPU time (user and system) used so far by process `pid`, or by this process.
fn cpu_time(pid: Option<u32>) -> Duration {
    let path = pid.map_or_else(|| "/proc/self/stat".to_string(), |pid| format!("/proc/{pid}/stat"));
    ticks_of(&std::fs::read_to_string(path).unwrap_or_default())
}

/// CPU time (user and system) used so far by this process's threads named `name` (the nodes'
/// store workers are `meshchat-store`).
fn threads_cpu(name: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Duration::ZERO };
    let mut total = Duration::ZERO;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            total += ticks_of(&stat);
        }
    }
    total
}

/// The user and system time in a `stat` file's text.
fn ticks_of(stat: &str) -> Duration {
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / per_second)
}

/// CPU time used so far by this process and `outside`.
fn cpu_of(outside: Option<u32>) -> Duration {
    cpu_time(None) + outside.map_or(Duration::ZERO, |pid| cpu_time(Some(pid)))
}

/// What one run of traffic gave.
pub struct Outcome {
    /// Every delivery's latency, sorted.
    pub latencies: Vec<Duration>,
    /// Deliveries expected (messages × other members) and distinct deliveries made.
    pub expected: usize,
    pub delivered: usize,
    /// From the first send to the last arrival.
    pub span: Duration,
    /// Messages sent.
    pub messages: usize,
    /// CPU time used meanwhile by every process that carries the messages (this one, with the
    /// nodes or the clients, and any server).
    pub cpu: Duration,
    /// The part of it the nodes' store workers used (zero where there are none).
    pub store_cpu: Duration,
}

impl Outcome {
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i].as_secs_f64() * 1000.0
    }

    /// Messages per second through the room: deliveries made, counted in whole messages (one
    /// message = one delivery to every other member), over the span from the first send to the
    /// last arrival. Without losses this is messages sent over that span.
    pub fn rate(&self) -> f64 {
        if self.delivered == 0 {
            return 0.0;
        }
        let receivers = (self.expected / self.messages.max(1)).max(1);
        self.delivered as f64 / receivers as f64 / self.span.as_secs_f64()
    }

    /// CPU time per delivery made, in microseconds.
    pub fn cpu_per_delivery_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.delivered.max(1) as f64
    }

    /// The store workers' CPU time per delivery made, in microseconds.
    pub fn store_cpu_per_delivery_us(&self) -> f64 {
        self.store_cpu.as_secs_f64() * 1e6 / self.delivered.max(1) as f64
    }

    pub fn lost(&self) -> usize {
        self.expected - self.delivered
    }
}

/// Each of `senders` sends `per_sender` messages, one every `gap` (back to back when zero), all
/// senders at once; then arrivals are gathered until all expected are in or `wait` passes after
/// the last send.
pub async fn run<R: Room + Sync>(
    room: &mut R,
    senders: &[usize],
    per_sender: usize,
    gap: Duration,
    wait: Duration,
) -> Outcome {
    // Forget anything left from an earlier run.
    while room.arrivals().try_recv().is_ok() {}
    let members = room.size();
    let outside = room.outside_process();
    let cpu_before = cpu_of(outside);
    let store_before = threads_cpu(STORE_THREAD);
    let start = Instant::now();
    let sent: Vec<Vec<Instant>> = {
        let shared: &R = room;
        let jobs = senders.iter().map(|&s| async move {
            let mut times = Vec::with_capacity(per_sender);
            let begin = tokio::time::Instant::now();
            for i in 0..per_sender {
                if !gap.is_zero() {
                    tokio::time::sleep_until(begin + gap * i as u32).await;
                }
                times.push(Instant::now());
                shared.send(s, text(s, i)).await;
            }
            (s, times)
        });
        let done = futures::future::join_all(jobs).await;
        let mut sent = vec![Vec::new(); members];
        for (s, times) in done {
            sent[s] = times;
        }
        sent
    };
    let messages = senders.len() * per_sender;
    let expected = messages * (members - 1);
    let mut seen = HashSet::with_capacity(expected);
    let mut latencies = Vec::with_capacity(expected);
    let mut last = start;
    let deadline = tokio::time::Instant::now() + wait;
    while seen.len() < expected {
        match tokio::time::timeout_at(deadline, room.arrivals().recv()).await {
            Ok(Some((r, s, i, at))) => {
                if r == s || i >= per_sender || sent[s].len() <= i || !seen.insert((r, s, i)) {
                    continue;
                }
                latencies.push(at.duration_since(sent[s][i]));
                last = last.max(at);
            }
            _ => break,
        }
    }
    if seen.len() < expected {
        report_missing(&seen, senders, per_sender, members);
    }
    latencies.sort();
    let cpu = cpu_of(outside).saturating_sub(cpu_before);
    let store_cpu = threads_cpu(STORE_THREAD).saturating_sub(store_before);
    Outcome { latencies, expected, delivered: seen.len(), span: last.duration_since(start), messages, cpu, store_cpu }
}

/// Prints which deliveries did not arrive, by receiver and sender: how many, and the first and
/// last message index missing (a lost connection shows as one pair missing a run of messages).
fn report_missing(seen: &HashSet<(usize, usize, usize)>, senders: &[usize], per_sender: usize, members: usize) {
    let mut missing: std::collections::BTreeMap<(usize, usize), (usize, usize, usize)> = Default::default();
    for &s in senders {
        for i in 0..per_sender {
            for r in (0..members).filter(|&r| r != s && !seen.contains(&(r, s, i))) {
                let entry = missing.entry((r, s)).or_insert((0, i, i));
                entry.0 += 1;
                entry.2 = i;
            }
        }
    }
    for ((r, s), (count, first, last)) in missing {
        eprintln!("    missing at member {r} from member {s}: {count} messages, {first}..={last}");
    }
}
