//! The session engine's property test: whatever the order of commands, answers, failures,
//! bootstrap nodes and ticks, every ticket is answered exactly once and no request waits past
//! its deadline.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

/// One step of the property test's world.
#[derive(Debug, Clone)]
enum Action {
    Login,
    Register,
    Rename,
    Logout,
    Nick,
    Lookup,
    /// Answer the flight of this index with a certificate, a refusal or a logout.
    Answer(usize, u8),
    Fail(usize),
    Busy(usize),
    Found(usize),
    Unconfirmed,
    Gone(usize),
    /// Time passes by this many milliseconds, then a tick.
    Tick(u64),
    /// Time passes by this many seconds, then a renewal check.
    Check(u64),
}

fn any_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Login),
        Just(Action::Register),
        Just(Action::Rename),
        Just(Action::Logout),
        Just(Action::Nick),
        Just(Action::Lookup),
        (0..8usize, 0..3u8).prop_map(|(i, k)| Action::Answer(i, k)),
        (0..8usize).prop_map(Action::Fail),
        (0..8usize).prop_map(Action::Busy),
        (0..2usize).prop_map(Action::Found),
        Just(Action::Unconfirmed),
        (0..2usize).prop_map(Action::Gone),
        (0..4000u64).prop_map(Action::Tick),
        (0..150u64).prop_map(Action::Check),
    ]
}

struct World {
    fx: Fx,
    boots: [PeerId; 2],
    next_ticket: u64,
    /// Each ticket handed out, and how often it was answered.
    answers: HashMap<Ticket, u32>,
    /// Requests on their way, oldest first.
    flights: Vec<(Flight, AuthRequest)>,
    ms: u64,
}

impl World {
    fn new() -> Self {
        World {
            fx: Fx::new(true),
            boots: [PeerId::random(), PeerId::random()],
            next_ticket: 0,
            answers: HashMap::new(),
            flights: Vec::new(),
            ms: 0,
        }
    }

    fn ticket(&mut self) -> Ticket {
        self.next_ticket += 1;
        self.answers.insert(Ticket(self.next_ticket), 0);
        Ticket(self.next_ticket)
    }

    fn feed(&mut self, input: Input) {
        self.fx.secs = self.ms as f64 / 1000.0;
        for output in self.fx.handle(input) {
            match output {
                Output::Send { flight, request, .. } => self.flights.push((flight, request)),
                Output::Reply { ticket, .. } | Output::Found { ticket, .. } => {
                    *self.answers.get_mut(&ticket).expect("a ticket handed out") += 1;
                }
                _ => {}
            }
        }
    }

    fn take_flight(&mut self, i: usize) -> Option<Flight> {
        (!self.flights.is_empty()).then(|| self.flights.remove(i % self.flights.len()).0)
    }

    fn step(&mut self, action: Action) {
        match action {
            Action::Login => {
                let ticket = self.ticket();
                self.feed(login(ticket.0, "alice"));
            }
            Action::Register => {
                let ticket = self.ticket();
                let request = AuthRequest::Register { username: "alice".into(), password: "pw".into() };
                self.feed(Input::Command { ticket, request });
            }
            Action::Rename => {
                let ticket = self.ticket();
                self.feed(Input::Command { ticket, request: AuthRequest::Rename { new_username: "alicia".into() } });
            }
            Action::Logout => {
                let ticket = self.ticket();
                self.feed(Input::Logout { ticket });
            }
            Action::Nick => {
                let ticket = self.ticket();
                self.feed(Input::Nick { ticket, nick: "Al".into() });
            }
            Action::Lookup => {
                let ticket = self.ticket();
                self.feed(Input::Lookup { ticket, username: "bob".into() });
            }
            Action::Answer(i, kind) => {
                if let Some(flight) = self.take_flight(i) {
                    self.fx.secs = self.ms as f64 / 1000.0;
                    let answer = match kind {
                        0 => self.fx.granted("alice"),
                        1 => AuthResponse::Refused { refusal: Refusal::RateLimited, message: "slow".into() },
                        _ => AuthResponse::LoggedOut,
                    };
                    self.feed(Input::Answer { flight, answer, remembered: None });
                }
            }
            Action::Fail(i) => {
                if let Some(flight) = self.take_flight(i) {
                    self.feed(Input::Failed { flight, error: "timeout".into() });
                }
            }
            Action::Busy(i) => {
                if let Some(flight) = self.take_flight(i) {
                    self.feed(Input::Busy { flight });
                }
            }
            Action::Found(i) => self.feed(Input::BootstrapFound(self.boots[i])),
            Action::Unconfirmed => {
                let key = Authority::from_secret(&[9; 32]).public();
                self.feed(Input::BootstrapUnconfirmed { peer: PeerId::random(), key });
            }
            Action::Gone(i) => self.feed(Input::PeerGone(self.boots[i])),
            Action::Tick(ms) => {
                self.ms += ms;
                self.feed(Input::Tick);
                let now = self.fx.now().at;
                assert!(self.fx.engine.next_deadline().is_none_or(|d| d > now), "a request waits past its deadline");
            }
            Action::Check(secs) => {
                self.ms += secs * 1000;
                self.feed(Input::CheckRenewal);
            }
        }
    }

    fn check(&self) {
        assert!(self.answers.values().all(|n| *n <= 1), "a ticket answered twice: {:?}", self.answers);
        let renewals = self.flights.iter().filter(|(_, r)| *r == AuthRequest::Renew).count();
        assert!(renewals <= 1, "{renewals} renewals on their way at once");
        assert_eq!(self.fx.engine.pending().0, self.flights.len());
    }

    /// A bootstrap comes, every request is answered, and time runs past every deadline.
    fn drain(&mut self) {
        self.step(Action::Found(0));
        while !self.flights.is_empty() {
            self.step(Action::Answer(0, 1));
            self.check();
        }
        self.step(Action::Tick(RESUME_WAIT.as_millis() as u64));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn whatever_the_order_every_ticket_is_answered_once_and_nothing_waits_past_its_deadline(
        actions in prop::collection::vec(any_action(), 0..60),
    ) {
        let mut world = World::new();
        for action in actions {
            world.step(action);
            world.check();
        }
        world.drain();
        world.check();
        prop_assert_eq!(world.fx.engine.pending(), (0, 0));
        for (ticket, n) in &world.answers {
            prop_assert_eq!(*n, 1, "ticket {:?}", ticket);
        }
    }
}
