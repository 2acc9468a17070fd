//! The operator's commands, run as a person would: `migrate`, `sms outbox` and
//! `audit verify` on a data directory the service wrote, including a tampered one;
//! `providers check` on a good and a broken vendor configuration; `payments reconcile`.
//! `db seed` on a sandbox deployment (and its refusal on a real one).

mod common;

use common::*;
use sqlx::Connection;
use yiqian_store::Backend;
use yiqian_store::audit::AuditVerdict;

fn yiqian(data: &std::path::Path, args: &[&str]) -> (bool, String) {
    run_yiqian(data, &[], args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_outbox_and_audit_verify_on_a_real_data_directory() {
    let h = start(yiqian_store::Backend::Sqlite).await;
    let token = h.login("13800138000").await;
    let id = h.create_order(&token).await;
    h.pay(&token, &id).await;
    // The paid SMS is delivered by the outbox after the payment; wait for it before stopping.
    assert!(h.sms_containing("13800138000", "已支付成功").await.is_some());
    h.server.stop().await;
    let data = h.dir.path().join("data");

    let (ok, out) = yiqian(&data, &["migrate"]);
    assert!(ok, "{out}");

    let (ok, out) = yiqian(&data, &["sms", "outbox"]);
    assert!(ok, "{out}");
    let lines: Vec<serde_json::Value> =
        out.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() >= 2, "{out}");
    assert!(lines[0]["text"].as_str().unwrap().contains("已支付成功"), "newest first: {out}");
    assert!(lines.iter().all(|m| m["phone"] == "13800138000"));

    let (ok, out) = yiqian(&data, &["audit", "verify"]);
    assert!(ok && out.contains("audit trail intact"), "{out}");

    // Someone with database access rewrites history: the command names the entry.
    let url = format!("sqlite://{}", data.join("yiqian.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE audit_events SET actor = 'staff:mallory' WHERE seq = 2").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let (ok, out) = yiqian(&data, &["audit", "verify"]);
    assert!(!ok, "{out}");
    assert!(out.contains("BROKEN at entry 2"), "{out}");
}

#[test]
fn a_bad_configuration_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("yiqian.toml");
    std::fs::write(&file, "[providers]\npayment_wechat = \"paypal\"\n").unwrap();
    let (ok, out) = yiqian(dir.path(), &["--config", file.to_str().unwrap(), "migrate"]);
    assert!(!ok);
    assert!(out.contains("unknown payment_wechat provider \"paypal\"; available: sandbox, wechatpay"), "{out}");
}

#[test]
fn providers_check_loads_every_vendor_without_calling_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = yiqian_sim::accounts::SimAccounts::generate().unwrap();
    let keys = dir.path().join("accounts");
    accounts.write(&keys).unwrap();
    let file = dir.path().join("yiqian.toml");
    // Nothing listens at this address: the check must not need it.
    for certificates in [false, true] {
        std::fs::write(&file, accounts.yiqian_config(&keys, "http://127.0.0.1:9", certificates)).unwrap();
        let (ok, out) = yiqian(dir.path(), &["--config", file.to_str().unwrap(), "providers", "check"]);
        assert!(ok, "{out}");
        for vendor in
            ["ok  wechatpay:", "ok  alipay:", "ok  tencent sms:", "ok  tencent identity:", "ok  sf:", "ok  nuonuo:"]
        {
            assert!(out.contains(vendor), "{vendor}: {out}");
        }
        assert!(!out.contains(&accounts.tencent.secret_key), "no secret printed");
    }
    assert!(yiqian(dir.path(), &["--config", file.to_str().unwrap(), "providers", "check"]).1.contains("until"));

    // A secret from the environment instead of a file; then a missing one.
    let text = accounts.yiqian_config(&keys, "http://127.0.0.1:9", false);
    let without = text.replace(&format!("secret_key_file = \"{}\"", keys.join("tencent_secret_key").display()), "");
    std::fs::write(&file, &without).unwrap();
    let env = [("YIQIAN_TENCENT_SECRET_KEY", accounts.tencent.secret_key.clone())];
    let (ok, out) = run_yiqian(dir.path(), &env, &["--config", file.to_str().unwrap(), "providers", "check"]);
    assert!(ok, "{out}");
    let (ok, out) = yiqian(dir.path(), &["--config", file.to_str().unwrap(), "providers", "check"]);
    assert!(!ok);
    assert!(out.contains("tencent.secret_key") && out.contains("YIQIAN_TENCENT_SECRET_KEY"), "{out}");

    // A key that is not a key.
    std::fs::write(keys.join("wechatpay_merchant_key.pem"), "not a key").unwrap();
    std::fs::write(&file, &text).unwrap();
    let (ok, out) = yiqian(dir.path(), &["--config", file.to_str().unwrap(), "providers", "check"]);
    assert!(!ok);
    assert!(out.contains("wechatpay.merchant_key"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_reconcile_reports_a_day() {
    let h = start(yiqian_store::Backend::Sqlite).await;
    let token = h.login("13800138000").await;
    let id = h.create_order(&token).await;
    h.pay(&token, &id).await;
    assert!(h.sms_containing("13800138000", "已支付成功").await.is_some());
    let today = h.server.app.yesterday_in_beijing().succ_opt().unwrap().to_string();
    h.server.stop().await;
    let data = h.dir.path().join("data");
    // The sandbox gateway forgets its trades when its process ends: a fresh process finds
    // none of today's, and says so for the one payment.
    let (ok, out) = yiqian(&data, &["payments", "reconcile", "--date", &today]);
    assert!(!ok, "{out}");
    assert!(out.contains("1 payments") && out.contains("recorded_not_paid"), "{out}");
    let (ok, out) = yiqian(&data, &["payments", "reconcile", "--date", "2020-01-01"]);
    assert!(ok, "{out}");
    assert!(out.contains("2020-01-01: 0 payments"), "{out}");
}

/// `yiqian serve` as a separate process under hostile bodies: 20 clients at once each send
/// 30 MB to a route that takes a small body (the JSON API, the console's login form, a payment
/// webhook, the station's enrolment, the OCSP responder), without logging in. Each is refused
/// early, and the process's peak resident memory (`VmHWM` in `/proc/PID/status`) grows by a few
/// MB, not by the bodies (before per-route limits it reached 639 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_bodies_are_refused_early_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_yiqian"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(dir.path().join("data"))
        .env_remove("YIQIAN_DATABASE_URL")
        .env_remove("YIQIAN_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start yiqian serve");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pid = child.id();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("yiqian serve exited at start: {status}");
        }
        assert!(std::time::Instant::now() < deadline, "yiqian serve did not answer within 60 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _child = Kill(child);
    let peak = || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap();
        kb.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap() / 1024
    };
    // Warm up what a first request allocates (pages, the database pool) before the baseline.
    http.get(format!("{base}/")).send().await.unwrap();
    let before = peak();

    let body = vec![b'7'; 30 * 1024 * 1024];
    let routes = [
        ("/api/v1/session/code", "application/json"),
        ("/console/login", "application/x-www-form-urlencoded"),
        ("/notify/wechatpay", "application/json"),
        ("/api/v1/station/enrolment", "application/json"),
        ("/pki/ocsp", "application/ocsp-request"),
    ];
    let mut sends = Vec::new();
    for (route, content_type) in routes {
        for _ in 0..4 {
            let req = http.post(format!("{base}{route}")).header("content-type", content_type).body(body.clone());
            sends.push(tokio::spawn(async move { req.send().await.map(|r| r.status()) }));
        }
    }
    for send in sends {
        // Refused (413 or another 4xx), or the connection closed while the rest was being sent.
        if let Ok(status) = send.await.unwrap() {
            assert!(status.is_client_error(), "{status}");
        }
    }
    let after = peak();
    println!("peak RSS {before} MB before, {after} MB after 20 hostile 30 MB bodies");
    assert!(after - before < 60, "peak RSS grew from {before} MB to {after} MB");
    assert!(http.get(format!("{base}/healthz")).send().await.unwrap().status().is_success(), "still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_seed_fills_a_sandbox_deployment_that_then_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sample = dir.path().join("sample.jsonl");
    let (ok, out) = yiqian(&data, &["db", "seed", "--orders", "20"]);
    assert!(ok && out.contains("seeded 20 orders (10 with certificates)"), "{out}");
    let (ok, out) = yiqian(&data, &["db", "seed", "--orders", "300", "--sessions", "10"]);
    assert!(!ok && out.contains("--sample-out"), "{out}");
    let args = ["db", "seed", "--orders", "300", "--sessions", "10", "--sample-out", sample.to_str().unwrap()];
    let (ok, out) = yiqian(&data, &args);
    assert!(ok && out.contains("seeded 300 orders (270 with certificates)") && out.contains("10 sessions"), "{out}");
    let (ok, out) = yiqian(&data, &["audit", "verify"]);
    assert!(ok && out.contains("audit trail intact"), "{out}");

    // The service serves the seeded orders to their applicants, and OCSP answers for their
    // certificates from cacheable GETs.
    let config =
        yiqian::config::Config { listen: "127.0.0.1:0".parse().unwrap(), data_dir: data.clone(), ..Default::default() };
    let server = yiqian::server::Server::start(&config).await.unwrap();
    let http = reqwest::Client::new();
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&sample).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 10);
    let mut states = std::collections::BTreeSet::new();
    for s in &lines {
        let url = format!("{}/api/v1/orders/{}", server.public_url, s["order"].as_str().unwrap());
        let order: serde_json::Value =
            http.get(&url).bearer_auth(s["token"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
        assert_eq!(order["id"], s["order"], "{order}");
        states.insert(order["state"].as_str().unwrap().to_owned());
        if let Some(ocsp) = s["ocsp"].as_str() {
            assert_eq!(order["state"], "activated");
            use base64::Engine;
            let path = ocsp_get_path(&base64::engine::general_purpose::STANDARD.decode(ocsp).unwrap());
            let r = http.get(format!("{}/pki/ocsp/{path}", server.public_url)).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert!(r.headers().contains_key("etag"), "{:?}", r.headers());
            assert!(r.bytes().await.unwrap().len() > 100);
        }
    }
    assert!(states.contains("activated"), "{states:?}");
    // Someone else's session does not open an order.
    let url = format!("{}/api/v1/orders/{}", server.public_url, lines[0]["order"].as_str().unwrap());
    let r = http.get(&url).bearer_auth(lines[1]["token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 404);
    server.stop().await;

    // A deployment that talks to real providers holds real people: never seeded.
    let accounts = yiqian_sim::accounts::SimAccounts::generate().unwrap();
    let keys = dir.path().join("accounts");
    accounts.write(&keys).unwrap();
    let file = dir.path().join("yiqian.toml");
    std::fs::write(&file, accounts.yiqian_config(&keys, "http://127.0.0.1:9", false)).unwrap();
    let (ok, out) = yiqian(&data, &["--config", file.to_str().unwrap(), "db", "seed", "--orders", "5"]);
    assert!(!ok && out.contains("refusing to seed") && out.contains("payment_wechat = wechatpay"), "{out}");
}

/// `yiqian serve` with JSON logs and an operators' listener: every log line is one JSON
/// object; the lines written while a request is handled carry its id (the one the caller sent)
/// and its route template, never the phone number it carried; `/metrics` is served on the
/// operators' listener only, with the health probes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_request_ids_and_metrics_stay_on_the_operators_listener() {
    let dir = tempfile::tempdir().unwrap();
    let free_port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (port, ops_port) = (free_port(), free_port());
    let log = dir.path().join("serve.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_yiqian"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(dir.path().join("data"))
        .env_remove("YIQIAN_DATABASE_URL")
        .env_remove("YIQIAN_CONFIG")
        .env("YIQIAN_LOG_FORMAT", "json")
        .env("YIQIAN_LOG", "info,yiqian_web=debug")
        .env("YIQIAN_METRICS_LISTEN", format!("127.0.0.1:{ops_port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start yiqian serve");
    let (base, ops) = (format!("http://127.0.0.1:{port}"), format!("http://127.0.0.1:{ops_port}"));
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match http.get(format!("{ops}/readyz")).send().await {
            Ok(r) if r.status().is_success() => break,
            _ => {}
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("yiqian serve exited at start: {status}\n{}", std::fs::read_to_string(&log).unwrap());
        }
        assert!(std::time::Instant::now() < deadline, "yiqian serve was not ready within 60 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let phone = "13612345678";
    let r = http
        .post(format!("{base}/api/v1/session/code"))
        .header("x-request-id", "journey-42")
        .json(&serde_json::json!({"phone": phone}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(r.headers()["x-request-id"], "journey-42");
    assert_eq!(http.get(format!("{base}/metrics")).send().await.unwrap().status(), reqwest::StatusCode::NOT_FOUND);
    let metrics = http.get(format!("{ops}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"yiqian_http_requests_total{method="POST",route="/api/v1/session/code",status="200"} 1"#)
    );
    assert!(http.get(format!("{ops}/healthz")).send().await.unwrap().status().is_success());
    let _ = child.kill();
    let _ = child.wait();

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    assert!(lines.iter().any(|l| l["level"] == "INFO"), "{text}");
    let of_request: Vec<&serde_json::Value> = lines.iter().filter(|l| l["span"]["id"] == "journey-42").collect();
    assert!(!of_request.is_empty(), "no line of the request: {text}");
    for line in &of_request {
        assert_eq!(line["span"]["route"], "/api/v1/session/code", "{line}");
        assert_eq!(line["span"]["method"], "POST", "{line}");
    }
    assert!(of_request.iter().any(|l| l["fields"]["message"] == "answered" && l["fields"]["status"] == 200));
    assert!(!text.contains(phone) && !text.contains(&phone[3..]), "the phone number was logged: {text}");
}

/// `yiqian backup` of a node serving journeys, then `yiqian backup verify` and `yiqian
/// restore` into a new data directory given only the kept keys: the restored node has every
/// order, blob and audit entry the backup counted (the chain verifies to the recorded head, the
/// ID card decrypts with the kept key), and an applicant logs in there and finds their order. A
/// restore without the keys, or into a database that holds data, is refused; a backup with an
/// altered blob, a missing manifest or a manifest that lies is refused by `verify`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_under_load_restores_whole_and_a_damaged_one_is_refused() {
    use common::phone::{Phone, journey, phone_client};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let h = std::sync::Arc::new(start_configured(Backend::Sqlite, false, |c| c.trust_x_real_ip = true).await);
    let data = h.config.data_dir.clone();
    let phone_of = |n: usize| Phone {
        base: h.base.clone(),
        http: phone_client(n),
        token: None,
        requests: std::sync::Arc::new(AtomicUsize::new(0)),
    };
    let mut first = phone_of(0);
    let (first_order, _) = journey(h.clone(), &mut first, 0, None).await;
    // Journeys go on while the backup is taken.
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for lane in 0..3 {
        let (h, stop, mut phone) = (h.clone(), stop.clone(), phone_of(lane + 1));
        load.push(tokio::spawn(async move {
            let mut done = 0;
            for n in (1 + lane..).step_by(3) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                phone.token = None;
                journey(h.clone(), &mut phone, n, None).await;
                done += 1;
            }
            done
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let backup = h.dir.path().join("backup");
    let (ok, out) = {
        let (data, backup) = (data.clone(), backup.clone());
        tokio::task::spawn_blocking(move || run_yiqian(&data, &[], &["backup", "--out", backup.to_str().unwrap()]))
            .await
            .unwrap()
    };
    assert!(ok && out.contains("backup written to") && out.contains("the keys are not in it"), "{out}");
    stop.store(true, Ordering::Relaxed);
    let mut journeys = 0;
    for lane in load {
        journeys += lane.await.unwrap();
    }
    assert!(journeys >= 1, "journeys ran while the backup was taken");
    println!("{journeys} journeys beside the backup: {out}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["keys"]["included"], false);
    assert!(
        !std::fs::read_to_string(backup.join("manifest.json"))
            .unwrap()
            .contains(&std::fs::read_to_string(data.join("master.key")).unwrap())
    );
    let (ok, out) = run_yiqian(&data, &[], &["backup", "verify", backup.to_str().unwrap()]);
    assert!(ok && out.contains("backup intact"), "{out}");
    let (ok, out) = run_yiqian(&data, &[], &["backup", "--out", backup.to_str().unwrap()]);
    assert!(!ok && out.contains("is not empty"), "{out}");

    // Without the keys: refused, saying which key and where to give it.
    let bare = h.dir.path().join("bare");
    let (ok, out) = run_yiqian(&bare, &[], &["restore", "--from", backup.to_str().unwrap()]);
    assert!(!ok && out.contains("master key for personal data, which no backup holds"), "{out}");
    // With another master key: refused too.
    std::fs::create_dir_all(&bare).unwrap();
    let other = yiqian_store::MasterKey::generate().to_base64();
    let (ok, out) =
        run_yiqian(&bare, &[("YIQIAN_MASTER_KEY", other)], &["restore", "--from", backup.to_str().unwrap()]);
    assert!(!ok && out.contains("is not the one the backup's data was sealed with"), "{out}");
    // With the kept keys (copied beside the backup, as an operator keeps them).
    let restored = h.dir.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    for key in ["master.key", "pin-escrow.key", "sandbox-gateway.key"] {
        std::fs::copy(data.join(key), restored.join(key)).unwrap();
    }
    let (ok, out) = run_yiqian(&restored, &[], &["restore", "--from", backup.to_str().unwrap()]);
    assert!(ok && out.contains("restored the backup"), "{out}");
    let (ok, out) = run_yiqian(&restored, &[], &["restore", "--from", backup.to_str().unwrap()]);
    assert!(!ok && out.contains("not empty"), "a second restore over the first: {out}");

    // Everything the backup counted is there, and the personal data opens with the kept key.
    let key = yiqian_store::vault::read_key_file(&restored.join("master.key")).unwrap().unwrap();
    let store = yiqian_store::Store::open(
        &format!("sqlite://{}?mode=rwc", restored.join("yiqian.db").display()),
        yiqian_store::Vault::new(&key),
        std::sync::Arc::new(yiqian_store::blobs::LocalBlobStore::new(restored.join("blobs"))),
    )
    .await
    .unwrap();
    for (table, rows) in store.row_counts().await.unwrap() {
        assert_eq!(manifest["rows"][&table], rows, "{table}");
    }
    assert!(manifest["rows"]["orders"].as_i64().unwrap() >= 1);
    match store.verify_audit().await.unwrap() {
        AuditVerdict::Intact { entries, head } => {
            assert_eq!(
                (entries, head.as_str()),
                (manifest["audit_entries"].as_i64().unwrap(), manifest["audit_head"].as_str().unwrap())
            );
        }
        broken => panic!("{broken:?}"),
    }
    let blobs = manifest["blobs"].as_u64().unwrap();
    assert!(blobs >= 4, "the first order's photos, video and signature: {manifest}");
    let mut conn =
        sqlx::AnyConnection::connect(&format!("sqlite://{}", restored.join("yiqian.db").display())).await.unwrap();
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM blobs").fetch_all(&mut conn).await.unwrap();
    assert_eq!(ids.len() as u64, blobs);
    for id in &ids {
        store.get_blob(id).await.unwrap_or_else(|e| panic!("blob {id}: {e}"));
    }
    let order = yiqian_domain::OrderId::parse(&first_order).unwrap();
    let card = store.read().await.unwrap().material(&order, "id_card").await.unwrap().unwrap();
    assert_eq!(card["card"]["name"], "张三", "{card}");
    store.close().await;
    // The restored node serves: the first applicant logs in and finds their order.
    let node = start_configured(Backend::Sqlite, false, |c| c.data_dir = restored.clone()).await;
    // Their session was in the backup too (a new code is still a minute away: the SMS limits
    // were restored with everything else).
    let mine = node.get(first.token.as_deref(), "/api/v1/orders").await.ok();
    assert_eq!(mine["orders"][0]["id"], first_order.as_str(), "{mine}");
    node.server.stop().await;

    // Damaged backups are refused, each saying what is wrong.
    let damaged = |name: &str| {
        let copy = h.dir.path().join(name);
        let (ok, out) = std::process::Command::new("cp")
            .arg("-r")
            .arg(&backup)
            .arg(&copy)
            .output()
            .map(|o| (o.status.success(), o))
            .unwrap();
        assert!(ok, "{out:?}");
        copy
    };
    let verify = |dir: &std::path::Path| run_yiqian(&data, &[], &["backup", "verify", dir.to_str().unwrap()]);
    let altered = damaged("altered-blob");
    let blob = files_under(&altered.join("blobs")).into_iter().next().unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let (ok, out) = verify(&altered);
    assert!(!ok && out.contains("has changed since the backup was taken"), "{out}");
    let unfinished = damaged("no-manifest");
    std::fs::remove_file(unfinished.join("manifest.json")).unwrap();
    let (ok, out) = verify(&unfinished);
    assert!(!ok && out.contains("did not finish"), "{out}");
    let lying = damaged("lying-manifest");
    let mut m = manifest.clone();
    m["rows"]["orders"] = serde_json::json!(m["rows"]["orders"].as_i64().unwrap() + 1);
    std::fs::write(lying.join("manifest.json"), serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let (ok, out) = verify(&lying);
    assert!(!ok && out.contains("row counts differ"), "{out}");
    let missing = damaged("missing-blob");
    std::fs::remove_file(files_under(&missing.join("blobs")).into_iter().next().unwrap()).unwrap();
    let (ok, out) = verify(&missing);
    assert!(!ok && out.contains("is missing"), "{out}");
}
