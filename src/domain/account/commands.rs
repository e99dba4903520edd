use crate::domain::{AccountState, OrgId, OrgPath};

use super::Tags;

/// Everything that can be asked of an account.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    /// A harvest listed the account.
    RecordAccountSeen(RecordAccountSeen),
    /// The account is suspended.
    SuspendAccount,
    /// A harvest read the account's tags.
    TagChanged(TagChanged),
    /// A complete harvest no longer lists the account.
    RecordAccountGone(RecordAccountGone),
}

/// What a harvest saw of an account.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordAccountSeen {
    /// The organization that lists it.
    pub organization_id: OrgId,
    /// Its name.
    pub name: String,
    /// Its root email address.
    pub email: String,
    /// Its state.
    pub state: AccountState,
    /// Where it sits in the OU tree.
    pub org_path: OrgPath,
}

/// The tags a harvest read.
#[derive(Debug, Clone, PartialEq)]
pub struct TagChanged {
    /// Every tag the account has now.
    pub tags: Tags,
}

/// The organization no longer lists the account.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordAccountGone {
    /// The organization whose complete listing lacks it.
    pub organization_id: OrgId,
}
