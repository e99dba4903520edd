//! The `api_tokens` table: each token's name, role, SHA-256 hash (never the token itself),
//! when it was made, last used, expires and was revoked.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::{parse_timestamp, timestamp, StoreError};

/// A token as kept, without its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Its unique name.
    pub name: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops being valid, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was last used, to the minute.
    pub last_used_at: Option<DateTime<Utc>>,
}

const SELECT_RECORD: &str =
    "SELECT name, role, created_at, expires_at, revoked_at, last_used_at FROM api_tokens";

fn record(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    let at = |column: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        row.try_get::<Option<String>, _>(column)?
            .as_deref()
            .map(parse_timestamp)
            .transpose()
    };
    Ok(TokenRecord {
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        created_at: parse_timestamp(&row.try_get::<String, _>("created_at")?)?,
        expires_at: at("expires_at")?,
        revoked_at: at("revoked_at")?,
        last_used_at: at("last_used_at")?,
    })
}

/// Keeps a new token's hash; false when a token of that name exists or existed.
pub async fn insert(
    pool: &AnyPool,
    name: &str,
    role: &str,
    hash: &str,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO api_tokens (name, role, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(role)
    .bind(hash)
    .bind(timestamp(created_at))
    .bind(expires_at.map(timestamp))
    .execute(pool)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

/// The unrevoked token whose hash is `hash`, if there is one (expired or not).
pub async fn find(pool: &AnyPool, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
    let row = sqlx::query(&format!(
        "{SELECT_RECORD} WHERE token_hash = $1 AND revoked_at IS NULL"
    ))
    .bind(hash)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(record).transpose()
}

/// Every token, revoked and expired ones too, by name.
pub async fn list(pool: &AnyPool) -> Result<Vec<TokenRecord>, StoreError> {
    let rows = sqlx::query(&format!("{SELECT_RECORD} ORDER BY name"))
        .fetch_all(pool)
        .await?;
    rows.iter().map(record).collect()
}

/// Revokes the token `name` at `at`, unless it was revoked before; false when no token of that
/// name was ever made.
pub async fn revoke(pool: &AnyPool, name: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
    let found =
        sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE name = $1")
            .bind(name)
            .bind(timestamp(at))
            .execute(pool)
            .await?
            .rows_affected();
    Ok(found > 0)
}

/// Records that the token whose hash is `hash` was used at `at`.
pub async fn used(pool: &AnyPool, hash: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1")
        .bind(hash)
        .bind(timestamp(at))
        .execute(pool)
        .await?;
    Ok(())
}

/// How many tokens were ever made.
pub async fn count(pool: &AnyPool) -> Result<i64, StoreError> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM api_tokens")
        .fetch_one(pool)
        .await?
        .try_get("n")?)
}
