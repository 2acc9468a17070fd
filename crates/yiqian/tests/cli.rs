//! The operator's commands, run as a person would: `migrate`, `sms outbox` and
//! `audit verify` on a data directory the service wrote, including a tampered one.

mod common;

use common::*;
use sqlx::Connection;

fn yiqian(data: &std::path::Path, args: &[&str]) -> (bool, String) {
    run_yiqian(data, &[], args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_outbox_and_audit_verify_on_a_real_data_directory() {
    let h = start(yiqian_store::Backend::Sqlite).await;
    let token = h.login("13800138000").await;
    let id = h.create_order(&token).await;
    h.pay(&token, &id).await;
    // The paid SMS is delivered by the outbox after the payment; wait for it before stopping.
    assert!(h.sms_containing("13800138000", "已支付成功").await.is_some());
    h.server.stop().await;
    let data = h.dir.path().join("data");

    let (ok, out) = yiqian(&data, &["migrate"]);
    assert!(ok, "{out}");

    let (ok, out) = yiqian(&data, &["sms", "outbox"]);
    assert!(ok, "{out}");
    let lines: Vec<serde_json::Value> =
        out.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() >= 2, "{out}");
    assert!(lines[0]["text"].as_str().unwrap().contains("已支付成功"), "newest first: {out}");
    assert!(lines.iter().all(|m| m["phone"] == "13800138000"));

    let (ok, out) = yiqian(&data, &["audit", "verify"]);
    assert!(ok && out.contains("audit trail intact"), "{out}");

    // Someone with database access rewrites history: the command names the entry.
    let url = format!("sqlite://{}", data.join("yiqian.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE audit_events SET actor = 'staff:mallory' WHERE seq = 2").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let (ok, out) = yiqian(&data, &["audit", "verify"]);
    assert!(!ok, "{out}");
    assert!(out.contains("BROKEN at entry 2"), "{out}");
}

#[test]
fn a_bad_configuration_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("yiqian.toml");
    std::fs::write(&file, "[providers]\npayment_wechat = \"paypal\"\n").unwrap();
    let (ok, out) = yiqian(dir.path(), &["--config", file.to_str().unwrap(), "migrate"]);
    assert!(!ok);
    assert!(out.contains("unknown payment_wechat provider \"paypal\"; available: sandbox, wechatpay"), "{out}");
}
