//! The `accounts` table: one row per account in the listing, managed or standalone, with its
//! OU path, access status, tags and badges (written by [`super::listing`]); the `badges`
//! table is what badge filters search.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::domain::account::{Access, AccessStatus, Tags};
use crate::domain::{AccountId, AccountState, OrgId, OrgPath};
use crate::store::{parse_timestamp, StoreError};

use super::badges::{self, BadgeView};

/// An account as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    /// The 12-digit account id.
    #[schema(value_type = String, example = "111122223333")]
    pub account_id: AccountId,
    /// Its name.
    pub name: String,
    /// Its root email address; unknown for standalone accounts.
    pub email: Option<String>,
    /// Its state; unknown for standalone accounts.
    pub state: Option<AccountState>,
    /// The organization that manages it.
    #[schema(value_type = Option<String>)]
    pub organization_id: Option<OrgId>,
    /// Whether an organization manages it (R12).
    pub managed: bool,
    /// Its place in the OU tree, root first.
    #[schema(value_type = Vec<crate::domain::OrgUnit>)]
    pub org_path: OrgPath,
    /// Its AWS tags as last harvested (R11).
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub tags: Tags,
    /// Its badges, by key.
    pub badges: Vec<BadgeView>,
    /// Whether orgsync can reach it (R4, R15).
    pub access: Access,
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
    /// Only accounts carrying every one of these badges.
    pub badges: Vec<(String, String)>,
    /// Only accounts whose name, id or email contains this, ignoring case.
    pub text: Option<String>,
    /// Only accounts whose id sorts after this one.
    pub after: Option<AccountId>,
    /// At most this many.
    pub limit: i64,
}

const SELECT_ROW: &str = "SELECT a.account_id, a.organization_id, a.name, a.email, a.state, \
    a.org_path, a.access_status, a.access_message, a.access_warnings, \
    a.access_permissions_checked, a.first_seen, a.tags, a.badges, \
    h.last_completed_at FROM accounts a \
    LEFT JOIN harvest_runs h ON h.organization_id = a.organization_id";

fn malformed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Malformed(e.to_string())
}

fn row_view(row: &AnyRow) -> Result<AccountView, StoreError> {
    let account_id: String = row.try_get("account_id")?;
    let organization_id: Option<String> = row.try_get("organization_id")?;
    let state: Option<String> = row.try_get("state")?;
    let org_path: String = row.try_get("org_path")?;
    let status: String = row.try_get("access_status")?;
    let warnings: String = row.try_get("access_warnings")?;
    let permissions_checked: i64 = row.try_get("access_permissions_checked")?;
    let first_seen: String = row.try_get("first_seen")?;
    let last_seen: Option<String> = row.try_get("last_completed_at")?;
    let tags: String = row.try_get("tags")?;
    let badges: String = row.try_get("badges")?;
    let organization_id = organization_id
        .map(OrgId::try_from)
        .transpose()
        .map_err(malformed)?;
    let state = state
        .map(|s| AccountState::parse(&s).ok_or_else(|| malformed(format!("state {s:?}"))))
        .transpose()?;
    Ok(AccountView {
        account_id: account_id.try_into().map_err(malformed)?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        state,
        managed: organization_id.is_some(),
        last_seen: match organization_id {
            Some(_) => last_seen.as_deref().map(parse_timestamp).transpose()?,
            None => None,
        },
        organization_id,
        org_path: serde_json::from_str(&org_path)?,
        tags: serde_json::from_str(&tags)?,
        badges: badges::views(serde_json::from_str(&badges)?),
        access: Access {
            status: AccessStatus::parse(&status)
                .ok_or_else(|| malformed(format!("access status {status:?}")))?,
            message: row.try_get("access_message")?,
            warnings: serde_json::from_str(&warnings)?,
            permissions_checked: permissions_checked != 0,
        },
        first_seen: parse_timestamp(&first_seen)?,
    })
}

/// A page of accounts, by account id.
pub async fn list(pool: &AnyPool, query: &AccountQuery) -> Result<Vec<AccountView>, StoreError> {
    let mut conditions = Vec::new();
    let mut args: Vec<String> = Vec::new();
    let arg = |value: String, args: &mut Vec<String>| {
        args.push(value);
        format!("${}", args.len())
    };
    if let Some(org) = &query.organization {
        conditions.push(format!(
            "a.organization_id = {}",
            arg(org.to_string(), &mut args)
        ));
    }
    if let Some(state) = query.state {
        conditions.push(format!(
            "a.state = {}",
            arg(state.as_str().to_owned(), &mut args)
        ));
    }
    for (key, value) in &query.badges {
        let v = arg(value.clone(), &mut args);
        conditions.push(match key.as_str() {
            badges::ORGANIZATION => format!("a.organization_id = {v}"),
            badges::ORGANIZATION_NAME => format!(
                "a.organization_id IN (SELECT o.id FROM organizations o WHERE o.nickname = {v})"
            ),
            _ => {
                let k = arg(key.clone(), &mut args);
                format!(
                    "EXISTS (SELECT 1 FROM badges b WHERE b.key = {k} AND b.value = {v} \
                     AND b.account_id = a.account_id)"
                )
            }
        });
    }
    if let Some(text) = &query.text {
        let escaped = text
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let p = arg(format!("%{escaped}%"), &mut args);
        conditions.push(format!(
            "(lower(a.name) LIKE {p} ESCAPE '\\' OR a.account_id LIKE {p} ESCAPE '\\' \
             OR lower(COALESCE(a.email, '')) LIKE {p} ESCAPE '\\')"
        ));
    }
    if let Some(after) = &query.after {
        conditions.push(format!(
            "a.account_id > {}",
            arg(after.to_string(), &mut args)
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "{SELECT_ROW}{filter} ORDER BY a.account_id LIMIT ${}",
        args.len() + 1
    );
    let mut q = sqlx::query(&sql);
    for value in args {
        q = q.bind(value);
    }
    let rows = q.bind(query.limit).fetch_all(pool).await?;
    rows.iter().map(row_view).collect()
}

/// How many accounts each state holds; standalone accounts, whose state is unknown, as
/// `UNKNOWN`.
pub async fn count_by_state(pool: &AnyPool) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT COALESCE(state, 'UNKNOWN') AS state, COUNT(*) AS n FROM accounts \
         GROUP BY COALESCE(state, 'UNKNOWN')",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("state")?, row.try_get("n")?)))
        .collect()
}

/// One account of the listing.
pub async fn get(pool: &AnyPool, id: &AccountId) -> Result<Option<AccountView>, StoreError> {
    let rows = sqlx::query(&format!("{SELECT_ROW} WHERE a.account_id = $1"))
        .bind(id.as_str())
        .fetch_all(pool)
        .await?;
    rows.iter().map(row_view).next().transpose()
}

/// Every account an organization lists now.
pub async fn of_organization(pool: &AnyPool, org: &OrgId) -> Result<Vec<AccountView>, StoreError> {
    let rows = sqlx::query(&format!("{SELECT_ROW} WHERE a.organization_id = $1"))
        .bind(org.as_str())
        .fetch_all(pool)
        .await?;
    rows.iter().map(row_view).collect()
}
