//! The events a node reports to its user, and the error codes in them (with [`CommandError`], a
//! command the node could not carry out): one vocabulary for the coloured terminal and for the
//! `--json` line protocol (DESIGN.md, "`--json` events"). Field
//! names and `type` tags here are the contract that scripts and tests rely on; change them only
//! together with DESIGN.md.
//!
//! They belong to the node, which produces them; the front-ends in `ui/` import them from here
//! and render them. Nothing here knows how an event is shown, and nothing here imports `ui`.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Something the user (or a script reading `--json`) should see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UiEvent {
    /// The node listens and is ready for commands.
    Ready {
        peer_id: String,
        /// Every address the node really listens on, ports included.
        listen: Vec<String>,
        /// The authority public key (hex), when this node hosts the bootstrap.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        authority_key: Option<String>,
    },
    /// A bootstrap node came into reach (`found`) or went away (`lost`); one whose key is not
    /// pinned came into reach (`unconfirmed`, with its `key`); the user trusted `key`
    /// (`trusted`, without a `peer_id`).
    Bootstrap {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer_id: Option<String>,
        state: BootstrapState,
        /// The bootstrap's authority key, 64 lower-case hex digits.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// An account was created (a `logged_in` follows).
    Registered {
        user: String,
    },
    /// This node is logged in; `resumed` when from a saved session, without a password.
    LoggedIn {
        user: String,
        nick: String,
        resumed: bool,
    },
    LoggedOut {
        user: String,
    },
    /// A username changed (this node's or another's).
    Renamed {
        old: String,
        new: String,
    },
    /// A display nickname changed.
    Nick {
        user: String,
        nick: String,
    },
    /// Another user came online or went offline.
    Presence {
        user: String,
        nick: String,
        state: OnlineState,
    },
    /// The answer to `/who`.
    Online {
        users: Vec<OnlineUser>,
    },
    /// The answer to `/rooms`.
    Rooms {
        rooms: Vec<RoomSummary>,
    },
    RoomCreated {
        room: String,
        user: String,
    },
    Joined {
        room: String,
        user: String,
    },
    Left {
        room: String,
        user: String,
    },
    Kicked {
        room: String,
        user: String,
        by: String,
    },
    Banned {
        room: String,
        user: String,
        by: String,
    },
    /// `user` became admin; `by` is null on succession.
    Admin {
        room: String,
        user: String,
        by: Option<String>,
    },
    /// The answer to `/members`: members in join order, and the room's encryption.
    Members {
        room: String,
        members: Vec<MemberView>,
        encryption: RoomEncryption,
    },
    /// A room message (also this user's own).
    Message(ChatMessage),
    /// A direct message, sent or received.
    Dm(DirectMessage),
    /// The other side confirmed that it received direct message `id`.
    Delivered {
        id: String,
        to: String,
    },
    /// Someone else wrote in a room or conversation that is not muted.
    Notification {
        kind: NotificationKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// Whether the room or conversation is the focused one, as `node/attention.rs` decided
        /// (the terminal rings, and the prompt counts it unread, only when not).
        #[serde(skip)]
        focused: bool,
    },
    Muted {
        target: String,
    },
    Unmuted {
        target: String,
    },
    /// Where plain text goes now (`#room` or `@user`).
    Focus {
        target: String,
    },
    /// Plain text goes nowhere now: the focused room was left (or this user was put out of
    /// it), or this user logged out. For the terminal's prompt only: never serialised, so the
    /// `--json` stream (whose events DESIGN.md lists) has no such line.
    #[serde(skip)]
    Unfocused,
    /// The answer to `/history`: `message` or `dm` objects, oldest first.
    History {
        target: String,
        messages: Vec<UiEvent>,
    },
    /// The answer to `/search`: the results best first, numbered for `/history around N`.
    Search {
        /// The query as it reads (`/search` words, `from:`, where).
        query: String,
        results: Vec<SearchResult>,
        /// More results follow: `/search more` shows them.
        more: bool,
    },
    /// A peer connected (first connection) or disconnected (last connection closed).
    Peer {
        peer_id: String,
        state: PeerState,
    },
    /// The answer to `/status`.
    Status(Status),
    /// A notice for the user, such as the answer to `/help`.
    Info {
        message: String,
    },
    /// A command or input that could not be carried out. Never ends the node.
    Error {
        code: ErrorCode,
        message: String,
        /// With `bootstrap_unconfirmed`: the unconfirmed bootstrap key in reach.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
}

impl UiEvent {
    /// An `info` event.
    pub fn info(message: impl Into<String>) -> Self {
        UiEvent::Info { message: message.into() }
    }

    /// An `error` event.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        UiEvent::Error { code, message: message.into(), key: None }
    }

    /// A `bootstrap` event about `peer` (`found`, `lost`).
    pub fn bootstrap(peer: impl ToString, state: BootstrapState) -> Self {
        UiEvent::Bootstrap { peer_id: Some(peer.to_string()), state, key: None }
    }
}

/// Whether a peer is now connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerState {
    Connected,
    Disconnected,
    /// A peer reached through a relay until now is reached directly (told once).
    Direct,
}

/// Whether a bootstrap node is in reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BootstrapState {
    /// A trusted bootstrap node is in reach.
    Found,
    Lost,
    /// A bootstrap node whose key is not pinned is in reach: no password goes to it until the
    /// user confirms the key.
    Unconfirmed,
    /// The user confirmed the key: it is pinned.
    Trusted,
}

/// Whether a user is online.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnlineState {
    Online,
    Offline,
}

/// One user in an `online` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlineUser {
    pub user: String,
    pub nick: String,
}

/// One room in a `rooms` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    pub room: String,
    /// The room's id (its create event's), in hex.
    pub id: String,
    pub members: usize,
}

/// A room's encryption as `/members` and `/status` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEncryption {
    pub room: String,
    /// Room messages are end-to-end encrypted (always, in protocol 4).
    pub encrypted: bool,
    pub members: usize,
    /// How many members hold the key of this user's current session in the room, this user
    /// included (null: none runs; the next message begins one).
    pub key_holders: Option<usize>,
}

/// One member in a `members` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub user: String,
    pub admin: bool,
}

/// A room message as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub room: String,
    /// The author's username, from a verified certificate.
    pub from: String,
    pub nick: String,
    /// Empty when `unreadable`.
    pub text: String,
    pub id: String,
    /// Milliseconds since the Unix epoch, by the author's clock.
    pub ts: u64,
    /// Its text cannot be decrypted here: no key for it came (in time), or it does not open.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unreadable: bool,
}

/// One result of `/search`: a `message` or `dm` event, its number, and the words matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    /// Its number: `/history around N` shows the messages around it.
    pub n: usize,
    /// The `message` or `dm` found (its `type` and fields side by side with `n` and `matches`).
    #[serde(flatten)]
    pub found: UiEvent,
    /// The matched words, as `[first, end)` ranges of characters (Unicode scalar values) of
    /// the text.
    pub matches: Vec<(usize, usize)>,
}

/// A direct message as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectMessage {
    /// The sender's username, from a verified certificate.
    pub from: String,
    pub to: String,
    pub text: String,
    pub id: String,
    /// Milliseconds since the Unix epoch, by the sender's clock.
    pub ts: u64,
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Room,
    Dm,
}

/// A snapshot of the node, the answer to `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub peer_id: String,
    /// The logged-in username, if any.
    pub user: Option<String>,
    /// Peer ids of the peers connected now, sorted.
    pub peers: Vec<String>,
    /// Peer id of the bootstrap node in reach, if any.
    pub bootstrap: Option<String>,
    /// Rooms the user is a member of.
    pub rooms: Vec<String>,
    /// Their encryption, in the same order.
    #[serde(default)]
    pub encryption: Vec<RoomEncryption>,
    /// Direct messages waiting in the outbox for their receivers to come online.
    pub outbox: usize,
    /// Seconds until this user's certificate expires (it is renewed before).
    #[serde(default)]
    pub certificate_expires_in: Option<u64>,
    /// What is wrong, in words, if anything (no peer, no bootstrap, a certificate running out).
    #[serde(default)]
    pub problems: Vec<String>,
    /// Addresses the node listens on.
    pub listen: Vec<String>,
    /// Each peer connected now, sorted, and how: directly or through a relay.
    #[serde(default)]
    pub connections: Vec<PeerConnection>,
    /// Whether this node can be dialled from outside its network, as AutoNAT last said.
    #[serde(default)]
    pub reachability: Reachability,
    /// The relay this node holds a reservation at (peers at other sites reach it through it).
    #[serde(default)]
    pub relay: Option<String>,
}

/// A connected peer and how it is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerConnection {
    pub peer_id: String,
    /// The user on that peer, when presence has said.
    #[serde(default)]
    pub user: Option<String>,
    pub path: PeerPath,
}

/// How a peer is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerPath {
    /// Over at least one connection of its own (the LAN, or a hole punched through the NATs).
    Direct,
    /// Only through a relay.
    Relayed,
}

/// Whether a node can be dialled from outside its network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reachability {
    /// Not asked yet, or no relay and rendezvous point in reach to ask.
    #[default]
    Unknown,
    Public,
    /// Behind a NAT or a firewall: reached through a relay.
    Private,
}

/// The stable, machine-readable reason of an `error` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidCommand,
    Usage,
    NotLoggedIn,
    WrongCredentials,
    UsernameTaken,
    InvalidUsername,
    WeakPassword,
    NoBootstrap,
    RateLimited,
    NoSuchRoom,
    RoomExists,
    NotMember,
    NotAdmin,
    Banned,
    NoSuchUser,
    TooLong,
    /// A bootstrap node whose key is not the one this node trusts.
    UntrustedBootstrap,
    /// No bootstrap key is trusted yet and one is in reach: nothing was sent; `/trust KEY`.
    BootstrapUnconfirmed,
    /// Something this machine cannot do, such as starting a browser for `/open`.
    Unavailable,
    /// The node failed in a way that is not the user's fault.
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire (`"invalid_command"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidCommand => "invalid_command",
            ErrorCode::Usage => "usage",
            ErrorCode::NotLoggedIn => "not_logged_in",
            ErrorCode::WrongCredentials => "wrong_credentials",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::InvalidUsername => "invalid_username",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::NoBootstrap => "no_bootstrap",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NoSuchRoom => "no_such_room",
            ErrorCode::RoomExists => "room_exists",
            ErrorCode::NotMember => "not_member",
            ErrorCode::NotAdmin => "not_admin",
            ErrorCode::Banned => "banned",
            ErrorCode::NoSuchUser => "no_such_user",
            ErrorCode::TooLong => "too_long",
            ErrorCode::UntrustedBootstrap => "untrusted_bootstrap",
            ErrorCode::BootstrapUnconfirmed => "bootstrap_unconfirmed",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A command the node could not carry out, with the code scripts see.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct CommandError {
    pub code: ErrorCode,
    pub message: String,
    /// With `bootstrap_unconfirmed`: the bootstrap key to confirm.
    pub key: Option<String>,
}

impl CommandError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        CommandError { code, message: message.into(), key: None }
    }

    /// The same error, naming bootstrap key `key`.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The node is gone.
    pub fn stopped() -> Self {
        Self::new(ErrorCode::Internal, "the node has stopped")
    }

    /// As an `error` event.
    pub fn to_event(&self) -> UiEvent {
        UiEvent::Error { code: self.code, message: self.message.clone(), key: self.key.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_the_documented_names() {
        let ready = UiEvent::Ready {
            peer_id: "12D3".into(),
            listen: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            authority_key: None,
        };
        assert_eq!(
            serde_json::to_string(&ready).unwrap(),
            r#"{"type":"ready","peer_id":"12D3","listen":["/ip4/127.0.0.1/tcp/4001"]}"#
        );
        let peer = UiEvent::Peer { peer_id: "12D3".into(), state: PeerState::Disconnected };
        assert_eq!(serde_json::to_string(&peer).unwrap(), r#"{"type":"peer","peer_id":"12D3","state":"disconnected"}"#);
        let error = UiEvent::error(ErrorCode::InvalidCommand, "no");
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"type":"error","code":"invalid_command","message":"no"}"#
        );
    }

    #[test]
    fn account_events_use_the_documented_fields() {
        let value =
            serde_json::to_value(UiEvent::LoggedIn { user: "a".into(), nick: "A".into(), resumed: true }).unwrap();
        assert_eq!(value, serde_json::json!({"type": "logged_in", "user": "a", "nick": "A", "resumed": true}));
        let value =
            serde_json::to_value(UiEvent::Online { users: vec![OnlineUser { user: "a".into(), nick: "A".into() }] })
                .unwrap();
        assert_eq!(value, serde_json::json!({"type": "online", "users": [{"user": "a", "nick": "A"}]}));
        let value = serde_json::to_value(UiEvent::bootstrap("p", BootstrapState::Lost)).unwrap();
        assert_eq!(value, serde_json::json!({"type": "bootstrap", "peer_id": "p", "state": "lost"}));
        let unconfirmed = UiEvent::Bootstrap {
            peer_id: Some("p".into()),
            state: BootstrapState::Unconfirmed,
            key: Some("ab".into()),
        };
        assert_eq!(
            serde_json::to_value(unconfirmed).unwrap(),
            serde_json::json!({"type": "bootstrap", "peer_id": "p", "state": "unconfirmed", "key": "ab"})
        );
        let trusted = UiEvent::Bootstrap { peer_id: None, state: BootstrapState::Trusted, key: Some("ab".into()) };
        assert_eq!(
            serde_json::to_value(trusted).unwrap(),
            serde_json::json!({"type": "bootstrap", "state": "trusted", "key": "ab"})
        );
        let refused =
            UiEvent::Error { code: ErrorCode::BootstrapUnconfirmed, message: "m".into(), key: Some("ab".into()) };
        assert_eq!(
            serde_json::to_value(refused).unwrap(),
            serde_json::json!({"type": "error", "code": "bootstrap_unconfirmed", "message": "m", "key": "ab"})
        );
    }

    #[test]
    fn room_events_use_the_documented_fields() {
        let message = UiEvent::Message(ChatMessage {
            room: "lobby".into(),
            from: "alice".into(),
            nick: "A".into(),
            text: "hi".into(),
            id: "x".into(),
            ts: 5,
            unreadable: false,
        });
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            serde_json::json!({"type": "message", "room": "lobby", "from": "alice", "nick": "A", "text": "hi", "id": "x", "ts": 5})
        );
        let admin = UiEvent::Admin { room: "lobby".into(), user: "bob".into(), by: None };
        assert_eq!(
            serde_json::to_value(&admin).unwrap(),
            serde_json::json!({"type": "admin", "room": "lobby", "user": "bob", "by": null})
        );
        let note = UiEvent::Notification {
            kind: NotificationKind::Room,
            room: Some("lobby".into()),
            from: None,
            focused: false,
        };
        assert_eq!(
            serde_json::to_value(&note).unwrap(),
            serde_json::json!({"type": "notification", "kind": "room", "room": "lobby"})
        );
        let history = UiEvent::History { target: "#lobby".into(), messages: vec![message.clone()] };
        assert_eq!(serde_json::to_value(&history).unwrap()["messages"][0]["type"], "message");
        let search = UiEvent::Search {
            query: "deploy*".into(),
            results: vec![SearchResult { n: 1, found: message, matches: vec![(0, 2)] }],
            more: false,
        };
        let value = serde_json::to_value(&search).unwrap();
        let result = &value["results"][0];
        assert_eq!(value["type"], "search");
        assert_eq!(value["query"], "deploy*");
        assert_eq!(result["type"], "message", "{value}");
        assert_eq!(result["n"], 1);
        assert_eq!(result["matches"], serde_json::json!([[0, 2]]));
        assert_eq!(result["text"], "hi");
        let back: UiEvent = serde_json::from_value(value).unwrap();
        assert_eq!(back, search);
    }

    #[test]
    fn direct_message_events_use_the_documented_fields() {
        let dm = UiEvent::Dm(DirectMessage {
            from: "alice".into(),
            to: "bob".into(),
            text: "hi".into(),
            id: "x".into(),
            ts: 5,
        });
        assert_eq!(
            serde_json::to_value(&dm).unwrap(),
            serde_json::json!({"type": "dm", "from": "alice", "to": "bob", "text": "hi", "id": "x", "ts": 5})
        );
        let delivered = UiEvent::Delivered { id: "x".into(), to: "bob".into() };
        assert_eq!(
            serde_json::to_value(&delivered).unwrap(),
            serde_json::json!({"type": "delivered", "id": "x", "to": "bob"})
        );
        let note =
            UiEvent::Notification { kind: NotificationKind::Dm, room: None, from: Some("alice".into()), focused: true };
        assert_eq!(
            serde_json::to_value(&note).unwrap(),
            serde_json::json!({"type": "notification", "kind": "dm", "from": "alice"})
        );
    }

    #[test]
    fn an_ended_focus_is_never_serialised() {
        assert!(serde_json::to_value(UiEvent::Unfocused).is_err());
        assert!(serde_json::from_str::<UiEvent>(r#"{"type":"unfocused"}"#).is_err());
    }

    #[test]
    fn status_is_a_flat_object() {
        let status = UiEvent::Status(Status {
            peer_id: "p".into(),
            user: None,
            peers: vec![],
            bootstrap: None,
            rooms: vec![],
            encryption: vec![],
            outbox: 0,
            certificate_expires_in: None,
            problems: vec![],
            listen: vec![],
            connections: vec![PeerConnection { peer_id: "q".into(), user: None, path: PeerPath::Relayed }],
            reachability: Reachability::Private,
            relay: Some("r".into()),
        });
        let value: serde_json::Value = serde_json::to_value(&status).unwrap();
        assert_eq!(value["connections"][0]["path"], "relayed");
        assert_eq!(value["reachability"], "private");
        assert_eq!(value["type"], "status");
        assert_eq!(value["peer_id"], "p");
        assert!(value["user"].is_null());
        assert!(value["peers"].as_array().unwrap().is_empty());
    }

    #[test]
    fn error_code_strings_match_serde() {
        for code in
            [ErrorCode::InvalidCommand, ErrorCode::NoBootstrap, ErrorCode::TooLong, ErrorCode::BootstrapUnconfirmed]
        {
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::Value::String(code.as_str().into()));
        }
    }
}
