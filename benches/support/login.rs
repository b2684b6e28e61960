//! Login latency through a real bootstrap node on loopback and the argon2id verification it
//! costs, measured the same way by `benches/accounts.rs` and the suite.

use std::time::{Duration, Instant};

use meshchat::bootstrap::password::Hasher;

use super::{Node, PASSWORD};

/// `count` logins of one user through a bootstrap node on loopback (logout, then time `login`
/// to its answer) and `count` argon2id verifications of a right password (19 MiB, t=2, p=1),
/// taken in turn so that both see the machine in the same state; each sorted.
pub async fn login_and_hash_times(count: usize) -> (Vec<Duration>, Vec<Duration>) {
    let hasher = Hasher::new().unwrap();
    let hash = hasher.hash(PASSWORD).unwrap();
    let boot = Node::start(true, None).await;
    let mut user = Node::start(false, Some(&boot.listen[0])).await;
    user.wait_bootstrap().await;
    let mut events = user.take_events();
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    user.client.register("benchuser", PASSWORD).await.unwrap();
    let (mut logins, mut hashes) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for _ in 0..count {
        let t = Instant::now();
        assert!(hasher.verify(PASSWORD, Some(&hash)));
        hashes.push(t.elapsed());
        user.client.logout().await.unwrap();
        let t = Instant::now();
        user.client.login("benchuser", PASSWORD).await.unwrap();
        logins.push(t.elapsed());
    }
    boot.client.shutdown().await;
    user.client.shutdown().await;
    logins.sort();
    hashes.sort();
    (logins, hashes)
}
