//! Notifications as WeChat Pay sends them: an envelope with a fresh id whose `resource` is
//! encrypted with the APIv3 key (AAD = `original_type`), signed headers over the exact body,
//! and delivery with retries on anything but 2xx, re-signed at every try.

use super::{Attempt, Delivery, WechatPaySim, cst, random_alnum};
use chrono::Utc;
use serde_json::{Value, json};
use std::time::Duration;
use yiqian_providers::payment::SignedNotification;
use yiqian_providers::rsa::RsaSigner;
use yiqian_providers::wechatpay::resource::encrypt_resource;

/// Waits before each delivery try (the first is immediate): a compressed version of WeChat
/// Pay's 15 s … 6 h schedule; ten tries in all.
pub const DELIVERY_SCHEDULE: [Duration; 10] = [
    Duration::ZERO,
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(20),
    Duration::from_secs(30),
    Duration::from_secs(60),
];

/// A signed notification, ready to post.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The envelope id.
    pub id: String,
    /// e.g. `TRANSACTION.SUCCESS`.
    pub event_type: String,
    /// Headers as WeChat Pay names them (`Wechatpay-Signature`, …).
    pub headers: Vec<(String, String)>,
    /// The exact body.
    pub body: Vec<u8>,
}

impl Notification {
    /// What our webhook hands the gateway adapter (lower-case header names).
    pub fn to_signed(&self) -> SignedNotification {
        SignedNotification {
            headers: self.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect(),
            body: self.body.clone(),
        }
    }

    /// Replaces a header's value (to tamper with it).
    pub fn set_header(&mut self, name: &str, value: &str) {
        for (k, v) in &mut self.headers {
            if k.eq_ignore_ascii_case(name) {
                *v = value.to_owned();
            }
        }
    }
}

/// Builds a signed notification; by default exactly as the stand-in would send it now.
pub struct NotificationBuilder<'a> {
    sim: &'a WechatPaySim,
    event_type: String,
    original_type: String,
    summary: String,
    resource: Value,
    id: Option<String>,
    timestamp: Option<i64>,
    serial: Option<String>,
    signer: Option<RsaSigner>,
    probe: bool,
}

impl NotificationBuilder<'_> {
    /// Uses this envelope id (a replay repeats the original's).
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_owned());
        self
    }

    /// Signs as of this Unix time (a stale notification).
    pub fn timestamp(mut self, unix_seconds: i64) -> Self {
        self.timestamp = Some(unix_seconds);
        self
    }

    /// Names this `Wechatpay-Serial` (an unknown key).
    pub fn serial(mut self, serial: &str) -> Self {
        self.serial = Some(serial.to_owned());
        self
    }

    /// Signs with another key (a forger's).
    pub fn signed_by(mut self, key: RsaSigner) -> Self {
        self.signer = Some(key);
        self
    }

    /// Makes it one of WeChat Pay's deliberate probes (`WECHATPAY/SIGNTEST/…` signature).
    pub fn probe(mut self) -> Self {
        self.probe = true;
        self
    }

    /// The notification.
    pub fn build(self) -> Notification {
        let key = self.sim.account.apiv3_key.as_bytes();
        let nonce = random_alnum(12);
        let plaintext = self.resource.to_string();
        let ciphertext = encrypt_resource(key, &nonce, &self.original_type, plaintext.as_bytes())
            .expect("the stand-in's APIv3 key is 32 bytes");
        let id = self.id.unwrap_or_else(envelope_id);
        let body = json!({
            "id": id,
            "create_time": cst(Utc::now()),
            "resource_type": "encrypt-resource",
            "event_type": self.event_type,
            "summary": self.summary,
            "resource": {
                "original_type": self.original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": ciphertext,
                "associated_data": self.original_type,
                "nonce": nonce,
            },
        })
        .to_string()
        .into_bytes();
        let serial = self.serial.unwrap_or_else(|| self.sim.current_serial());
        let timestamp = self.timestamp.unwrap_or_else(|| Utc::now().timestamp());
        let headers = if self.probe {
            let mut h = self.sim.signature_headers(&body, timestamp, &serial, self.signer.as_ref());
            for (k, v) in &mut h {
                if k == "Wechatpay-Signature" {
                    *v = format!("WECHATPAY/SIGNTEST/{v}");
                }
            }
            h
        } else {
            self.sim.signature_headers(&body, timestamp, &serial, self.signer.as_ref())
        };
        Notification { id, event_type: self.event_type, headers, body }
    }
}

/// A UUID-shaped envelope id.
fn envelope_id() -> String {
    let h = hex::encode(rand::random::<[u8; 16]>());
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

impl WechatPaySim {
    /// Starts a notification of `event_type` whose decrypted resource is `resource`.
    pub fn notification(
        &self,
        event_type: &str,
        original_type: &str,
        summary: &str,
        resource: Value,
    ) -> NotificationBuilder<'_> {
        NotificationBuilder {
            sim: self,
            event_type: event_type.to_owned(),
            original_type: original_type.to_owned(),
            summary: summary.to_owned(),
            resource,
            id: None,
            timestamp: None,
            serial: None,
            signer: None,
            probe: false,
        }
    }

    /// The signature headers of a notification body, signed by the platform key (or `signer`).
    fn signature_headers(
        &self,
        body: &[u8],
        timestamp: i64,
        serial: &str,
        signer: Option<&RsaSigner>,
    ) -> Vec<(String, String)> {
        let nonce = random_alnum(32);
        let mut message = format!("{timestamp}\n{nonce}\n").into_bytes();
        message.extend_from_slice(body);
        message.push(b'\n');
        let signature = signer.unwrap_or(&self.platform).sign(&message).expect("an RSA key signs with the system RNG");
        vec![
            ("Wechatpay-Timestamp".to_owned(), timestamp.to_string()),
            ("Wechatpay-Nonce".to_owned(), nonce),
            ("Wechatpay-Signature".to_owned(), signature),
            ("Wechatpay-Serial".to_owned(), serial.to_owned()),
            ("Wechatpay-Signature-Type".to_owned(), "WECHATPAY2-SHA256-RSA2048".to_owned()),
        ]
    }

    /// Posts a notification once, as built (no re-signing): our side's status, or why none came.
    pub async fn post_notification(&self, url: &str, n: &Notification) -> Result<u16, String> {
        post(&self.http, url, &n.headers, &n.body).await
    }

    /// Sends a notification in the background with retries, recording every try.
    pub(super) fn deliver(&self, subject: &str, url: &str, n: Notification) {
        let index = {
            let mut state = self.state();
            state.deliveries.push(Delivery {
                notification_id: n.id.clone(),
                event_type: n.event_type.clone(),
                subject: subject.to_owned(),
                url: url.to_owned(),
                attempts: Vec::new(),
                acknowledged: false,
            });
            state.deliveries.len() - 1
        };
        let state = self.state.clone();
        let http = self.http.clone();
        let url = url.to_owned();
        // Each retry is signed afresh (a retry hours later must pass the five-minute window);
        // the signing closure owns what it needs.
        let platform_key = self.account.platform_key_pem.clone();
        let serial = n.headers.iter().find(|(k, _)| k == "Wechatpay-Serial").map(|(_, v)| v.clone());
        tokio::spawn(async move {
            let signer = RsaSigner::from_pem(&platform_key).expect("the stand-in's platform key parses");
            for (attempt, wait) in DELIVERY_SCHEDULE.iter().enumerate() {
                tokio::time::sleep(*wait).await;
                let headers = if attempt == 0 {
                    n.headers.clone()
                } else {
                    resign(&n.headers, &n.body, &signer, serial.as_deref().unwrap_or_default())
                };
                let outcome = post(&http, &url, &headers, &n.body).await;
                let ok = matches!(outcome, Ok(status) if (200..300).contains(&status));
                {
                    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                    let d = &mut s.deliveries[index];
                    d.attempts.push(Attempt { at: Utc::now(), outcome: outcome.clone() });
                    d.acknowledged = ok;
                }
                if ok {
                    return;
                }
                tracing::info!(url = %url, attempt, outcome = ?outcome, "stand-in notification not acknowledged");
            }
        });
    }
}

/// Fresh timestamp, nonce and signature for a retry.
fn resign(headers: &[(String, String)], body: &[u8], signer: &RsaSigner, serial: &str) -> Vec<(String, String)> {
    let timestamp = Utc::now().timestamp().to_string();
    let nonce = random_alnum(32);
    let mut message = format!("{timestamp}\n{nonce}\n").into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    let signature = signer.sign(&message).expect("an RSA key signs with the system RNG");
    headers
        .iter()
        .map(|(k, v)| {
            let v = match k.as_str() {
                "Wechatpay-Timestamp" => timestamp.clone(),
                "Wechatpay-Nonce" => nonce.clone(),
                "Wechatpay-Signature" => signature.clone(),
                "Wechatpay-Serial" => serial.to_owned(),
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

async fn post(http: &reqwest::Client, url: &str, headers: &[(String, String)], body: &[u8]) -> Result<u16, String> {
    let mut request = http
        .post(url)
        .header("Content-Type", "application/json")
        .header("User-Agent", "Mozilla/4.0")
        .header("Request-ID", envelope_id())
        .body(body.to_vec());
    for (k, v) in headers {
        request = request.header(k, v);
    }
    match request.send().await {
        Ok(r) => Ok(r.status().as_u16()),
        Err(e) => Err(e.without_url().to_string()),
    }
}
