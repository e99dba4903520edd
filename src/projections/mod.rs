//! Projections: the read tables, built from the event log by one projector that remembers how
//! far it got in `projection_checkpoint` (whose statements are all in this file; each read
//! table's are in its own). Each batch of events and the new checkpoint commit
//! in one transaction, so a crash between an append and its projection leaves nothing behind
//! for good: the next catch-up applies what is missing (I2), and a rebuild from position 0
//! gives the same rows as the incremental updates (I1).
//!
//! A harvest's bulk appends are applied in their own transaction, from the events in memory,
//! when the read tables are right behind them ([`Projector::commit_appended`]): the same
//! functions make the same rows, without reading back what was just written. Those rows are
//! made ahead ([`Prepared`]), while the previous transaction writes, and written only if
//! nothing touched their accounts or organizations meanwhile.

pub mod accounts;
mod listing;
pub mod organizations;

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Deserialize;
use sqlx::{Any, AnyConnection, Row, Transaction};
use tokio::sync::{watch, Mutex};

use crate::domain::account::{Account, AccountEvent};
use crate::domain::organization::{Organization, OrganizationEvent};
use crate::store::{Appended, Dialect, Store, StoreError, StoredEvent};

use accounts::{AccountQuery, AccountRow};

/// Events read and applied at once: a harvest's worth of a large organization in a few
/// batches, each a handful of multi-row statements.
const BATCH: i64 = 5_000;

/// Events applied since PostgreSQL's statistics were last refreshed from which they count as
/// stale (a harvest of a few thousand new accounts): the next catch-up refreshes them.
const BULK: usize = 10_000;

/// An account event as the read tables apply it.
#[derive(Debug, Clone)]
pub struct AccountFact {
    /// The account.
    pub account_id: String,
    /// When the event was appended.
    pub at: DateTime<Utc>,
    /// What happened.
    pub event: AccountEvent,
}

/// Applies new events of the log to the read tables.
pub struct Projector {
    store: Store,
    // The position applied last, for whoever waits on new events (subscriptions).
    positions: watch::Sender<i64>,
    // One catch-up at a time in this process; the checkpoint row guards across processes.
    running: Mutex<()>,
    // Events applied since the statistics were last refreshed.
    unanalyzed: AtomicUsize,
}

impl Projector {
    /// A projector over `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            positions: watch::Sender::new(0),
            running: Mutex::new(()),
            unanalyzed: AtomicUsize::new(0),
        }
    }

    /// Applies every event appended since the checkpoint; returns how many it applied.
    pub async fn catch_up(&self) -> Result<usize, StoreError> {
        let _running = self.running.lock().await;
        let mut applied = 0;
        loop {
            let position = self.position().await?;
            let events = self.store.events_after(position, BATCH).await?;
            let Some(last) = events.last() else {
                if self.unanalyzed.load(Ordering::Relaxed) >= BULK {
                    self.refresh_statistics().await?;
                }
                return Ok(applied);
            };
            if failed_before_apply() {
                return Err(StoreError::Malformed(
                    "fail point projector-before-apply".into(),
                ));
            }
            let mut tx = self.store.pool().begin().await?;
            // Claiming the batch first takes the write lock (and, on PostgreSQL, the row lock)
            // before anything is read in this transaction; another instance that got there
            // first leaves nothing to claim.
            let claimed = sqlx::query(
                "UPDATE projection_checkpoint SET position = $1 \
                 WHERE name = 'read_model' AND position = $2",
            )
            .bind(last.seq)
            .bind(position)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                continue;
            }
            apply(&mut tx, &events).await?;
            self.store.commit_change(tx).await?;
            self.advanced(last.seq, events.len());
            applied += events.len();
        }
    }

    /// Commits `tx`, in which the events `prepared` applies were just appended at the
    /// positions `appended`. When the read tables have applied every event before those and
    /// none of them touched `prepared`'s accounts or organizations since it read them, its
    /// changes are written in `tx` too and the checkpoint moves past the appended events;
    /// otherwise those are left to the next catch-up.
    pub async fn commit_appended(
        &self,
        mut tx: Transaction<'_, Any>,
        appended: Appended,
        prepared: Prepared,
    ) -> Result<(), StoreError> {
        // A projector that failed before applying leaves the appends to catch-up (I2).
        if failed_before_apply() {
            tx.commit().await?;
            return Ok(());
        }
        let claimed = sqlx::query(&format!(
            "UPDATE projection_checkpoint SET position = $1 WHERE name = 'read_model' \
             AND position = (SELECT COALESCE(MAX(seq), 0) FROM events WHERE seq < $2) \
             AND NOT EXISTS (SELECT 1 FROM events WHERE seq > $3 AND seq < $2 \
                 AND (aggregate_type <> $4 OR aggregate_id IN ({})))",
            Dialect::of(&tx).elements_of(5)
        ))
        .bind(appended.last)
        .bind(appended.first)
        .bind(prepared.position)
        .bind(Account::TYPE)
        .bind(&prepared.accounts)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            tx.commit().await?;
            return Ok(());
        }
        prepared.changes.write(&mut tx).await?;
        self.store.commit_change(tx).await?;
        self.advanced(appended.last, prepared.events);
        Ok(())
    }

    /// Counts `applied` events, the last at `position`, and tells whoever waits on new events.
    fn advanced(&self, position: i64, applied: usize) {
        self.unanalyzed.fetch_add(applied, Ordering::Relaxed);
        self.positions.send_if_modified(|newest| {
            let later = position > *newest;
            *newest = (*newest).max(position);
            later
        });
    }

    /// Changes whenever this projector applies new events.
    pub fn positions(&self) -> watch::Receiver<i64> {
        self.positions.subscribe()
    }

    /// Empties the read tables and replays the whole log into them, in one transaction.
    pub async fn rebuild(&self) -> Result<usize, StoreError> {
        let _running = self.running.lock().await;
        let mut tx = self.store.pool().begin().await?;
        sqlx::query("UPDATE projection_checkpoint SET position = 0 WHERE name = 'read_model'")
            .execute(&mut *tx)
            .await?;
        accounts::clear(&mut tx).await?;
        organizations::clear(&mut tx).await?;
        let mut position = 0;
        let mut applied = 0;
        loop {
            let events = self.store.events_after(position, BATCH).await?;
            let Some(last) = events.last() else { break };
            position = last.seq;
            apply(&mut tx, &events).await?;
            applied += events.len();
        }
        sqlx::query("UPDATE projection_checkpoint SET position = $1 WHERE name = 'read_model'")
            .bind(position)
            .execute(&mut *tx)
            .await?;
        self.store.commit_change(tx).await?;
        self.refresh_statistics().await?;
        Ok(applied)
    }

    /// After a bulk change, brings PostgreSQL's statistics of the account tables up to date.
    async fn refresh_statistics(&self) -> Result<(), StoreError> {
        if self.store.dialect() == Dialect::Postgres {
            accounts::analyze(self.store.pool()).await?;
        }
        self.unanalyzed.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// The position of the last event applied.
    pub async fn position(&self) -> Result<i64, StoreError> {
        position(&mut *self.store.pool().acquire().await?).await
    }
}

/// The position of the last event the read tables applied, as `conn` reads it.
async fn position(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    Ok(
        sqlx::query("SELECT position FROM projection_checkpoint WHERE name = 'read_model'")
            .fetch_one(conn)
            .await?
            .try_get("position")?,
    )
}

/// Account events applied to the read tables ahead of their append, away from its
/// transaction: the rows they write, made from the read tables as they stood once every
/// event up to `position` was applied ([`Projector::commit_appended`] checks that nothing
/// changed those rows since).
pub struct Prepared {
    position: i64,
    // The accounts the events touch, as a JSON list.
    accounts: String,
    changes: accounts::Changes,
    events: usize,
}

impl Prepared {
    /// Reads the rows `facts` change from `store` and applies `facts` to them in memory.
    pub async fn new(store: &Store, facts: &[AccountFact]) -> Result<Self, StoreError> {
        let mut conn = store.pool().acquire().await?;
        // Read before the rows: rows read later are as new or newer, and whatever made them
        // newer lies after this position, where the commit looks.
        let position = position(&mut conn).await?;
        let changes = listing::changes_of(&mut conn, facts).await?;
        Ok(Self {
            position,
            accounts: serde_json::to_string(&listing::touched(facts))?,
            changes,
            events: facts.len(),
        })
    }
}

/// Whether the fail point `projector-before-apply` stands for a projector failing before it
/// applies anything (tests of I2); always false unless fail points are compiled in.
fn failed_before_apply() -> bool {
    fail::fail_point!("projector-before-apply", |_| true);
    false
}

/// Accounts whose histories a listing at a past instant replays at once, at the least.
const PAST_BATCH: i64 = 200;

/// The page `query` asks for of the listing as it was at `until`, made in a transaction on
/// `scratch`'s empty read tables, rolled back once read, from the histories of the accounts
/// it may hold alone: the organizations' whole
/// histories (a handful of streams), then the accounts the listing ever held, in the page's
/// order, a batch at a time, until the page is full. Each history is cut at its first event
/// after `until`. What it costs follows the page and the histories on it, not the log.
pub async fn listing_as_of(
    source: &Store,
    scratch: &Store,
    query: &AccountQuery,
    until: DateTime<Utc>,
) -> Result<Vec<AccountRow>, StoreError> {
    let until_then = |events: Vec<StoredEvent>| {
        let mut cut: Option<String> = None;
        let mut kept = events;
        kept.retain(|event| {
            if cut.as_deref() == Some(event.aggregate_id.as_str()) {
                return false;
            }
            if event.metadata.at > until {
                cut = Some(event.aggregate_id.clone());
                return false;
            }
            true
        });
        kept
    };
    let mut tx = scratch.pool().begin().await?;
    let organizations = organizations::ever_registered(source.pool()).await?;
    let ids: Vec<&str> = organizations.iter().map(String::as_str).collect();
    let events = source.events_of_each(Organization::TYPE, &ids).await?;
    apply(&mut tx, &until_then(events)).await?;
    let batch = PAST_BATCH.max(query.limit + 1);
    let mut after = query.after.as_ref().map(|id| id.as_str().to_owned());
    loop {
        let candidates = accounts::ever_listed(source.pool(), after.as_deref(), batch).await?;
        let ids: Vec<&str> = candidates.iter().map(String::as_str).collect();
        let events = source.events_of_each(Account::TYPE, &ids).await?;
        apply(&mut tx, &until_then(events)).await?;
        drop(ids);
        let page = accounts::list(&mut *tx, query).await?;
        let exhausted = i64::try_from(candidates.len()).unwrap_or(i64::MAX) < batch;
        if exhausted || i64::try_from(page.len()).unwrap_or(i64::MAX) >= query.limit {
            tx.rollback().await?;
            return Ok(page);
        }
        after = candidates.last().cloned();
    }
}

/// Applies `events` in order: runs of account events through [`listing`], each
/// organization event on its own. Organization events change only the `organizations` row:
/// what they mean for accounts arrives as account events, or is added as accounts are read.
async fn apply(conn: &mut AnyConnection, events: &[StoredEvent]) -> Result<(), StoreError> {
    let mut run: Vec<AccountFact> = Vec::new();
    for event in events {
        match event.aggregate_type.as_str() {
            Account::TYPE => run.push(AccountFact {
                account_id: event.aggregate_id.clone(),
                at: event.metadata.at,
                event: AccountEvent::deserialize(&event.payload)?,
            }),
            Organization::TYPE => {
                listing::apply_run(conn, &run).await?;
                run.clear();
                let payload = OrganizationEvent::deserialize(&event.payload)?;
                organizations::apply(conn, event, payload).await?;
            }
            other => {
                return Err(StoreError::Malformed(format!(
                    "unknown aggregate type {other:?}"
                )))
            }
        }
    }
    listing::apply_run(conn, &run).await
}
