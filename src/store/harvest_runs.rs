//! The `harvest_runs` table: when each organization's last harvest ran and how it ended.
//! Operational status that the scheduler and the API read, not built from events; the audit
//! trail is in the event log. The organization and account views join it for `last_harvest`
//! and `last_seen`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{AnyPool, Row};

use super::{parse_timestamp, timestamp, Store, StoreError};
use crate::domain::OrgId;

/// How the last harvest went.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LastHarvest {
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended; absent while it runs.
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `completed` or `failed`.
    pub outcome: String,
    /// Accounts it listed in scope, when it completed.
    pub accounts_seen: Option<i64>,
    /// What stopped it, when it failed.
    pub error: Option<String>,
}

/// Records that a harvest started.
pub async fn started(pool: &AnyPool, org: &OrgId, at: DateTime<Utc>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO harvest_runs (organization_id, started_at, outcome) VALUES ($1, $2, 'running') \
         ON CONFLICT (organization_id) DO UPDATE SET started_at = excluded.started_at, \
         finished_at = NULL, outcome = 'running', accounts_seen = NULL, error = NULL",
    )
    .bind(org.as_str())
    .bind(timestamp(at))
    .execute(pool)
    .await?;
    Ok(())
}

/// Records that a harvest completed, having listed `accounts_seen` accounts in scope: the
/// `last_seen` of each of its accounts changes.
pub async fn completed(
    store: &Store,
    org: &OrgId,
    at: DateTime<Utc>,
    accounts_seen: usize,
) -> Result<(), StoreError> {
    let mut tx = store.pool().begin().await?;
    sqlx::query(
        "UPDATE harvest_runs SET finished_at = $1, outcome = 'completed', accounts_seen = $2, \
         last_completed_at = $1 WHERE organization_id = $3",
    )
    .bind(timestamp(at))
    .bind(i64::try_from(accounts_seen).unwrap_or(i64::MAX))
    .bind(org.as_str())
    .execute(&mut *tx)
    .await?;
    store.commit_change(tx).await
}

/// Records that a harvest failed.
pub async fn failed(
    pool: &AnyPool,
    org: &OrgId,
    at: DateTime<Utc>,
    error: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE harvest_runs SET finished_at = $1, outcome = 'failed', error = $2 \
         WHERE organization_id = $3",
    )
    .bind(timestamp(at))
    .bind(error)
    .bind(org.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// When the organization's last harvest started, if one did, and whether it is marked running.
pub async fn last_start(pool: &AnyPool, org: &OrgId) -> Result<LastStart, StoreError> {
    let row =
        sqlx::query("SELECT started_at, outcome FROM harvest_runs WHERE organization_id = $1")
            .bind(org.as_str())
            .fetch_optional(pool)
            .await?;
    let Some(row) = row else {
        return Ok((None, false));
    };
    let outcome: String = row.try_get("outcome")?;
    Ok((
        Some(parse_timestamp(&row.try_get::<String, _>("started_at")?)?),
        outcome == "running",
    ))
}

/// The last start of a harvest, if any, and whether that harvest is marked running.
pub type LastStart = (Option<DateTime<Utc>>, bool);

/// The last start of each registered organization's harvest, `None` where none ran, and
/// whether that harvest is still marked running.
pub async fn last_starts(
    pool: &AnyPool,
) -> Result<Vec<(OrgId, Option<DateTime<Utc>>, bool)>, StoreError> {
    let rows = sqlx::query(
        "SELECT o.id, h.started_at, h.outcome FROM organizations o \
         LEFT JOIN harvest_runs h ON h.organization_id = o.id ORDER BY o.id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get("id")?;
            let started: Option<String> = row.try_get("started_at")?;
            let outcome: Option<String> = row.try_get("outcome")?;
            Ok((
                OrgId::try_from(id).map_err(|e| StoreError::Malformed(e.to_string()))?,
                started.as_deref().map(parse_timestamp).transpose()?,
                outcome.as_deref() == Some("running"),
            ))
        })
        .collect()
}

/// Forgets the runs of a removed organization.
pub async fn forget(pool: &AnyPool, org: &OrgId) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM harvest_runs WHERE organization_id = $1")
        .bind(org.as_str())
        .execute(pool)
        .await?;
    Ok(())
}
