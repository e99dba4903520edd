//! The `organizations` and `departed_organizations` tables: one row per registered
//! organization, the id of each removed one, and every statement on them.
//! Its views join `harvest_runs` for the last harvest and `queue_polls` for the events queue's
//! last read, and count the organization's accounts.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::crypto::Sealed;
use crate::domain::organization::{Filters, OrganizationEvent, RoleAccount};
use crate::domain::{AccountId, OrgId, QueueUrl};
use crate::store::harvest_runs::LastHarvest;
use crate::store::queue_polls::EventsQueue;
use crate::store::{parse_timestamp, timestamp, StoreError, StoredEvent};

pub(super) async fn apply(
    conn: &mut AnyConnection,
    stored: &StoredEvent,
    event: OrganizationEvent,
) -> Result<(), StoreError> {
    let org = stored.aggregate_id.as_str();
    match event {
        OrganizationEvent::OrganizationRegistered {
            org_id,
            nickname,
            management_account_id,
            credentials,
            filters,
            org_role_account,
        } => {
            sqlx::query(
                "INSERT INTO organizations (id, nickname, management_account_id, credentials, \
                 filters, registered_at, org_role_account) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET nickname = excluded.nickname, \
                 management_account_id = excluded.management_account_id, \
                 credentials = excluded.credentials, filters = excluded.filters, \
                 registered_at = excluded.registered_at, \
                 org_role_account = excluded.org_role_account",
            )
            .bind(org_id.as_str())
            .bind(nickname)
            .bind(management_account_id.as_str())
            .bind(credentials.as_str())
            .bind(serde_json::to_string(&filters)?)
            .bind(timestamp(stored.metadata.at))
            .bind(org_role_account.as_str())
            .execute(conn)
            .await?;
        }
        OrganizationEvent::CredentialsReplaced {
            credentials,
            org_role_account,
        } => {
            set(conn, org, "credentials", credentials.as_str().to_owned()).await?;
            set(
                conn,
                org,
                "org_role_account",
                org_role_account.as_str().to_owned(),
            )
            .await?
        }
        OrganizationEvent::FiltersChanged { filters } => {
            set(conn, org, "filters", serde_json::to_string(&filters)?).await?
        }
        OrganizationEvent::OrganizationRenamed { nickname } => {
            set(conn, org, "nickname", nickname).await?
        }
        OrganizationEvent::EventsQueueChanged { url } => {
            sqlx::query("UPDATE organizations SET events_queue_url = $1 WHERE id = $2")
                .bind(url.map(String::from))
                .bind(org)
                .execute(conn)
                .await?;
        }
        OrganizationEvent::OrganizationRemoved => {
            sqlx::query("DELETE FROM organizations WHERE id = $1")
                .bind(org)
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "INSERT INTO departed_organizations (id) VALUES ($1) ON CONFLICT (id) DO NOTHING",
            )
            .bind(org)
            .execute(conn)
            .await?;
        }
        // The outcome of each run lives in `harvest_runs`; these events are its audit trail.
        OrganizationEvent::HarvestCompleted { .. } | OrganizationEvent::HarvestFailed { .. } => {}
    }
    Ok(())
}

/// The ids of every organization registered now or ever.
pub async fn ever_registered(pool: &AnyPool) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT id FROM organizations UNION SELECT id FROM departed_organizations ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<_, _>>()?)
}

/// Empties the tables, for a rebuild.
pub(super) async fn clear(conn: &mut AnyConnection) -> Result<(), StoreError> {
    for table in ["organizations", "departed_organizations"] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn set(
    conn: &mut AnyConnection,
    org: &str,
    column: &str,
    value: String,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "UPDATE organizations SET {column} = $1 WHERE id = $2"
    ))
    .bind(value)
    .bind(org)
    .execute(conn)
    .await?;
    Ok(())
}

/// A registered organization, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganizationRow {
    /// The AWS organization id.
    pub id: OrgId,
    /// The name operators know it by.
    pub nickname: String,
    /// Its management account.
    pub management_account_id: AccountId,
    /// Which kind of account its org role is in.
    pub org_role_account: RoleAccount,
    /// Its scope and badge filters.
    pub filters: Filters,
    /// Accounts in the listing.
    pub account_count: i64,
    /// The last harvest, if any ran.
    pub last_harvest: Option<LastHarvest>,
    /// The queue its Organizations events arrive on, if one is set, and how its last read
    /// went.
    pub events_queue: Option<EventsQueue>,
}

/// What a harvest needs of an organization.
#[derive(Debug, Clone)]
pub struct OrganizationRecord {
    /// The AWS organization id.
    pub id: OrgId,
    /// The sealed credentials.
    pub credentials: Sealed,
    /// Its filters.
    pub filters: Filters,
    /// The queue its Organizations events arrive on.
    pub events_queue_url: Option<QueueUrl>,
}

const SELECT_VIEW: &str = "SELECT o.id, o.nickname, o.management_account_id, o.filters, \
    o.org_role_account, \
    (SELECT COUNT(*) FROM accounts a WHERE a.organization_id = o.id) AS account_count, \
    h.started_at, h.finished_at, h.outcome, h.accounts_seen, h.error, o.events_queue_url, \
    q.polled_at AS queue_polled_at, q.error AS queue_error \
    FROM organizations o LEFT JOIN harvest_runs h ON h.organization_id = o.id \
    LEFT JOIN queue_polls q ON q.organization_id = o.id AND q.queue_url = o.events_queue_url";

fn view(row: &AnyRow) -> Result<OrganizationRow, StoreError> {
    let id: String = row.try_get("id")?;
    let management: String = row.try_get("management_account_id")?;
    let filters: String = row.try_get("filters")?;
    let started_at: Option<String> = row.try_get("started_at")?;
    let last_harvest = match started_at {
        None => None,
        Some(started_at) => {
            let finished_at: Option<String> = row.try_get("finished_at")?;
            Some(LastHarvest {
                started_at: parse_timestamp(&started_at)?,
                finished_at: finished_at.as_deref().map(parse_timestamp).transpose()?,
                outcome: row.try_get("outcome")?,
                accounts_seen: row.try_get("accounts_seen")?,
                error: row.try_get("error")?,
            })
        }
    };
    let role_account: String = row.try_get("org_role_account")?;
    let queue_url: Option<String> = row.try_get("events_queue_url")?;
    let events_queue = match queue_url {
        None => None,
        Some(url) => {
            let polled_at: Option<String> = row.try_get("queue_polled_at")?;
            Some(EventsQueue {
                url: url
                    .try_into()
                    .map_err(|e| StoreError::Malformed(format!("{e}")))?,
                polled_at: polled_at.as_deref().map(parse_timestamp).transpose()?,
                error: row.try_get("queue_error")?,
            })
        }
    };
    Ok(OrganizationRow {
        id: id
            .try_into()
            .map_err(|e| StoreError::Malformed(format!("{e}")))?,
        nickname: row.try_get("nickname")?,
        management_account_id: management
            .try_into()
            .map_err(|e| StoreError::Malformed(format!("{e}")))?,
        org_role_account: RoleAccount::parse(&role_account)
            .ok_or_else(|| StoreError::Malformed(format!("org role account {role_account:?}")))?,
        filters: serde_json::from_str(&filters)?,
        account_count: row.try_get("account_count")?,
        last_harvest,
        events_queue,
    })
}

/// Every organization, by id.
pub async fn list(pool: &AnyPool) -> Result<Vec<OrganizationRow>, StoreError> {
    let rows = sqlx::query(&format!("{SELECT_VIEW} ORDER BY o.id"))
        .fetch_all(pool)
        .await?;
    rows.iter().map(view).collect()
}

/// One organization.
pub async fn get(pool: &AnyPool, id: &OrgId) -> Result<Option<OrganizationRow>, StoreError> {
    let row = sqlx::query(&format!("{SELECT_VIEW} WHERE o.id = $1"))
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(view).transpose()
}

/// Every organization with an events queue, and its queue.
pub async fn events_queues(pool: &AnyPool) -> Result<Vec<(OrgId, QueueUrl)>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, events_queue_url FROM organizations WHERE events_queue_url IS NOT NULL",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get("id")?;
            let url: String = row.try_get("events_queue_url")?;
            let malformed = |e: crate::domain::InvalidValue| StoreError::Malformed(e.to_string());
            Ok((
                id.try_into().map_err(malformed)?,
                url.try_into().map_err(malformed)?,
            ))
        })
        .collect()
}

/// What a harvest of `id` needs.
pub async fn record(pool: &AnyPool, id: &OrgId) -> Result<Option<OrganizationRecord>, StoreError> {
    let row = sqlx::query(
        "SELECT credentials, filters, events_queue_url FROM organizations WHERE id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let filters: String = row.try_get("filters")?;
    let queue: Option<String> = row.try_get("events_queue_url")?;
    Ok(Some(OrganizationRecord {
        id: id.clone(),
        credentials: Sealed::from_stored(row.try_get("credentials")?),
        filters: serde_json::from_str(&filters)?,
        events_queue_url: queue
            .map(QueueUrl::try_from)
            .transpose()
            .map_err(|e| StoreError::Malformed(format!("{e}")))?,
    }))
}
