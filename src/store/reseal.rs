//! Re-sealing every secret the store keeps under the key ring's current key (R14,
//! `rotate-key`): sealed fields inside event payloads and the external ID. The read tables
//! hold copies made from the events; rebuilding them afterwards re-seals those too.

use crate::crypto::{CryptoError, KeyRing};

use super::{Store, StoreError};

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

/// Re-seals every value of the log and the settings sealed under another key than the
/// current one; returns how many stored rows it rewrote (0 means everything is under the
/// current key).
pub async fn reseal(store: &Store, keys: &KeyRing) -> Result<u64, ResealError> {
    Ok(store.reseal_events(keys).await? + store.reseal_settings(keys).await?)
}
