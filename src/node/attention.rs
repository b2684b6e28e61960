//! Where this user's attention is, and what follows from it, decided here and nowhere else:
//! the focus (the room or conversation that plain text goes to), the mutes, where a line
//! without a slash goes, which room a command that names none means, when the focus ends, when
//! the front-end must hear the focus again (its place goes by another name now), and whether a
//! message notifies (and whether that notification is about the focused place).
//!
//! [`Attention`] is pure: it never does I/O, never touches tokio, the swarm or the store, and
//! never emits an event. The event loop loads the kept mutes into it, keeps a mute on disk
//! before telling it, and turns what it decides into `focus`, `notification` and
//! `unfocused` events; the front-ends only show those decisions (the prompt's focus and its
//! unread counts follow them) and never work one out themselves.

use std::collections::HashSet;

use crate::account::AccountId;
use crate::room::EventId;

/// A room or a conversation: somewhere plain text can go, and something that can be muted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Place {
    /// A room, by id.
    Room(EventId),
    /// A conversation with this account.
    User(AccountId),
}

impl Place {
    /// How the store keeps a mute of this place: `#` and the room id, or `@` and the account
    /// id (never a name, which may change).
    pub(crate) fn mute_key(&self) -> String {
        match self {
            Place::Room(room) => format!("#{room}"),
            Place::User(account) => format!("@{account}"),
        }
    }
}

/// A notification to give: about the focused place or somewhere else (the terminal rings, and
/// the prompt counts it as unread, only for somewhere else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Notify {
    pub(crate) focused: bool,
}

/// The focus and the mutes.
#[derive(Debug, Default)]
pub(crate) struct Attention {
    focus: Option<Place>,
    /// What the front-end was last told the focus is called (`#room` or `@user`).
    told: Option<String>,
    /// Mute keys ([`Place::mute_key`]).
    muted: HashSet<String>,
}

impl Attention {
    /// Where plain text goes: the focused place, if any.
    pub(crate) fn route_text(&self) -> Option<Place> {
        self.focus
    }

    /// The room a room command that names none is about: the focused one, if the focus is a room.
    pub(crate) fn focused_room(&self) -> Option<EventId> {
        match self.focus {
            Some(Place::Room(room)) => Some(room),
            _ => None,
        }
    }

    /// Plain text goes to `place` from now on (`/focus`, `/query`, a created or joined room);
    /// the front-end is told it as `target` (`#room` or `@user`).
    pub(crate) fn focus_on(&mut self, place: Place, target: String) {
        self.focus = Some(place);
        self.told = Some(target);
    }

    /// The focused place is called `target` now: what to tell the front-end, if that is not
    /// what it was told (a namesake room appeared, the user renamed).
    pub(crate) fn relabel(&mut self, target: String) -> Option<String> {
        if self.focus.is_none() || self.told.as_ref() == Some(&target) {
            return None;
        }
        self.told = Some(target.clone());
        Some(target)
    }

    /// This user is no longer in `room` (left, kicked or banned): whether that ended the focus.
    pub(crate) fn left_room(&mut self, room: &EventId) -> bool {
        if self.focused_room() == Some(*room) {
            self.end_focus();
            return true;
        }
        false
    }

    /// This user logged out: whether that ended a focus.
    pub(crate) fn logged_out(&mut self) -> bool {
        let had = self.focus.is_some();
        self.end_focus();
        had
    }

    fn end_focus(&mut self) {
        self.focus = None;
        self.told = None;
    }

    /// Replaces the mutes with those kept (mute keys).
    pub(crate) fn load_mutes(&mut self, keys: impl IntoIterator<Item = String>) {
        self.muted = keys.into_iter().collect();
    }

    /// Mutes or unmutes `place` (the caller keeps it on disk first).
    pub(crate) fn set_muted(&mut self, place: &Place, muted: bool) {
        if muted {
            self.muted.insert(place.mute_key());
        } else {
            self.muted.remove(&place.mute_key());
        }
    }

    /// Whether `place` is muted.
    pub(crate) fn is_muted(&self, place: &Place) -> bool {
        self.muted.contains(&place.mute_key())
    }

    /// Whether a message in `place` notifies: never one of this user's own, never in a muted
    /// place; otherwise yes, saying whether `place` is the focused one.
    pub(crate) fn notification(&self, place: &Place, from_me: bool) -> Option<Notify> {
        if from_me || self.is_muted(place) {
            return None;
        }
        Some(Notify { focused: self.focus == Some(*place) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOBBY: Place = Place::Room(EventId::from_bytes([1; 32]));
    const DEV: Place = Place::Room(EventId::from_bytes([2; 32]));
    const BOB: Place = Place::User(AccountId::from_bytes([0xb0; 16]));
    const CAROL: Place = Place::User(AccountId::from_bytes([0xc0; 16]));

    fn room(place: Place) -> EventId {
        match place {
            Place::Room(room) => room,
            Place::User(_) => unreachable!("a room"),
        }
    }

    #[test]
    fn plain_text_goes_to_the_focus_and_nowhere_without_one() {
        let mut a = Attention::default();
        assert_eq!(a.route_text(), None);
        assert_eq!(a.focused_room(), None);
        a.focus_on(LOBBY, "#lobby".into());
        assert_eq!(a.route_text(), Some(LOBBY));
        assert_eq!(a.focused_room(), Some(room(LOBBY)));
        a.focus_on(BOB, "@bob".into());
        assert_eq!(a.route_text(), Some(BOB));
        assert_eq!(a.focused_room(), None, "a conversation is not a room to default to");
    }

    #[test]
    fn leaving_the_focused_room_ends_the_focus_and_no_other() {
        let mut a = Attention::default();
        a.focus_on(LOBBY, "#lobby".into());
        assert!(!a.left_room(&room(DEV)));
        assert_eq!(a.route_text(), Some(LOBBY));
        assert!(a.left_room(&room(LOBBY)));
        assert_eq!(a.route_text(), None);
        assert!(!a.left_room(&room(LOBBY)), "ended once");
        a.focus_on(BOB, "@bob".into());
        assert!(!a.left_room(&room(LOBBY)));
        assert_eq!(a.route_text(), Some(BOB));
    }

    #[test]
    fn the_focus_is_told_again_only_when_its_name_changes() {
        let mut a = Attention::default();
        assert_eq!(a.relabel("#lobby".into()), None, "nothing is focused");
        a.focus_on(LOBBY, "#lobby".into());
        assert_eq!(a.relabel("#lobby".into()), None);
        assert_eq!(a.relabel("#lobby~adam".into()), Some("#lobby~adam".into()));
        assert_eq!(a.relabel("#lobby~adam".into()), None, "told once");
        a.focus_on(BOB, "@bob".into());
        assert_eq!(a.relabel("@robert".into()), Some("@robert".into()));
        assert!(a.logged_out());
        assert_eq!(a.relabel("@robert".into()), None);
        a.focus_on(LOBBY, "#lobby".into());
        assert!(a.left_room(&room(LOBBY)));
        assert_eq!(a.relabel("#lobby~adam".into()), None, "an ended focus is not told again");
    }

    #[test]
    fn logging_out_ends_the_focus() {
        let mut a = Attention::default();
        assert!(!a.logged_out());
        a.focus_on(CAROL, "@carol".into());
        assert!(a.logged_out());
        assert_eq!(a.route_text(), None);
    }

    #[test]
    fn messages_from_others_notify_and_say_whether_they_are_focused() {
        let mut a = Attention::default();
        assert_eq!(a.notification(&LOBBY, false), Some(Notify { focused: false }));
        a.focus_on(LOBBY, "#lobby".into());
        assert_eq!(a.notification(&LOBBY, false), Some(Notify { focused: true }));
        assert_eq!(a.notification(&DEV, false), Some(Notify { focused: false }));
        assert_eq!(a.notification(&BOB, false), Some(Notify { focused: false }));
        a.focus_on(BOB, "@bob".into());
        assert_eq!(a.notification(&BOB, false), Some(Notify { focused: true }));
        assert_eq!(a.notification(&CAROL, false), Some(Notify { focused: false }));
        assert_eq!(a.notification(&LOBBY, false), Some(Notify { focused: false }));
    }

    #[test]
    fn own_messages_never_notify() {
        let mut a = Attention::default();
        a.focus_on(LOBBY, "#lobby".into());
        assert_eq!(a.notification(&LOBBY, true), None);
        assert_eq!(a.notification(&BOB, true), None);
    }

    #[test]
    fn muted_places_never_notify_until_unmuted() {
        let mut a = Attention::default();
        a.set_muted(&DEV, true);
        a.set_muted(&BOB, true);
        assert!(a.is_muted(&DEV) && a.is_muted(&BOB));
        assert!(!a.is_muted(&LOBBY) && !a.is_muted(&CAROL));
        assert_eq!(a.notification(&DEV, false), None);
        assert_eq!(a.notification(&BOB, false), None);
        a.focus_on(DEV, "#dev".into());
        assert_eq!(a.notification(&DEV, false), None, "focus does not lift a mute");
        assert_eq!(a.notification(&LOBBY, false), Some(Notify { focused: false }));
        a.set_muted(&DEV, false);
        assert_eq!(a.notification(&DEV, false), Some(Notify { focused: true }));
    }

    #[test]
    fn kept_mutes_are_read_by_their_keys() {
        let mut a = Attention::default();
        a.load_mutes([LOBBY.mute_key(), BOB.mute_key()]);
        assert!(a.is_muted(&LOBBY) && a.is_muted(&BOB));
        assert!(!a.is_muted(&DEV));
        assert_eq!(LOBBY.mute_key(), format!("#{}", "01".repeat(32)));
        assert_eq!(BOB.mute_key(), format!("@{}", "b0".repeat(16)));
        a.load_mutes(Vec::new());
        assert!(!a.is_muted(&LOBBY));
    }
}
