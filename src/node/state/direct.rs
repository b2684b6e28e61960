//! The state of direct messages: the [`DmEngine`], the swarm's handles of what it has in flight
//! (request ids to the engine's flights, held response channels by number), the commands waiting
//! for their message to be kept, what was received from each sender on each peer, and what a look-up of a user at the bootstrap node was for
//! ([`AfterLookup`]).
//!
//! Only state and its own bookkeeping live here: this module never imports the event loop nor an
//! adapter file, never touches the swarm, the store or the engine's rules, and never emits an
//! event; the adapter that feeds the engine and carries out what it decides is `node/direct.rs`.

use std::collections::HashMap;

use libp2p::PeerId;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};

use crate::account::AccountId;
use crate::dm::{Channel, DmEngine, Flight};
use crate::node::client::Done;
use crate::node::event::CommandError;
use crate::protocol::dm::DmResponse;

/// Where a command's answer goes (a `/msg`, or plain text in a conversation).
pub(crate) type Replied = Box<dyn FnOnce(Result<(), CommandError>) + Send>;

/// `reply` as a [`Replied`].
pub(crate) fn replied(reply: Done) -> Replied {
    Box::new(move |result| {
        let _ = reply.send(result);
    })
}

/// Who received from whom where: (owner, sender, the sender's peer).
pub(crate) type Sender = (AccountId, AccountId, PeerId);

/// Direct messages: the engine, and the swarm's handles of what it has in flight.
#[derive(Default)]
pub(crate) struct Direct {
    pub(crate) engine: DmEngine,
    /// The engine's flight of each request in flight.
    pub(crate) flights: HashMap<OutboundRequestId, Flight>,
    /// Each message received and not answered yet (its peer and where the answer goes), by the
    /// number the engine knows.
    pub(crate) channels: HashMap<Channel, (PeerId, Answer)>,
    next_channel: u64,
    /// The commands that wrote a message, answered once it is kept (or lost), by its id.
    pub(crate) replies: HashMap<String, Replied>,
    /// Why a message being kept was not, until the engine says whether it is lost.
    pub(crate) not_kept: HashMap<String, String>,
    /// What was received from each sender on each peer, by (owner, sender, peer): the highest
    /// number, and the id of that message when it was received in this run. Read from the
    /// database the first time, then kept here as messages are kept.
    pub(crate) seen: HashMap<Sender, (Option<u64>, Option<String>)>,
}

/// Where the answer to a message received goes.
pub(crate) enum Answer {
    /// To the sender, on the request's channel.
    Peer(ResponseChannel<DmResponse>),
    /// It came as letter `id` from `mailbox`: once answered, the mailbox is told it was taken.
    Letter { mailbox: PeerId, id: String },
}

impl Direct {
    /// Holds the channel of a request from `peer`; the number the engine knows it by.
    pub(crate) fn hold(&mut self, peer: PeerId, channel: ResponseChannel<DmResponse>) -> Channel {
        self.hold_answer(peer, Answer::Peer(channel))
    }

    /// Holds where the answer to a message from `peer` goes; the number the engine knows it by.
    pub(crate) fn hold_answer(&mut self, peer: PeerId, answer: Answer) -> Channel {
        let number = Channel(self.next_channel);
        self.next_channel += 1;
        self.channels.insert(number, (peer, answer));
        number
    }
}

/// What a lookup of a user at the bootstrap node was for.
pub(crate) struct AfterLookup {
    /// The name as the user typed it.
    pub(crate) user: String,
    /// The message to send, or `None` for `/query`.
    pub(crate) text: Option<String>,
    pub(crate) reply: Replied,
}
