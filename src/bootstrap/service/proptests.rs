//! Property tests of the account service: any interleaving of registrations, renames, logins,
//! renewals and logouts keeps every name with one account.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::account::{AccountId, canonical};
use crate::cert::Certificate;
use crate::directory::Directory;

const NAMES: &[&str] = &["alice", "Alice", "bob", "BOB"];
const PEERS: usize = 3;
const HOLD: u64 = 100;
const GOOD: &str = "correct horse battery staple";
const START: u64 = 1_800_000_000;
/// The host every test peer asks from unless it says otherwise: this machine.
const LOOPBACK: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

#[derive(Debug, Clone)]
enum Op {
    Register(usize, usize),
    Login(usize, usize),
    Rename(usize, usize),
    Renew(usize),
    Logout(usize),
    Wait(u64),
}

fn any_op() -> impl Strategy<Value = Op> {
    let peer = 0..PEERS;
    let name = 0..NAMES.len();
    prop_oneof![
        3 => (peer.clone(), name.clone()).prop_map(|(p, n)| Op::Register(p, n)),
        1 => (peer.clone(), name.clone()).prop_map(|(p, n)| Op::Login(p, n)),
        3 => (peer.clone(), name).prop_map(|(p, n)| Op::Rename(p, n)),
        1 => peer.clone().prop_map(Op::Renew),
        1 => peer.prop_map(Op::Logout),
        2 => prop_oneof![0u64..HOLD / 2, HOLD..2 * HOLD].prop_map(Op::Wait),
    ]
}

/// Who may be given a name: the account holding it, and since when it is free of it.
#[derive(Debug, Clone, Copy)]
struct Holding {
    account: AccountId,
    released_at: Option<u64>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_name_ever_speaks_for_two_accounts(ops in prop::collection::vec(any_op(), 1..14), seed in any::<u64>()) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = AuthService::open(dir.path(), Authority::from_secret(&[9; 32])).unwrap().with_name_hold(HOLD);
        let key = s.authority_key();
        let mut now = START;
        let mut issued: Vec<Certificate> = Vec::new();
        let mut holdings: HashMap<String, Holding> = HashMap::new();
        let mut current: HashMap<AccountId, String> = HashMap::new();
        for op in ops {
            let (peer, request) = match op {
                Op::Wait(secs) => {
                    now += secs;
                    continue;
                }
                Op::Register(p, n) => (p, AuthRequest::Register { username: NAMES[n].into(), password: GOOD.into() }),
                Op::Login(p, n) => (p, AuthRequest::Login { username: NAMES[n].into(), password: GOOD.into() }),
                Op::Rename(p, n) => (p, AuthRequest::Rename { new_username: NAMES[n].into() }),
                Op::Renew(p) => (p, AuthRequest::Renew),
                Op::Logout(p) => (p, AuthRequest::Logout),
            };
            let peer_id = [b'p', peer as u8];
            let AuthResponse::Granted { certificate, .. } = s.handle(&peer_id, LOOPBACK, request, now) else { continue };
            let body = certificate.verify(&key, &peer_id, now).expect("a valid certificate").clone();
            let name = canonical(&body.username);
            // Nobody else holds the name, or let go of it less than the hold ago.
            if let Some(h) = holdings.get(&name) {
                prop_assert!(
                    h.account == body.account || h.released_at.is_some_and(|at| now >= at + HOLD),
                    "{} given to {} while {:?} holds it", name, body.account, h
                );
            }
            if let Some(old) = current.insert(body.account, name.clone()).filter(|old| *old != name) {
                holdings.insert(old, Holding { account: body.account, released_at: Some(now) });
            }
            holdings.insert(name.clone(), Holding { account: body.account, released_at: None });
            // One account per canonical name in the database.
            let found = s.accounts.find(&body.username).unwrap().expect("the account");
            prop_assert_eq!(found.id, body.account);
            issued.push(certificate);
        }
        // Whatever order a node hears the certificates in, each account goes by the name of
        // its newest certificate, and a name finds only its newest holder.
        let mut order: Vec<usize> = (0..issued.len()).collect();
        let mut x = seed | 1;
        for i in (1..order.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut directory = Directory::new();
        for i in order {
            directory.learn(&issued[i].body);
        }
        for (account, name) in &current {
            prop_assert_eq!(canonical(&directory.name_of(account)), name.clone());
            prop_assert_eq!(directory.find(name), Some(*account));
        }
    }
}
