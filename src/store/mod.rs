//! The store: the event log and the read tables, on SQLite (the embedded default) or
//! PostgreSQL, chosen by `store.url`.
//!
//! Appends go through cqrs-es's [`PersistedEventRepository`]: postgres-es on PostgreSQL and
//! [`SqliteEventRepository`] on SQLite. Everything else (projections, queries, tokens) is
//! written once in SQL both dialects accept, on an [`AnyPool`]; JSON and timestamps are kept
//! as text so both read them alike.

mod postgres;
mod reseal;
mod sqlite;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use cqrs_es::persist::{
    PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream, SerializedEvent,
    SerializedSnapshot,
};
use cqrs_es::Aggregate;
use serde::Deserialize;
use serde_json::Value;
use sqlx::any::AnyPoolOptions;
use sqlx::postgres::PgListener;
use sqlx::{AnyConnection, AnyPool, Row};

pub use reseal::{reseal, ResealError};
pub use sqlite::SqliteEventRepository;

use crate::domain::{Actor, OrgId};
use sha2::{Digest, Sha256};

/// A failure of the store itself, never of the caller's input.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no or could not be reached.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back.
    #[error("stored value is malformed: {0}")]
    Malformed(String),
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Malformed(e.to_string())
    }
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite, one file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The event repository behind cqrs-es for the configured database.
pub enum EventRepository {
    /// SQLite, on the shared pool.
    Sqlite(SqliteEventRepository),
    /// PostgreSQL, through postgres-es.
    Postgres(postgres_es::PostgresEventRepository),
}

/// The event log and the read tables.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    pg: Option<sqlx::PgPool>,
    // Changes to what the API reads, as far as this instance knows: see [`Store::version`].
    version: Arc<AtomicU64>,
}

/// The PostgreSQL channel on which instances sharing a store announce changes to what the
/// API reads.
const CHANGES_CHANNEL: &str = "orgsync_changes";

impl Store {
    /// Connects to `url`, creating an SQLite file when it is absent. Applies no migration.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            Dialect::Postgres
        };
        let pg = match dialect {
            Dialect::Sqlite => {
                sqlite::create_if_missing(url).await?;
                None
            }
            Dialect::Postgres => Some(postgres::connect(url, max_connections).await?),
        };
        let setting = match dialect {
            // A multi-row INSERT keeps a statement journal, the pages it changes, so that it
            // alone can be undone if it fails; kept in memory rather than in a temporary file,
            // which took about 7 % of SQLite's thread in a harvest.
            Dialect::Sqlite => "PRAGMA temp_store = MEMORY",
            // Statements are prepared once and run with ever new lists of ids; a generic plan
            // made before a table had statistics can scan the whole log for each (seconds
            // instead of milliseconds at 100,000 accounts), so every execution is planned for
            // its own values.
            Dialect::Postgres => "SET plan_cache_mode = force_custom_plan",
        };
        let options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .after_connect(move |conn, _| {
                Box::pin(async move { sqlx::query(setting).execute(conn).await.map(|_| ()) })
            });
        let pool = options.connect(url).await?;
        Ok(Self {
            pool,
            dialect,
            pg,
            version: Arc::default(),
        })
    }

    /// Applies the migrations of this dialect that are not applied yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pg {
            Some(pg) => postgres::migrate(pg).await,
            None => sqlite::migrate(&self.pool).await,
        }
    }

    /// Counts the changes to what the API reads (the read tables and the harvest runs) that
    /// this instance knows of: its own, and on PostgreSQL the other instances' as they
    /// announce them. What was read at one count is still true while the count stays.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Commits `tx`, which changed what the API reads: announces the change to the other
    /// instances sharing the store within it, and counts it here once committed, so that no
    /// one is told of a change before it can be read.
    pub(crate) async fn commit_change(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Any>,
    ) -> Result<(), StoreError> {
        if self.dialect == Dialect::Postgres {
            sqlx::query(&format!("NOTIFY {CHANGES_CHANNEL}"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.changed();
        Ok(())
    }

    /// Counts a change to what the API reads.
    fn changed(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts the changes other instances announce, until the store closes, on one of the
    /// PostgreSQL pool's connections; returns at once on SQLite, which one instance owns. A
    /// lost connection counts as a change, since announcements made meanwhile are lost.
    pub async fn follow_changes(&self) {
        let Some(pg) = &self.pg else { return };
        let mut listener = loop {
            match PgListener::connect_with(pg).await {
                Ok(mut listener) => match listener.listen(CHANGES_CHANNEL).await {
                    Ok(()) => break listener,
                    Err(e) => tracing::warn!(error = %e, "cannot listen for changes"),
                },
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => tracing::warn!(error = %e, "cannot listen for changes"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        };
        loop {
            match listener.try_recv().await {
                Ok(_) => self.changed(),
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "lost the change announcements; reconnecting");
                    self.changed();
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// The pool every query but appends runs on.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A cqrs-es event store for aggregate `A`, in plain event-store mode (no snapshots).
    pub fn event_store<A: Aggregate>(&self) -> PersistedEventStore<EventRepository, A> {
        let repo = match &self.pg {
            Some(pg) => {
                EventRepository::Postgres(postgres_es::PostgresEventRepository::new(pg.clone()))
            }
            None => EventRepository::Sqlite(SqliteEventRepository::new(self.pool.clone())),
        };
        PersistedEventStore::new_event_store(repo)
    }

    /// Up to `limit` events with a global position after `after`, in order.
    pub async fn events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT_EVENTS} WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(StoredEvent::from_row).collect()
    }

    /// Every event of one aggregate, oldest first.
    pub async fn events_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT_EVENTS} WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence"
        ))
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(StoredEvent::from_row).collect()
    }

    /// The payloads of every event of the `aggregate_type` aggregates `ids`, by aggregate,
    /// oldest first; aggregates without events are absent.
    pub async fn histories(
        &self,
        aggregate_type: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, Vec<String>>, StoreError> {
        let mut histories: HashMap<String, Vec<String>> = HashMap::new();
        let sql = format!(
            "SELECT aggregate_id, CAST(payload AS TEXT) AS payload FROM events \
             WHERE aggregate_type = $1 AND aggregate_id IN ({}) \
             ORDER BY aggregate_id, sequence",
            self.dialect.elements_of(2)
        );
        let rows = sqlx::query(&sql)
            .bind(aggregate_type)
            .bind(serde_json::to_string(ids)?)
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            histories
                .entry(row.try_get("aggregate_id")?)
                .or_default()
                .push(row.try_get("payload")?);
        }
        Ok(histories)
    }

    /// Appends `events` (at least one) of `aggregate_type` aggregates, each with `metadata`,
    /// within `tx`, in a few multi-row statements; answers the positions they took. Answers
    /// `None` when another writer took one of their positions first (I4): the caller must then
    /// roll `tx` back.
    ///
    /// Only the first and last positions come back, not a row per event: SQLite's writer
    /// holds the database, so the rows of one transaction take consecutive positions ending
    /// at the last rowid (`seq` is AUTOINCREMENT: never reused); PostgreSQL's sequence can skip
    /// values (a rolled-back append burns its own), so its statement answers its smallest
    /// and largest.
    pub async fn append(
        &self,
        tx: &mut AnyConnection,
        aggregate_type: &str,
        events: &[NewEvent],
        metadata: &Metadata,
    ) -> Result<Option<Appended>, StoreError> {
        let metadata = serde_json::to_string(&metadata.fields())?;
        // PostgreSQL keeps payloads as JSON (postgres-es's layout); SQLite as text.
        let json = match self.dialect {
            Dialect::Sqlite => "{}",
            Dialect::Postgres => "CAST({} AS JSON)",
        };
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for chunk in events.chunks(1000) {
            let insert = format!(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                 event_version, payload, metadata) VALUES {}",
                self.dialect
                    .row_placeholders(chunk.len(), &["{}", "{}", "{}", "{}", "{}", json, json])
            );
            let sql = match self.dialect {
                Dialect::Sqlite => insert,
                Dialect::Postgres => format!(
                    "WITH appended AS ({insert} RETURNING seq) \
                     SELECT MIN(seq) AS first, MAX(seq) AS last FROM appended"
                ),
            };
            let mut insert = sqlx::query(&sql);
            for event in chunk {
                insert = insert
                    .bind(aggregate_type)
                    .bind(event.aggregate_id.as_str())
                    .bind(event.sequence)
                    .bind(event.event_type.as_str())
                    .bind(event.event_version.as_str())
                    .bind(event.payload.as_str())
                    .bind(metadata.as_str());
            }
            let inserted = match self.dialect {
                Dialect::Sqlite => insert.execute(&mut *tx).await.map(|_| None),
                Dialect::Postgres => insert.fetch_one(&mut *tx).await.map(Some),
            };
            match inserted {
                Ok(None) => {}
                Ok(Some(row)) => {
                    first = first.min(row.try_get("first")?);
                    last = last.max(row.try_get("last")?);
                }
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        if self.dialect == Dialect::Sqlite {
            last = sqlx::query("SELECT last_insert_rowid() AS last")
                .fetch_one(&mut *tx)
                .await?
                .try_get("last")?;
            first = last + 1
                - i64::try_from(events.len()).map_err(|e| StoreError::Malformed(e.to_string()))?;
        }
        Ok(Some(Appended { first, last }))
    }

    /// A private in-memory SQLite store, migrated, for replaying the log into (time travel).
    pub async fn scratch() -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        // One connection that never closes: an in-memory database lives as long as it.
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect("sqlite::memory:")
            .await?;
        let store = Self {
            pool,
            dialect: Dialect::Sqlite,
            pg: None,
            version: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Tries to become the one instance that schedules harvests. On PostgreSQL that is a
    /// session advisory lock on a connection of its own, held for as long as the returned
    /// [`Leadership`] lives (or the connection does); SQLite has one instance, always leader.
    pub async fn try_lead(&self) -> Result<Option<Leadership>, StoreError> {
        let Some(pg) = &self.pg else {
            return Ok(Some(Leadership::Sole));
        };
        let mut conn = pg.acquire().await?.detach();
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(SCHEDULER_LOCK)
            .fetch_one(&mut conn)
            .await?;
        Ok(held.then_some(Leadership::Postgres(conn)))
    }

    /// Takes the lock that lets one harvest of `org` run at a time across every instance
    /// sharing the store (R5): on PostgreSQL a session advisory lock on a connection of its
    /// own, waited for or only tried; SQLite has one instance, whose own lock suffices.
    pub async fn lock_harvest(
        &self,
        org: &OrgId,
        wait: bool,
    ) -> Result<Option<HarvestLock>, StoreError> {
        let Some(pg) = &self.pg else {
            return Ok(Some(HarvestLock::Local));
        };
        let digest = Sha256::digest(org.as_str().as_bytes());
        let key = i64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        let mut conn = pg.acquire().await?.detach();
        if wait {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(key)
                .execute(&mut conn)
                .await?;
            return Ok(Some(HarvestLock::Postgres(conn)));
        }
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut conn)
            .await?;
        Ok(held.then_some(HarvestLock::Postgres(conn)))
    }

    /// The newest event's position, 0 for an empty log.
    pub async fn last_seq(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COALESCE(MAX(seq), 0) AS n FROM events")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// How many events the log holds.
    pub async fn event_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM events")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(pg) = &self.pg {
            pg.close().await;
        }
    }
}

impl Dialect {
    /// The database behind `conn`.
    pub fn of(conn: &AnyConnection) -> Self {
        match conn.backend_name() {
            "SQLite" => Self::Sqlite,
            _ => Self::Postgres,
        }
    }

    /// `count` rows of placeholders for a multi-row INSERT; `columns` writes each column,
    /// `{}` standing for its placeholder: on PostgreSQL `row_placeholders(2, &["{}",
    /// "CAST({} AS JSON)"])` is `($1, CAST($2 AS JSON)), ($3, CAST($4 AS JSON))`. SQLite gets
    /// plain `?`s: numbered ones are looked up by name, which costs quadratic time in
    /// statements of thousands of values.
    pub fn row_placeholders(self, count: usize, columns: &[&str]) -> String {
        use std::fmt::Write;
        let columns: Vec<(&str, &str)> = columns
            .iter()
            .map(|template| template.split_once("{}").unwrap_or((template, "")))
            .collect();
        let mut sql = String::with_capacity(count * columns.len() * 8);
        let mut n = 0;
        for row in 0..count {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for (column, (before, after)) in columns.iter().enumerate() {
                n += 1;
                if column > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(before);
                match self {
                    Self::Sqlite => sql.push('?'),
                    Self::Postgres => write!(sql, "${n}").expect("writing to a String"),
                }
                sql.push_str(after);
            }
            sql.push(')');
        }
        sql
    }

    /// A subquery of the strings of the JSON array bound at position `n`: a list of any
    /// length as one bound value, which the database plans once (a list of thousands of
    /// placeholders took PostgreSQL tens of milliseconds to plan, each time).
    pub fn elements_of(self, n: usize) -> String {
        match self {
            Self::Sqlite => format!("SELECT value FROM json_each(${n})"),
            Self::Postgres => format!("SELECT json_array_elements_text(CAST(${n} AS JSON))"),
        }
    }
}

const SELECT_EVENTS: &str = "SELECT seq, aggregate_type, aggregate_id, sequence, event_type, \
    CAST(payload AS TEXT) AS payload, CAST(metadata AS TEXT) AS metadata FROM events";

/// The advisory lock key of the scheduler ("orgsync" in ASCII).
const SCHEDULER_LOCK: i64 = 0x006f_7267_7379_6e63;

/// Being the instance that schedules harvests.
pub enum Leadership {
    /// The only instance there can be (SQLite).
    Sole,
    /// The connection holding the advisory lock; closing it hands leadership on.
    Postgres(sqlx::PgConnection),
}

impl Leadership {
    /// Whether the lock is still held: false once its connection broke.
    pub async fn still_held(&mut self) -> bool {
        match self {
            Self::Sole => true,
            Self::Postgres(conn) => sqlx::query("SELECT 1").execute(conn).await.is_ok(),
        }
    }
}

/// Held while a harvest of one organization runs; dropping it (or losing its connection)
/// releases it.
pub enum HarvestLock {
    /// The process's own lock is all there is (SQLite).
    Local,
    /// The connection holding the organization's advisory lock.
    Postgres(sqlx::PgConnection),
}

/// An event on its way into the log.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Its aggregate's id.
    pub aggregate_id: String,
    /// Its position within the aggregate, from 1.
    pub sequence: i64,
    /// Its type name.
    pub event_type: String,
    /// Its type's version.
    pub event_version: String,
    /// Its body, serialized by serde.
    pub payload: String,
}

/// Who caused an event and when, as stored beside it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Metadata {
    /// The actor.
    pub actor: String,
    /// When it was appended.
    pub at: DateTime<Utc>,
}

impl Metadata {
    /// `actor`, now: to the millisecond, as the log keeps it.
    pub fn now(actor: &Actor) -> Self {
        Self {
            actor: actor.as_str().to_owned(),
            at: Utc::now().trunc_subsecs(3),
        }
    }

    /// As cqrs-es stores it beside each event.
    pub fn fields(&self) -> HashMap<String, String> {
        HashMap::from([
            ("actor".to_owned(), self.actor.clone()),
            ("at".to_owned(), timestamp(self.at)),
        ])
    }
}

/// The positions a batch of appended events took in the log. Appends are serialized (SQLite's
/// one writer, PostgreSQL's lock on the log), so no other event lies between `first` and
/// `last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The first event's position.
    pub first: i64,
    /// The last event's position.
    pub last: i64,
}

/// An event as read back from the log.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Its global position.
    pub seq: i64,
    /// `Organization` or `Account`.
    pub aggregate_type: String,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// Its position within the aggregate, from 1.
    pub sequence: i64,
    /// Its type name.
    pub event_type: String,
    /// Its body, as serialized by serde.
    pub payload: Value,
    /// Who and when.
    pub metadata: Metadata,
}

impl StoredEvent {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, StoreError> {
        let payload: String = row.try_get("payload")?;
        let metadata: String = row.try_get("metadata")?;
        Ok(Self {
            seq: row.try_get("seq")?,
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            event_type: row.try_get("event_type")?,
            payload: serde_json::from_str(&payload)?,
            metadata: serde_json::from_str(&metadata)?,
        })
    }
}

/// The one text form of timestamps in the store: RFC 3339, UTC, milliseconds, so that text
/// order is time order.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Reads a timestamp written by [`timestamp`].
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Malformed(format!("timestamp {text:?}: {e}")))
}

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Self::Sqlite(r) => r.get_events::<A>(id).await,
            Self::Postgres(r) => r.get_events::<A>(id).await,
        }
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Self::Sqlite(r) => r.get_last_events::<A>(id, last_sequence).await,
            Self::Postgres(r) => r.get_last_events::<A>(id, last_sequence).await,
        }
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        match self {
            Self::Sqlite(r) => r.get_snapshot::<A>(id).await,
            Self::Postgres(r) => r.get_snapshot::<A>(id).await,
        }
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        match self {
            Self::Sqlite(r) => r.persist::<A>(events, snapshot_update).await,
            Self::Postgres(r) => r.persist::<A>(events, snapshot_update).await,
        }
    }

    async fn stream_events<A: Aggregate>(
        &self,
        id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        match self {
            Self::Sqlite(r) => r.stream_events::<A>(id).await,
            Self::Postgres(r) => r.stream_events::<A>(id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match self {
            Self::Sqlite(r) => r.stream_all_events::<A>().await,
            Self::Postgres(r) => r.stream_all_events::<A>().await,
        }
    }
}
