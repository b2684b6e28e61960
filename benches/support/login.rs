//! Login latency through a real bootstrap node on loopback and the argon2id verification it
//! costs, measured the same way by `benches/accounts.rs` and the suite.

use std::time::{Duration, Instant};

use meshchat::bootstrap::password::Hasher;
use meshchat::ui::UiEvent;

use super::{Node, PASSWORD};

/// `count` argon2id verifications of a right password (19 MiB, t=2, p=1), sorted.
pub fn hash_times(count: usize) -> Vec<Duration> {
    let hasher = Hasher::new().unwrap();
    let hash = hasher.hash(PASSWORD).unwrap();
    let mut times: Vec<Duration> = (0..count)
        .map(|_| {
            let t = Instant::now();
            assert!(hasher.verify(PASSWORD, Some(&hash)));
            t.elapsed()
        })
        .collect();
    times.sort();
    times
}

/// `count` logins (logout, then time `login` to its answer) of one user through a bootstrap
/// node on loopback, sorted.
pub async fn login_times(count: usize) -> Vec<Duration> {
    let boot = Node::start(true, None).await;
    let mut user = Node::start(false, Some(&boot.listen[0])).await;
    user.wait(|e| matches!(e, UiEvent::Bootstrap { .. })).await;
    let mut events = user.take_events();
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    user.client.register("benchuser", PASSWORD).await.unwrap();
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        user.client.logout().await.unwrap();
        let t = Instant::now();
        user.client.login("benchuser", PASSWORD).await.unwrap();
        times.push(t.elapsed());
    }
    boot.client.shutdown().await;
    user.client.shutdown().await;
    times.sort();
    times
}
