//! Helpers shared by the randomised decoder tests: an allocator that measures how much memory a
//! decoder takes, CBOR inputs that announce huge lengths, and proptest strategies for byte
//! strings, mutated encodings and certificates. Compiled for the library's unit tests only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;

use crate::account::AccountId;
use crate::cert::{CertBody, Certificate};

/// The system allocator, counting the bytes each thread holds and the most it held.
struct CountingAlloc;

thread_local! {
    static HELD: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grew(bytes: usize) {
    let _ = HELD.try_with(|held| {
        let now = held.get().saturating_add(bytes);
        held.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn shrank(bytes: usize) {
    let _ = HELD.try_with(|held| held.set(held.get().saturating_sub(bytes)));
}

// SAFETY: every call is passed straight to `System`; the counters are thread-local cells that
// never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Runs `f` and returns its result with the most memory, in bytes, that this thread held during
/// the call beyond what it held before.
pub fn peak_memory<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = HELD.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let result = f();
    let peak = PEAK.with(Cell::get);
    (result, peak.saturating_sub(before))
}

/// How much a decoder may hold while it refuses a small hostile input: serde reserves at most
/// 1 MiB for a sequence whose length the input announces (`size_hint::cautious`), and only one
/// such sequence is open at a time before the input runs out.
pub const DECODE_MEMORY_LIMIT: usize = 2 * 1024 * 1024;

/// A CBOR head of major type `major` announcing `len` with the 8-byte argument form.
pub fn cbor_head(major: u8, len: u64) -> Vec<u8> {
    let mut head = vec![(major << 5) | 27];
    head.extend_from_slice(&len.to_be_bytes());
    head
}

/// A CBOR text string.
pub fn cbor_text(text: &str) -> Vec<u8> {
    let mut out = vec![0x78, text.len() as u8];
    out.extend_from_slice(text.as_bytes());
    out
}

/// Small inputs that announce 2^60 (or 2^64 - 1) elements or bytes: a bare array, byte string,
/// text string and map head, and each of them as the value of every field in `fields`, in a
/// map (serde's struct form) and in an array (its tuple form).
pub fn huge_length_inputs(fields: &[&str]) -> Vec<Vec<u8>> {
    let mut heads = Vec::new();
    for len in [1u64 << 60, u64::MAX] {
        for major in [2u8, 3, 4, 5] {
            heads.push(cbor_head(major, len));
            // Nested one level: an array whose first element announces the huge length.
            let mut nested = vec![0x81];
            nested.extend(cbor_head(major, len));
            heads.push(nested);
        }
    }
    let mut inputs = heads.clone();
    for field in fields {
        for head in &heads {
            let mut map = vec![0xa1];
            map.extend(cbor_text(field));
            map.extend(head);
            inputs.push(map);
            let mut array = vec![0x9f];
            array.extend(head);
            inputs.push(array);
        }
    }
    inputs
}

/// `depth` nested CBOR arrays (`[[[…`), unterminated, and the same as the value of `field`.
pub fn deep_nesting(field: &str, depth: usize) -> Vec<Vec<u8>> {
    let mut map = vec![0xa1];
    map.extend(cbor_text(field));
    map.extend(std::iter::repeat_n(0x81, depth));
    vec![vec![0x81; depth], vec![0x9f; depth], map]
}

/// Any bytes, up to `max` long.
pub fn any_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

/// `valid` with a few bytes replaced, inserted or removed, or cut short.
pub fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len().max(1);
    (prop::collection::vec((0..len, any::<u8>(), 0u8..3), 1..6), prop::option::weighted(0.2, 0..len)).prop_map(
        move |(edits, cut)| {
            let mut bytes = valid.clone();
            for (at, byte, kind) in edits {
                let at = at.min(bytes.len());
                match kind {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.push(byte),
                }
            }
            if let Some(cut) = cut {
                bytes.truncate(cut);
            }
            bytes
        },
    )
}

/// Any text, including control characters and non-ASCII, up to `max` characters.
pub fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..=max).prop_map(|chars| chars.into_iter().collect())
}

/// A certificate with any fields and any signature bytes (usually 64 of them).
pub fn any_certificate() -> impl Strategy<Value = Certificate> {
    let signature = prop_oneof![4 => prop::collection::vec(any::<u8>(), 64), 1 => any_bytes(80)];
    let account = any::<[u8; 16]>().prop_map(AccountId::from_bytes);
    (account, any_text(12), any_bytes(48), any::<u64>(), any::<u64>(), any::<u64>(), signature).prop_map(
        |(account, username, peer_id, issued_at, expires_at, serial, signature)| Certificate {
            body: CertBody { account, username, peer_id, issued_at, expires_at, serial },
            signature,
        },
    )
}

/// A test account id for `name`: the same for every spelling of the name (any case).
pub fn account_of(name: &str) -> AccountId {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(crate::account::canonical(name).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    AccountId::from_bytes(bytes)
}

/// A deterministic shuffle of `items` from `seed` (xorshift), for tests that deliver events in
/// random orders reproducibly.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut x = seed | 1;
    for i in (1..items.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        items.swap(i, (x % (i as u64 + 1)) as usize);
    }
}
