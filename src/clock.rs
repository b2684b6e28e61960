//! The wall clock, read in one place: seconds and milliseconds since the Unix epoch. Pure code
//! takes the time as an argument; only the edges (the event loop, the account worker) read it
//! here. A clock before 1970 reads as 0, never a panic.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (certificates and account records count in these).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Milliseconds since the Unix epoch (message time stamps count in these).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}
