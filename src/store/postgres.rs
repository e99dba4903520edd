//! PostgreSQL: the pool postgres-es appends through, which also holds the connection that
//! listens for change announcements, and this dialect's migrations.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::{migrations, StoreError};

/// The connections of the budget (`store.max_connections`) taken before the pool every
/// other query runs on gets the rest: this pool's two (one listening for other instances'
/// changes, one for appends and migrations) and the one holding the process's advisory
/// locks.
pub(super) const OWN_CONNECTIONS: u32 = 3;

/// The connections this pool opens at most.
const POOL_CONNECTIONS: u32 = 2;

/// What makes a session cancel any statement that runs longer than `timeout`.
pub(super) fn statement_timeout(timeout: Duration) -> String {
    format!("SET statement_timeout = {}", timeout.as_millis())
}

pub(super) async fn connect(url: &str, timeout: Duration) -> Result<PgPool, StoreError> {
    let set_timeout = statement_timeout(timeout);
    Ok(PgPoolOptions::new()
        .max_connections(POOL_CONNECTIONS)
        .after_connect(move |conn, _| {
            let set_timeout = set_timeout.clone();
            Box::pin(async move { sqlx::query(&set_timeout).execute(conn).await.map(|_| ()) })
        })
        .connect(url)
        .await?)
}

/// Applies the pending migrations on a connection without a statement timeout (a migration
/// of a large store may run long), which gets `timeout` back before it returns to the pool.
pub(super) async fn migrate(pool: &PgPool, timeout: Duration) -> Result<(), StoreError> {
    let migrator = migrations::POSTGRES.migrator().await?;
    let mut conn = pool.acquire().await?;
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut *conn)
        .await?;
    let migrated = migrator.run(&mut *conn).await;
    sqlx::query(&statement_timeout(timeout))
        .execute(&mut *conn)
        .await?;
    migrated?;
    Ok(())
}
