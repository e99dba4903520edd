//! API tokens: printed once, stored only as a SHA-256 hash; listed, revoked and expiring.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::AnyPool;

use crate::crypto::{random_token, write_private, Secret};
use crate::store::tokens::{self, TokenRecord};
use crate::store::StoreError;

use super::AppError;

/// The name of the admin token a store's first start makes.
pub const INITIAL_ADMIN: &str = "initial-admin";

/// How long the first admin token lives: long enough to make the operators' own tokens.
pub const INITIAL_ADMIN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The longest life a token may be given: ten years.
pub const MAX_LIFETIME: Duration = Duration::from_secs(3650 * 24 * 3600);

/// What a token may do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
    async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// Reads and changes everything.
    Admin,
}

impl Role {
    /// `admin` or `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "admin" => Ok(Self::Admin),
            "viewer" => Ok(Self::Viewer),
            other => Err(StoreError::Malformed(format!("token role {other:?}"))),
        }
    }
}

/// The holder of a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// A token as listed: everything but its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Its unique name; events it causes carry it.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops being valid, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was last used, to the minute.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl TokenInfo {
    /// Whether it is accepted at `now`.
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

impl TryFrom<TokenRecord> for TokenInfo {
    type Error = StoreError;

    fn try_from(record: TokenRecord) -> Result<Self, StoreError> {
        Ok(Self {
            role: Role::parse(&record.role)?,
            name: record.name,
            created_at: record.created_at,
            expires_at: record.expires_at,
            revoked_at: record.revoked_at,
            last_used_at: record.last_used_at,
        })
    }
}

/// What the store keeps of `token`.
pub(super) fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks a token's name: 1 to 64 printable ASCII characters.
fn check_name(name: &str) -> Result<(), AppError> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_graphic()) {
        return Err(AppError::Invalid {
            code: "invalid_field",
            message: format!("name: expected 1 to 64 printable characters, got {name:?}"),
        });
    }
    Ok(())
}

/// Creates a token that expires after `lifetime` (never when `None`); the only time its
/// plaintext exists.
pub async fn create(
    pool: &AnyPool,
    role: Role,
    name: &str,
    lifetime: Option<Duration>,
) -> Result<(TokenInfo, Secret<String>), AppError> {
    check_name(name)?;
    let created_at = Utc::now();
    let expires_at = match lifetime {
        Some(lifetime) if lifetime.is_zero() || lifetime > MAX_LIFETIME => {
            return Err(AppError::Invalid {
                code: "invalid_field",
                message: format!(
                    "expires in: expected more than 0 s and at most {} s, got {} s",
                    MAX_LIFETIME.as_secs(),
                    lifetime.as_secs()
                ),
            })
        }
        Some(lifetime) => Some(
            created_at
                + chrono::Duration::from_std(lifetime)
                    .map_err(|e| AppError::Unexpected(e.to_string()))?,
        ),
        None => None,
    };
    let token = format!("osk_{}", random_token(40));
    let inserted = tokens::insert(
        pool,
        name,
        role.as_str(),
        &hash(&token),
        created_at,
        expires_at,
    )
    .await?;
    if !inserted {
        return Err(AppError::Conflict {
            code: "token_name_taken",
            message: format!("a token named {name:?} exists or existed already"),
        });
    }
    let info = TokenInfo {
        name: name.to_owned(),
        role,
        created_at,
        expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    Ok((info, Secret::new(token)))
}

/// Every token, revoked and expired ones too, by name.
pub async fn list(pool: &AnyPool) -> Result<Vec<TokenInfo>, AppError> {
    let records = tokens::list(pool).await?;
    Ok(records
        .into_iter()
        .map(TokenInfo::try_from)
        .collect::<Result<_, _>>()?)
}

/// Revokes the token `name` for good; revoking it again changes nothing.
pub async fn revoke(pool: &AnyPool, name: &str) -> Result<(), AppError> {
    check_name(name)?;
    if tokens::revoke(pool, name, Utc::now()).await? {
        Ok(())
    } else {
        Err(AppError::NotFound(format!("token {name:?}")))
    }
}

/// The unrevoked token whose [`hash`] is `hash`, expired or not.
pub(super) async fn find(pool: &AnyPool, hash: &str) -> Result<Option<TokenInfo>, StoreError> {
    tokens::find(pool, hash)
        .await?
        .map(TokenInfo::try_from)
        .transpose()
}

/// Records that the token whose [`hash`] is `hash` was used now.
pub(super) async fn used(pool: &AnyPool, hash: &str) -> Result<(), StoreError> {
    tokens::used(pool, hash, Utc::now()).await
}

/// On a store with no token yet, creates the first admin token, valid for
/// [`INITIAL_ADMIN_LIFETIME`], and writes it to `file` (mode 0600). Returns whether it did.
pub async fn create_initial_admin(pool: &AnyPool, file: &Path) -> Result<bool, AppError> {
    if tokens::count(pool).await? > 0 {
        return Ok(false);
    }
    let token = match create(
        pool,
        Role::Admin,
        INITIAL_ADMIN,
        Some(INITIAL_ADMIN_LIFETIME),
    )
    .await
    {
        Ok((_, token)) => token,
        // Another instance sharing the store made it first.
        Err(AppError::Conflict { .. }) => return Ok(false),
        Err(e) => return Err(e),
    };
    if file.exists() {
        std::fs::remove_file(file)
            .map_err(|e| AppError::Unexpected(format!("{}: {e}", file.display())))?;
    }
    write_private(file, format!("{}\n", token.expose()).as_bytes())
        .map_err(|e| AppError::Unexpected(format!("{}: {e}", file.display())))?;
    Ok(true)
}

/// Removes the first admin token's `file` once a valid admin token other than the first one
/// exists, or the first one is no longer valid; returns whether it did.
pub async fn retire_initial_admin_file(pool: &AnyPool, file: &Path) -> Result<bool, AppError> {
    if !file.exists() {
        return Ok(false);
    }
    let now = Utc::now();
    let valid_admins: Vec<TokenInfo> = list(pool)
        .await?
        .into_iter()
        .filter(|token| token.role == Role::Admin && token.is_valid_at(now))
        .collect();
    let initial_valid = valid_admins.iter().any(|token| token.name == INITIAL_ADMIN);
    if initial_valid && valid_admins.len() == 1 {
        return Ok(false);
    }
    std::fs::remove_file(file)
        .map_err(|e| AppError::Unexpected(format!("{}: {e}", file.display())))?;
    Ok(true)
}
