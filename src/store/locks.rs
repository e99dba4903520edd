//! The locks that keep instances sharing a store from doubling up: one scheduler (R5's "one
//! harvest at a time" starts there) and one harvest per organization. On PostgreSQL they are
//! session advisory locks, all of a process's on one connection of their own (so that locks
//! cost the budget that one connection, and a broken one never holds a slot of a pool),
//! taken by trying, never by a statement that waits; SQLite has one instance, whose own locks
//! suffice.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Mutex;

use crate::domain::OrgId;

use super::{Store, StoreError};

/// The advisory lock key of the scheduler ("orgsync" in ASCII).
const SCHEDULER_LOCK: i64 = 0x006f_7267_7379_6e63;

/// How often a wait for a lock another instance holds tries again.
const RETRY: Duration = Duration::from_millis(100);

/// The connection holding this process's advisory locks. When it breaks, every lock on it is
/// gone at once: the next lock opens a new one, of a new generation, and the holders of the
/// old generation's locks learn that theirs are lost.
pub(super) struct LockSession {
    // Whose connect options the session's connection uses.
    pool: PgPool,
    timeout: Duration,
    session: Mutex<Session>,
}

struct Session {
    conn: Option<PgConnection>,
    generation: u64,
}

impl LockSession {
    pub(super) fn new(pool: PgPool, timeout: Duration) -> Self {
        Self {
            pool,
            timeout,
            session: Mutex::new(Session {
                conn: None,
                generation: 0,
            }),
        }
    }

    /// Closes the session's connection, releasing every lock on it; the holders of those
    /// locks learn that they are lost.
    pub(super) async fn close(&self) {
        let mut session = self.session.lock().await;
        if let Some(conn) = session.conn.take() {
            let _ = conn.close().await;
        }
        session.generation += 1;
    }

    /// Tries to take the lock `key`; answers the generation it is held in. A session found
    /// broken (the server restarted, say) is replaced by a new one, once.
    async fn try_lock(&self, key: i64) -> Result<Option<u64>, StoreError> {
        let mut session = self.session.lock().await;
        let mut fresh = false;
        loop {
            if session.conn.is_none() {
                // The pool's settings (its statement timeout among them), outside its count.
                let mut conn = PgConnection::connect_with(&self.pool.connect_options()).await?;
                sqlx::query(&super::postgres::statement_timeout(self.timeout))
                    .execute(&mut conn)
                    .await?;
                session.conn = Some(conn);
                session.generation += 1;
                fresh = true;
            }
            let conn = session.conn.as_mut().expect("opened above");
            match sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut *conn)
                .await
            {
                Ok(held) => return Ok(held.then_some(session.generation)),
                Err(e) => {
                    session.conn = None;
                    if fresh {
                        return Err(e.into());
                    }
                }
            }
        }
    }

    /// Whether the connection that took a lock in `generation` still holds it.
    async fn holds(&self, generation: u64) -> bool {
        let mut session = self.session.lock().await;
        if session.generation != generation {
            return false;
        }
        let Some(conn) = session.conn.as_mut() else {
            return false;
        };
        let alive = sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok();
        if !alive {
            session.conn = None;
        }
        alive
    }

    /// Releases the lock `key` taken in `generation`, unless it went with its connection.
    async fn unlock(&self, key: i64, generation: u64) {
        let mut session = self.session.lock().await;
        if session.generation != generation {
            return;
        }
        let Some(conn) = session.conn.as_mut() else {
            return;
        };
        let released = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "cannot release an advisory lock; dropping its session");
            session.conn = None;
        }
    }
}

/// An advisory lock held on the process's [`LockSession`]; released when dropped.
pub struct Held {
    key: i64,
    generation: u64,
    session: Arc<LockSession>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let (key, generation, session) = (self.key, self.generation, self.session.clone());
        // Without a runtime (the process is ending) the lock goes with the connection.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { session.unlock(key, generation).await });
        }
    }
}

impl Store {
    /// Tries to become the one instance that schedules harvests, for as long as the returned
    /// [`Leadership`] lives (or its session does); SQLite has one instance, always leader.
    pub async fn try_lead(&self) -> Result<Option<Leadership>, StoreError> {
        let Some(locks) = &self.locks else {
            return Ok(Some(Leadership::Sole));
        };
        Ok(held(locks, SCHEDULER_LOCK).await?.map(Leadership::Postgres))
    }

    /// Takes the lock that lets one harvest of `org` run at a time across every instance
    /// sharing the store (R5): waited for, by trying again every 100 ms, or only tried.
    pub async fn lock_harvest(
        &self,
        org: &OrgId,
        wait: bool,
    ) -> Result<Option<HarvestLock>, StoreError> {
        let Some(locks) = &self.locks else {
            return Ok(Some(HarvestLock::Local));
        };
        let digest = Sha256::digest(org.as_str().as_bytes());
        let key = i64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        loop {
            match held(locks, key).await? {
                Some(lock) => return Ok(Some(HarvestLock::Postgres(lock))),
                None if wait => tokio::time::sleep(RETRY).await,
                None => return Ok(None),
            }
        }
    }
}

async fn held(locks: &Arc<LockSession>, key: i64) -> Result<Option<Held>, StoreError> {
    Ok(locks.try_lock(key).await?.map(|generation| Held {
        key,
        generation,
        session: locks.clone(),
    }))
}

/// Being the instance that schedules harvests.
pub enum Leadership {
    /// The only instance there can be (SQLite).
    Sole,
    /// The scheduler's advisory lock.
    Postgres(Held),
}

impl Leadership {
    /// Whether the lock is still held: false once its session broke.
    pub async fn still_held(&mut self) -> bool {
        match self {
            Self::Sole => true,
            Self::Postgres(lock) => lock.session.holds(lock.generation).await,
        }
    }
}

/// Held while a harvest of one organization runs; dropping it releases it.
pub enum HarvestLock {
    /// The process's own lock is all there is (SQLite).
    Local,
    /// The organization's advisory lock.
    Postgres(Held),
}
