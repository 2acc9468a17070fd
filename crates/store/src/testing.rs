//! Throw-away stores for tests: a fresh SQLite file in a temporary directory, or a fresh
//! PostgreSQL database on the server named by `YIQIAN_TEST_DATABASE_URL`.
//!
//! When `YIQIAN_REQUIRE_POSTGRES=1` (CI sets it) and no URL is given, asking for the
//! PostgreSQL backend fails instead of skipping, so CI never passes without it.

use crate::blobs::LocalBlobStore;
use crate::{Backend, MasterKey, Store, Vault};
use rand::RngCore;
use sqlx::{Connection, Executor};
use std::sync::Arc;

/// A store for one test; the temporary directory lives as long as it does.
pub struct TestStore {
    /// The store.
    pub store: Store,
    /// Holds the blob directory (and the SQLite file).
    pub dir: tempfile::TempDir,
    /// The database URL, for tests that open a second store on it.
    pub url: String,
}

/// The backends a test should run against: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Sqlite];
    match std::env::var("YIQIAN_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => v.push(Backend::Postgres),
        _ if std::env::var("YIQIAN_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("YIQIAN_REQUIRE_POSTGRES=1 but YIQIAN_TEST_DATABASE_URL is not set")
        }
        _ => {}
    }
    v
}

/// A fresh, migrated store on `backend`.
pub async fn test_store(backend: Backend) -> TestStore {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("yiqian.db").display()),
        Backend::Postgres => fresh_postgres_database().await,
    };
    let vault = Vault::new(&MasterKey::generate());
    let blobs = Arc::new(LocalBlobStore::new(dir.path().join("blobs")));
    let store =
        Store::open(&url, vault, blobs).await.unwrap_or_else(|e| panic!("opening test store on {backend:?}: {e}"));
    TestStore { store, dir, url }
}

/// Creates an empty database named `yiqian_test_<random>` on the test server; returns its URL.
pub async fn fresh_postgres_database() -> String {
    sqlx::any::install_default_drivers();
    let base = std::env::var("YIQIAN_TEST_DATABASE_URL").expect("YIQIAN_TEST_DATABASE_URL");
    let mut suffix = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut suffix);
    let name = format!("yiqian_test_{}", hex::encode(suffix));
    let mut conn = sqlx::AnyConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("connecting to YIQIAN_TEST_DATABASE_URL: {e}"));
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("CREATE DATABASE (the role needs CREATEDB)");
    conn.close().await.ok();
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, format!("?{q}")),
        None => (base.as_str(), String::new()),
    };
    let prefix = match head.rfind('/') {
        Some(i) if i > head.find("://").map(|j| j + 2).unwrap_or(0) => &head[..i],
        _ => head,
    };
    format!("{prefix}/{name}{query}")
}
