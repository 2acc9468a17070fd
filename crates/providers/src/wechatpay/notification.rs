//! Notifications (回调通知): verify the signature headers over the raw body, then open the
//! envelope's encrypted `resource` with the APIv3 key and turn a payment or refund result into
//! a [`GatewayNotification`] — after checking it concerns our merchant (and, for payments, our
//! app id).

use super::resource::decrypt_resource;
use super::verify::{SignatureHeaders, VerifyError, WechatPayKeys};
use crate::payment::{GatewayNotification, NotificationRejected, SignedNotification};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use yiqian_domain::{Fen, PaymentId, RefundId};

/// The notification envelope WeChat Pay posts.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    /// The notification's id (a retry repeats it).
    pub id: String,
    /// e.g. `TRANSACTION.SUCCESS`, `REFUND.SUCCESS`.
    pub event_type: String,
    /// `encrypt-resource`.
    #[serde(default)]
    pub resource_type: String,
    /// A short text such as `支付成功`.
    #[serde(default)]
    pub summary: String,
    /// The encrypted payload.
    pub resource: EncryptedResource,
}

/// The `resource` of an envelope.
#[derive(Debug, Clone, Deserialize)]
pub struct EncryptedResource {
    /// `transaction` or `refund`.
    #[serde(default)]
    pub original_type: String,
    /// `AEAD_AES_256_GCM`.
    pub algorithm: String,
    /// Base64 ciphertext and tag.
    pub ciphertext: String,
    /// The AAD (may be empty).
    #[serde(default)]
    pub associated_data: String,
    /// The 12-character IV.
    pub nonce: String,
}

/// What a notification is checked against.
#[derive(Debug, Clone, Copy)]
pub struct NotificationContext<'a> {
    /// The keys WeChat Pay signs with.
    pub keys: &'a WechatPayKeys,
    /// The APIv3 key.
    pub api_v3_key: &'a [u8],
    /// Our merchant id.
    pub mchid: &'a str,
    /// Our app id.
    pub appid: &'a str,
}

/// The signature headers of a notification, or `MissingSignature`.
pub fn signature_headers(n: &SignedNotification) -> Result<SignatureHeaders<'_>, NotificationRejected> {
    let get = |name: &str| n.header(name).filter(|v| !v.is_empty()).ok_or(NotificationRejected::MissingSignature);
    Ok(SignatureHeaders {
        timestamp: get("wechatpay-timestamp")?,
        nonce: get("wechatpay-nonce")?,
        signature: get("wechatpay-signature")?,
        serial: get("wechatpay-serial")?,
    })
}

/// Maps a signature failure to the seam's rejection.
pub fn rejection(e: VerifyError) -> NotificationRejected {
    match e {
        VerifyError::UnknownSerial(_) | VerifyError::Expired(_) => NotificationRejected::UnknownKey,
        VerifyError::Timestamp => NotificationRejected::MissingSignature,
        VerifyError::Stale(_) => NotificationRejected::Stale,
        VerifyError::Probe => NotificationRejected::Probe,
        VerifyError::BadSignature => NotificationRejected::BadSignature,
    }
}

/// Parses an envelope and decrypts its resource (call only after the signature verified).
pub fn open_envelope(body: &[u8], api_v3_key: &[u8]) -> Result<(Envelope, Vec<u8>), NotificationRejected> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|e| NotificationRejected::Malformed(format!("envelope: {}", json_error(&e))))?;
    let r = &envelope.resource;
    if r.algorithm != "AEAD_AES_256_GCM" {
        return Err(NotificationRejected::Malformed(format!("resource algorithm {:?}", r.algorithm)));
    }
    let plain = decrypt_resource(api_v3_key, &r.nonce, &r.associated_data, &r.ciphertext)
        .map_err(|e| NotificationRejected::Malformed(e.to_string()))?;
    Ok((envelope, plain))
}

/// The kind of a JSON error and its position, never the offending content.
fn json_error(e: &serde_json::Error) -> String {
    format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column())
}

#[derive(Deserialize)]
struct Transaction {
    mchid: String,
    appid: String,
    out_trade_no: String,
    #[serde(default)]
    transaction_id: String,
    trade_state: String,
    amount: TransactionAmount,
}

#[derive(Deserialize)]
struct TransactionAmount {
    total: u64,
}

#[derive(Deserialize)]
struct Refund {
    mchid: String,
    out_refund_no: String,
    refund_status: String,
    amount: RefundAmount,
}

#[derive(Deserialize)]
struct RefundAmount {
    refund: u64,
}

#[derive(Deserialize)]
struct MerchantOnly {
    mchid: Option<String>,
}

fn plaintext<'de, T: Deserialize<'de>>(plain: &'de [u8], what: &str) -> Result<T, NotificationRejected> {
    serde_json::from_slice(plain).map_err(|e| NotificationRejected::Malformed(format!("{what}: {}", json_error(&e))))
}

/// Verifies a notification and parses it.
pub fn parse_notification(
    ctx: &NotificationContext<'_>,
    n: &SignedNotification,
    now: DateTime<Utc>,
) -> Result<GatewayNotification, NotificationRejected> {
    let headers = signature_headers(n)?;
    ctx.keys.verify(&headers, &n.body, now).map_err(rejection)?;
    let (envelope, plain) = open_envelope(&n.body, ctx.api_v3_key)?;
    let notification_id = envelope.id.clone();
    let foreign = |field: &str| NotificationRejected::Malformed(format!("{field} is not ours"));
    match envelope.event_type.as_str() {
        t if t.starts_with("TRANSACTION.") => {
            let tx: Transaction = plaintext(&plain, "transaction")?;
            if tx.mchid != ctx.mchid {
                return Err(foreign("mchid"));
            }
            if tx.appid != ctx.appid {
                return Err(foreign("appid"));
            }
            if t == "TRANSACTION.SUCCESS" && tx.trade_state == "SUCCESS" {
                let payment = PaymentId::parse(&tx.out_trade_no)
                    .ok_or_else(|| NotificationRejected::Malformed("out_trade_no is not a payment id".into()))?;
                if tx.transaction_id.is_empty() {
                    return Err(NotificationRejected::Malformed("transaction_id is missing".into()));
                }
                Ok(GatewayNotification::PaymentSucceeded {
                    notification_id,
                    payment,
                    gateway_txn: tx.transaction_id,
                    amount: Fen(tx.amount.total),
                })
            } else {
                Ok(GatewayNotification::Informational {
                    notification_id,
                    summary: format!("{t} trade_state={}", tx.trade_state),
                })
            }
        }
        t if t.starts_with("REFUND.") => {
            let refund: Refund = plaintext(&plain, "refund")?;
            if refund.mchid != ctx.mchid {
                return Err(foreign("mchid"));
            }
            let id = RefundId::parse(&refund.out_refund_no)
                .ok_or_else(|| NotificationRejected::Malformed("out_refund_no is not a refund id".into()))?;
            match (t, refund.refund_status.as_str()) {
                ("REFUND.SUCCESS", "SUCCESS") => Ok(GatewayNotification::RefundSucceeded {
                    notification_id,
                    refund: id,
                    amount: Fen(refund.amount.refund),
                }),
                ("REFUND.ABNORMAL" | "REFUND.CLOSED", status) => {
                    Ok(GatewayNotification::RefundFailed { notification_id, refund: id, status: status.to_owned() })
                }
                (t, status) => Ok(GatewayNotification::Informational {
                    notification_id,
                    summary: format!("{t} refund_status={status}"),
                }),
            }
        }
        other => {
            let m: MerchantOnly = plaintext(&plain, "resource")?;
            if m.mchid.is_some_and(|m| m != ctx.mchid) {
                return Err(foreign("mchid"));
            }
            Ok(GatewayNotification::Informational { notification_id, summary: other.to_owned() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsa::RsaSigner;
    use crate::wechatpay::certificates::PlatformCertificate;
    use crate::wechatpay::resource::{ResourceError, encrypt_resource};

    const WX3_CERT: &str = include_str!("../../testdata/wx3_platform_cert.pem");
    const WX3_BODY: &[u8] = include_bytes!("../../testdata/wx3_notification_body.json");
    const WX3_SIGNATURE: &str = include_str!("../../testdata/wx3_notification_signature.txt");
    const PLATFORM_KEY: &str = include_str!("../../testdata/wxgo_test_key.pem");
    const APIV3: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn wx3() -> SignedNotification {
        SignedNotification {
            headers: vec![
                ("wechatpay-timestamp".into(), "1624523846".into()),
                ("wechatpay-nonce".into(), "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz".into()),
                ("wechatpay-serial".into(), "D7CE59D1F522D701".into()),
                ("wechatpay-signature".into(), WX3_SIGNATURE.trim().into()),
                ("wechatpay-signature-type".into(), "WECHATPAY2-SHA256-RSA2048".into()),
            ],
            body: WX3_BODY.to_vec(),
        }
    }

    /// WX-3: the Go SDK's certificate-mode notification verifies under its certificate; its
    /// 16-byte APIv3 key makes the resource AES-128, which our decryptor refuses.
    #[test]
    fn wx3_vector() {
        let cert = PlatformCertificate::from_pem(WX3_CERT).unwrap();
        let mut keys = WechatPayKeys::default();
        keys.insert_until(&cert.serial, cert.verifier().clone(), cert.not_after);
        let n = wx3();
        let now = DateTime::from_timestamp(1_624_523_846, 0).unwrap();
        keys.verify(&signature_headers(&n).unwrap(), &n.body, now).unwrap();
        let mut altered = n.clone();
        altered.body = String::from_utf8(altered.body).unwrap().replace("签约成功", "签约失败").into_bytes();
        assert_eq!(
            keys.verify(&signature_headers(&altered).unwrap(), &altered.body, now).map_err(rejection),
            Err(NotificationRejected::BadSignature)
        );
        let envelope: Envelope = serde_json::from_slice(&n.body).unwrap();
        assert_eq!(envelope.id, "3119dfba-e649-5eec-ab1e-3412bc4d2e17");
        assert_eq!(envelope.event_type, "PAYSCORE.USER_OPEN_SERVICE");
        assert_eq!(envelope.resource.associated_data, "payscore");
        assert_eq!(
            decrypt_resource(
                b"testMchAPIv3Key0",
                &envelope.resource.nonce,
                &envelope.resource.associated_data,
                &envelope.resource.ciphertext
            ),
            Err(ResourceError::KeyLength(16))
        );
        let ctx = NotificationContext { keys: &keys, api_v3_key: b"testMchAPIv3Key0", mchid: "1234567890", appid: "x" };
        assert!(matches!(parse_notification(&ctx, &n, now), Err(NotificationRejected::Malformed(_))));
        let later = now + chrono::Duration::seconds(301);
        assert_eq!(parse_notification(&ctx, &n, later), Err(NotificationRejected::Stale));
    }

    fn notification(event_type: &str, original_type: &str, plain: &str, ts: i64) -> SignedNotification {
        let ct = encrypt_resource(APIV3, "0123456789ab", original_type, plain.as_bytes()).unwrap();
        let body = serde_json::json!({"id":"EV-1","create_time":"2024-01-01T00:00:00+08:00",
            "resource_type":"encrypt-resource","event_type":event_type,"summary":"x",
            "resource":{"original_type":original_type,"algorithm":"AEAD_AES_256_GCM","ciphertext":ct,
            "associated_data":original_type,"nonce":"0123456789ab"}})
        .to_string();
        let signer = RsaSigner::from_pem(PLATFORM_KEY).unwrap();
        let signature = signer.sign(format!("{ts}\nNONCE\n{body}\n").as_bytes()).unwrap();
        SignedNotification {
            headers: vec![
                ("wechatpay-timestamp".into(), ts.to_string()),
                ("wechatpay-nonce".into(), "NONCE".into()),
                ("wechatpay-serial".into(), "PUB_KEY_ID_1".into()),
                ("wechatpay-signature".into(), signature),
            ],
            body: body.into_bytes(),
        }
    }

    fn parse(n: &SignedNotification, now: DateTime<Utc>) -> Result<GatewayNotification, NotificationRejected> {
        let mut keys = WechatPayKeys::default();
        keys.insert("PUB_KEY_ID_1", RsaSigner::from_pem(PLATFORM_KEY).unwrap().verifier());
        parse_notification(
            &NotificationContext { keys: &keys, api_v3_key: APIV3, mchid: "1900000001", appid: "wxAPP" },
            n,
            now,
        )
    }

    #[test]
    fn payment_and_refund_results_parse() {
        let now = Utc::now();
        let ts = now.timestamp();
        let paid = r#"{"mchid":"1900000001","appid":"wxAPP","out_trade_no":"P123456","transaction_id":"4200001","trade_type":"JSAPI","trade_state":"SUCCESS","amount":{"total":150,"payer_total":150,"currency":"CNY","payer_currency":"CNY"}}"#;
        assert_eq!(
            parse(&notification("TRANSACTION.SUCCESS", "transaction", paid, ts), now),
            Ok(GatewayNotification::PaymentSucceeded {
                notification_id: "EV-1".into(),
                payment: PaymentId::parse("P123456").unwrap(),
                gateway_txn: "4200001".into(),
                amount: Fen(150),
            })
        );
        let foreign_app = paid.replace("wxAPP", "wxOTHER");
        assert!(matches!(
            parse(&notification("TRANSACTION.SUCCESS", "transaction", &foreign_app, ts), now),
            Err(NotificationRejected::Malformed(_))
        ));
        let foreign_mch = paid.replace("1900000001", "1900000002");
        assert!(matches!(
            parse(&notification("TRANSACTION.SUCCESS", "transaction", &foreign_mch, ts), now),
            Err(NotificationRejected::Malformed(_))
        ));
        let refunded = r#"{"mchid":"1900000001","out_trade_no":"P123456","transaction_id":"4200001","out_refund_no":"R1","refund_id":"5030001","refund_status":"SUCCESS","amount":{"total":150,"refund":100,"payer_total":150,"payer_refund":100}}"#;
        assert_eq!(
            parse(&notification("REFUND.SUCCESS", "refund", refunded, ts), now),
            Ok(GatewayNotification::RefundSucceeded {
                notification_id: "EV-1".into(),
                refund: RefundId::parse("R1").unwrap(),
                amount: Fen(100),
            })
        );
        let abnormal = refunded.replace(r#""refund_status":"SUCCESS""#, r#""refund_status":"ABNORMAL""#);
        assert_eq!(
            parse(&notification("REFUND.ABNORMAL", "refund", &abnormal, ts), now),
            Ok(GatewayNotification::RefundFailed {
                notification_id: "EV-1".into(),
                refund: RefundId::parse("R1").unwrap(),
                status: "ABNORMAL".into(),
            })
        );
        assert!(matches!(
            parse(&notification("PAYSCORE.USER_OPEN_SERVICE", "payscore", r#"{"mchid":"1900000001"}"#, ts), now),
            Ok(GatewayNotification::Informational { .. })
        ));
    }

    #[test]
    fn bad_notifications_are_refused() {
        let now = Utc::now();
        let paid = r#"{"mchid":"1900000001","appid":"wxAPP","out_trade_no":"P123456","transaction_id":"4200001","trade_state":"SUCCESS","amount":{"total":150}}"#;
        let good = notification("TRANSACTION.SUCCESS", "transaction", paid, now.timestamp());
        let mut missing = good.clone();
        missing.headers.retain(|(k, _)| k != "wechatpay-nonce");
        assert_eq!(parse(&missing, now), Err(NotificationRejected::MissingSignature));
        let mut probe = good.clone();
        probe.headers[3].1 = "WECHATPAY/SIGNTEST/abc".into();
        assert_eq!(parse(&probe, now), Err(NotificationRejected::Probe));
        let mut unknown = good.clone();
        unknown.headers[2].1 = "PUB_KEY_ID_2".into();
        assert_eq!(parse(&unknown, now), Err(NotificationRejected::UnknownKey));
        let mut tampered = good.clone();
        tampered.body = String::from_utf8(tampered.body).unwrap().replace("EV-1", "EV-2").into_bytes();
        assert_eq!(parse(&tampered, now), Err(NotificationRejected::BadSignature));
        let stale = notification("TRANSACTION.SUCCESS", "transaction", paid, now.timestamp() - 600);
        assert_eq!(parse(&stale, now), Err(NotificationRejected::Stale));
    }
}
