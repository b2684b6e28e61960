//! The bootstrap nodes in reach, as identify reports them: each is trusted (its key is the
//! pinned one), unconfirmed (no key is pinned yet: reported with its key, and no password goes
//! to it) or refused (another key than the pinned one); `/trust KEY` pins a key the user
//! confirmed. Which bootstrap nodes are in reach, and which requests go where, is the session
//! engine's ([`crate::session`], through [`super::accounts`]); this file never sends a request.

use libp2p::PeerId;
use libp2p::identify;

use super::CommandError;
use super::event::{BootstrapState, ErrorCode, UiEvent};
use super::parts::EventLoop;
use crate::cert::AuthorityKey;
use crate::pinned_key::{TrustError, Verdict};
use crate::protocol::auth;

/// A key `/trust` cannot pin, with the code scripts see.
fn trust_error(error: TrustError) -> CommandError {
    let code = match &error {
        TrustError::NotAKey { .. } | TrustError::UnknownPrefix { .. } | TrustError::AmbiguousPrefix { .. } => {
            ErrorCode::Usage
        }
        TrustError::Conflict { .. } => ErrorCode::UntrustedBootstrap,
        TrustError::Read { .. } | TrustError::Write { .. } | TrustError::Malformed { .. } => ErrorCode::Internal,
    };
    CommandError::new(code, error.to_string())
}

/// How long a bootstrap node with the trusted key is taken to be one, once identify said so
/// (a day: as long as a connection may stay idle).
const TRUSTED_FOR: std::time::Duration = crate::net::swarm::IDLE_CONNECTION_TIMEOUT;

impl EventLoop {
    /// identify told us what `peer` is: if it serves accounts, decide whether to trust it.
    pub(super) async fn consider_bootstrap(&mut self, peer: PeerId, info: &identify::Info) {
        if !info.protocols.iter().any(|p| p.as_ref() == auth::PROTOCOL) || peer == self.accounts.local {
            return;
        }
        let key = AuthorityKey::of_peer(&info.public_key);
        let Some(key) = key else {
            tracing::info!(%peer, "a bootstrap node without an ed25519 key is ignored");
            return;
        };
        match self.accounts.trust.consider(key) {
            Verdict::Trusted => {
                // The trusted bootstrap node's connections keep their places.
                let now = std::time::Instant::now();
                if let Some(until) = now.checked_add(TRUSTED_FOR) {
                    self.swarm.behaviour_mut().inbound.vouch(peer, until, now);
                }
                self.session_bootstrap_found(peer).await
            }
            Verdict::Unconfirmed => self.session_bootstrap_unconfirmed(peer, key).await,
            Verdict::Refused { pinned } => self.refuse_bootstrap(peer, key, pinned).await,
        }
    }

    /// A bootstrap node with another key than the trusted one: refused, said once per connection.
    pub(super) async fn refuse_bootstrap(&mut self, peer: PeerId, key: AuthorityKey, pinned: AuthorityKey) {
        if self.accounts.refused.insert(peer) {
            let message = format!(
                "bootstrap node {peer} has key {}, but this node trusts {} ({}); it is ignored. Delete that file to trust another bootstrap node.",
                key.to_hex(),
                pinned.to_hex(),
                self.accounts.trust.pin_path().display()
            );
            self.emit(UiEvent::error(ErrorCode::UntrustedBootstrap, message)).await;
        }
    }

    /// `/trust KEY`: pins the key the user confirmed; the bootstrap nodes in reach with it are
    /// found, the others refused.
    pub(super) async fn trust_bootstrap(&mut self, typed: &str) -> Result<(), CommandError> {
        let key = self.accounts.trust.choose(typed).map_err(trust_error)?;
        self.accounts.trust.confirm(key).map_err(trust_error)?;
        let event = UiEvent::Bootstrap { peer_id: None, state: BootstrapState::Trusted, key: Some(key.to_hex()) };
        self.emit(event).await;
        self.session_key_trusted(key).await;
        Ok(())
    }

    /// The last connection to `peer` closed.
    pub(super) async fn bootstrap_gone(&mut self, peer: PeerId) {
        self.accounts.refused.remove(&peer);
        self.session_peer_gone(peer).await;
    }
}
