//! The event log, the `events` table: appends (cqrs-es's one at a time, a harvest's in bulk),
//! reads by position and by aggregate, and re-sealing the secrets inside payloads. Every
//! statement on `events` is in this file.
//!
//! Appends go through cqrs-es's [`PersistedEventRepository`]: postgres-es on PostgreSQL and
//! [`SqliteEventRepository`] on SQLite, or in bulk through [`Store::append`].

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use cqrs_es::persist::{
    PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream, SerializedEvent,
    SerializedSnapshot,
};
use cqrs_es::Aggregate;
use serde::Deserialize;
use serde_json::Value;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::crypto::{CryptoError, KeyRing, Sealed};
use crate::domain::Actor;

use super::{timestamp, Dialect, Store, StoreError};
#[cfg(feature = "kurrentdb")]
use super::{KurrentEventRepository, KurrentLog};

/// The event repository behind cqrs-es for the configured database.
pub enum EventRepository {
    /// SQLite, on the shared pool.
    Sqlite(SqliteEventRepository),
    /// PostgreSQL, through postgres-es.
    Postgres(postgres_es::PostgresEventRepository),
    /// KurrentDB, one stream per aggregate.
    #[cfg(feature = "kurrentdb")]
    Kurrent(KurrentEventRepository),
}

impl Store {
    /// A cqrs-es event store for aggregate `A`, in plain event-store mode (no snapshots).
    pub fn event_store<A: Aggregate>(&self) -> PersistedEventStore<EventRepository, A> {
        #[cfg(feature = "kurrentdb")]
        if let Some(log) = &self.kurrent {
            let repo = EventRepository::Kurrent(KurrentEventRepository::new(log.clone()));
            return PersistedEventStore::new_event_store(repo);
        }
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
        #[cfg(feature = "kurrentdb")]
        if let Some(log) = &self.kurrent {
            return log.events_after(after, limit).await;
        }
        let rows = sqlx::query(&format!(
            "{SELECT_EVENTS} WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(StoredEvent::from_row).collect()
    }

    /// Up to `limit` events of one aggregate after its `after`th (its sequence), oldest first.
    pub async fn events_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        #[cfg(feature = "kurrentdb")]
        if let Some(log) = &self.kurrent {
            return log
                .events_of(aggregate_type, aggregate_id, after, limit)
                .await;
        }
        let rows = sqlx::query(&format!(
            "{SELECT_EVENTS} WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 \
             ORDER BY sequence LIMIT $4"
        ))
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(StoredEvent::from_row).collect()
    }

    /// Every event of the `aggregate_type` aggregates `ids`, by aggregate id, each
    /// aggregate's oldest first.
    pub async fn events_of_each(
        &self,
        aggregate_type: &str,
        ids: &[&str],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        #[cfg(feature = "kurrentdb")]
        if let Some(log) = &self.kurrent {
            return log.events_of_each(aggregate_type, ids).await;
        }
        let rows = self
            .rows_of_each(SELECT_EVENTS, aggregate_type, ids)
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
        #[cfg(feature = "kurrentdb")]
        if let Some(log) = &self.kurrent {
            return log.histories(aggregate_type, ids).await;
        }
        let mut histories: HashMap<String, Vec<String>> = HashMap::new();
        let select = "SELECT aggregate_id, CAST(payload AS TEXT) AS payload FROM events";
        let rows = self.rows_of_each(select, aggregate_type, ids).await?;
        for row in rows {
            histories
                .entry(row.try_get("aggregate_id")?)
                .or_default()
                .push(row.try_get("payload")?);
        }
        Ok(histories)
    }

    /// The rows `select` reads of the events of the `aggregate_type` aggregates `ids`, by
    /// aggregate id, each aggregate's oldest first.
    async fn rows_of_each(
        &self,
        select: &str,
        aggregate_type: &str,
        ids: &[&str],
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        let sql = format!(
            "{select} WHERE aggregate_type = $1 AND aggregate_id IN ({}) \
             ORDER BY aggregate_id, sequence",
            self.dialect.elements_of(2)
        );
        Ok(sqlx::query(&sql)
            .bind(aggregate_type)
            .bind(serde_json::to_string(ids)?)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The event log in KurrentDB, when it is there rather than in the `events` table beside
    /// the read tables, where [`Self::append`] writes.
    #[cfg(feature = "kurrentdb")]
    pub fn kurrent(&self) -> Option<&KurrentLog> {
        self.kurrent.as_ref()
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

    /// The newest event's position, 0 for an empty log.
    pub async fn last_seq(&self) -> Result<i64, StoreError> {
        #[cfg(feature = "kurrentdb")]
        if let Some(log) = &self.kurrent {
            return log.last_position().await;
        }
        Ok(sqlx::query("SELECT COALESCE(MAX(seq), 0) AS n FROM events")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// How many events the log holds.
    pub async fn event_count(&self) -> Result<i64, StoreError> {
        #[cfg(feature = "kurrentdb")]
        if let Some(log) = &self.kurrent {
            return log.count().await;
        }
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM events")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// Whether the events are in the `events` table beside the read tables, so that appends
    /// and the rows they make commit in one transaction and re-sealing rewrites them in
    /// place; KurrentDB's are immutable and stay sealed under the keys that sealed them,
    /// which the key ring must then keep.
    pub fn events_beside_read_tables(&self) -> bool {
        #[cfg(feature = "kurrentdb")]
        if self.kurrent.is_some() {
            return false;
        }
        true
    }

    /// Re-seals every sealed value inside event payloads under the key ring's current key;
    /// returns how many events it rewrote. Events are rewritten in place: their meaning is
    /// unchanged, only the ciphertext.
    pub(super) async fn reseal_events(&self, keys: &KeyRing) -> Result<u64, super::ResealError> {
        if !self.events_beside_read_tables() {
            return Ok(0);
        }
        let mut rewritten = 0;
        let rows = sqlx::query(
            "SELECT seq, CAST(payload AS TEXT) AS payload FROM events \
         WHERE CAST(payload AS TEXT) LIKE '%siv1:%' ORDER BY seq",
        )
        .fetch_all(self.pool())
        .await?;
        let update = match self.dialect() {
            Dialect::Sqlite => "UPDATE events SET payload = $1 WHERE seq = $2",
            Dialect::Postgres => "UPDATE events SET payload = CAST($1 AS JSON) WHERE seq = $2",
        };
        for row in rows {
            let seq: i64 = row.try_get("seq")?;
            let text: String = row.try_get("payload")?;
            let mut payload: Value = serde_json::from_str(&text).map_err(StoreError::from)?;
            if reseal_json(&mut payload, keys)? {
                sqlx::query(update)
                    .bind(payload.to_string())
                    .bind(seq)
                    .execute(self.pool())
                    .await?;
                rewritten += 1;
            }
        }
        Ok(rewritten)
    }
}

const SELECT_EVENTS: &str = "SELECT seq, aggregate_type, aggregate_id, sequence, event_type, \
    CAST(payload AS TEXT) AS payload, CAST(metadata AS TEXT) AS metadata FROM events";

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
    /// For an AWS call (R16), CloudTrail's id of it.
    #[serde(default)]
    pub cloudtrail_event_id: Option<String>,
    /// For an AWS call, the ARN of who made it, when CloudTrail names one.
    #[serde(default)]
    pub caller_arn: Option<String>,
}

impl Metadata {
    /// `actor`, now: to the millisecond, as the log keeps it.
    pub fn now(actor: &Actor) -> Self {
        Self {
            actor: actor.as_str().to_owned(),
            at: Utc::now().trunc_subsecs(3),
            cloudtrail_event_id: actor.trail().map(|t| t.event_id.clone()),
            caller_arn: actor.trail().and_then(|t| t.caller_arn.clone()),
        }
    }

    /// As cqrs-es stores it beside each event.
    pub fn fields(&self) -> HashMap<String, String> {
        let mut fields = HashMap::from([
            ("actor".to_owned(), self.actor.clone()),
            ("at".to_owned(), timestamp(self.at)),
        ]);
        let trail = [
            ("cloudtrail_event_id", &self.cloudtrail_event_id),
            ("caller_arn", &self.caller_arn),
        ];
        for (key, value) in trail {
            if let Some(value) = value {
                fields.insert(key.to_owned(), value.clone());
            }
        }
        fields
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

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        match self {
            Self::Sqlite(r) => r.get_events::<A>(id).await,
            Self::Postgres(r) => r.get_events::<A>(id).await,
            #[cfg(feature = "kurrentdb")]
            Self::Kurrent(r) => r.get_events::<A>(id).await,
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
            #[cfg(feature = "kurrentdb")]
            Self::Kurrent(r) => r.get_last_events::<A>(id, last_sequence).await,
        }
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        match self {
            Self::Sqlite(r) => r.get_snapshot::<A>(id).await,
            Self::Postgres(r) => r.get_snapshot::<A>(id).await,
            #[cfg(feature = "kurrentdb")]
            Self::Kurrent(r) => r.get_snapshot::<A>(id).await,
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
            #[cfg(feature = "kurrentdb")]
            Self::Kurrent(r) => r.persist::<A>(events, snapshot_update).await,
        }
    }

    async fn stream_events<A: Aggregate>(
        &self,
        id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        match self {
            Self::Sqlite(r) => r.stream_events::<A>(id).await,
            Self::Postgres(r) => r.stream_events::<A>(id).await,
            #[cfg(feature = "kurrentdb")]
            Self::Kurrent(r) => r.stream_events::<A>(id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match self {
            Self::Sqlite(r) => r.stream_all_events::<A>().await,
            Self::Postgres(r) => r.stream_all_events::<A>().await,
            #[cfg(feature = "kurrentdb")]
            Self::Kurrent(r) => r.stream_all_events::<A>().await,
        }
    }
}

/// cqrs-es's event repository on SQLite, in plain event-store mode: no snapshots.
pub struct SqliteEventRepository {
    pool: AnyPool,
}

impl SqliteEventRepository {
    /// A repository on `pool`, which must be an SQLite pool.
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    async fn select(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after_sequence: i64,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let rows = sqlx::query(
            "SELECT sequence, event_type, event_version, payload, metadata FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 ORDER BY sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(after_sequence)
        .fetch_all(&self.pool)
        .await
        .map_err(connection_error)?;
        rows.iter()
            .map(|row| {
                let sequence: i64 = row.try_get("sequence").map_err(connection_error)?;
                let payload: String = row.try_get("payload").map_err(connection_error)?;
                let metadata: String = row.try_get("metadata").map_err(connection_error)?;
                Ok(SerializedEvent::new(
                    aggregate_id.to_owned(),
                    usize::try_from(sequence)
                        .map_err(|e| PersistenceError::UnknownError(e.into()))?,
                    aggregate_type.to_owned(),
                    row.try_get("event_type").map_err(connection_error)?,
                    row.try_get("event_version").map_err(connection_error)?,
                    serde_json::from_str(&payload)?,
                    serde_json::from_str(&metadata)?,
                ))
            })
            .collect()
    }
}

fn connection_error(e: sqlx::Error) -> PersistenceError {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            PersistenceError::OptimisticLockError
        }
        other => PersistenceError::ConnectionError(other.into()),
    }
}

impl PersistedEventRepository for SqliteEventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.select(A::TYPE, id, 0).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let after =
            i64::try_from(last_sequence).map_err(|e| PersistenceError::UnknownError(e.into()))?;
        self.select(A::TYPE, id, after).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        _id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        _snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let mut tx = self.pool.begin().await.map_err(connection_error)?;
        for event in events {
            let sequence = i64::try_from(event.sequence)
                .map_err(|e| PersistenceError::UnknownError(e.into()))?;
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                 event_version, payload, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&event.aggregate_type)
            .bind(&event.aggregate_id)
            .bind(sequence)
            .bind(&event.event_type)
            .bind(&event.event_version)
            .bind(event.payload.to_string())
            .bind(event.metadata.to_string())
            .execute(&mut *tx)
            .await
            .map_err(connection_error)?;
        }
        tx.commit().await.map_err(connection_error)
    }

    async fn stream_events<A: Aggregate>(
        &self,
        id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        let events = self.get_events::<A>(id).await?;
        replay(events).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        let rows =
            sqlx::query("SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = $1")
                .bind(A::TYPE)
                .fetch_all(&self.pool)
                .await
                .map_err(connection_error)?;
        let mut events = Vec::new();
        for row in rows {
            let id: String = row.try_get("aggregate_id").map_err(connection_error)?;
            events.extend(self.get_events::<A>(&id).await?);
        }
        replay(events).await
    }
}

/// A replay stream already holding every event, so feeding it never waits on a reader.
pub(super) async fn replay(events: Vec<SerializedEvent>) -> Result<ReplayStream, PersistenceError> {
    let (mut feed, stream) = ReplayStream::new(events.len().max(1));
    for event in events {
        feed.push(Ok(event))
            .await
            .map_err(|e| PersistenceError::UnknownError(e.into()))?;
    }
    Ok(stream)
}

/// Re-seals every sealed string inside `value`; returns whether any changed.
fn reseal_json(value: &mut Value, keys: &KeyRing) -> Result<bool, CryptoError> {
    Ok(match value {
        Value::String(text) if text.starts_with("siv1:") => {
            match keys.reseal(&Sealed::from_stored(text.clone()))? {
                Some(resealed) => {
                    *text = resealed.as_str().to_owned();
                    true
                }
                None => false,
            }
        }
        Value::Array(items) => {
            let mut changed = false;
            for item in items {
                changed |= reseal_json(item, keys)?;
            }
            changed
        }
        Value::Object(fields) => {
            let mut changed = false;
            for field in fields.values_mut() {
                changed |= reseal_json(field, keys)?;
            }
            changed
        }
        _ => false,
    })
}
