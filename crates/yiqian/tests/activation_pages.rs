//! The applicant's side after shipping, over HTTP on SQLite and (when configured)
//! PostgreSQL: the activation pages and API behind the QR code (login with the applying
//! phone, the risk notice, consent before digits, the sandbox's "needs review" verdict giving
//! 已激活 with PIN码待审核, a repeated video changing nothing), the waybill on the order page,
//! and the e-invoice (refused before activation, USCC checked, one per order, 开票中 →
//! 已开票 with its PDF). Staff steps (approve, personalise, ship, issue the invoice) are
//! called on the application directly.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use yiqian_app::staff::Role;

const PHONE: &str = "13800138000";
const OTHER_PHONE: &str = "13900139000";

/// A page as the applicant's browser gets it (no redirects followed).
struct Page {
    status: StatusCode,
    location: String,
    text: String,
}

async fn page(h: &Harness, token: Option<&str>, path: &str) -> Page {
    let mut req = h.http.get(h.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    Page { status, location, text: r.text().await.unwrap() }
}

/// A paid, submitted order handed to the courier; returns the applicant's token, the order
/// number and the activation code.
async fn shipped_order(h: &Harness) -> (String, String, String) {
    let token = h.login(PHONE).await;
    let id = h.create_order(&token).await;
    h.pay(&token, &id).await;
    assert_eq!(h.complete_materials(&token, &id, PHONE).await["state"], "submitted");
    let code = ship_order_as_staff(h, &id).await;
    (token, id, code)
}

/// Accepts the notice and sends a face video; returns the answer.
async fn activate(h: &Harness, token: &str, code: &str) -> Value {
    let a = |tail: &str| format!("/api/v1/activation/{code}/{tail}");
    h.post(Some(token), &a("consent"), json!({"agreed": true})).await.ok();
    let c = h.post(Some(token), &a("challenge"), json!({})).await.ok();
    h.post_form(token, &a("video"), video_form(c["challenge_id"].as_str().unwrap())).await.ok()
}

fn video_form(challenge: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("challenge_id", challenge.to_owned())
        .part("video", reqwest::multipart::Part::bytes(mp4()).file_name("liveness.mp4"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn activation_needs_the_applicant_consent_and_a_face_video() {
    for backend in backends() {
        let h = start(backend).await;
        let (token, id, code) = shipped_order(&h).await;
        let api = |tail: &str| format!("/api/v1/activation/{code}{tail}");
        let notice = format!("/activate/{code}");
        let verify = format!("/activate/{code}/verify");
        let done = format!("/activate/{code}/done");

        // Shipped: the order shows the waybill; no invoice yet.
        let o = h.order(&token, &id).await;
        assert_eq!((o["state"].as_str(), o["status_word"].as_str()), (Some("shipped"), Some("已发货")), "{backend:?}");
        assert_eq!(o["shipment"]["courier"], "顺丰速运");
        assert_eq!(o["shipment"]["tracking_no"], "SF1234567890");
        assert_eq!((o["can_request_invoice"].as_bool(), o["invoice"].is_null()), (Some(false), true));
        let p = page(&h, Some(&token), &format!("/orders/{id}")).await;
        assert_eq!(p.status, StatusCode::OK);
        for word in ["已发货", "快递公司", "顺丰速运", "运单号", "SF1234567890"] {
            assert!(p.text.contains(word), "order page lacks {word}");
        }
        assert!(!p.text.contains("申请开票"));

        // The QR code before login leads to the login page and back.
        let p = page(&h, None, &notice).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER);
        assert_eq!(p.location, format!("/login?next=/activate/{code}"));

        // Someone logged in with another phone: a clear page, and 404 in the API.
        let other = h.login(OTHER_PHONE).await;
        for path in [&notice, &verify, &done] {
            let p = page(&h, Some(&other), path).await;
            assert_eq!(p.status, StatusCode::NOT_FOUND, "{path} on {backend:?}");
            assert!(p.text.contains("激活码无效,或请使用申请时的手机号登录"), "{path}");
        }
        let r = h.get(Some(&other), &api("")).await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
        let r = h.post(Some(&other), &api("/consent"), json!({"agreed": true})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let p = page(&h, Some(&token), "/activate/NOT-A-CODE").await;
        assert_eq!(p.status, StatusCode::NOT_FOUND);
        assert!(p.text.contains("激活码无效"));

        // Step 1: the risk notice; the video step waits for consent.
        let p = page(&h, Some(&token), &notice).await;
        assert_eq!(p.status, StatusCode::OK);
        for words in
            ["数字证书具有与手写签名同等的法律效力", "包装完好", "工作人员不会", "本人已阅读并同意申请", "下一步"]
        {
            assert!(p.text.contains(words), "notice page lacks {words}");
        }
        let p = page(&h, Some(&token), &verify).await;
        assert_eq!((p.status, p.location.as_str()), (StatusCode::SEE_OTHER, notice.as_str()));
        let a = h.get(Some(&token), &api("")).await.ok();
        assert_eq!(a["order_id"], id.as_str());
        assert_eq!((a["state"].as_str(), a["status_word"].as_str()), (Some("shipped"), Some("已发货")));
        assert_eq!((a["consent_given"].as_bool(), a["can_verify"].as_bool()), (Some(false), Some(false)));
        assert_eq!((a["tries_left"].as_i64(), a["pin_pending"].as_bool()), (Some(3), Some(false)));
        assert_eq!(a["next_url"], notice.as_str());
        let r = h.post(Some(&token), &api("/challenge"), json!({})).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "consent_required"), "{backend:?}");
        let r = h.post_form(&token, &api("/video"), video_form("LCNOCHALLENGE")).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "consent_required"));
        let r = h.post(Some(&token), &api("/consent"), json!({"agreed": false})).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "consent_required"));
        assert!(r.message().contains("本人已阅读并同意申请"), "{}", r.message());

        let a = h.post(Some(&token), &api("/consent"), json!({"agreed": true})).await.ok();
        assert_eq!((a["consent_given"].as_bool(), a["can_verify"].as_bool()), (Some(true), Some(true)));
        assert_eq!(a["next_url"], verify.as_str());
        let p = page(&h, Some(&token), &verify).await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(
            p.text.contains("data-liveness") && p.text.contains(&api("/challenge")) && p.text.contains(&api("/video"))
        );
        assert!(p.text.contains("还可尝试3次"));

        // Step 2: digits, then the video. The sandbox cannot decide: 已激活, PIN after review.
        let c = h.post(Some(&token), &api("/challenge"), json!({})).await.ok();
        assert_eq!(c["digits"].as_str().unwrap().len(), 4);
        let challenge = c["challenge_id"].as_str().unwrap().to_owned();
        let a = h.post_form(&token, &api("/video"), video_form(&challenge)).await.ok();
        assert_eq!(a["state"], "activation_review", "{backend:?}");
        assert_eq!((a["status_word"].as_str(), a["pin_pending"].as_bool()), (Some("已激活"), Some(true)));
        assert_eq!(a["can_verify"], false);
        assert_eq!(a["next_url"], done.as_str());
        let history = h.order(&token, &id).await["history"].as_array().unwrap().len();
        let sms = h.sms_count(PHONE).await;

        // A second video (a double tap, a retry after a lost answer) changes nothing.
        let again = h.post_form(&token, &api("/video"), video_form(&challenge)).await.ok();
        assert_eq!(
            (again["state"].as_str(), again["next_url"].as_str()),
            (Some("activation_review"), Some(done.as_str()))
        );
        let o = h.order(&token, &id).await;
        assert_eq!(o["history"].as_array().unwrap().len(), history, "{backend:?}");
        assert_eq!(h.sms_count(PHONE).await, sms, "no second SMS on {backend:?}");
        let r = h.post(Some(&token), &api("/challenge"), json!({})).await;
        assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "already_activated"));

        // The result page; the other steps now lead to it.
        let p = page(&h, Some(&token), &done).await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(p.text.contains("已激活") && p.text.contains("PIN码待审核:审核通过后将以短信发送"));
        assert!(!p.text.contains("激活成功"));
        for path in [&notice, &verify] {
            let p = page(&h, Some(&token), path).await;
            assert_eq!((p.status, p.location.as_str()), (StatusCode::SEE_OTHER, done.as_str()), "{path}");
        }

        // The order: 已激活, PIN码待审核, 申请开票; no refund any more.
        assert_eq!((o["status_word"].as_str(), o["pin_pending"].as_bool()), (Some("已激活"), Some(true)));
        assert_eq!((o["can_request_invoice"].as_bool(), o["can_refund"].as_bool()), (Some(true), Some(false)));
        let p = page(&h, Some(&token), &format!("/orders/{id}")).await;
        for word in ["已激活", "PIN码待审核", "申请开票", &format!("/orders/{id}/invoice")] {
            assert!(p.text.contains(word), "order page lacks {word}");
        }
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invoices_are_asked_for_after_activation_once() {
    for backend in backends() {
        let h = start(backend).await;
        let (token, id, code) = shipped_order(&h).await;
        let api = format!("/api/v1/orders/{id}/invoice");
        let personal = json!({"kind": "personal", "name": "张三"});

        // Before activation: refused, and the page says why.
        let r = h.post(Some(&token), &api, personal.clone()).await;
        assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "not_activated"), "{backend:?}");
        assert!(r.message().contains("激活后"), "{}", r.message());
        let p = page(&h, Some(&token), &format!("/orders/{id}/invoice")).await;
        assert!(p.text.contains("证书激活后才能申请开票") && !p.text.contains("invoice-submit"));
        let r = h.get(Some(&token), &api).await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));

        // 已激活 with the PIN under review counts as activated.
        assert_eq!(activate(&h, &token, &code).await["state"], "activation_review");
        let p = page(&h, Some(&token), &format!("/orders/{id}/invoice")).await;
        assert_eq!(p.status, StatusCode::OK);
        for word in
            ["发票抬头类型", "单位", "个人", "抬头名称", "纳税人识别号", "data-show-if=\"kind=company\"", "提交"]
        {
            assert!(p.text.contains(word), "invoice page lacks {word}");
        }

        // A company needs a valid unified social credit code.
        let bad = json!({"kind": "company", "name": "宜签科技有限公司", "tax_id": "91350100M000100Y44"});
        let r = h.post(Some(&token), &api, bad).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_invoice"), "{backend:?}");
        assert!(r.message().contains("统一社会信用代码校验位不正确"), "{}", r.message());
        let r = h.post(Some(&token), &api, json!({"kind": "company", "name": "宜签科技有限公司"})).await;
        assert!(r.message().contains("请填写纳税人识别号"), "{}", r.message());
        let r =
            h.post(Some(&token), &api, json!({"kind": "personal", "name": "张三", "email": "not-an-address"})).await;
        assert_eq!((r.status, r.message()), (StatusCode::BAD_REQUEST, "邮箱格式不正确"));
        let r = h.post(Some(&token), &api, json!({"name": "张三"})).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_body"));

        // A personal invoice is accepted, once.
        let r = h.post(Some(&token), &api, personal.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let inv = r.body;
        assert_eq!((inv["state"].as_str(), inv["status_word"].as_str()), (Some("requested"), Some("开票中")));
        assert_eq!(inv["buyer"], json!({"kind": "personal", "kind_word": "个人", "name": "张三", "tax_id": null}));
        assert_eq!((inv["amount_fen"].as_i64(), inv["download_url"].is_null()), (Some(15000), true));
        assert_eq!(inv["next_url"], format!("/orders/{id}"));
        let r = h
            .post(
                Some(&token),
                &api,
                json!({"kind": "company", "name": "宜签科技有限公司", "tax_id": "91350100M000100Y43"}),
            )
            .await;
        assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "invoice_requested"));

        let inv = h.get(Some(&token), &api).await.ok();
        assert_eq!(inv["status_word"], "开票中");
        let r = h.get(Some(&token), &format!("{api}.pdf")).await;
        assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "invoice_pending"));
        let other = h.login(OTHER_PHONE).await;
        assert_eq!(h.get(Some(&other), &api).await.status, StatusCode::NOT_FOUND);
        let o = h.order(&token, &id).await;
        assert_eq!(
            (o["invoice"]["status_word"].as_str(), o["can_request_invoice"].as_bool()),
            (Some("开票中"), Some(false))
        );
        let p = page(&h, Some(&token), &format!("/orders/{id}")).await;
        assert!(p.text.contains("开票中") && !p.text.contains("invoice-request") && !p.text.contains("下载发票"));
        let p = page(&h, Some(&token), &format!("/orders/{id}/invoice")).await;
        assert!(p.text.contains("开票中") && !p.text.contains("invoice-submit"));

        // Finance issues it: 已开票, and the PDF downloads.
        let pdf = b"%PDF-1.4\n% yiqian test invoice\n%%EOF\n".to_vec();
        let finance = staff(Role::Finance, "finance");
        h.server.app.issue_invoice(&finance, &id, "25442000000012345678", &pdf).await.unwrap();
        let inv = h.get(Some(&token), &api).await.ok();
        assert_eq!(
            (inv["status_word"].as_str(), inv["invoice_no"].as_str()),
            (Some("已开票"), Some("25442000000012345678"))
        );
        assert_eq!(inv["download_url"], format!("{api}.pdf"));
        let r = h.http.get(h.url(&format!("{api}.pdf"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{backend:?}");
        let header = |name: &str| r.headers().get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(header("content-type"), "application/pdf");
        assert_eq!(header("content-disposition"), format!("attachment; filename=\"invoice-{id}.pdf\""));
        assert_eq!(header("cache-control"), "no-store");
        assert_eq!(r.bytes().await.unwrap().to_vec(), pdf);
        assert_eq!(h.get(Some(&other), &format!("{api}.pdf")).await.status, StatusCode::NOT_FOUND);
        let p = page(&h, Some(&token), &format!("/orders/{id}")).await;
        assert!(p.text.contains("已开票") && p.text.contains("下载发票") && p.text.contains(&format!("{api}.pdf")));
        h.server.stop().await;
    }
}
