//! The account protocol (`/meshchat/auth/2`) between a node and the bootstrap node, over a
//! Noise-encrypted request-response stream. The asking peer is known from the connection, so
//! renewal, rename and logout carry no credentials.

use serde::{Deserialize, Serialize};

use crate::account::AccountId;
use crate::cert::Certificate;

/// The protocol name. The bootstrap node answers it; identify shows it only there, which is
/// how nodes recognise a bootstrap node.
pub const PROTOCOL: &str = "/meshchat/auth/2";
/// The largest request accepted, in bytes (passwords are capped well below).
pub const MAX_REQUEST_BYTES: u64 = 8 * 1024;
/// The largest answer accepted, in bytes.
pub const MAX_RESPONSE_BYTES: u64 = 8 * 1024;

/// What a node asks of the bootstrap node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthRequest {
    Register {
        username: String,
        password: String,
    },
    Login {
        username: String,
        password: String,
    },
    /// A fresh certificate for the session this peer has.
    Renew,
    Rename {
        new_username: String,
    },
    Logout,
    /// Whether an account called `username` (any case) exists; answered only to a peer with a
    /// session.
    Lookup {
        username: String,
    },
}

impl AuthRequest {
    /// The request's name, for logs (never the password).
    pub fn kind(&self) -> &'static str {
        match self {
            AuthRequest::Register { .. } => "register",
            AuthRequest::Login { .. } => "login",
            AuthRequest::Renew => "renew",
            AuthRequest::Rename { .. } => "rename",
            AuthRequest::Logout => "logout",
            AuthRequest::Lookup { .. } => "lookup",
        }
    }
}

/// Why the bootstrap node said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    InvalidUsername,
    UsernameTaken,
    WeakPassword,
    WrongCredentials,
    RateLimited,
    NotLoggedIn,
    Internal,
}

/// An account's latest rename, as the bootstrap node keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameNote {
    pub old: String,
    pub new: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

/// An account a look-up found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownAccount {
    pub account: AccountId,
    /// Its username now.
    pub username: String,
}

/// The bootstrap node's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthResponse {
    /// A certificate for the peer that asked (also the answer to a rename), with the account's
    /// latest rename: a node whose rename answer was lost learns of it from its next renewal.
    Granted {
        certificate: Certificate,
        #[serde(default)]
        renamed: Option<RenameNote>,
    },
    LoggedOut,
    /// The answer to a look-up: the account that holds the name (its username now, or a name
    /// its rename left reserved), or `None`.
    User {
        account: Option<KnownAccount>,
    },
    Refused {
        refusal: Refusal,
        message: String,
    },
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{
        DECODE_MEMORY_LIMIT, any_bytes, any_certificate, any_text, deep_nesting, huge_length_inputs, mutated,
        peak_memory,
    };

    fn any_request() -> impl Strategy<Value = AuthRequest> {
        prop_oneof![
            (any_text(16), any_text(16)).prop_map(|(username, password)| AuthRequest::Register { username, password }),
            (any_text(16), any_text(16)).prop_map(|(username, password)| AuthRequest::Login { username, password }),
            Just(AuthRequest::Renew),
            any_text(16).prop_map(|new_username| AuthRequest::Rename { new_username }),
            Just(AuthRequest::Logout),
            any_text(16).prop_map(|username| AuthRequest::Lookup { username }),
        ]
    }

    fn any_response() -> impl Strategy<Value = AuthResponse> {
        let refusal = prop::sample::select(vec![
            Refusal::InvalidUsername,
            Refusal::UsernameTaken,
            Refusal::WeakPassword,
            Refusal::WrongCredentials,
            Refusal::RateLimited,
            Refusal::NotLoggedIn,
            Refusal::Internal,
        ]);
        prop_oneof![
            (any_certificate(), prop::option::of((any_text(8), any_text(8), any::<u64>()))).prop_map(
                |(certificate, renamed)| AuthResponse::Granted {
                    certificate,
                    renamed: renamed.map(|(old, new, at)| RenameNote { old, new, at }),
                }
            ),
            Just(AuthResponse::LoggedOut),
            prop::option::of((any::<[u8; 16]>(), any_text(16))).prop_map(|found| AuthResponse::User {
                account: found.map(|(id, username)| KnownAccount { account: AccountId::from_bytes(id), username }),
            }),
            (refusal, any_text(32)).prop_map(|(refusal, message)| AuthResponse::Refused { refusal, message }),
        ]
    }

    fn encode<T: Serialize>(value: &T) -> Vec<u8> {
        cbor4ii::serde::to_vec(Vec::new(), value).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_bytes_decode_without_panicking(
            bytes in prop_oneof![
                any_bytes(256),
                any_request().prop_flat_map(|r| mutated(encode(&r))),
                any_response().prop_flat_map(|r| mutated(encode(&r))),
            ],
        ) {
            if let Ok(request) = cbor4ii::serde::from_slice::<AuthRequest>(&bytes) {
                prop_assert_eq!(cbor4ii::serde::from_slice::<AuthRequest>(&encode(&request)).ok(), Some(request));
            }
            if let Ok(response) = cbor4ii::serde::from_slice::<AuthResponse>(&bytes) {
                prop_assert_eq!(cbor4ii::serde::from_slice::<AuthResponse>(&encode(&response)).ok(), Some(response));
            }
        }

        #[test]
        fn requests_and_responses_round_trip(request in any_request(), response in any_response()) {
            prop_assert_eq!(cbor4ii::serde::from_slice::<AuthRequest>(&encode(&request)).ok(), Some(request));
            prop_assert_eq!(cbor4ii::serde::from_slice::<AuthResponse>(&encode(&response)).ok(), Some(response));
        }
    }

    #[test]
    fn huge_announced_lengths_fail_fast_and_small() {
        let fields = ["Register", "Login", "Granted", "User", "Refused", "username", "certificate", "message"];
        for input in huge_length_inputs(&fields).into_iter().chain(deep_nesting("Granted", 10_000)) {
            let (decoded, peak) = peak_memory(|| cbor4ii::serde::from_slice::<AuthRequest>(&input));
            assert!(decoded.is_err(), "{input:x?}");
            assert!(peak < DECODE_MEMORY_LIMIT, "{peak} bytes for {input:x?}");
            let (decoded, peak) = peak_memory(|| cbor4ii::serde::from_slice::<AuthResponse>(&input));
            assert!(decoded.is_err(), "{input:x?}");
            assert!(peak < DECODE_MEMORY_LIMIT, "{peak} bytes for {input:x?}");
        }
    }
}
