//! Which username each account goes by, as far as this node knows: the label of the newest
//! certificate seen for each account id (the highest serial: the authority draws serials in
//! order, so a newer certificate always has a higher one). Pure state: no I/O.
//!
//! A certificate only ever speaks for its own account id, and an older certificate never brings
//! back an old label: a name freed by a rename cannot pass for the person who left it. Nor does
//! a label known here stand for its account once a newer certificate gives the name to another
//! account: that account is shown by its short id then (someone who renamed while this node
//! did not hear of it, and whose old name someone else took since).

use std::collections::HashMap;

use crate::account::AccountId;
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
    /// The accounts whose label has each name (in [`name_key`] form).
    by_name: HashMap<String, Vec<AccountId>>,
}

/// A name as names compare: in any case (as [`crate::account::same_name`] has it).
fn name_key(username: &str) -> String {
    username.to_ascii_lowercase()
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
        let learnt = match self.labels.get(&account) {
            Some(label) if serial <= label.serial => return Learnt::Nothing,
            Some(label) if label.username == username => Learnt::Newer,
            Some(label) => Learnt::Renamed { old: label.username.clone(), new: username.to_string() },
            None => {
                if self.labels.len() >= MAX_ACCOUNTS {
                    self.forget_oldest();
                }
                Learnt::New
            }
        };
        if let Some(old) = self.labels.insert(account, Label { username: username.to_string(), serial }) {
            self.unindex(account, &old.username);
        }
        self.by_name.entry(name_key(username)).or_default().push(account);
        learnt
    }

    /// Takes `account` out of the accounts known by `username`.
    fn unindex(&mut self, account: AccountId, username: &str) {
        let key = name_key(username);
        if let Some(holders) = self.by_name.get_mut(&key) {
            holders.retain(|a| *a != account);
            if holders.is_empty() {
                self.by_name.remove(&key);
            }
        }
    }

    /// Forgets the tenth of the accounts with the lowest serials.
    fn forget_oldest(&mut self) {
        let mut serials: Vec<u64> = self.labels.values().map(|l| l.serial).collect();
        serials.sort_unstable();
        let cut = serials.get(serials.len() / 10).copied().unwrap_or(0);
        self.labels.retain(|_, label| label.serial > cut);
        self.by_name.clear();
        for (account, label) in &self.labels {
            self.by_name.entry(name_key(&label.username)).or_default().push(*account);
        }
    }

    /// The username of `account`, or a short form of its id when it is not known, or when a
    /// newer certificate seen here gives its name to another account.
    pub fn name_of(&self, account: &AccountId) -> String {
        match self.labels.get(account) {
            Some(label) if self.find(&label.username) == Some(*account) => label.username.clone(),
            _ => short_id(account),
        }
    }

    /// Whether `account` has a label here.
    pub fn knows(&self, account: &AccountId) -> bool {
        self.labels.contains_key(account)
    }

    /// The account that goes by `username` (any case): when several known accounts had that
    /// name, the one whose certificate is newest.
    pub fn find(&self, username: &str) -> Option<AccountId> {
        let holders = self.by_name.get(&name_key(username))?;
        holders.iter().max_by_key(|account| self.labels.get(*account).map(|l| l.serial)).copied()
    }
}

/// How an account without a name here is shown: `~` and the first 8 hex digits of its id.
pub fn short_id(account: &AccountId) -> String {
    format!("~{}", &account.to_hex()[..8])
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
    fn a_label_whose_name_another_account_took_since_is_not_shown() {
        let mut d = Directory::new();
        d.learn_label(ALICE, "alice", 5);
        assert_eq!(d.name_of(&ALICE), "alice");
        // alice renamed unheard of here, and someone else took the name later.
        d.learn_label(NEW_ALICE, "ALICE", 40);
        assert_eq!(d.name_of(&NEW_ALICE), "ALICE");
        assert_eq!(d.name_of(&ALICE), short_id(&ALICE), "the old holder passes for the new one");
        // An old certificate of hers heard again changes nothing; her newer one names her.
        d.learn_label(ALICE, "alice", 6);
        assert_eq!(d.name_of(&ALICE), short_id(&ALICE));
        assert_eq!(d.learn_label(ALICE, "alicia", 41), Learnt::Renamed { old: "alice".into(), new: "alicia".into() });
        assert_eq!(d.name_of(&ALICE), "alicia");
        assert_eq!(d.find("alice"), Some(NEW_ALICE));
        // The new holder moves on too: nobody known goes by alice now.
        d.learn_label(NEW_ALICE, "newt", 50);
        assert_eq!(d.find("alice"), None);
        assert_eq!(d.name_of(&NEW_ALICE), "newt");
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
        // The names follow the accounts forgotten: the newest still found, none left over.
        assert_eq!(d.by_name.values().map(Vec::len).sum::<usize>(), d.labels.len());
        let newest = d.find("u").unwrap();
        assert_eq!(d.labels[&newest].serial, MAX_ACCOUNTS as u64 + 9);
    }
}
