//! Storage of yiqian: one schema for SQLite (the embedded default, WAL) and PostgreSQL,
//! envelope encryption of personal data ([`vault`]), encrypted blobs ([`blobs`]) and the
//! hash-chained audit trail ([`audit`]).
//!
//! Everything that changes state goes through a [`Tx`]: the application opens one, applies
//! a domain transition, records the order's history, the audit event and the outbox
//! messages, and commits them together. Nothing above this crate writes SQL.

pub mod audit;
pub mod backup;
pub mod blobs;
pub mod certificates;
pub mod copy;
pub mod erasure;
mod error;
pub mod fulfilment;
pub mod jobs;
pub mod keys;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod people;
pub mod segments;
pub mod sms;
pub mod staff;
pub mod stations;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod vault;

pub use error::StoreError;
pub use vault::{MasterKey, Vault};

use blobs::BlobStore;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor, Transaction};
use std::sync::Arc;
use std::time::Duration;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in WAL mode, the embedded default.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The storage of one deployment: database, blobs and the key that protects personal data.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    vault: Arc<Vault>,
    blobs: Arc<dyn BlobStore>,
}

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Connects to `url` (`sqlite://PATH?mode=rwc` or `postgres://…`) and brings the schema up
    /// to date.
    pub async fn open(url: &str, vault: Vault, blobs: Arc<dyn BlobStore>) -> Result<Store, StoreError> {
        Store::open_shared(url, Arc::new(vault), blobs).await
    }

    /// [`Store::open`] with a vault another store holds too.
    pub(crate) async fn open_shared(
        url: &str,
        vault: Arc<Vault>,
        blobs: Arc<dyn BlobStore>,
    ) -> Result<Store, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Config(format!(
                "database URL must start with sqlite: or postgres:, got {}",
                url.split(':').next().unwrap_or("")
            )));
        };
        let options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(30));
        let options = if backend == Backend::Sqlite {
            options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 15000").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            })
        } else {
            options
        };
        let pool = options.connect(url).await.map_err(StoreError::from)?;
        // PostgreSQL serialises migrators with an advisory lock; SQLite has none, so two
        // processes opening a new file at once may both start a migration the other has just
        // applied. The loser's transaction rolls back whole; running again skips what is done.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match MIGRATOR.run(&pool).await {
                Ok(()) => break,
                Err(e) if backend == Backend::Sqlite && attempt < 5 => {
                    tracing::debug!(error = %e, attempt, "migration raced another process; running again");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(StoreError::Migration(e.to_string())),
            }
        }
        Ok(Store { pool, backend, vault, blobs })
    }

    /// The database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The key holder for personal data.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so concurrent writers queue instead of failing half-way.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Tx { tx, vault: self.vault.clone(), backend: self.backend })
    }

    /// Starts a read-only unit of work (a plain transaction, for a consistent view).
    pub async fn read(&self) -> Result<Tx, StoreError> {
        Ok(Tx { tx: self.pool.begin().await?, vault: self.vault.clone(), backend: self.backend })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn blob_store(&self) -> &dyn BlobStore {
        self.blobs.as_ref()
    }
}

/// One unit of work. Dropping it without [`Tx::commit`] rolls everything back.
pub struct Tx {
    tx: Transaction<'static, Any>,
    vault: Arc<Vault>,
    backend: Backend,
}

impl Tx {
    /// Makes every change of this unit of work durable at once.
    ///
    /// On PostgreSQL a failed statement aborts the whole transaction, and `COMMIT` then rolls
    /// back without an error. A unit of work that carried on after a failed statement would
    /// believe it committed; so commit first asks the server, and reports the abort.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres && sqlx::query("SELECT 1").execute(self.conn()).await.is_err() {
            return Err(StoreError::Aborted);
        }
        self.tx.commit().await.map_err(StoreError::from)
    }

    /// The key holder for personal data.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

/// Milliseconds since the Unix epoch, the storage form of every time.
pub fn millis(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// The time stored as `ms`.
pub fn from_millis(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
