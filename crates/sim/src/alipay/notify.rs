//! The Alipay stand-in's asynchronous notifications: form fields signed with Alipay's key by
//! the "V1" rule (`sign_type=RSA2` is sent but not signed), posted to the `notify_url` and
//! retried — on a compressed schedule — until the answer is exactly `success`.

use chrono::{DateTime, Utc};
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use yiqian_providers::alipay::beijing_time;
use yiqian_providers::alipay::sign::{NOTIFY_EXCLUDES, sign_content};
use yiqian_providers::rsa::RsaSigner;

/// Pauses before each attempt: Alipay's 4 m, 10 m, 10 m, 1 h, 2 h, 6 h, 15 h, compressed.
pub const RETRY_DELAYS: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(20),
];

/// One attempt to deliver a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyDelivery {
    /// The notification's `notify_id` (the same on every attempt).
    pub notify_id: String,
    /// The trade it is about.
    pub out_trade_no: String,
    /// Where it was posted.
    pub url: String,
    /// 1 for the first attempt.
    pub attempt: usize,
    /// The form body posted.
    pub body: String,
    /// The HTTP status answered, if any.
    pub status: Option<u16>,
    /// The answer's body (or the transport error), at most 200 characters.
    pub answer: String,
    /// Whether the answer was exactly `success`.
    pub acknowledged: bool,
    /// When the attempt was made.
    pub at: DateTime<Utc>,
}

/// A fresh `notify_id` in Alipay's shape (34 digits, dated in Beijing time).
pub fn new_notify_id(now: DateTime<Utc>) -> String {
    let stamp = beijing_time(now).replace(['-', ' ', ':'], "");
    let mut rng = rand::thread_rng();
    let tail: String = (0..15).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect();
    format!("{}00222{}{tail}", &stamp[..8], &stamp[8..])
}

/// Signs notification fields as Alipay does: sets `sign_type=RSA2` and `sign` over the other
/// non-empty fields (the V1 rule: neither `sign` nor `sign_type` is signed).
pub fn sign_notification(signer: &RsaSigner, fields: &mut BTreeMap<String, String>) {
    fields.insert("sign_type".into(), "RSA2".into());
    fields.remove("sign");
    let signature = signer.sign(sign_content(fields, NOTIFY_EXCLUDES).as_bytes()).expect("an RSA key signs");
    fields.insert("sign".into(), signature);
}

/// The `application/x-www-form-urlencoded` body of notification fields.
pub fn form_body(fields: &BTreeMap<String, String>) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish()
}

/// Posts `body` to `url` until it is acknowledged or the schedule runs out, recording every
/// attempt in `log`.
pub(super) async fn deliver(
    http: reqwest::Client,
    log: Arc<Mutex<Vec<NotifyDelivery>>>,
    url: String,
    body: String,
    notify_id: String,
    out_trade_no: String,
) {
    for (index, delay) in RETRY_DELAYS.iter().enumerate() {
        tokio::time::sleep(*delay).await;
        let at = Utc::now();
        let sent = http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded; charset=utf-8")
            .body(body.clone())
            .send()
            .await;
        let (status, answer) = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                (Some(status), response.text().await.unwrap_or_default())
            }
            Err(e) => (None, e.to_string()),
        };
        let acknowledged = status.is_some_and(|s| (200..300).contains(&s)) && answer == "success";
        log.lock().expect("delivery log").push(NotifyDelivery {
            notify_id: notify_id.clone(),
            out_trade_no: out_trade_no.clone(),
            url: url.clone(),
            attempt: index + 1,
            body: body.clone(),
            status,
            answer: answer.chars().take(200).collect(),
            acknowledged,
            at,
        });
        if acknowledged {
            return;
        }
    }
    tracing::warn!(notify_id, "alipay stand-in gave up delivering a notification");
}
