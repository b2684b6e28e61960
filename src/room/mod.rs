//! Room state as a deterministic fold of control events. Pure: no I/O, no clock, no network.
//!
//! A room's control events (create, join, leave, kick, ban, unban, op) each carry a Lamport clock
//! and are folded in the order (lamport, author, id), so any two nodes holding the same events
//! compute the same state, whatever order the events arrived in. Every event is checked against
//! the state at its point in the fold: an event that is not allowed there (a kick by a
//! non-admin, a join by a banned user) changes nothing.
//!
//! Rules: the creator is admin; admins kick, ban, unban and make admins; an admin cannot be
//! kicked or banned; when the last admin leaves, the oldest remaining member becomes admin; a
//! room whose last member leaves disappears (and may be created again).

mod limit;
mod log;
mod name;
mod order;

pub use limit::RateLimit;
pub use log::RoomLog;
pub use name::{RoomNameError, check_room_name, normalise_room_name};
pub use order::Sequencer;

use serde::{Deserialize, Serialize};

/// What a control event does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    Create,
    Join,
    Leave,
    Kick(String),
    Ban(String),
    Unban(String),
    Op(String),
    /// The author was called this before (a rename the authority attested): the membership,
    /// its place in the join order and admin rights carry over to the author's new name.
    Rename(String),
}

/// One control event, as folded. The author is a username from a verified certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoomEvent {
    /// Unique id (a hash of the signed event).
    pub id: String,
    pub lamport: u64,
    pub author: String,
    pub action: Action,
}

impl RoomEvent {
    /// The fold order.
    pub fn order_key(&self) -> (u64, &str, &str) {
        (self.lamport, &self.author, &self.id)
    }
}

/// A member of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user: String,
    pub admin: bool,
}

/// What applying an event changed, for users to see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Created {
        user: String,
    },
    Joined {
        user: String,
    },
    Left {
        user: String,
    },
    Kicked {
        user: String,
        by: String,
    },
    Banned {
        user: String,
        by: String,
    },
    Unbanned {
        user: String,
        by: String,
    },
    /// `by` is `None` on succession.
    Admin {
        user: String,
        by: Option<String>,
    },
    /// A member's username changed.
    Renamed {
        old: String,
        new: String,
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
    Banned(String),
    #[error("{0} is already a member")]
    AlreadyMember(String),
    #[error("{0} is not a member of the room")]
    NotMember(String),
    #[error("{0} is not an admin of the room")]
    NotAdmin(String),
    #[error("{0} is an admin")]
    TargetIsAdmin(String),
    #[error("{0} is not banned")]
    NotBanned(String),
}

/// The state of one room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomState {
    /// In join order.
    members: Vec<Member>,
    banned: std::collections::BTreeSet<String>,
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

    pub fn is_member(&self, user: &str) -> bool {
        self.members.iter().any(|m| m.user == user)
    }

    pub fn is_admin(&self, user: &str) -> bool {
        self.members.iter().any(|m| m.user == user && m.admin)
    }

    pub fn is_banned(&self, user: &str) -> bool {
        self.banned.contains(user)
    }

    /// Checks `event` against this state without changing it.
    pub fn check(&self, event: &RoomEvent) -> Result<(), Refusal> {
        self.clone().apply(event).map(|_| ())
    }

    fn member_required(&self, user: &str) -> Result<(), Refusal> {
        if self.is_member(user) { Ok(()) } else { Err(Refusal::NotMember(user.to_string())) }
    }

    fn admin_required(&self, user: &str) -> Result<(), Refusal> {
        if !self.exists {
            return Err(Refusal::NoSuchRoom);
        }
        if self.is_admin(user) { Ok(()) } else { Err(Refusal::NotAdmin(user.to_string())) }
    }

    fn remove(&mut self, user: &str) {
        self.members.retain(|m| m.user != user);
    }

    /// After someone left: succession, or the room disappears.
    fn after_departure(&mut self, effects: &mut Vec<Effect>) {
        if self.members.is_empty() {
            self.exists = false;
            effects.push(Effect::Emptied);
        } else if !self.members.iter().any(|m| m.admin) {
            let oldest = &mut self.members[0];
            oldest.admin = true;
            effects.push(Effect::Admin { user: oldest.user.clone(), by: None });
        }
    }

    /// Applies `event`, or refuses it and changes nothing.
    pub fn apply(&mut self, event: &RoomEvent) -> Result<Vec<Effect>, Refusal> {
        let author = event.author.as_str();
        let mut effects = Vec::new();
        match &event.action {
            Action::Create => {
                if self.exists {
                    return Err(Refusal::Exists);
                }
                if self.is_banned(author) {
                    return Err(Refusal::Banned(author.to_string()));
                }
                self.exists = true;
                self.members = vec![Member { user: author.to_string(), admin: true }];
                effects.push(Effect::Created { user: author.to_string() });
            }
            Action::Join => {
                if !self.exists {
                    return Err(Refusal::NoSuchRoom);
                }
                if self.is_banned(author) {
                    return Err(Refusal::Banned(author.to_string()));
                }
                if self.is_member(author) {
                    return Err(Refusal::AlreadyMember(author.to_string()));
                }
                self.members.push(Member { user: author.to_string(), admin: false });
                effects.push(Effect::Joined { user: author.to_string() });
            }
            Action::Leave => {
                self.member_required(author)?;
                self.remove(author);
                effects.push(Effect::Left { user: author.to_string() });
                self.after_departure(&mut effects);
            }
            Action::Kick(target) => {
                self.admin_required(author)?;
                self.member_required(target)?;
                if self.is_admin(target) {
                    return Err(Refusal::TargetIsAdmin(target.clone()));
                }
                self.remove(target);
                effects.push(Effect::Kicked { user: target.clone(), by: author.to_string() });
            }
            Action::Ban(target) => {
                self.admin_required(author)?;
                if self.is_admin(target) {
                    return Err(Refusal::TargetIsAdmin(target.clone()));
                }
                self.remove(target);
                self.banned.insert(target.clone());
                effects.push(Effect::Banned { user: target.clone(), by: author.to_string() });
            }
            Action::Unban(target) => {
                self.admin_required(author)?;
                if !self.banned.remove(target) {
                    return Err(Refusal::NotBanned(target.clone()));
                }
                effects.push(Effect::Unbanned { user: target.clone(), by: author.to_string() });
            }
            Action::Rename(old) => {
                self.member_required(old)?;
                if self.is_banned(author) {
                    return Err(Refusal::Banned(author.to_string()));
                }
                if self.is_member(author) {
                    return Err(Refusal::AlreadyMember(author.to_string()));
                }
                if let Some(m) = self.members.iter_mut().find(|m| &m.user == old) {
                    m.user = author.to_string();
                }
                effects.push(Effect::Renamed { old: old.clone(), new: author.to_string() });
            }
            Action::Op(target) => {
                self.admin_required(author)?;
                self.member_required(target)?;
                if self.is_admin(target) {
                    return Err(Refusal::TargetIsAdmin(target.clone()));
                }
                if let Some(m) = self.members.iter_mut().find(|m| &m.user == target) {
                    m.admin = true;
                }
                effects.push(Effect::Admin { user: target.clone(), by: Some(author.to_string()) });
            }
        }
        Ok(effects)
    }
}

#[cfg(test)]
mod tests;
