//! Several nodes of one deployment on one database (SQLite file or PostgreSQL): a node starts
//! only with the keys the deployment's data was written under — the master key, the
//! PIN-escrow key and the sandbox gateway key — and, given them through configuration, reads
//! and serves what another node wrote.

mod common;

use common::*;
use reqwest::StatusCode;
use yiqian::config::Config;
use yiqian::server::Server;

fn node_config(data_dir: std::path::PathBuf, database_url: &str) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir,
        database_url: database_url.to_owned(),
        ..Config::default()
    }
}

/// Empties `key_checks`, as in a database written before check values were kept.
async fn forget_key_checks(database_url: &str) {
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database_url).await.unwrap();
    conn.execute("DELETE FROM key_checks").await.unwrap();
    conn.close().await.unwrap();
}

async fn refusal(config: &Config) -> String {
    match Server::start(config).await {
        Ok(server) => {
            server.stop().await;
            panic!("a node with keys that are not the deployment's started")
        }
        Err(e) => e.to_string(),
    }
}

fn key_of(h: &Harness, file: &str) -> String {
    std::fs::read_to_string(h.dir.path().join("data").join(file)).unwrap().trim().to_owned()
}

#[tokio::test]
async fn a_node_starts_only_with_the_deployments_keys_and_then_serves_its_data() {
    for backend in backends() {
        let a = start(backend).await;
        let token = a.login("13800138000").await;
        let first = a.create_order(&token).await;
        a.pay(&token, &first).await;
        let database_url = a.config.database_url();
        let other = tempfile::tempdir().unwrap();
        let data = other.path().join("data");
        let key_files = || ["master.key", "pin-escrow.key", "sandbox-gateway.key"].map(|f| data.join(f).exists());

        // A node with no keys of its own: refused before it writes a key file.
        let err = refusal(&node_config(data.clone(), &database_url)).await;
        assert!(err.contains("master key for personal data") && err.contains("is not the deployment's"), "{err}");
        assert!(err.contains("master_key (YIQIAN_MASTER_KEY)"), "says how to give the key: {err}");
        assert_eq!(key_files(), [false; 3], "{backend:?}: no key file written by a refused node");

        // Another master key given in configuration: refused.
        let mut wrong = node_config(data.clone(), &database_url);
        wrong.master_key = yiqian_store::MasterKey::generate().to_base64();
        let err = refusal(&wrong).await;
        assert!(err.contains("from master_key (YIQIAN_MASTER_KEY)") && err.contains("check value"), "{err}");

        // The right master key but no PIN-escrow key: refused, naming that key.
        let mut half = node_config(data.clone(), &database_url);
        half.master_key = key_of(&a, "master.key");
        let err = refusal(&half).await;
        assert!(err.contains("PIN-escrow key") && err.contains("pin_escrow_key"), "{err}");
        assert_eq!(key_files(), [false; 3]);

        // All three keys from configuration: the node starts, writes no key file, serves the
        // other node's order (sealed data opens) and takes a sandbox payment whose signed
        // notification it verifies.
        let mut config = half.clone();
        config.pin_escrow_key = key_of(&a, "pin-escrow.key");
        config.sandbox_gateway_key = key_of(&a, "sandbox-gateway.key");
        let server = Server::start(&config).await.unwrap_or_else(|e| panic!("{backend:?}: node B refused: {e}"));
        assert_eq!(key_files(), [false; 3], "{backend:?}: keys from configuration are not written to disk");
        let b = Harness {
            base: server.public_url.clone(),
            server,
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            dir: other,
            backend,
            config,
            clock: None,
            vendors: None,
        };
        assert_eq!(b.order(&token, &first).await, a.order(&token, &first).await, "{backend:?}: B reads A's order");
        let second = b.create_order(&token).await;
        b.pay(&token, &second).await;
        assert_eq!(a.order(&token, &second).await["state"], "collecting");
        b.server.stop().await;

        // A database written before check values were kept (none recorded) and a node that
        // would make a fresh key: refused, as the data's key exists elsewhere.
        forget_key_checks(&database_url).await;
        let fresh = tempfile::tempdir().unwrap();
        let err = refusal(&node_config(fresh.path().join("data"), &database_url)).await;
        assert!(err.contains("already holds data") && err.contains("master key for personal data"), "{err}");
        assert!(!fresh.path().join("data/master.key").exists());

        // The node with the original key files starts again and records them anew.
        let again = Server::start(&a.config).await.unwrap_or_else(|e| panic!("{backend:?}: A restarted: {e}"));
        let r = reqwest::get(format!("{}/api/v1/product", again.public_url)).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        again.stop().await;
        a.server.stop().await;
    }
}
