//! SQLite: the embedded default. One file in WAL mode; appends share the pool of the read
//! tables so that a single pool contends for SQLite's one writer lock.

use std::str::FromStr;

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AnyPool, ConnectOptions, Connection, Row};

use super::StoreError;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Creates the database file when absent and turns WAL on (a property of the file).
pub(super) async fn create_if_missing(url: &str) -> Result<(), StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    if let Some(dir) = options.get_filename().parent() {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
    }
    options.connect().await?.close().await?;
    Ok(())
}

pub(super) async fn migrate(pool: &AnyPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await?;
    Ok(())
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
async fn replay(events: Vec<SerializedEvent>) -> Result<ReplayStream, PersistenceError> {
    let (mut feed, stream) = ReplayStream::new(events.len().max(1));
    for event in events {
        feed.push(Ok(event))
            .await
            .map_err(|e| PersistenceError::UnknownError(e.into()))?;
    }
    Ok(stream)
}
