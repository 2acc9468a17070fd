//! Errors of the storage layer, sorted by what the caller can do about them.

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer changed the record first; retry the whole unit of work.
    #[error("the record was changed concurrently")]
    Conflict,
    /// A unique key already exists (e.g. a replayed notification, a second refund).
    #[error("a record with this key already exists")]
    Duplicate,
    /// The database is busy; retry the whole unit of work.
    #[error("the database is busy")]
    Busy,
    /// An earlier statement failed and the database abandoned the unit of work; nothing of
    /// it was committed.
    #[error("the transaction was aborted by an earlier failed statement; nothing was committed")]
    Aborted,
    /// The record does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The data was deleted under the retention rules (or on request): it reads as deleted.
    #[error("{0} was deleted")]
    Erased(&'static str),
    /// Stored data could not be decrypted or decoded: tampering, or the wrong master key.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// Configuration is wrong (bad URL, bad key).
    #[error("storage configuration: {0}")]
    Config(String),
    /// Bringing the schema up to date failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// Blob storage failed.
    #[error("blob storage: {0}")]
    Io(#[from] std::io::Error),
    /// Any other database failure.
    #[error("database: {0}")]
    Database(sqlx::Error),
}

impl StoreError {
    /// Whether retrying the whole unit of work may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict | StoreError::Busy)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let Some(db) = e.as_database_error() {
            if db.is_unique_violation() {
                return StoreError::Duplicate;
            }
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            // SQLite: 5 BUSY, 6 LOCKED, 517 BUSY_SNAPSHOT, 261 BUSY_RECOVERY.
            // PostgreSQL: 40001 serialization failure, 40P01 deadlock detected.
            if matches!(code.as_str(), "5" | "6" | "517" | "261" | "40001" | "40P01") {
                return StoreError::Busy;
            }
        }
        if matches!(e, sqlx::Error::RowNotFound) {
            return StoreError::NotFound("row");
        }
        if matches!(e, sqlx::Error::PoolTimedOut) {
            return StoreError::Busy;
        }
        StoreError::Database(e)
    }
}
