//! The `accounts` table: one row per account in the listing, with its OU path and tags.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::domain::account::{AccountEvent, Tags};
use crate::domain::{AccountId, AccountState, OrgId, OrgPath};
use crate::store::{parse_timestamp, timestamp, StoreError, StoredEvent};

pub(super) async fn apply(
    conn: &mut AnyConnection,
    stored: &StoredEvent,
    event: AccountEvent,
) -> Result<(), StoreError> {
    let id = stored.aggregate_id.as_str();
    let at = timestamp(stored.metadata.at);
    let (column, value) = match event {
        AccountEvent::AccountDiscovered {
            organization_id,
            name,
            email,
            state,
            org_path,
        } => {
            sqlx::query(
                "INSERT INTO accounts (account_id, organization_id, name, email, state, org_path, \
                 tags, first_seen, updated_at) VALUES ($1, $2, $3, $4, $5, $6, '{}', $7, $7) \
                 ON CONFLICT (account_id) DO UPDATE SET organization_id = excluded.organization_id, \
                 name = excluded.name, email = excluded.email, state = excluded.state, \
                 org_path = excluded.org_path, tags = excluded.tags, \
                 first_seen = excluded.first_seen, updated_at = excluded.updated_at",
            )
            .bind(id)
            .bind(organization_id.as_str())
            .bind(name)
            .bind(email)
            .bind(state.as_str())
            .bind(serde_json::to_string(&org_path)?)
            .bind(at)
            .execute(conn)
            .await?;
            return Ok(());
        }
        AccountEvent::AccountLeftOrganization { .. } => {
            sqlx::query("DELETE FROM accounts WHERE account_id = $1")
                .bind(id)
                .execute(conn)
                .await?;
            return Ok(());
        }
        AccountEvent::AccountRenamed { name } => ("name", name),
        AccountEvent::AccountEmailChanged { email } => ("email", email),
        AccountEvent::AccountMoved { org_path } => ("org_path", serde_json::to_string(&org_path)?),
        AccountEvent::AccountStateChanged { state } => ("state", state.as_str().to_owned()),
        AccountEvent::AccountTagsChanged { set, removed } => {
            let current: String = sqlx::query("SELECT tags FROM accounts WHERE account_id = $1")
                .bind(id)
                .fetch_one(&mut *conn)
                .await?
                .try_get("tags")?;
            let mut tags: Tags = serde_json::from_str(&current)?;
            for key in removed {
                tags.remove(&key);
            }
            tags.extend(set);
            ("tags", serde_json::to_string(&tags)?)
        }
    };
    sqlx::query(&format!(
        "UPDATE accounts SET {column} = $1, updated_at = $2 WHERE account_id = $3"
    ))
    .bind(value)
    .bind(at)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// An account as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountView {
    /// The 12-digit account id.
    pub account_id: AccountId,
    /// Its name.
    pub name: String,
    /// Its root email address.
    pub email: String,
    /// Its state.
    pub state: AccountState,
    /// The organization that lists it.
    pub organization_id: Option<OrgId>,
    /// Whether an organization manages it.
    pub managed: bool,
    /// Its place in the OU tree, root first.
    pub org_path: OrgPath,
    /// Its resource tags as last harvested.
    pub tags: Tags,
    /// When it entered the listing.
    pub first_seen: DateTime<Utc>,
    /// When a harvest last listed it.
    pub last_seen: Option<DateTime<Utc>>,
}

/// Which accounts to list, and from where.
#[derive(Debug, Clone, Default)]
pub struct AccountQuery {
    /// Only accounts of this organization.
    pub organization: Option<OrgId>,
    /// Only accounts in this state.
    pub state: Option<AccountState>,
    /// Only accounts whose id sorts after this one.
    pub after: Option<AccountId>,
    /// At most this many.
    pub limit: i64,
}

const SELECT_VIEW: &str = "SELECT a.account_id, a.organization_id, a.name, a.email, a.state, \
    a.org_path, a.tags, a.first_seen, h.last_completed_at FROM accounts a \
    LEFT JOIN harvest_runs h ON h.organization_id = a.organization_id";

fn malformed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Malformed(e.to_string())
}

fn view(row: &AnyRow) -> Result<AccountView, StoreError> {
    let account_id: String = row.try_get("account_id")?;
    let organization_id: Option<String> = row.try_get("organization_id")?;
    let state: String = row.try_get("state")?;
    let org_path: String = row.try_get("org_path")?;
    let tags: String = row.try_get("tags")?;
    let first_seen: String = row.try_get("first_seen")?;
    let last_seen: Option<String> = row.try_get("last_completed_at")?;
    let organization_id = organization_id
        .map(OrgId::try_from)
        .transpose()
        .map_err(malformed)?;
    Ok(AccountView {
        account_id: account_id.try_into().map_err(malformed)?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        state: AccountState::parse(&state).ok_or_else(|| malformed(format!("state {state:?}")))?,
        managed: organization_id.is_some(),
        organization_id,
        org_path: serde_json::from_str(&org_path)?,
        tags: serde_json::from_str(&tags)?,
        first_seen: parse_timestamp(&first_seen)?,
        last_seen: last_seen.as_deref().map(parse_timestamp).transpose()?,
    })
}

/// A page of accounts, by account id.
pub async fn list(pool: &AnyPool, query: &AccountQuery) -> Result<Vec<AccountView>, StoreError> {
    let mut conditions = Vec::new();
    let mut args = Vec::new();
    if let Some(org) = &query.organization {
        args.push(org.to_string());
        conditions.push(format!("a.organization_id = ${}", args.len()));
    }
    if let Some(state) = query.state {
        args.push(state.as_str().to_owned());
        conditions.push(format!("a.state = ${}", args.len()));
    }
    if let Some(after) = &query.after {
        args.push(after.to_string());
        conditions.push(format!("a.account_id > ${}", args.len()));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "{SELECT_VIEW}{filter} ORDER BY a.account_id LIMIT ${}",
        args.len() + 1
    );
    let mut q = sqlx::query(&sql);
    for arg in args {
        q = q.bind(arg);
    }
    let rows = q.bind(query.limit).fetch_all(pool).await?;
    rows.iter().map(view).collect()
}

/// One account of the listing.
pub async fn get(pool: &AnyPool, id: &AccountId) -> Result<Option<AccountView>, StoreError> {
    let row = sqlx::query(&format!("{SELECT_VIEW} WHERE a.account_id = $1"))
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(view).transpose()
}

/// Every account an organization lists now.
pub async fn of_organization(pool: &AnyPool, org: &OrgId) -> Result<Vec<AccountView>, StoreError> {
    let rows = sqlx::query(&format!("{SELECT_VIEW} WHERE a.organization_id = $1"))
        .bind(org.as_str())
        .fetch_all(pool)
        .await?;
    rows.iter().map(view).collect()
}
