//! Re-sealing every stored secret under the key ring's current key (R14, `rotate-key`):
//! sealed fields inside event payloads, the external ID, and the credentials columns.
//! Events are rewritten in place: their meaning is unchanged, only the ciphertext.

use serde_json::Value;
use sqlx::Row;

use crate::crypto::{CryptoError, KeyRing, Sealed};

use super::{Dialect, Store, StoreError};

/// Why re-sealing stopped.
#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value could not be opened with any key of the ring.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl From<sqlx::Error> for ResealError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Re-seals every value sealed under another key than the current one; returns how many
/// stored rows it rewrote (0 means everything is under the current key).
pub async fn reseal(store: &Store, keys: &KeyRing) -> Result<u64, ResealError> {
    let mut rewritten = 0;
    let rows = sqlx::query(
        "SELECT seq, CAST(payload AS TEXT) AS payload FROM events \
         WHERE CAST(payload AS TEXT) LIKE '%siv1:%' ORDER BY seq",
    )
    .fetch_all(store.pool())
    .await?;
    let update = match store.dialect() {
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
                .execute(store.pool())
                .await?;
            rewritten += 1;
        }
    }
    for (table, key, column) in [
        ("settings", "key", "value"),
        ("organizations", "id", "credentials"),
        ("accounts", "account_id", "credentials"),
    ] {
        let rows = sqlx::query(&format!(
            "SELECT {key} AS k, {column} AS v FROM {table} WHERE {column} LIKE 'siv1:%'"
        ))
        .fetch_all(store.pool())
        .await?;
        for row in rows {
            let sealed = Sealed::from_stored(row.try_get("v")?);
            if let Some(resealed) = keys.reseal(&sealed)? {
                let id: String = row.try_get("k")?;
                sqlx::query(&format!(
                    "UPDATE {table} SET {column} = $1 WHERE {key} = $2"
                ))
                .bind(resealed.as_str())
                .bind(id)
                .execute(store.pool())
                .await?;
                rewritten += 1;
            }
        }
    }
    Ok(rewritten)
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
