//! SQLite: the embedded default. One file in WAL mode; appends share the pool of the read
//! tables so that a single pool contends for SQLite's one writer lock. This dialect's file and
//! migrations.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AnyPool, ConnectOptions, Connection};

use super::{migrations, StoreError};
use crate::crypto::write_private;

/// Creates the database file when absent, private to its owner (0600, in a 0700 directory
/// when that is new too; SQLite gives its `-wal` and `-shm` files the database file's mode),
/// and turns WAL on (a property of the file).
pub(super) async fn create_if_missing(url: &str) -> Result<(), StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let file = options.get_filename();
    if file != std::path::Path::new(":memory:") {
        // An empty file is an empty database; one that exists is kept as it is.
        match write_private(file, b"") {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Database(sqlx::Error::Io(e)))
            }
            _ => {}
        }
    }
    options.connect().await?.close().await?;
    Ok(())
}

/// Whether the database file `url` names exists.
pub(super) fn exists(url: &str) -> Result<bool, StoreError> {
    Ok(SqliteConnectOptions::from_str(url)?.get_filename().exists())
}

pub(super) async fn migrate(pool: &AnyPool) -> Result<(), StoreError> {
    migrations::SQLITE.migrator().await?.run(pool).await?;
    Ok(())
}
