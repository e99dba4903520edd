use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::crypto::Sealed;
use crate::domain::{AccountState, OrgId, OrgPath};

use super::{Access, RemovalReason, Tags};

/// An account's facts as its organization lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listed {
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

/// What happened to an account. Names and versions never change once stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    /// An organization listed the account, for the first time or again.
    AccountDiscovered(Listed),
    /// The account's name changed.
    AccountRenamed {
        /// The new name.
        name: String,
    },
    /// The account's root email address changed.
    AccountEmailChanged {
        /// The new address.
        email: String,
    },
    /// The account moved in the OU tree.
    AccountMoved {
        /// Its new place.
        org_path: OrgPath,
    },
    /// The account's state changed.
    AccountStateChanged {
        /// The new state.
        state: AccountState,
    },
    /// The account's resource tags changed.
    AccountTagsChanged {
        /// Tags added or given a new value.
        set: Tags,
        /// Keys of tags removed.
        removed: Vec<String>,
        /// Whether badges followed these tags (R10): a tag badge then replaces any manual
        /// badge of the same key.
        auto_badge: bool,
    },
    /// The organization no longer lists the account.
    AccountLeftOrganization {
        /// The organization it left.
        organization_id: OrgId,
    },
    /// The account left the listing while AWS still lists it.
    AccountRemoved {
        /// The organization that lists it.
        organization_id: OrgId,
        /// Why.
        reason: RemovalReason,
    },
    /// The outcome of the account's access check changed.
    AccountAccessChanged {
        /// The new outcome.
        access: Access,
    },
    /// The account's organization switched `auto_badge` (R10): on, every tag became a badge,
    /// replacing a manual one of its key; off, the tag badges went.
    AutoBadgeSwitched {
        /// Whether badges follow tags from now on.
        auto_badge: bool,
    },
    /// A manual badge was added or changed.
    ManualBadgeAdded {
        /// Its key.
        key: String,
        /// Its value.
        value: String,
    },
    /// A manual badge was removed.
    ManualBadgeRemoved {
        /// Its key.
        key: String,
    },
    /// A standalone account was added.
    StandaloneAccountAdded {
        /// Its name.
        name: String,
        /// Its sealed role.
        credentials: Sealed,
    },
    /// A standalone account's role was replaced.
    AccountCredentialsReplaced {
        /// The new sealed role.
        credentials: Sealed,
    },
    /// A standalone account was deleted.
    AccountDeleted,
    /// A registered organization took over a standalone account; its own role is dropped.
    AccountAdopted {
        /// The organization.
        organization_id: OrgId,
    },
}

impl AccountEvent {
    /// Whether the account leaves the listing with this event (its tags and badges go too).
    pub fn ends_listing(&self) -> bool {
        matches!(
            self,
            Self::AccountLeftOrganization { .. }
                | Self::AccountRemoved { .. }
                | Self::AccountDeleted
        )
    }

    /// The organization the event names, for those that change membership.
    pub fn organization_named(&self) -> Option<&OrgId> {
        match self {
            Self::AccountDiscovered(Listed {
                organization_id, ..
            })
            | Self::AccountLeftOrganization { organization_id }
            | Self::AccountRemoved {
                organization_id, ..
            }
            | Self::AccountAdopted { organization_id } => Some(organization_id),
            _ => None,
        }
    }
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AccountDiscovered(_) => "AccountDiscovered",
            Self::AccountRenamed { .. } => "AccountRenamed",
            Self::AccountEmailChanged { .. } => "AccountEmailChanged",
            Self::AccountMoved { .. } => "AccountMoved",
            Self::AccountStateChanged { .. } => "AccountStateChanged",
            Self::AccountTagsChanged { .. } => "AccountTagsChanged",
            Self::AccountLeftOrganization { .. } => "AccountLeftOrganization",
            Self::AccountRemoved { .. } => "AccountRemoved",
            Self::AccountAccessChanged { .. } => "AccountAccessChanged",
            Self::AutoBadgeSwitched { .. } => "AutoBadgeSwitched",
            Self::ManualBadgeAdded { .. } => "ManualBadgeAdded",
            Self::ManualBadgeRemoved { .. } => "ManualBadgeRemoved",
            Self::StandaloneAccountAdded { .. } => "StandaloneAccountAdded",
            Self::AccountCredentialsReplaced { .. } => "AccountCredentialsReplaced",
            Self::AccountDeleted => "AccountDeleted",
            Self::AccountAdopted { .. } => "AccountAdopted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
