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
use yiqian_providers::identity::CardSide;
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

        let reviewer = staff(&h, "reviewer1", Role::Reviewer).await;
        let maker = staff(&h, "maker1", Role::Fulfilment).await;
        let finance = staff(&h, "finance1", Role::Finance).await;
        let d = h.server.app.dossier(&reviewer, &id).await.unwrap();
        let ocr = serde_json::to_value(&d.id_card.as_ref().unwrap().ocr).unwrap();
        assert_eq!(ocr["id_number"], "110101199003074477", "{ocr}");
        assert_eq!(ocr["birth_date"], "1990-03-07", "{ocr}");
        let liveness = serde_json::to_value(&d.liveness.as_ref().unwrap().verdict).unwrap();
        assert_eq!(liveness["verdict"], "pass", "{liveness}");
        assert_eq!(liveness["similarity"], 88.5, "the similarity is kept as evidence");

        // Review, issuance, and shipping booked with SF Express.
        h.server.app.approve_application(&reviewer, &id).await.unwrap();
        h.server.app.start_issuance_batch(&maker, std::slice::from_ref(&id)).await.unwrap();
        h.wait_for_state(&token, &id, "issued").await;
        h.server.app.book_and_ship(&maker, &id).await.unwrap();
        let o = h.order(&token, &id).await;
        assert_eq!(o["status_word"], "已发货");
        let booked = s.sf.orders();
        assert_eq!(booked.len(), 1);
        let waybill = booked[0].waybill_no.clone();
        assert!(waybill.starts_with("SF"), "{waybill}");
        assert!(h.sms_containing(PHONE, &waybill).await.is_some());
        // Booking again (a retry) ships nothing twice and books nothing twice.
        assert!(h.server.app.book_and_ship(&maker, &id).await.is_err());
        assert_eq!(s.sf.orders().len(), 1);
        // The route on the order page, as SF reports it.
        assert!(s.sf.add_route(&waybill, "深圳市南山区", "快件已签收", "80"));
        let page = h.http.get(h.url(&format!("/orders/{id}"))).bearer_auth(&token).send().await.unwrap();
        let html = page.text().await.unwrap();
        assert!(html.contains(&waybill) && html.contains("快件已签收"), "{html}");

        // Activation: Tencent passes the face; the PIN goes out through Tencent SMS, once.
        let d = h.server.app.dossier(&maker, &id).await.unwrap();
        let code = d.fulfilment.as_ref().expect("a fulfilment record").activation_code.clone();
        let base = format!("/api/v1/activation/{code}");
        h.post(Some(&token), &format!("{base}/consent"), json!({"agreed": true})).await.ok();
        let c = h.post(Some(&token), &format!("{base}/challenge"), json!({})).await.ok();
        let digits = c["digits"].as_str().unwrap().to_owned();
        assert!(s.tencent.issued_live_codes().contains(&digits), "the digits come from GetLiveCode");
        let video = reqwest::multipart::Form::new()
            .text("challenge_id", c["challenge_id"].as_str().unwrap().to_owned())
            .part("video", reqwest::multipart::Part::bytes(mp4()).file_name("activation.mp4"));
        let a = h.post_form(&token, &format!("{base}/video"), video).await.ok();
        assert_eq!(a["state"], "activated", "{a}");
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
        let queue = h.server.app.invoice_queue(&finance, yiqian_domain::invoice::InvoiceState::Issued, 10).await.unwrap();
        assert_eq!(queue[0].issued.as_ref().unwrap().1, "provider:nuonuo");

        // Reconciliation: WeChat Pay's record agrees; nothing to look at.
        let today = h.server.app.yesterday_in_beijing().succ_opt().unwrap();
        let report = h.server.app.reconcile(today).await.unwrap();
        assert_eq!((report.payments, report.settled, report.findings.len()), (1, 1, 0), "{report:?}");
        h.server.stop().await;
    }
}
