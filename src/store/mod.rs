//! The store: the event log and the tables beside it, on SQLite (the embedded default) or
//! PostgreSQL, chosen by `store.url`. Each table's SQL lives in the file that owns it:
//!
//! - `events.rs`: the event log (`events`), appended through cqrs-es or in bulk, or
//!   `kurrent.rs`: the event log in KurrentDB when `store.events_url` names one (built with
//!   the `kurrentdb` feature);
//! - `settings.rs`: installation-wide values (`settings`), the sealed external ID;
//! - [`tokens`]: API token hashes (`api_tokens`);
//! - [`harvest_runs`]: how each organization's last harvest went (`harvest_runs`);
//! - `locks.rs` and `changes.rs`: advisory locks and change announcements between instances;
//! - the read tables (`organizations`, `accounts`, `badges`, `projection_checkpoint`) belong
//!   to [`crate::projections`].
//!
//! Everything but appends is written once in SQL both dialects accept ([`Dialect`] holds the
//! few differences), on an [`AnyPool`]; JSON and timestamps are kept as text so both read
//! them alike. `migrations.rs` builds each dialect's schema migrations into the binary.

mod changes;
mod dialect;
mod error;
mod events;
pub mod harvest_runs;
#[cfg(feature = "kurrentdb")]
mod kurrent;
mod locks;
mod migrations;
mod postgres;
pub mod queue_polls;
mod reseal;
mod settings;
mod sqlite;
pub mod tokens;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

pub use dialect::Dialect;
pub use error::StoreError;
pub use events::{
    Appended, EventRepository, Metadata, NewEvent, SqliteEventRepository, StoredEvent,
};
#[cfg(feature = "kurrentdb")]
pub use kurrent::{KurrentEventRepository, KurrentLog};
use locks::LockSession;
pub use locks::{HarvestLock, Held, Leadership};
pub use reseal::{reseal, ResealError};

/// The event log and the read tables.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    pg: Option<sqlx::PgPool>,
    // This process's advisory locks, on one connection of `pg`.
    locks: Option<Arc<LockSession>>,
    // Longest a statement may run on PostgreSQL.
    statement_timeout: Duration,
    // The event log, when it is in KurrentDB rather than in the `events` table.
    #[cfg(feature = "kurrentdb")]
    kurrent: Option<KurrentLog>,
    // Changes to what the API reads, as far as this instance knows: see [`Store::version`].
    version: Arc<AtomicU64>,
}

impl Store {
    /// Connects to `url`, creating an SQLite file when it is absent, with at most
    /// `max_connections` connections in all; on PostgreSQL, each cancels any statement that
    /// runs longer than `statement_timeout`. Applies no migration.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        statement_timeout: Duration,
    ) -> Result<Self, StoreError> {
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
            Dialect::Postgres => Some(postgres::connect(url, statement_timeout).await?),
        };
        let (settings, connections) = match dialect {
            // A multi-row INSERT keeps a statement journal, the pages it changes, so that it
            // alone can be undone if it fails; kept in memory rather than in a temporary file,
            // which took about 7 % of SQLite's thread in a harvest.
            Dialect::Sqlite => (
                vec!["PRAGMA temp_store = MEMORY".to_owned()],
                max_connections,
            ),
            // Statements are prepared once and run with ever new lists of ids; a generic plan
            // made before a table had statistics can scan the whole log for each (seconds
            // instead of milliseconds at 100,000 accounts), so every execution is planned for
            // its own values.
            Dialect::Postgres => (
                vec![
                    "SET plan_cache_mode = force_custom_plan".to_owned(),
                    postgres::statement_timeout(statement_timeout),
                ],
                max_connections
                    .saturating_sub(postgres::OWN_CONNECTIONS)
                    .max(1),
            ),
        };
        let settings = Arc::new(settings);
        let options = AnyPoolOptions::new()
            .max_connections(connections)
            .after_connect(move |conn, _| {
                let settings = settings.clone();
                Box::pin(async move {
                    for setting in settings.iter() {
                        sqlx::query(setting).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            });
        let pool = options.connect(url).await?;
        Ok(Self {
            pool,
            dialect,
            locks: pg
                .clone()
                .map(|pg| Arc::new(LockSession::new(pg, statement_timeout))),
            pg,
            statement_timeout,
            #[cfg(feature = "kurrentdb")]
            kurrent: None,
            version: Arc::default(),
        })
    }

    /// The store `url` names if it was ever made, without making it or migrating it: `None`
    /// for a SQLite file that does not exist.
    pub async fn open_existing(
        url: &str,
        statement_timeout: Duration,
    ) -> Result<Option<Self>, StoreError> {
        if url.starts_with("sqlite:") && !sqlite::exists(url)? {
            return Ok(None);
        }
        Self::connect(url, 1, statement_timeout).await.map(Some)
    }

    /// The same store with its event log in KurrentDB at `events_url` (`esdb://…` or
    /// `kurrentdb://…`), in streams named after `prefix`, or in its own database when
    /// `events_url` is empty.
    #[cfg(feature = "kurrentdb")]
    pub fn with_event_log(self, events_url: &str, prefix: &str) -> Result<Self, StoreError> {
        let kurrent = match events_url {
            "" => None,
            url => Some(KurrentLog::connect(url, prefix)?),
        };
        Ok(Self { kurrent, ..self })
    }

    /// The same store, whose events live in its own database: this build has no KurrentDB
    /// client, so a non-empty `events_url` is refused (as configuration checks do first).
    #[cfg(not(feature = "kurrentdb"))]
    pub fn with_event_log(self, events_url: &str, _prefix: &str) -> Result<Self, StoreError> {
        match events_url {
            "" => Ok(self),
            _ => Err(StoreError::Config(crate::config::WITHOUT_KURRENTDB.into())),
        }
    }

    /// Applies the migrations of this dialect that are not applied yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pg {
            Some(pg) => postgres::migrate(pg, self.statement_timeout).await,
            None => sqlite::migrate(&self.pool).await,
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

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
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
            locks: None,
            statement_timeout: Duration::ZERO,
            #[cfg(feature = "kurrentdb")]
            kurrent: None,
            version: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Closes every connection; the advisory locks of this process go with theirs.
    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(locks) = &self.locks {
            locks.close().await;
        }
        if let Some(pg) = &self.pg {
            pg.close().await;
        }
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
