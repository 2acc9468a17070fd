//! The reviewers' and the counter's console pages over HTTP, on SQLite and (when configured)
//! PostgreSQL: the review queue and an application's dossier with its photos, video and
//! signature; approving, sending back and rejecting; the activation review; and the counter's
//! search and after-sales services with their identity check.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use yiqian_domain::{OrderId, OrderState};
use yiqian_store::certificates::CertificateStatus;

const PHONE: &str = "13800138000";
const OTHER_PHONE: &str = "13900139000";
const ID_NUMBER: &str = "110101199003074477";

/// Another applicant's ID number (张三 too: male, born 1990-03-07).
const OTHER_ID_NUMBER: &str = "110101199003071233";

/// An applicant's order, paid and submitted; returns (token, order id).
async fn submitted(h: &Harness, phone: &str) -> (String, String) {
    submitted_with(h, phone, ID_NUMBER).await
}

async fn submitted_with(h: &Harness, phone: &str, id_number: &str) -> (String, String) {
    let token = h.login(phone).await;
    let id = h.create_order(&token).await;
    h.pay(&token, &id).await;
    let m = Materials { id_number: id_number.into(), ..Materials::default() };
    assert_eq!(h.complete_materials_with(&token, &id, phone, m).await["state"], "submitted");
    (token, id)
}

async fn state(h: &Harness, id: &str) -> OrderState {
    stored_order(h, id).await.order.state
}

async fn audit_text(h: &Harness) -> String {
    let entries = h.server.app.store().audit_entries(1, 10_000).await.unwrap();
    entries.iter().map(|e| format!("{} {} {} {}\n", e.actor, e.action, e.subject, e.detail)).collect()
}

/// The SMS texts to `phone` that carry a PIN, after delivering what is due.
async fn pin_messages(h: &Harness, phone: &str) -> Vec<String> {
    h.server.app.deliver_due().await.unwrap();
    let inbox = h.server.app.store().sandbox_sms(Some(phone), 1000).await.unwrap();
    inbox.into_iter().map(|m| m.text).filter(|t| t.contains("PIN码为")).collect()
}

/// Waits (bounded) until `phone` has received `n` PIN messages.
async fn wait_pins(h: &Harness, phone: &str, n: usize) -> Vec<String> {
    for _ in 0..100 {
        let pins = pin_messages(h, phone).await;
        if pins.len() >= n {
            return pins;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{phone} never received {n} PIN messages: {:?}", pin_messages(h, phone).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reviewers_approve_send_back_and_reject_applications_in_the_console() {
    for backend in backends() {
        let h = start(backend).await;
        let (token, first) = submitted(&h, PHONE).await;
        let (_, second) = submitted_with(&h, OTHER_PHONE, OTHER_ID_NUMBER).await;
        let reviewer = console_login(&h, "li.wei", "reviewer").await;

        // The queue: both, the longest waiting first, each leading to its dossier.
        let queue = reviewer.get("/console/review").await;
        assert_eq!(queue.status, StatusCode::OK, "{}", queue.body);
        let (a, b) = (queue.body.find(&first), queue.body.find(&second));
        assert!(a.is_some() && b.is_some() && a < b, "oldest first: {}", queue.body);
        assert!(queue.body.contains(&format!("href=\"/console/review/{first}\"")));
        assert!(queue.body.contains("已等待"));

        // The dossier: photos, the fields next to OCR, the video, signature, address, history.
        let page = reviewer.get(&format!("/console/review/{first}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        for text in [
            "张三",
            ID_NUMBER,
            "北京市公安局东城分局",
            "2020.01.01-2040.01.01",
            "未识别",
            "<video",
            "需人工审核",
            "沙箱环境不做自动人脸比对",
            "手写签名",
            "科技园南区1栋101室",
            PHONE,
            "受理成功,等待审核",
            "审核通过",
            "退回补正",
            "确认拒绝并退款",
        ] {
            assert!(page.body.contains(text), "the dossier lacks {text}: {}", page.body);
        }
        for step in ["绑定手机", "身份证拍照", "人脸验证", "手写签名", "填写地址"] {
            assert!(page.body.contains(&format!(">{step}</option>")), "send back offers {step}");
        }

        // Its media: the photo inline, never cached; the video in byte ranges; each audited.
        let photo = html_value(&page.body, "id=\"id-front\" src=\"", '"').expect("the front photo");
        assert!(photo.starts_with(&format!("/console/orders/{first}/blobs/")), "{photo}");
        let r = reviewer.get(&photo).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["content-type"], "image/jpeg");
        assert_eq!(r.headers["content-disposition"], "inline");
        assert_eq!(r.headers["cache-control"], "no-store");
        assert_eq!(r.headers["content-length"], jpeg().len().to_string().as_str());
        let video =
            html_value(&page.body, "id=\"liveness-video\" controls preload=\"metadata\" playsinline src=\"", '"')
                .expect("the face video");
        let part = reviewer
            .http
            .get(format!("{}{video}", h.base))
            .header("cookie", format!("yiqian_console={}", reviewer.token))
            .header("range", "bytes=0-99")
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(part.headers()["content-type"], "video/mp4");
        assert_eq!(part.headers()["content-range"], format!("bytes 0-99/{}", mp4().len()).as_str());
        assert_eq!(part.bytes().await.unwrap().as_ref(), &mp4()[..100]);
        let whole = reviewer.get(&video).await;
        assert_eq!((whole.status, whole.headers["accept-ranges"].to_str().unwrap()), (StatusCode::OK, "bytes"));
        // Another order's blob is not found under this order.
        let elsewhere = reviewer.get(&photo.replace(&first, &second)).await;
        assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
        let audit = audit_text(&h).await;
        assert!(audit.contains(&format!("staff:li.wei blob.viewed order:{first}")), "{audit}");
        assert!(audit.contains(&format!("staff:li.wei order.dossier_viewed order:{first}")), "{audit}");

        // Other roles see none of it.
        let maker = console_login(&h, "zhao.min", "fulfilment").await;
        for path in ["/console/review".to_owned(), format!("/console/review/{first}"), "/console/activations".into()] {
            let r = maker.get(&path).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
            assert!(r.body.contains("您的角色无权访问此页面"), "{}", r.body);
        }
        let r = maker.post_form(&format!("/console/review/{first}/approve"), &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        // No decision without the form's CSRF token.
        let path = format!("/console/review/{first}/approve");
        assert_eq!(reviewer.post_form_raw(&path, &[]).await.status, StatusCode::FORBIDDEN);
        assert_eq!(reviewer.post_form_raw(&path, &[("csrf", "forged")]).await.status, StatusCode::FORBIDDEN);
        assert_eq!(state(&h, &first).await, OrderState::Submitted);

        // 退回补正 needs a reason: the page says so, the order stays; with one it goes back.
        let back = format!("/console/review/{first}/send-back");
        let r = reviewer.post_form(&back, &[("step", "address"), ("reason", "  ")]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.body.contains("请填写原因(不超过200字)"), "{}", r.body);
        assert!(r.body.contains("<option value=\"address\" selected>"), "the step stays chosen");
        assert_eq!(state(&h, &first).await, OrderState::Submitted);
        let r = reviewer.post_form(&back, &[("step", "nowhere"), ("reason", "地址不完整")]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("请选择需要补正的步骤"), "{}", r.body);
        let r = reviewer.post_form(&back, &[("step", "address"), ("reason", "收件地址缺少门牌号")]).await;
        r.assert_redirect("/console/review?ok=sent_back");
        assert_eq!(state(&h, &first).await, OrderState::Returned);
        let queue = reviewer.get(r.location.as_deref().unwrap()).await;
        assert!(queue.body.contains(&format!("订单 {first} 已退回补正")), "{}", queue.body);
        assert!(!queue.body.contains(&format!("data-order=\"{first}\"")), "no longer waiting");
        let o = h.order(&token, &first).await;
        assert_eq!(o["returned_reason"], "填写地址:收件地址缺少门牌号", "{o}");

        // The applicant corrects the address and submits again.
        let p = |tail: &str| format!("/api/v1/orders/{first}/{tail}");
        h.post(Some(&token), &p("address"), address()).await.ok();
        h.post(Some(&token), &p("submit"), json!({})).await.ok();
        assert_eq!(state(&h, &first).await, OrderState::Submitted);

        // 审核不通过: the second confirmation is required, then the refund starts.
        let reject = format!("/console/review/{first}/reject");
        let r = reviewer.post_form(&reject, &[("reason", "非本人申请")]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("请勾选“确认拒绝并退款”后再提交"), "{}", r.body);
        assert!(r.body.contains("非本人申请</textarea>"), "the reason stays typed");
        let r = reviewer.post_form(&reject, &[("reason", ""), ("confirm", "1")]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("请填写原因"), "{}", r.body);
        assert_eq!(state(&h, &first).await, OrderState::Submitted);
        let r = reviewer.post_form(&reject, &[("reason", "非本人申请"), ("confirm", "1")]).await;
        r.assert_redirect("/console/review?ok=rejected");
        let s = state(&h, &first).await;
        assert!(matches!(s, OrderState::Refunding | OrderState::Refunded), "{s:?}");

        // 审核通过 of the other; deciding again is refused on the page.
        let r = reviewer.post_form(&format!("/console/review/{second}/approve"), &[]).await;
        r.assert_redirect("/console/review?ok=approved");
        assert_eq!(state(&h, &second).await, OrderState::Approved);
        let queue = reviewer.get("/console/review").await;
        assert!(!queue.body.contains(&format!("data-order=\"{second}\"")), "{}", queue.body);
        assert!(queue.body.contains("没有待审核的申请"), "{}", queue.body);
        let again = reviewer.post_form(&format!("/console/review/{second}/approve"), &[]).await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
        assert!(again.body.contains("不在待审核状态"), "{}", again.body);

        let audit = audit_text(&h).await;
        for action in ["order.approved", "order.sent_back", "order.rejected"] {
            assert!(audit.contains(&format!("staff:li.wei {action}")), "{action}: {audit}");
        }
        assert!(!audit.contains(ID_NUMBER), "no ID number in the audit trail");
        h.server.stop().await;
    }
}

/// Accepts the notice and sends a face video at activation; returns the answer.
async fn activate(h: &Harness, token: &str, code: &str) -> Value {
    let a = |tail: &str| format!("/api/v1/activation/{code}/{tail}");
    h.post(Some(token), &a("consent"), json!({"agreed": true})).await.ok();
    let c = h.post(Some(token), &a("challenge"), json!({})).await.ok();
    let video = reqwest::multipart::Form::new()
        .text("challenge_id", c["challenge_id"].as_str().unwrap().to_owned())
        .part("video", reqwest::multipart::Part::bytes(mp4()).file_name("activation.mp4"));
    h.post_form(token, &a("video"), video).await.ok()
}

/// The order's current key and its certificate serial.
async fn current_key(h: &Harness, id: &str) -> (String, String) {
    let oid = OrderId::parse(id).unwrap();
    let mut tx = h.server.app.store().read().await.unwrap();
    let serial = tx.fulfilment(&oid).await.unwrap().unwrap().token_serial.unwrap();
    let token = tx.token(&serial).await.unwrap().unwrap();
    (serial, token.certificate_serial)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn activations_are_reviewed_and_the_counter_serves_the_applicant() {
    for backend in backends() {
        let h = start(backend).await;
        let (token, id) = submitted(&h, PHONE).await;
        let code = ship_order_as_staff(&h, &id).await;
        activate(&h, &token, &code).await;
        assert_eq!(state(&h, &id).await, OrderState::ActivationReview);

        // 激活复核: the activation video next to the ID photo and the application's video.
        let reviewer = console_login(&h, "li.wei", "reviewer").await;
        let queue = reviewer.get("/console/activations").await;
        assert_eq!(queue.status, StatusCode::OK);
        assert!(queue.body.contains(&format!("href=\"/console/activations/{id}\"")), "{}", queue.body);
        let page = reviewer.get(&format!("/console/activations/{id}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        for text in
            ["激活人脸视频", "id=\"activation-video\"", "id=\"liveness-video\"", "id=\"id-front\"", "需人工审核"]
        {
            assert!(page.body.contains(text), "the activation page lacks {text}: {}", page.body);
        }
        let r = reviewer.post_form(&format!("/console/activations/{id}/reject"), &[("reason", "")]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("请填写原因"), "{}", r.body);
        assert!(pin_messages(&h, PHONE).await.is_empty(), "no PIN before the decision");
        let r = reviewer.post_form(&format!("/console/activations/{id}/approve"), &[]).await;
        r.assert_redirect("/console/activations?ok=activation_approved");
        assert_eq!(state(&h, &id).await, OrderState::Activated);
        wait_pins(&h, PHONE, 1).await;

        // The counter finds the order by phone, ID number and order number.
        let counter = console_login(&h, "wang.fang", "counter").await;
        for q in [PHONE, ID_NUMBER, id.as_str()] {
            let r = counter.get(&format!("/console/counter?q={q}")).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(r.body.contains(&format!("href=\"/console/counter/{id}\"")), "{q}: {}", r.body);
        }
        let r = counter.get("/console/counter?q=nonsense").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("请输入订单号、手机号或身份证号"), "{}", r.body);
        let r = counter.get("/console/counter?q=13700137000").await;
        assert!(r.body.contains("没有找到订单"), "{}", r.body);
        assert_eq!(reviewer.get("/console/counter").await.status, StatusCode::FORBIDDEN);

        // The order at the counter: who, masked ID, key and certificate, the services it allows.
        let (key, certificate) = current_key(&h, &id).await;
        let page = counter.get(&format!("/console/counter/{id}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        for text in ["张三", "1101**********4477", &key, &certificate, "有效", "尚未办理过柜台业务"] {
            assert!(page.body.contains(text), "the counter page lacks {text}: {}", page.body);
        }
        assert!(!page.body.contains(ID_NUMBER), "the ID number is masked");
        for form in ["unlock_pin", "renew", "reissue", "revoke"] {
            assert!(page.body.contains(&format!("id=\"service-{form}\"")), "{form}");
        }
        assert!(!page.body.contains("id=\"service-activate\""), "already activated");
        for word in ["密钥泄露", "停止使用", "信息变更", "已被替代", "居民身份证原件", "已核验证件原件与本人一致"]
        {
            assert!(page.body.contains(word), "{word}");
        }

        // PIN码解锁: the box must be ticked and the number must be the applicant's.
        let unlock = format!("/console/counter/{id}/unlock_pin");
        let r = counter.post_form(&unlock, &[("document", "居民身份证原件"), ("id_number", ID_NUMBER)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("请核验证件原件与本人一致"), "{}", r.body);
        let wrong = "11010519491231002X";
        let r = counter
            .post_form(&unlock, &[("document", "居民身份证原件"), ("id_number", wrong), ("verified", "1")])
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("身份证号码与订单申请人不一致"), "{}", r.body);
        assert!(!r.body.contains(wrong), "the typed number is not shown again");
        assert_eq!(pin_messages(&h, PHONE).await.len(), 1);
        let r = counter
            .post_form(
                &unlock,
                &[
                    ("document", "居民身份证原件"),
                    ("id_number", ID_NUMBER),
                    ("note", "PIN码输错锁定"),
                    ("verified", "1"),
                ],
            )
            .await;
        r.assert_redirect(&format!("/console/counter/{id}?ok=unlock_pin"));
        let done = counter.get(r.location.as_deref().unwrap()).await;
        assert!(done.body.contains("PIN码已通过短信发送给申请人"), "{}", done.body);
        assert!(done.body.contains("PIN码输错锁定") && done.body.contains("wang.fang"), "the record");
        let pins = wait_pins(&h, PHONE, 2).await;
        assert_eq!(pins.len(), 2, "a second PIN: {pins:?}");
        let pin: String = pins[0].split("PIN码为").nth(1).unwrap().chars().take_while(char::is_ascii_digit).collect();
        assert!(!pin.is_empty() && !done.body.contains(&format!("PIN码为{pin}")), "staff never see a PIN");

        // 证书注销 with a reason; the certificate is revoked and the page says so.
        let r = counter
            .post_form(
                &format!("/console/counter/{id}/revoke"),
                &[
                    ("reason", "key_compromise"),
                    ("document", "居民身份证原件"),
                    ("id_number", ID_NUMBER),
                    ("verified", "1"),
                ],
            )
            .await;
        r.assert_redirect(&format!("/console/counter/{id}?ok=revoke"));
        let cert = h.server.app.store().certificate(&certificate).await.unwrap().unwrap();
        assert_eq!(cert.status, CertificateStatus::Revoked);
        let page = counter.get(r.location.as_deref().unwrap()).await;
        assert!(page.body.contains("证书已注销") && page.body.contains("密钥泄露"), "{}", page.body);
        assert!(!page.body.contains("id=\"service-unlock_pin\""), "no PIN unlock for a revoked certificate");
        assert!(page.body.contains("id=\"service-reissue\""), "a new key can still be made");

        // Without the token, nothing happens.
        let r = counter.post_form_raw(&format!("/console/counter/{id}/renew"), &[("verified", "1")]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        // 补办: a new key with a new certificate, in use at once; its PIN by SMS.
        let check = [("document", "居民身份证原件"), ("id_number", ID_NUMBER), ("verified", "1")];
        let r = counter.post_form(&format!("/console/counter/{id}/reissue"), &check).await;
        r.assert_redirect(&format!("/console/counter/{id}?ok=reissue"));
        let (new_key, new_certificate) = current_key(&h, &id).await;
        assert_ne!(new_key, key);
        let cert = h.server.app.store().certificate(&new_certificate).await.unwrap().unwrap();
        assert_eq!(cert.status, CertificateStatus::Active);
        wait_pins(&h, PHONE, 3).await;
        let page = counter.get(r.location.as_deref().unwrap()).await;
        assert!(page.body.contains("已补办新UKEY") && page.body.contains(&new_key), "{}", page.body);

        // 续期 on the new key: another certificate, the previous one superseded, a new PIN.
        let r = counter.post_form(&format!("/console/counter/{id}/renew"), &check).await;
        r.assert_redirect(&format!("/console/counter/{id}?ok=renew"));
        let (same_key, renewed) = current_key(&h, &id).await;
        assert_eq!(same_key, new_key);
        assert_ne!(renewed, new_certificate);
        let old = h.server.app.store().certificate(&new_certificate).await.unwrap().unwrap();
        assert_eq!(old.status, CertificateStatus::Revoked);
        wait_pins(&h, PHONE, 4).await;

        let audit = audit_text(&h).await;
        for action in ["counter.unlock_pin", "counter.revoke", "counter.reissue", "counter.renew"] {
            assert!(audit.contains(&format!("staff:wang.fang {action} order:{id}")), "{action}: {audit}");
        }
        assert!(!audit.contains(ID_NUMBER) && !audit.contains(&pin), "no ID number or PIN in the audit trail");
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_counter_activates_a_shipped_key_in_person() {
    for backend in backends() {
        let h = start(backend).await;
        let (_, id) = submitted(&h, PHONE).await;
        ship_order_as_staff(&h, &id).await;
        let counter = console_login(&h, "wang.fang", "counter").await;
        let page = counter.get(&format!("/console/counter/{id}")).await;
        assert!(page.body.contains("id=\"service-activate\""), "{}", page.body);
        assert!(page.body.contains("未启用(待激活)"), "the certificate is on hold");
        for other in ["unlock_pin", "renew", "reissue"] {
            assert!(!page.body.contains(&format!("id=\"service-{other}\"")), "{other} needs an activated key");
        }
        let r = counter
            .post_form(
                &format!("/console/counter/{id}/activate"),
                &[("document", "临时居民身份证原件"), ("id_number", ID_NUMBER), ("verified", "1")],
            )
            .await;
        r.assert_redirect(&format!("/console/counter/{id}?ok=activate"));
        assert_eq!(state(&h, &id).await, OrderState::Activated);
        wait_pins(&h, PHONE, 1).await;
        let page = counter.get(r.location.as_deref().unwrap()).await;
        assert!(page.body.contains("已完成柜台激活") && page.body.contains("临时居民身份证原件"), "{}", page.body);
        let r = counter
            .post_form(
                &format!("/console/counter/{id}/activate"),
                &[("document", "护照"), ("id_number", ID_NUMBER), ("verified", "1")],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("请选择证件类型"), "{}", r.body);
        h.server.stop().await;
    }
}
