//! Change notification: every instance counts the changes to what the API reads, its own and,
//! on PostgreSQL, those the other instances sharing the store announce, so that answers kept
//! at one count stay true while it stays.

use std::sync::atomic::Ordering;

use sqlx::postgres::PgListener;

use super::{Dialect, Store, StoreError};

/// The PostgreSQL channel on which instances sharing a store announce changes to what the
/// API reads.
const CHANGES_CHANNEL: &str = "orgsync_changes";

impl Store {
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
}
