//! Everything libp2p: the composed network behaviour, swarm construction, and the policy that
//! decides whom to dial when. Only [`crate::node`] uses this module; no libp2p type goes further.

pub mod behaviour;
pub mod dial_bound;
pub mod gated;
pub mod inbound_slots;
pub mod pending_per_host;
pub mod reach;
pub mod redial;
pub mod swarm;

pub use behaviour::{Behaviour, BehaviourEvent, MDNS_MAX_RECORDS, Roles, mdns_behaviour, topic_score};
pub use reach::RelayGate;
pub use redial::Redialer;
pub use swarm::{SwarmError, build_swarm};
