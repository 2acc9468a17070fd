//! A running service on a free port with a fresh data directory and database, and an HTTP
//! client that speaks to it as an applicant would.

#![allow(dead_code)]

pub mod phone;
pub mod station;

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use yiqian::config::Config;
use yiqian::server::Server;
use yiqian_app::staff::{Role, StaffMember, StaffName};
use yiqian_app::{Clock, SystemClock, TestClock};
use yiqian_domain::{OrderId, OrderState};
use yiqian_providers::payment::{GatewayNotification, SignedNotification};
use yiqian_providers::sandbox::SandboxGateway;
use yiqian_store::Backend;

pub struct Harness {
    pub server: Server,
    pub base: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    /// The configuration the service was started with.
    pub config: Config,
    pub clock: Option<Arc<TestClock>>,
    /// The vendor stand-ins, when the service talks to them instead of the sandbox.
    pub vendors: Option<Vendors>,
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
    start_full(backend, manual_clock, None, adjust).await
}

async fn start_full(
    backend: Backend,
    manual_clock: bool,
    vendors: Option<Vendors>,
    adjust: impl FnOnce(&mut Config),
) -> Harness {
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
    Harness { server, base, http, dir, backend, config, clock, vendors }
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
    /// Polls `f` every 50 ms until it yields, failing after 10 s with `what` it waited for.
    pub async fn poll_until<T, F, Fut>(&self, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(v) = f().await {
                return v;
            }
            assert!(std::time::Instant::now() < deadline, "waited 10 s for {what}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

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
    /// The SMS sent to `phone` as (id, text), newest first: from the sandbox inbox, or, with
    /// the vendor stand-ins, what Tencent Cloud's stand-in received (rendered from the template
    /// and its parameters as the phone would show it).
    pub async fn inbox(&self, phone: &str) -> Vec<(String, String)> {
        match &self.vendors {
            None => self
                .server
                .app
                .store()
                .sandbox_sms(Some(phone), 1000)
                .await
                .unwrap()
                .into_iter()
                .map(|m| (m.id, m.text))
                .collect(),
            Some(v) => v.sms_to(phone),
        }
    }

    pub async fn sms_containing(&self, phone: &str, needle: &str) -> Option<String> {
        for _ in 0..100 {
            self.server.app.deliver_due().await.unwrap();
            if let Some((_, text)) = self.inbox(phone).await.into_iter().find(|(_, t)| t.contains(needle)) {
                return Some(text);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    pub async fn sms_count(&self, phone: &str) -> usize {
        self.server.app.deliver_due().await.unwrap();
        self.inbox(phone).await.len()
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
        self.inbox(phone).await.into_iter().map(|(id, _)| id).collect()
    }

    /// The six digits of a verification code SMS to `phone` that is not among `seen`, waiting
    /// for its delivery (someone else, e.g. a page in a browser, asked for it).
    pub async fn new_code(&self, phone: &str, seen: &std::collections::HashSet<String>) -> String {
        for _ in 0..100 {
            self.server.app.deliver_due().await.unwrap();
            let inbox = self.inbox(phone).await;
            if let Some((_, text)) = inbox.into_iter().find(|(id, t)| !seen.contains(id) && t.contains("验证码")) {
                return text.chars().filter(|c| c.is_ascii_digit()).take(6).collect();
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
        self.complete_materials_with(token, id, phone, Materials::default()).await
    }
}

/// A member of staff with `role` as the console hands one to the services. Tests need no
/// account behind it: every service checks the role and records the name, nothing more.
pub fn staff(role: Role, name: &str) -> StaffMember {
    StaffMember { id: format!("ST{name}"), name: StaffName::parse(name).expect("a valid staff name"), role }
}

/// An order as the store has it (no applicant session needed).
pub async fn stored_order(h: &Harness, order_id: &str) -> yiqian_store::orders::OrderRecord {
    let id = OrderId::parse(order_id).expect("an order number");
    h.server.app.store().read().await.unwrap().load_order(&id).await.unwrap()
}

/// Drives a submitted order to 已发货 the way the CA's staff do: a reviewer approves it,
/// fulfilment personalises its UKEY (a batch, run by the outbox worker) and hands it to the
/// courier (顺丰速运, waybill SF1234567890). Returns the activation code printed as the QR
/// code on the confirmation form.
pub async fn ship_order_as_staff(h: &Harness, order_id: &str) -> String {
    let app = &h.server.app;
    let reviewer = staff(Role::Reviewer, "reviewer");
    let fulfilment = staff(Role::Fulfilment, "fulfilment");
    app.approve_application(&reviewer, order_id).await.unwrap();
    app.start_issuance_batch(&fulfilment, &[order_id.to_owned()], yiqian_store::fulfilment::PersonalisedAt::Server)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        app.deliver_due().await.unwrap();
        let state = stored_order(h, order_id).await.order.state;
        if state == OrderState::Issued {
            break;
        }
        assert!(state == OrderState::Approved, "order {order_id} went {state:?} instead of issued");
        assert!(std::time::Instant::now() < deadline, "order {order_id} was not personalised within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let shipped = app.ship_order(&fulfilment, order_id, "顺丰速运", "SF1234567890").await.unwrap();
    assert_eq!(shipped.order.state, OrderState::Shipped);
    let id = OrderId::parse(order_id).unwrap();
    let f = app.store().read().await.unwrap().fulfilment(&id).await.unwrap().expect("a fulfilment record");
    f.activation_code
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

/// A real signature-like PNG: a dark stroke on white, 200×80.
pub fn png() -> Vec<u8> {
    let (w, h) = (200u32, 80u32);
    let mut pixels = vec![255u8; (w * h) as usize];
    for x in 20..180 {
        let y = 40 + ((x as f32 / 12.0).sin() * 15.0) as u32;
        for dy in 0..3 {
            pixels[((y + dy) * w + x) as usize] = 20;
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().unwrap().write_image_data(&pixels).unwrap();
    out
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

/// A valid resident ID number (GB 11643 check digit) of the harness's 张三 (male, born
/// 1990-03-07, 东城区), another for each `n` (an odd sequence number, as a man's is).
pub fn id_number(n: u32) -> String {
    let body = format!("11010119900307{:03}", 2 * n + 1);
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
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

// ---------------------------------------------------------------------------------------------
// The staff console over HTTP
// ---------------------------------------------------------------------------------------------

/// The password [`console_login`] gives the accounts it creates.
pub const CONSOLE_PASSWORD: &str = "console-test-password-1";

/// A console answer: status, `Location` (redirects), the `yiqian_console` cookie value if one
/// was set (empty when it was removed), the headers and the HTML.
pub struct ConsolePage {
    pub status: StatusCode,
    pub location: Option<String>,
    pub cookie: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl ConsolePage {
    async fn of(r: reqwest::Response) -> ConsolePage {
        let status = r.status();
        let headers = r.headers().clone();
        let location = headers.get("location").map(|v| v.to_str().unwrap().to_owned());
        let cookie = headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("yiqian_console="))
            .map(|v| v.split(';').next().unwrap_or("").to_owned());
        ConsolePage { status, location, cookie, headers, body: r.text().await.unwrap() }
    }

    /// The value of the first `csrf` hidden field on the page.
    pub fn csrf(&self) -> String {
        html_value(&self.body, "name=\"csrf\" value=\"", '"').unwrap_or_else(|| panic!("no csrf field: {}", self.body))
    }

    /// Panics unless this is a redirect to a path starting with `prefix`.
    pub fn assert_redirect(&self, prefix: &str) {
        assert!(
            self.status.is_redirection() && self.location.as_deref().is_some_and(|l| l.starts_with(prefix)),
            "expected a redirect to {prefix}, got {} {:?}: {}",
            self.status,
            self.location,
            self.body
        );
    }
}

/// The text in `html` after `start` up to `end`.
pub fn html_value(html: &str, start: &str, end: char) -> Option<String> {
    let from = html.find(start)? + start.len();
    Some(html[from..].split(end).next()?.to_owned())
}

/// Sends `req` with the `yiqian_console` cookie `token` (if any).
async fn console_send(req: reqwest::RequestBuilder, token: Option<&str>) -> ConsolePage {
    let req = match token {
        Some(t) => req.header("cookie", format!("yiqian_console={t}")),
        None => req,
    };
    ConsolePage::of(req.send().await.unwrap()).await
}

impl Harness {
    /// GET a console page with the session (or pending-login) cookie `token`.
    pub async fn console_get(&self, token: Option<&str>, path: &str) -> ConsolePage {
        console_send(self.http.get(self.url(path)), token).await
    }

    /// POST a urlencoded form to the console with the cookie `token`, exactly as given (no
    /// CSRF field is added: see [`ConsoleClient::post_form`] for that).
    pub async fn console_post(&self, token: Option<&str>, path: &str, fields: &[(&str, &str)]) -> ConsolePage {
        console_send(self.http.post(self.url(path)).form(fields), token).await
    }

    /// The first stage of a console login: name and password. Returns the answer, whose
    /// `cookie` is the pending login's token when the password was right.
    pub async fn console_password(&self, name: &str, password: &str) -> ConsolePage {
        self.console_post(None, "/console/login", &[("name", name), ("password", password), ("next", "/console")]).await
    }

    /// The code an authenticator with `secret` shows now, by the service's clock.
    pub fn totp_now(&self, secret: &str) -> String {
        yiqian_app::staff::totp_code(secret, self.server.app.now()).expect("a valid TOTP secret")
    }

    /// Moves the manual clock (harnesses started with `start_with(backend, true)`).
    pub fn advance(&self, by: chrono::Duration) {
        self.clock.as_ref().expect("a harness with a manual clock").advance(by);
    }
}

/// A member of staff logged in to the console over HTTP: a session cookie, its CSRF token, and
/// the authenticator secret to log in again. Made by [`console_login`] (new account) or
/// [`console_first_login`] (existing account). Every method sends the session cookie; the
/// `post_*` methods add the CSRF token the way the console's forms carry it.
///
/// ```ignore
/// let h = start_with(backend, true).await;          // manual clock: TOTP codes are exact
/// let reviewer = console_login(&h, "li.wei", "reviewer").await;
/// let page = reviewer.get("/console/review").await;  // ConsolePage { status, body, … }
/// let r = reviewer.post_form("/console/review/YQ…/approve", &[("note", "ok")]).await;
/// let form = reviewer.multipart().part("file", …);    // multipart: csrf part included
/// reviewer.post_multipart("/console/…", form).await;
/// ```
pub struct ConsoleClient {
    /// The service's base URL.
    pub base: String,
    /// A client that does not follow redirects (and keeps no cookies: the token is sent).
    pub http: reqwest::Client,
    /// Login name.
    pub name: String,
    /// The password.
    pub password: String,
    /// The session token (`yiqian_console` cookie).
    pub token: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The authenticator's secret (base32).
    pub totp_secret: String,
}

impl ConsoleClient {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GET a console page.
    pub async fn get(&self, path: &str) -> ConsolePage {
        console_send(self.http.get(self.url(path)), Some(&self.token)).await
    }

    /// POST a urlencoded form with the session's CSRF token added.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> ConsolePage {
        let mut all: Vec<(&str, &str)> = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        console_send(self.http.post(self.url(path)).form(&all), Some(&self.token)).await
    }

    /// POST a urlencoded form exactly as given (to test CSRF refusals).
    pub async fn post_form_raw(&self, path: &str, fields: &[(&str, &str)]) -> ConsolePage {
        console_send(self.http.post(self.url(path)).form(fields), Some(&self.token)).await
    }

    /// A multipart form that already carries the `csrf` field.
    pub fn multipart(&self) -> reqwest::multipart::Form {
        reqwest::multipart::Form::new().text("csrf", self.csrf.clone())
    }

    /// POST a multipart form (start it with [`ConsoleClient::multipart`]).
    pub async fn post_multipart(&self, path: &str, form: reqwest::multipart::Form) -> ConsolePage {
        console_send(self.http.post(self.url(path)).multipart(form), Some(&self.token)).await
    }

    /// Logs out (POST with the CSRF token).
    pub async fn logout(&self) -> ConsolePage {
        self.post_form("/console/logout", &[]).await
    }

    /// Logs in again as the same person: password, then the authenticator's current code. A
    /// code is accepted once: with a manual clock, advance it 30 s past the previous login.
    pub async fn login_again(&self, h: &Harness) -> ConsoleClient {
        let r = h.console_password(&self.name, &self.password).await;
        r.assert_redirect("/console/login/totp");
        let pending = r.cookie.clone().expect("a pending-login cookie");
        let page = h.console_get(Some(&pending), "/console/login/totp").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let code = h.totp_now(&self.totp_secret);
        let r = h
            .console_post(
                Some(&pending),
                "/console/login/totp",
                &[("csrf", &page.csrf()), ("code", &code), ("next", "/console")],
            )
            .await;
        r.assert_redirect("/console");
        let token = r.cookie.clone().filter(|c| !c.is_empty()).expect("a session cookie");
        session_client(h, &self.name, &self.password, token, self.totp_secret.clone()).await
    }
}

/// A client for a fresh session `token`; the CSRF token is read from a page every role has.
async fn session_client(h: &Harness, name: &str, password: &str, token: String, totp_secret: String) -> ConsoleClient {
    let page = h.console_get(Some(&token), "/console/logout").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    ConsoleClient {
        base: h.base.clone(),
        http: h.http.clone(),
        name: name.to_owned(),
        password: password.to_owned(),
        csrf: page.csrf(),
        token,
        totp_secret,
    }
}

/// Creates the account `name` with `role` (a role code: reviewer, fulfilment, finance,
/// counter, auditor, admin) and the password [`CONSOLE_PASSWORD`] on the operator's
/// authority, then logs in over HTTP: password, authenticator enrolment with the secret from
/// the enrolment page and a code computed for the service's clock. Works with either clock;
/// a manual clock (`start_with(backend, true)`) makes later logins of the same person exact.
pub async fn console_login(h: &Harness, name: &str, role: &str) -> ConsoleClient {
    let role = yiqian_app::staff::Role::from_code(role).unwrap_or_else(|| panic!("no role {role}"));
    h.server.app.add_staff(name, role, CONSOLE_PASSWORD).await.unwrap();
    console_first_login(h, name, CONSOLE_PASSWORD).await
}

/// The first login of an existing account (not yet enrolled) over HTTP: password, then the
/// enrolment page's secret and its first code.
pub async fn console_first_login(h: &Harness, name: &str, password: &str) -> ConsoleClient {
    let r = h.console_password(name, password).await;
    r.assert_redirect("/console/enrol");
    let pending = r.cookie.clone().expect("a pending-login cookie");
    let page = h.console_get(Some(&pending), "/console/enrol").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let secret = html_value(&page.body, "id=\"totp-secret\">", '<').expect("the secret on the enrolment page");
    let code = h.totp_now(&secret);
    let r = h
        .console_post(
            Some(&pending),
            "/console/enrol",
            &[("csrf", &page.csrf()), ("code", &code), ("next", "/console")],
        )
        .await;
    r.assert_redirect("/console");
    let token = r.cookie.clone().filter(|c| !c.is_empty()).expect("a session cookie");
    session_client(h, name, password, token, secret).await
}

/// Runs the `yiqian` binary like [`run_yiqian`], writing `stdin` to its standard input.
pub fn run_yiqian_with_stdin(
    data: &std::path::Path,
    envs: &[(&str, String)],
    args: &[&str],
    stdin: &str,
) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_yiqian"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("YIQIAN_DATABASE_URL")
        .env_remove("YIQIAN_CONFIG")
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run yiqian");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("yiqian finishes");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// The PDF's text has every needle and it has `pages` pages (needs poppler-utils; skipped
/// without it unless `YIQIAN_REQUIRE_POPPLER=1`).
pub fn check_pdf(dir: &std::path::Path, pdf: &[u8], needles: &[&str], pages: usize) {
    if !has_tool("pdftotext") {
        assert!(std::env::var("YIQIAN_REQUIRE_POPPLER").is_err(), "pdftotext missing: install poppler-utils");
        eprintln!("skipped PDF text check: install poppler-utils");
        return;
    }
    let path = dir.join("forms.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext").arg(&path).arg("-").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for n in needles {
        assert!(text.contains(n), "{n:?} not in the forms: {text}");
    }
    let info = std::process::Command::new("pdfinfo").arg(&path).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    let count = info.lines().find_map(|l| l.strip_prefix("Pages:")).map(|n| n.trim().to_owned());
    assert_eq!(count, Some(pages.to_string()), "{info}");
}

/// Whether a command-line tool is installed.
pub fn has_tool(name: &str) -> bool {
    std::process::Command::new(name).arg("-v").output().is_ok()
}

// ---------------------------------------------------------------------------------------------
// Materials of one's choosing
// ---------------------------------------------------------------------------------------------

/// What [`Harness::complete_materials_with`] submits: the ID number typed (the card is 张三's,
/// male, born 1990-03-07, so the number must agree), the photos and the face video.
pub struct Materials {
    pub id_number: String,
    pub front: Vec<u8>,
    pub back: Vec<u8>,
    /// The face video and its file name (`.mp4` or `.webm`).
    pub video: (Vec<u8>, String),
}

impl Default for Materials {
    fn default() -> Materials {
        Materials {
            id_number: "110101199003074477".into(),
            front: jpeg(),
            back: jpeg(),
            video: (mp4(), "liveness.mp4".into()),
        }
    }
}

impl Harness {
    /// [`Harness::complete_materials`] with other materials: another ID number (one live
    /// order per ID card), real photos or a playable video. Returns the submitted order.
    pub async fn complete_materials_with(&self, token: &str, id: &str, phone: &str, m: Materials) -> Value {
        self.complete_steps(token, id, phone, m, 5).await;
        self.post(Some(token), &format!("/api/v1/orders/{id}/submit"), json!({})).await.ok()
    }

    /// Does the first `steps` materials steps of a paid order, in the guide's order (1: bind
    /// `phone`, 2: ID card, 3: face video, 4: signature, 5: address), without submitting: an
    /// order parked at the next step.
    pub async fn complete_steps(&self, token: &str, id: &str, phone: &str, m: Materials, steps: usize) {
        let p = |tail: &str| format!("/api/v1/orders/{id}/{tail}");
        if steps >= 1 {
            let code = self.request_code(Some(token), &p("phone/code"), phone).await;
            self.post(Some(token), &p("phone"), json!({"phone": phone, "code": code})).await.ok();
        }
        if steps >= 2 {
            let photos = reqwest::multipart::Form::new()
                .part("front", reqwest::multipart::Part::bytes(m.front).file_name("front.jpg"))
                .part("back", reqwest::multipart::Part::bytes(m.back).file_name("back.jpg"));
            let ocr = self.post_form(token, &p("id-card/photos"), photos).await.ok();
            assert!(ocr["ocr"].is_object());
            self.post(Some(token), &p("id-card"), id_card(&m.id_number)).await.ok();
        }
        if steps >= 3 {
            let c = self.post(Some(token), &p("liveness/challenge"), json!({})).await.ok();
            let (video, name) = m.video;
            let video = reqwest::multipart::Form::new()
                .text("challenge_id", c["challenge_id"].as_str().unwrap().to_owned())
                .part("video", reqwest::multipart::Part::bytes(video).file_name(name));
            self.post_form(token, &p("liveness"), video).await.ok();
        }
        if steps >= 4 {
            let sig = reqwest::multipart::Form::new()
                .part("image", reqwest::multipart::Part::bytes(png()).file_name("signature.png"))
                .text("strokes", strokes());
            self.post_form(token, &p("signature"), sig).await.ok();
        }
        if steps >= 5 {
            self.post(Some(token), &p("address"), address()).await.ok();
        }
    }
}

/// The vendor stand-ins a service talks to, and the accounts both sides use.
pub struct Vendors {
    pub sim: yiqian_sim::RunningSim,
    pub accounts: yiqian_sim::accounts::SimAccounts,
    /// Where the accounts' key and secret files are.
    pub accounts_dir: std::path::PathBuf,
}

impl Vendors {
    /// What Tencent Cloud's stand-in sent to `phone`, newest first, as the phone shows it.
    pub fn sms_to(&self, phone: &str) -> Vec<(String, String)> {
        let names: std::collections::BTreeMap<String, String> =
            yiqian_sim::accounts::sms_template_ids().into_iter().map(|(name, id)| (id, name)).collect();
        let e164 = format!("+86{phone}");
        let mut out: Vec<(String, String)> = self
            .sim
            .sim
            .tencent
            .sent_sms()
            .into_iter()
            .filter(|m| m.phone_number == e164)
            .map(|m| {
                let name = names.get(&m.template_id).expect("a configured template id");
                let t = yiqian_providers::sms::SmsTemplate::from_params(name, &m.template_params)
                    .expect("parameters matching the template");
                (m.serial_no, t.text())
            })
            .collect();
        out.reverse();
        out
    }
}

/// Stand-in accounts, made once per test binary (RSA key generation takes seconds) and
/// written to a directory that lives as long as the process.
fn sim_accounts() -> &'static (yiqian_sim::accounts::SimAccounts, std::path::PathBuf) {
    static ACCOUNTS: std::sync::OnceLock<(yiqian_sim::accounts::SimAccounts, std::path::PathBuf)> =
        std::sync::OnceLock::new();
    ACCOUNTS.get_or_init(|| {
        let accounts = yiqian_sim::accounts::SimAccounts::generate().unwrap();
        let dir = tempfile::tempdir().unwrap().keep();
        accounts.write(&dir).unwrap();
        (accounts, dir)
    })
}

/// Which vendor modes to configure.
#[derive(Debug, Clone, Copy, Default)]
pub struct VendorModes {
    /// WeChat Pay verifies with platform certificates instead of the WeChat Pay public key,
    /// and Alipay runs in certificate mode instead of public-key mode.
    pub certificates: bool,
}

/// Points every vendor section of `config` at the stand-ins at `base`, with the accounts'
/// files, and chooses every real provider — through the configuration file `yiqian-sim config`
/// prints, so the file format is what is tested.
pub fn vendor_config(config: &mut Config, base: &str, modes: VendorModes) {
    let (a, dir) = sim_accounts();
    let text = a.yiqian_config(dir, base, modes.certificates);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    let loaded = Config::load(Some(file.path()), |_| None).unwrap();
    config.providers = loaded.providers;
    config.wechatpay = loaded.wechatpay;
    config.wechat_login = loaded.wechat_login;
    config.alipay = loaded.alipay;
    config.tencent = loaded.tencent;
    config.sf = loaded.sf;
    config.nuonuo = loaded.nuonuo;
}

/// Starts the vendor stand-ins and the service configured against them.
pub async fn start_with_vendors(backend: Backend, modes: VendorModes, adjust: impl FnOnce(&mut Config)) -> Harness {
    start_with_vendors_and_clock(backend, modes, false, adjust).await
}

/// [`start_with_vendors`], with the service's clock standing still until the test moves it
/// when `manual_clock`.
pub async fn start_with_vendors_and_clock(
    backend: Backend,
    modes: VendorModes,
    manual_clock: bool,
    adjust: impl FnOnce(&mut Config),
) -> Harness {
    let (accounts, accounts_dir) = sim_accounts();
    let sim = yiqian_sim::RunningSim::start(accounts).await.unwrap();
    // WeChat Pay signs under the key the service is configured to trust.
    sim.sim.wechatpay.use_certificate_mode(modes.certificates);
    let base = sim.base_url();
    let vendors = Vendors { sim, accounts: accounts.clone(), accounts_dir: accounts_dir.clone() };
    start_full(backend, manual_clock, Some(vendors), |c| {
        vendor_config(c, &base, modes);
        adjust(c);
    })
    .await
}

/// The service configured to keep its blobs in the test bucket (under a fresh prefix).
pub fn blobs_in_bucket(config: &mut Config, settings: &yiqian_store::blobs::S3Settings) {
    config.blobs = yiqian::config::BlobsSection {
        store: "s3".into(),
        endpoint: settings.endpoint.clone(),
        bucket: settings.bucket.clone(),
        region: settings.region.clone(),
        path_style: settings.path_style,
        prefix: settings.prefix.clone(),
        access_key_id: settings.access_key_id.clone(),
        secret_access_key_file: String::new(),
    };
    config.secret_env.insert(yiqian::config::S3_SECRET_VARIABLE.into(), settings.secret_access_key.clone());
}

/// Every file under `dir`, at any depth, sorted; none if `dir` does not exist.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                out.extend(files_under(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// The path segment of an OCSP GET for a DER request: base64, URL-encoded (RFC 6960 appendix A).
pub fn ocsp_get_path(request: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .encode(request)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// The database name in a PostgreSQL URL.
pub fn database_name(url: &str) -> String {
    url.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned()
}
