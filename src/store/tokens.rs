//! The `api_tokens` table: each token's name, role and SHA-256 hash, never the token itself.

use chrono::{DateTime, Utc};
use sqlx::{AnyPool, Row};

use super::{timestamp, StoreError};

/// Keeps a new token's hash; false when a token of that name exists already.
pub async fn insert(
    pool: &AnyPool,
    name: &str,
    role: &str,
    hash: &str,
    created_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(role)
    .bind(hash)
    .bind(timestamp(created_at))
    .execute(pool)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

/// The name and role of the token whose hash is `hash`, if there is one.
pub async fn find(pool: &AnyPool, hash: &str) -> Result<Option<(String, String)>, StoreError> {
    let row = sqlx::query("SELECT name, role FROM api_tokens WHERE token_hash = $1")
        .bind(hash)
        .fetch_optional(pool)
        .await?;
    row.map(|row| Ok((row.try_get("name")?, row.try_get("role")?)))
        .transpose()
}

/// How many tokens there are.
pub async fn count(pool: &AnyPool) -> Result<i64, StoreError> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM api_tokens")
        .fetch_one(pool)
        .await?
        .try_get("n")?)
}
