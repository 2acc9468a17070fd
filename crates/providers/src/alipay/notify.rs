//! Alipay's asynchronous trade notifications (`notify_url`): a form POST signed by the "V1"
//! rule (`sign` and `sign_type` left out of the signed content), by Alipay's key of the
//! application named in `app_id`.
//!
//! There is deliberately no freshness window: Alipay retries the same notification, with the
//! same `notify_id` and `notify_time`, for about 25 hours until it is acknowledged, so an old
//! notification is normal. Replays are absorbed downstream by the notification id.

use super::amount::parse_yuan;
use super::sign;
use crate::payment::{GatewayNotification, NotificationRejected};
use crate::rsa::RsaVerifier;
use std::collections::BTreeMap;
use yiqian_domain::PaymentId;

/// Fields whose presence marks the trade callback a refund triggers.
const REFUND_FIELDS: &[&str] = &["refund_fee", "gmt_refund", "out_biz_no"];

/// Form-decodes a notification body; a field named twice is refused.
pub fn decode_form(body: &[u8]) -> Result<BTreeMap<String, String>, NotificationRejected> {
    let mut fields = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(body) {
        if fields.insert(key.clone().into_owned(), value.into_owned()).is_some() {
            return Err(NotificationRejected::Malformed(format!("field {key} appears twice")));
        }
    }
    Ok(fields)
}

/// Whom a notification must be addressed to.
pub(super) struct Recipient<'a> {
    /// Our application.
    pub app_id: &'a str,
    /// Our seller id, when configured.
    pub seller_id: Option<&'a str>,
    /// Alipay's key (its public key, or its certificate's).
    pub alipay: &'a RsaVerifier,
}

fn required<'a>(fields: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, NotificationRejected> {
    fields
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| NotificationRejected::Malformed(format!("no {name}")))
}

/// Verifies and interprets a trade notification's body.
pub(super) fn interpret(body: &[u8], to: &Recipient<'_>) -> Result<GatewayNotification, NotificationRejected> {
    let fields = decode_form(body)?;
    if fields.get("sign").is_none_or(|s| s.is_empty()) {
        return Err(NotificationRejected::MissingSignature);
    }
    // Alipay's key belongs to one application: another application's notification cannot be
    // checked with ours, and is not for us anyway.
    if required(&fields, "app_id")? != to.app_id {
        return Err(NotificationRejected::UnknownKey);
    }
    if !sign::verify_notification(to.alipay, &fields) {
        return Err(NotificationRejected::BadSignature);
    }
    if let Some(seller) = to.seller_id
        && fields.get("seller_id").map(String::as_str) != Some(seller)
    {
        return Err(NotificationRejected::UnknownKey);
    }
    if let Some(charset) = fields.get("charset")
        && !charset.eq_ignore_ascii_case("utf-8")
    {
        return Err(NotificationRejected::Malformed(format!("charset {charset}")));
    }
    let notification_id = required(&fields, "notify_id")?.to_owned();
    let notify_type = required(&fields, "notify_type")?;
    if notify_type != "trade_status_sync" {
        return Ok(GatewayNotification::Informational {
            notification_id,
            summary: format!("notify_type {notify_type}"),
        });
    }
    let status = required(&fields, "trade_status")?;
    let out_trade_no = required(&fields, "out_trade_no")?;
    let refund = REFUND_FIELDS.iter().any(|f| fields.get(*f).is_some_and(|v| !v.is_empty()));
    match status {
        "TRADE_SUCCESS" | "TRADE_FINISHED" if !refund => {
            let payment = PaymentId::parse(out_trade_no)
                .ok_or_else(|| NotificationRejected::Malformed("out_trade_no is not ours".into()))?;
            let gateway_txn = required(&fields, "trade_no")?.to_owned();
            let amount = parse_yuan(required(&fields, "total_amount")?)
                .map_err(|e| NotificationRejected::Malformed(e.to_string()))?;
            Ok(GatewayNotification::PaymentSucceeded { notification_id, payment, gateway_txn, amount })
        }
        "TRADE_SUCCESS" | "TRADE_FINISHED" | "TRADE_CLOSED" | "WAIT_BUYER_PAY" => {
            let what = if refund { " after a refund" } else { "" };
            Ok(GatewayNotification::Informational {
                notification_id,
                summary: format!("trade {out_trade_no} {status}{what}"),
            })
        }
        other => {
            tracing::warn!(trade_status = other, "alipay notification with an unknown trade_status");
            Ok(GatewayNotification::Informational {
                notification_id,
                summary: format!("trade {out_trade_no} in unknown state {other}"),
            })
        }
    }
}
