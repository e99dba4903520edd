use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::crypto::Sealed;
use crate::domain::{AccountId, OrgId, QueueUrl};

use super::{Filters, RoleAccount};

/// What happened to an organization. Names and versions never change once stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrganizationEvent {
    /// It was registered.
    OrganizationRegistered {
        /// The AWS organization id.
        org_id: OrgId,
        /// The name operators know it by.
        nickname: String,
        /// The management account.
        management_account_id: AccountId,
        /// The sealed credentials.
        credentials: Sealed,
        /// The scope and badge filters.
        filters: Filters,
        /// Where the org role is (R17); the management account for events from before.
        #[serde(default)]
        org_role_account: RoleAccount,
    },
    /// Both roles were replaced.
    CredentialsReplaced {
        /// The new sealed credentials.
        credentials: Sealed,
        /// Where the new org role is.
        #[serde(default)]
        org_role_account: RoleAccount,
    },
    /// The filters changed.
    FiltersChanged {
        /// The new filters.
        filters: Filters,
    },
    /// The nickname changed.
    OrganizationRenamed {
        /// The new nickname.
        nickname: String,
    },
    /// The queue its Organizations events arrive on was set, replaced or cleared (R16).
    EventsQueueChanged {
        /// The queue; none when cleared.
        url: Option<QueueUrl>,
    },
    /// The organization was removed; its accounts left the listing before.
    OrganizationRemoved,
    /// A harvest completed after a failure, or changed something.
    HarvestCompleted {
        /// Accounts listed by AWS and in scope.
        accounts_seen: usize,
        /// Events the harvest appended to accounts.
        changes: usize,
    },
    /// A harvest failed, for a reason different from the last failure's.
    HarvestFailed {
        /// What stopped it.
        error: String,
    },
}

impl DomainEvent for OrganizationEvent {
    fn event_type(&self) -> String {
        match self {
            Self::OrganizationRegistered { .. } => "OrganizationRegistered",
            Self::CredentialsReplaced { .. } => "CredentialsReplaced",
            Self::FiltersChanged { .. } => "FiltersChanged",
            Self::OrganizationRenamed { .. } => "OrganizationRenamed",
            Self::EventsQueueChanged { .. } => "EventsQueueChanged",
            Self::OrganizationRemoved => "OrganizationRemoved",
            Self::HarvestCompleted { .. } => "HarvestCompleted",
            Self::HarvestFailed { .. } => "HarvestFailed",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
