//! What events make of the accounts in the read tables: each account's row in `accounts`
//! with its tags (which the `resource_tags` view lists, R11) and badges, and the same badges
//! in `badges` for filters to search. Only harvests change tags; nothing here is ever written
//! back to AWS.
//!
//! A run of account events, or an organization event that touches its accounts' badges,
//! changes the accounts' rows in memory and writes them back once, whatever its length: a
//! harvest of thousands of accounts costs a few multi-row statements per thousand accounts.

use std::collections::HashMap;

use sqlx::any::AnyArguments;
use sqlx::{Any, AnyConnection, Arguments, Encode, Row, Type};

use crate::domain::account::{is_reserved_badge, AccountEvent, Tags};
use crate::domain::organization::{Filters, OrganizationEvent};
use crate::store::{timestamp, Dialect, StoreError, StoredEvent};

use super::badges::{self, org_path_badge, searched_by_row, Badges};
use super::AccountFact;

/// One account's rows, as stored (JSON and timestamps as text). Tags and badges are kept
/// only while the account has its row.
#[derive(Debug, Clone, Default, PartialEq)]
struct Rows {
    account: Option<AccountRow>,
    tags: Tags,
    badges: Badges,
}

/// A row of `accounts`.
#[derive(Debug, Clone, PartialEq)]
struct AccountRow {
    organization_id: Option<String>,
    name: String,
    email: Option<String>,
    state: Option<String>,
    org_path: String,
    credentials: Option<String>,
    access_status: String,
    access_message: Option<String>,
    access_warnings: String,
    access_permissions_checked: bool,
    first_seen: String,
}

impl AccountRow {
    fn unchecked(first_seen: String) -> Self {
        Self {
            organization_id: None,
            name: String::new(),
            email: None,
            state: None,
            org_path: "[]".into(),
            credentials: None,
            access_status: "not_checked".into(),
            access_message: None,
            access_warnings: "[]".into(),
            access_permissions_checked: false,
            first_seen,
        }
    }
}

impl Rows {
    /// Applies one event; `nickname` names the organization of an `AccountDiscovered`.
    fn apply(&mut self, fact: &AccountFact, nickname: &str) -> Result<(), StoreError> {
        let at = || timestamp(fact.at);
        match &fact.event {
            AccountEvent::AccountDiscovered {
                organization_id,
                name,
                email,
                state,
                org_path,
            } => {
                // An adopted standalone account keeps its first sighting and manual badges;
                // a listing starts without tags.
                let first_seen = self.account.take().map_or_else(at, |row| row.first_seen);
                let path = serde_json::to_string(org_path)?;
                self.account = Some(AccountRow {
                    organization_id: Some(organization_id.to_string()),
                    name: name.clone(),
                    email: Some(email.clone()),
                    state: Some(state.as_str().to_owned()),
                    org_path: path,
                    ..AccountRow::unchecked(first_seen)
                });
                self.tags.clear();
                self.badge(badges::ORGANIZATION, organization_id.as_str(), false);
                self.badge(badges::ORGANIZATION_NAME, nickname, false);
                self.badge("cloud_org_path", &org_path_badge(org_path), false);
            }
            AccountEvent::StandaloneAccountAdded { name, credentials } => {
                self.account = Some(AccountRow {
                    name: name.clone(),
                    credentials: Some(credentials.as_str().to_owned()),
                    ..AccountRow::unchecked(at())
                });
            }
            leaving if leaving.ends_listing() => *self = Self::default(),
            AccountEvent::AccountAccessChanged { access } => {
                let warnings = serde_json::to_string(&access.warnings)?;
                if let Some(row) = &mut self.account {
                    row.access_status = access.status.as_str().to_owned();
                    row.access_message = access.message.clone();
                    row.access_warnings = warnings;
                    row.access_permissions_checked = access.permissions_checked;
                }
            }
            AccountEvent::AccountRenamed { name } => self.update(|row| row.name = name.clone()),
            AccountEvent::AccountEmailChanged { email } => {
                self.update(|row| row.email = Some(email.clone()))
            }
            AccountEvent::AccountMoved { org_path } => {
                let path = serde_json::to_string(org_path)?;
                self.update(|row| row.org_path = path);
                self.badge("cloud_org_path", &org_path_badge(org_path), false);
            }
            AccountEvent::AccountStateChanged { state } => {
                self.update(|row| row.state = Some(state.as_str().to_owned()))
            }
            AccountEvent::AccountCredentialsReplaced { credentials } => {
                self.update(|row| row.credentials = Some(credentials.as_str().to_owned()))
            }
            AccountEvent::AccountAdopted { .. } => self.update(|row| row.credentials = None),
            AccountEvent::AccountTagsChanged {
                set,
                removed,
                auto_badge,
            } => {
                for key in removed {
                    self.tags.remove(key);
                    if *auto_badge && !is_reserved_badge(key) {
                        if let Some((_, true)) = self.badges.get(key) {
                            self.badges.remove(key);
                        }
                    }
                }
                for (key, value) in set {
                    self.tags.insert(key.clone(), value.clone());
                    if *auto_badge && !is_reserved_badge(key) {
                        self.badge(key, value, true);
                    }
                }
            }
            AccountEvent::ManualBadgeAdded { key, value } => self.badge(key, value, false),
            AccountEvent::ManualBadgeRemoved { key } => {
                if let Some((_, false)) = self.badges.get(key) {
                    self.badges.remove(key);
                }
            }
            // Every event that ends the listing was matched above.
            AccountEvent::AccountLeftOrganization { .. }
            | AccountEvent::AccountRemoved { .. }
            | AccountEvent::AccountDeleted => unreachable!("ends the listing"),
        }
        Ok(())
    }

    /// Changes the account's row, when it has one.
    fn update(&mut self, change: impl FnOnce(&mut AccountRow)) {
        if let Some(row) = &mut self.account {
            change(row);
        }
    }

    fn change_badges(&mut self, change: &BadgeChange) {
        match change {
            BadgeChange::Rename(nickname) => {
                if let Some((value, _)) = self.badges.get_mut(badges::ORGANIZATION_NAME) {
                    *value = (*nickname).to_owned();
                }
            }
            BadgeChange::DropTagBadges => self.badges.retain(|_, (_, tag)| !*tag),
            BadgeChange::MakeTagBadges => {
                for (key, value) in self.tags.iter().filter(|(k, _)| !is_reserved_badge(k)) {
                    self.badges.insert(key.clone(), (value.clone(), true));
                }
            }
        }
    }

    fn badge(&mut self, key: &str, value: &str, autogenerated: bool) {
        self.badges
            .insert(key.to_owned(), (value.to_owned(), autogenerated));
    }
}

/// How an organization's event changes the badges of each of its accounts.
enum BadgeChange<'a> {
    /// The organization's name badge follows its new nickname (R9).
    Rename(&'a str),
    /// `auto_badge` was turned off: tag badges go (R10).
    DropTagBadges,
    /// `auto_badge` was turned on: every tag becomes a badge, replacing a manual one (R10).
    MakeTagBadges,
}

/// Applies a run of account events: reads the rows of the accounts they touch, applies the
/// events in memory in order, and writes those accounts' rows back.
pub(super) async fn apply_run(
    conn: &mut AnyConnection,
    run: &[AccountFact],
) -> Result<(), StoreError> {
    changes_of(conn, run).await?.write(conn).await
}

/// What a run of account events changes in the read tables, made from the rows of the
/// accounts they touch as `conn` reads them: statements to run where those rows still hold.
pub(super) async fn changes_of(
    conn: &mut AnyConnection,
    run: &[AccountFact],
) -> Result<Changes, StoreError> {
    let ids = touched(run);
    let mut rows = load(conn, &ids).await?;
    let stored = stored_badges(&rows);
    let mut nicknames: HashMap<String, String> = HashMap::new();
    for fact in run {
        let nickname = match &fact.event {
            AccountEvent::AccountDiscovered {
                organization_id, ..
            } => match nicknames.get(organization_id.as_str()) {
                Some(nickname) => nickname.clone(),
                None => {
                    let nickname: String =
                        sqlx::query("SELECT nickname FROM organizations WHERE id = $1")
                            .bind(organization_id.as_str())
                            .fetch_one(&mut *conn)
                            .await?
                            .try_get("nickname")?;
                    nicknames.insert(organization_id.to_string(), nickname.clone());
                    nickname
                }
            },
            _ => String::new(),
        };
        rows.entry(fact.account_id.clone())
            .or_default()
            .apply(fact, &nickname)?;
    }
    changes(Dialect::of(conn), &stored, &ids, &rows)
}

/// The accounts `run` touches, each once, in order.
pub(super) fn touched(run: &[AccountFact]) -> Vec<&str> {
    let mut ids: Vec<&str> = run.iter().map(|fact| fact.account_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Applies an organization's event to its accounts' badges: the organization's name badge
/// follows its nickname (R9), and turning `auto_badge` on or off makes or drops tag badges
/// (R10). Runs before the `organizations` row changes, so the filters read here are the ones
/// before the event.
pub(super) async fn apply_organization(
    conn: &mut AnyConnection,
    stored: &StoredEvent,
    event: &OrganizationEvent,
) -> Result<(), StoreError> {
    let org = stored.aggregate_id.as_str();
    let change = match event {
        OrganizationEvent::OrganizationRenamed { nickname } => BadgeChange::Rename(nickname),
        OrganizationEvent::FiltersChanged { filters } => {
            let before: String = sqlx::query("SELECT filters FROM organizations WHERE id = $1")
                .bind(org)
                .fetch_one(&mut *conn)
                .await?
                .try_get("filters")?;
            let before: Filters = serde_json::from_str(&before)?;
            match (before.auto_badge, filters.auto_badge) {
                (true, false) => BadgeChange::DropTagBadges,
                (false, true) => BadgeChange::MakeTagBadges,
                _ => return Ok(()),
            }
        }
        _ => return Ok(()),
    };
    let accounts: Vec<String> =
        sqlx::query("SELECT account_id FROM accounts WHERE organization_id = $1")
            .bind(org)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| row.try_get("account_id"))
            .collect::<Result<_, _>>()?;
    let ids: Vec<&str> = accounts.iter().map(String::as_str).collect();
    let mut rows = load(conn, &ids).await?;
    let stored = stored_badges(&rows);
    rows.values_mut()
        .for_each(|rows| rows.change_badges(&change));
    changes(Dialect::of(conn), &stored, &ids, &rows)?
        .write(conn)
        .await
}

/// The badges that `loaded` rows hold in the `badges` table, by account: what [`changes`]
/// replaces.
fn stored_badges(loaded: &HashMap<String, Rows>) -> HashMap<String, Badges> {
    loaded
        .iter()
        .map(|(id, rows)| (id.clone(), rows.badges.clone()))
        .collect()
}

/// The rows of `ids` as stored now; accounts without a row are absent.
async fn load(conn: &mut AnyConnection, ids: &[&str]) -> Result<HashMap<String, Rows>, StoreError> {
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
            let account = AccountRow {
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
                tags: serde_json::from_str(&tags)?,
                badges: serde_json::from_str(&badges)?,
            };
            Ok((row.try_get("account_id")?, rows))
        })
        .collect()
}

/// The badges of `badges` that are rows of the `badges` table.
fn searched(badges: &Badges) -> impl Iterator<Item = (&String, &(String, bool))> {
    badges.iter().filter(|(key, _)| searched_by_row(key))
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
fn changes(
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
            Some(rows) if rows.account.is_some() => &rows.badges,
            _ => &none,
        };
        gone.extend(
            searched(before)
                .filter(|(key, badge)| after.get(*key) != Some(badge))
                .map(|(key, (value, _))| (*id, key, value)),
        );
        new.extend(
            searched(after)
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
    let listed: Vec<(&str, &AccountRow, &Rows)> = ids
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
                .bind(serde_json::to_string(&rows.tags)?)?
                .bind(serde_json::to_string(&rows.badges)?)?;
        }
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
