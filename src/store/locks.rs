//! The locks that keep instances sharing a store from doubling up: one scheduler (R5's "one
//! harvest at a time" starts there) and one harvest per organization. On PostgreSQL they are
//! session advisory locks, each on a connection of its own; SQLite has one instance, whose own
//! locks suffice.

use sha2::{Digest, Sha256};

use crate::domain::OrgId;

use super::{Store, StoreError};

impl Store {
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
}

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
