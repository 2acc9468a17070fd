//! RSA2 (SHA256withRSA) as Alipay uses it: the parameters, less the excluded ones and the
//! empty ones, sorted by key and joined as `k=v&k=v` with raw values, signed and Base64-encoded.
//! Requests keep `sign_type` in the signed content; trade notifications leave out both `sign`
//! and `sign_type` (the "V1" rule).

use crate::rsa::{RsaError, RsaSigner, RsaVerifier};
use std::collections::BTreeMap;

/// What a request signs: everything but `sign`.
pub const REQUEST_EXCLUDES: &[&str] = &["sign"];
/// What a trade notification signs: everything but `sign` and `sign_type`.
pub const NOTIFY_EXCLUDES: &[&str] = &["sign", "sign_type"];

/// The content to sign or verify.
pub fn sign_content(params: &BTreeMap<String, String>, exclude: &[&str]) -> String {
    params
        .iter()
        .filter(|(k, v)| !v.is_empty() && !exclude.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Signs request parameters with the app private key; returns the `sign` value.
pub fn sign_request(signer: &RsaSigner, params: &BTreeMap<String, String>) -> Result<String, RsaError> {
    signer.sign(sign_content(params, REQUEST_EXCLUDES).as_bytes())
}

/// Whether a trade notification's form fields carry a valid `sign` by Alipay's public key.
pub fn verify_notification(alipay: &RsaVerifier, fields: &BTreeMap<String, String>) -> bool {
    match fields.get("sign") {
        Some(sign) => alipay.verify(sign_content(fields, NOTIFY_EXCLUDES).as_bytes(), sign),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP_KEY: &str = include_str!("../../testdata/ali_app_priv.pem");
    const ALIPAY_PUB: &str = include_str!("../../testdata/ali_pub.pem");

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// AL-1: a wap-pay request signed with the SDK's fixture key.
    #[test]
    fn al1_vector() {
        let p = params(&[
            ("method", "alipay.trade.wap.pay"),
            ("app_id", "2021000000000001"),
            (
                "biz_content",
                r#"{"out_trade_no":"T20240101000001","product_code":"QUICK_WAP_WAY","subject":"个人数字证书","total_amount":"100.00"}"#,
            ),
            ("charset", "utf-8"),
            ("format", "JSON"),
            ("notify_url", "https://example.com/alipay/notify"),
            ("sign_type", "RSA2"),
            ("timestamp", "2024-01-01 12:00:00"),
            ("version", "1.0"),
            ("return_url", ""),
        ]);
        assert!(sign_content(&p, REQUEST_EXCLUDES).starts_with("app_id=2021000000000001&biz_content={"));
        let signer = RsaSigner::from_pem(APP_KEY).unwrap();
        assert_eq!(
            sign_request(&signer, &p).unwrap(),
            "X6dMhTEq1ReIgNNn95te1QljI2yDTsOXAE1ltqNmidgsrJXRxY/Y3vILMmMefTkOObY2HdSUvJ5LBKeXlygrX1PCh15X98w2PT1JaswAqBply7xzQz9EdKjXgYhetSiHAf8vK62YSs94SrzRIq63A6igJVlmb3qHharfh9xtaTnu0emEKzOVpfKqspb6qMvnCFI7Y1NmScvHzkvMJKvuETvKcJJ+TOzVYSpvg99eY+NHF0hV2pMbrH3DDcwoslm27LrzNWnPgENHjiUD5KxdqI0FECdrFdh9aFF0+nvzUyY2u4GYLcVVmQVcD9xkY1C+vjptMc2ZNC4H29lSPD4z3Q=="
        );
    }

    /// AL-3: a gateway response signed by Alipay (the SDK's fixture public key).
    #[test]
    fn al3_vector() {
        let alipay = RsaVerifier::from_pem(ALIPAY_PUB).unwrap();
        let content = r#"{"code":"10000","msg":"Success","file_id":"CAxAToWB1JsAAAAAAAAAAAAADgSLAQBr"}"#;
        let sign = "F+LDzpTNiavn7xVZPGuPCSSVRSmWzJGgtuji6tVELGEaqMaNj0jRKXUEr5nloZJBBmwEnddOyCjjepMmrTKTvoOqQ0Efxpr/R1iEeHTHVbb/Q8TTh6Up5gHJDkILdaWS2q1cWeQ6VT+HQY9P3WRXS7uhILHuDODIhpAyCu5KhWGt0rMCIG+Im6NODJP2oohtSCtmTFXg58HH587Z2y2bdbjzOxLvzD9IrU1imghXQ2S/Q+wMIvRk9on6cWnBLkrNvJKapA2ReNGWOwyuASvB9zDVzhMPbR+3mfRGkVDxsq5HYLjBKGskJMXHw0HuugZij6ScRuaLPODhmHwr/pJ9yw==";
        assert!(alipay.verify(content.as_bytes(), sign));
        assert!(!alipay.verify(content.replace("10000", "10001").as_bytes(), sign));
        assert!(!alipay.verify(content.as_bytes(), "not base64!"));
    }

    /// AL-2: a genuine trade notification from the Node SDK's tests, signed by Alipay. It
    /// verifies by the V1 rule (without `sign_type`) and fails with `sign_type` signed.
    #[test]
    fn al2_vector() {
        let alipay = RsaVerifier::from_pem(include_str!("../../testdata/ali_notify_v1_pub.pem")).unwrap();
        let fields = super::super::notify::decode_form(include_bytes!("../../testdata/ali_notify_v1.form")).unwrap();
        assert_eq!(
            sign_content(&fields, NOTIFY_EXCLUDES),
            "app_id=2019073166072302&auth_app_id=2019073166072302&buyer_id=2088102534368455&buyer_logon_id=xud***@126.com&buyer_pay_amount=0.10&charset=utf-8&fund_bill_list=[{\"amount\":\"0.10\",\"fundChannel\":\"ALIPAYACCOUNT\"}]&gmt_create=2019-08-15 15:56:22&gmt_payment=2019-08-15 15:56:24&invoice_amount=0.10&notify_id=2019081500222155624068450559358070&notify_time=2019-08-15 15:56:25&notify_type=trade_status_sync&out_trade_no=20190815155618536-564-57&point_amount=0.00&receipt_amount=0.10&seller_email=z97-yuquerevenue@service.aliyun.com&seller_id=2088531891668739&subject=语雀空间 500人规模&total_amount=0.10&trade_no=2019081522001468450512505578&trade_status=TRADE_SUCCESS&version=1.0"
        );
        assert!(verify_notification(&alipay, &fields));
        assert!(!alipay.verify(sign_content(&fields, REQUEST_EXCLUDES).as_bytes(), &fields["sign"]));
        let mut altered = fields.clone();
        altered.insert("total_amount".into(), "10.00".into());
        assert!(!verify_notification(&alipay, &altered));
    }

    #[test]
    fn notifications_sign_without_sign_type_and_fail_when_altered() {
        // A notification signed the way Alipay does, with the app key standing in for Alipay's.
        let signer = RsaSigner::from_pem(APP_KEY).unwrap();
        let verifier = RsaVerifier::from_pem(include_str!("../../testdata/ali_app_pub.pem")).unwrap();
        let mut fields = params(&[
            ("app_id", "2021000000000001"),
            ("out_trade_no", "YQ20261125ABCDEFGH"),
            ("total_amount", "150.00"),
            ("trade_status", "TRADE_SUCCESS"),
            ("sign_type", "RSA2"),
        ]);
        let sign = signer.sign(sign_content(&fields, NOTIFY_EXCLUDES).as_bytes()).unwrap();
        fields.insert("sign".into(), sign);
        assert!(verify_notification(&verifier, &fields));
        fields.insert("total_amount".into(), "0.01".into());
        assert!(!verify_notification(&verifier, &fields));
        fields.remove("sign");
        assert!(!verify_notification(&verifier, &fields));
    }
}
