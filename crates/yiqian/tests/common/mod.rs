//! A running service on a free port with a fresh data directory and database, and an HTTP
//! client that speaks to it as an applicant would.

#![allow(dead_code)]

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use yiqian::config::Config;
use yiqian::server::Server;
use yiqian_app::{Clock, SystemClock, TestClock};
use yiqian_providers::payment::{GatewayNotification, SignedNotification};
use yiqian_providers::sandbox::SandboxGateway;
use yiqian_store::Backend;

pub struct Harness {
    pub server: Server,
    pub base: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    pub clock: Option<Arc<TestClock>>,
}

pub async fn start(backend: Backend) -> Harness {
    start_with(backend, false).await
}

/// Starts the service; with `manual_clock` the application's clock stands still until the
/// test moves it.
pub async fn start_with(backend: Backend, manual_clock: bool) -> Harness {
    start_configured(backend, manual_clock, |_| {}).await
}

/// Starts the service after `adjust` has changed its configuration.
pub async fn start_configured(backend: Backend, manual_clock: bool, adjust: impl FnOnce(&mut Config)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match backend {
        Backend::Sqlite => String::new(),
        Backend::Postgres => yiqian_store::testing::fresh_postgres_database().await,
    };
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        database_url,
        ..Config::default()
    };
    adjust(&mut config);
    let clock = manual_clock.then(|| Arc::new(TestClock::at(Utc::now())));
    let as_clock: Arc<dyn Clock> = match &clock {
        Some(c) => c.clone(),
        None => Arc::new(SystemClock),
    };
    let server = Server::start_with_clock(&config, as_clock).await.unwrap();
    let base = server.public_url.clone();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Harness { server, base, http, dir, backend, clock }
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    pub fn ok(self) -> Value {
        assert!(self.status.is_success(), "expected success, got {} {}", self.status, self.body);
        self.body
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

impl Harness {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn reply(r: reqwest::Response) -> Reply {
        let status = r.status();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text}));
        Reply { status, body }
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> Reply {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::reply(req.send().await.unwrap()).await
    }

    pub async fn post(&self, token: Option<&str>, path: &str, body: Value) -> Reply {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::reply(req.send().await.unwrap()).await
    }

    pub async fn post_form(&self, token: &str, path: &str, form: reqwest::multipart::Form) -> Reply {
        let req = self.http.post(self.url(path)).bearer_auth(token).multipart(form);
        Self::reply(req.send().await.unwrap()).await
    }

    /// Delivers queued messages now and returns the newest SMS to `phone` whose text contains
    /// `needle`, waiting a little for asynchronous deliveries.
    pub async fn sms_containing(&self, phone: &str, needle: &str) -> Option<String> {
        for _ in 0..100 {
            self.server.app.deliver_due().await.unwrap();
            let inbox = self.server.app.store().sandbox_sms(Some(phone), 50).await.unwrap();
            if let Some(m) = inbox.into_iter().find(|m| m.text.contains(needle)) {
                return Some(m.text);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    pub async fn sms_count(&self, phone: &str) -> usize {
        self.server.app.deliver_due().await.unwrap();
        self.server.app.store().sandbox_sms(Some(phone), 1000).await.unwrap().len()
    }

    /// The six digits of the newest verification code sent to `phone`.
    pub async fn latest_code(&self, phone: &str) -> String {
        let text = self.sms_containing(phone, "验证码").await.expect("a verification code SMS");
        text.chars().filter(|c| c.is_ascii_digit()).take(6).collect()
    }

    /// Asks for a code at `path` (login or phone binding) and returns the code from the new
    /// SMS, waiting for its delivery.
    pub async fn request_code(&self, token: Option<&str>, path: &str, phone: &str) -> String {
        let seen = self.sms_ids(phone).await;
        self.post(token, path, json!({"phone": phone})).await.ok();
        self.new_code(phone, &seen).await
    }

    /// The ids of the SMS already in `phone`'s sandbox inbox (to tell a new code from old ones).
    pub async fn sms_ids(&self, phone: &str) -> std::collections::HashSet<String> {
        self.server.app.store().sandbox_sms(Some(phone), 1000).await.unwrap().into_iter().map(|m| m.id).collect()
    }

    /// The six digits of a verification code SMS to `phone` that is not among `seen`, waiting
    /// for its delivery (someone else, e.g. a page in a browser, asked for it).
    pub async fn new_code(&self, phone: &str, seen: &std::collections::HashSet<String>) -> String {
        for _ in 0..100 {
            self.server.app.deliver_due().await.unwrap();
            let inbox = self.server.app.store().sandbox_sms(Some(phone), 1000).await.unwrap();
            if let Some(m) = inbox.into_iter().find(|m| !seen.contains(&m.id) && m.text.contains("验证码")) {
                return m.text.chars().filter(|c| c.is_ascii_digit()).take(6).collect();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no new verification code reached {phone}");
    }

    pub async fn login(&self, phone: &str) -> String {
        let code = self.request_code(None, "/api/v1/session/code", phone).await;
        let r = self.post(None, "/api/v1/session", json!({"phone": phone, "code": code})).await.ok();
        r["token"].as_str().unwrap().to_owned()
    }

    pub async fn create_order(&self, token: &str) -> String {
        let product = self.get(None, "/api/v1/product").await.ok();
        let r = self
            .post(
                Some(token),
                "/api/v1/orders",
                json!({"agreement_version": product["agreement_version"], "accepted": true}),
            )
            .await
            .ok();
        r["id"].as_str().unwrap().to_owned()
    }

    pub async fn order(&self, token: &str, id: &str) -> Value {
        self.get(Some(token), &format!("/api/v1/orders/{id}")).await.ok()
    }

    pub async fn wait_for_state(&self, token: &str, id: &str, state: &str) -> Value {
        for _ in 0..200 {
            let o = self.order(token, id).await;
            if o["state"] == state {
                return o;
            }
            self.server.app.deliver_due().await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("order {id} never reached {state}: {}", self.order(token, id).await);
    }

    /// Starts a payment and returns the cashier token from its URL.
    pub async fn start_payment(&self, token: &str, id: &str, channel: &str) -> String {
        let r =
            self.post(Some(token), &format!("/api/v1/orders/{id}/payments"), json!({"channel": channel})).await.ok();
        let url = r["pay_url"].as_str().unwrap();
        assert!(url.starts_with(&self.base), "cashier on our sandbox: {url}");
        url.split("?t=").nth(1).unwrap().to_owned()
    }

    /// Pays at the sandbox cashier like a tester would and waits for the order to be paid.
    pub async fn pay(&self, token: &str, id: &str) {
        let t = self.start_payment(token, id, "wechat").await;
        let page = self.http.get(self.url(&format!("/sandbox/cashier?t={t}"))).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.text().await.unwrap().contains("确认支付"));
        let r = self.http.post(self.url("/sandbox/cashier/confirm")).form(&[("t", t.as_str())]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "cashier redirects back");
        self.wait_for_state(token, id, "collecting").await;
    }

    /// The sandbox gateway as the service has it (same key), to forge or replay notifications.
    pub fn gateway(&self) -> SandboxGateway {
        let text = std::fs::read_to_string(self.dir.path().join("data/sandbox-gateway.key")).unwrap();
        SandboxGateway::new(base64_decode(text.trim()), &self.base)
    }

    pub async fn notify(&self, n: &SignedNotification) -> Reply {
        let mut req = self.http.post(self.url("/notify/sandbox")).header("content-type", "application/json");
        for (k, v) in &n.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        Self::reply(req.body(n.body.clone()).send().await.unwrap()).await
    }

    pub fn signed(&self, n: &GatewayNotification) -> SignedNotification {
        self.gateway().sign(n, self.server.app.now())
    }

    /// Completes every materials step and submits; returns the final order.
    pub async fn complete_materials(&self, token: &str, id: &str, phone: &str) -> Value {
        let p = |tail: &str| format!("/api/v1/orders/{id}/{tail}");
        let code = self.request_code(Some(token), &p("phone/code"), phone).await;
        self.post(Some(token), &p("phone"), json!({"phone": phone, "code": code})).await.ok();
        let photos = reqwest::multipart::Form::new()
            .part("front", reqwest::multipart::Part::bytes(jpeg()).file_name("front.jpg"))
            .part("back", reqwest::multipart::Part::bytes(jpeg()).file_name("back.jpg"));
        let ocr = self.post_form(token, &p("id-card/photos"), photos).await.ok();
        assert!(ocr["ocr"].is_object());
        self.post(Some(token), &p("id-card"), id_card("110101199003074477")).await.ok();
        let c = self.post(Some(token), &p("liveness/challenge"), json!({})).await.ok();
        assert_eq!(c["digits"].as_str().unwrap().len(), 4);
        let video = reqwest::multipart::Form::new()
            .text("challenge_id", c["challenge_id"].as_str().unwrap().to_owned())
            .part("video", reqwest::multipart::Part::bytes(mp4()).file_name("liveness.mp4"));
        self.post_form(token, &p("liveness"), video).await.ok();
        let sig = reqwest::multipart::Form::new()
            .part("image", reqwest::multipart::Part::bytes(png()).file_name("signature.png"))
            .text("strokes", strokes());
        self.post_form(token, &p("signature"), sig).await.ok();
        self.post(Some(token), &p("address"), address()).await.ok();
        self.post(Some(token), &p("submit"), json!({})).await.ok()
    }
}

fn base64_decode(text: &str) -> [u8; 32] {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap().try_into().unwrap()
}

/// Bytes that are a JPEG by their signature (the server checks bytes, not pixels).
pub fn jpeg() -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F'];
    v.resize(4096, 0x11);
    v
}

pub fn png() -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.resize(2048, 0x22);
    v
}

pub fn mp4() -> Vec<u8> {
    let mut v = b"\0\0\0\x18ftypmp42".to_vec();
    v.resize(64 * 1024, 0x33);
    v
}

pub fn strokes() -> String {
    let pts: Vec<Value> = (0..30).map(|i| json!({"x": i, "y": i * 2, "t": i * 16})).collect();
    json!([pts]).to_string()
}

pub fn id_card(number: &str) -> Value {
    json!({
        "name": "张三", "sex": "男", "ethnicity": "汉", "birth_date": "1990-03-07",
        "address": "北京市东城区景山前街4号", "id_number": number,
        "authority": "北京市公安局东城分局", "validity": "2020.01.01-2040.01.01",
    })
}

pub fn address() -> Value {
    json!({
        "recipient": "张三", "phone": "13800138000", "province_code": "440000",
        "city_code": "440300", "district_code": "440305", "street": "科技园南区1栋101室",
    })
}

pub fn backends() -> Vec<Backend> {
    yiqian_store::testing::backends()
}

/// Runs the `yiqian` binary on the data directory `data` with extra environment variables
/// (and none of the caller's database or config overrides); returns success and all output.
pub fn run_yiqian(data: &std::path::Path, envs: &[(&str, String)], args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_yiqian"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("YIQIAN_DATABASE_URL")
        .env_remove("YIQIAN_CONFIG")
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run yiqian");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Runs the system `openssl` in `dir`; returns success and all output.
pub fn run_openssl<S: AsRef<std::ffi::OsStr>>(dir: &std::path::Path, args: &[S]) -> (bool, String) {
    let out = std::process::Command::new("openssl").current_dir(dir).args(args).output().expect("run openssl");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Makes a subscriber key of `algorithm` (`p256`, `rsa3072`, `sm2`) and a CSR for `cn` with the
/// system openssl, as `ee.key` and `csr.pem` in `dir`. SM2 requests carry the standard
/// distinguishing ID.
pub fn openssl_csr(dir: &std::path::Path, algorithm: &str, cn: &str) {
    let key: &[&str] = match algorithm {
        "p256" => &["genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ee.key"],
        "rsa3072" => &["genpkey", "-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:3072", "-out", "ee.key"],
        "sm2" => &["genpkey", "-algorithm", "sm2", "-out", "ee.key"],
        other => panic!("no such algorithm {other}"),
    };
    let (ok, out) = run_openssl(dir, key);
    assert!(ok, "{out}");
    let subject = format!("/C=CN/CN={cn}");
    let mut req = vec!["req", "-new", "-utf8", "-key", "ee.key", "-subj", &subject, "-out", "csr.pem"];
    if algorithm == "sm2" {
        req.extend(["-sm3", "-sigopt", "distid:1234567812345678"]);
    }
    let (ok, out) = run_openssl(dir, &req);
    assert!(ok, "{out}");
}
