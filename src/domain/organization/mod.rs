//! An AWS Organization registered with orgsync: its credentials, filters and harvest record.

mod aggregate;
mod commands;
mod error;
mod events;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use aggregate::Organization;
pub use commands::{
    ChangeFilters, HarvestOutcome, OrganizationCommand, RecordHarvest, RegisterOrganization,
    RenameOrganization, ReplaceCredentials, SetEventsQueue,
};
pub use error::OrganizationError;
pub use events::OrganizationEvent;

use crate::crypto::debug_redacted;

use super::{AccountState, OrgPath, ParentId, RoleArn, RoleName, SessionDuration, SessionName};

/// Which kind of account the org role is in (R17).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum RoleAccount {
    /// The organization's management account.
    #[default]
    Management,
    /// A delegated administrator account, which the organization's delegation policy lets
    /// list the organization.
    DelegatedAdministrator,
}

impl RoleAccount {
    /// As the read tables keep it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Management => "management",
            Self::DelegatedAdministrator => "delegated_administrator",
        }
    }

    /// Parses what [`Self::as_str`] wrote.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Management, Self::DelegatedAdministrator]
            .into_iter()
            .find(|kind| kind.as_str() == s)
    }
}

/// The role orgsync assumes in the management account to read the organization.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRole {
    /// The role's ARN.
    pub role_arn: RoleArn,
    /// The STS session name.
    pub session_name: SessionName,
    /// How long each session lasts.
    pub duration_seconds: SessionDuration,
}

/// The role orgsync assumes in every member account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRole {
    /// The role's name, the same in every account.
    pub role_name: RoleName,
    /// The STS session name.
    pub session_name: SessionName,
    /// How long each session lasts.
    pub duration_seconds: SessionDuration,
}

impl fmt::Debug for OrgRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_redacted(f, "OrgRole")
    }
}

impl fmt::Debug for MemberRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_redacted(f, "MemberRole")
    }
}

/// Both roles; stored only sealed, printed redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The management account's role.
    pub org_role: OrgRole,
    /// The member accounts' role.
    pub member_role: MemberRole,
}

/// Which accounts of the organization are listed, and how they are badged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Filters {
    /// Accounts whose name starts with any of these are left out (case-sensitive).
    pub exclude_name_prefixes: Vec<String>,
    /// When not empty, only accounts nested below one of these OUs or roots are listed.
    #[schema(value_type = Vec<String>)]
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

impl Filters {
    /// Whether an account of this name at this place is in scope (R6): below one of
    /// `limit_scope_ou_ids` at any depth (when any are set), and not named with an excluded
    /// prefix (case-sensitive).
    pub fn in_scope(&self, name: &str, org_path: &OrgPath) -> bool {
        let below = self.limit_scope_ou_ids.is_empty()
            || org_path
                .iter()
                .any(|unit| self.limit_scope_ou_ids.contains(&unit.id));
        below
            && !self
                .exclude_name_prefixes
                .iter()
                .any(|prefix| name.starts_with(prefix.as_str()))
    }

    /// Whether accounts in `state` leave the listing (R7).
    pub fn removes(&self, state: AccountState) -> bool {
        self.auto_remove_suspended
            && matches!(
                state,
                AccountState::Suspended | AccountState::PendingClosure | AccountState::Closed
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrgUnit;

    fn path(ids: &[&str]) -> OrgPath {
        ids.iter()
            .map(|id| OrgUnit {
                id: (*id).try_into().unwrap(),
                name: (*id).into(),
            })
            .collect()
    }

    #[test]
    fn r6_scope_holds_accounts_nested_at_any_depth_below_the_listed_ous() {
        let filters = Filters {
            limit_scope_ou_ids: vec![
                "ou-ab12-aaaaaaaa".try_into().unwrap(),
                "ou-ab12-cccccccc".try_into().unwrap(),
            ],
            ..Filters::default()
        };
        let deep = path(&[
            "r-ab12",
            "ou-ab12-aaaaaaaa",
            "ou-ab12-bbbbbbbb",
            "ou-ab12-dddddddd",
        ]);
        assert!(filters.in_scope("x", &deep));
        assert!(filters.in_scope("x", &path(&["r-ab12", "ou-ab12-cccccccc"])));
        assert!(!filters.in_scope("x", &path(&["r-ab12", "ou-ab12-bbbbbbbb"])));
        assert!(!filters.in_scope("x", &path(&["r-ab12"])));
        assert!(Filters::default().in_scope("x", &path(&["r-ab12"])));
    }

    #[test]
    fn r6_name_prefixes_exclude_case_sensitively() {
        let filters = Filters {
            exclude_name_prefixes: vec!["sandbox-".into(), "tmp".into()],
            ..Filters::default()
        };
        let root = path(&["r-ab12"]);
        assert!(!filters.in_scope("sandbox-1", &root));
        assert!(!filters.in_scope("tmp", &root));
        assert!(filters.in_scope("Sandbox-1", &root));
        assert!(filters.in_scope("prod-sandbox-", &root));
    }

    #[test]
    fn r7_auto_remove_takes_suspended_pending_closure_and_closed() {
        let on = Filters {
            auto_remove_suspended: true,
            ..Filters::default()
        };
        for state in [
            AccountState::Suspended,
            AccountState::PendingClosure,
            AccountState::Closed,
        ] {
            assert!(on.removes(state));
            assert!(!Filters::default().removes(state));
        }
        assert!(!on.removes(AccountState::Active));
        assert!(!on.removes(AccountState::PendingActivation));
    }
}
