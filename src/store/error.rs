//! The store's one error type: a failure of the store itself, never of the caller's input.

/// A failure of the store itself, never of the caller's input.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no or could not be reached.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back.
    #[error("stored value is malformed: {0}")]
    Malformed(String),
    /// The store's settings cannot be used.
    #[error("{0}")]
    Config(String),
    /// KurrentDB said no or could not be reached.
    #[error("kurrentdb: {0}")]
    Kurrent(String),
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Malformed(e.to_string())
    }
}
