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

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use yiqian_store::Backend;

const APPLICANTS: usize = 12;

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

/// An ID number of 张三 (male, born 1990-03-07, Dongcheng) with sequence `n`, check digit and all.
fn id_number(n: usize) -> String {
    let body = format!("11010119900307{:03}", 2 * n + 1);
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(weights).map(|(b, w)| u32::from(b - b'0') * w).sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
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
            proxy_set_header X-Real-IP $remote_addr;
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

/// An applicant's phone talking to the deployment through nginx. Every request that fails on
/// the way (a node killed under it: 502, a dropped connection) is told to the journey, which
/// reads its order again and carries on from there, as the applicant's page would.
struct Phone {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    requests: Arc<AtomicUsize>,
}

impl Phone {
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(StatusCode, Value), String> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let r = req.timeout(Duration::from_secs(60)).send().await.map_err(|e| format!("send: {e}"))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_success() { Ok((status, body)) } else { Err(format!("{status} {body}")) }
    }

    async fn get(&self, path: &str) -> Result<Value, String> {
        Ok(self.send(self.http.get(format!("{}{path}", self.base))).await?.1)
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        Ok(self.send(self.http.post(format!("{}{path}", self.base)).json(&body)).await?.1)
    }

    async fn post_form(&self, path: &str, form: reqwest::multipart::Form) -> Result<Value, String> {
        Ok(self.send(self.http.post(format!("{}{path}", self.base)).multipart(form)).await?.1)
    }
}

/// The newest verification code SMS to `phone` not among `used` (its id and its six digits),
/// from the deployment's sandbox inbox, waiting up to `tries` × 100 ms for it.
async fn unused_code(
    h: &Harness,
    phone: &str,
    used: &std::collections::HashSet<String>,
    tries: usize,
) -> Option<(String, String)> {
    for _ in 0..tries {
        let inbox = h.inbox(phone).await;
        if let Some((id, text)) = inbox.into_iter().find(|(id, t)| !used.contains(id) && t.contains("验证码")) {
            return Some((id, text.chars().filter(|c| c.is_ascii_digit()).take(6).collect()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Asks for a verification code at `path` and waits for it. A request whose answer was lost
/// (or one refused because a code was sent a moment ago) still finds the code that was sent,
/// as the applicant would in their messages.
async fn ask_code(
    h: &Harness,
    phone: &Phone,
    path: &str,
    number: &str,
    used: &mut std::collections::HashSet<String>,
) -> Result<String, String> {
    let sent = phone.post(path, json!({"phone": number})).await;
    let tries = if sent.is_ok() { 100 } else { 30 };
    match unused_code(h, number, used, tries).await {
        Some((id, code)) => {
            used.insert(id);
            Ok(code)
        }
        None => Err(sent.err().unwrap_or_else(|| "no code arrived".into())),
    }
}

/// One applicant's journey from login to 受理成功, resumed after every failed step. Returns
/// the order id and how many steps had to be tried again.
async fn journey(h: Arc<Harness>, mut phone: Phone, n: usize) -> (String, usize) {
    let number = format!("1390000{n:04}");
    let mut retried = 0;
    let mut order: Option<String> = None;
    let mut paid_at: Option<Instant> = None;
    let mut used = std::collections::HashSet::new();
    for _ in 0..200 {
        let step: Result<bool, String> = async {
            if phone.token.is_none() {
                let code = ask_code(&h, &phone, "/api/v1/session/code", &number, &mut used).await?;
                let r = phone.post("/api/v1/session", json!({"phone": number, "code": code})).await?;
                phone.token = Some(r["token"].as_str().ok_or("no token")?.to_owned());
                return Ok(false);
            }
            let Some(id) = order.clone() else {
                // An order made by a request whose answer was lost is found in 已购记录.
                let mine = phone.get("/api/v1/orders").await?;
                if let Some(existing) = mine["orders"].as_array().and_then(|o| o.first()) {
                    order = Some(existing["id"].as_str().ok_or("no id")?.to_owned());
                    return Ok(false);
                }
                let product = phone.get("/api/v1/product").await?;
                let r = phone
                    .post("/api/v1/orders", json!({"agreement_version": product["agreement_version"], "accepted": true}))
                    .await?;
                order = Some(r["id"].as_str().ok_or("no id")?.to_owned());
                return Ok(false);
            };
            let p = |tail: &str| format!("/api/v1/orders/{id}/{tail}");
            let o = phone.get(&format!("/api/v1/orders/{id}")).await?;
            match (o["state"].as_str().unwrap_or(""), o["next_step"].as_str()) {
                ("submitted", _) => return Ok(true),
                ("created", _) => {
                    // Paid a moment ago: wait for the gateway's notification before paying again.
                    if paid_at.is_some_and(|t| t.elapsed() < Duration::from_secs(5)) {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        return Ok(false);
                    }
                    let r = phone.post(&p("payments"), json!({"channel": "wechat"})).await?;
                    let url = r["pay_url"].as_str().ok_or("no pay_url")?;
                    let t = url.split("?t=").nth(1).ok_or("no cashier token")?.to_owned();
                    let confirm = phone.http.post(format!("{}/sandbox/cashier/confirm", phone.base)).form(&[("t", t)]);
                    let r = confirm.send().await.map_err(|e| e.to_string())?;
                    if r.status() != StatusCode::SEE_OTHER {
                        return Err(format!("cashier: {}", r.status()));
                    }
                    paid_at = Some(Instant::now());
                }
                ("collecting", Some("phone")) => {
                    let code = ask_code(&h, &phone, &p("phone/code"), &number, &mut used).await?;
                    phone.post(&p("phone"), json!({"phone": number, "code": code})).await?;
                }
                ("collecting", Some("id_card")) => {
                    let photos = reqwest::multipart::Form::new()
                        .part("front", reqwest::multipart::Part::bytes(jpeg()).file_name("front.jpg"))
                        .part("back", reqwest::multipart::Part::bytes(jpeg()).file_name("back.jpg"));
                    phone.post_form(&p("id-card/photos"), photos).await?;
                    phone.post(&p("id-card"), id_card(&id_number(n))).await?;
                }
                ("collecting", Some("liveness")) => {
                    let c = phone.post(&p("liveness/challenge"), json!({})).await?;
                    let mut video = mp4();
                    video.resize(2 * 1024 * 1024, n as u8);
                    let form = reqwest::multipart::Form::new()
                        .text("challenge_id", c["challenge_id"].as_str().ok_or("no challenge")?.to_owned())
                        .part("video", reqwest::multipart::Part::bytes(video).file_name("liveness.mp4"));
                    phone.post_form(&p("liveness"), form).await?;
                }
                ("collecting", Some("signature")) => {
                    let sig = reqwest::multipart::Form::new()
                        .part("image", reqwest::multipart::Part::bytes(png()).file_name("signature.png"))
                        .text("strokes", strokes());
                    phone.post_form(&p("signature"), sig).await?;
                }
                ("collecting", Some("address")) => {
                    phone.post(&p("address"), address()).await?;
                }
                ("collecting", None) => {
                    phone.post(&p("submit"), json!({})).await?;
                }
                (state, next) => return Err(format!("unexpected state {state} / {next:?}")),
            }
            Ok(false)
        }
        .await;
        match step {
            Ok(true) => return (order.expect("an order"), retried),
            Ok(false) => {}
            Err(e) => {
                retried += 1;
                eprintln!("applicant {n}: a step failed, reading the order again: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    panic!("applicant {n} never reached 受理成功 (order {order:?})");
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
    let h = start_configured(Backend::Postgres, false, |c| {
        c.blobs = yiqian::config::BlobsSection {
            store: "s3".into(),
            endpoint: s3.endpoint.clone(),
            bucket: s3.bucket.clone(),
            region: s3.region.clone(),
            path_style: true,
            prefix: s3.prefix.clone(),
            access_key_id: s3.access_key_id.clone(),
            secret_access_key_file: String::new(),
        };
        c.secret_env.insert(yiqian::config::S3_SECRET_VARIABLE.into(), s3.secret_access_key.clone());
    })
    .await;
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
            .env_remove("YIQIAN_CONFIG")
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
            let phone = Phone {
                base: public.clone(),
                http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
                token: None,
                requests: requests.clone(),
            };
            tokio::spawn(journey(h.clone(), phone, n))
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
