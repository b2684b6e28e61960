//! Benchmark (not a test): login latency through a real bootstrap node on loopback, beside the
//! argon2id hash time measured in the same run, and certificate verifications per second.
//!
//! ```sh
//! cargo bench --bench accounts
//! ```
//! Goals: login p50 ≤ hash time + 5 ms; ≥ 10,000 certificate verifications per second.

use std::time::{Duration, Instant};

use meshchat::bootstrap::AuthService;
use meshchat::bootstrap::password::Hasher;
use meshchat::cert::Authority;
use meshchat::identity::DataDir;
use meshchat::node::{self, Client, EVENT_CAPACITY, NodeConfig};
use meshchat::store::NodeStore;
use meshchat::trust::Trust;
use meshchat::ui::UiEvent;
use tokio::sync::mpsc;

const PASSWORD: &str = "correct horse battery staple";
const LOGINS: usize = 60;
const HASHES: usize = 30;
const VERIFICATIONS: usize = 20_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Node {
    client: Client,
    events: mpsc::Receiver<UiEvent>,
    _dir: tempfile::TempDir,
    _data: DataDir,
}

impl Node {
    async fn start(hosts: bool, peer: Option<String>) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        let key = data.node_key().unwrap();
        let (bootstrap, trust) = if hosts {
            let secret: [u8; 32] = key.clone().try_into_ed25519().unwrap().secret().as_ref().try_into().unwrap();
            let authority = Authority::from_secret(&secret);
            let trust = Trust::load(dir.path(), Some(authority.public())).unwrap();
            (Some(AuthService::open(dir.path(), authority).unwrap()), trust)
        } else {
            (None, Trust::load(dir.path(), None).unwrap())
        };
        let config = NodeConfig {
            key,
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            peers: peer.into_iter().map(|p| p.parse().unwrap()).collect(),
            mdns: false,
            store: NodeStore::open(dir.path()).unwrap(),
            trust,
            bootstrap,
        };
        let (tx, events) = mpsc::channel(EVENT_CAPACITY);
        let (client, _task) = node::spawn(config, tx).unwrap();
        Node { client, events, _dir: dir, _data: data }
    }

    async fn wait(&mut self, pred: impl Fn(&UiEvent) -> bool) -> UiEvent {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(10), self.events.recv())
                .await
                .expect("event in time")
                .expect("node running");
            if pred(&event) {
                return event;
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let hasher = Hasher::new().unwrap();
    let hash = hasher.hash(PASSWORD).unwrap();
    let mut hash_times: Vec<Duration> = (0..HASHES)
        .map(|_| {
            let t = Instant::now();
            assert!(hasher.verify(PASSWORD, Some(&hash)));
            t.elapsed()
        })
        .collect();
    hash_times.sort();
    let hash_p50 = percentile(&hash_times, 0.5);

    let mut boot = Node::start(true, None).await;
    let UiEvent::Ready { listen, .. } = boot.wait(|e| matches!(e, UiEvent::Ready { .. })).await else { unreachable!() };
    let mut user = Node::start(false, Some(listen[0].clone())).await;
    user.wait(|e| matches!(e, UiEvent::Bootstrap { .. })).await;
    user.client.register("benchuser", PASSWORD).await.unwrap();
    let mut logins = Vec::with_capacity(LOGINS);
    for _ in 0..LOGINS {
        user.client.logout().await.unwrap();
        let t = Instant::now();
        user.client.login("benchuser", PASSWORD).await.unwrap();
        logins.push(t.elapsed());
    }
    logins.sort();
    let login_p50 = percentile(&logins, 0.5);

    let authority = Authority::from_secret(&[7; 32]);
    let cert = authority.issue("benchuser", b"some-peer-id-bytes-0123456789", 1_800_000_000, 1);
    let key = authority.public();
    let t = Instant::now();
    for _ in 0..VERIFICATIONS {
        assert!(cert.verify(&key, b"some-peer-id-bytes-0123456789", 1_800_000_100).is_ok());
    }
    let per_second = VERIFICATIONS as f64 / t.elapsed().as_secs_f64();

    println!("| figure | value | goal |");
    println!("|---|---|---|");
    println!(
        "| argon2id verify (19 MiB, t=2, p=1), {HASHES} runs | p50 {:.1} ms, max {:.1} ms | |",
        ms(hash_p50),
        ms(*hash_times.last().unwrap())
    );
    println!(
        "| login over loopback, {LOGINS} runs | p50 {:.1} ms, p99 {:.1} ms | p50 ≤ {:.1} ms (hash + 5 ms): {} |",
        ms(login_p50),
        ms(percentile(&logins, 0.99)),
        ms(hash_p50) + 5.0,
        if login_p50 <= hash_p50 + Duration::from_millis(5) { "met" } else { "missed" }
    );
    println!(
        "| certificate verifications | {per_second:.0}/s | ≥ 10,000/s: {} |",
        if per_second >= 10_000.0 { "met" } else { "missed" }
    );
    boot.client.shutdown().await;
    user.client.shutdown().await;
}
