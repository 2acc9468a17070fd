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

#[tokio::test]
async fn a_thirty_megabyte_face_video_goes_to_the_bucket_and_back_to_the_reviewer() {
    let Some(settings) = yiqian_store::testing::test_s3_settings() else {
        eprintln!("no S3-protocol server (YIQIAN_TEST_S3_URL): skipped");
        return;
    };
    for backend in backends() {
        let h = start_configured(backend, false, |c| blobs_in_bucket(c, &settings)).await;
        let token = h.login("13800138000").await;
        let id = h.create_order(&token).await;
        h.pay(&token, &id).await;
        let mut video = mp4();
        video.extend((0..30_000_000 - video.len()).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2]));
        let m = Materials { video: (video.clone(), "liveness.mp4".into()), ..Materials::default() };
        let submitted = h.complete_materials_with(&token, &id, "13800138000", m).await;
        assert_eq!(submitted["state"], "submitted", "{submitted}");
        assert!(!h.dir.path().join("data/blobs").exists(), "{backend:?}: nothing kept in the data directory");

        let reviewer = console_login(&h, "li.wei", "reviewer").await;
        let page = reviewer.get(&format!("/console/review/{id}")).await;
        let src = html_value(&page.body, "id=\"liveness-video\" controls preload=\"metadata\" playsinline src=\"", '"')
            .expect("the face video");
        let range = |r: &'static str| {
            reviewer
                .http
                .get(format!("{}{src}", h.base))
                .header("cookie", format!("yiqian_console={}", reviewer.token))
                .header("range", r)
                .send()
        };
        let tail = range("bytes=29999000-").await.unwrap();
        assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(tail.headers()["content-range"], "bytes 29999000-29999999/30000000");
        assert!(tail.bytes().await.unwrap().as_ref() == &video[29_999_000..], "{backend:?}: the tail of the video");
        let whole = reviewer.get(&src).await;
        assert_eq!(whole.status, StatusCode::OK);
        assert_eq!(whole.headers["content-length"], "30000000");
        h.server.stop().await;
    }
}

/// The CRL number of a DER CRL.
fn crl_number(der: &[u8]) -> u64 {
    use yiqian_pki::der::Decode;
    let crl: yiqian_pki::x509_cert::crl::CertificateList = Decode::from_der(der).unwrap();
    let ext = crl.tbs_cert_list.crl_extensions.unwrap().into_iter().find(|e| e.extn_id.to_string() == "2.5.29.20");
    let n = yiqian_pki::der::asn1::Uint::from_der(ext.expect("a CRL number").extn_value.as_bytes()).unwrap();
    n.as_bytes().iter().fold(0u64, |a, b| (a << 8) | u64::from(*b))
}

/// A second node of `a`'s deployment (its keys given in configuration) on `a`'s clock.
async fn another_node(a: &Harness) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = node_config(dir.path().join("data"), &a.config.database_url());
    config.master_key = key_of(a, "master.key");
    config.pin_escrow_key = key_of(a, "pin-escrow.key");
    config.sandbox_gateway_key = key_of(a, "sandbox-gateway.key");
    let clock: std::sync::Arc<dyn yiqian_app::Clock> = a.clock.clone().expect("a manual clock");
    (Server::start_with_clock(&config, clock).await.expect("another node starts"), dir)
}

#[tokio::test]
async fn scheduled_jobs_run_once_per_period_across_three_nodes_and_crl_numbers_only_increase() {
    use yiqian_app::schedule::Job;
    for backend in backends() {
        let a = start_with(backend, true).await;
        let (b, _b_dir) = another_node(&a).await;
        let (c, _c_dir) = another_node(&a).await;
        let nodes = [a.server.app.clone(), b.app.clone(), c.app.clone()];
        let store = a.server.app.store().clone();
        // Each node's workers try every job as they start: one claim per job for this period.
        for job in Job::ALL {
            let run = a
                .poll_until(job.name(), || async { store.job_run(job.name()).await.unwrap().filter(|r| r.done) })
                .await;
            assert_eq!(run.runs, 1, "{backend:?}: {} ran once at start: {run:?}", job.name());
        }

        for period in 2..=4i64 {
            // Past the next period of every job (the reconciliation's is a day).
            a.advance(chrono::Duration::days(1));
            for job in Job::ALL {
                let ran = futures_all(nodes.iter().map(|n| {
                    let n = n.clone();
                    async move { n.run_job(job).await.unwrap() }
                }))
                .await;
                // One of these calls ran it — or a node's own worker, starting late, got there
                // first; never two.
                assert!(ran.iter().filter(|r| **r).count() <= 1, "{backend:?}: {} ran twice: {ran:?}", job.name());
                let run = a
                    .poll_until(job.name(), || async { store.job_run(job.name()).await.unwrap().filter(|r| r.done) })
                    .await;
                assert_eq!(run.runs, period, "{backend:?}: {} ran once per period: {run:?}", job.name());
                // Asked again in the same period, no node runs it.
                for n in &nodes {
                    assert!(!n.run_job(job).await.unwrap(), "{backend:?}: {} ran again", job.name());
                }
            }
        }

        // A node that claimed a period and died: the others wait for its claim to run out,
        // then take the period over.
        let now = nodes[0].now();
        a.advance(Job::CrlRefresh.period_start(now) + chrono::Duration::minutes(5) - now);
        let now = nodes[0].now();
        let period = Job::CrlRefresh.period_start(now);
        assert_eq!(period, now);
        let died = now + chrono::Duration::minutes(1);
        assert!(store.claim_job("crl_refresh", "node-that-died", period, died, now).await.unwrap());
        a.advance(chrono::Duration::seconds(59));
        assert!(!nodes[1].run_job(Job::CrlRefresh).await.unwrap(), "{backend:?}: the claim holds");
        a.advance(chrono::Duration::seconds(2));
        assert!(nodes[1].run_job(Job::CrlRefresh).await.unwrap(), "{backend:?}: taken over once it ran out");
        let run = store.job_run("crl_refresh").await.unwrap().unwrap();
        assert_eq!((run.holder.as_str(), run.done), (nodes[1].node_id(), true));

        // CRLs made at once on three nodes: numbers only grow, and no number names two CRLs.
        let mut seen = std::collections::BTreeMap::<u64, Vec<u8>>::new();
        let mut last = 0;
        for _ in 0..5 {
            let crls = futures_all(nodes.iter().map(|n| {
                let n = n.clone();
                async move { n.regenerate_crl().await.unwrap() }
            }))
            .await;
            for der in crls {
                let number = crl_number(&der);
                assert!(number > last || seen.contains_key(&number), "{backend:?}: CRL number {number} after {last}");
                if let Some(earlier) = seen.get(&number) {
                    assert!(earlier == &der, "{backend:?}: two different CRLs numbered {number}");
                }
                seen.insert(number, der);
            }
            last = *seen.keys().max().unwrap();
        }
        assert!(seen.len() >= 5, "{backend:?}: a new CRL each round: {:?}", seen.keys());
        b.stop().await;
        c.stop().await;
        a.server.stop().await;
    }
}

/// Runs the futures at once and returns their outputs in order.
async fn futures_all<F: std::future::Future + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn nodes_starting_at_once_on_an_empty_database_share_one_ca() {
    for backend in backends() {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let database_url = match backend {
            yiqian_store::Backend::Sqlite => {
                format!("sqlite://{}?mode=rwc", dirs[0].path().join("shared.db").display())
            }
            yiqian_store::Backend::Postgres => yiqian_store::testing::fresh_postgres_database().await,
        };
        let keys: Vec<String> = (0..3).map(|_| yiqian_store::MasterKey::generate().to_base64()).collect();
        let configs: Vec<Config> = dirs
            .iter()
            .map(|d| {
                let mut c = node_config(d.path().join("data"), &database_url);
                (c.master_key, c.pin_escrow_key, c.sandbox_gateway_key) =
                    (keys[0].clone(), keys[1].clone(), keys[2].clone());
                c
            })
            .collect();
        let servers = futures_all(configs.into_iter().map(|c| async move { Server::start(&c).await })).await;
        let servers: Vec<Server> =
            servers.into_iter().map(|s| s.unwrap_or_else(|e| panic!("{backend:?}: a node refused: {e}"))).collect();
        let mut cas = Vec::new();
        for s in &servers {
            let r = reqwest::get(format!("{}/pki/ca.crt", s.public_url)).await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            cas.push(r.bytes().await.unwrap());
        }
        assert!(cas.iter().all(|c| c == &cas[0]), "{backend:?}: every node serves the one issuing CA");
        for s in servers {
            s.stop().await;
        }
    }
}

/// `yiqian db copy`: the embedded deployment (SQLite, blobs in its data directory) moves to
/// PostgreSQL and a bucket, a service started on the copy serves the same order and the same
/// face video, a second copy into the same database is refused, and the copy comes back to a
/// new SQLite file and directory just as whole.
#[tokio::test]
async fn a_deployment_moves_to_postgresql_and_a_bucket_and_back_without_losing_a_byte() {
    let Some(s3) = yiqian_store::testing::test_s3_settings() else {
        eprintln!("no S3-protocol server (YIQIAN_TEST_S3_URL): skipped");
        return;
    };
    if !backends().contains(&yiqian_store::Backend::Postgres) {
        eprintln!("no PostgreSQL (YIQIAN_TEST_DATABASE_URL): skipped");
        return;
    }
    let h = start(yiqian_store::Backend::Sqlite).await;
    let token = h.login("13800138000").await;
    let id = h.create_order(&token).await;
    h.pay(&token, &id).await;
    let mut video = mp4();
    video.extend((0..3_000_000u32).map(|i| i.to_le_bytes()[1]));
    let m = Materials { video: (video.clone(), "liveness.mp4".into()), ..Materials::default() };
    h.complete_materials_with(&token, &id, "13800138000", m).await;
    let before = h.order(&token, &id).await;
    let data = h.dir.path().join("data");
    h.server.stop().await;

    let postgres = yiqian_store::testing::fresh_postgres_database().await;
    let bucket = format!("{}/{}/{}", s3.endpoint, s3.bucket, s3.prefix);
    let envs = [
        ("YIQIAN_S3_ACCESS_KEY_ID", s3.access_key_id.clone()),
        ("YIQIAN_S3_SECRET_ACCESS_KEY", s3.secret_access_key.clone()),
    ];
    let (ok, out) = run_yiqian(&data, &envs, &["db", "copy", "--to", &postgres, "--blobs-to", &bucket]);
    assert!(ok, "{out}");
    assert!(out.contains("audit chain intact") && out.contains("blobs"), "{out}");
    assert!(!out.contains("yiqian:yiqian@"), "no database password in the output: {out}");
    let (ok, out) = run_yiqian(&data, &envs, &["db", "copy", "--to", &postgres, "--blobs-to", &bucket]);
    assert!(!ok && out.contains("not empty"), "a second copy is refused: {out}");

    // The service on the copy: same keys (the data directory's files), database and bucket moved.
    std::fs::rename(data.join("blobs"), data.join("blobs-before-the-move")).unwrap();
    let mut config = node_config(data.clone(), &postgres);
    blobs_in_bucket(&mut config, &s3);
    let moved = Server::start(&config).await.unwrap_or_else(|e| panic!("the service on the copy: {e}"));
    let order = reqwest::Client::new()
        .get(format!("{}/api/v1/orders/{id}", moved.public_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(order.json::<serde_json::Value>().await.unwrap(), before, "the order reads the same on the copy");
    let dossier_video = |app: &yiqian_app::App| {
        let app = app.clone();
        let id = id.clone();
        async move {
            let store = app.store().clone();
            let mut tx = store.read().await.unwrap();
            let evidence =
                tx.material(&yiqian_domain::OrderId::parse(&id).unwrap(), "liveness").await.unwrap().unwrap();
            drop(tx);
            store.get_blob(evidence["video"].as_str().unwrap()).await.unwrap().1
        }
    };
    assert!(dossier_video(&moved.app).await == video, "the face video opens from the bucket");
    moved.stop().await;

    // And back: to a new SQLite file and blob directory.
    let back = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", back.path().join("back.db").display());
    let blobs_dir = back.path().join("blobs");
    let mut cfg = std::fs::File::create(back.path().join("moved.toml")).unwrap();
    use std::io::Write;
    writeln!(
        cfg,
        "database_url = \"{postgres}\"\n[blobs]\nstore = \"s3\"\nendpoint = \"{}\"\nbucket = \"{}\"\nprefix = \"{}\"\naccess_key_id = \"{}\"",
        s3.endpoint, s3.bucket, s3.prefix, s3.access_key_id
    )
    .unwrap();
    drop(cfg);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_yiqian"))
        .args(["db", "copy", "--to", &sqlite, "--blobs-to"])
        .arg(&blobs_dir)
        .arg("--data")
        .arg(&data)
        .env("YIQIAN_CONFIG", back.path().join("moved.toml"))
        .env_remove("YIQIAN_DATABASE_URL")
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("audit chain intact"), "{text}");
    let config = node_config(data.clone(), &sqlite);
    std::fs::rename(&blobs_dir, data.join("blobs")).unwrap();
    let home = Server::start(&config).await.unwrap_or_else(|e| panic!("the service back on SQLite: {e}"));
    assert!(dossier_video(&home.app).await == video, "the face video opens from the directory again");
    home.stop().await;
}

/// Every query of an applicant's journey, its review, an OCSP lookup, a metrics scrape and the
/// retention job's search finds its rows through an index on PostgreSQL: with sequential scans
/// made a last resort for the database (`enable_seqscan = off`, so the planner takes any index
/// that serves, even on tiny tables), a whole journey
/// leaves no sequential scan on a table that grows with the business — a query scanning one
/// would cost time in proportion to its rows at a million orders.
#[tokio::test]
async fn the_queries_of_a_journey_use_indexes_on_postgresql() {
    use sqlx::{Connection, Executor, Row};
    if !backends().contains(&yiqian_store::Backend::Postgres) {
        eprintln!("no PostgreSQL (YIQIAN_TEST_DATABASE_URL): skipped");
        return;
    }
    let url = yiqian_store::testing::fresh_postgres_database().await;
    let name = database_name(&url);
    let mut admin = sqlx::AnyConnection::connect(&url).await.unwrap();
    admin.execute(sqlx::AssertSqlSafe(format!("ALTER DATABASE {name} SET enable_seqscan = off"))).await.unwrap();
    // Migrate first, in a process of its own: building the indexes scans their tables, and a
    // process that has exited has handed in its statistics.
    let master = yiqian_store::MasterKey::generate().to_base64();
    let scratch = tempfile::tempdir().unwrap();
    let env = [("YIQIAN_DATABASE_URL", url.clone()), ("YIQIAN_MASTER_KEY", master.clone())];
    let (ok, out) = run_yiqian(&scratch.path().join("data"), &env, &["migrate"]);
    assert!(ok, "{out}");
    let scans = |rows: Vec<sqlx::any::AnyRow>| -> std::collections::BTreeMap<String, i64> {
        rows.iter().map(|r| (r.get::<String, _>("t"), r.get::<i64, _>("seq_scan"))).collect()
    };
    let query = "SELECT relname::text AS t, seq_scan FROM pg_stat_user_tables ORDER BY relname";
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = scans(sqlx::query(query).fetch_all(&mut admin).await.unwrap());
    let h = start_configured(yiqian_store::Backend::Postgres, false, |c| {
        c.database_url = url.clone();
        c.master_key = master.clone();
    })
    .await;
    let token = h.login("13800138000").await;
    let id = h.create_order(&token).await;
    h.pay(&token, &id).await;
    h.complete_materials_with(&token, &id, "13800138000", Materials::default()).await;
    let reviewer = console_login(&h, "li.wei", "reviewer").await;
    assert_eq!(reviewer.get(&format!("/console/review/{id}")).await.status, StatusCode::OK);
    h.order(&token, &id).await;
    // A relying party asks OCSP about a certificate (a status read by serial).
    let ca = h.server.app.issuing_ca().await.unwrap();
    let serial = yiqian_pki::SerialNumber::random();
    let request = yiqian_pki::CertId::for_serial(yiqian_pki::CertIdHash::Sha1, &ca.certificate, &serial).request_der();
    assert!(h.server.app.ocsp(&request).await.this_update.is_some());
    // A scrape of /metrics (orders and outbox by state) and the retention job's search.
    h.server.app.observe_gauges().await.unwrap();
    h.server.app.run_retention(false).await.unwrap();
    h.server.stop().await;
    // The service's connections are closed: their statistics are in.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    admin.execute("SELECT pg_stat_clear_snapshot()").await.unwrap();
    let after = scans(sqlx::query(query).fetch_all(&mut admin).await.unwrap());
    // Tables of a handful of rows that do not grow with orders, and the migrations' own table.
    let small = ["_sqlx_migrations", "audit_head", "ca_keys", "key_checks", "job_runs"];
    let scanned: Vec<String> = after
        .iter()
        .map(|(t, n)| (t, n - before.get(t).copied().unwrap_or(0)))
        .filter(|(t, n)| *n > 0 && !small.contains(&t.as_str()))
        .map(|(t, n)| format!("{t} ({n} scans)"))
        .collect();
    assert!(scanned.is_empty(), "sequential scans on growing tables: {}", scanned.join(", "));
    admin.close().await.unwrap();
}

/// A PostgreSQL deployment backed up while it serves (its snapshot read at `REPEATABLE READ`),
/// verified, and restored into another, empty PostgreSQL database by a node holding only the
/// kept keys: the order reads the same there and the audit chain verifies.
#[tokio::test]
async fn a_postgresql_deployment_is_backed_up_while_it_serves_and_restored_into_another() {
    if !backends().contains(&yiqian_store::Backend::Postgres) {
        eprintln!("no PostgreSQL (YIQIAN_TEST_DATABASE_URL): skipped");
        return;
    }
    let h = start(yiqian_store::Backend::Postgres).await;
    let token = h.login("13800138000").await;
    let id = h.create_order(&token).await;
    h.pay(&token, &id).await;
    h.complete_materials(&token, &id, "13800138000").await;
    let before = h.order(&token, &id).await;
    let data = h.config.data_dir.clone();
    let source = [("YIQIAN_DATABASE_URL", h.config.database_url.clone())];
    // Another applicant orders while the backup is taken.
    let other = h.login("13800138001").await;
    let backup = h.dir.path().join("backup");
    let (taken, _) = tokio::join!(
        tokio::task::spawn_blocking({
            let (data, backup, source) = (data.clone(), backup.clone(), source.clone());
            move || run_yiqian(&data, &source, &["backup", "--out", backup.to_str().unwrap()])
        }),
        h.create_order(&other)
    );
    let (ok, out) = taken.unwrap();
    assert!(ok && out.contains("backup written to"), "{out}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["source"], "postgres");
    let (ok, out) = run_yiqian(&data, &[], &["backup", "verify", backup.to_str().unwrap()]);
    assert!(ok && out.contains("backup intact"), "{out}");
    h.server.stop().await;

    let restored = h.dir.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    for key in ["master.key", "pin-escrow.key", "sandbox-gateway.key"] {
        std::fs::copy(data.join(key), restored.join(key)).unwrap();
    }
    let target = yiqian_store::testing::fresh_postgres_database().await;
    let into = [("YIQIAN_DATABASE_URL", target.clone())];
    let (ok, out) = run_yiqian(&restored, &into, &["restore", "--from", backup.to_str().unwrap()]);
    assert!(ok && out.contains("restored the backup"), "{out}");
    let (ok, out) = run_yiqian(&restored, &into, &["audit", "verify"]);
    assert!(ok && out.contains(manifest["audit_head"].as_str().unwrap()), "{out}");
    let node = Server::start(&node_config(restored.clone(), &target)).await.unwrap();
    let order = reqwest::Client::new()
        .get(format!("{}/api/v1/orders/{id}", node.public_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(order.json::<serde_json::Value>().await.unwrap(), before, "the order reads the same after the restore");
    node.stop().await;
}
