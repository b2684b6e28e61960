//! Room names: 1–32 of `a-z 0-9 _ -`, with an optional leading `#` that is not part of the name.

/// The longest room name.
pub const ROOM_NAME_MAX: usize = 32;

/// A room name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a valid room name: use 1–{ROOM_NAME_MAX} of a-z, 0-9, _ and -")]
pub struct RoomNameError(pub String);

/// The name without its `#`, lower-cased.
pub fn normalise_room_name(name: &str) -> String {
    name.strip_prefix('#').unwrap_or(name).to_ascii_lowercase()
}

/// Checks a room name (after [`normalise_room_name`]).
pub fn check_room_name(name: &str) -> Result<(), RoomNameError> {
    let ok = (1..=ROOM_NAME_MAX).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok { Ok(()) } else { Err(RoomNameError(name.chars().take(ROOM_NAME_MAX + 8).collect())) }
}
