//! The [`Keyring`]: this node's own group session in each room it writes in, and every
//! session key it holds (its own included), by room and session id.
//!
//! Rules: a session is shared with the room's members when it begins, and with each member who
//! joins while it lasts; when anyone it was shared with is no longer a member (a leave, a kick,
//! a ban), the next message begins a new session, shared only with the members left. An own
//! session is never kept beyond the process (a restart begins a new one), so no message index
//! is ever used twice. A key for a session known here replaces the one held only when it reads
//! further back; one whose ratchet is not the held one's is refused.
//!
//! Whose session a key is (its `author`) is not signed: whoever passes a key on names it. Only
//! the session's maker can seal a message with it, and a message names its author inside
//! (checked against its signed envelope), so the first message a session opens settles whose
//! it is, whatever the key said. Until then a key named after the wrong author still reads as
//! far back as it goes.

use std::collections::{BTreeSet, HashMap};

use vodozemac::megolm::{
    DecryptionError, GroupSession, InboundGroupSession, MegolmMessage, SessionConfig, SessionOrdering,
};

use super::{KeyError, MAX_SESSIONS_PER_AUTHOR, OpenError, Plain, RoomKey, Sealed};
use crate::account::AccountId;
use crate::room::EventId;

/// The node's own session in a room.
struct Own {
    session: GroupSession,
    /// The members it was shared with (and this node's user).
    shared_with: BTreeSet<AccountId>,
}

/// A session key held.
struct Held {
    key: RoomKey,
    session: InboundGroupSession,
}

/// What sealing a message gave.
#[derive(Debug)]
pub struct Sealing {
    pub sealed: Sealed,
    /// The key of the session it was sealed with, from its first message.
    pub key: RoomKey,
    /// Whether the session began with this message (its key is to be kept).
    pub began: bool,
    /// The members the key is to go to now: all others when it began, else those who joined
    /// since it was last shared.
    pub share_with: Vec<AccountId>,
}

/// Whether a key was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// New here, or reaching further back than the one held: keep it.
    Taken,
    /// Nothing new.
    Known,
}

/// This node's group sessions and the keys it holds.
#[derive(Default)]
pub struct Keyring {
    own: HashMap<EventId, Own>,
    held: HashMap<(EventId, String), Held>,
    /// How many sessions of each author are held in each room.
    sessions_of: HashMap<(EventId, AccountId), usize>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({} own, {} held)", self.own.len(), self.held.len())
    }
}

impl Keyring {
    /// Seals `text`, this node's user `me`'s message number `seq` in `room`, whose members are
    /// `members` now (`since`: the room's heads, cited by the message). A new session begins
    /// when none is running in the room or someone it was shared with is no longer a member.
    pub fn seal(
        &mut self,
        room: EventId,
        me: AccountId,
        members: &BTreeSet<AccountId>,
        since: &[EventId],
        seq: u64,
        text: &str,
    ) -> Sealing {
        let current = self.own.get(&room).filter(|own| own.shared_with.iter().all(|m| *m == me || members.contains(m)));
        let began = current.is_none();
        if began {
            let session = GroupSession::new(SessionConfig::version_1());
            let signed = session.session_key();
            let inbound = InboundGroupSession::new(&signed, SessionConfig::version_1());
            let key = RoomKey {
                room,
                author: me,
                session: session.session_id(),
                since: since.to_vec(),
                index: inbound.first_known_index(),
                key: signed.to_bytes(),
            };
            self.hold(key, inbound);
            self.own.insert(room, Own { session, shared_with: BTreeSet::from([me]) });
        }
        let Some(own) = self.own.get_mut(&room) else { unreachable!("an own session was just made") };
        let share_with: Vec<AccountId> = members.iter().filter(|m| !own.shared_with.contains(m)).copied().collect();
        own.shared_with.extend(share_with.iter().copied());
        let plain = Plain { room, author: me, seq, text: text.to_string() };
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &plain).unwrap_or_default();
        let session = own.session.session_id();
        let sealed = Sealed { ciphertext: own.session.encrypt(&bytes).to_bytes(), session: session.clone() };
        let key = self.held.get(&(room, session)).map(|held| held.key.clone());
        let Some(key) = key else { unreachable!("an own session's key is held from its start") };
        Sealing { sealed, key, began, share_with }
    }

    /// Opens a message of `author` (number `seq`) in `room`, as its envelope says.
    pub fn open(&mut self, room: EventId, author: AccountId, seq: u64, sealed: &Sealed) -> Result<String, OpenError> {
        let held = self.held.get_mut(&(room, sealed.session.clone())).ok_or(OpenError::NoKey)?;
        let message = MegolmMessage::from_bytes(&sealed.ciphertext).map_err(|_| OpenError::Broken("malformed"))?;
        let decrypted = held.session.decrypt(&message).map_err(|e| match e {
            DecryptionError::UnknownMessageIndex(..) => OpenError::NoKey,
            _ => OpenError::Broken("it does not decrypt with its session's key"),
        })?;
        let plain: Plain =
            cbor4ii::serde::from_slice(&decrypted.plaintext).map_err(|_| OpenError::Broken("malformed inside"))?;
        if plain.room != room || plain.author != author || plain.seq != seq {
            return Err(OpenError::Broken("it is not what its envelope says"));
        }
        if held.key.author != author {
            // Passed on under another author's name: the session is the one who sealed this.
            let named = std::mem::replace(&mut held.key.author, author);
            if let Some(count) = self.sessions_of.get_mut(&(room, named)) {
                *count = count.saturating_sub(1);
            }
            *self.sessions_of.entry((room, author)).or_default() += 1;
        }
        Ok(plain.text)
    }

    /// Takes a key given by a member (or read back from the database).
    pub fn take(&mut self, key: RoomKey) -> Result<Opened, KeyError> {
        let id = (key.room, key.session.clone());
        if !self.held.contains_key(&id)
            && self.sessions_of.get(&(key.room, key.author)).is_some_and(|n| *n >= MAX_SESSIONS_PER_AUTHOR)
        {
            return Err(KeyError::TooMany);
        }
        let mut session = key.open()?;
        let Some(held) = self.held.get_mut(&id) else {
            self.hold(key, session);
            return Ok(Opened::Taken);
        };
        match session.compare(&mut held.session) {
            SessionOrdering::Better => {
                // The room state it was begun in, and whose session it is, stay as known here:
                // a key passed on says either as whoever passed it wished.
                let since = std::mem::take(&mut held.key.since);
                let author = held.key.author;
                *held = Held { key: RoomKey { since, author, ..key }, session };
                Ok(Opened::Taken)
            }
            SessionOrdering::Equal | SessionOrdering::Worse => Ok(Opened::Known),
            SessionOrdering::Unconnected => Err(KeyError::Unconnected),
        }
    }

    /// Holds `key` of a session not held yet, opened as `session`.
    fn hold(&mut self, key: RoomKey, session: InboundGroupSession) {
        *self.sessions_of.entry((key.room, key.author)).or_default() += 1;
        self.held.insert((key.room, key.session.clone()), Held { key, session });
    }

    /// The key held for `session` in `room`, from the first message it reads.
    pub fn key(&self, room: &EventId, session: &str) -> Option<&RoomKey> {
        self.held.get(&(*room, session.to_string())).map(|held| &held.key)
    }

    /// Whether a key reading message `index` of `session` in `room` is held.
    pub fn reads(&self, room: &EventId, session: &str, index: u32) -> bool {
        self.key(room, session).is_some_and(|key| key.index <= index)
    }

    /// The id of this node's current session in `room`, if one runs.
    pub fn own_session(&self, room: &EventId) -> Option<String> {
        self.own.get(room).map(|own| own.session.session_id())
    }

    /// Ends this node's session in `room` (its user left, or logged out): the next message begins
    /// a new one. Keys held stay.
    pub fn end_own(&mut self, room: &EventId) {
        self.own.remove(room);
    }

    /// Ends every own session (a logout, another user's login).
    pub fn end_all_own(&mut self) {
        self.own.clear();
    }
}
