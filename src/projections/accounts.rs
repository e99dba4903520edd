//! The `accounts`, `badges` and `departed_accounts` tables, and every statement on them: one
//! row per account in the listing, managed or standalone, with its OU path, access status,
//! tags and badges (made by [`super::listing`]), one row of `badges` per badge for filters to
//! search, and the id of each account that left the listing, for the listing of the past. The
//! organization badges are in neither: they are added as accounts are read, from the
//! account's organization (R9), and filters find them through it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, Arguments, Encode, Row, Type};

use crate::domain::account::badges::{self, organization_badges, Badges, Labels};
use crate::domain::account::{Access, AccessStatus, Tags};
use crate::domain::{AccountId, AccountState, OrgId, OrgPath, OrgUnit, ParentId};
use crate::store::{parse_timestamp, Dialect, StoreError};

use super::listing::{Rows, StoredRow};

/// An account of the listing, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    /// The 12-digit account id.
    pub account_id: AccountId,
    /// Its name.
    pub name: String,
    /// Its root email address; unknown for standalone accounts.
    pub email: Option<String>,
    /// Its state; unknown for standalone accounts.
    pub state: Option<AccountState>,
    /// The organization that manages it.
    pub organization_id: Option<OrgId>,
    /// Its place in the OU tree, root first.
    pub org_path: OrgPath,
    /// Its AWS tags as last harvested (R11).
    pub tags: Tags,
    /// Its badges, the organization's included, by key.
    pub badges: Badges,
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
    /// Only accounts whose access check came out so.
    pub access: Option<AccessStatus>,
    /// Only accounts nested anywhere below this root or OU.
    pub below: Option<ParentId>,
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
    o.nickname, h.last_completed_at FROM accounts a \
    LEFT JOIN organizations o ON o.id = a.organization_id \
    LEFT JOIN harvest_runs h ON h.organization_id = a.organization_id";

fn malformed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Malformed(e.to_string())
}

fn read(row: &AnyRow) -> Result<AccountRow, StoreError> {
    let account_id: String = row.try_get("account_id")?;
    let organization_id: Option<String> = row.try_get("organization_id")?;
    let org_path: String = row.try_get("org_path")?;
    let first_seen: String = row.try_get("first_seen")?;
    let last_seen: Option<String> = row.try_get("last_completed_at")?;
    let tags: String = row.try_get("tags")?;
    let badges: String = row.try_get("badges")?;
    let mut badges: Badges = serde_json::from_str(&badges)?;
    let organization_id = organization_id
        .map(OrgId::try_from)
        .transpose()
        .map_err(malformed)?;
    if let Some(org) = &organization_id {
        let nickname: Option<String> = row.try_get("nickname")?;
        badges.extend(organization_badges(
            org,
            nickname.as_deref().unwrap_or_default(),
        ));
    }
    Ok(AccountRow {
        account_id: account_id.try_into().map_err(malformed)?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        state: state_of(row)?,
        last_seen: match organization_id {
            Some(_) => last_seen.as_deref().map(parse_timestamp).transpose()?,
            None => None,
        },
        organization_id,
        org_path: serde_json::from_str(&org_path)?,
        tags: serde_json::from_str(&tags)?,
        badges,
        access: access_of(row)?,
        first_seen: parse_timestamp(&first_seen)?,
    })
}

fn state_of(row: &AnyRow) -> Result<Option<AccountState>, StoreError> {
    let state: Option<String> = row.try_get("state")?;
    state
        .map(|s| AccountState::parse(&s).ok_or_else(|| malformed(format!("state {s:?}"))))
        .transpose()
}

fn access_of(row: &AnyRow) -> Result<Access, StoreError> {
    let status: String = row.try_get("access_status")?;
    let warnings: String = row.try_get("access_warnings")?;
    let permissions_checked: i64 = row.try_get("access_permissions_checked")?;
    Ok(Access {
        status: AccessStatus::parse(&status)
            .ok_or_else(|| malformed(format!("access status {status:?}")))?,
        message: row.try_get("access_message")?,
        warnings: serde_json::from_str(&warnings)?,
        permissions_checked: permissions_checked != 0,
    })
}

/// What a harvest compares of an account its organization lists: its facts as last harvested
/// and its access, not its badges.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    /// The account.
    pub account_id: AccountId,
    /// Its name.
    pub name: String,
    /// Its root email address.
    pub email: Option<String>,
    /// Its state.
    pub state: Option<AccountState>,
    /// Its place in the OU tree.
    pub org_path: OrgPath,
    /// Its tags.
    pub tags: Tags,
    /// Whether orgsync reached it.
    pub access: Access,
}

/// Up to `limit` accounts of `org` whose id sorts after `after`, by id, as a harvest compares
/// them: only the columns it compares, no join.
pub async fn compared(
    pool: &AnyPool,
    org: &OrgId,
    after: Option<&AccountId>,
    limit: i64,
) -> Result<Vec<Compared>, StoreError> {
    let rows = sqlx::query(&format!(
        "{SELECT_COMPARED} WHERE organization_id = $1 AND account_id > $2 \
         ORDER BY account_id LIMIT $3"
    ))
    .bind(org.as_str())
    .bind(after.map_or("", AccountId::as_str))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(compared_row).collect()
}

/// One account, if `org` lists it, as a harvest compares it.
pub async fn compared_one(
    pool: &AnyPool,
    org: &OrgId,
    account: &AccountId,
) -> Result<Option<Compared>, StoreError> {
    let row = sqlx::query(&format!(
        "{SELECT_COMPARED} WHERE organization_id = $1 AND account_id = $2"
    ))
    .bind(org.as_str())
    .bind(account.as_str())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(compared_row).transpose()
}

/// Every account `org` lists nested below `unit`, as a harvest compares them.
pub async fn compared_below(
    pool: &AnyPool,
    org: &OrgId,
    unit: &ParentId,
) -> Result<Vec<Compared>, StoreError> {
    let rows = sqlx::query(&format!(
        "{SELECT_COMPARED} WHERE organization_id = $1 AND org_path LIKE $2 ORDER BY account_id"
    ))
    .bind(org.as_str())
    .bind(path_pattern(unit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(compared_row).collect()
}

/// What an `org_path` holding `unit` matches: the path is stored as JSON, each step
/// `{"id":…,…}`, and an id needs no escaping in it.
fn path_pattern(unit: &ParentId) -> String {
    format!("%{{\"id\":\"{unit}\"%")
}

const SELECT_COMPARED: &str = "SELECT account_id, name, email, state, org_path, tags, \
    access_status, access_message, access_warnings, access_permissions_checked FROM accounts";

fn compared_row(row: &AnyRow) -> Result<Compared, StoreError> {
    let account_id: String = row.try_get("account_id")?;
    let org_path: String = row.try_get("org_path")?;
    let tags: String = row.try_get("tags")?;
    Ok(Compared {
        account_id: account_id.try_into().map_err(malformed)?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        state: state_of(row)?,
        org_path: serde_json::from_str(&org_path)?,
        tags: serde_json::from_str(&tags)?,
        access: access_of(row)?,
    })
}

/// A page of accounts, by account id.
pub async fn list<'c>(
    conn: impl sqlx::Executor<'c, Database = Any>,
    query: &AccountQuery,
) -> Result<Vec<AccountRow>, StoreError> {
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
    if let Some(access) = query.access {
        conditions.push(format!(
            "a.access_status = {}",
            arg(access.as_str().to_owned(), &mut args)
        ));
    }
    if let Some(unit) = &query.below {
        conditions.push(format!(
            "a.org_path LIKE {}",
            arg(path_pattern(unit), &mut args)
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
    let rows = q.bind(query.limit).fetch_all(conn).await?;
    rows.iter().map(read).collect()
}

/// The first `limit` ids after `after` of the accounts the listing holds or ever held, in
/// order.
pub async fn ever_listed(
    pool: &AnyPool,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let after = after.unwrap_or_default();
    // Each side on its own index, so that neither reads past its first `limit`.
    let rows = sqlx::query(
        "SELECT account_id FROM (SELECT account_id FROM accounts WHERE account_id > $1 \
             ORDER BY account_id LIMIT $2) AS listed \
         UNION ALL SELECT account_id FROM (SELECT account_id FROM departed_accounts \
             WHERE account_id > $1 ORDER BY account_id LIMIT $2) AS departed",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut ids = rows
        .iter()
        .map(|row| row.try_get("account_id"))
        .collect::<Result<Vec<String>, _>>()?;
    ids.sort_unstable();
    ids.dedup();
    ids.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(ids)
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

/// A root or OU of an organization's tree that holds accounts of the listing, with how many
/// are nested anywhere below it, in each state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitCounts {
    /// The root or OU.
    pub unit: OrgUnit,
    /// The unit above it; none for the root.
    pub parent: Option<ParentId>,
    /// Accounts below it, by state.
    pub states: BTreeMap<AccountState, i64>,
}

/// The units of `org`'s tree that hold its listed accounts, each parent before its children
/// (the root first), siblings by name. One query grouped by path: an organization has far
/// fewer paths than accounts.
pub async fn units(pool: &AnyPool, org: &OrgId) -> Result<Vec<UnitCounts>, StoreError> {
    let rows = sqlx::query(
        "SELECT org_path, state, COUNT(*) AS n FROM accounts WHERE organization_id = $1 \
         GROUP BY org_path, state",
    )
    .bind(org.as_str())
    .fetch_all(pool)
    .await?;
    let mut units: HashMap<ParentId, UnitCounts> = HashMap::new();
    for row in &rows {
        let path: String = row.try_get("org_path")?;
        let path: OrgPath = serde_json::from_str(&path)?;
        let n: i64 = row.try_get("n")?;
        let state = state_of(row)?;
        for (depth, step) in path.iter().enumerate() {
            let unit = units.entry(step.id.clone()).or_insert_with(|| UnitCounts {
                unit: step.clone(),
                parent: depth.checked_sub(1).map(|above| path[above].id.clone()),
                states: BTreeMap::new(),
            });
            if let Some(state) = state {
                *unit.states.entry(state).or_default() += n;
            }
        }
    }
    // Depth first from the roots, so that each parent comes before its children.
    let mut children: BTreeMap<Option<ParentId>, Vec<UnitCounts>> = BTreeMap::new();
    for unit in units.into_values() {
        children.entry(unit.parent.clone()).or_default().push(unit);
    }
    for siblings in children.values_mut() {
        siblings.sort_by(|a, b| (&a.unit.name, &a.unit.id).cmp(&(&b.unit.name, &b.unit.id)));
        siblings.reverse();
    }
    let mut ordered = Vec::new();
    let mut pending = children.remove(&None).unwrap_or_default();
    while let Some(unit) = pending.pop() {
        if let Some(below) = children.remove(&Some(unit.unit.id.clone())) {
            pending.extend(below);
        }
        ordered.push(unit);
    }
    Ok(ordered)
}

/// One account of the listing.
pub async fn get(pool: &AnyPool, id: &AccountId) -> Result<Option<AccountRow>, StoreError> {
    let rows = sqlx::query(&format!("{SELECT_ROW} WHERE a.account_id = $1"))
        .bind(id.as_str())
        .fetch_all(pool)
        .await?;
    rows.iter().map(read).next().transpose()
}

/// The organizations listing `accounts` now, for those an organization lists; one query.
pub async fn organizations_of(
    pool: &AnyPool,
    accounts: &[AccountId],
) -> Result<HashMap<AccountId, OrgId>, StoreError> {
    if accounts.is_empty() {
        return Ok(HashMap::new());
    }
    let placeholders: Vec<String> = (1..=accounts.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT account_id, organization_id FROM accounts \
         WHERE organization_id IS NOT NULL AND account_id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for id in accounts {
        query = query.bind(id.as_str());
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            let account: String = row.try_get("account_id")?;
            let org: String = row.try_get("organization_id")?;
            Ok((
                account.try_into().map_err(malformed)?,
                org.try_into().map_err(malformed)?,
            ))
        })
        .collect()
}

/// Every account an organization lists now.
pub async fn of_organization(pool: &AnyPool, org: &OrgId) -> Result<Vec<AccountRow>, StoreError> {
    let rows = sqlx::query(&format!("{SELECT_ROW} WHERE a.organization_id = $1"))
        .bind(org.as_str())
        .fetch_all(pool)
        .await?;
    rows.iter().map(read).collect()
}

/// Empties both tables, for a rebuild.
pub(super) async fn clear(conn: &mut AnyConnection) -> Result<(), StoreError> {
    for table in ["badges", "accounts", "departed_accounts"] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Brings PostgreSQL's statistics of both tables up to date after a bulk change, rather than
/// waiting for autovacuum: planned on the statistics of a nearly empty table, a page of a
/// 100,000-account listing took 156 ms (a bitmap scan and a sort of every row) instead of
/// 2 ms (the primary key's order). SQLite plans without statistics.
pub(super) async fn analyze(pool: &AnyPool) -> Result<(), StoreError> {
    sqlx::query("ANALYZE accounts, badges")
        .execute(pool)
        .await?;
    Ok(())
}

/// The badges that `loaded` rows hold in the `badges` table, by account: what [`changes`]
/// replaces.
pub(super) fn stored_badges(loaded: &HashMap<String, Rows>) -> HashMap<String, Badges> {
    loaded
        .iter()
        .map(|(id, rows)| (id.clone(), rows.labels.badges.clone()))
        .collect()
}

/// The rows of `ids` as stored now; accounts without a row are absent.
pub(super) async fn load(
    conn: &mut AnyConnection,
    ids: &[&str],
) -> Result<HashMap<String, Rows>, StoreError> {
    let sql = format!(
        "SELECT account_id, organization_id, name, email, state, org_path, credentials, \
         access_status, access_message, access_warnings, access_permissions_checked, \
         first_seen, tags, badges FROM accounts WHERE account_id IN ({})",
        Dialect::of(conn).elements_of(1)
    );
    let accounts = sqlx::query(&sql)
        .bind(serde_json::to_string(ids)?)
        .fetch_all(&mut *conn)
        .await?;
    accounts
        .iter()
        .map(|row| {
            let checked: i64 = row.try_get("access_permissions_checked")?;
            let tags: String = row.try_get("tags")?;
            let badges: String = row.try_get("badges")?;
            let account = StoredRow {
                organization_id: row.try_get("organization_id")?,
                name: row.try_get("name")?,
                email: row.try_get("email")?,
                state: row.try_get("state")?,
                org_path: row.try_get("org_path")?,
                credentials: row.try_get("credentials")?,
                access_status: row.try_get("access_status")?,
                access_message: row.try_get("access_message")?,
                access_warnings: row.try_get("access_warnings")?,
                access_permissions_checked: checked != 0,
                first_seen: row.try_get("first_seen")?,
            };
            let rows = Rows {
                account: Some(account),
                labels: Labels {
                    tags: serde_json::from_str(&tags)?,
                    badges: serde_json::from_str(&badges)?,
                },
            };
            Ok((row.try_get("account_id")?, rows))
        })
        .collect()
}

/// Bound values in one statement at most: within SQLite's and PostgreSQL's limits.
const VALUES_PER_STATEMENT: usize = 12_000;

/// Statements and their values, made away from the transaction that runs them.
pub(super) struct Changes(Vec<Statement>);

impl Changes {
    /// Runs the statements in order.
    pub(super) async fn write(self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        for Statement { sql, values } in self.0 {
            sqlx::query_with(&sql, values).execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// One statement with the values it binds, owned.
struct Statement {
    sql: String,
    values: AnyArguments<'static>,
}

impl Statement {
    fn new(sql: String) -> Self {
        Self {
            sql,
            values: AnyArguments::default(),
        }
    }

    fn bind<T>(&mut self, value: T) -> Result<&mut Self, StoreError>
    where
        T: Encode<'static, Any> + Type<Any> + 'static,
    {
        self.values
            .add(value)
            .map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))?;
        Ok(self)
    }
}

/// What replaces the rows of `ids` with `rows`. `stored` holds the badges of the accounts
/// that had rows when [`load`]ed, the only ones with rows to delete (a harvest's new accounts
/// have none); of their badge rows, only those that changed are deleted and written again.
pub(super) fn changes(
    dialect: Dialect,
    stored: &HashMap<String, Badges>,
    ids: &[&str],
    rows: &HashMap<String, Rows>,
) -> Result<Changes, StoreError> {
    let mut statements = Vec::new();
    if !stored.is_empty() {
        let had_rows: Vec<&str> = stored.keys().map(String::as_str).collect();
        let mut delete = Statement::new(format!(
            "DELETE FROM accounts WHERE account_id IN ({})",
            dialect.elements_of(1)
        ));
        delete.bind(serde_json::to_string(&had_rows)?)?;
        statements.push(delete);
    }
    let mut gone = Vec::new();
    let mut new = Vec::new();
    let none = Badges::new();
    for id in ids {
        let before = stored.get(*id).unwrap_or(&none);
        let after = match rows.get(*id) {
            Some(rows) if rows.account.is_some() => &rows.labels.badges,
            _ => &none,
        };
        gone.extend(
            before
                .iter()
                .filter(|(key, badge)| after.get(*key) != Some(badge))
                .map(|(key, (value, _))| (*id, key, value)),
        );
        new.extend(
            after
                .iter()
                .filter(|(key, badge)| before.get(*key) != Some(badge))
                .map(|(key, badge)| (*id, key, badge)),
        );
    }
    // In the table's key order, (key, value, account): each insert lands beside the last.
    new.sort_unstable_by_key(|&(id, key, (value, _))| (key, value, id));
    for chunk in gone.chunks(VALUES_PER_STATEMENT / 3) {
        let mut delete = Statement::new(format!(
            "DELETE FROM badges WHERE (key, value, account_id) IN (VALUES {})",
            dialect.row_placeholders(chunk.len(), &["{}"; 3])
        ));
        for (id, key, value) in chunk {
            delete
                .bind(key.to_string())?
                .bind(value.to_string())?
                .bind(id.to_string())?;
        }
        statements.push(delete);
    }
    let listed: Vec<(&str, &StoredRow, &Rows)> = ids
        .iter()
        .filter_map(|id| {
            let rows = rows.get(*id)?;
            Some((*id, rows.account.as_ref()?, rows))
        })
        .collect();
    for chunk in listed.chunks(VALUES_PER_STATEMENT / 14) {
        let mut insert = Statement::new(format!(
            "INSERT INTO accounts (account_id, organization_id, name, email, state, org_path, \
             credentials, access_status, access_message, access_warnings, \
             access_permissions_checked, first_seen, tags, badges) VALUES {}",
            dialect.row_placeholders(chunk.len(), &["{}"; 14])
        ));
        for (id, row, rows) in chunk {
            insert
                .bind(id.to_string())?
                .bind(row.organization_id.clone())?
                .bind(row.name.clone())?
                .bind(row.email.clone())?
                .bind(row.state.clone())?
                .bind(row.org_path.clone())?
                .bind(row.credentials.clone())?
                .bind(row.access_status.clone())?
                .bind(row.access_message.clone())?
                .bind(row.access_warnings.clone())?
                .bind(i64::from(row.access_permissions_checked))?
                .bind(row.first_seen.clone())?
                .bind(serde_json::to_string(&rows.labels.tags)?)?
                .bind(serde_json::to_string(&rows.labels.badges)?)?;
        }
        statements.push(insert);
    }
    let departed: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| rows.get(*id).is_none_or(|rows| rows.account.is_none()))
        .collect();
    if !departed.is_empty() {
        let mut insert = Statement::new(format!(
            // `WHERE true` tells SQLite's parser that ON CONFLICT is not a join's ON.
            "INSERT INTO departed_accounts (account_id) {} WHERE true \
             ON CONFLICT (account_id) DO NOTHING",
            dialect.elements_of(1)
        ));
        insert.bind(serde_json::to_string(&departed)?)?;
        statements.push(insert);
    }
    for chunk in new.chunks(VALUES_PER_STATEMENT / 4) {
        let mut insert = Statement::new(format!(
            "INSERT INTO badges (account_id, key, value, autogenerated) VALUES {}",
            dialect.row_placeholders(chunk.len(), &["{}"; 4])
        ));
        for (id, key, (value, autogenerated)) in chunk {
            insert
                .bind(id.to_string())?
                .bind(key.to_string())?
                .bind(value.clone())?
                .bind(i64::from(*autogenerated))?;
        }
        statements.push(insert);
    }
    Ok(Changes(statements))
}
