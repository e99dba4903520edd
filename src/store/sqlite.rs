//! SQLite: the embedded default. One file in WAL mode; appends share the pool of the read
//! tables so that a single pool contends for SQLite's one writer lock. This dialect's file and
//! migrations.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AnyPool, ConnectOptions, Connection};

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
