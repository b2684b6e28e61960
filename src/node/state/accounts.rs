//! The account state of the node: the session engine, the trusted bootstrap key, the hosted
//! account worker's handle, the queue to the node's database, the nicknames used here, what is on its way to the bootstrap node (reply
//! channels by ticket, look-ups, flights by request id, peers' requests to the hosted worker),
//! and the directory of the names accounts go by, with the bookkeeping of each.
//!
//! Only state and its own bookkeeping live here: this module never imports the event loop nor an
//! adapter file, never touches the swarm and never emits an event; the adapter that carries out
//! what the session engine decides is `node/accounts.rs`.

use std::collections::{HashMap, HashSet};

use libp2p::PeerId;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};

use super::direct::AfterLookup;
use crate::account::AccountId;
use crate::bootstrap::AuthWorker;
use crate::cert::{AuthorityKey, CertBody};
use crate::directory::{Directory, Learnt};
use crate::node::client::Done;
use crate::protocol::auth::AuthResponse;
use crate::session::{Flight, SessionEngine, Ticket};
use crate::store::Session;

use super::store::{Loaded, StoreHandle};
use crate::pinned_key::Trust;

/// Tags a request to the hosted account worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthTicket {
    /// A peer's request, answered on the response channel kept under this number.
    Inbound(u64),
    /// This node's own request: the engine's flight of this number.
    Own(u64),
}

/// Account state of the node.
pub(crate) struct Accounts {
    pub(crate) local: PeerId,
    pub(crate) store: StoreHandle,
    /// The nickname each account last used on this node, for its next login.
    nicknames: HashMap<AccountId, String>,
    pub(crate) trust: Trust,
    pub(crate) worker: Option<AuthWorker<AuthTicket>>,
    /// The session, the bootstrap nodes in reach, own requests on their way or waiting.
    pub(crate) engine: SessionEngine,
    /// Bootstrap nodes refused (and said so) while connected.
    pub(crate) refused: HashSet<PeerId>,
    next_number: u64,
    /// Peers' requests to the hosted worker, by number.
    pub(crate) inbound: HashMap<u64, ResponseChannel<AuthResponse>>,
    /// Where the answers of commands go, by ticket.
    pub(crate) replies: HashMap<Ticket, Done>,
    /// What look-ups were for, by ticket.
    pub(crate) lookups: HashMap<Ticket, AfterLookup>,
    /// The engine's flights on their way to a bootstrap node in reach.
    pub(crate) remote: HashMap<OutboundRequestId, Flight>,
    /// Which username each account goes by, from the newest certificates seen.
    directory: Directory,
    /// The peer (binary) each account's newest certificate seen names, with its serial: a
    /// letter left at a mailbox is sealed to that peer's key.
    peers: HashMap<AccountId, (u64, Vec<u8>)>,
}

impl Accounts {
    pub(crate) fn new(
        local: PeerId,
        store: StoreHandle,
        loaded: &mut Loaded,
        trust: Trust,
        worker: Option<AuthWorker<AuthTicket>>,
    ) -> Self {
        let mut directory = Directory::new();
        for (account, name, serial) in std::mem::take(&mut loaded.labels) {
            directory.learn_label(account, &name, serial);
        }
        let peers = std::mem::take(&mut loaded.account_peers)
            .into_iter()
            .map(|(account, peer, serial)| (account, (serial, peer)))
            .collect();
        let engine = SessionEngine::new(local, trust.key(), worker.is_some());
        Accounts {
            local,
            store,
            nicknames: std::mem::take(&mut loaded.nicknames).into_iter().collect(),
            trust,
            worker,
            engine,
            refused: HashSet::new(),
            next_number: 0,
            inbound: HashMap::new(),
            replies: HashMap::new(),
            lookups: HashMap::new(),
            remote: HashMap::new(),
            directory,
            peers,
        }
    }

    /// Takes in what a verified certificate says of its account; what changed.
    pub(crate) fn learn(&mut self, body: &CertBody) -> Learnt {
        let (known, newer) = match self.peers.get(&body.account) {
            Some((serial, _)) => (true, body.serial > *serial),
            None => (false, true),
        };
        // Bounded like the directory: a new account past the bound is not remembered.
        if newer && (known || self.peers.len() < crate::directory::MAX_ACCOUNTS) {
            self.peers.insert(body.account, (body.serial, body.peer_id.clone()));
            let (account, peer, serial) = (body.account, body.peer_id.clone(), body.serial);
            self.store.write("keep an account's peer", move |store| store.save_account_peer(&account, &peer, serial));
        }
        self.learn_label(body.account, &body.username, body.serial)
    }

    /// The peer (binary) `account`'s newest certificate seen names, if one was seen.
    pub(crate) fn peer_of(&self, account: &AccountId) -> Option<&[u8]> {
        self.peers.get(account).map(|(_, peer)| peer.as_slice())
    }

    /// Whether `account` is known here (a certificate or an event of it was seen).
    pub(crate) fn knows(&self, account: &AccountId) -> bool {
        self.peers.contains_key(account) || self.directory.knows(account)
    }

    /// Takes in that `account` goes by `username` in its verified certificate of serial `serial`.
    pub(crate) fn learn_label(&mut self, account: AccountId, username: &str, serial: u64) -> Learnt {
        let learnt = self.directory.learn_label(account, username, serial);
        if learnt != Learnt::Nothing {
            let username = username.to_string();
            self.store.write("keep an account's name", move |store| store.save_label(&account, &username, serial));
        }
        learnt
    }

    /// The username `account` goes by (a short id when not known).
    pub(crate) fn name_of(&self, account: &AccountId) -> String {
        match self.account() {
            Some(me) if me == *account => self.username().map(str::to_string).unwrap_or_default(),
            _ => self.directory.name_of(account),
        }
    }

    /// The account known here to go by `username` (any case), without asking anyone.
    pub(crate) fn known_account(&self, username: &str) -> Option<AccountId> {
        match (self.account(), self.username()) {
            (Some(me), Some(name)) if crate::account::same_name(name, username) => Some(me),
            _ => self.directory.find(username),
        }
    }

    /// The account this node is logged in as.
    pub(crate) fn account(&self) -> Option<AccountId> {
        self.engine.account()
    }

    /// The nickname `account` last used on this node.
    pub(crate) fn remembered_nickname(&self, account: &AccountId) -> Option<String> {
        self.nicknames.get(account).cloned()
    }

    pub(crate) fn session(&self) -> Option<&Session> {
        self.engine.session()
    }

    pub(crate) fn username(&self) -> Option<&str> {
        self.engine.username()
    }

    pub(crate) fn trusted_key(&self) -> Option<AuthorityKey> {
        self.trust.key()
    }

    /// The authority key, when this node hosts the bootstrap.
    pub(crate) fn hosted_authority(&self) -> Option<AuthorityKey> {
        self.worker.as_ref().map(AuthWorker::authority_key)
    }

    /// The bootstrap node requests go to: this node, or the first trusted one in reach.
    pub(crate) fn bootstrap_peer(&self) -> Option<PeerId> {
        self.engine.bootstrap_peer()
    }

    /// Whether `peer` is a bootstrap node in reach with the trusted key.
    pub(crate) fn is_trusted_bootstrap(&self, peer: &PeerId) -> bool {
        self.engine.is_trusted_bootstrap(peer)
    }

    /// The keys of the unconfirmed bootstrap nodes in reach, each once, first met first.
    pub(crate) fn unconfirmed_keys(&self) -> Vec<AuthorityKey> {
        self.engine.unconfirmed_keys()
    }

    pub(crate) fn number(&mut self) -> u64 {
        self.next_number += 1;
        self.next_number
    }

    /// Keeps `reply` until the engine answers its ticket.
    pub(crate) fn hold(&mut self, reply: Done) -> Ticket {
        let ticket = Ticket(self.number());
        self.replies.insert(ticket, reply);
        ticket
    }

    /// Saves the session, and the nickname for the user's later logins on this node.
    pub(crate) fn save(&mut self, session: &Session) {
        let account = session.certificate.body.account;
        self.nicknames.insert(account, session.nick.clone());
        let session = session.clone();
        // Committed at once: the user is told they are logged in, and a crash right after must
        // not log them out.
        self.store.write_now("save the session", move |store| {
            store.save_session(&session)?;
            store.save_nickname(&account, &session.nick)
        });
    }

    pub(crate) fn forget_saved_session(&self) {
        self.store.write_now("clear the saved session", |store| store.clear_session());
    }
}
