//! The sandbox payment gateway. It plays the part of WeChat Pay or Alipay: it has a cashier
//! page where the tester picks 微信支付 or 支付宝 and confirms, and it reports payments and
//! refunds the way a real gateway does — by an HTTP notification to our webhook, signed with
//! its key, retried until acknowledged. Our side accepts only notifications whose signature
//! and timestamp verify, exactly as for a real gateway.
//!
//! The cashier link carries the trade, signed with the gateway key, so it survives restarts.
//! Notification ids are derived from our payment and refund ids, so a repeated confirmation is
//! recognised as a replay. For trade queries (reconciliation) the gateway remembers, in
//! memory only, the trades it created, confirmed and refunded since the process started; a
//! trade from before a restart is reported as not found.
//!
//! Signature: `hex(HMAC-SHA256(key, "{timestamp}\n{nonce}\n{body}\n"))` in the header
//! `yiqian-sandbox-signature`, with `yiqian-sandbox-timestamp` (Unix seconds) and
//! `yiqian-sandbox-nonce`.

use crate::ProviderError;
use crate::payment::{
    GatewayNotification, GatewayTrade, NotificationRejected, PaymentGateway, PaymentRequest, PaymentStart,
    RefundOutcome, RefundRequest, SignedNotification,
};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::sync::Arc;
use yiqian_domain::PaymentId;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "yiqian-sandbox-signature";
/// Header carrying the signing time.
pub const TIMESTAMP_HEADER: &str = "yiqian-sandbox-timestamp";
/// Header carrying the nonce.
pub const NONCE_HEADER: &str = "yiqian-sandbox-nonce";
/// How far a notification's timestamp may be from now.
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 300;
/// Our webhook path the gateway posts to.
pub const NOTIFY_PATH: &str = "/notify/sandbox";
/// The cashier page path.
pub const CASHIER_PATH: &str = "/sandbox/cashier";

/// A trade as the cashier page shows it: the payment asked for, and until when the link works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashierTrade {
    /// The payment asked for.
    #[serde(flatten)]
    pub request: PaymentRequest,
    /// Until when the cashier link works: the payment's own deadline, at most two hours.
    pub link_expires_at: DateTime<Utc>,
}

/// Why a cashier link does not work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CashierError {
    /// Not a link this gateway made.
    #[error("支付链接无效")]
    Invalid,
    /// Too old.
    #[error("支付链接已过期,请返回订单重新发起支付")]
    Expired,
}

struct Inner {
    key: [u8; 32],
    public_url: String,
    client: reqwest::Client,
    ledger: std::sync::Mutex<std::collections::HashMap<String, GatewayTrade>>,
}

/// The sandbox gateway; cheap to clone.
#[derive(Clone)]
pub struct SandboxGateway {
    inner: Arc<Inner>,
}

impl SandboxGateway {
    /// A gateway signing with `key`, reaching our service at `public_url` (e.g.
    /// `http://127.0.0.1:8080`) for the cashier page and notifications.
    pub fn new(key: [u8; 32], public_url: &str) -> SandboxGateway {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("an HTTP client without TLS always builds");
        SandboxGateway {
            inner: Arc::new(Inner {
                key,
                public_url: public_url.trim_end_matches('/').to_owned(),
                client,
                ledger: Default::default(),
            }),
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.inner.key).expect("HMAC takes any key length");
        for p in parts {
            mac.update(p);
        }
        mac
    }

    /// Opens a cashier link's trade, checking the gateway's signature and the expiry.
    pub fn open_cashier(&self, token: &str, now: DateTime<Utc>) -> Result<CashierTrade, CashierError> {
        let (body, sig) = token.split_once('.').ok_or(CashierError::Invalid)?;
        let body = B64.decode(body).map_err(|_| CashierError::Invalid)?;
        let sig = B64.decode(sig).map_err(|_| CashierError::Invalid)?;
        self.mac(&[b"cashier\n", &body]).verify_slice(&sig).map_err(|_| CashierError::Invalid)?;
        let trade: CashierTrade = serde_json::from_slice(&body).map_err(|_| CashierError::Invalid)?;
        if now > trade.link_expires_at {
            return Err(CashierError::Expired);
        }
        Ok(trade)
    }

    fn cashier_token(&self, trade: &CashierTrade) -> String {
        let body = serde_json::to_vec(trade).expect("a trade always serialises");
        let sig = self.mac(&[b"cashier\n", &body]).finalize().into_bytes();
        format!("{}.{}", B64.encode(&body), B64.encode(sig))
    }

    /// The tester confirmed payment at the cashier: the signed notification the gateway will
    /// deliver. Confirming twice yields the same notification id (a replay).
    pub fn confirm_cashier(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<(CashierTrade, SignedNotification), CashierError> {
        let trade = self.open_cashier(token, now)?;
        let notification = GatewayNotification::PaymentSucceeded {
            notification_id: format!("sbx-pay-{}", trade.request.payment),
            payment: trade.request.payment.clone(),
            gateway_txn: format!(
                "SBX{}",
                &hex::encode(self.mac(&[b"txn\n", trade.request.payment.as_str().as_bytes()]).finalize().into_bytes())
                    [..24]
            ),
            amount: trade.request.amount,
        };
        if let GatewayNotification::PaymentSucceeded { gateway_txn, amount, .. } = &notification {
            let paid = GatewayTrade::Paid { gateway_txn: gateway_txn.clone(), amount: *amount };
            self.record(&trade.request.payment, paid);
        }
        Ok((trade, self.sign(&notification, now)))
    }

    fn record(&self, payment: &PaymentId, trade: GatewayTrade) {
        self.inner.ledger.lock().expect("ledger lock").insert(payment.as_str().to_owned(), trade);
    }

    /// Signs a notification as the gateway would send it.
    pub fn sign(&self, notification: &GatewayNotification, now: DateTime<Utc>) -> SignedNotification {
        let body = serde_json::to_vec(notification).expect("a notification always serialises");
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let nonce = hex::encode(nonce);
        let ts = now.timestamp().to_string();
        let sig = self.mac(&[ts.as_bytes(), b"\n", nonce.as_bytes(), b"\n", &body, b"\n"]).finalize().into_bytes();
        SignedNotification {
            headers: vec![
                (TIMESTAMP_HEADER.into(), ts),
                (NONCE_HEADER.into(), nonce),
                (SIGNATURE_HEADER.into(), hex::encode(sig)),
            ],
            body,
        }
    }

    /// Posts a notification to our webhook until it is acknowledged, retrying with backoff
    /// (0.5 s, 1 s, 2 s, …) up to eight times, as gateways do.
    pub async fn deliver(&self, notification: SignedNotification) -> Result<(), ProviderError> {
        let url = format!("{}{}", self.inner.public_url, NOTIFY_PATH);
        let mut delay = std::time::Duration::from_millis(500);
        let mut last = String::new();
        for _ in 0..8 {
            let mut req = self.inner.client.post(&url).header("content-type", "application/json");
            for (k, v) in &notification.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            match req.body(notification.body.clone()).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => last = format!("webhook answered {}", r.status()),
                Err(e) => last = format!("webhook unreachable: {e}"),
            }
            tracing::warn!(attempt_error = %last, "sandbox gateway: notification not acknowledged, retrying");
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        Err(ProviderError::Transient { provider: "sandbox", detail: last })
    }
}

#[async_trait]
impl PaymentGateway for SandboxGateway {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn create_payment(&self, request: &PaymentRequest) -> Result<PaymentStart, ProviderError> {
        let link_expires_at = request.expires_at.min(Utc::now() + Duration::hours(2));
        let trade = CashierTrade { request: request.clone(), link_expires_at };
        let token = self.cashier_token(&trade);
        let mut ledger = self.inner.ledger.lock().expect("ledger lock");
        ledger.entry(request.payment.as_str().to_owned()).or_insert(GatewayTrade::NotPaid);
        Ok(PaymentStart::Redirect { pay_url: format!("{}{}?t={}", self.inner.public_url, CASHIER_PATH, token) })
    }

    async fn query_payment(&self, payment: &PaymentId) -> Result<GatewayTrade, ProviderError> {
        Ok(self
            .inner
            .ledger
            .lock()
            .expect("ledger lock")
            .get(payment.as_str())
            .cloned()
            .unwrap_or(GatewayTrade::NotFound))
    }

    async fn close_payment(&self, payment: &PaymentId) -> Result<(), ProviderError> {
        let mut ledger = self.inner.ledger.lock().expect("ledger lock");
        if let Some(trade @ GatewayTrade::NotPaid) = ledger.get_mut(payment.as_str()) {
            *trade = GatewayTrade::Closed;
        }
        Ok(())
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, ProviderError> {
        {
            let mut ledger = self.inner.ledger.lock().expect("ledger lock");
            if let Some(GatewayTrade::Paid { gateway_txn, amount }) = ledger.get(request.payment.as_str()).cloned() {
                ledger.insert(request.payment.as_str().to_owned(), GatewayTrade::Refunded { gateway_txn, amount });
            }
        }
        let notification = GatewayNotification::RefundSucceeded {
            notification_id: format!("sbx-refund-{}", request.refund),
            refund: request.refund.clone(),
            amount: request.amount,
        };
        let signed = self.sign(&notification, Utc::now());
        let gateway = self.clone();
        // The refund is accepted now and reported asynchronously, like the real gateways.
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if let Err(e) = gateway.deliver(signed).await {
                tracing::error!(error = %e, "sandbox gateway: refund notification never acknowledged");
            }
        });
        Ok(RefundOutcome::Pending)
    }

    fn verify_notification(
        &self,
        n: &SignedNotification,
        now: DateTime<Utc>,
    ) -> Result<GatewayNotification, NotificationRejected> {
        let ts = n.header(TIMESTAMP_HEADER).ok_or(NotificationRejected::MissingSignature)?;
        let nonce = n.header(NONCE_HEADER).ok_or(NotificationRejected::MissingSignature)?;
        let sig = n.header(SIGNATURE_HEADER).ok_or(NotificationRejected::MissingSignature)?;
        let sig = hex::decode(sig).map_err(|_| NotificationRejected::BadSignature)?;
        self.mac(&[ts.as_bytes(), b"\n", nonce.as_bytes(), b"\n", &n.body, b"\n"])
            .verify_slice(&sig)
            .map_err(|_| NotificationRejected::BadSignature)?;
        let ts: i64 = ts.parse().map_err(|_| NotificationRejected::MissingSignature)?;
        if (now.timestamp() - ts).abs() > TIMESTAMP_TOLERANCE_SECONDS {
            return Err(NotificationRejected::Stale);
        }
        serde_json::from_slice(&n.body).map_err(|e| NotificationRejected::Malformed(e.to_string()))
    }

    fn acknowledgement(&self) -> (u16, &'static str, &'static str) {
        (200, "application/json", r#"{"code":"SUCCESS","message":"成功"}"#)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yiqian_domain::payment::Channel;
    use yiqian_domain::{Fen, OrderId};

    fn gw() -> SandboxGateway {
        SandboxGateway::new([7u8; 32], "http://127.0.0.1:1")
    }

    fn request() -> PaymentRequest {
        PaymentRequest {
            payment: PaymentId::parse("P1").unwrap(),
            order: OrderId::parse("YQ1").unwrap(),
            amount: Fen(15000),
            channel: Channel::Wechat,
            description: "个人数字证书".into(),
            return_url: "http://x/orders/YQ1".into(),
            payer: Default::default(),
            expires_at: Utc::now() + Duration::minutes(30),
        }
    }

    fn token(start: &PaymentStart) -> &str {
        match start {
            PaymentStart::Redirect { pay_url } => pay_url.split("?t=").nth(1).unwrap(),
            other => panic!("the sandbox redirects to its cashier, not {other:?}"),
        }
    }

    #[tokio::test]
    async fn cashier_link_round_trips_and_rejects_tampering() {
        let g = gw();
        let start = g.create_payment(&request()).await.unwrap();
        let t = token(&start);
        let trade = g.open_cashier(t, Utc::now()).unwrap();
        assert_eq!(trade.request.amount, Fen(15000));
        let mut forged = t.to_owned();
        forged.insert(3, 'A');
        assert_eq!(g.open_cashier(&forged, Utc::now()), Err(CashierError::Invalid));
        assert_eq!(g.open_cashier(t, Utc::now() + Duration::hours(3)), Err(CashierError::Expired));
        assert_eq!(SandboxGateway::new([8u8; 32], "http://x").open_cashier(t, Utc::now()), Err(CashierError::Invalid));
    }

    #[tokio::test]
    async fn notifications_verify_only_when_signed_fresh_and_untampered() {
        let g = gw();
        let start = g.create_payment(&request()).await.unwrap();
        let now = Utc::now();
        let (_, signed) = g.confirm_cashier(token(&start), now).unwrap();
        let n = g.verify_notification(&signed, now).unwrap();
        assert!(matches!(n, GatewayNotification::PaymentSucceeded { amount: Fen(15000), .. }));
        assert_eq!(n.id(), "sbx-pay-P1");

        let mut tampered = signed.clone();
        tampered.body = String::from_utf8(tampered.body).unwrap().replace("15000", "1").into_bytes();
        assert_eq!(g.verify_notification(&tampered, now), Err(NotificationRejected::BadSignature));

        assert_eq!(g.verify_notification(&signed, now + Duration::seconds(301)), Err(NotificationRejected::Stale));
        let other = SandboxGateway::new([9u8; 32], "http://x");
        assert_eq!(other.verify_notification(&signed, now), Err(NotificationRejected::BadSignature));
        let bare = SignedNotification { headers: vec![], body: signed.body.clone() };
        assert_eq!(g.verify_notification(&bare, now), Err(NotificationRejected::MissingSignature));
    }
}
