//! Figure 9: what room encryption adds to each delivery. Opening one sealed room message
//! (`Keyring::open`: Megolm's AES-256-CBC and HMAC-SHA-256, its ed25519 message signature,
//! and the check that the inside says what the envelope says) beside checking one room event's
//! envelope signature (ed25519 through libp2p's `PublicKey::verify`), which every delivery paid
//! before encryption and still does. One thread, no network.

use std::collections::BTreeSet;
use std::time::Instant;

use libp2p::identity::Keypair;
use meshchat::account::AccountId;
use meshchat::e2e::Keyring;
use meshchat::room::EventId;

use super::report::{Better, Row, Runs};

/// Messages sealed and opened per run.
const MESSAGES: u64 = 2_000;
/// A chat line of a usual length.
const TEXT: &str = "the build is green again, the fix was in the store worker's batching";

/// Microseconds per open and per envelope check, in one run.
fn one_run() -> (f64, f64, f64) {
    let room = EventId::from_bytes([7; 32]);
    let alice = AccountId::from_bytes([1; 16]);
    let members = BTreeSet::from([alice, AccountId::from_bytes([2; 16])]);
    let mut alices = Keyring::default();
    let sealing_started = Instant::now();
    let sealings: Vec<_> = (1..=MESSAGES).map(|seq| alices.seal(room, alice, &members, &[], seq, TEXT)).collect();
    let seal_us = sealing_started.elapsed().as_secs_f64() * 1e6 / MESSAGES as f64;
    let mut bobs = Keyring::default();
    bobs.take(sealings[0].key.clone()).expect("alice's key");
    let started = Instant::now();
    for (seq, sealing) in (1..).zip(&sealings) {
        let text = bobs.open(room, alice, seq, &sealing.sealed).expect("an open");
        std::hint::black_box(text);
    }
    let open_us = started.elapsed().as_secs_f64() * 1e6 / MESSAGES as f64;

    let key = Keypair::generate_ed25519();
    let signed: Vec<(Vec<u8>, Vec<u8>)> = sealings
        .iter()
        .map(|s| {
            let bytes = s.sealed.ciphertext.clone();
            let signature = key.sign(&bytes).expect("a signature");
            (bytes, signature)
        })
        .collect();
    let public = key.public();
    let started = Instant::now();
    for (bytes, signature) in &signed {
        assert!(std::hint::black_box(public.verify(bytes, signature)));
    }
    let verify_us = started.elapsed().as_secs_f64() * 1e6 / MESSAGES as f64;
    (open_us, verify_us, seal_us)
}

pub fn run(reps: usize) -> Vec<Row> {
    let (mut opens, mut verifies, mut seals) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let (open, verify, seal) = one_run();
        eprintln!("  open {open:.1} µs, envelope check {verify:.1} µs, seal {seal:.1} µs");
        opens.push(open);
        verifies.push(verify);
        seals.push(seal);
    }
    let seals = Runs::new(seals);
    vec![Row {
        figure: 9,
        what: "room encryption: opening one sealed message (a delivery's added work)".into(),
        unit: "µs".into(),
        meshchat: Runs::new(opens),
        anchor_name: "checking one event's envelope signature (ed25519)".into(),
        anchor: Some(Runs::new(verifies)),
        better: Better::Lower,
        goal: String::new(),
        met: None,
        note: format!(
            "{MESSAGES} messages of {} bytes per run, one thread; sealing one took {:.1} µs (median; {:.1}–{:.1})",
            TEXT.len(),
            seals.median(),
            seals.min(),
            seals.max()
        ),
    }]
}
