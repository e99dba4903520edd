use crate::crypto::Sealed;
use crate::domain::{AccountState, OrgId, OrgPath};

use super::{Access, RemovalReason, Tags};

/// Everything that can be asked of an account.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    /// A harvest listed the account in scope.
    RecordAccountSeen(RecordAccountSeen),
    /// A harvest saw the account turn SUSPENDED.
    SuspendAccount(SuspendAccount),
    /// A harvest read the account's tags.
    TagChanged(TagChanged),
    /// A complete harvest no longer lists the account.
    RecordAccountGone(RecordAccountGone),
    /// The account leaves the listing though AWS still lists it.
    RemoveAccount(RemoveAccount),
    /// A harvest tried the account's role.
    RecordAccessCheck(Access),
    /// The account's organization switched `auto_badge` (R10).
    SwitchAutoBadge(bool),
    /// Add or change a manual badge.
    AddBadge(AddBadge),
    /// Remove a manual badge.
    RemoveBadge(RemoveBadge),
    /// Add an account outside any organization, with its own role.
    AddStandaloneAccount(AddStandaloneAccount),
    /// Replace a standalone account's sealed role.
    ReplaceAccountCredentials(Sealed),
    /// Delete a standalone account.
    DeleteAccount,
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

/// A harvest saw the account suspended.
#[derive(Debug, Clone, PartialEq)]
pub struct SuspendAccount {
    /// The organization that lists it.
    pub organization_id: OrgId,
}

/// The tags a harvest read.
#[derive(Debug, Clone, PartialEq)]
pub struct TagChanged {
    /// Every tag the account has now.
    pub tags: Tags,
    /// Whether the organization's badges follow tags (R10), as the harvest found it.
    pub auto_badge: bool,
}

/// The organization no longer lists the account.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordAccountGone {
    /// The organization whose complete listing lacks it.
    pub organization_id: OrgId,
}

/// The account leaves the listing of its organization.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoveAccount {
    /// The organization it is listed by.
    pub organization_id: OrgId,
    /// Why.
    pub reason: RemovalReason,
}

/// Adds a manual badge; `auto_badge` is the organization's setting, looked up first.
#[derive(Debug, Clone, PartialEq)]
pub struct AddBadge {
    /// The key, never a reserved one.
    pub key: String,
    /// The value.
    pub value: String,
    /// Whether tag badges of the account's organization are on.
    pub auto_badge: bool,
}

/// Removes a manual badge; `auto_badge` is the organization's setting, looked up first.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoveBadge {
    /// The key.
    pub key: String,
    /// Whether tag badges of the account's organization are on.
    pub auto_badge: bool,
}

/// Adds a standalone account.
#[derive(Debug, Clone, PartialEq)]
pub struct AddStandaloneAccount {
    /// The name operators know it by.
    pub name: String,
    /// Its sealed role.
    pub credentials: Sealed,
}
