use cqrs_es::AggregateError;

use crate::aws::{AwsError, Redaction};
use crate::crypto::CryptoError;
use crate::domain::account::AccountError;
use crate::domain::organization::OrganizationError;
use crate::domain::InvalidValue;
use crate::harvest::HarvestError;
use crate::store::StoreError;

/// Every way a use case can fail, each with a stable code that REST and GraphQL show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// The request is malformed (400).
    #[error("{message}")]
    Invalid {
        /// A stable machine-readable code.
        code: &'static str,
        /// What is wrong, for people.
        message: String,
    },
    /// No valid token (401).
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The token's role may not do this (403).
    #[error("this needs the admin role")]
    Forbidden,
    /// The thing asked for does not exist (404).
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state (409).
    #[error("{message}")]
    Conflict {
        /// A stable machine-readable code.
        code: &'static str,
        /// What it conflicts with.
        message: String,
    },
    /// Well-formed, but AWS or the rules refuse it (422).
    #[error("{message}")]
    Rejected {
        /// A stable machine-readable code.
        code: &'static str,
        /// Why, naming the failed step and AWS's error code.
        message: String,
        /// AWS's error code, when AWS refused.
        aws_error_code: Option<String>,
        /// The actions a policy simulation found denied.
        denied_actions: Vec<String>,
    },
    /// A failure of orgsync or its store, never of the input (500).
    #[error("internal error: {0}")]
    Unexpected(String),
}

impl AppError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { code, .. }
            | Self::Conflict { code, .. }
            | Self::Rejected { code, .. } => code,
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Unexpected(_) => "internal",
        }
    }
}

impl AppError {
    /// A step of checking a role failed at AWS; what the message quotes of the role, which
    /// R14 keeps sealed, goes through `redaction`.
    pub fn aws_step(code: &'static str, error: &AwsError, redaction: &Redaction) -> Self {
        Self::Rejected {
            code,
            message: error.redacted(redaction),
            aws_error_code: error.code.clone(),
            denied_actions: Vec::new(),
        }
    }

    /// The input is well formed but the rules refuse it.
    pub fn rejected(code: &'static str, message: String) -> Self {
        Self::Rejected {
            code,
            message,
            aws_error_code: None,
            denied_actions: Vec::new(),
        }
    }
}

impl From<InvalidValue> for AppError {
    fn from(e: InvalidValue) -> Self {
        Self::Invalid {
            code: "invalid_field",
            message: e.to_string(),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        Self::Unexpected(e.to_string())
    }
}

impl From<CryptoError> for AppError {
    fn from(e: CryptoError) -> Self {
        tracing::error!(error = %e, "sealing failure");
        Self::Unexpected(e.to_string())
    }
}

impl From<OrganizationError> for AppError {
    fn from(e: OrganizationError) -> Self {
        match e {
            OrganizationError::AlreadyRegistered => Self::Conflict {
                code: "already_registered",
                message: e.to_string(),
            },
            OrganizationError::NotRegistered => Self::NotFound("organization".into()),
        }
    }
}

impl From<AccountError> for AppError {
    fn from(e: AccountError) -> Self {
        match &e {
            AccountError::NotListed => Self::NotFound("account".into()),
            AccountError::NoSuchBadge(key) => Self::NotFound(format!("badge {key:?}")),
            AccountError::ManagedByOrganization(_) => Self::Conflict {
                code: "managed_by_organization",
                message: e.to_string(),
            },
            AccountError::AlreadyExists => Self::Conflict {
                code: "account_exists",
                message: e.to_string(),
            },
            AccountError::BadgeMirrorsTag(_) => Self::Conflict {
                code: "badge_mirrors_tag",
                message: e.to_string(),
            },
        }
    }
}

impl<E: std::error::Error + Into<AppError>> From<AggregateError<E>> for AppError {
    fn from(e: AggregateError<E>) -> Self {
        match e {
            AggregateError::UserError(e) => e.into(),
            AggregateError::AggregateConflict => Self::Conflict {
                code: "concurrent_update",
                message: "the record changed concurrently too often; try again".into(),
            },
            other => {
                tracing::error!(error = %other, "event store failure");
                Self::Unexpected(other.to_string())
            }
        }
    }
}

impl From<HarvestError> for AppError {
    fn from(e: HarvestError) -> Self {
        match e {
            HarvestError::NotRegistered(id) => Self::NotFound(format!("organization {id}")),
            HarvestError::Store(e) => e.into(),
            HarvestError::Crypto(e) => e.into(),
            HarvestError::Account(e) => e.into(),
            HarvestError::Organization(e) => e.into(),
            HarvestError::Aws(message) => Self::rejected("aws_refused", message),
        }
    }
}
