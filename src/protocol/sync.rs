//! Room catch-up over `/meshchat/sync/4`: a joiner asks for a room's heads (to cite them in its
//! join); a member asks for the control events it lacks beyond its heads and the messages it
//! lacks beyond its marks, in bounded pages with cursors that only move forward.
//!
//! Every request carries the asker's certificate, which must be the asking peer's: the answer
//! depends on the account's standing in the room (members, and former members up to their
//! removal). Plain serde types; decoding never trusts a peer: every sequence is read with a cap.

use serde::{Deserialize, Serialize};

use crate::cert::Certificate;
use crate::e2e::RoomKey;
use crate::room::event::SignedEvent;
use crate::room::graph::EventId;

/// The protocol name.
pub const SYNC_PROTOCOL: &str = "/meshchat/sync/4";
/// Control events in one page.
pub const PAGE_EVENTS: usize = 1000;
/// Messages in one page.
pub const PAGE_MESSAGES: usize = 500;
/// The most room keys a page carries.
pub const MAX_PAGE_KEYS: usize = 64;
/// The most heads a request names.
pub const MAX_HEADS: usize = 256;
/// The most marks a request names (authors' machines in one room).
pub const MAX_MARKS: usize = 4096;
/// Requests are at most this large (marks, a certificate and a join event).
pub const MAX_REQUEST_BYTES: u64 = 512 * 1024;
/// Answers are at most this large.
pub const MAX_RESPONSE_BYTES: u64 = 24 * 1024 * 1024;

/// How far one machine's messages in a room are held: every number from 1 to `seq`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Mark {
    /// The author's peer id, binary.
    #[serde(with = "crate::bytes")]
    pub peer: Vec<u8>,
    pub seq: u64,
}

/// What a member asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchUpRequest {
    pub room: EventId,
    /// The asker's certificate.
    pub certificate: Certificate,
    /// The control events the asker holds (with their ancestors): usually its heads.
    #[serde(deserialize_with = "super::bounded::first::<_, _, MAX_HEADS>")]
    pub known: Vec<EventId>,
    /// The last control event of the previous page, if this asks for the next.
    pub after: Option<EventId>,
    /// How far the asker holds each machine's messages; messages beyond are sent.
    #[serde(deserialize_with = "super::bounded::first::<_, _, MAX_MARKS>")]
    pub marks: Vec<Mark>,
    /// The last message of the previous page (its machine and number), if this asks for the next.
    pub messages_after: Option<Mark>,
    /// A joiner's join event, taken in (and published) before the answer is made.
    pub join: Option<SignedEvent>,
}

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// The room's heads, for a joiner to cite: any certified peer may ask.
    Heads {
        room: EventId,
        certificate: Certificate,
    },
    CatchUp(Box<CatchUpRequest>),
}

impl SyncRequest {
    pub fn room(&self) -> &EventId {
        match self {
            SyncRequest::Heads { room, .. } => room,
            SyncRequest::CatchUp(request) => &request.room,
        }
    }

    pub fn certificate(&self) -> &Certificate {
        match self {
            SyncRequest::Heads { certificate, .. } => certificate,
            SyncRequest::CatchUp(request) => &request.certificate,
        }
    }
}

/// Why a request gets nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SyncRefusal {
    #[error("the room is not known there")]
    UnknownRoom,
    #[error("not a member of the room")]
    NotMember,
    #[error("banned from the room")]
    Banned,
    #[error("the certificate does not check out")]
    BadCertificate,
    #[error("the join does not check out")]
    BadJoin,
    #[error("too many catch-up requests from this account; try again shortly")]
    Busy,
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The room's head events (at most [`MAX_HEADS`]).
    Heads {
        #[serde(deserialize_with = "super::bounded::first::<_, _, MAX_HEADS>")]
        events: Vec<SignedEvent>,
    },
    /// A page: control events the asker lacks in fold order, then (once they are all sent)
    /// messages beyond its marks in (machine, number) order.
    Page {
        #[serde(deserialize_with = "super::bounded::first::<_, _, PAGE_EVENTS>")]
        events: Vec<SignedEvent>,
        more_events: bool,
        #[serde(deserialize_with = "super::bounded::first::<_, _, PAGE_MESSAGES>")]
        messages: Vec<SignedEvent>,
        more_messages: bool,
        /// The keys of the group sessions the page's messages are sealed with, of those the
        /// server holds and the asker, a member now, may have.
        #[serde(default, deserialize_with = "super::bounded::first::<_, _, MAX_PAGE_KEYS>")]
        keys: Vec<RoomKey>,
    },
    Refused(SyncRefusal),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::huge_length_inputs;

    #[test]
    fn hostile_lengths_are_refused_or_capped() {
        let fields = ["events", "messages", "known", "marks", "peer", "keys"];
        for input in huge_length_inputs(&fields) {
            let _ = cbor4ii::serde::from_slice::<SyncResponse>(&input);
            let _ = cbor4ii::serde::from_slice::<SyncRequest>(&input);
        }
    }

    #[test]
    fn a_page_round_trips() {
        let page = SyncResponse::Page {
            events: vec![],
            more_events: true,
            messages: vec![],
            more_messages: false,
            keys: vec![],
        };
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &page).unwrap();
        assert_eq!(cbor4ii::serde::from_slice::<SyncResponse>(&bytes).unwrap(), page);
    }
}
