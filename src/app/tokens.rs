//! API tokens: printed once, stored only as a SHA-256 hash.

use std::path::Path;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::AnyPool;

use crate::crypto::{random_token, write_private, Secret};
use crate::store::{tokens, StoreError};

use super::AppError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// Reads and changes everything.
    Admin,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Admin => "admin",
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

/// What the store keeps of `token`.
pub(super) fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token; the only time its plaintext exists.
pub async fn create(pool: &AnyPool, role: Role, name: &str) -> Result<Secret<String>, AppError> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_graphic()) {
        return Err(AppError::Invalid {
            code: "invalid_field",
            message: format!("name: expected 1 to 64 printable characters, got {name:?}"),
        });
    }
    let token = format!("osk_{}", random_token(40));
    let inserted = tokens::insert(pool, name, role.as_str(), &hash(&token), Utc::now()).await?;
    if !inserted {
        return Err(AppError::Conflict {
            code: "token_name_taken",
            message: format!("a token named {name:?} exists already"),
        });
    }
    Ok(Secret::new(token))
}

/// The holder of the token whose [`hash`] is `hash`, if it is valid.
pub(super) async fn authenticate(
    pool: &AnyPool,
    hash: &str,
) -> Result<Option<Principal>, StoreError> {
    let Some((name, role)) = tokens::find(pool, hash).await? else {
        return Ok(None);
    };
    let role = match role.as_str() {
        "admin" => Role::Admin,
        "viewer" => Role::Viewer,
        other => return Err(StoreError::Malformed(format!("token role {other:?}"))),
    };
    Ok(Some(Principal { name, role }))
}

/// On a store with no token yet, creates an admin token and writes it to `file` (mode 0600).
/// Returns whether it did.
pub async fn create_initial_admin(pool: &AnyPool, file: &Path) -> Result<bool, AppError> {
    let count = tokens::count(pool).await?;
    if count > 0 {
        return Ok(false);
    }
    let token = match create(pool, Role::Admin, "initial-admin").await {
        Ok(token) => token,
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
