//! Three `yiqian serve` processes on one PostgreSQL database and one bucket on an S3-protocol
//! server, behind nginx (Debian's package) dealing requests round robin, as a CA would run
//! them. Applicants go through their journeys at once — every request may land on any node —
//! and one node is killed with SIGKILL while they do. Each journey resumes the way a phone
//! does (it reads its order again and does the next step), and every one reaches 受理成功; no
//! order is paid twice; the scheduled jobs ran at most once per period; the audit chain
//! verifies; the blobs are in the bucket.
//!
//! Needs PostgreSQL (`YIQIAN_TEST_DATABASE_URL`), an S3-protocol server (`YIQIAN_TEST_S3_URL`)
//! and nginx; skipped without them unless CI requires them (`YIQIAN_REQUIRE_POSTGRES`,
//! `YIQIAN_REQUIRE_S3`, `YIQIAN_REQUIRE_NGINX`).
//!
//! Also here: one node taking many large face videos at once, its peak memory read from
//! `/proc` (the figures in docs/benchmarks.md come from this test).

mod common;

use common::phone::*;
use common::*;
use reqwest::StatusCode;
use serde_json::json;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use yiqian_store::Backend;

const APPLICANTS: usize = 12;

/// The settings file of the nodes: they believe the `X-Real-IP` the test's phones send, so
/// that each applicant comes from a network of their own (as on a campaign day) and the
/// per-network SMS limit counts them apart.
fn node_settings(dir: &Path) -> PathBuf {
    let path = dir.join("yiqian.toml");
    std::fs::write(&path, "trust_x_real_ip = true\n").unwrap();
    path
}

/// An HTTP client for applicant `n`'s phone, on a network of its own.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Child processes killed (SIGKILL) and reaped when the test ends, however it ends.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn wait_until_answering(base: &str, what: &str, child: &mut Child) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(http.get(format!("{base}/api/v1/product")).send().await, Ok(r) if r.status() == StatusCode::OK) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not answer within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn nginx_config(dir: &Path, port: u16, nodes: &[u16]) -> PathBuf {
    let servers: String =
        nodes.iter().map(|p| format!("        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n")).collect();
    let conf = format!(
        "worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
user root;
events {{ worker_connections 1024; }}
http {{
    log_format upstream '$upstream_addr $status';
    access_log {dir}/access.log upstream;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 40m;
    upstream yiqian {{
{servers}    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://yiqian;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $http_host;
            # The test's phones say which network they are on (see node_settings).
            proxy_set_header X-Real-IP $http_x_real_ip;
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
        }}
    }}
}}
",
        dir = dir.display()
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_behind_nginx_finish_every_journey_when_one_is_killed() {
    let required = |v: &str| std::env::var(v).as_deref() == Ok("1");
    if !backends().contains(&Backend::Postgres) {
        eprintln!("no PostgreSQL (YIQIAN_TEST_DATABASE_URL): skipped");
        return;
    }
    let Some(s3) = yiqian_store::testing::test_s3_settings() else {
        eprintln!("no S3-protocol server (YIQIAN_TEST_S3_URL): skipped");
        return;
    };
    if !has_tool("nginx") {
        assert!(!required("YIQIAN_REQUIRE_NGINX"), "YIQIAN_REQUIRE_NGINX=1 but nginx is not installed");
        eprintln!("no nginx: skipped");
        return;
    }
    let started = chrono::Utc::now();
    // A node in this process too: the test reads the sandbox SMS inbox and the store through it.
    let h = start_configured(Backend::Postgres, false, |c| blobs_in_bucket(c, &s3)).await;
    let key = |f: &str| std::fs::read_to_string(h.dir.path().join("data").join(f)).unwrap().trim().to_owned();
    let nginx_port = free_port();
    let public = format!("http://127.0.0.1:{nginx_port}");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let work = tempfile::tempdir().unwrap();
    let mut processes = Processes(Vec::new());
    for (i, port) in ports.iter().enumerate() {
        let data = work.path().join(format!("node{i}"));
        std::fs::create_dir_all(&data).unwrap();
        let log = std::fs::File::create(work.path().join(format!("node{i}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_yiqian"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(&data)
            .env("YIQIAN_CONFIG", node_settings(work.path()))
            .env("YIQIAN_DATABASE_URL", h.config.database_url())
            .env("YIQIAN_PUBLIC_URL", &public)
            .env("YIQIAN_MASTER_KEY", key("master.key"))
            .env("YIQIAN_PIN_ESCROW_KEY", key("pin-escrow.key"))
            .env("YIQIAN_SANDBOX_GATEWAY_KEY", key("sandbox-gateway.key"))
            .env("YIQIAN_BLOB_STORE", "s3")
            .env("YIQIAN_S3_ENDPOINT", &s3.endpoint)
            .env("YIQIAN_S3_BUCKET", &s3.bucket)
            .env("YIQIAN_S3_REGION", &s3.region)
            .env("YIQIAN_S3_ACCESS_KEY_ID", &s3.access_key_id)
            .env("YIQIAN_S3_SECRET_ACCESS_KEY", &s3.secret_access_key)
            .env("YIQIAN_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start yiqian serve");
        processes.0.push(child);
    }
    for (i, port) in ports.iter().enumerate() {
        wait_until_answering(&format!("http://127.0.0.1:{port}"), &format!("node {i}"), &mut processes.0[i]).await;
    }
    let conf = nginx_config(work.path(), nginx_port, &ports);
    let nginx = Command::new("nginx")
        .args(["-c"])
        .arg(&conf)
        .args(["-p"])
        .arg(work.path())
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    processes.0.push(nginx);
    let nginx_index = processes.0.len() - 1;
    wait_until_answering(&public, "nginx", &mut processes.0[nginx_index]).await;

    // The journeys, all at once; node 1 is killed once a third of their requests have gone.
    let h = Arc::new(h);
    let requests = Arc::new(AtomicUsize::new(0));
    let journeys: Vec<_> = (0..APPLICANTS)
        .map(|n| {
            let phone = Phone { base: public.clone(), http: phone_client(n), token: None, requests: requests.clone() };
            let h = h.clone();
            tokio::spawn(async move {
                let mut phone = phone;
                journey(h, &mut phone, n, None).await
            })
        })
        .collect();
    let expected_requests = APPLICANTS * 18;
    let deadline = Instant::now() + Duration::from_secs(60);
    while requests.load(Ordering::Relaxed) < expected_requests / 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed_after = requests.load(Ordering::Relaxed);
    processes.0[1].kill().expect("SIGKILL node 1");
    let mut orders = Vec::new();
    let mut retried = 0;
    for j in journeys {
        let (order, r) = tokio::time::timeout(Duration::from_secs(240), j).await.expect("journeys finish").unwrap();
        orders.push(order);
        retried += r;
    }
    eprintln!(
        "{APPLICANTS} journeys, {} requests, node 1 killed after {killed_after}; {retried} steps tried again",
        requests.load(Ordering::Relaxed)
    );

    // Every journey reached 受理成功, each order paid exactly once.
    let app = &h.server.app;
    for id in &orders {
        let record = stored_order(&h, id).await;
        assert_eq!(record.order.state.code(), "submitted", "{id}");
        let mut tx = app.store().read().await.unwrap();
        let payments = tx.payments_of(&yiqian_domain::OrderId::parse(id).unwrap()).await.unwrap();
        drop(tx);
        let succeeded = payments.iter().filter(|p| p.state.code() == "succeeded").count();
        assert_eq!(succeeded, 1, "{id}: one payment applied: {payments:?}");
    }
    // nginx dealt requests to every node.
    let access = std::fs::read_to_string(work.path().join("access.log")).unwrap();
    for port in &ports {
        assert!(access.contains(&format!("127.0.0.1:{port}")), "no request reached the node on {port}");
    }
    // The scheduled jobs ran at most once per period (and a little: the first period's).
    let minutes = (chrono::Utc::now() - started).num_seconds() as f64 / 60.0;
    for (job, per_minute) in [("expire_unpaid", 2.0), ("crl_refresh", 0.2), ("reconciliation", 0.0)] {
        let run = app.store().job_run(job).await.unwrap().expect("the job ran");
        let most = (minutes * per_minute).ceil() as i64 + 1;
        assert!(run.runs <= most, "{job} ran {} times in {minutes:.1} minutes: {run:?}", run.runs);
    }
    // The audit chain holds across every node's writes.
    let verdict = app.store().verify_audit().await.unwrap();
    assert!(matches!(verdict, yiqian_store::audit::AuditVerdict::Intact { .. }), "{verdict:?}");
    drop(processes);
}

/// The peak resident memory of process `pid` so far (`VmHWM`), in MB.
fn peak_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap();
    kb.trim().trim_end_matches("kB").trim().parse::<f64>().unwrap() / 1024.0
}

/// One `yiqian serve` process (SQLite, blobs in its data directory) taking 29 MB face videos
/// from many applicants at once (16; `YIQIAN_BENCH_UPLOADS` for another number). Each video is
/// checked and sealed into the store as it arrives, so the process's peak memory grows by a few
/// MB per upload, not by the videos: buffered whole, 16 of them took +620 MB. The identity check
/// reads videos whole within its own budget (32 MiB for all checks at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn face_videos_uploaded_at_once_keep_the_nodes_memory_bounded() {
    let uploads: usize = std::env::var("YIQIAN_BENCH_UPLOADS").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
    const VIDEO: usize = 29 * 1024 * 1024;
    // A node in this process on the same database reads the sandbox SMS inbox for the phones.
    let h = Arc::new(start(Backend::Sqlite).await);
    let key = |f: &str| std::fs::read_to_string(h.dir.path().join("data").join(f)).unwrap().trim().to_owned();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let work = tempfile::tempdir().unwrap();
    let child = Command::new(std::env::var("YIQIAN_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_yiqian").into()))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(work.path().join("data"))
        .env("YIQIAN_CONFIG", node_settings(work.path()))
        .env("YIQIAN_DATABASE_URL", h.config.database_url())
        .env("YIQIAN_MASTER_KEY", key("master.key"))
        .env("YIQIAN_PIN_ESCROW_KEY", key("pin-escrow.key"))
        .env("YIQIAN_SANDBOX_GATEWAY_KEY", key("sandbox-gateway.key"))
        .env("YIQIAN_CONCURRENT_UPLOADS", uploads.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start yiqian serve");
    let mut processes = Processes(vec![child]);
    wait_until_answering(&base, "yiqian serve", &mut processes.0[0]).await;
    let pid = processes.0[0].id();

    // Every applicant up to the face video, a few at a time.
    let requests = Arc::new(AtomicUsize::new(0));
    let mut phones = Vec::new();
    for batch in (0..uploads).collect::<Vec<_>>().chunks(8) {
        let ready: Vec<_> = batch
            .iter()
            .map(|&n| {
                let h = h.clone();
                let mut phone =
                    Phone { base: base.clone(), http: phone_client(n), token: None, requests: requests.clone() };
                tokio::spawn(async move {
                    let (order, _) = journey(h, &mut phone, n, Some("liveness")).await;
                    (phone, order)
                })
            })
            .collect();
        for r in ready {
            phones.push(r.await.unwrap());
        }
    }
    let mut video = mp4();
    video.resize(VIDEO, 0x5A);
    let video = bytes::Bytes::from(video);
    let before = peak_mb(pid);

    let sends: Vec<_> = phones
        .into_iter()
        .map(|(phone, order)| {
            let video = video.clone();
            tokio::spawn(async move {
                let p = |tail: &str| format!("/api/v1/orders/{order}/{tail}");
                let c = phone.post(&p("liveness/challenge"), json!({})).await.unwrap();
                let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::from(video), VIDEO as u64)
                    .file_name("liveness.mp4");
                let form = reqwest::multipart::Form::new()
                    .text("challenge_id", c["challenge_id"].as_str().unwrap().to_owned())
                    .part("video", part);
                phone.post_form(&p("liveness"), form).await.unwrap_or_else(|e| panic!("{order}: {e}"));
                let o = phone.get(&format!("/api/v1/orders/{order}")).await.unwrap();
                assert_eq!(o["next_step"], "signature", "{order}: the face step is done");
            })
        })
        .collect();
    for s in sends {
        s.await.unwrap();
    }
    let after = peak_mb(pid);
    let growth = after - before;
    eprintln!(
        "{uploads} face videos of 29 MB at once: peak RSS {before:.0} MB before, {after:.0} MB after: +{growth:.0} MB, {:.1} MB per upload",
        growth / uploads as f64
    );
    // Buffered whole, each upload took about 39 MB; sealed as it arrives, a few.
    assert!(growth < 8.0 * uploads as f64, "+{growth:.0} MB for {uploads} uploads of 29 MB");
    // Everything went to the blob directory, sealed.
    let stored: u64 =
        files_under(&work.path().join("data/blobs")).iter().map(|f| f.metadata().map(|m| m.len()).unwrap_or(0)).sum();
    assert!(stored >= (uploads * VIDEO) as u64, "{stored} bytes stored for {uploads} videos");
    drop(processes);
}
