//! Login latency through a real bootstrap node on loopback and the argon2id verification it
//! costs, measured the same way by `benches/accounts.rs` and the suite.

use std::time::{Duration, Instant};

use meshchat::bootstrap::password::Hasher;
use meshchat::bootstrap::throttle::LOGIN_PER_PAIR;

use super::{Node, PASSWORD};

/// `count` logins through a bootstrap node on loopback (logout, then time `login` to its
/// answer) and `count` argon2id verifications of a right password (19 MiB, t=2, p=1), taken in
/// turn so that both see the machine in the same state; each sorted. A fresh account every
/// [`LOGIN_PER_PAIR`] logins: the bootstrap takes no more from one machine into one account
/// within its window.
pub async fn login_and_hash_times(count: usize) -> (Vec<Duration>, Vec<Duration>) {
    let hasher = Hasher::new().unwrap();
    let hash = hasher.hash(PASSWORD).unwrap();
    let boot = Node::start(true, None).await;
    let mut user = Node::start(false, Some(&boot.listen[0])).await;
    user.wait_bootstrap().await;
    let mut events = user.take_events();
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let per_account = LOGIN_PER_PAIR.max_requests as usize;
    let (mut logins, mut hashes) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for i in 0..count {
        let name = format!("benchuser{}", i / per_account);
        if i % per_account == 0 {
            if i > 0 {
                user.client.logout().await.unwrap();
            }
            user.client.register(&name, PASSWORD).await.unwrap();
        }
        let t = Instant::now();
        assert!(hasher.verify(PASSWORD, Some(&hash)));
        hashes.push(t.elapsed());
        user.client.logout().await.unwrap();
        let t = Instant::now();
        user.client.login(&name, PASSWORD).await.unwrap();
        logins.push(t.elapsed());
    }
    boot.client.shutdown().await;
    user.client.shutdown().await;
    logins.sort();
    hashes.sort();
    (logins, hashes)
}
