//! The applicant's journey through the HTTP API with sandbox providers, on SQLite and (when
//! configured) PostgreSQL: apply, pay, complete the materials, 受理成功; refunds, replayed
//! notifications, refused IDs, SMS limits, bad uploads, the network check's probe, and
//! concurrency on one order.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use yiqian_domain::{Fen, PaymentId};
use yiqian_providers::payment::GatewayNotification;
use yiqian_store::Backend;
use yiqian_store::audit::AuditVerdict;

async fn audit_intact(h: &Harness) -> i64 {
    match h.server.app.store().verify_audit().await.unwrap() {
        AuditVerdict::Intact { entries, .. } => entries,
        broken => panic!("audit chain broken on {:?}: {broken:?}", h.backend),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_application_reaches_accepted_and_paid() {
    for backend in backends() {
        let h = start(backend).await;
        let phone = "13800138000";
        let token = h.login(phone).await;
        let id = h.create_order(&token).await;
        // A double tap on 办理 returns the same unpaid order.
        assert_eq!(h.create_order(&token).await, id);
        let o = h.order(&token, &id).await;
        assert_eq!(o["status_word"], "待支付");
        assert_eq!(o["next_url"], format!("/orders/{id}/pay"));

        h.pay(&token, &id).await;
        assert!(h.sms_containing(phone, "已支付成功").await.is_some(), "paid SMS on {backend:?}");

        let done = h.complete_materials(&token, &id, phone).await;
        assert_eq!(done["state"], "submitted");
        assert_eq!(done["next_url"], format!("/orders/{id}/accepted"));
        let o = h.order(&token, &id).await;
        assert_eq!(o["status_word"], "已支付");
        assert!(o["checklist"].as_array().unwrap().iter().all(|s| s["done"] == true));
        let texts: Vec<&str> = o["history"].as_array().unwrap().iter().map(|e| e["text"].as_str().unwrap()).collect();
        assert!(texts.iter().any(|t| t.contains("支付成功")));
        assert!(texts.iter().any(|t| t.contains("受理成功")));
        assert!(h.sms_containing(phone, "已受理成功").await.is_some());
        assert!(o["can_refund"].as_bool().unwrap());

        // The pages of the journey render for this applicant.
        let page = h.http.get(h.url(&format!("/orders/{id}/accepted"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.text().await.unwrap().contains("受理成功"));

        // Already submitted: steps are locked, submit again is harmless.
        let r = h.post(Some(&token), &format!("/api/v1/orders/{id}/address"), address()).await;
        assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "materials_locked"), "{backend:?}");
        h.post(Some(&token), &format!("/api/v1/orders/{id}/submit"), json!({})).await.ok();

        assert!(audit_intact(&h).await >= 8);
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refund_before_shipping_goes_back_through_the_gateway() {
    for backend in backends() {
        let h = start(backend).await;
        let phone = "13900139000";
        let token = h.login(phone).await;
        let id = h.create_order(&token).await;
        h.pay(&token, &id).await;
        let r = h.post(Some(&token), &format!("/api/v1/orders/{id}/refund"), json!({})).await.ok();
        assert_eq!(r["state"], "refunding");
        let o = h.wait_for_state(&token, &id, "refunded").await;
        assert_eq!(o["status_word"], "已退款");
        let refunds = o["refunds"].as_array().unwrap();
        assert_eq!(refunds.len(), 1, "{backend:?}");
        assert_eq!(refunds[0]["state"], "succeeded");
        assert_eq!(refunds[0]["amount_fen"], 15000);
        assert!(h.sms_containing(phone, "已申请退款").await.is_some());
        assert!(h.sms_containing(phone, "已原路退回").await.is_some());
        let again = h.post(Some(&token), &format!("/api/v1/orders/{id}/refund"), json!({})).await;
        assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "refund_already_requested"));
        audit_intact(&h).await;
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replayed_forged_and_stale_notifications_change_nothing() {
    for backend in backends() {
        let h = start(backend).await;
        let token = h.login("13700137000").await;
        let id = h.create_order(&token).await;
        h.pay(&token, &id).await;
        let before = h.order(&token, &id).await;
        let payment = before["payments"][0]["id"].as_str().unwrap().to_owned();
        let n = GatewayNotification::PaymentSucceeded {
            notification_id: format!("sbx-pay-{payment}"),
            payment: PaymentId::parse(&payment).unwrap(),
            gateway_txn: "SBXREPLAY".into(),
            amount: Fen(15000),
        };
        // The same notification again: acknowledged, nothing changes.
        let signed = h.signed(&n);
        for _ in 0..3 {
            assert_eq!(h.notify(&signed).await.status, StatusCode::OK);
        }
        // A tampered body or a stale timestamp is refused.
        let mut forged = signed.clone();
        forged.body = String::from_utf8(forged.body).unwrap().replace("15000", "1").into_bytes();
        let r = h.notify(&forged).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "notification_signature"));
        let stale = h.gateway().sign(&n, h.server.app.now() - chrono::Duration::minutes(10));
        let r = h.notify(&stale).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "notification_stale"));
        let after = h.order(&token, &id).await;
        assert_eq!(before["history"], after["history"], "{backend:?}");
        assert_eq!(after["payments"].as_array().unwrap().len(), 1);
        assert_eq!(after["state"], "collecting");
        audit_intact(&h).await;
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ineligible_or_bad_ids_are_refused_with_a_clear_message() {
    for backend in backends() {
        let h = start(backend).await;
        let phone = "13600136000";
        let token = h.login(phone).await;
        let id = h.create_order(&token).await;
        h.pay(&token, &id).await;
        let p = |tail: &str| format!("/api/v1/orders/{id}/{tail}");
        // Out of order: the ID card before the phone is bound.
        let r = h.post(Some(&token), &p("id-card"), id_card("110101199003074477")).await;
        assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "step_out_of_order"), "{backend:?}");
        assert!(r.message().contains("绑定手机"));

        let code = h.request_code(Some(&token), &p("phone/code"), phone).await;
        h.post(Some(&token), &p("phone"), json!({"phone": phone, "code": code})).await.ok();
        let photos = reqwest::multipart::Form::new()
            .part("front", reqwest::multipart::Part::bytes(jpeg()))
            .part("back", reqwest::multipart::Part::bytes(jpeg()));
        h.post_form(&token, &p("id-card/photos"), photos).await.ok();

        let bad = h.post(Some(&token), &p("id-card"), id_card("110101199003074478")).await;
        assert_eq!((bad.status, bad.code()), (StatusCode::BAD_REQUEST, "invalid_id_card"));
        assert!(bad.message().contains("校验位"), "{}", bad.message());
        assert_eq!(bad.body["error"]["field"], "id_number", "the page marks the field at fault");
        // A Hong Kong residence permit number with a valid checksum: told to visit a service point.
        let hk = h.post(Some(&token), &p("id-card"), id_card(&with_check("81000019900307001"))).await;
        assert_eq!(hk.status, StatusCode::BAD_REQUEST);
        assert!(hk.message().contains("线下网点"), "{}", hk.message());
        let mut expired = id_card("110101199003074477");
        expired["validity"] = json!("2005.01.01-2015.01.01");
        let r = h.post(Some(&token), &p("id-card"), expired).await;
        assert!(r.message().contains("已过期"), "{}", r.message());
        assert_eq!(r.body["error"]["field"], "validity");
        assert_eq!(h.order(&token, &id).await["next_step"], "id_card");
        h.server.stop().await;
    }
}

fn with_check(body: &str) -> String {
    let w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let s: u32 = body.bytes().zip(w).map(|(b, w)| u32::from(b - b'0') * w).sum();
    format!("{body}{}", b"10X98765432"[(s % 11) as usize] as char)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sms_codes_are_limited() {
    for backend in backends() {
        let h = start_with(backend, true).await;
        let clock = h.clock.clone().unwrap();
        let phone = "13500135000";
        h.post(None, "/api/v1/session/code", json!({"phone": phone})).await.ok();
        // Resend within 60 s.
        let r = h.post(None, "/api/v1/session/code", json!({"phone": phone})).await;
        assert_eq!((r.status, r.code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"), "{backend:?}");
        assert!(r.body["error"]["retry_after_seconds"].as_i64().unwrap() > 0);
        // Five wrong tries, then even the right code no longer works.
        let right = h.latest_code(phone).await;
        let wrong = if right == "000000" { "111111" } else { "000000" };
        for i in 0..5 {
            let r = h.post(None, "/api/v1/session", json!({"phone": phone, "code": wrong})).await;
            assert_eq!(r.code(), "sms_code_wrong");
            assert!(r.message().contains(if i < 4 { "还可尝试" } else { "次数过多" }), "{}", r.message());
        }
        let r = h.post(None, "/api/v1/session", json!({"phone": phone, "code": right})).await;
        assert_eq!(r.code(), "sms_code_locked");
        // Expired after five minutes.
        clock.advance(chrono::Duration::seconds(61));
        let code = h.request_code(None, "/api/v1/session/code", phone).await;
        clock.advance(chrono::Duration::minutes(5));
        let r = h.post(None, "/api/v1/session", json!({"phone": phone, "code": code})).await;
        assert_eq!(r.code(), "sms_code_expired");
        // Ten codes a day per phone.
        for _ in 2..10 {
            clock.advance(chrono::Duration::seconds(61));
            h.post(None, "/api/v1/session/code", json!({"phone": phone})).await.ok();
        }
        clock.advance(chrono::Duration::seconds(61));
        let r = h.post(None, "/api/v1/session/code", json!({"phone": phone})).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(r.message().contains("今日"), "{}", r.message());
        // Thirty a day per client address, whatever the phone.
        for i in 0..20 {
            let other = format!("1380000{:04}", i);
            h.post(None, "/api/v1/session/code", json!({"phone": other})).await.ok();
        }
        let r = h.post(None, "/api/v1/session/code", json!({"phone": "13811112222"})).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(r.message().contains("当前网络"), "{}", r.message());
        // A code is used once.
        let token_phone = "13822223333";
        clock.advance(chrono::Duration::days(1));
        let code = h.request_code(None, "/api/v1/session/code", token_phone).await;
        h.post(None, "/api/v1/session", json!({"phone": token_phone, "code": code})).await.ok();
        let r = h.post(None, "/api/v1/session", json!({"phone": token_phone, "code": code})).await;
        assert_eq!(r.code(), "sms_code_used");
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_clear_errors_and_lose_nothing() {
    for backend in backends() {
        let h = start(backend).await;
        let phone = "13300133000";
        let r = h.get(None, "/api/v1/orders").await;
        assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "unauthorized"));
        let token = h.login(phone).await;
        let r =
            h.post(Some(&token), "/api/v1/orders", json!({"agreement_version": "2026-11", "accepted": false})).await;
        assert_eq!(r.code(), "agreement_not_accepted");
        let r = h.post(Some(&token), "/api/v1/orders", json!({"nonsense": 1})).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_body"));
        let id = h.create_order(&token).await;
        // Not paid: materials refused.
        let r = h.post(Some(&token), &format!("/api/v1/orders/{id}/address"), address()).await;
        assert_eq!(r.code(), "order_not_paid");
        let r = h.post(Some(&token), &format!("/api/v1/orders/{id}/refund"), json!({})).await;
        assert_eq!(r.code(), "order_not_paid");
        let r = h.post(Some(&token), &format!("/api/v1/orders/{id}/payments"), json!({"channel": "cash"})).await;
        assert_eq!(r.code(), "invalid_channel");
        h.pay(&token, &id).await;
        // Someone else's order does not exist for them.
        let other = h.login("13311113333").await;
        let r = h.get(Some(&other), &format!("/api/v1/orders/{id}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        // Uploads are judged by their bytes.
        let p = |tail: &str| format!("/api/v1/orders/{id}/{tail}");
        let code = h.request_code(Some(&token), &p("phone/code"), phone).await;
        h.post(Some(&token), &p("phone"), json!({"phone": phone, "code": code})).await.ok();
        let pdf = reqwest::multipart::Form::new()
            .part(
                "front",
                reqwest::multipart::Part::bytes(
                    b"%PDF-1.7 not a photo at all, just a document...........................".to_vec(),
                )
                .file_name("front.jpg"),
            )
            .part("back", reqwest::multipart::Part::bytes(jpeg()).file_name("back.jpg"));
        let r = h.post_form(&token, &p("id-card/photos"), pdf).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_upload"));
        assert!(r.message().contains("人像面"), "{}", r.message());
        assert_eq!(r.body["error"]["field"], "front", "the page marks the photo at fault");
        let missing = reqwest::multipart::Form::new().part("front", reqwest::multipart::Part::bytes(jpeg()));
        let r = h.post_form(&token, &p("id-card/photos"), missing).await;
        assert_eq!(r.code(), "upload_missing");
        let r = h.post(Some(&token), &p("id-card/photos"), json!({"front": "not a file"})).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "upload_not_multipart"));
        let photos = reqwest::multipart::Form::new()
            .part("front", reqwest::multipart::Part::bytes(jpeg()))
            .part("back", reqwest::multipart::Part::bytes(jpeg()));
        h.post_form(&token, &p("id-card/photos"), photos).await.ok();
        h.post(Some(&token), &p("id-card"), id_card("11010119900307803X")).await;
        let c = h.post(Some(&token), &p("liveness/challenge"), json!({})).await.ok();
        let mut big = mp4();
        big.resize(yiqian_domain::media::MAX_VIDEO_BYTES + 1, 0);
        let form = reqwest::multipart::Form::new()
            .text("challenge_id", c["challenge_id"].as_str().unwrap().to_owned())
            .part("video", reqwest::multipart::Part::bytes(big));
        let files = |dir: std::path::PathBuf| files_under(&dir);
        let stored_before = files(h.dir.path().join("data/blobs"));
        let r = h.post_form(&token, &p("liveness"), form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_eq!(r.code(), "invalid_upload", "{}", r.body);
        // A body past the route's own limit is cut off as it streams in. (Just past it: the
        // rest fits the socket's buffers, so the client reads the answer instead of a reset.)
        let mut bigger = mp4();
        bigger.resize(yiqian_domain::media::MAX_VIDEO_BYTES + 128 * 1024, 0);
        let form = reqwest::multipart::Form::new()
            .text("challenge_id", c["challenge_id"].as_str().unwrap().to_owned())
            .part("video", reqwest::multipart::Part::bytes(bigger));
        let r = h.post_form(&token, &p("liveness"), form).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "upload_too_large"), "{}", r.body);
        // What was sealed of the refused videos is gone from the blob directory.
        assert_eq!(files(h.dir.path().join("data/blobs")), stored_before, "{backend:?}: refused videos left behind");
        let image_as_video = reqwest::multipart::Form::new()
            .text("challenge_id", c["challenge_id"].as_str().unwrap().to_owned())
            .part("video", reqwest::multipart::Part::bytes(jpeg()));
        let r = h.post_form(&token, &p("liveness"), image_as_video).await;
        assert_eq!(r.code(), "invalid_upload");
        // Nothing of the refused uploads moved the order on.
        let o = h.order(&token, &id).await;
        assert_eq!(o["state"], "collecting");
        assert_eq!(o["next_step"], "liveness");
        audit_intact(&h).await;
        h.server.stop().await;
    }
}

/// What a phone on a weak network downloads: pages and scripts compressed for clients that
/// accept it, static files under content-hashed names cached for a year, the region tree
/// linked from the address step only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_compressed_and_static_files_cached_by_content() {
    let h = start(Backend::Sqlite).await;
    let get = |path: String, encoding: &'static str| {
        let req = h.http.get(h.url(&path)).header("accept-encoding", encoding);
        async move { req.send().await.unwrap() }
    };
    let home = get("/".into(), "identity").await;
    let html = home.text().await.unwrap();
    let link = |ext: &str| {
        let at = html.find(&format!(".{ext}\"")).unwrap_or_else(|| panic!("no .{ext} in {html}"));
        let start = html[..at].rfind("/static/").unwrap();
        format!("{}.{ext}", &html[start..at])
    };
    let (css, js) = (link("css"), link("js"));
    assert!(
        css.starts_with("/static/app.") && js.starts_with("/static/app.") && css.len() == "/static/app..css".len() + 8
    );
    assert!(!html.contains("regions"), "the region tree is not named on the home page");
    for path in [css.clone(), js.clone(), "/".into(), "/faq".into()] {
        let plain = get(path.clone(), "identity").await;
        assert!(plain.headers().get("content-encoding").is_none(), "{path}");
        let plain_len = plain.bytes().await.unwrap().len();
        for encoding in ["gzip", "br"] {
            let packed = get(path.clone(), encoding).await;
            assert_eq!(packed.headers()["content-encoding"], encoding, "{path}");
            let len = packed.bytes().await.unwrap().len();
            // Scripts and styles shrink several times; a short page less so.
            let factor = if path.starts_with("/static/") { 3 } else { 1 };
            assert!(len * factor < plain_len, "{path} {encoding}: {len} of {plain_len} bytes");
        }
    }
    for path in [&css, &js] {
        let r = get(path.clone(), "gzip").await;
        assert_eq!(r.headers()["cache-control"], "public, max-age=31536000, immutable", "{path}");
    }
    assert_eq!(get("/static/app.js".into(), "gzip").await.headers()["cache-control"], "public, max-age=300");
    // Not compressed: the OCSP and CRL answers relying parties fetch.
    let crl = get("/pki/crl".into(), "gzip").await;
    assert!(crl.status().is_success());
    assert!(crl.headers().get("content-encoding").is_none());
    h.server.stop().await;
}

/// What an unauthenticated or hostile client can make the server hold: a JSON body over the
/// small limit is refused with 413 (`body_too_large`) before it is read whole; an upload route takes its own,
/// larger limit; uploads beyond the configured number at once are told to come back
/// (503 `uploads_busy`, `Retry-After`) before their bodies are read, and a slot frees when an
/// upload ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_are_bounded_and_uploads_beyond_the_slots_are_told_to_retry() {
    use tokio::io::AsyncWriteExt;
    let h = start_configured(Backend::Sqlite, false, |c| c.concurrent_uploads = 1).await;
    // 256 KiB of JSON to the login code route: refused, whatever it says. (Small enough to sit
    // in the socket's buffers whole, so the answer is read cleanly.) The answer came before the
    // body was read, so it closes the connection and says so: the client does not send its next
    // request on it.
    let big = format!("{{\"phone\":\"{}\"}}", "1".repeat(256 * 1024));
    let r = h.http.post(h.url("/api/v1/session/code")).header("content-type", "application/json");
    let r = r.body(big).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.headers()["connection"], "close");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "body_too_large", "{body}");
    // Within the small limit, the same route answers as before.
    let r = h.post(None, "/api/v1/session/code", json!({"phone": "123"})).await;
    assert_eq!(r.code(), "invalid_phone");

    let token = h.login("13700137000").await;
    let id = h.create_order(&token).await;
    h.pay(&token, &id).await;
    // One upload in progress: headers sent, the body still coming.
    let addr = h.base.trim_start_matches("http://").to_owned();
    let mut held = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/orders/{id}/id-card/photos HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n--b\r\n"
    );
    held.write_all(head.as_bytes()).await.unwrap();
    held.flush().await.unwrap();
    let photos = || {
        reqwest::multipart::Form::new()
            .part("front", reqwest::multipart::Part::bytes(jpeg()).file_name("front.jpg"))
            .part("back", reqwest::multipart::Part::bytes(jpeg()).file_name("back.jpg"))
    };
    let upload = || {
        let r = h.http.post(h.url(&format!("/api/v1/orders/{id}/id-card/photos"))).bearer_auth(&token);
        async move { r.multipart(photos()).send().await.ok() }
    };
    let busy = h
        .poll_until("the held upload to take the slot", || async {
            upload().await.filter(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
        })
        .await;
    assert_eq!(busy.headers()["retry-after"], "10");
    assert_eq!(busy.headers()["connection"], "close", "refused before its body was read");
    let body: serde_json::Value = busy.json().await.unwrap();
    assert_eq!(body["error"]["code"], "uploads_busy", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("稍等片刻后重试"), "{body}");
    // Not an upload: not held back.
    let order = h.http.get(h.url(&format!("/api/v1/orders/{id}"))).bearer_auth(&token).send().await.unwrap();
    assert!(order.status().is_success());
    assert!(order.headers().get("connection").is_none(), "a bodiless request keeps its connection");
    // The held upload gives up: its slot frees and the next upload goes through.
    drop(held);
    h.poll_until("the slot to free", || async {
        upload().await.filter(|r| r.status() != StatusCode::SERVICE_UNAVAILABLE).map(|_| ())
    })
    .await;
    h.server.stop().await;
}

/// 使用此号码: the phone the applicant logged in with is bound with that login's proof, without
/// a second SMS; the evidence says so. Not before paying, and not for someone else's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_login_phone_is_bound_without_a_second_code() {
    for backend in backends() {
        let h = start(backend).await;
        let phone = "13500135000";
        let token = h.login(phone).await;
        let id = h.create_order(&token).await;
        let bind = format!("/api/v1/orders/{id}/phone/login");
        assert_eq!(h.post(Some(&token), &bind, json!({})).await.code(), "order_not_paid");
        h.pay(&token, &id).await;
        let other = h.login("13511113333").await;
        assert_eq!(h.post(Some(&other), &bind, json!({})).await.status, StatusCode::NOT_FOUND);
        assert_eq!(h.post(None, &bind, json!({})).await.status, StatusCode::UNAUTHORIZED);
        let sent = h.sms_count(phone).await;
        let o = h.post(Some(&token), &bind, json!({})).await.ok();
        assert_eq!(o["state"], "collecting", "{o}");
        assert_eq!(o["next_url"], format!("/orders/{id}/prepare"), "{o}");
        assert_eq!(h.sms_count(phone).await, sent, "no second code");
        let applicant = h.server.app.authenticate(&token).await.unwrap();
        let m = h.server.app.saved_material(&applicant, &id, "phone").await.unwrap().unwrap();
        assert_eq!(m, json!({"phone": phone, "proof": "login"}));
        h.server.stop().await;
    }
}

/// The probe of the preparation page's network check: for logged-in applicants only, never
/// cached, counting the bytes of the upload-speed probe, and refusing a body over its limit
/// (512 KiB) with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_network_probe_answers_logged_in_applicants_and_counts_the_bytes() {
    use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
    const LIMIT: usize = 512 * 1024;
    let h = start(yiqian_store::Backend::Sqlite).await;
    let probe = h.url("/api/v1/network-probe");
    let upload = |token: Option<&str>, n: usize| {
        let body: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
        let mut req = h.http.post(&probe).header(CONTENT_TYPE, "application/octet-stream").body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    // Nobody logged in: neither probe answers.
    let r = h.get(None, "/api/v1/network-probe").await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let r = upload(None, 1024).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let token = h.login("13500135000").await;

    // The round trip: a tiny answer that no cache keeps.
    let r = h.http.get(&probe).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(r.json::<serde_json::Value>().await.unwrap(), json!({"ok": true}));

    // The upload speed: every byte that arrived is counted, up to the limit itself.
    for n in [256 * 1024, LIMIT, 0] {
        let r = upload(Some(&token), n).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{n} bytes");
        assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(r.json::<serde_json::Value>().await.unwrap(), json!({"received_bytes": n}));
    }
    // One byte over the limit: refused, with a typed error in Chinese.
    let r = upload(Some(&token), LIMIT + 1).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = r.json::<serde_json::Value>().await.unwrap();
    assert_eq!(body["error"]["code"], "probe_too_large", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("测速数据过大"), "{body}");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unpaid_orders_expire_and_late_money_goes_back() {
    for backend in backends() {
        let h = start_with(backend, true).await;
        let clock = h.clock.clone().unwrap();
        let token = h.login("13200132000").await;
        let id = h.create_order(&token).await;
        let t = h.start_payment(&token, &id, "alipay").await;
        let payment = h.order(&token, &id).await["payments"][0]["id"].as_str().unwrap().to_owned();
        clock.advance(chrono::Duration::minutes(31));
        assert_eq!(h.server.app.expire_overdue_orders().await.unwrap(), 1);
        let o = h.order(&token, &id).await;
        assert_eq!(o["status_word"], "已取消", "{backend:?}");
        let r = h.post(Some(&token), &format!("/api/v1/orders/{id}/payments"), json!({"channel": "wechat"})).await;
        assert_eq!(r.code(), "order_closed");
        // The applicant paid at the cashier just before it closed: the money goes back.
        let n = GatewayNotification::PaymentSucceeded {
            notification_id: format!("sbx-pay-{payment}"),
            payment: PaymentId::parse(&payment).unwrap(),
            gateway_txn: "SBXLATE".into(),
            amount: Fen(15000),
        };
        assert_eq!(h.notify(&h.signed(&n)).await.status, StatusCode::OK);
        let o = h.order(&token, &id).await;
        assert_eq!(o["state"], "refunding");
        assert_eq!(o["refunds"][0]["reason"], "paid_after_close");
        let _ = t;
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_refunds_and_notifications_end_consistent() {
    for backend in backends() {
        let h = std::sync::Arc::new(start(backend).await);
        let token = h.login("13100131000").await;
        let id = h.create_order(&token).await;
        h.start_payment(&token, &id, "wechat").await;
        let payment = h.order(&token, &id).await["payments"][0]["id"].as_str().unwrap().to_owned();
        let n = GatewayNotification::PaymentSucceeded {
            notification_id: format!("sbx-pay-{payment}"),
            payment: PaymentId::parse(&payment).unwrap(),
            gateway_txn: "SBXCONC".into(),
            amount: Fen(15000),
        };
        let signed = h.signed(&n);
        let mut tasks = Vec::new();
        for i in 0..50 {
            let h = h.clone();
            let token = token.clone();
            let id = id.clone();
            let signed = signed.clone();
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    h.notify(&signed).await.status
                } else {
                    h.post(Some(&token), &format!("/api/v1/orders/{id}/refund"), json!({})).await.status
                }
            }));
        }
        for t in tasks {
            let status = t.await.unwrap();
            assert!(status.is_success() || status == StatusCode::CONFLICT, "unexpected {status} on {backend:?}");
        }
        let o = h.order(&token, &id).await;
        let state = o["state"].as_str().unwrap();
        assert!(["collecting", "refunding", "refunded"].contains(&state), "{state}");
        assert_eq!(o["payments"].as_array().unwrap().len(), 1);
        assert_eq!(o["payments"][0]["state"], "succeeded");
        let refunds = o["refunds"].as_array().unwrap().len();
        assert_eq!(refunds, usize::from(state != "collecting"), "one refund at most, {backend:?}");
        let paid_events = o["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["text"].as_str().unwrap().starts_with("支付成功"))
            .count();
        assert_eq!(paid_events, 1);
        if state != "collecting" {
            h.wait_for_state(&token, &id, "refunded").await;
        }
        audit_intact(&h).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relying_parties_fetch_the_ca_certificates_and_the_crl() {
    let h = start(yiqian_store::Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    for (path, file, kind) in
        [("/pki/ca.crt", "ca.der", "x509"), ("/pki/root.crt", "root.der", "x509"), ("/pki/crl", "crl.der", "crl")]
    {
        let r = h.http.get(h.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(ct, if kind == "crl" { "application/pkix-crl" } else { "application/pkix-cert" });
        std::fs::write(dir.path().join(file), r.bytes().await.unwrap()).unwrap();
        let out = std::process::Command::new("openssl")
            .args([kind, "-inform", "DER", "-in", dir.path().join(file).to_str().unwrap(), "-noout", "-text"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{path}: {}", String::from_utf8_lossy(&out.stderr));
        // The development CA created on first start signs with SM2.
        assert!(text.contains("SM2-with-SM3"), "{path}: {text}");
    }
    h.server.stop().await;
}

/// `/metrics` as parsed by a Prometheus text-format grammar.
type Exposition = openmetrics_parser::MetricsExposition<openmetrics_parser::PrometheusType, PrometheusValue>;
use openmetrics_parser::PrometheusValue;

/// The value of the family `name` (a counter or gauge; a histogram's count), summed over its
/// samples whose labels include `labels`; 0 when there are none.
fn metric(scrape: &Exposition, name: &str, labels: &[(&str, &str)]) -> f64 {
    let Some(family) = scrape.families.get(name) else { return 0.0 };
    family
        .iter_samples()
        .filter(|s| {
            let set = s.get_labelset().unwrap();
            labels.iter().all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .map(|s| match &s.value {
            PrometheusValue::Unknown(n) | PrometheusValue::Gauge(n) => n.as_f64(),
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            PrometheusValue::Summary(_) => 0.0,
        })
        .sum()
}

/// Scrapes `/metrics` and parses it as Prometheus text exposition.
async fn scrape(h: &Harness) -> (Exposition, String) {
    let r = h.http.get(h.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.unwrap();
    let scrape = openmetrics_parser::prometheus::parse_prometheus(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    (scrape, text)
}

/// `/metrics` parses as Prometheus exposition and its numbers move with a journey (HTTP
/// requests by route template, order transitions and states, payments and webhook verdicts,
/// SMS and identity calls, uploads, outbox deliveries); no label carries the applicant's phone
/// number or the order id. `/healthz` and `/readyz` answer, and every answer carries a request
/// id (the caller's, when it sent a plain one).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_move_with_a_journey_and_the_probes_answer() {
    let h = start(Backend::Sqlite).await;
    let (before, _) = scrape(&h).await;
    let phone = "13912345678";
    let token = h.login(phone).await;
    let id = h.create_order(&token).await;
    h.pay(&token, &id).await;
    h.complete_materials(&token, &id, phone).await;
    h.server.app.deliver_due().await.unwrap();
    // A relying party asks twice about a certificate: signed, then from the cache.
    let ca = h.server.app.issuing_ca().await.unwrap();
    let serial = yiqian_pki::SerialNumber::random();
    let request = yiqian_pki::CertId::for_serial(yiqian_pki::CertIdHash::Sha1, &ca.certificate, &serial).request_der();
    for _ in 0..2 {
        let r = h.http.get(h.url(&format!("/pki/ocsp/{}", ocsp_get_path(&request)))).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let (after, text) = scrape(&h).await;
    let grew = |name: &str, labels: &[(&str, &str)]| metric(&after, name, labels) - metric(&before, name, labels);

    let orders_route = [("method", "POST"), ("route", "/api/v1/orders")];
    assert_eq!(grew("yiqian_http_requests_total", &orders_route), 1.0, "{text}");
    assert_eq!(grew("yiqian_http_request_duration_seconds", &orders_route), 1.0);
    let code = [("route", "/api/v1/session/code"), ("status", "200")];
    assert_eq!(grew("yiqian_http_requests_total", &code), 1.0, "{text}");
    assert_eq!(grew("yiqian_order_transitions_total", &[("from", "created"), ("to", "collecting")]), 1.0, "{text}");
    assert!(metric(&after, "yiqian_orders", &[("state", "submitted")]) >= 1.0, "{text}");
    assert_eq!(grew("yiqian_payments_total", &[("gateway", "sandbox"), ("event", "started")]), 1.0);
    assert_eq!(grew("yiqian_payments_total", &[("gateway", "sandbox"), ("event", "confirmed")]), 1.0);
    assert_eq!(grew("yiqian_payment_notifications_total", &[("gateway", "sandbox"), ("verdict", "applied")]), 1.0);
    let sms = [("service", "sms"), ("provider", "sandbox"), ("outcome", "ok")];
    assert!(grew("yiqian_provider_calls_total", &sms) >= 2.0, "the login code and the paid notice");
    let ocr = [("service", "identity"), ("call", "read_id_card"), ("outcome", "ok")];
    assert_eq!(grew("yiqian_provider_calls_total", &ocr), 1.0);
    assert!(grew("yiqian_outbox_deliveries_total", &[("kind", "sms"), ("outcome", "delivered")]) >= 2.0);
    let photos = [("route", "/api/v1/orders/{id}/id-card/photos")];
    assert_eq!(grew("yiqian_uploads_total", &photos), 1.0);
    assert!(grew("yiqian_upload_bytes_total", &photos) >= 2.0 * jpeg().len() as f64);
    assert_eq!(metric(&after, "yiqian_outbox_messages", &[("state", "dead")]), 0.0);
    assert!(metric(&after, "yiqian_crl_next_update_timestamp_seconds", &[]) > 1.7e9);
    assert_eq!(grew("yiqian_ocsp_requests_total", &[("outcome", "signed")]), 1.0, "{text}");
    assert_eq!(grew("yiqian_ocsp_requests_total", &[("outcome", "cached")]), 1.0);
    assert!(
        grew("yiqian_http_requests_total", &[("route", "/pki/ocsp/{*request}"), ("status", "200")]) >= 2.0,
        "{text}"
    );
    for personal in [phone, &phone[phone.len() - 4..], id.as_str()] {
        assert!(!text.contains(personal), "{personal} appears in /metrics");
    }
    // Two scrapes in a row: counters never go down.
    let (again, _) = scrape(&h).await;
    for (name, family) in after.families.iter().filter(|(name, _)| name.ends_with("_total")) {
        for s in family.iter_samples() {
            let set = s.get_labelset().unwrap();
            let labels: Vec<(&str, &str)> = set.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert!(metric(&again, name, &labels) >= metric(&after, name, &labels), "{name}");
        }
    }

    let alive = h.http.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(alive.status(), StatusCode::OK);
    let ready = h.http.get(h.url("/readyz")).header("x-request-id", "lb-probe-7").send().await.unwrap();
    assert_eq!(ready.headers()["x-request-id"], "lb-probe-7");
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    for check in ["database", "blobs", "keys", "outbox_worker"] {
        assert_eq!(body["checks"][check], "ok", "{body}");
    }
    let odd = h.http.get(h.url("/healthz")).header("x-request-id", "two words").send().await.unwrap();
    let given = odd.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(given != "two words" && !given.is_empty(), "an unusable id is replaced: {given}");
    let other = h.http.get(h.url("/healthz")).send().await.unwrap();
    assert_ne!(other.headers()["x-request-id"].to_str().unwrap(), given);
    h.server.stop().await;
}

/// Retention with a manual clock: a refunded order's materials go 30 days after it closed and
/// not a day before, an order that got a certificate keeps its identity materials until five
/// years after the certificate expired and not a day less; an erased material reads as absent
/// and the erasure says when and why, an erased blob reads as deleted (not an error) and its
/// file leaves the blob directory, the applicant still sees the order; a deletion request is
/// refused while the law requires keeping the data or the order is still going, and done
/// otherwise; the audit chain verifies and its erasure entries name kinds of data, never data.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn personal_data_goes_at_its_time_and_not_before() {
    use yiqian_app::retention::ErasureReason;
    let h = start_with(Backend::Sqlite, true).await;
    let app = h.server.app.clone();
    let order_id = |s: &str| yiqian_domain::OrderId::parse(s).unwrap();
    let material = |order: String, key: &'static str| {
        let app = app.clone();
        async move { app.store().read().await.unwrap().material(&order_id(&order), key).await.unwrap() }
    };
    let refunded_order = |phone: &'static str, n: u32| {
        let h = &h;
        async move {
            let token = h.login(phone).await;
            let id = h.create_order(&token).await;
            h.pay(&token, &id).await;
            let m = Materials { id_number: id_number(n), ..Materials::default() };
            h.complete_materials_with(&token, &id, phone, m).await;
            h.post(Some(&token), &format!("/api/v1/orders/{id}/refund"), json!({})).await.ok();
            h.wait_for_state(&token, &id, "refunded").await;
            (token, id)
        }
    };
    let (_, refunded) = refunded_order("13600136001", 1).await;
    let video = material(refunded.clone(), "liveness").await.unwrap()["video"].as_str().unwrap().to_owned();
    let (requester, requested) = refunded_order("13600136003", 3).await;
    // 导出我的个人资料: everything given, as a file to keep.
    let export = |token: String| {
        let h = &h;
        async move {
            let r = h.http.get(h.url("/api/v1/me/export")).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let disposition = r.headers()["content-disposition"].to_str().unwrap().to_owned();
            assert!(disposition.starts_with("attachment; filename=\"yiqian-personal-data-"), "{disposition}");
            assert_eq!(r.headers()["cache-control"], "no-store");
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let mine = export(requester.clone()).await;
    assert_eq!(mine["phone"], "13600136003");
    let order = &mine["orders"][0];
    assert_eq!(order["id"], requested.as_str());
    assert_eq!(order["materials"]["id_card"]["card"]["name"], "张三", "{order}");
    assert_eq!(order["materials"]["id_card"]["card"]["id_number"], id_number(3));
    assert!(order["materials"]["address"]["street"].is_string(), "{order}");
    let kinds: Vec<&str> = order["media"].as_array().unwrap().iter().map(|m| m["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"id_front") && kinds.contains(&"liveness_video"), "{kinds:?}");
    assert!(order["erasure"].is_null());
    let token2 = h.login("13600136002").await;
    let certified = h.create_order(&token2).await;
    h.pay(&token2, &certified).await;
    let m = Materials { id_number: id_number(2), ..Materials::default() };
    h.complete_materials_with(&token2, &certified, "13600136002", m).await;
    ship_order_as_staff(&h, &certified).await;
    let blob_files = || files_under(&h.config.data_dir.join("blobs")).len();
    let files_before = blob_files();

    // The applicant's request for the refunded order: done; for the certified one: refused
    // (the law keeps it), as for an order still going; staff other than an administrator may not.
    let admin = staff(yiqian_app::staff::Role::Admin, "admin");
    let reviewer = staff(yiqian_app::staff::Role::Reviewer, "reviewer");
    assert!(matches!(
        app.erase_on_request(&reviewer, &requested, "电话申请").await,
        Err(yiqian_app::AppError::Forbidden)
    ));
    let e = app.erase_on_request(&admin, &certified, "电话申请").await.unwrap_err();
    assert_eq!(e.code(), "retention_required");
    assert!(e.to_string().contains("电子签名法") && e.to_string().contains("5年"), "{e}");
    let e = app.erase_on_request(&admin, &requested, " ").await.unwrap_err();
    assert_eq!(e.code(), "request_required");
    let kinds = app.erase_on_request(&admin, &requested, "2026-12-08 客服电话").await.unwrap();
    assert!(kinds.contains(&"id_card".to_owned()) && kinds.contains(&"blob:liveness_video".to_owned()), "{kinds:?}");
    assert_eq!(app.erase_on_request(&admin, &requested, "again").await.unwrap_err().code(), "already_erased");
    assert!(material(requested.clone(), "id_card").await.is_none());
    let after = export(requester.clone()).await;
    let order = &after["orders"][0];
    assert_eq!(order["materials"], json!({}), "{order}");
    assert_eq!(order["media"], json!([]));
    assert_eq!(order["erasure"]["reason"], "应申请人的删除请求");

    // Closed orders: 30 days after closing, not before.
    h.advance(chrono::Duration::days(29));
    assert!(app.retention_due().await.unwrap().is_empty(), "29 days after the refund");
    assert!(app.run_retention(false).await.unwrap().erased.is_empty());
    assert!(material(refunded.clone(), "id_card").await.is_some());
    h.advance(chrono::Duration::days(2));
    let dry = app.run_retention(true).await.unwrap();
    assert_eq!(dry.erased.len(), 1);
    assert!(material(refunded.clone(), "id_card").await.is_some(), "a dry run deletes nothing");
    let report = app.run_retention(false).await.unwrap();
    assert_eq!(report.erased.len(), 1, "{report:?}");
    let (due, kinds) = &report.erased[0];
    assert_eq!((due.order.as_str(), due.reason), (refunded.as_str(), ErasureReason::ClosedOrder));
    for kind in ["phone", "id_card", "liveness", "signature", "address", "blob:id_front", "blob:liveness_video"] {
        assert!(kinds.contains(&kind.to_owned()), "{kind} not in {kinds:?}");
    }
    assert!(material(refunded.clone(), "id_card").await.is_none());
    let erasure = app.store().read().await.unwrap().erasure(&order_id(&refunded)).await.unwrap().unwrap();
    assert_eq!(erasure.reason, "closed_order");
    assert!(matches!(app.store().get_blob(&video).await, Err(yiqian_store::StoreError::Erased(_))));
    assert!(blob_files() < files_before, "the erased blobs' files are gone");
    let token = h.login("13600136001").await; // a month on: the old session has ended
    assert_eq!(h.order(&token, &refunded).await["state"], "refunded", "the applicant still sees the order");
    assert!(material(certified.clone(), "id_card").await.is_some(), "the certified order keeps its materials");

    // Certified orders: five years after the last certificate expired, not before.
    let expiry = app.store().last_certificate_expiry(&order_id(&certified)).await.unwrap().unwrap();
    let due_at = expiry.checked_add_months(chrono::Months::new(60)).unwrap();
    h.advance(due_at - app.now() - chrono::Duration::days(1));
    assert!(app.retention_due().await.unwrap().is_empty(), "a day before five years after expiry");
    h.advance(chrono::Duration::days(2));
    let report = app.run_retention(false).await.unwrap();
    assert_eq!(report.erased.len(), 1, "{report:?}");
    assert_eq!(report.erased[0].0.reason, ErasureReason::CertificateRetention);
    assert!(material(certified.clone(), "id_card").await.is_none());
    assert!(app.run_retention(false).await.unwrap().erased.is_empty(), "an erased order is not looked at again");

    match app.store().verify_audit().await.unwrap() {
        AuditVerdict::Intact { .. } => {}
        broken => panic!("{broken:?}"),
    }
    let erasures: Vec<_> = app
        .store()
        .audit_entries(1, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "order.personal_data_erased")
        .collect();
    assert_eq!(erasures.len(), 3);
    for e in &erasures {
        for personal in ["张三", "110101199003", "1360013600", "北京市"] {
            assert!(!e.detail.contains(personal), "{personal} in {}", e.detail);
        }
    }
    h.server.stop().await;
}
