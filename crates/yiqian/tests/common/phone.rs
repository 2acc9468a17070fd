//! An applicant's phone as a test drives it over HTTP against any deployment (one node, or
//! several behind a proxy): a journey that reads its order after every step and does the next,
//! so that a step that failed on the way (a node killed under it) is simply done again, as the
//! applicant's page would.

use super::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The HTTP client of applicant `n`'s phone: redirects are the journey's to follow, and it
/// comes from an address of its own (`X-Real-IP`, believed where the deployment trusts it), so
/// per-client limits treat the applicants apart.
pub fn phone_client(n: usize) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-real-ip", format!("10.8.{}.{}", n / 250, n % 250 + 1).parse().unwrap());
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).default_headers(headers).build().unwrap()
}

/// An applicant's phone talking to the deployment through nginx. Every request that fails on
/// the way (a node killed under it: 502, a dropped connection) is told to the journey, which
/// reads its order again and carries on from there, as the applicant's page would.
pub struct Phone {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
    pub requests: Arc<AtomicUsize>,
}

impl Phone {
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<(StatusCode, Value), String> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let r = req.timeout(Duration::from_secs(120)).send().await.map_err(|e| format!("send: {e:?}"))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_success() { Ok((status, body)) } else { Err(format!("{status} {body}")) }
    }

    pub async fn get(&self, path: &str) -> Result<Value, String> {
        Ok(self.send(self.http.get(format!("{}{path}", self.base))).await?.1)
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        Ok(self.send(self.http.post(format!("{}{path}", self.base)).json(&body)).await?.1)
    }

    pub async fn post_form(&self, path: &str, form: reqwest::multipart::Form) -> Result<Value, String> {
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

/// Applicant `n`'s journey from login to 受理成功 (or until the order's next step is
/// `stop_at`), resumed after every failed step. Returns the order id and how many steps had to
/// be tried again.
pub async fn journey(h: Arc<Harness>, phone: &mut Phone, n: usize, stop_at: Option<&str>) -> (String, usize) {
    let number = format!("1390000{n:04}");
    let mut retried = 0;
    let mut order: Option<String> = None;
    let mut paid_at: Option<Instant> = None;
    let mut used = std::collections::HashSet::new();
    let mut last = String::new();
    for _ in 0..200 {
        let step: Result<bool, String> = async {
            if phone.token.is_none() {
                let code = ask_code(&h, phone, "/api/v1/session/code", &number, &mut used).await?;
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
                    .post(
                        "/api/v1/orders",
                        json!({"agreement_version": product["agreement_version"], "accepted": true}),
                    )
                    .await?;
                order = Some(r["id"].as_str().ok_or("no id")?.to_owned());
                return Ok(false);
            };
            let p = |tail: &str| format!("/api/v1/orders/{id}/{tail}");
            let o = phone.get(&format!("/api/v1/orders/{id}")).await?;
            last = format!("{} / {}", o["state"], o["next_step"]);
            if stop_at.is_some() && o["next_step"].as_str() == stop_at {
                return Ok(true);
            }
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
                    let code = ask_code(&h, phone, &p("phone/code"), &number, &mut used).await?;
                    phone.post(&p("phone"), json!({"phone": number, "code": code})).await?;
                }
                ("collecting", Some("id_card")) => {
                    let photos = reqwest::multipart::Form::new()
                        .part("front", reqwest::multipart::Part::bytes(jpeg()).file_name("front.jpg"))
                        .part("back", reqwest::multipart::Part::bytes(jpeg()).file_name("back.jpg"));
                    phone.post_form(&p("id-card/photos"), photos).await?;
                    phone.post(&p("id-card"), id_card(&id_number(n as u32))).await?;
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
    panic!("applicant {n} never reached 受理成功 (order {order:?}, last seen {last})");
}
