//! Unit tests of the session engine, alone: a login through a bootstrap node in reach; a
//! request waiting for one, sent when it comes or failed with `no_bootstrap` when it does not;
//! unconfirmed bootstrap nodes; renewal at a third of the lifetime left, once at a time; a
//! logout while a request is on its way; failures; the saved session resumed at start. The
//! property test (every ticket answered once, whatever the order) is `proptests.rs`.

use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::engine::{Input, MAX_UNCONFIRMED, NO_BOOTSTRAP_WAIT, Output, RESUME_WAIT, SessionEngine};
use super::{Code, Failure, Flight, Lookup, Now, Session, Show, Ticket, Via};
use crate::cert::{Authority, AuthorityKey, Certificate};
use crate::protocol::auth::{AuthRequest, AuthResponse, KnownAccount, Refusal};
use crate::testing::account_of;

/// Seconds since the epoch when a test starts.
const T0: u64 = 1_000_000;
/// The certificates' lifetime in these tests.
const LIFETIME: u64 = 300;

fn authority() -> Authority {
    Authority::from_secret(&[7; 32])
}

fn key() -> AuthorityKey {
    authority().public()
}

/// An engine, its peer id and the time it started.
struct Fx {
    engine: SessionEngine,
    local: PeerId,
    start: Instant,
    /// Seconds since the start.
    secs: f64,
}

impl Fx {
    fn new(trusted: bool) -> Self {
        let local = PeerId::random();
        Fx { engine: SessionEngine::new(local, trusted.then(key), false), local, start: Instant::now(), secs: 0.0 }
    }

    fn now(&self) -> Now {
        Now { at: self.start + Duration::from_secs_f64(self.secs), unix: T0 + self.secs as u64 }
    }

    fn at(&mut self, secs: f64, input: Input) -> Vec<Output> {
        self.secs = secs;
        self.handle(input)
    }

    fn handle(&mut self, input: Input) -> Vec<Output> {
        let now = self.now();
        self.engine.handle(input, now)
    }

    /// A certificate for `name` on this node, issued now.
    fn certificate(&self, name: &str) -> Certificate {
        self.certificate_at(name, self.now().unix)
    }

    /// A certificate for `name` on this node, issued at `unix`.
    fn certificate_at(&self, name: &str, unix: u64) -> Certificate {
        authority().issue_for(account_of(name), name, &self.local.to_bytes(), unix, 1, LIFETIME)
    }

    fn granted(&self, name: &str) -> AuthResponse {
        AuthResponse::Granted { certificate: self.certificate(name), renamed: None }
    }

    /// Logs in as `name` through `boot`, found already.
    fn log_in(&mut self, name: &str, boot: PeerId) {
        let out = self.handle(login(1, name));
        let flight = sent(&out, boot);
        let answer = Input::Answer { flight, answer: self.granted(name), remembered: None };
        let out = self.handle(answer);
        assert!(out.contains(&Output::Reply { ticket: Ticket(1), result: Ok(()) }), "{out:?}");
    }
}

fn login(ticket: u64, name: &str) -> Input {
    Input::Command {
        ticket: Ticket(ticket),
        request: AuthRequest::Login { username: name.into(), password: "correct horse".into() },
    }
}

/// The flight of the one request among `outputs`, sent to `boot`.
fn sent(outputs: &[Output], boot: PeerId) -> Flight {
    let flights: Vec<Flight> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { flight, via, .. } => {
                assert_eq!(*via, Via::Peer(boot));
                Some(*flight)
            }
            _ => None,
        })
        .collect();
    assert_eq!(flights.len(), 1, "{outputs:?}");
    flights[0]
}

fn requests(outputs: &[Output]) -> Vec<&AuthRequest> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { request, .. } => Some(request),
            _ => None,
        })
        .collect()
}

fn failure(outputs: &[Output], ticket: u64) -> Failure {
    let failures: Vec<&Failure> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Reply { ticket: t, result: Err(f) } if *t == Ticket(ticket) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(failures.len(), 1, "{outputs:?}");
    failures[0].clone()
}

const NO_BOOTSTRAP_TAIL: &str =
    "registering, logging in and renaming need the bootstrap node (chat goes on without it)";

#[test]
fn a_login_goes_to_the_bootstrap_in_reach_and_its_certificate_logs_in() {
    let mut fx = Fx::new(true);
    let boot = PeerId::random();
    assert_eq!(fx.handle(Input::BootstrapFound(boot)), [Output::BootstrapFound(boot)]);
    let out = fx.handle(login(1, "alice"));
    let flight = sent(&out, boot);
    let granted = fx.granted("alice");
    let out = fx.handle(Input::Answer { flight, answer: granted.clone(), remembered: Some("Al".into()) });
    let AuthResponse::Granted { certificate, .. } = granted else { unreachable!() };
    let session = Session { certificate: certificate.clone(), nick: "Al".into() };
    assert_eq!(
        out,
        [
            Output::Save(session.clone()),
            Output::Learn(certificate.body.clone()),
            Output::Show(Show::LoggedIn { user: "alice".into(), nick: "Al".into(), resumed: false }),
            Output::Enter { pump: true },
            Output::Reply { ticket: Ticket(1), result: Ok(()) },
        ]
    );
    assert_eq!(fx.engine.session(), Some(&session));
    assert_eq!(fx.engine.pending(), (0, 0));
    let again = fx.handle(login(2, "alice"));
    let error = failure(&again, 2);
    assert_eq!((error.code, error.message.as_str()), (Code::Usage, "already logged in as alice; /logout first"));
}

#[test]
fn a_registration_shows_registered_then_logged_in_with_the_username_as_nickname() {
    let mut fx = Fx::new(true);
    let boot = PeerId::random();
    fx.handle(Input::BootstrapFound(boot));
    let request = AuthRequest::Register { username: "bob".into(), password: "pw".into() };
    let flight = sent(&fx.handle(Input::Command { ticket: Ticket(4), request }), boot);
    let out = fx.handle(Input::Answer { flight, answer: fx.granted("bob"), remembered: None });
    let shown: Vec<&Show> = out
        .iter()
        .filter_map(|o| match o {
            Output::Show(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(
        shown,
        [
            &Show::Registered { user: "bob".into() },
            &Show::LoggedIn { user: "bob".into(), nick: "bob".into(), resumed: false }
        ]
    );
}

#[test]
fn a_request_waits_for_a_bootstrap_then_fails_with_no_bootstrap() {
    let mut fx = Fx::new(true);
    assert_eq!(fx.handle(login(1, "alice")), []);
    assert_eq!(fx.engine.pending(), (0, 1));
    assert_eq!(fx.at(2.9, Input::Tick), []);
    let out = fx.at(NO_BOOTSTRAP_WAIT.as_secs_f64(), Input::Tick);
    let error = failure(&out, 1);
    assert_eq!(error.code, Code::NoBootstrap);
    assert_eq!(error.message, format!("no bootstrap node in reach: {NO_BOOTSTRAP_TAIL}"));
    assert_eq!(out.len(), 1);
    assert_eq!(fx.engine.pending(), (0, 0));
}

#[test]
fn a_request_waiting_goes_out_when_a_bootstrap_comes_into_reach() {
    let mut fx = Fx::new(true);
    fx.handle(login(1, "alice"));
    let boot = PeerId::random();
    let out = fx.at(1.0, Input::BootstrapFound(boot));
    assert_eq!(out[0], Output::BootstrapFound(boot));
    sent(&out, boot);
    assert_eq!(fx.at(10.0, Input::Tick), []);
    assert_eq!(fx.engine.pending(), (1, 0));
}

#[test]
fn a_bootstrap_found_twice_is_found_once_and_a_lost_one_is_said_so() {
    let mut fx = Fx::new(true);
    let boot = PeerId::random();
    fx.handle(Input::BootstrapFound(boot));
    assert_eq!(fx.handle(Input::BootstrapFound(boot)), []);
    assert_eq!(fx.handle(Input::PeerGone(boot)), [Output::Show(Show::BootstrapLost(boot))]);
    assert_eq!(fx.handle(Input::PeerGone(boot)), []);
    assert_eq!(fx.engine.bootstrap_peer(), None);
}

#[test]
fn no_password_goes_to_an_unconfirmed_bootstrap() {
    let mut fx = Fx::new(false);
    fx.handle(login(1, "alice"));
    let peer = PeerId::random();
    let out = fx.handle(Input::BootstrapUnconfirmed { peer, key: key() });
    assert_eq!(out[0], Output::Show(Show::BootstrapUnconfirmed { peer, key: key() }));
    let error = failure(&out, 1);
    assert_eq!((error.code, error.key), (Code::BootstrapUnconfirmed, Some(key())));
    assert!(error.message.contains("which this node does not trust yet; nothing was sent"), "{}", error.message);
    let out = fx.handle(login(2, "alice"));
    assert_eq!(failure(&out, 2).code, Code::BootstrapUnconfirmed);
    // Trusting its key finds it; another key is refused.
    let other = PeerId::random();
    let other_key = Authority::from_secret(&[9; 32]).public();
    fx.handle(Input::BootstrapUnconfirmed { peer: other, key: other_key });
    let out = fx.handle(Input::KeyTrusted(key()));
    assert_eq!(out, [Output::BootstrapFound(peer), Output::Refuse { peer: other, key: other_key, pinned: key() }]);
    sent(&fx.handle(login(3, "alice")), peer);
}

#[test]
fn peers_claiming_to_be_bootstrap_nodes_are_listed_up_to_a_bound() {
    let mut fx = Fx::new(false);
    for seed in 0..(MAX_UNCONFIRMED as u8 + 8) {
        let key = Authority::from_secret(&[seed.wrapping_add(100); 32]).public();
        let out = fx.handle(Input::BootstrapUnconfirmed { peer: PeerId::random(), key });
        assert_eq!(out.is_empty(), usize::from(seed) >= MAX_UNCONFIRMED, "claim {seed}");
    }
    assert_eq!(fx.engine.unconfirmed_keys().len(), MAX_UNCONFIRMED);
}

#[test]
fn the_certificate_is_renewed_at_a_third_of_its_lifetime_left_and_once_at_a_time() {
    let mut fx = Fx::new(true);
    let boot = PeerId::random();
    fx.handle(Input::BootstrapFound(boot));
    fx.log_in("alice", boot);
    // 101 s of 300 left: not due; 99 s: due.
    assert_eq!(fx.at(199.0, Input::CheckRenewal), []);
    let out = fx.at(201.0, Input::CheckRenewal);
    let flight = sent(&out, boot);
    assert_eq!(requests(&out), [&AuthRequest::Renew]);
    assert!(fx.engine.renewing());
    assert_eq!(fx.at(202.0, Input::CheckRenewal), []);
    assert_eq!(fx.at(203.0, Input::BootstrapFound(PeerId::random())).len(), 1, "found, and no second renewal");
    let answer = fx.granted("alice");
    let out = fx.at(204.0, Input::Answer { flight, answer, remembered: None });
    assert!(matches!(out[0], Output::Save(Session { ref nick, .. }) if nick == "alice"), "{out:?}");
    assert_eq!(out.last(), Some(&Output::Enter { pump: true }));
    assert!(!out.iter().any(|o| matches!(o, Output::Show(_) | Output::Reply { .. })), "{out:?}");
    assert!(!fx.engine.renewing());
    assert_eq!(fx.at(205.0, Input::CheckRenewal), []);
}

#[test]
fn a_renewal_that_failed_is_tried_again_on_the_next_check() {
    let mut fx = Fx::new(true);
    let boot = PeerId::random();
    fx.handle(Input::BootstrapFound(boot));
    fx.log_in("alice", boot);
    let flight = sent(&fx.at(250.0, Input::CheckRenewal), boot);
    assert_eq!(fx.handle(Input::Failed { flight, error: "timeout".into() }), []);
    assert!(!fx.engine.renewing());
    sent(&fx.at(260.0, Input::CheckRenewal), boot);
}

#[test]
fn a_logout_while_a_renewal_is_on_its_way_stays_logged_out() {
    let mut fx = Fx::new(true);
    let boot = PeerId::random();
    fx.handle(Input::BootstrapFound(boot));
    fx.log_in("alice", boot);
    let renewal = sent(&fx.at(250.0, Input::CheckRenewal), boot);
    let out = fx.handle(Input::Logout { ticket: Ticket(9) });
    assert_eq!(requests(&out), [&AuthRequest::Logout]);
    assert_eq!(
        out[1..],
        [
            Output::Forget,
            Output::Show(Show::LoggedOut { user: "alice".into() }),
            Output::Reply { ticket: Ticket(9), result: Ok(()) },
        ]
    );
    assert_eq!(fx.handle(Input::Answer { flight: renewal, answer: fx.granted("alice"), remembered: None }), []);
    assert_eq!(fx.engine.session(), None);
    assert!(!fx.engine.renewing());
    let logout = Flight(renewal.0 + 1);
    assert_eq!(fx.handle(Input::Answer { flight: logout, answer: AuthResponse::LoggedOut, remembered: None }), []);
    assert_eq!(fx.engine.pending(), (0, 0));
    let error = failure(&fx.handle(Input::Logout { ticket: Ticket(10) }), 10);
    assert_eq!((error.code, error.message.as_str()), (Code::NotLoggedIn, "not logged in"));
}

#[test]
fn a_logout_with_no_bootstrap_in_reach_sends_nothing() {
    let mut fx = Fx::new(true);
    let boot = PeerId::random();
    fx.handle(Input::BootstrapFound(boot));
    fx.log_in("alice", boot);
    fx.handle(Input::PeerGone(boot));
    let out = fx.handle(Input::Logout { ticket: Ticket(2) });
    assert!(requests(&out).is_empty());
    assert_eq!(fx.engine.pending(), (0, 0));
}

#[test]
fn a_failed_or_refused_request_answers_its_command() {
    let mut fx = Fx::new(true);
    let boot = PeerId::random();
    fx.handle(Input::BootstrapFound(boot));
    let flight = sent(&fx.handle(login(1, "alice")), boot);
    let out = fx.handle(Input::Failed { flight, error: "connection closed".into() });
    let error = failure(&out, 1);
    assert_eq!(error.code, Code::NoBootstrap);
    assert_eq!(error.message, format!("the bootstrap node did not answer (connection closed): {NO_BOOTSTRAP_TAIL}"));
    let flight = sent(&fx.handle(login(2, "alice")), boot);
    let refused = AuthResponse::Refused { refusal: Refusal::WrongCredentials, message: "no".into() };
    let error = failure(&fx.handle(Input::Answer { flight, answer: refused, remembered: None }), 2);
    assert_eq!((error.code, error.message.as_str()), (Code::Refused(Refusal::WrongCredentials), "no"));
    let flight = sent(&fx.handle(login(3, "alice")), boot);
    let error = failure(&fx.handle(Input::Busy { flight }), 3);
    assert_eq!((error.code, error.message.as_str()), (Code::Internal, "the account service is busy; try again"));
    assert_eq!(fx.engine.session(), None);
}

#[test]
fn a_certificate_for_another_peer_is_not_accepted() {
    let mut fx = Fx::new(true);
    let boot = PeerId::random();
    fx.handle(Input::BootstrapFound(boot));
    let flight = sent(&fx.handle(login(1, "alice")), boot);
    let certificate = authority().issue(account_of("alice"), "alice", &PeerId::random().to_bytes(), T0, 1);
    let answer = AuthResponse::Granted { certificate, renamed: None };
    let error = failure(&fx.handle(Input::Answer { flight, answer, remembered: None }), 1);
    assert_eq!(error.code, Code::Internal);
    assert!(error.message.starts_with("the bootstrap node sent a certificate this node cannot accept: "));
}

#[test]
fn a_rename_whose_answer_was_lost_is_learnt_from_the_next_renewal() {
    let mut fx = Fx::new(true);
    let boot = PeerId::random();
    fx.handle(Input::BootstrapFound(boot));
    fx.log_in("alice", boot);
    let request = AuthRequest::Rename { new_username: "alicia".into() };
    let flight = sent(&fx.handle(Input::Command { ticket: Ticket(5), request }), boot);
    assert_eq!(failure(&fx.handle(Input::Failed { flight, error: "timeout".into() }), 5).code, Code::NoBootstrap);
    // Not due, but renewed at once all the same.
    let flight = sent(&fx.at(10.0, Input::CheckRenewal), boot);
    let certificate =
        authority().issue_for(account_of("alice"), "alicia", &fx.local.to_bytes(), fx.now().unix, 2, LIFETIME);
    let answer = AuthResponse::Granted { certificate, renamed: None };
    let out = fx.handle(Input::Answer { flight, answer, remembered: None });
    assert!(out.contains(&Output::Show(Show::Renamed { old: "alice".into(), new: "alicia".into() })), "{out:?}");
    // The nickname that was the old username follows the rename.
    assert_eq!(fx.engine.session().map(|s| s.nick.as_str()), Some("alicia"));
}

#[test]
fn a_valid_saved_session_resumes_at_once_and_is_renewed_when_a_bootstrap_comes() {
    let mut fx = Fx::new(true);
    let session = Session { certificate: fx.certificate("alice"), nick: "Al".into() };
    let out = fx.handle(Input::Resume(Ok(Some(session.clone()))));
    assert_eq!(
        out,
        [
            Output::Learn(session.certificate.body.clone()),
            Output::Show(Show::LoggedIn { user: "alice".into(), nick: "Al".into(), resumed: true }),
            Output::Enter { pump: false },
        ]
    );
    assert_eq!(fx.engine.session(), Some(&session));
    let boot = PeerId::random();
    let out = fx.at(1.0, Input::BootstrapFound(boot));
    assert_eq!(requests(&out), [&AuthRequest::Renew]);
}

#[test]
fn an_expired_saved_session_waits_for_a_bootstrap_to_renew_it() {
    let mut fx = Fx::new(true);
    let old = Session { certificate: fx.certificate_at("alice", T0 - LIFETIME - 10), nick: "Al".into() };
    assert_eq!(fx.handle(Input::Resume(Ok(Some(old.clone())))), []);
    assert!(fx.engine.renewing());
    assert_eq!(fx.engine.session(), None);
    let boot = PeerId::random();
    let flight = sent(&fx.at(30.0, Input::BootstrapFound(boot)), boot);
    let out = fx.handle(Input::Answer { flight, answer: fx.granted("alice"), remembered: None });
    assert!(out.contains(&Output::Show(Show::LoggedIn { user: "alice".into(), nick: "Al".into(), resumed: true })));
    assert_eq!(fx.engine.session().map(|s| s.nick.as_str()), Some("Al"));

    // With no bootstrap, it gives up after a minute; a refusal forgets it.
    let mut fx = Fx::new(true);
    let old = Session { certificate: fx.certificate_at("alice", T0 - LIFETIME - 10), nick: "Al".into() };
    fx.handle(Input::Resume(Ok(Some(old.clone()))));
    assert_eq!(fx.at(RESUME_WAIT.as_secs_f64() - 1.0, Input::Tick), []);
    let out = fx.at(RESUME_WAIT.as_secs_f64(), Input::Tick);
    let expired = "the saved session expired and no bootstrap node is in reach to renew it; log in again later";
    assert_eq!(out, [Output::Show(Show::Info(expired.into()))]);
    assert!(!fx.engine.renewing());
    fx.handle(Input::Resume(Ok(Some(old))));
    let boot = PeerId::random();
    let flight = sent(&fx.handle(Input::BootstrapFound(boot)), boot);
    let refused = AuthResponse::Refused { refusal: Refusal::NotLoggedIn, message: "no session".into() };
    let out = fx.handle(Input::Answer { flight, answer: refused, remembered: None });
    let info = "the saved session could not be renewed (no session); log in again";
    assert_eq!(out, [Output::Forget, Output::Show(Show::Info(info.into()))]);
}

#[test]
fn a_saved_session_that_cannot_be_trusted_or_read_is_not_resumed() {
    let mut fx = Fx::new(false);
    let saved = Session { certificate: fx.certificate("alice"), nick: "Al".into() };
    assert_eq!(fx.handle(Input::Resume(Ok(Some(saved.clone())))), [Output::Forget]);
    let mut fx = Fx::new(true);
    let mut forged = saved;
    forged.certificate.body.username = "mallory".into();
    let out = fx.handle(Input::Resume(Ok(Some(forged))));
    assert_eq!(out[0], Output::Forget);
    assert!(matches!(&out[1], Output::Show(Show::Info(m)) if m.starts_with("the saved session is not valid (")));
    let out = fx.handle(Input::Resume(Err("disk on fire".into())));
    let info = "the saved session cannot be read (disk on fire); log in again";
    assert_eq!(out, [Output::Show(Show::Info(info.into()))]);
    assert_eq!(fx.handle(Input::Resume(Ok(None))), []);
}

#[test]
fn a_lookup_is_answered_by_the_bootstrap_or_found_unanswered() {
    let mut fx = Fx::new(true);
    fx.handle(Input::Lookup { ticket: Ticket(1), username: "bob".into() });
    let out = fx.at(3.0, Input::Tick);
    assert_eq!(out, [Output::Found { ticket: Ticket(1), lookup: Lookup::NoAnswer }]);
    let boot = PeerId::random();
    fx.handle(Input::BootstrapFound(boot));
    let flight = sent(&fx.handle(Input::Lookup { ticket: Ticket(2), username: "bob".into() }), boot);
    let found = KnownAccount { account: account_of("bob"), username: "bob".into() };
    let answer = AuthResponse::User { account: Some(found) };
    let out = fx.handle(Input::Answer { flight, answer, remembered: None });
    assert_eq!(out, [Output::Found { ticket: Ticket(2), lookup: Lookup::Exists(account_of("bob"), "bob".into()) }]);
}

#[test]
fn a_nickname_needs_a_session_and_is_saved_announced_and_shown() {
    let mut fx = Fx::new(true);
    let error = failure(&fx.handle(Input::Nick { ticket: Ticket(1), nick: "Al".into() }), 1);
    assert_eq!((error.code, error.message.as_str()), (Code::NotLoggedIn, "log in first: /login NAME"));
    let boot = PeerId::random();
    fx.handle(Input::BootstrapFound(boot));
    fx.log_in("alice", boot);
    assert_eq!(failure(&fx.handle(Input::Nick { ticket: Ticket(2), nick: " ".into() }), 2).code, Code::Usage);
    let out = fx.handle(Input::Nick { ticket: Ticket(3), nick: " Al ".into() });
    assert!(matches!(&out[0], Output::Save(s) if s.nick == "Al"));
    assert_eq!(
        out[1..],
        [
            Output::Announce,
            Output::Show(Show::Nick { user: "alice".into(), nick: "Al".into() }),
            Output::Reply { ticket: Ticket(3), result: Ok(()) },
        ]
    );
}

#[test]
fn a_nickname_that_imitates_the_message_frame_is_refused_with_what_is_allowed() {
    let mut fx = Fx::new(true);
    let boot = PeerId::random();
    fx.handle(Input::BootstrapFound(boot));
    fx.log_in("alice", boot);
    let error = failure(&fx.handle(Input::Nick { ticket: Ticket(1), nick: "bob> see evil.example".into() }), 1);
    assert_eq!(error.code, Code::Usage);
    assert!(
        error.message.contains("may not contain '>'") && error.message.contains("< > ( ) [ ]"),
        "{}",
        error.message
    );
    let error = failure(&fx.handle(Input::Nick { ticket: Ticket(2), nick: "bo\u{200b}b".into() }), 2);
    assert!(error.message.contains("invisible character"), "{}", error.message);
    assert_eq!(fx.engine.session().map(|s| s.nick.as_str()), Some("alice"), "unchanged");
}

#[test]
fn a_saved_nickname_that_others_would_refuse_now_gives_way_to_the_username() {
    let mut fx = Fx::new(true);
    let session = Session { certificate: fx.certificate("alice"), nick: "Al (home)".into() };
    let out = fx.handle(Input::Resume(Ok(Some(session))));
    assert!(out.contains(&Output::Show(Show::LoggedIn { user: "alice".into(), nick: "alice".into(), resumed: true })));
    assert_eq!(fx.engine.session().map(|s| s.nick.as_str()), Some("alice"));
}

mod proptests;
