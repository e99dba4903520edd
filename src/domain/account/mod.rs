//! One AWS account: its facts as last harvested, its place in an organization or its own
//! credentials when it stands alone, its badges and whether orgsync can reach it.

mod aggregate;
pub mod badges;
mod commands;
mod error;
mod events;

use serde::{Deserialize, Serialize};

pub use aggregate::Account;
pub use commands::{
    AccountCommand, AddBadge, AddStandaloneAccount, RecordAccountGone, RecordAccountSeen,
    RemoveAccount, RemoveBadge, SuspendAccount, TagChanged,
};
pub use error::AccountError;
pub use events::{AccountEvent, Listed};

/// An account's AWS resource tags, by key.
pub type Tags = std::collections::BTreeMap<String, String>;

/// Whether orgsync could assume the account's role.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum AccessStatus {
    /// The role was assumed.
    Ok,
    /// AssumeRole failed; the message says why.
    AssumeRoleFailed,
    /// Not tried, e.g. because the account is suspended.
    NotChecked,
}

impl AccessStatus {
    /// The status as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::AssumeRoleFailed => "assume_role_failed",
            Self::NotChecked => "not_checked",
        }
    }

    /// Parses the API's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Ok, Self::AssumeRoleFailed, Self::NotChecked]
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

/// The outcome of an access check (R4) and the permission warnings it found (R15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Access {
    /// Whether the role could be assumed.
    pub status: AccessStatus,
    /// AWS's error code and message when it could not.
    pub message: Option<String>,
    /// Harvest actions the role's policy denies, or why they could not be checked (R15).
    pub warnings: Vec<String>,
    /// Whether the role's permissions were simulated; if not, the next harvest tries again.
    pub permissions_checked: bool,
}

impl Access {
    /// Nothing tried yet.
    pub fn not_checked() -> Self {
        Self {
            status: AccessStatus::NotChecked,
            message: None,
            warnings: Vec::new(),
            permissions_checked: false,
        }
    }
}

/// Why an account left the listing while AWS still lists it in the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalReason {
    /// Suspended or closed, with `auto_remove_suspended` on (R7).
    Suspended,
    /// Out of the organization's scope filters (R6).
    Excluded,
    /// Its organization was removed.
    OrganizationRemoved,
}
