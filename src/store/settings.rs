//! The `settings` table: installation-wide values, each under its key; today the sealed
//! external ID (R1).

use sqlx::Row;

use crate::crypto::{KeyRing, Sealed};

use super::{Store, StoreError};

impl Store {
    /// The sealed external ID, if one was made.
    pub async fn external_id(&self) -> Result<Option<Sealed>, StoreError> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = 'external_id'")
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| r.try_get::<String, _>("value"))
            .transpose()?
            .map(Sealed::from_stored))
    }

    /// The sealed external ID of a store that may never have been migrated: `None` too
    /// when it has no `settings` table yet.
    pub async fn external_id_if_any(&self) -> Result<Option<Sealed>, StoreError> {
        match self.external_id().await {
            Err(StoreError::Database(sqlx::Error::Database(e)))
                // PostgreSQL's undefined_table; SQLite has no code of its own for it.
                if e.code().as_deref() == Some("42P01")
                    || e.message().starts_with("no such table") =>
            {
                Ok(None)
            }
            other => other,
        }
    }

    /// Keeps `sealed` as the external ID unless one is kept already: instances sharing a
    /// store race here, the first insert wins and all read it back.
    pub async fn keep_external_id(&self, sealed: &Sealed) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('external_id', $1) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(sealed.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Re-seals every sealed setting under the key ring's current key; returns how many it
    /// rewrote.
    pub(super) async fn reseal_settings(&self, keys: &KeyRing) -> Result<u64, super::ResealError> {
        let rows = sqlx::query("SELECT key, value FROM settings WHERE value LIKE 'siv1:%'")
            .fetch_all(self.pool())
            .await?;
        let mut rewritten = 0;
        for row in rows {
            let sealed = Sealed::from_stored(row.try_get("value")?);
            if let Some(resealed) = keys.reseal(&sealed)? {
                let key: String = row.try_get("key")?;
                sqlx::query("UPDATE settings SET value = $1 WHERE key = $2")
                    .bind(resealed.as_str())
                    .bind(key)
                    .execute(self.pool())
                    .await?;
                rewritten += 1;
            }
        }
        Ok(rewritten)
    }
}
