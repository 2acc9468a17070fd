//! The application journey with the real vendor adapters configured against the local
//! stand-ins (`yiqian-sim`): WeChat Pay (H5 outside WeChat; JSAPI after WeChat web
//! authorisation), Alipay (public-key and certificate modes), Tencent Cloud SMS, ID card OCR and
//! FaceID, SF Express and Nuonuo — ending in the same states as with the sandbox. Forged,
//! stale, replayed and out-of-order notifications and duplicated refunds change nothing.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use yiqian_app::staff::StaffMember;
use yiqian_domain::staff::{Role, StaffName};
use yiqian_sim::tencent::SimIdCard;

const PHONE: &str = "13800138000";

async fn staff(h: &Harness, name: &str, role: Role) -> StaffMember {
    let s = h.server.app.add_staff(name, role, "correct horse battery staple").await.unwrap();
    StaffMember { id: s.id, name: StaffName::parse(name).unwrap(), role }
}

fn sim(h: &Harness) -> &yiqian_sim::Sim {
    &h.vendors.as_ref().expect("the stand-ins").sim.sim
}

/// The card the applicant photographs, as Tencent's OCR stand-in will read it; the same
/// fields the applicant then confirms (`common::id_card`).
fn the_card() -> SimIdCard {
    SimIdCard {
        name: "张三".into(),
        sex: "男".into(),
        nation: "汉".into(),
        birth: "1990/3/7".into(),
        address: "北京市东城区景山前街4号".into(),
        id_num: "110101199003074477".into(),
        authority: "北京市公安局东城分局".into(),
        valid_date: "2020.01.01-2040.01.01".into(),
    }
}

async fn start_payment(h: &Harness, token: &str, id: &str, channel: &str, user_agent: Option<&str>) -> Value {
    let mut req = h
        .http
        .post(h.url(&format!("/api/v1/orders/{id}/payments")))
        .bearer_auth(token)
        .json(&json!({"channel": channel}));
    if let Some(ua) = user_agent {
        req = req.header("user-agent", ua);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// The newest payment id of an order.
async fn payment_id(h: &Harness, token: &str, id: &str) -> String {
    let o = h.order(token, id).await;
    o["payments"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned()
}

/// Opens a WeChat Pay and an Alipay cashier for the same order; returns their payment ids.
async fn open_two_cashiers(h: &Harness, token: &str, id: &str) -> (String, String) {
    start_payment(h, token, id, "wechat", None).await;
    let wechat = payment_id(h, token, id).await;
    let alipay_start = start_payment(h, token, id, "alipay", None).await;
    h.http.get(alipay_start["pay_url"].as_str().unwrap()).send().await.unwrap();
    let alipay = payment_id(h, token, id).await;
    assert_ne!(wechat, alipay);
    (wechat, alipay)
}

/// Logs in, orders and pays with WeChat Pay (H5); returns (token, order id).
async fn paid_order(h: &Harness) -> (String, String) {
    let token = h.login(PHONE).await;
    let id = h.create_order(&token).await;
    start_payment(h, &token, &id, "wechat", None).await;
    sim(h).wechatpay.pay(&payment_id(h, &token, &id).await).unwrap();
    h.wait_for_state(&token, &id, "collecting").await;
    (token, id)
}

/// Sends a face video answering a new challenge at `base` (`…/liveness` for the application,
/// the activation's URL otherwise); returns the challenge's answer and the video's answer.
async fn face_video(h: &Harness, token: &str, challenge_path: &str, video_path: &str) -> (Value, Reply) {
    let c = h.post(Some(token), challenge_path, json!({})).await.ok();
    let video = reqwest::multipart::Form::new()
        .text("challenge_id", c["challenge_id"].as_str().unwrap().to_owned())
        .part("video", reqwest::multipart::Part::bytes(mp4()).file_name("face.mp4"));
    let r = h.post_form(token, video_path, video).await;
    (c, r)
}

/// Approves, issues, books SF and activates (the face passes); returns the activation answer.
async fn approve_ship_activate(h: &Harness, token: &str, id: &str) -> Value {
    let reviewer = staff(h, "reviewer1", Role::Reviewer).await;
    let maker = staff(h, "maker1", Role::Fulfilment).await;
    h.server.app.approve_application(&reviewer, id).await.unwrap();
    h.server
        .app
        .start_issuance_batch(&maker, &[id.to_owned()], yiqian_store::fulfilment::PersonalisedAt::Server)
        .await
        .unwrap();
    h.wait_for_state(token, id, "issued").await;
    h.server.app.book_and_ship(&maker, id).await.unwrap();
    let d = h.server.app.dossier(&maker, id).await.unwrap();
    let code = d.fulfilment.as_ref().expect("a fulfilment record").activation_code.clone();
    let base = format!("/api/v1/activation/{code}");
    h.post(Some(token), &format!("{base}/consent"), json!({"agreed": true})).await.ok();
    let (c, r) = face_video(h, token, &format!("{base}/challenge"), &format!("{base}/video")).await;
    assert!(sim(h).tencent.issued_live_codes().contains(&c["digits"].as_str().unwrap().to_owned()));
    r.ok()
}

async fn wait_until(h: &Harness, what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..150 {
        if done().await {
            return;
        }
        h.server.app.deliver_due().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_journey_runs_on_wechatpay_tencent_sf_and_nuonuo() {
    for backend in backends() {
        let h = start_with_vendors(backend, VendorModes::default(), |_| {}).await;
        let s = sim(&h);
        s.tencent.set_id_card(the_card());

        // Login: the code arrives through Tencent Cloud SMS.
        let token = h.login(PHONE).await;
        let id = h.create_order(&token).await;

        // WeChat Pay outside WeChat: H5, the cashier page at WeChat, the notification.
        let start = start_payment(&h, &token, &id, "wechat", None).await;
        assert_eq!(start["kind"], "redirect", "{start}");
        let pay_url = start["pay_url"].as_str().unwrap();
        assert!(pay_url.starts_with(&h.vendors.as_ref().unwrap().sim.base_url()), "{pay_url}");
        assert!(pay_url.contains("redirect_url="), "{pay_url}");
        let page = h.http.get(pay_url).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.text().await.unwrap().contains("确认支付"));
        let payment = payment_id(&h, &token, &id).await;
        s.wechatpay.pay(&payment).unwrap();
        h.wait_for_state(&token, &id, "collecting").await;
        assert!(h.sms_containing(PHONE, "已支付成功").await.is_some());

        // Materials: Tencent reads the card and checks the face video.
        let done = h.complete_materials(&token, &id, PHONE).await;
        assert_eq!(done["state"], "submitted", "{backend:?}");
        assert_eq!(s.tencent.ocr_requests().len(), 2, "front and back read");
        assert_eq!(s.tencent.liveness_requests().len(), 1);

        let finance = staff(&h, "finance1", Role::Finance).await;
        let d = h.server.app.dossier(&staff(&h, "reviewer0", Role::Reviewer).await, &id).await.unwrap();
        let ocr = serde_json::to_value(&d.id_card.as_ref().unwrap().ocr).unwrap();
        assert_eq!(ocr["id_number"], "110101199003074477", "{ocr}");
        assert_eq!(ocr["birth_date"], "1990-03-07", "{ocr}");
        let liveness = serde_json::to_value(&d.liveness.as_ref().unwrap().verdict).unwrap();
        assert_eq!(liveness["verdict"], "pass", "{liveness}");
        assert_eq!(liveness["similarity"], 88.5, "the similarity is kept as evidence");

        // Review, issuance, shipping booked with SF Express, activation: Tencent passes the
        // face; the PIN goes out through Tencent SMS, once.
        let a = approve_ship_activate(&h, &token, &id).await;
        assert_eq!(a["state"], "activated", "{a}");
        let booked = s.sf.orders();
        assert_eq!(booked.len(), 1);
        let waybill = booked[0].waybill_no.clone();
        assert!(waybill.starts_with("SF"), "{waybill}");
        assert!(h.sms_containing(PHONE, &waybill).await.is_some());
        // Booking again (a retry) ships nothing twice and books nothing twice.
        let maker = staff(&h, "maker2", Role::Fulfilment).await;
        assert!(h.server.app.book_and_ship(&maker, &id).await.is_err());
        assert_eq!(s.sf.orders().len(), 1);
        // The route on the order page, as SF reports it.
        assert!(s.sf.add_route(&waybill, "深圳市南山区", "快件已签收", "80"));
        let page = h.http.get(h.url(&format!("/orders/{id}"))).bearer_auth(&token).send().await.unwrap();
        let html = page.text().await.unwrap();
        assert!(html.contains(&waybill) && html.contains("快件已签收"), "{html}");
        assert!(h.sms_containing(PHONE, "PIN码为").await.is_some());
        let pins = h.inbox(PHONE).await.into_iter().filter(|(_, t)| t.contains("PIN码为")).count();
        assert_eq!(pins, 1);

        // The e-invoice through Nuonuo: asked, followed until issued, PDF stored, SMS sent.
        let inv = h
            .post(
                Some(&token),
                &format!("/api/v1/orders/{id}/invoice"),
                json!({"kind": "company", "name": "宜签科技有限公司", "tax_id": "91350100M000100Y43"}),
            )
            .await
            .ok();
        assert_eq!(inv["state"], "requested", "{inv}");
        wait_until(&h, "the invoice is issued", async || {
            h.get(Some(&token), &format!("/api/v1/orders/{id}/invoice")).await.ok()["state"] == "issued"
        })
        .await;
        let issued = s.nuonuo.invoices();
        assert_eq!(issued.len(), 1);
        assert_eq!(issued[0].buyer_tax_num.as_deref(), Some("91350100M000100Y43"));
        assert!(h.sms_containing(PHONE, "电子发票已开具").await.is_some());
        let pdf =
            h.http.get(h.url(&format!("/api/v1/orders/{id}/invoice.pdf"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(pdf.status(), StatusCode::OK);
        assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));
        let queue =
            h.server.app.invoice_queue(&finance, yiqian_domain::invoice::InvoiceState::Issued, 10).await.unwrap();
        assert_eq!(queue[0].issued.as_ref().unwrap().1, "provider:nuonuo");

        // Reconciliation: WeChat Pay's record agrees; nothing to look at.
        let today = h.server.app.yesterday_in_beijing().succ_opt().unwrap();
        let report = h.server.app.reconcile(today).await.unwrap();
        assert_eq!((report.payments, report.settled, report.findings.len()), (1, 1, 0), "{report:?}");
        h.server.stop().await;
    }
}

async fn post_notification(
    h: &Harness,
    path: &str,
    content_type: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (StatusCode, String) {
    let mut req = h.http.post(h.url(path)).header("content-type", content_type);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let r = req.body(body.to_vec()).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alipay_pays_and_refunds_in_both_key_modes() {
    for (backend, certificates) in backends().into_iter().flat_map(|b| [(b, false), (b, true)]) {
        let modes = VendorModes { certificates };
        let h = start_with_vendors(backend, modes, |_| {}).await;
        let s = sim(&h);
        let token = h.login(PHONE).await;
        let id = h.create_order(&token).await;

        // alipay.trade.wap.pay: a signed GET to the gateway, which shows its cashier.
        let start = start_payment(&h, &token, &id, "alipay", None).await;
        assert_eq!(start["kind"], "redirect", "{start}");
        let page = h.http.get(start["pay_url"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.text().await.unwrap().contains("确认付款"), "certificates: {certificates}");
        let payment = payment_id(&h, &token, &id).await;

        // A forged notification (amount changed after signing) is refused before the real one.
        let mut fields = s.alipay.trade_notification(&payment).unwrap();
        fields.insert("trade_status".into(), "TRADE_SUCCESS".into());
        fields.insert("total_amount".into(), "150.00".into());
        s.alipay.sign_notification(&mut fields);
        fields.insert("total_amount".into(), "0.01".into());
        let body = yiqian_sim::alipay::notify::form_body(&fields);
        let (status, _) =
            post_notification(&h, "/notify/alipay", "application/x-www-form-urlencoded", &[], body.as_bytes()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(h.order(&token, &id).await["state"], "created");

        // The payer confirms; Alipay's notification pays the order; our answer is `success`.
        s.alipay.pay(&payment).unwrap();
        h.wait_for_state(&token, &id, "collecting").await;
        let acknowledged = s.alipay.deliveries().iter().any(|d| d.acknowledged);
        assert!(acknowledged, "{:?}", s.alipay.deliveries());

        // A replay of the same notification is acknowledged and changes nothing.
        let mut fields = s.alipay.trade_notification(&payment).unwrap();
        s.alipay.sign_notification(&mut fields);
        let body = yiqian_sim::alipay::notify::form_body(&fields);
        let history = h.order(&token, &id).await["history"].clone();
        let (status, text) =
            post_notification(&h, "/notify/alipay", "application/x-www-form-urlencoded", &[], body.as_bytes()).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, "success"));
        assert_eq!(h.order(&token, &id).await["history"], history);

        // The applicant asks for the money back: Alipay settles at once; one refund.
        h.post(Some(&token), &format!("/api/v1/orders/{id}/refund"), json!({})).await.ok();
        h.wait_for_state(&token, &id, "refunded").await;
        assert_eq!(s.alipay.refunds().len(), 1);
        // The trade callback the refund triggered was taken as information only.
        assert!(h.sms_containing(PHONE, "已原路退回").await.is_some());

        // A second refund request for the same refund (a retry) moves no more money.
        let refund = h.order(&token, &id).await["refunds"][0]["id"].as_str().unwrap().to_owned();
        let again = yiqian_providers::payment::RefundRequest {
            refund: yiqian_domain::RefundId::parse(&refund).unwrap(),
            payment: yiqian_domain::PaymentId::parse(&payment).unwrap(),
            amount: yiqian_domain::Fen(15000),
            payment_amount: yiqian_domain::Fen(15000),
            channel: yiqian_domain::payment::Channel::Alipay,
            reason: "申请人申请退款".into(),
        };
        let outcome = h.server.app.providers().payments.alipay.refund(&again).await.unwrap();
        assert!(matches!(outcome, yiqian_providers::payment::RefundOutcome::Succeeded { .. }), "{outcome:?}");
        let refunded: u64 = s.alipay.trades().iter().map(|t| t.refunded.0).sum();
        assert_eq!(refunded, 15000, "no money lost");

        let today = h.server.app.yesterday_in_beijing().succ_opt().unwrap();
        let report = h.server.app.reconcile(today).await.unwrap();
        assert_eq!((report.payments, report.settled, report.findings.len()), (1, 1, 0), "{report:?}");
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wechatpay_notifications_must_be_genuine_fresh_and_are_taken_once() {
    for (backend, certificates) in backends().into_iter().flat_map(|b| [(b, false), (b, true)]) {
        let modes = VendorModes { certificates };
        let h = start_with_vendors(backend, modes, |_| {}).await;
        let s = sim(&h);
        s.wechatpay.use_certificate_mode(certificates);
        let token = h.login(PHONE).await;
        let id = h.create_order(&token).await;
        start_payment(&h, &token, &id, "wechat", None).await;
        let payment = payment_id(&h, &token, &id).await;
        let account = s.wechatpay.account().clone();
        // What a genuine TRANSACTION.SUCCESS would carry for this payment.
        let claim = || {
            json!({"appid": account.appid, "mchid": account.mchid, "out_trade_no": payment,
                "transaction_id": "4200000000202611260000000001", "trade_type": "MWEB", "trade_state": "SUCCESS",
                "trade_state_desc": "支付成功", "bank_type": "OTHERS", "success_time": "2026-11-26T10:00:00+08:00",
                "payer": {}, "amount": {"total": 15000, "payer_total": 15000, "currency": "CNY", "payer_currency": "CNY"}})
        };
        let send = async |n: &yiqian_sim::wechatpay::Notification| {
            post_notification(&h, "/notify/wechatpay", "application/json", &n.headers, &n.body).await.0
        };

        // Forgeries and stale or probing notifications: refused, nothing changes.
        let mut tampered = s.wechatpay.notification("TRANSACTION.SUCCESS", "transaction", "支付成功", claim()).build();
        let text = String::from_utf8(tampered.body.clone()).unwrap();
        tampered.body = text.replacen("encrypt-resource", "encrypt-resourcf", 1).into_bytes();
        let wrong_key = yiqian_providers::rsa::RsaSigner::from_pem(&s.wechatpay.account().merchant_key_pem).unwrap();
        let refused = [
            tampered,
            s.wechatpay
                .notification("TRANSACTION.SUCCESS", "transaction", "支付成功", claim())
                .signed_by(wrong_key)
                .build(),
            s.wechatpay
                .notification("TRANSACTION.SUCCESS", "transaction", "支付成功", claim())
                .timestamp(chrono::Utc::now().timestamp() - 600)
                .build(),
            s.wechatpay
                .notification("TRANSACTION.SUCCESS", "transaction", "支付成功", claim())
                .serial("PUB_KEY_ID_0000UNKNOWN")
                .build(),
            s.wechatpay.notification("TRANSACTION.SUCCESS", "transaction", "支付成功", claim()).probe().build(),
        ];
        for n in &refused {
            assert!(send(n).await.is_client_error(), "certificates: {certificates}");
        }
        assert_eq!(h.order(&token, &id).await["state"], "created");

        // An out-of-order refund notification for a refund we never asked for: refused.
        let stray = json!({"mchid": s.wechatpay.account().mchid, "out_trade_no": payment, "transaction_id": "4200000000202611260000000009",
            "out_refund_no": "RFNEVERASKED000000001", "refund_id": "50300000000000000001", "refund_status": "SUCCESS",
            "amount": {"total": 15000, "refund": 15000, "payer_total": 15000, "payer_refund": 15000}});
        let n = s.wechatpay.notification("REFUND.SUCCESS", "refund", "退款成功", stray).build();
        assert!(send(&n).await.is_client_error());

        // The genuine payment, then its replay.
        s.wechatpay.pay(&payment).unwrap();
        h.wait_for_state(&token, &id, "collecting").await;
        let history = h.order(&token, &id).await["history"].clone();
        let delivered = s.wechatpay.deliveries().into_iter().find(|d| d.acknowledged).expect("a delivery");
        // WeChat's retry of the same notification: same id, signed afresh.
        let replay = s
            .wechatpay
            .notification(
                "TRANSACTION.SUCCESS",
                "transaction",
                "支付成功",
                s.wechatpay.transaction_resource(&payment).unwrap(),
            )
            .id(&delivered.notification_id)
            .build();
        assert_eq!(send(&replay).await, StatusCode::OK);
        assert_eq!(h.order(&token, &id).await["history"], history);

        // Refund: WeChat reports it by notification; a repeated request makes no second refund.
        h.post(Some(&token), &format!("/api/v1/orders/{id}/refund"), json!({})).await.ok();
        h.wait_for_state(&token, &id, "refunded").await;
        let refund = h.order(&token, &id).await["refunds"][0]["id"].as_str().unwrap().to_owned();
        let again = yiqian_providers::payment::RefundRequest {
            refund: yiqian_domain::RefundId::parse(&refund).unwrap(),
            payment: yiqian_domain::PaymentId::parse(&payment).unwrap(),
            amount: yiqian_domain::Fen(15000),
            payment_amount: yiqian_domain::Fen(15000),
            channel: yiqian_domain::payment::Channel::Wechat,
            reason: "申请人申请退款".into(),
        };
        h.server.app.providers().payments.wechat.refund(&again).await.unwrap();
        assert_eq!(s.wechatpay.refunds().len(), 1, "one refund at WeChat Pay");
        let refund_notice = s
            .wechatpay
            .notification("REFUND.SUCCESS", "refund", "退款成功", s.wechatpay.refund_resource(&refund).unwrap())
            .build();
        assert_eq!(send(&refund_notice).await, StatusCode::OK, "a late duplicate is acknowledged");
        assert_eq!(h.order(&token, &id).await["state"], "refunded");
        assert!(h.sms_containing(PHONE, "已原路退回").await.is_some());
        let refunds = h.inbox(PHONE).await.into_iter().filter(|(_, t)| t.contains("已原路退回")).count();
        assert_eq!(refunds, 1, "one refund SMS");
        h.server.stop().await;
    }
}

const WECHAT_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.50";

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect()
}

fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").unwrap().to_str().unwrap().to_owned()
}

/// Goes through WeChat web authorisation as the browser would (our redirect to WeChat, the
/// stand-in's redirect back with a code, our callback), carrying `cookies`; returns the last
/// answer and the cookies it set.
async fn authorise(h: &Harness, next: &str, cookies: &[String], sim_user: &str) -> (reqwest::Response, Vec<String>) {
    let cookie_header = |extra: &[String]| cookies.iter().chain(extra).cloned().collect::<Vec<_>>().join("; ");
    let start = h
        .http
        .get(h.url(&format!("/wechat/login?next={next}")))
        .header("cookie", cookie_header(&[]))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER, "{:?}", start.text().await);
    let state_cookie = set_cookies(&start);
    let to_wechat = location(&start);
    assert!(to_wechat.contains("/connect/oauth2/authorize?appid=") && to_wechat.ends_with("#wechat_redirect"));
    let at_wechat = to_wechat.replace("#wechat_redirect", &format!("&sim_user={sim_user}"));
    let back = h.http.get(&at_wechat).send().await.unwrap();
    assert!(back.status().is_redirection(), "{}", back.status());
    let callback = location(&back);
    assert!(callback.starts_with(&h.url("/wechat/callback?code=")), "{callback}");
    let done = h.http.get(&callback).header("cookie", cookie_header(&state_cookie)).send().await.unwrap();
    let cookies = set_cookies(&done);
    (done, cookies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inside_wechat_the_openid_comes_from_web_authorisation_and_pays_by_jsapi() {
    let h = start_with_vendors(backends()[0], VendorModes::default(), |_| {}).await;
    let s = sim(&h);
    let token = h.login(PHONE).await;
    let id = h.create_order(&token).await;

    // Inside WeChat without an openid: authorise first.
    let start = start_payment(&h, &token, &id, "wechat", Some(WECHAT_UA)).await;
    assert_eq!(start["kind"], "authorize", "{start}");
    let session = format!("yiqian_session={token}");
    let (done, _) = authorise(&h, &format!("/orders/{id}"), std::slice::from_ref(&session), "alice").await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), format!("/orders/{id}"));

    // Now JSAPI, with the parameters WeixinJSBridge needs, signed by the merchant key.
    let start = start_payment(&h, &token, &id, "wechat", Some(WECHAT_UA)).await;
    assert_eq!(start["kind"], "wechat_jsapi", "{start}");
    let p = &start["params"];
    assert_eq!(p["signType"], "RSA");
    assert!(p["package"].as_str().unwrap().starts_with("prepay_id="));
    let message = yiqian_providers::wechatpay::signing::jsapi_pay_message(
        p["appId"].as_str().unwrap(),
        p["timeStamp"].as_str().unwrap(),
        p["nonceStr"].as_str().unwrap(),
        p["package"].as_str().unwrap(),
    );
    let merchant = yiqian_providers::rsa::RsaVerifier::from_pem(&s.wechatpay.account().merchant_public_pem).unwrap();
    assert!(merchant.verify(message.as_bytes(), p["paySign"].as_str().unwrap()));
    let payment = payment_id(&h, &token, &id).await;
    let order = s.wechatpay.order(&payment).unwrap();
    assert_eq!(order.openid.as_deref(), Some(s.wechatpay.openid_for("alice").as_str()), "payer.openid sent");
    s.wechatpay.pay(&payment).unwrap();
    h.wait_for_state(&token, &id, "collecting").await;

    // The bound openid logs the applicant in later without an SMS code.
    let (done, cookies) = authorise(&h, "/orders", &[], "alice").await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let new_session = cookies.iter().find(|c| c.starts_with("yiqian_session=")).expect("a session cookie");
    let orders = h.http.get(h.url("/api/v1/orders")).header("cookie", new_session).send().await.unwrap();
    let orders: Value = orders.json().await.unwrap();
    assert!(orders["orders"].as_array().unwrap().iter().any(|o| o["id"] == id.as_str()), "{orders}");

    // 办理 with the agreement ticked, then WeChat login: back on the agreement, which makes the
    // order at once (as the SMS login does), only for the version ticked.
    let version = h.server.app.config().product.agreement_version.clone();
    let login =
        h.http.get(h.url(&format!("/login?next=/apply?agreed=1&agreed={version}"))).header("user-agent", WECHAT_UA);
    let login = login.send().await.unwrap().text().await.unwrap();
    let after = format!("/apply?agreed={version}");
    let wechat_link = format!("/wechat/login?next={}", after.replace('?', "%3F").replace('=', "%3D"));
    assert!(login.contains(&wechat_link), "{wechat_link} in {login}");
    let (done, cookies) = authorise(&h, &after, &[], "alice").await;
    assert_eq!(location(&done), after);
    let session = cookies.iter().find(|c| c.starts_with("yiqian_session=")).unwrap().clone();
    let page = |path: String| {
        let req = h.http.get(h.url(&path)).header("cookie", &session);
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    assert!(page(after.clone()).await.contains("data-auto-submit"), "the order is made on arrival");
    assert!(!page("/apply?agreed=1".into()).await.contains("data-auto-submit"), "not for another version");

    // A stranger's openid: no session, SMS login, then it is bound.
    let (done, cookies) = authorise(&h, "/orders", &[], "bob").await;
    assert!(location(&done).starts_with("/login?next="), "{}", location(&done));
    let pending = cookies.iter().find(|c| c.starts_with("yiqian_wx_pending=")).expect("the openid held").clone();
    assert!(!cookies.iter().any(|c| c.starts_with("yiqian_session=")));
    let other = "13900139001";
    let code = h.request_code(None, "/api/v1/session/code", other).await;
    let r = h
        .http
        .post(h.url("/api/v1/session"))
        .header("cookie", &pending)
        .json(&json!({"phone": other, "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (done, cookies) = authorise(&h, "/orders", &[], "bob").await;
    assert_eq!(location(&done), "/orders");
    assert!(cookies.iter().any(|c| c.starts_with("yiqian_session=")), "bob logs in by WeChat now");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tencent_verdicts_reach_the_applicant_in_their_words() {
    let h = start_with_vendors(backends()[0], VendorModes::default(), |_| {}).await;
    let s = sim(&h);
    s.tencent.set_id_card(the_card());
    let (token, id) = paid_order(&h).await;
    let p = |tail: &str| format!("/api/v1/orders/{id}/{tail}");
    let code = h.request_code(Some(&token), &p("phone/code"), PHONE).await;
    h.post(Some(&token), &p("phone"), json!({"phone": PHONE, "code": code})).await.ok();

    // A photocopy: retake, nothing stored.
    s.tencent.script_ocr_warnings(yiqian_providers::identity::CardSide::Front, &[-9102]);
    let photos = || {
        reqwest::multipart::Form::new()
            .part("front", reqwest::multipart::Part::bytes(jpeg()).file_name("front.jpg"))
            .part("back", reqwest::multipart::Part::bytes(jpeg()).file_name("back.jpg"))
    };
    let r = h.post_form(&token, &p("id-card/photos"), photos()).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "id_photo_retake"));
    assert!(r.message().contains("人像面") && r.message().contains("复印件"), "{}", r.message());
    let ocr = h.post_form(&token, &p("id-card/photos"), photos()).await.ok();
    assert_eq!(ocr["ocr"]["name"], "张三");
    h.post(Some(&token), &p("id-card"), id_card("110101199003074477")).await.ok();

    // A face too unlike the card: try again, with the reason and the similarity recorded.
    s.tencent.script_liveness(None, Some(41.0));
    let (_, r) = face_video(&h, &token, &p("liveness/challenge"), &p("liveness")).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "liveness_failed"));
    assert!(r.message().starts_with("人脸验证未通过"), "{}", r.message());
    // Reading too quietly.
    s.tencent.script_liveness(Some("FailedOperation.LipVoiceLow"), None);
    let (_, r) = face_video(&h, &token, &p("liveness/challenge"), &p("liveness")).await;
    assert_eq!(r.code(), "liveness_failed");
    assert!(r.message().contains("声音"), "{}", r.message());
    assert_eq!(h.order(&token, &id).await["state"], "collecting");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_paid_twice_keeps_one_payment_and_returns_the_other() {
    let h = start_with_vendors(backends()[0], VendorModes::default(), |_| {}).await;
    let s = sim(&h);
    let token = h.login(PHONE).await;
    let id = h.create_order(&token).await;
    // Two cashiers opened, both paid before either notification arrives.
    let (wechat, alipay) = open_two_cashiers(&h, &token, &id).await;
    s.wechatpay.pay(&wechat).unwrap();
    s.alipay.pay(&alipay).unwrap();
    h.wait_for_state(&token, &id, "collecting").await;
    wait_until(&h, "the second payment is refunded", async || {
        h.order(&token, &id).await["refunds"][0]["state"] == "succeeded"
    })
    .await;
    assert_eq!(s.alipay.refunds().len() + s.wechatpay.refunds().len(), 1, "one of the two went back");
    assert_eq!(h.order(&token, &id).await["state"], "collecting", "the order goes on");
    let today = h.server.app.yesterday_in_beijing().succ_opt().unwrap();
    let report = h.server.app.reconcile(today).await.unwrap();
    assert_eq!((report.payments, report.settled, report.findings.len()), (2, 2, 0), "{report:?}");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn other_cashiers_close_when_an_order_is_paid_or_cancelled() {
    let h = start_with_vendors(backends()[0], VendorModes::default(), |_| {}).await;
    let s = sim(&h);
    let token = h.login(PHONE).await;

    // Paid with Alipay: the WeChat Pay trade opened before is closed and cannot be paid.
    let id = h.create_order(&token).await;
    let (wechat, alipay) = open_two_cashiers(&h, &token, &id).await;
    s.alipay.pay(&alipay).unwrap();
    h.wait_for_state(&token, &id, "collecting").await;
    wait_until(&h, "the WeChat Pay trade is closed", async || {
        s.wechatpay.order(&wechat).is_some_and(|o| o.trade_state == yiqian_sim::wechatpay::TradeState::Closed)
    })
    .await;
    assert!(s.wechatpay.pay(&wechat).is_err());

    // Cancelled: its open trade is closed too.
    let other = h.create_order(&token).await;
    let alipay_start = start_payment(&h, &token, &other, "alipay", None).await;
    h.http.get(alipay_start["pay_url"].as_str().unwrap()).send().await.unwrap();
    let open = payment_id(&h, &token, &other).await;
    h.post(Some(&token), &format!("/api/v1/orders/{other}/cancel"), json!({})).await.ok();
    wait_until(&h, "the Alipay trade is closed", async || {
        s.alipay.trade(&open).is_some_and(|t| t.status == yiqian_sim::alipay::TradeStatus::TradeClosed)
    })
    .await;
    assert!(s.alipay.pay(&open).is_err());
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_whose_notifications_never_get_through_is_found_by_querying() {
    let h = start_with_vendors_and_clock(backends()[0], VendorModes::default(), true, |_| {}).await;
    let s = sim(&h);
    let token = h.login(PHONE).await;
    let id = h.create_order(&token).await;
    start_payment(&h, &token, &id, "wechat", None).await;
    let payment = payment_id(&h, &token, &id).await;
    // Our clock runs ten minutes ahead of WeChat's: every notification looks stale.
    h.advance(chrono::Duration::minutes(10));
    s.wechatpay.pay(&payment).unwrap();
    wait_until(&h, "a notification is refused", async || {
        s.wechatpay.deliveries().iter().any(|d| d.attempts.iter().any(|a| a.outcome == Ok(400)))
    })
    .await;
    assert_eq!(h.order(&token, &id).await["state"], "created");
    // The payment result page asks WeChat Pay, which says paid.
    let o = h.get(Some(&token), &format!("/api/v1/orders/{id}/payment-status")).await.ok();
    assert_eq!(o["state"], "collecting", "{o}");
    assert_eq!(o["payments"][0]["state"], "succeeded", "{o}");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_e_invoice_is_left_to_finance_with_its_reason() {
    let h = start_with_vendors(backends()[0], VendorModes::default(), |_| {}).await;
    let s = sim(&h);
    s.tencent.set_id_card(the_card());
    let (token, id) = paid_order(&h).await;
    h.complete_materials(&token, &id, PHONE).await;
    assert_eq!(approve_ship_activate(&h, &token, &id).await["state"], "activated");
    let finance = staff(&h, "finance1", Role::Finance).await;

    s.nuonuo.fail_next("购方名称与税号不匹配");
    h.post(Some(&token), &format!("/api/v1/orders/{id}/invoice"), json!({"kind": "personal", "name": "张三"}))
        .await
        .ok();
    wait_until(&h, "the failure is recorded", async || {
        let mut tx = h.server.app.store().read().await.unwrap();
        let order = yiqian_domain::OrderId::parse(&id).unwrap();
        tx.invoice(&order).await.unwrap().and_then(|i| i.failure).is_some()
    })
    .await;
    let queue =
        h.server.app.invoice_queue(&finance, yiqian_domain::invoice::InvoiceState::Requested, 10).await.unwrap();
    assert_eq!(queue[0].failure.as_deref(), Some("购方名称与税号不匹配"));
    // Finance issues it by hand; the applicant gets it as usual.
    h.server.app.issue_invoice(&finance, &id, "26440000000000000001", b"%PDF-1.7\n").await.unwrap();
    assert!(h.sms_containing(PHONE, "电子发票已开具").await.is_some());
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inside_wechat_without_web_authorisation_the_applicant_is_told_how_to_pay() {
    let h =
        start_with_vendors(backends()[0], VendorModes::default(), |c| c.providers.wechat_login = "off".into()).await;
    let token = h.login(PHONE).await;
    let id = h.create_order(&token).await;
    let r = h
        .http
        .post(h.url(&format!("/api/v1/orders/{id}/payments")))
        .bearer_auth(&token)
        .header("user-agent", WECHAT_UA)
        .json(&json!({"channel": "wechat"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "wechat_authorisation_off", "{body}");
    // Alipay still works there, and WeChat Pay outside WeChat.
    assert_eq!(start_payment(&h, &token, &id, "alipay", Some(WECHAT_UA)).await["kind"], "redirect");
    assert_eq!(start_payment(&h, &token, &id, "wechat", None).await["kind"], "redirect");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconciliation_reports_money_taken_for_a_trade_we_never_started() {
    let h = start_with_vendors(backends()[0], VendorModes::default(), |_| {}).await;
    let s = sim(&h);
    let (_token, _id) = paid_order(&h).await;
    // Someone uses the merchant account outside yiqian: WeChat Pay's bill has that payment.
    let foreign = yiqian_providers::payment::PaymentRequest {
        payment: yiqian_domain::PaymentId::parse("OUTSIDE0000000000001").unwrap(),
        order: yiqian_domain::OrderId::parse("OUTSIDE").unwrap(),
        amount: yiqian_domain::Fen(990),
        channel: yiqian_domain::payment::Channel::Wechat,
        description: "其他商品".into(),
        return_url: h.url("/"),
        payer: yiqian_providers::payment::Payer { wechat_openid: None, client_ip: Some("127.0.0.1".into()) },
        expires_at: chrono::Utc::now() + chrono::Duration::minutes(30),
    };
    h.server.app.providers().payments.wechat.create_payment(&foreign).await.unwrap();
    s.wechatpay.pay("OUTSIDE0000000000001").unwrap();
    let today = h.server.app.yesterday_in_beijing().succ_opt().unwrap();
    let report = h.server.app.reconcile(today).await.unwrap();
    assert_eq!((report.payments, report.settled), (1, 1), "{report:?}");
    assert_eq!(report.findings.len(), 1, "{report:?}");
    let f = serde_json::to_value(&report.findings[0]).unwrap();
    assert_eq!(f["problem"], "unknown_at_gateway", "{f}");
    assert_eq!(f["payment"], "OUTSIDE0000000000001");
    assert_eq!(f["amount"], 990);
    h.server.stop().await;
}
