//! The `queue_polls` table: how the poller of each organization's events queue last fared.
//! Operational status that only the poller writes and the organization view joins, not built
//! from events.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AnyPool;

use super::{timestamp, StoreError};
use crate::domain::{OrgId, QueueUrl};

/// An organization's events queue as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EventsQueue {
    /// The queue.
    #[schema(value_type = String)]
    pub url: QueueUrl,
    /// When it was last read, whatever came of it; absent before the first read.
    pub polled_at: Option<DateTime<Utc>>,
    /// Why the last read failed; absent when it succeeded.
    pub error: Option<String>,
}

/// Records that `url` was read at `at`, and the error that reading it failed with, if any.
pub async fn polled(
    pool: &AnyPool,
    org: &OrgId,
    url: &QueueUrl,
    at: DateTime<Utc>,
    error: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO queue_polls (organization_id, queue_url, polled_at, error) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (organization_id) DO UPDATE SET \
         queue_url = excluded.queue_url, polled_at = excluded.polled_at, error = excluded.error",
    )
    .bind(org.as_str())
    .bind(url.as_str())
    .bind(timestamp(at))
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}
