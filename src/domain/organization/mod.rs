//! An AWS Organization registered with orgsync: its credentials, filters and harvest record.

mod aggregate;
mod commands;
mod error;
mod events;

use serde::{Deserialize, Serialize};

pub use aggregate::Organization;
pub use commands::{HarvestOutcome, OrganizationCommand, RecordHarvest, RegisterOrganization};
pub use error::OrganizationError;
pub use events::OrganizationEvent;

use super::{ParentId, RoleArn, RoleName, SessionDuration, SessionName};

/// The role orgsync assumes in the management account to read the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRole {
    /// The role's ARN.
    pub role_arn: RoleArn,
    /// The STS session name.
    pub session_name: SessionName,
    /// How long each session lasts.
    pub duration_seconds: SessionDuration,
}

/// The role orgsync assumes in every member account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRole {
    /// The role's name, the same in every account.
    pub role_name: RoleName,
    /// The STS session name.
    pub session_name: SessionName,
    /// How long each session lasts.
    pub duration_seconds: SessionDuration,
}

/// Both roles; stored only sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The management account's role.
    pub org_role: OrgRole,
    /// The member accounts' role.
    pub member_role: MemberRole,
}

/// Which accounts of the organization are listed, and how they are badged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filters {
    /// Accounts whose name starts with any of these are left out (case-sensitive).
    pub exclude_name_prefixes: Vec<String>,
    /// When not empty, only accounts nested below one of these OUs or roots are listed.
    pub limit_scope_ou_ids: Vec<ParentId>,
    /// Suspended and closed accounts leave the listing.
    pub auto_remove_suspended: bool,
    /// Badges mirror the accounts' resource tags.
    pub auto_badge: bool,
}

impl Default for Filters {
    fn default() -> Self {
        Self {
            exclude_name_prefixes: Vec::new(),
            limit_scope_ou_ids: Vec::new(),
            auto_remove_suspended: false,
            auto_badge: true,
        }
    }
}
