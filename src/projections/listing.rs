//! What the accounts' events make of the read tables: each account's row in `accounts`, its
//! `resource_tags` (R11) and its `badges` (R9, R10, manual ones), changed in memory by a run
//! of account events and written back once for the run, whatever its length. A harvest of
//! thousands of accounts thus costs a few multi-row statements per thousand accounts rather
//! than a dozen statements per account.

use std::collections::{BTreeMap, HashMap};

use sqlx::{Any, AnyConnection, QueryBuilder, Row};

use crate::domain::account::{is_reserved_badge, AccountEvent};
use crate::store::{timestamp, StoreError, StoredEvent};

use super::accounts::for_accounts;
use super::badges::org_path_badge;

/// One account's rows, as stored (JSON and timestamps as text).
#[derive(Debug, Clone, Default, PartialEq)]
struct Rows {
    account: Option<AccountRow>,
    tags: BTreeMap<String, String>,
    /// By key: value and whether a tag made it.
    badges: BTreeMap<String, (String, bool)>,
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
    fn apply(
        &mut self,
        stored: &StoredEvent,
        event: &AccountEvent,
        nickname: &str,
    ) -> Result<(), StoreError> {
        let at = || timestamp(stored.metadata.at);
        match event {
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
                self.badge("system.cloud_organization", organization_id.as_str(), false);
                self.badge("system.cloud_organization_name", nickname, false);
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

    fn badge(&mut self, key: &str, value: &str, autogenerated: bool) {
        self.badges
            .insert(key.to_owned(), (value.to_owned(), autogenerated));
    }
}

/// Applies a run of account events: reads the rows of the accounts they touch, applies the
/// events in memory in order, and writes those accounts' rows back.
pub(super) async fn apply_run(
    conn: &mut AnyConnection,
    run: &[(&StoredEvent, AccountEvent)],
) -> Result<(), StoreError> {
    let mut ids: Vec<&str> = run.iter().map(|(s, _)| s.aggregate_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut rows = load(conn, &ids).await?;
    let mut nicknames: HashMap<String, String> = HashMap::new();
    for (stored, event) in run {
        let nickname = match event {
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
        rows.entry(stored.aggregate_id.clone())
            .or_default()
            .apply(stored, event, &nickname)?;
    }
    store(conn, &ids, &rows).await
}

/// The rows of `ids` as stored now; accounts without any are absent.
async fn load(
    conn: &mut AnyConnection,
    ids: &[&str],
) -> Result<HashMap<String, Rows>, StoreError> {
    let mut rows: HashMap<String, Rows> = HashMap::new();
    let accounts = for_accounts(
        &mut *conn,
        "SELECT account_id, organization_id, name, email, state, org_path, credentials, \
         access_status, access_message, access_warnings, access_permissions_checked, \
         first_seen FROM accounts WHERE account_id IN ({ids})",
        ids,
    )
    .await?;
    for row in accounts {
        let checked: i64 = row.try_get("access_permissions_checked")?;
        rows.entry(row.try_get("account_id")?).or_default().account = Some(AccountRow {
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
        });
    }
    let tags = for_accounts(
        &mut *conn,
        "SELECT account_id, key, value FROM resource_tags WHERE account_id IN ({ids})",
        ids,
    )
    .await?;
    for row in tags {
        rows.entry(row.try_get("account_id")?)
            .or_default()
            .tags
            .insert(row.try_get("key")?, row.try_get("value")?);
    }
    let badges = for_accounts(
        &mut *conn,
        "SELECT account_id, key, value, autogenerated FROM badges WHERE account_id IN ({ids})",
        ids,
    )
    .await?;
    for row in badges {
        let autogenerated: i64 = row.try_get("autogenerated")?;
        rows.entry(row.try_get("account_id")?)
            .or_default()
            .badges
            .insert(row.try_get("key")?, (row.try_get("value")?, autogenerated != 0));
    }
    Ok(rows)
}

/// Rows to a multi-row statement: at most this many bound values each.
const VALUES_PER_STATEMENT: usize = 12_000;

/// Replaces the stored rows of `ids` with `rows`.
async fn store(
    conn: &mut AnyConnection,
    ids: &[&str],
    rows: &HashMap<String, Rows>,
) -> Result<(), StoreError> {
    for table in ["accounts", "resource_tags", "badges"] {
        for chunk in ids.chunks(VALUES_PER_STATEMENT) {
            let mut delete: QueryBuilder<Any> =
                QueryBuilder::new(format!("DELETE FROM {table} WHERE account_id IN ("));
            let mut list = delete.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            delete.push(")").build().execute(&mut *conn).await?;
        }
    }
    let stored = || ids.iter().filter_map(|id| Some((*id, rows.get(*id)?)));
    let accounts: Vec<_> = stored()
        .filter_map(|(id, r)| Some((id, r.account.as_ref()?)))
        .collect();
    for chunk in accounts.chunks(VALUES_PER_STATEMENT / 12) {
        let mut insert: QueryBuilder<Any> = QueryBuilder::new(
            "INSERT INTO accounts (account_id, organization_id, name, email, state, org_path, \
             credentials, access_status, access_message, access_warnings, \
             access_permissions_checked, first_seen) ",
        );
        insert.push_values(chunk, |mut values, (id, row)| {
            values
                .push_bind(*id)
                .push_bind(row.organization_id.clone())
                .push_bind(row.name.clone())
                .push_bind(row.email.clone())
                .push_bind(row.state.clone())
                .push_bind(row.org_path.clone())
                .push_bind(row.credentials.clone())
                .push_bind(row.access_status.clone())
                .push_bind(row.access_message.clone())
                .push_bind(row.access_warnings.clone())
                .push_bind(i64::from(row.access_permissions_checked))
                .push_bind(row.first_seen.clone());
        });
        insert.build().execute(&mut *conn).await?;
    }
    let tags: Vec<_> = stored()
        .flat_map(|(id, r)| r.tags.iter().map(move |(k, v)| (id, k, v)))
        .collect();
    for chunk in tags.chunks(VALUES_PER_STATEMENT / 3) {
        let mut insert: QueryBuilder<Any> =
            QueryBuilder::new("INSERT INTO resource_tags (account_id, key, value) ");
        insert.push_values(chunk, |mut values, (id, key, value)| {
            values
                .push_bind(*id)
                .push_bind((*key).clone())
                .push_bind((*value).clone());
        });
        insert.build().execute(&mut *conn).await?;
    }
    let badges: Vec<_> = stored()
        .flat_map(|(id, r)| r.badges.iter().map(move |(k, v)| (id, k, v)))
        .collect();
    for chunk in badges.chunks(VALUES_PER_STATEMENT / 4) {
        let mut insert: QueryBuilder<Any> =
            QueryBuilder::new("INSERT INTO badges (account_id, key, value, autogenerated) ");
        insert.push_values(chunk, |mut values, (id, key, (value, autogenerated))| {
            values
                .push_bind(*id)
                .push_bind((*key).clone())
                .push_bind(value.clone())
                .push_bind(i64::from(*autogenerated));
        });
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}
