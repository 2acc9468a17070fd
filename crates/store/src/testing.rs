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

/// The S3-protocol server tests may use, from `YIQIAN_TEST_S3_URL`
/// (`http://HOST:PORT/BUCKET`, the bucket already made), with a fresh key prefix so tests do
/// not see each other's objects. Credentials come from `YIQIAN_TEST_S3_ACCESS_KEY_ID` and
/// `YIQIAN_TEST_S3_SECRET_ACCESS_KEY` (default `test`, which a stand-in such as moto takes).
/// `None` when no server is named; when `YIQIAN_REQUIRE_S3=1` (CI sets it) that fails instead.
pub fn test_s3_settings() -> Option<crate::blobs::S3Settings> {
    let url = match std::env::var("YIQIAN_TEST_S3_URL") {
        Ok(u) if !u.is_empty() => u,
        _ if std::env::var("YIQIAN_REQUIRE_S3").as_deref() == Ok("1") => {
            panic!("YIQIAN_REQUIRE_S3=1 but YIQIAN_TEST_S3_URL is not set")
        }
        _ => return None,
    };
    let (scheme, rest) = url.split_once("://").expect("YIQIAN_TEST_S3_URL is http://HOST:PORT/BUCKET");
    let (host, bucket) = rest.split_once('/').expect("YIQIAN_TEST_S3_URL names a bucket: http://HOST:PORT/BUCKET");
    let mut prefix = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut prefix);
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "test".into());
    Some(crate::blobs::S3Settings {
        endpoint: format!("{scheme}://{host}"),
        bucket: bucket.trim_matches('/').to_owned(),
        region: "us-east-1".into(),
        path_style: true,
        prefix: format!("test-{}", hex::encode(prefix)),
        access_key_id: var("YIQIAN_TEST_S3_ACCESS_KEY_ID"),
        secret_access_key: var("YIQIAN_TEST_S3_SECRET_ACCESS_KEY"),
    })
}

/// The blob stores a test should run against, by name: a local directory under `dir` always,
/// and a bucket on the S3-protocol server of [`test_s3_settings`] when there is one.
pub fn blob_stores(dir: &std::path::Path) -> Vec<(&'static str, Arc<dyn crate::blobs::BlobStore>)> {
    let mut v: Vec<(&'static str, Arc<dyn crate::blobs::BlobStore>)> =
        vec![("local", Arc::new(LocalBlobStore::new(dir.join("blobs"))))];
    if let Some(settings) = test_s3_settings() {
        v.push(("s3", Arc::new(crate::blobs::S3BlobStore::new(&settings).expect("the test bucket's settings"))));
    }
    v
}
