//! What account events make of the accounts in the read tables: each account's row with its
//! facts, its tags (which the `resource_tags` view lists, R11) and its badges, as the domain's
//! badge rules ([`Labels`]) make them. Only harvests change tags; nothing here is ever written
//! back to AWS, and nothing here reads another table: the organization badges are added where
//! accounts are shown.
//!
//! A run of account events changes the accounts' rows in memory and writes them back once,
//! whatever its length: a harvest of thousands of accounts costs a few multi-row statements per
//! thousand accounts ([`accounts::changes`]).

use sqlx::AnyConnection;

use crate::domain::account::badges::Labels;
use crate::domain::account::AccountEvent;
use crate::store::{timestamp, Dialect, StoreError};

use super::accounts::{self, Changes};
use super::AccountFact;

/// One account's rows, as stored (JSON and timestamps as text). Tags and badges are kept
/// only while the account has its row.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Rows {
    pub(super) account: Option<StoredRow>,
    pub(super) labels: Labels,
}

/// A row of `accounts`, its tags and badges aside.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StoredRow {
    pub(super) organization_id: Option<String>,
    pub(super) name: String,
    pub(super) email: Option<String>,
    pub(super) state: Option<String>,
    pub(super) org_path: String,
    pub(super) credentials: Option<String>,
    pub(super) access_status: String,
    pub(super) access_message: Option<String>,
    pub(super) access_warnings: String,
    pub(super) access_permissions_checked: bool,
    pub(super) first_seen: String,
}

impl StoredRow {
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
    /// Applies one event: the row's facts here, its tags and badges by the domain's rules.
    fn apply(&mut self, fact: &AccountFact) -> Result<(), StoreError> {
        let at = || timestamp(fact.at);
        self.labels.apply(&fact.event);
        match &fact.event {
            AccountEvent::AccountDiscovered(listed) => {
                // An adopted standalone account keeps its first sighting and manual badges;
                // a listing starts without tags.
                let first_seen = self.account.take().map_or_else(at, |row| row.first_seen);
                self.account = Some(StoredRow {
                    organization_id: Some(listed.organization_id.to_string()),
                    name: listed.name.clone(),
                    email: Some(listed.email.clone()),
                    state: Some(listed.state.as_str().to_owned()),
                    org_path: serde_json::to_string(&listed.org_path)?,
                    ..StoredRow::unchecked(first_seen)
                });
            }
            AccountEvent::StandaloneAccountAdded { name, credentials } => {
                self.account = Some(StoredRow {
                    name: name.clone(),
                    credentials: Some(credentials.as_str().to_owned()),
                    ..StoredRow::unchecked(at())
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
            }
            AccountEvent::AccountStateChanged { state } => {
                self.update(|row| row.state = Some(state.as_str().to_owned()))
            }
            AccountEvent::AccountCredentialsReplaced { credentials } => {
                self.update(|row| row.credentials = Some(credentials.as_str().to_owned()))
            }
            AccountEvent::AccountAdopted { .. } => self.update(|row| row.credentials = None),
            // Tags and badges only, applied above.
            AccountEvent::AccountTagsChanged { .. }
            | AccountEvent::AutoBadgeSwitched { .. }
            | AccountEvent::ManualBadgeAdded { .. }
            | AccountEvent::ManualBadgeRemoved { .. } => {}
            // Every event that ends the listing was matched above.
            AccountEvent::AccountLeftOrganization { .. }
            | AccountEvent::AccountRemoved { .. }
            | AccountEvent::AccountDeleted => unreachable!("ends the listing"),
        }
        Ok(())
    }

    /// Changes the account's row, when it has one.
    fn update(&mut self, change: impl FnOnce(&mut StoredRow)) {
        if let Some(row) = &mut self.account {
            change(row);
        }
    }
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
    let mut rows = accounts::load(conn, &ids).await?;
    let stored = accounts::stored_badges(&rows);
    for fact in run {
        rows.entry(fact.account_id.clone())
            .or_default()
            .apply(fact)?;
    }
    accounts::changes(Dialect::of(conn), &stored, &ids, &rows)
}

/// The accounts `run` touches, each once, in order.
pub(super) fn touched(run: &[AccountFact]) -> Vec<&str> {
    let mut ids: Vec<&str> = run.iter().map(|fact| fact.account_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}
