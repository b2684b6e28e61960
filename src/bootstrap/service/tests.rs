//! Tests of the account service: each answer and refusal through `AuthService::handle` on a
//! real account database in a temporary directory.

use super::*;
use std::net::Ipv4Addr;

use crate::bootstrap::throttle::{
    HOST_FREE_FAILURES, LOGIN_KNOWN_PER_ACCOUNT, LOGIN_PER_PAIR, LOOKUP_OVERALL, LOOKUP_PER_ACCOUNT, LOOKUP_PER_HOST,
    MAX_BLOCK_SECS, PAIR_FREE_FAILURES, REGISTER_OVERALL, REGISTER_PER_HOST, REGISTER_PER_PEER, RENAME_PER_PEER,
    RENEW_PER_PEER, STRANGERS_FREE_FAILURES,
};

const NOW: u64 = 1_800_000_000;
/// The host every test peer asks from unless it says otherwise: this machine.
const LOOPBACK: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
const GOOD: &str = "correct horse battery staple";

fn service() -> (tempfile::TempDir, AuthService) {
    let dir = tempfile::tempdir().unwrap();
    let service = AuthService::open(dir.path(), Authority::from_secret(&[9; 32])).unwrap();
    (dir, service)
}

fn register(s: &mut AuthService, peer: &[u8], name: &str, pw: &str) -> AuthResponse {
    s.handle(peer, LOOPBACK, AuthRequest::Register { username: name.into(), password: pw.into() }, NOW)
}

fn login(s: &mut AuthService, peer: &[u8], name: &str, pw: &str) -> AuthResponse {
    s.handle(peer, LOOPBACK, AuthRequest::Login { username: name.into(), password: pw.into() }, NOW)
}

/// A host on the LAN: 192.168.1.`n`.
fn lan(n: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, n)))
}

/// `request` from `peer` on `host` at `at`.
fn from(s: &mut AuthService, peer: &[u8], host: Option<IpAddr>, request: AuthRequest, at: u64) -> AuthResponse {
    s.handle(peer, host, request, at)
}

fn login_req(name: &str, pw: &str) -> AuthRequest {
    AuthRequest::Login { username: name.into(), password: pw.into() }
}

fn register_req(name: &str) -> AuthRequest {
    AuthRequest::Register { username: name.into(), password: GOOD.into() }
}

/// The message of a refusal.
fn message(r: &AuthResponse) -> &str {
    match r {
        AuthResponse::Refused { message, .. } => message,
        _ => "",
    }
}

fn refusal(r: &AuthResponse) -> Option<Refusal> {
    match r {
        AuthResponse::Refused { refusal, .. } => Some(*refusal),
        _ => None,
    }
}

#[test]
fn register_then_login_grants_verifiable_certificates() {
    let (_dir, mut s) = service();
    let AuthResponse::Granted { certificate, .. } = register(&mut s, b"peer-a", "alice", GOOD) else { panic!() };
    assert_eq!(certificate.verify(&s.authority_key(), b"peer-a", NOW).map(|b| b.username.as_str()), Ok("alice"));
    let AuthResponse::Granted { certificate: second, .. } = login(&mut s, b"peer-b", "ALICE", GOOD) else { panic!() };
    assert_eq!(second.verify(&s.authority_key(), b"peer-b", NOW).map(|b| b.username.as_str()), Ok("alice"));
    assert!(second.body.serial > certificate.body.serial);
    assert_eq!(second.body.account, certificate.body.account, "one account, one id");
    let AuthResponse::Granted { certificate: bob, .. } = register(&mut s, b"peer-c", "bob", GOOD) else { panic!() };
    assert_ne!(bob.body.account, certificate.body.account);
}

#[test]
fn an_account_holds_valid_certificates_on_a_bounded_number_of_machines() {
    use crate::bootstrap::accounts::CERTIFIED_MACHINES_MAX;
    let (_dir, mut s) = service();
    register(&mut s, b"m0", "alice", GOOD);
    // A new machine a minute, as slowly as the logins of machines new to an account are counted.
    let at = |i: usize| NOW + 60 * i as u64;
    let login_at = |s: &mut AuthService, peer: &[u8], at: u64| {
        s.handle(peer, LOOPBACK, AuthRequest::Login { username: "alice".into(), password: GOOD.into() }, at)
    };
    for i in 1..CERTIFIED_MACHINES_MAX {
        let granted = login_at(&mut s, format!("m{i}").as_bytes(), at(i));
        assert!(matches!(granted, AuthResponse::Granted { .. }), "machine {i}: {granted:?}");
    }
    let then = at(CERTIFIED_MACHINES_MAX);
    let refused = login_at(&mut s, b"one more", then);
    assert_eq!(refusal(&refused), Some(Refusal::RateLimited));
    let AuthResponse::Refused { message, .. } = &refused else { unreachable!() };
    assert!(message.contains(&format!("in {} s", NOW + CERT_LIFETIME_SECS - then)), "{message}");
    assert!(matches!(login_at(&mut s, b"m5", then), AuthResponse::Granted { .. }), "a machine holding one may");
    assert!(
        matches!(s.handle(b"m7", LOOPBACK, AuthRequest::Renew, then + 60), AuthResponse::Granted { .. }),
        "and renew"
    );
    assert!(matches!(register(&mut s, b"one more", "bob", GOOD), AuthResponse::Granted { .. }), "others are free");
    // The moment m0's certificate expires, its place is free.
    let expired = NOW + CERT_LIFETIME_SECS;
    let before = login_at(&mut s, b"one more", expired - 1);
    assert_eq!(refusal(&before), Some(Refusal::RateLimited), "{before:?}");
    let at = login_at(&mut s, b"one more", expired);
    assert!(matches!(at, AuthResponse::Granted { .. }), "{at:?}");
}

#[test]
fn refusals_have_their_reasons() {
    let (_dir, mut s) = service();
    assert_eq!(refusal(&register(&mut s, b"p", "al", GOOD)), Some(Refusal::InvalidUsername));
    assert_eq!(refusal(&register(&mut s, b"p", "alice", "password1")), Some(Refusal::WeakPassword));
    register(&mut s, b"p", "alice", GOOD);
    assert_eq!(refusal(&register(&mut s, b"q", "Alice", GOOD)), Some(Refusal::UsernameTaken));
    assert_eq!(refusal(&login(&mut s, b"q", "alice", "wrong password")), Some(Refusal::WrongCredentials));
    assert_eq!(refusal(&login(&mut s, b"q", "nobody", GOOD)), Some(Refusal::WrongCredentials));
    assert_eq!(refusal(&s.handle(b"z", LOOPBACK, AuthRequest::Renew, NOW)), Some(Refusal::NotLoggedIn));
}

#[test]
fn guessing_is_rate_limited_even_with_the_right_password() {
    let (_dir, mut s) = service();
    register(&mut s, b"p", "alice", GOOD);
    let answers: Vec<Option<Refusal>> =
        (0..12).map(|_| refusal(&login(&mut s, b"mallory", "alice", "guess"))).collect();
    assert!(answers[..PAIR_FREE_FAILURES as usize].iter().all(|r| *r == Some(Refusal::WrongCredentials)));
    assert_eq!(answers[11], Some(Refusal::RateLimited));
    // Blocked before hashing: even the right password is refused now.
    assert_eq!(refusal(&login(&mut s, b"mallory", "alice", GOOD)), Some(Refusal::RateLimited));
}

fn lookup(s: &mut AuthService, peer: &[u8], name: &str) -> AuthResponse {
    s.handle(peer, LOOPBACK, AuthRequest::Lookup { username: name.into() }, NOW)
}

/// Logs `peer` in as the account `name` (made when first needed), without hashing.
fn logged_in(s: &mut AuthService, peer: &[u8], name: &str) {
    let id = match s.accounts.find(name).unwrap() {
        Some(account) => account.id,
        None => s.accounts.create(name, "$argon2id$x", NOW).unwrap(),
    };
    s.accounts.begin_session(peer, id, &[], NOW).unwrap();
}

/// alice registered on her machine `home` and logged out there.
fn alice_at_home() -> (tempfile::TempDir, AuthService) {
    let (dir, mut s) = service();
    assert!(matches!(register(&mut s, b"home", "alice", GOOD), AuthResponse::Granted { .. }));
    assert_eq!(s.handle(b"home", LOOPBACK, AuthRequest::Logout, NOW), AuthResponse::LoggedOut);
    (dir, s)
}

#[test]
fn a_guessing_stranger_is_blocked_on_its_own_key_and_the_owner_logs_in() {
    let (_dir, mut s) = alice_at_home();
    let answers: Vec<Option<Refusal>> = (0..8).map(|_| refusal(&login(&mut s, b"mallory", "alice", "guess"))).collect();
    assert_eq!(answers[PAIR_FREE_FAILURES as usize], Some(Refusal::RateLimited), "{answers:?}");
    assert_eq!(refusal(&login(&mut s, b"mallory", "alice", GOOD)), Some(Refusal::RateLimited));
    // Another stranger is not held back by mallory's key, nor is the owner's machine.
    assert_eq!(refusal(&login(&mut s, b"eve", "alice", "guess")), Some(Refusal::WrongCredentials));
    assert_eq!(refusal(&login(&mut s, b"home", "alice", GOOD)), None, "the owner logs in");
    assert_eq!(refusal(&login(&mut s, b"mallory", "alice", GOOD)), Some(Refusal::RateLimited));
}

#[test]
fn strangers_of_one_host_together_meet_its_limit_and_the_owner_still_logs_in() {
    let (_dir, mut s) = alice_at_home();
    // Each stranger stays under its own limit; together, all on this host, they pass the
    // host's one.
    let per_stranger = PAIR_FREE_FAILURES - 1;
    let strangers = HOST_FREE_FAILURES.div_ceil(per_stranger);
    for i in 0..strangers {
        for _ in 0..per_stranger {
            let answer = refusal(&login(&mut s, format!("stranger-{i}").as_bytes(), "alice", "guess"));
            assert!(matches!(answer, Some(Refusal::WrongCredentials | Refusal::RateLimited)), "{answer:?}");
        }
    }
    let fresh = login(&mut s, b"fresh", "alice", GOOD);
    assert_eq!(refusal(&fresh), Some(Refusal::RateLimited), "even the right password waits: {fresh:?}");
    assert!(message(&fresh).contains("machines it has not used"), "{fresh:?}");
    assert!(message(&fresh).contains("from this host"), "{fresh:?}");
    // The owner's machine is not a stranger: in at once, even after its own mistake.
    assert_eq!(refusal(&login(&mut s, b"home", "alice", "typo")), Some(Refusal::WrongCredentials));
    assert_eq!(refusal(&login(&mut s, b"home", "alice", GOOD)), None);
    // Nor is a new machine on another host held back.
    assert_eq!(refusal(&from(&mut s, b"laptop", lan(5), login_req("alice", GOOD), NOW)), None);
    // Other accounts are not affected.
    register(&mut s, b"bob-home", "bob", GOOD);
    assert_eq!(refusal(&login(&mut s, b"fresh", "bob", GOOD)), None);
    // Once the block is over, strangers may try again.
    let later = s.handle(b"fresh", LOOPBACK, login_req("alice", GOOD), NOW + 3600);
    assert_eq!(refusal(&later), None, "{later:?}");
}

#[test]
fn a_stranger_failing_past_every_block_holds_back_its_own_host_and_no_other() {
    let (_dir, mut s) = alice_at_home();
    // mallory, on one host, guesses alice's password from a fresh peer id every 10 s for
    // three hours: each block is waited out, and each attempt after one is a failure.
    let mallory = lan(66);
    let (mut failures, mut last_failure) = (0, NOW);
    for i in 0..3 * 360 {
        let at = NOW + 10 * i;
        let answer = from(&mut s, format!("mallory-{i}").as_bytes(), mallory, login_req("alice", "guess"), at);
        match refusal(&answer) {
            Some(Refusal::WrongCredentials) => (failures, last_failure) = (failures + 1, at),
            Some(Refusal::RateLimited) => {}
            other => panic!("{other:?}: {answer:?}"),
        }
    }
    assert!(failures > 2 * HOST_FREE_FAILURES, "mallory failed past every block: {failures}");
    // Her last failure blocks her host: a fresh peer id there is held back, right password or not.
    let at = last_failure + 1;
    let blocked = from(&mut s, b"mallory-fresh", mallory, login_req("alice", GOOD), at);
    assert_eq!(refusal(&blocked), Some(Refusal::RateLimited), "{blocked:?}");
    assert!(message(&blocked).contains("from this host"), "{blocked:?}");
    // alice on a new machine, on another host, logs in at once.
    let laptop = from(&mut s, b"laptop", lan(5), login_req("alice", GOOD), at);
    assert!(matches!(laptop, AuthResponse::Granted { .. }), "{laptop:?}");
    // And mallory's host is still held back.
    let still = from(&mut s, b"mallory-fresher", mallory, login_req("alice", GOOD), at + 1);
    assert_eq!(refusal(&still), Some(Refusal::RateLimited), "{still:?}");
}

#[test]
fn strangers_of_several_hosts_meet_the_account_wide_limit_and_the_owner_still_logs_in() {
    let (_dir, mut s) = alice_at_home();
    // Each host stays under its own limit, each guess from a fresh peer id; together they pass
    // the account's.
    let per_host = HOST_FREE_FAILURES - 1;
    let hosts = STRANGERS_FREE_FAILURES.div_ceil(per_host);
    for h in 0..hosts {
        for i in 0..per_host {
            let peer = format!("stranger-{h}-{i}");
            let answer = from(&mut s, peer.as_bytes(), lan(100 + h as u8), login_req("alice", "guess"), NOW);
            assert!(matches!(refusal(&answer), Some(Refusal::WrongCredentials | Refusal::RateLimited)), "{answer:?}");
        }
    }
    let fresh = from(&mut s, b"fresh", lan(5), login_req("alice", GOOD), NOW);
    assert_eq!(refusal(&fresh), Some(Refusal::RateLimited), "{fresh:?}");
    assert!(message(&fresh).contains("from several hosts"), "{fresh:?}");
    // The owner's machine is not a stranger: in at once.
    assert_eq!(refusal(&login(&mut s, b"home", "alice", GOOD)), None);
    // Once the block is over, a new machine gets in too.
    let later = from(&mut s, b"fresh", lan(5), login_req("alice", GOOD), NOW + MAX_BLOCK_SECS);
    assert_eq!(refusal(&later), None, "{later:?}");
}

#[test]
fn hosts_are_addresses_an_ipv6_network_s_64_and_loopback_and_relayed_ones_apart() {
    let key = |s: &str| host_key(Some(s.parse().unwrap()));
    assert_eq!(key("192.168.1.5"), "192.168.1.5");
    assert_ne!(key("192.168.1.5"), key("192.168.1.6"));
    assert_eq!(key("::ffff:192.168.1.5"), "192.168.1.5", "an IPv4-mapped address is its IPv4 one");
    assert_eq!(key("fd00:1:2:3::1"), key("fd00:1:2:3:ffff:abcd:1:2"), "one /64 is one host");
    assert_ne!(key("fd00:1:2:3::1"), key("fd00:1:2:4::1"));
    assert_eq!(key("127.0.0.1"), "loopback");
    assert_eq!(key("127.0.0.2"), key("::1"));
    assert_eq!(host_key(None), "relayed");
}

#[test]
fn logins_for_names_that_do_not_exist_count_against_the_asking_peer() {
    let (_dir, mut s) = alice_at_home();
    let answers: Vec<Option<Refusal>> =
        (0..=PAIR_FREE_FAILURES).map(|i| refusal(&login(&mut s, b"q", &format!("nobody{i}"), GOOD))).collect();
    assert_eq!(answers[0], Some(Refusal::WrongCredentials));
    assert_eq!(answers[PAIR_FREE_FAILURES as usize], Some(Refusal::RateLimited), "{answers:?}");
    assert_eq!(refusal(&login(&mut s, b"r", "nobody", GOOD)), Some(Refusal::WrongCredentials));
    assert_eq!(refusal(&login(&mut s, b"home", "alice", GOOD)), None);
}

#[test]
fn logins_for_names_that_do_not_exist_count_against_the_host_too_and_hold_back_no_account() {
    let (_dir, mut s) = alice_at_home();
    // mallory's host asks for names that do not exist from ever new peer ids: each would be
    // hashed.
    let mallory = lan(66);
    let answers: Vec<Option<Refusal>> = (0..=HOST_FREE_FAILURES)
        .map(|i| {
            refusal(&from(&mut s, format!("m{i}").as_bytes(), mallory, login_req(&format!("nobody{i}"), GOOD), NOW))
        })
        .collect();
    assert!(answers[..HOST_FREE_FAILURES as usize].iter().all(|a| *a == Some(Refusal::WrongCredentials)));
    assert_eq!(answers[HOST_FREE_FAILURES as usize], Some(Refusal::RateLimited), "{answers:?}");
    // Another host is not held back, and neither is a login to an account that exists.
    let other = from(&mut s, b"r", lan(7), login_req("nobody", GOOD), NOW);
    assert_eq!(refusal(&other), Some(Refusal::WrongCredentials));
    let laptop = from(&mut s, b"laptop", mallory, login_req("alice", GOOD), NOW);
    assert!(matches!(laptop, AuthResponse::Granted { .. }), "{laptop:?}");
}

#[test]
fn registrations_are_limited_per_peer_per_host_and_overall() {
    let (_dir, mut s) = service();
    // Each registration that gets as far as hashing counts.
    for i in 0..REGISTER_PER_PEER.max_requests {
        let answer = from(&mut s, b"p", lan(1), register_req(&format!("user-{i}")), NOW);
        assert!(matches!(answer, AuthResponse::Granted { .. }), "{answer:?}");
    }
    let limited = from(&mut s, b"p", lan(2), register_req("alice"), NOW);
    assert_eq!(refusal(&limited), Some(Refusal::RateLimited), "the peer's own limit, whatever its host");
    let limited = from(&mut s, b"q", lan(1), register_req("alice"), NOW);
    assert_eq!(refusal(&limited), Some(Refusal::RateLimited), "the host's, whatever the peer");
    assert!(matches!(from(&mut s, b"q", lan(2), register_req("alice"), NOW), AuthResponse::Granted { .. }));
    // All hosts together: fill what is left of the overall window.
    let used = REGISTER_PER_PEER.max_requests + 1;
    for _ in used..REGISTER_OVERALL.max_requests {
        s.windows.admit(&[("register:*", &REGISTER_OVERALL)], NOW).unwrap();
    }
    assert_eq!(refusal(&from(&mut s, b"newcomer", lan(3), register_req("carol"), NOW)), Some(Refusal::RateLimited));
    // A new window, a new chance.
    let later = REGISTER_PER_PEER.window_secs.max(REGISTER_PER_HOST.window_secs).max(REGISTER_OVERALL.window_secs);
    let again = from(&mut s, b"p", lan(1), register_req("carol"), NOW + later);
    assert!(matches!(again, AuthResponse::Granted { .. }), "{again:?}");
}

#[test]
fn this_machine_registers_more_than_a_hosts_share() {
    let (_dir, mut s) = service();
    let here: Option<IpAddr> = Some("127.0.0.1".parse().unwrap());
    // Nodes run on this very machine (a room of 32 started at once, say): each its own peer.
    for i in 0..2 * REGISTER_PER_HOST.max_requests {
        let answer = from(&mut s, format!("node-{i}").as_bytes(), here, register_req(&format!("user-{i}")), NOW);
        assert!(matches!(answer, AuthResponse::Granted { .. }), "{answer:?}");
    }
    // Still one peer's own limit.
    for i in 0..REGISTER_PER_PEER.max_requests {
        from(&mut s, b"one", here, register_req(&format!("one-{i}")), NOW);
    }
    assert_eq!(refusal(&from(&mut s, b"one", here, register_req("one-more"), NOW)), Some(Refusal::RateLimited));
}

#[test]
fn one_host_s_many_peer_ids_fill_only_its_own_registrations() {
    let (_dir, mut s) = service();
    // mallory's host asks from ever new peer ids, each under its own limit.
    let mut granted = 0;
    for i in 0..5 * REGISTER_PER_HOST.max_requests {
        let answer = from(&mut s, format!("mallory-{i}").as_bytes(), lan(66), register_req(&format!("m-{i}")), NOW);
        match answer {
            AuthResponse::Granted { .. } => granted += 1,
            other => assert_eq!(refusal(&other), Some(Refusal::RateLimited), "{other:?}"),
        }
    }
    assert_eq!(granted, REGISTER_PER_HOST.max_requests);
    // Everyone else registers as ever.
    let carol = from(&mut s, b"carol", lan(7), register_req("carol"), NOW);
    assert!(matches!(carol, AuthResponse::Granted { .. }), "{carol:?}");
}

#[test]
fn refused_registrations_use_up_no_budget_and_a_genuine_one_succeeds() {
    let (_dir, mut s) = service();
    register(&mut s, b"home", "alice", GOOD);
    // Far more junk than both budgets admit, from one peer and from many fresh ones: bad
    // names, weak passwords, a name that is held.
    let junk = 2 * REGISTER_PER_HOST.max_requests.max(REGISTER_PER_PEER.max_requests);
    let mut answers = Vec::new();
    for i in 0..junk {
        let fresh = format!("junk-{i}");
        for peer in [b"p".as_slice(), fresh.as_bytes()] {
            answers.push((refusal(&register(&mut s, peer, "!", GOOD)), Refusal::InvalidUsername));
            answers.push((refusal(&register(&mut s, peer, "mallory", "password1")), Refusal::WeakPassword));
            answers.push((refusal(&register(&mut s, peer, "ALICE", GOOD)), Refusal::UsernameTaken));
        }
    }
    let genuine = register(&mut s, b"newcomer", "carol", GOOD);
    assert!(matches!(genuine, AuthResponse::Granted { .. }), "{genuine:?}");
    let same_peer = register(&mut s, b"p", "dave", GOOD);
    assert!(matches!(same_peer, AuthResponse::Granted { .. }), "{same_peer:?}");
    // Each junk request was told its own reason, never to wait.
    for (got, reason) in answers {
        assert_eq!(got, Some(reason));
    }
}

#[test]
fn look_ups_are_limited_per_account_per_host_and_overall() {
    let (_dir, mut s) = alice_at_home();
    let ask = |s: &mut AuthService, peer: &[u8], host: u8| {
        from(s, peer, lan(host), AuthRequest::Lookup { username: "alice".into() }, NOW)
    };
    logged_in(&mut s, b"p", "looker");
    for _ in 0..LOOKUP_PER_ACCOUNT.max_requests {
        assert!(matches!(ask(&mut s, b"p", 1), AuthResponse::User { account: Some(_) }));
    }
    assert_eq!(refusal(&ask(&mut s, b"p", 1)), Some(Refusal::RateLimited));
    // The same account on other peers, on other hosts, shares the budget.
    for i in 0..5 {
        logged_in(&mut s, format!("also looker {i}").as_bytes(), "looker");
        assert_eq!(refusal(&ask(&mut s, format!("also looker {i}").as_bytes(), 10 + i)), Some(Refusal::RateLimited));
    }
    // Other accounts on the same host share the host's.
    let mut asked = LOOKUP_PER_ACCOUNT.max_requests;
    for i in 0.. {
        if asked >= LOOKUP_PER_HOST.max_requests {
            break;
        }
        let peer = format!("q{i}");
        logged_in(&mut s, peer.as_bytes(), &format!("looker{i}"));
        for _ in 0..LOOKUP_PER_ACCOUNT.max_requests.min(LOOKUP_PER_HOST.max_requests - asked) {
            assert!(matches!(ask(&mut s, peer.as_bytes(), 1), AuthResponse::User { account: Some(_) }));
            asked += 1;
        }
    }
    logged_in(&mut s, b"housemate", "housemate");
    assert_eq!(refusal(&ask(&mut s, b"housemate", 1)), Some(Refusal::RateLimited));
    assert!(matches!(ask(&mut s, b"housemate", 2), AuthResponse::User { account: Some(_) }), "another host");
    // All hosts together: fill what is left of the overall window.
    for _ in (asked + 1)..LOOKUP_OVERALL.max_requests {
        s.windows.admit(&[("lookup:*", &LOOKUP_OVERALL)], NOW).unwrap();
    }
    logged_in(&mut s, b"newcomer", "newcomer");
    assert_eq!(refusal(&ask(&mut s, b"newcomer", 3)), Some(Refusal::RateLimited));
    let later = from(&mut s, b"p", lan(1), AuthRequest::Lookup { username: "alice".into() }, NOW + 60);
    assert!(matches!(later, AuthResponse::User { account: Some(_) }), "{later:?}");
}

#[test]
fn a_look_up_needs_a_session_and_others_use_up_no_budget() {
    let (_dir, mut s) = alice_at_home();
    // Far more look-ups than the overall budget admits, from fresh peers without a session.
    for i in 0..2 * LOOKUP_PER_HOST.max_requests {
        let answer = lookup(&mut s, format!("stranger-{i}").as_bytes(), "alice");
        assert_eq!(answer, refused(Refusal::NotLoggedIn, "log in first"), "{i}");
    }
    // alice logged out at home: not even her own machine looks names up now.
    assert_eq!(refusal(&lookup(&mut s, b"home", "bob")), Some(Refusal::NotLoggedIn));
    logged_in(&mut s, b"home", "looker");
    let answer = lookup(&mut s, b"home", "alice");
    assert!(matches!(answer, AuthResponse::User { account: Some(_) }), "{answer:?}");
}

#[test]
fn the_queue_class_follows_the_machines_that_held_the_account_asked_for() {
    let (_dir, mut s) = alice_at_home();
    let login_req = |name: &str| AuthRequest::Login { username: name.into(), password: GOOD.into() };
    assert_eq!(s.class_of(b"home", &login_req("alice")), Class::Known);
    assert_eq!(s.class_of(b"home", &login_req("ALICE")), Class::Known, "the name in any case");
    register(&mut s, b"bob-home", "bob", GOOD);
    assert_eq!(s.class_of(b"home", &login_req("bob")), Class::Stranger, "alice's machine is a stranger to bob");
    assert_eq!(s.class_of(b"home", &login_req("nobody")), Class::Stranger);
    assert_eq!(s.class_of(b"stranger", &login_req("alice")), Class::Stranger);
    let reg = AuthRequest::Register { username: "carol".into(), password: GOOD.into() };
    assert_eq!(s.class_of(b"stranger", &reg), Class::Stranger);
    assert_eq!(s.class_of(b"home", &reg), Class::Stranger, "a registration is never a known machine's");
    let lookup = AuthRequest::Lookup { username: "alice".into() };
    assert_eq!(s.class_of(b"stranger", &AuthRequest::Renew), Class::Stranger, "no session: to be refused");
    assert_eq!(s.class_of(b"stranger", &lookup), Class::Stranger);
    login(&mut s, b"stranger", "alice", GOOD);
    assert_eq!(s.class_of(b"stranger", &login_req("alice")), Class::Known, "it held alice's certificate now");
    assert_eq!(s.class_of(b"stranger", &AuthRequest::Renew), Class::Quick, "and has a session");
    assert_eq!(s.class_of(b"stranger", &lookup), Class::Quick);
}

#[test]
fn every_login_that_would_be_hashed_counts_even_with_the_right_password() {
    let (_dir, mut s) = service();
    register(&mut s, b"m1", "mallory", GOOD);
    for i in 0..LOGIN_PER_PAIR.max_requests {
        let granted = login(&mut s, b"m1", "mallory", GOOD);
        assert!(matches!(granted, AuthResponse::Granted { .. }), "login {i}: {granted:?}");
    }
    let limited = login(&mut s, b"m1", "mallory", GOOD);
    let AuthResponse::Refused { refusal: Refusal::RateLimited, message } = &limited else { panic!("{limited:?}") };
    assert!(message.contains("too many logins"), "{message}");
    // Refused before hashing: a wrong password is not even tried, and is no failure.
    let wrong = login(&mut s, b"m1", "mallory", "not the password at all");
    assert_eq!(refusal(&wrong), Some(Refusal::RateLimited), "{wrong:?}");
    let id = s.accounts.find("mallory").unwrap().unwrap().id;
    assert_eq!(s.accounts.failures(&pair_key(id, b"m1")).unwrap(), None);
    // When the window is over, logins go on.
    let later =
        s.handle(b"m1", LOOPBACK, AuthRequest::Login { username: "mallory".into(), password: GOOD.into() }, NOW + 600);
    assert!(matches!(later, AuthResponse::Granted { .. }), "{later:?}");
}

#[test]
fn an_account_s_known_machines_share_a_bound_that_holds_back_nobody_else() {
    let (_dir, mut s) = alice_at_home();
    // mallory's machines each held her certificate; together they ask for more than her account
    // may.
    let machines = LOGIN_KNOWN_PER_ACCOUNT.max_requests.div_ceil(LOGIN_PER_PAIR.max_requests) + 1;
    let peers: Vec<Vec<u8>> = (0..machines).map(|i| format!("mallory-{i}").into_bytes()).collect();
    let mallory = s.accounts.create("mallory", &s.hasher.hash(GOOD).unwrap(), NOW).unwrap();
    for peer in &peers {
        s.accounts.begin_session(peer, mallory, &[], NOW).unwrap();
    }
    let mut granted = 0;
    for peer in &peers {
        for _ in 0..LOGIN_PER_PAIR.max_requests {
            match login(&mut s, peer, "mallory", GOOD) {
                AuthResponse::Granted { .. } => granted += 1,
                other => assert_eq!(refusal(&other), Some(Refusal::RateLimited), "{other:?}"),
            }
        }
    }
    assert_eq!(granted, LOGIN_KNOWN_PER_ACCOUNT.max_requests);
    // Neither alice on her machine nor mallory on a new one is held back by it.
    assert!(matches!(login(&mut s, b"home", "alice", GOOD), AuthResponse::Granted { .. }));
    assert!(matches!(login(&mut s, b"new machine", "mallory", GOOD), AuthResponse::Granted { .. }));
}

/// A worker running `service`, and the answers it sends (tickets are the order of submission).
fn worker(service: AuthService) -> (AuthWorker<usize>, mpsc::Receiver<(usize, AuthResponse)>) {
    let (answers, received) = mpsc::channel(4 * QUEUE_MAX_JOBS);
    (AuthWorker::spawn(service, answers).unwrap(), received)
}

/// The answers to the tickets of `wanted`, waiting for each of the `accepted` tickets' answer.
fn answers_to(
    received: &mut mpsc::Receiver<(usize, AuthResponse)>,
    accepted: usize,
    wanted: &[usize],
) -> Vec<AuthResponse> {
    let mut all = std::collections::HashMap::new();
    for _ in 0..accepted {
        let (ticket, answer) = received.blocking_recv().unwrap();
        all.insert(ticket, answer);
    }
    wanted.iter().map(|t| all.remove(t).unwrap()).collect()
}

#[test]
fn a_flood_of_correct_logins_to_one_account_keeps_no_one_else_waiting() {
    let (_dir, mut s) = service();
    let now = unix_now();
    let ask = |name: &str| AuthRequest::Register { username: name.into(), password: GOOD.into() };
    assert!(matches!(s.handle(b"mallory-1", LOOPBACK, ask("mallory"), now), AuthResponse::Granted { .. }));
    assert!(matches!(s.handle(b"home", LOOPBACK, ask("alice"), now), AuthResponse::Granted { .. }));
    let mallory = AuthRequest::Login { username: "mallory".into(), password: GOOD.into() };
    assert!(matches!(s.handle(b"mallory-2", LOOPBACK, mallory.clone(), now), AuthResponse::Granted { .. }));
    let (worker, mut received) = worker(s);
    // Hundreds at once, all from mallory's known machines.
    let flood = 240;
    let mut accepted = 0;
    for i in 0..flood {
        let peer = if i % 2 == 0 { b"mallory-1".to_vec() } else { b"mallory-2".to_vec() };
        accepted += usize::from(worker.submit(peer, LOOPBACK, mallory.clone(), i));
    }
    let alice = AuthRequest::Login { username: "alice".into(), password: GOOD.into() };
    assert!(worker.submit(b"home".to_vec(), LOOPBACK, alice, flood));
    assert!(worker.submit(b"home".to_vec(), LOOPBACK, AuthRequest::Renew, flood + 1));
    let answers = answers_to(&mut received, accepted + 2, &[flood, flood + 1]);
    for answer in answers {
        assert!(matches!(answer, AuthResponse::Granted { .. }), "{answer:?}");
    }
}

#[test]
fn renewals_are_limited_per_peer_and_a_node_s_cadence_is_not() {
    let (_dir, mut s) = service();
    logged_in(&mut s, b"flood", "mallory");
    logged_in(&mut s, b"home", "alice");
    let serial = |answer: AuthResponse| match answer {
        AuthResponse::Granted { certificate, .. } => certificate.body.serial,
        other => panic!("{other:?}"),
    };
    // alice's node renews every 10 s (its timer, with the shortest certificates) for 10 minutes;
    // halfway, mallory's node asks again and again at once.
    let mut last = 0;
    for tick in 1..=60 {
        let at = NOW + 10 * tick;
        let renewed = serial(s.handle(b"home", LOOPBACK, AuthRequest::Renew, at));
        assert!(renewed > last, "tick {tick}");
        last = renewed;
        if tick == 30 {
            let answers: Vec<AuthResponse> =
                (0..400).map(|_| s.handle(b"flood", LOOPBACK, AuthRequest::Renew, at)).collect();
            let granted = answers.iter().filter(|a| matches!(a, AuthResponse::Granted { .. })).count();
            assert_eq!(granted, RENEW_PER_PEER.max_requests as usize);
            let AuthResponse::Refused { refusal: Refusal::RateLimited, message } = &answers[granted] else {
                panic!("{:?}", answers[granted])
            };
            assert!(message.contains("too many renewals"), "{message}");
            assert!(answers[granted..].iter().all(|a| refusal(a) == Some(Refusal::RateLimited)));
            // The refused ones began no session and drew no serial.
            let next = serial(s.handle(b"home", LOOPBACK, AuthRequest::Renew, at + 5));
            assert_eq!(next, renewed + u64::from(RENEW_PER_PEER.max_requests) + 1);
            last = next;
        }
    }
    // Once the window is over, mallory's node renews again.
    let again = s.handle(b"flood", LOOPBACK, AuthRequest::Renew, NOW + 300 + RENEW_PER_PEER.window_secs);
    assert!(matches!(again, AuthResponse::Granted { .. }), "{again:?}");
    // A peer with no session is told so.
    assert_eq!(refusal(&s.handle(b"nobody", LOOPBACK, AuthRequest::Renew, NOW)), Some(Refusal::NotLoggedIn));
}

#[test]
fn rename_and_renew_follow_the_session_and_keep_the_account() {
    let (_dir, mut s) = service();
    let granted = |r: AuthResponse| match r {
        AuthResponse::Granted { certificate, renamed } => (certificate, renamed),
        other => panic!("{other:?}"),
    };
    let (first, _) = granted(register(&mut s, b"p", "alice", GOOD));
    register(&mut s, b"q", "bob", GOOD);
    let taken = s.handle(b"p", LOOPBACK, AuthRequest::Rename { new_username: "BOB".into() }, NOW);
    assert_eq!(refusal(&taken), Some(Refusal::UsernameTaken));
    let (certificate, renamed) =
        granted(s.handle(b"p", LOOPBACK, AuthRequest::Rename { new_username: "alicia".into() }, NOW));
    assert_eq!((certificate.body.username.as_str(), certificate.body.account), ("alicia", first.body.account));
    assert_eq!(renamed.as_ref().map(|r| (r.old.as_str(), r.new.as_str())), Some(("alice", "alicia")));
    // The renewal hands the rename out again: a node whose rename answer was lost heals.
    let (certificate, renamed_again) = granted(s.handle(b"p", LOOPBACK, AuthRequest::Renew, NOW + 60));
    assert_eq!(certificate.body.username, "alicia");
    assert_eq!(renamed_again, renamed);
    // The old name stays with alicia's account: nobody registers it; a look-up finds her.
    assert_eq!(refusal(&register(&mut s, b"r", "Alice", GOOD)), Some(Refusal::UsernameTaken));
    let lookup = s.handle(b"q", LOOPBACK, AuthRequest::Lookup { username: "alice".into() }, NOW);
    let AuthResponse::User { account: Some(found) } = lookup else { panic!("{lookup:?}") };
    assert_eq!((found.account, found.username.as_str()), (first.body.account, "alicia"));
    assert_eq!(s.handle(b"p", LOOPBACK, AuthRequest::Logout, NOW), AuthResponse::LoggedOut);
    assert_eq!(refusal(&s.handle(b"p", LOOPBACK, AuthRequest::Renew, NOW)), Some(Refusal::NotLoggedIn));
}

#[test]
fn refused_renames_use_up_no_budget() {
    // Certificates of a minute: a rename freeing a name let go of a minute ago is not too often.
    let (_dir, s) = service();
    let mut s = s.with_lifetime(60);
    register(&mut s, b"p", "alice", GOOD);
    register(&mut s, b"q", "bob", GOOD);
    let rename = |s: &mut AuthService, name: &str, at: u64| {
        s.handle(b"p", LOOPBACK, AuthRequest::Rename { new_username: name.into() }, at)
    };
    // Far more refused renames than the window admits: a taken name, and renaming too often.
    let mut done = 0;
    let (mut taken, mut too_often) = (0, 0);
    for i in 0..2 * RENAME_PER_PEER.max_requests {
        assert_eq!(refusal(&rename(&mut s, "BOB", NOW)), Some(Refusal::UsernameTaken));
        taken += 1;
        match rename(&mut s, &format!("alice-{i}"), NOW) {
            AuthResponse::Granted { .. } => done += 1,
            other => {
                assert!(message(&other).contains("certificates with it may still be valid"), "{other:?}");
                too_often += 1;
            }
        }
    }
    assert!(taken > RENAME_PER_PEER.max_requests && too_often > RENAME_PER_PEER.max_requests, "{done}");
    // Only the renames carried out counted: the rest of the window is there, a minute apart.
    for i in 0..RENAME_PER_PEER.max_requests - done {
        let at = NOW + 61 * u64::from(i + 1);
        let answer = rename(&mut s, &format!("later-{i}"), at);
        assert!(matches!(answer, AuthResponse::Granted { .. }), "rename {i} after {done}: {answer:?}");
    }
    let over = rename(&mut s, "one-more", NOW + 61 * u64::from(RENAME_PER_PEER.max_requests + 1));
    assert!(message(&over).contains("too many renames"), "{over:?}");
}

#[test]
fn a_freed_name_goes_to_a_new_account_only_after_the_hold() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = AuthService::open(dir.path(), Authority::from_secret(&[9; 32]))
        .unwrap()
        .with_name_hold(3600)
        .with_lifetime(600);
    let AuthResponse::Granted { certificate: alice, .. } = register(&mut s, b"p", "alice", GOOD) else { panic!() };
    let renamed = s.handle(b"p", LOOPBACK, AuthRequest::Rename { new_username: "alicia".into() }, NOW);
    assert!(matches!(renamed, AuthResponse::Granted { .. }), "{renamed:?}");
    let early =
        s.handle(b"r", LOOPBACK, AuthRequest::Register { username: "alice".into(), password: GOOD.into() }, NOW + 3599);
    assert_eq!(refusal(&early), Some(Refusal::UsernameTaken), "held until the hour is over");
    let later = |s: &mut AuthService| {
        s.handle(b"r", LOOPBACK, AuthRequest::Register { username: "alice".into(), password: GOOD.into() }, NOW + 3600)
    };
    let AuthResponse::Granted { certificate: newcomer, .. } = later(&mut s) else { panic!() };
    assert_ne!(newcomer.body.account, alice.body.account);
    assert_eq!(newcomer.body.username, "alice");
}

#[test]
fn a_hold_shorter_than_the_certificates_lifetime_holds_a_freed_name_for_the_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = AuthService::open(dir.path(), Authority::from_secret(&[9; 32])).unwrap().with_name_hold(60);
    let AuthResponse::Granted { certificate: alice, .. } = register(&mut s, b"p", "alice", GOOD) else { panic!() };
    let renamed = s.handle(b"p", LOOPBACK, AuthRequest::Rename { new_username: "alicia".into() }, NOW);
    assert!(matches!(renamed, AuthResponse::Granted { .. }), "{renamed:?}");
    // alice's certificate as "alice" is valid until it expires: nobody else may be certified
    // as alice meanwhile.
    let register_at = |s: &mut AuthService, at: u64| {
        s.handle(b"r", LOOPBACK, AuthRequest::Register { username: "alice".into(), password: GOOD.into() }, at)
    };
    assert_eq!(refusal(&register_at(&mut s, NOW + 3600)), Some(Refusal::UsernameTaken), "an hour on");
    let expiry = alice.body.expires_at.max(NOW + CERT_LIFETIME_SECS);
    assert_eq!(refusal(&register_at(&mut s, expiry - 1)), Some(Refusal::UsernameTaken), "just before it expires");
    let AuthResponse::Granted { certificate: newcomer, .. } = register_at(&mut s, expiry) else { panic!() };
    assert_ne!(newcomer.body.account, alice.body.account);
}

#[test]
fn renaming_again_and_again_never_frees_a_name_while_its_certificate_may_be_valid() {
    let (_dir, mut s) = service();
    let rename = |s: &mut AuthService, name: &str, at: u64| {
        s.handle(b"p", LOOPBACK, AuthRequest::Rename { new_username: name.into() }, at)
    };
    let AuthResponse::Granted { certificate: first, .. } = register(&mut s, b"p", "alice", GOOD) else { panic!() };
    for name in ["alice1", "alice2", "alice3"] {
        assert!(matches!(rename(&mut s, name, NOW + 60), AuthResponse::Granted { .. }), "{name}");
    }
    // A fourth would free "alice", whose certificate is valid for hours yet.
    let fourth = rename(&mut s, "alice4", NOW + 120);
    let AuthResponse::Refused { refusal: Refusal::RateLimited, message } = &fourth else { panic!("{fourth:?}") };
    assert!(message.contains("too many renames") && message.contains("try again in"), "{message}");
    let impostor =
        s.handle(b"m", LOOPBACK, AuthRequest::Register { username: "alice".into(), password: GOOD.into() }, NOW + 120);
    assert_eq!(refusal(&impostor), Some(Refusal::UsernameTaken), "{impostor:?}");
    // Once every certificate with it has expired, the rename goes through and frees it.
    let expired = first.body.expires_at.max(NOW + 60 + CERT_LIFETIME_SECS);
    assert!(matches!(rename(&mut s, "alice4", expired), AuthResponse::Granted { .. }));
    let newcomer =
        s.handle(b"m", LOOPBACK, AuthRequest::Register { username: "alice".into(), password: GOOD.into() }, expired);
    assert!(matches!(newcomer, AuthResponse::Granted { .. }), "{newcomer:?}");
}

#[test]
fn lookup_finds_accounts_in_any_case() {
    let (_dir, mut s) = service();
    register(&mut s, b"p", "Alice", GOOD);
    let lookup =
        |s: &mut AuthService, name: &str| s.handle(b"p", LOOPBACK, AuthRequest::Lookup { username: name.into() }, NOW);
    let AuthResponse::User { account: Some(found) } = lookup(&mut s, "alice") else { panic!() };
    assert_eq!(found.username, "Alice");
    assert_eq!(lookup(&mut s, "nobody"), AuthResponse::User { account: None });
}

#[test]
fn a_renewal_finds_room_while_strangers_flood_the_worker_during_a_hash() {
    let (_dir, mut s) = service();
    let register = AuthRequest::Register { username: "alice".into(), password: GOOD.into() };
    assert!(matches!(s.handle(b"home", LOOPBACK, register, unix_now()), AuthResponse::Granted { .. }));
    let (worker, mut received) = worker(s);
    // Logins for names that do not exist, from ever new peers: each is hashed (against the
    // dummy hash), and far more come while the first is hashed than the worker holds.
    let junk = 4 * QUEUE_MAX_JOBS;
    let mut accepted = 0;
    for i in 0..junk {
        let login = AuthRequest::Login { username: format!("nobody{i}"), password: GOOD.into() };
        accepted += usize::from(worker.submit(format!("stranger-{i}").into_bytes(), LOOPBACK, login, i));
    }
    assert!(accepted < junk, "the flood is more than the worker holds");
    assert!(worker.submit(b"home".to_vec(), LOOPBACK, AuthRequest::Renew, junk), "the renewal is taken at once");
    let answers = answers_to(&mut received, accepted + 1, &[junk]);
    assert!(matches!(answers[0], AuthResponse::Granted { .. }), "{:?}", answers[0]);
}
