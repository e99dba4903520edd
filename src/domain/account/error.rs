use crate::domain::OrgId;

/// Why an account refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The command needs an account that is in the listing.
    #[error("account is not in the listing")]
    NotListed,
    /// Managed accounts use their organization's credentials (R12).
    #[error("account is managed by organization {0}; change it through the organization")]
    ManagedByOrganization(OrgId),
    /// A standalone account with this id exists already.
    #[error("account is in the listing already")]
    AlreadyExists,
    /// No manual badge has this key.
    #[error("account has no manual badge {0:?}")]
    NoSuchBadge(String),
    /// With auto-badging on, the badge mirrors the account's AWS tag (R10).
    #[error("badge {0:?} mirrors the account's AWS tag; change the tag in AWS")]
    BadgeMirrorsTag(String),
}
