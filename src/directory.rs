//! Which username each account goes by, as far as this node knows: the label of the newest
//! certificate seen for each account id (the highest serial: the authority draws serials in
//! order, so a newer certificate always has a higher one). Pure state: no I/O.
//!
//! A certificate only ever speaks for its own account id, and an older certificate never brings
//! back an old label: a name freed by a rename cannot pass for the person who left it.

use std::collections::HashMap;

use crate::account::{AccountId, same_name};
use crate::cert::CertBody;

/// At most this many accounts are remembered; past it, the least recently learnt are forgotten.
pub const MAX_ACCOUNTS: usize = 100_000;

/// The label of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub username: String,
    /// The serial of the certificate it came from.
    pub serial: u64,
}

/// What learning a certificate changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Learnt {
    /// Nothing: known already, or older than what is known.
    Nothing,
    /// A new account.
    New,
    /// A newer certificate of a known account with another username.
    Renamed { old: String, new: String },
    /// A newer certificate, same username.
    Newer,
}

/// Account ids and their current labels.
#[derive(Debug, Default)]
pub struct Directory {
    labels: HashMap<AccountId, Label>,
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in what a verified certificate says of its account.
    pub fn learn(&mut self, body: &CertBody) -> Learnt {
        self.learn_label(body.account, &body.username, body.serial)
    }

    /// Takes in that `account` went by `username` in its certificate of serial `serial`.
    pub fn learn_label(&mut self, account: AccountId, username: &str, serial: u64) -> Learnt {
        match self.labels.get_mut(&account) {
            Some(label) if serial <= label.serial => Learnt::Nothing,
            Some(label) => {
                let learnt = if label.username == username {
                    Learnt::Newer
                } else {
                    Learnt::Renamed { old: label.username.clone(), new: username.to_string() }
                };
                *label = Label { username: username.to_string(), serial };
                learnt
            }
            None => {
                if self.labels.len() >= MAX_ACCOUNTS {
                    self.forget_oldest();
                }
                self.labels.insert(account, Label { username: username.to_string(), serial });
                Learnt::New
            }
        }
    }

    /// Forgets the tenth of the accounts with the lowest serials.
    fn forget_oldest(&mut self) {
        let mut serials: Vec<u64> = self.labels.values().map(|l| l.serial).collect();
        serials.sort_unstable();
        let cut = serials.get(serials.len() / 10).copied().unwrap_or(0);
        self.labels.retain(|_, label| label.serial > cut);
    }

    /// The username of `account`, or a short form of its id when it is not known.
    pub fn name_of(&self, account: &AccountId) -> String {
        match self.labels.get(account) {
            Some(label) => label.username.clone(),
            None => format!("~{}", &account.to_hex()[..8]),
        }
    }

    /// Whether `account` has a label here.
    pub fn knows(&self, account: &AccountId) -> bool {
        self.labels.contains_key(account)
    }

    /// The account that goes by `username` (any case): when several known accounts had that
    /// name, the one whose certificate is newest.
    pub fn find(&self, username: &str) -> Option<AccountId> {
        self.labels
            .iter()
            .filter(|(_, label)| same_name(&label.username, username))
            .max_by_key(|(_, label)| label.serial)
            .map(|(account, _)| *account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: AccountId = AccountId::from_bytes([1; 16]);
    const NEW_ALICE: AccountId = AccountId::from_bytes([2; 16]);

    #[test]
    fn the_newest_certificate_names_the_account() {
        let mut d = Directory::new();
        assert_eq!(d.learn_label(ALICE, "alice", 5), Learnt::New);
        assert_eq!(d.learn_label(ALICE, "alice", 5), Learnt::Nothing);
        assert_eq!(d.learn_label(ALICE, "alice", 6), Learnt::Newer);
        assert_eq!(d.learn_label(ALICE, "alicia", 9), Learnt::Renamed { old: "alice".into(), new: "alicia".into() });
        // An old certificate checked later does not bring the old name back.
        assert_eq!(d.learn_label(ALICE, "alice", 7), Learnt::Nothing);
        assert_eq!(d.name_of(&ALICE), "alicia");
        assert_eq!(d.find("ALICIA"), Some(ALICE));
        assert_eq!(d.find("alice"), None);
    }

    #[test]
    fn a_freed_name_finds_its_newest_holder() {
        let mut d = Directory::new();
        d.learn_label(ALICE, "alice", 5);
        d.learn_label(NEW_ALICE, "Alice", 40);
        assert_eq!(d.find("alice"), Some(NEW_ALICE));
        d.learn_label(ALICE, "alicia", 41);
        assert_eq!(d.find("alice"), Some(NEW_ALICE));
        assert_eq!(d.find("alicia"), Some(ALICE));
        assert!(d.name_of(&AccountId::from_bytes([9; 16])).starts_with('~'));
    }

    #[test]
    fn the_directory_is_bounded() {
        let mut d = Directory::new();
        for i in 0..(MAX_ACCOUNTS as u64 + 10) {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&i.to_be_bytes());
            d.learn_label(AccountId::from_bytes(id), "u", i);
        }
        assert!(d.labels.len() <= MAX_ACCOUNTS);
        assert!(d.labels.len() > MAX_ACCOUNTS / 2);
    }
}
