use crate::crypto::Sealed;
use crate::domain::{AccountId, OrgId, QueueUrl};

use super::{Filters, RoleAccount};

/// Everything that can be asked of an organization.
#[derive(Debug, Clone, PartialEq)]
pub enum OrganizationCommand {
    /// Register it; refused when it is registered already.
    Register(RegisterOrganization),
    /// Replace both roles (R13).
    ReplaceCredentials(ReplaceCredentials),
    /// Replace the scope and badge filters.
    ChangeFilters(ChangeFilters),
    /// Give it a new nickname.
    Rename(RenameOrganization),
    /// Follow its changes on an SQS queue, or stop (R16).
    SetEventsQueue(SetEventsQueue),
    /// Record how a harvest ended.
    RecordHarvest(RecordHarvest),
    /// Remove it; its accounts leave the listing first.
    Remove,
}

/// Replaces the sealed credentials, after the new org role was checked like a registration's.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplaceCredentials {
    /// The sealed [`super::Credentials`].
    pub credentials: Sealed,
    /// Where the new org role is.
    pub org_role_account: RoleAccount,
}

/// Replaces the filters.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeFilters {
    /// The new filters.
    pub filters: Filters,
}

/// Renames the organization.
#[derive(Debug, Clone, PartialEq)]
pub struct RenameOrganization {
    /// The new nickname.
    pub nickname: String,
}

/// Sets or clears the queue its Organizations events arrive on, after the org role was found
/// to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct SetEventsQueue {
    /// The queue; none to stop following it.
    pub url: Option<QueueUrl>,
}

/// Registers an organization whose role was assumed and whose id was read from AWS.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterOrganization {
    /// The id AWS reported for it.
    pub org_id: OrgId,
    /// The name operators know it by.
    pub nickname: String,
    /// The management account, as AWS reported it.
    pub management_account_id: AccountId,
    /// The sealed [`super::Credentials`].
    pub credentials: Sealed,
    /// Where the org role is.
    pub org_role_account: RoleAccount,
    /// The scope and badge filters.
    pub filters: Filters,
}

/// Records the end of a harvest.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordHarvest {
    /// How it ended.
    pub outcome: HarvestOutcome,
}

/// How a harvest ended.
#[derive(Debug, Clone, PartialEq)]
pub enum HarvestOutcome {
    /// The whole organization was read and applied.
    Completed {
        /// Accounts listed by AWS and in scope.
        accounts_seen: usize,
        /// Events the harvest appended to accounts.
        changes: usize,
    },
    /// The harvest stopped; no membership changed.
    Failed {
        /// What stopped it.
        error: String,
    },
}
