//! Rooms, pure: the rules of a room's state ([`RoomState`]), the event graph they are folded
//! over ([`graph`]), the engine that runs every room of a node ([`engine`]), and the small
//! parts they use (names, events waiting for what they cite, message order). No
//! I/O, no clock, no network: never tokio, the libp2p swarm or rusqlite.
//!
//! A room is its create event. Its control events (create, join, leave, kick, ban, unban, op)
//! cite the heads their author knew, are checked against the state they cite, and are folded
//! in (depth, id) order, so any two nodes holding the same events compute the same state,
//! whatever order the events arrived in; an event the fold no longer allows at its place (a
//! kick by an admin removed concurrently) changes nothing.
//!
//! Members, admins, bans and the targets of admin actions are account ids, never usernames: a
//! ban holds whatever the banned person is called now or later, and a rename keeps the seat.
//!
//! Rules: the creator is admin; admins kick, ban, unban and make admins; an admin cannot be
//! kicked or banned; when the last admin leaves, the oldest remaining member becomes admin; a
//! room whose last member leaves is empty for good (a new room may take its name); an admin
//! action its author's later leave did not know of is void (see [`graph`]).

pub mod engine;
pub mod event;
pub mod graph;
mod name;
mod order;
mod pending;

pub use graph::{Accepted, CatchUp, EventId, GraphEvent, MAX_PREV, MessageVerdict, Refusal as GraphRefusal, RoomGraph};
pub use name::{RoomNameError, check_room_name, normalise_room_name};
pub use order::Sequencer;
pub use pending::{Offered, Pending};

use serde::{Deserialize, Serialize};

use crate::account::AccountId;

/// What a control event does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    Create,
    Join,
    Leave,
    Kick(AccountId),
    Ban(AccountId),
    Unban(AccountId),
    Op(AccountId),
}

/// A member of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user: AccountId,
    pub admin: bool,
}

/// What applying an event changed, for users to see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Created {
        user: AccountId,
    },
    Joined {
        user: AccountId,
    },
    Left {
        user: AccountId,
    },
    Kicked {
        user: AccountId,
        by: AccountId,
    },
    /// `by` is `None` when a re-fold found the ban (the event says who).
    Banned {
        user: AccountId,
        by: Option<AccountId>,
    },
    Unbanned {
        user: AccountId,
        by: AccountId,
    },
    /// `by` is `None` on succession.
    Admin {
        user: AccountId,
        by: Option<AccountId>,
    },
    /// The last member left.
    Emptied,
}

/// Why an event changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the room exists already")]
    Exists,
    #[error("the room does not exist")]
    NoSuchRoom,
    #[error("{0} is banned from the room")]
    Banned(AccountId),
    #[error("{0} is already a member")]
    AlreadyMember(AccountId),
    #[error("{0} is not a member of the room")]
    NotMember(AccountId),
    #[error("{0} is not an admin of the room")]
    NotAdmin(AccountId),
    #[error("{0} is an admin")]
    TargetIsAdmin(AccountId),
    #[error("{0} is not banned")]
    NotBanned(AccountId),
}

/// The state of one room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomState {
    /// In join order.
    members: Vec<Member>,
    banned: std::collections::BTreeSet<AccountId>,
    exists: bool,
}

impl RoomState {
    /// Members in join order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Whether the room exists (was created and has members).
    pub fn exists(&self) -> bool {
        self.exists
    }

    pub fn is_member(&self, user: &AccountId) -> bool {
        self.members.iter().any(|m| m.user == *user)
    }

    pub fn is_admin(&self, user: &AccountId) -> bool {
        self.members.iter().any(|m| m.user == *user && m.admin)
    }

    /// The accounts banned, in id order.
    pub fn banned(&self) -> impl Iterator<Item = AccountId> + '_ {
        self.banned.iter().copied()
    }

    pub fn is_banned(&self, user: &AccountId) -> bool {
        self.banned.contains(user)
    }

    fn member_required(&self, user: &AccountId) -> Result<(), Refusal> {
        if self.is_member(user) { Ok(()) } else { Err(Refusal::NotMember(*user)) }
    }

    fn admin_required(&self, user: &AccountId) -> Result<(), Refusal> {
        if !self.exists {
            return Err(Refusal::NoSuchRoom);
        }
        if self.is_admin(user) { Ok(()) } else { Err(Refusal::NotAdmin(*user)) }
    }

    fn remove(&mut self, user: &AccountId) {
        self.members.retain(|m| m.user != *user);
    }

    /// After someone left: succession, or the room disappears.
    fn after_departure(&mut self, effects: &mut Vec<Effect>) {
        if self.members.is_empty() {
            self.exists = false;
            effects.push(Effect::Emptied);
        } else if !self.members.iter().any(|m| m.admin) {
            let oldest = &mut self.members[0];
            oldest.admin = true;
            effects.push(Effect::Admin { user: oldest.user, by: None });
        }
    }

    /// Applies `action` by `author`, or refuses it and changes nothing: the rules.
    pub fn apply_action(&mut self, author: &AccountId, action: &Action) -> Result<Vec<Effect>, Refusal> {
        let mut effects = Vec::new();
        match action {
            Action::Create => {
                if self.exists {
                    return Err(Refusal::Exists);
                }
                if self.is_banned(author) {
                    return Err(Refusal::Banned(*author));
                }
                self.exists = true;
                self.members = vec![Member { user: *author, admin: true }];
                effects.push(Effect::Created { user: *author });
            }
            Action::Join => {
                if !self.exists {
                    return Err(Refusal::NoSuchRoom);
                }
                if self.is_banned(author) {
                    return Err(Refusal::Banned(*author));
                }
                if self.is_member(author) {
                    return Err(Refusal::AlreadyMember(*author));
                }
                self.members.push(Member { user: *author, admin: false });
                effects.push(Effect::Joined { user: *author });
            }
            Action::Leave => {
                self.member_required(author)?;
                self.remove(author);
                effects.push(Effect::Left { user: *author });
                self.after_departure(&mut effects);
            }
            Action::Kick(target) => {
                self.admin_required(author)?;
                self.member_required(target)?;
                if self.is_admin(target) {
                    return Err(Refusal::TargetIsAdmin(*target));
                }
                self.remove(target);
                effects.push(Effect::Kicked { user: *target, by: *author });
            }
            Action::Ban(target) => {
                self.admin_required(author)?;
                if self.is_admin(target) {
                    return Err(Refusal::TargetIsAdmin(*target));
                }
                self.remove(target);
                self.banned.insert(*target);
                effects.push(Effect::Banned { user: *target, by: Some(*author) });
            }
            Action::Unban(target) => {
                self.admin_required(author)?;
                if !self.banned.remove(target) {
                    return Err(Refusal::NotBanned(*target));
                }
                effects.push(Effect::Unbanned { user: *target, by: *author });
            }
            Action::Op(target) => {
                self.admin_required(author)?;
                self.member_required(target)?;
                if self.is_admin(target) {
                    return Err(Refusal::TargetIsAdmin(*target));
                }
                if let Some(m) = self.members.iter_mut().find(|m| m.user == *target) {
                    m.admin = true;
                }
                effects.push(Effect::Admin { user: *target, by: Some(*author) });
            }
        }
        Ok(effects)
    }
}

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod graph_tests;
#[cfg(test)]
mod tests;
