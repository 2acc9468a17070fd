//! What a payment notification costs to take, before the database: signature verification
//! (and, for WeChat Pay, AES-256-GCM decryption of the resource) in the real adapters, and
//! what signing one WeChat Pay request costs. A benchmark, not a test:
//!
//!     cargo run --release -p yiqian-sim --example notification_bench [N]
//!
//! The notifications are made by the stand-ins with fresh accounts (RSA-3072 platform and
//! Alipay keys); the request signature uses WeChat's published 2048-bit documentation key,
//! the size of a real merchant key.

use std::collections::BTreeMap;
use std::time::Instant;
use yiqian_providers::alipay::{AlipayConfig, AlipayGateway, AlipayKeyMode};
use yiqian_providers::payment::{PaymentGateway, SignedNotification};
use yiqian_providers::wechatpay::signing::{MerchantSigner, request_message};
use yiqian_providers::wechatpay::{WechatPayConfig, WechatPayGateway, WechatPayPublicKey};
use yiqian_sim::Sim;
use yiqian_sim::accounts::SimAccounts;

fn report(what: &str, n: usize, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!("{what:<56} {:>8.1} µs each {:>8.0} /s", secs * 1e6 / n as f64, n as f64 / secs);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let accounts = SimAccounts::generate()?;
    let sim = Sim::new(&accounts, "http://127.0.0.1:9");
    let now = chrono::Utc::now();

    let w = &accounts.wechatpay;
    let wechat = WechatPayGateway::new(WechatPayConfig {
        base_url: "http://127.0.0.1:9".into(),
        mchid: w.mchid.clone(),
        appid: w.appid.clone(),
        merchant_serial: w.merchant_serial.clone(),
        merchant_key_pem: w.merchant_key_pem.clone(),
        apiv3_key: w.apiv3_key.clone(),
        public_key: Some(WechatPayPublicKey {
            public_key_id: w.public_key_id.clone(),
            public_key_pem: w.platform_public_pem.clone(),
        }),
        platform_certificates: vec![],
        notify_url: "http://127.0.0.1:9/notify/wechatpay".into(),
    })?;
    let resource = serde_json::json!({
        "appid": w.appid, "mchid": w.mchid, "out_trade_no": "PY0000000000000000000001",
        "transaction_id": "4200000000202611260000000001", "trade_type": "JSAPI", "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功", "bank_type": "OTHERS", "success_time": "2026-11-26T10:00:00+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 15000, "payer_total": 15000, "currency": "CNY", "payer_currency": "CNY"},
    });
    let signed =
        sim.wechatpay.notification("TRANSACTION.SUCCESS", "transaction", "支付成功", resource).build().to_signed();
    wechat.verify_notification(&signed, now)?;
    let started = Instant::now();
    for _ in 0..n {
        wechat.verify_notification(&signed, now)?;
    }
    report("WeChat Pay notification: verify (RSA-3072) + decrypt", n, started);

    let a = &accounts.alipay;
    let alipay = AlipayGateway::new(AlipayConfig::new(
        a.app_id.clone(),
        a.app_private_pem.clone(),
        AlipayKeyMode::PublicKey { alipay_public_key_pem: a.alipay_public_pem.clone() },
        "http://127.0.0.1:9/notify/alipay",
    ))?;
    let mut fields: BTreeMap<String, String> = [
        ("notify_time", "2026-11-26 10:00:05"),
        ("notify_type", "trade_status_sync"),
        ("notify_id", "2026112600222100005012345678901234"),
        ("app_id", a.app_id.as_str()),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("trade_no", "2026112622001400000000000001"),
        ("out_trade_no", "PY0000000000000000000001"),
        ("trade_status", "TRADE_SUCCESS"),
        ("total_amount", "150.00"),
        ("receipt_amount", "150.00"),
        ("buyer_pay_amount", "150.00"),
        ("gmt_create", "2026-11-26 10:00:00"),
        ("gmt_payment", "2026-11-26 10:00:04"),
        ("subject", "个人数字证书"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    sim.alipay.sign_notification(&mut fields);
    let body = yiqian_sim::alipay::notify::form_body(&fields).into_bytes();
    let signed = SignedNotification { headers: vec![], body };
    alipay.verify_notification(&signed, now)?;
    let started = Instant::now();
    for _ in 0..n {
        alipay.verify_notification(&signed, now)?;
    }
    report("Alipay notification: form decode + verify (RSA-3072)", n, started);

    let key = include_str!("../../providers/testdata/wxdoc_test_key.pem");
    let signer = MerchantSigner::from_pem("1900007291", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1", key)?;
    let body = concat!(
        r#"{"appid":"wxd678efh567hg6787","mchid":"1900007291","description":"个人数字证书","#,
        r#""out_trade_no":"PY0000000000000000000001","notify_url":"https://ca.example.cn/notify/wechatpay","#,
        r#""amount":{"total":15000,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}"#
    );
    let message =
        request_message("POST", "/v3/pay/transactions/jsapi", 1_764_122_400, "593BEC0C930BF1AFEB40B4A08C8FB242", body);
    let started = Instant::now();
    for _ in 0..n {
        signer.sign(message.as_bytes())?;
    }
    report("WeChat Pay request signature (RSA-2048 merchant key)", n, started);
    Ok(())
}
