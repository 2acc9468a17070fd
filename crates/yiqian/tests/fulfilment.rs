//! The life of an order after 受理成功, on SQLite and PostgreSQL: review (approve, send back,
//! reject), issuance onto a software UKEY in a batch, the parcel papers PDF (confirmation form
//! and user guide), shipping, activation over the applicant API (automatic pass and reviewer
//! decision), the PIN sent by SMS exactly once, the certificate's OCSP status before and after,
//! the e-invoice, counter services, and each staff role kept to its own work.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use yiqian_app::AppError;
use yiqian_app::counter::IdentityCheck;
use yiqian_app::staff::StaffMember;
use yiqian_domain::staff::{Role, StaffName};
use yiqian_store::fulfilment::PersonalisedAt;

const ID_NUMBER: &str = "110101199003074477";

async fn staff(h: &Harness, name: &str, role: Role) -> StaffMember {
    let s = h.server.app.add_staff(name, role, "correct horse battery staple").await.unwrap();
    StaffMember { id: s.id, name: StaffName::parse(name).unwrap(), role }
}

struct Team {
    reviewer: StaffMember,
    fulfilment: StaffMember,
    finance: StaffMember,
    counter: StaffMember,
    auditor: StaffMember,
    admin: StaffMember,
}

async fn team(h: &Harness) -> Team {
    Team {
        reviewer: staff(h, "reviewer1", Role::Reviewer).await,
        fulfilment: staff(h, "maker1", Role::Fulfilment).await,
        finance: staff(h, "finance1", Role::Finance).await,
        counter: staff(h, "counter1", Role::Counter).await,
        auditor: staff(h, "auditor1", Role::Auditor).await,
        admin: staff(h, "admin1", Role::Admin).await,
    }
}

/// An applicant with a submitted application; returns (token, order id).
async fn submitted(h: &Harness, phone: &str) -> (String, String) {
    let token = h.login(phone).await;
    let id = h.create_order(&token).await;
    h.pay(&token, &id).await;
    let done = h.complete_materials(&token, &id, phone).await;
    assert_eq!(done["state"], "submitted");
    (token, id)
}

/// Runs the outbox until the order reaches `state` (as the applicant sees it).
async fn issue(h: &Harness, t: &Team, token: &str, id: &str) {
    let batch =
        h.server.app.start_issuance_batch(&t.fulfilment, &[id.to_owned()], PersonalisedAt::Server).await.unwrap();
    h.wait_for_state(token, id, "issued").await;
    let progress = h.server.app.batch_progress(&t.fulfilment, &batch).await.unwrap();
    assert!(progress.is_complete(), "{progress:?}");
}

fn activation_code(dossier: &yiqian_app::review::Dossier) -> String {
    dossier.fulfilment.as_ref().unwrap().activation_code.clone()
}

/// Activates over the applicant API: consent, digits, video. Returns the answer and the
/// challenge answered.
async fn activate(h: &Harness, token: &str, code: &str) -> (serde_json::Value, String) {
    let base = format!("/api/v1/activation/{code}");
    h.post(Some(token), &format!("{base}/consent"), json!({"agreed": true})).await.ok();
    let c = h.post(Some(token), &format!("{base}/challenge"), json!({})).await.ok();
    let challenge = c["challenge_id"].as_str().unwrap().to_owned();
    (send_video(h, token, code, &challenge).await, challenge)
}

async fn send_video(h: &Harness, token: &str, code: &str, challenge: &str) -> serde_json::Value {
    let video = reqwest::multipart::Form::new()
        .text("challenge_id", challenge.to_owned())
        .part("video", reqwest::multipart::Part::bytes(mp4()).file_name("activation.mp4"));
    h.post_form(token, &format!("/api/v1/activation/{code}/video"), video).await.ok()
}

/// `openssl ocsp` about the certificate `serial`, status line only (SM2: read with -noverify).
async fn ocsp_status(h: &Harness, dir: &Path, serial: &str) -> String {
    let ca = h.server.app.issuing_ca().await.unwrap();
    std::fs::write(dir.join("ca.pem"), yiqian_pki::to_pem("CERTIFICATE", &ca.certificate_der)).unwrap();
    let cert = h.server.app.store().certificate(serial).await.unwrap().unwrap();
    std::fs::write(dir.join("ee.pem"), yiqian_pki::to_pem("CERTIFICATE", &cert.der)).unwrap();
    let url = h.url("/pki/ocsp");
    let d = dir.to_owned();
    let (_, out) = tokio::task::spawn_blocking(move || {
        run_openssl(&d, &["ocsp", "-issuer", "ca.pem", "-cert", "ee.pem", "-url", url.as_str(), "-noverify"])
    })
    .await
    .unwrap();
    out
}

async fn wait_ocsp(h: &Harness, dir: &Path, serial: &str, wanted: &str) -> String {
    let mut last = String::new();
    for _ in 0..60 {
        h.server.app.deliver_due().await.unwrap();
        last = ocsp_status(h, dir, serial).await;
        if last.contains(wanted) {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("OCSP never said {wanted:?}: {last}");
}

fn pin_of(text: &str) -> String {
    let tail = text.split("PIN码为").nth(1).expect("a PIN SMS");
    tail.chars().take_while(|c| c.is_ascii_digit()).collect()
}

async fn pin_messages(h: &Harness, phone: &str) -> Vec<String> {
    h.server.app.deliver_due().await.unwrap();
    let inbox = h.server.app.store().sandbox_sms(Some(phone), 1000).await.unwrap();
    inbox.into_iter().map(|m| m.text).filter(|t| t.contains("PIN码为")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_goes_from_accepted_to_activated_with_its_pin_and_invoice() {
    for backend in backends() {
        let h = start_configured(backend, false, |c| c.sandbox_face_check = "pass".into()).await;
        let t = team(&h).await;
        let phone = "13800138000";
        let (token, id) = submitted(&h, phone).await;

        // Review: the queue shows it; the dossier has the evidence side by side.
        let queue = h.server.app.review_queue(&t.reviewer, 50).await.unwrap();
        assert!(queue.iter().any(|r| r.order.id.as_str() == id));
        let d = h.server.app.dossier(&t.reviewer, &id).await.unwrap();
        assert_eq!(d.applicant_name(), Some("张三"));
        assert!(d.liveness.is_some() && d.signature_blob.is_some() && d.address.is_some());
        let front = h.server.app.staff_blob(&t.reviewer, &id, &d.id_card.as_ref().unwrap().front_blob).await.unwrap();
        assert_eq!(front.info.kind, "id_front");
        h.server.app.approve_application(&t.reviewer, &id).await.unwrap();
        assert_eq!(h.order(&token, &id).await["status_word"], "待发货");
        assert!(h.sms_containing(phone, "已审核通过").await.is_some());

        // Issuance onto the key: on hold until activation.
        issue(&h, &t, &token, &id).await;
        let d = h.server.app.dossier(&t.fulfilment, &id).await.unwrap();
        let key = d.tokens.last().unwrap().clone();
        let cert = h.server.app.store().certificate(&key.certificate_serial).await.unwrap().unwrap();
        assert_eq!(cert.status, yiqian_store::certificates::CertificateStatus::Hold);
        assert!(pin_messages(&h, phone).await.is_empty(), "no PIN before activation");
        let dir = tempfile::tempdir().unwrap();
        let before = wait_ocsp(&h, dir.path(), &key.certificate_serial, "revoked").await;
        assert!(before.contains("certificateHold"), "{before}");

        // The parcel papers: the confirmation form's two pages (the applicant's name, the order
        // number, the certificate serial), then the one-page user guide.
        let pdf = h.server.app.confirmation_forms(&t.fulfilment, std::slice::from_ref(&id)).await.unwrap();
        check_pdf(dir.path(), &pdf, &["张三", &id, &key.certificate_serial, "个人数字证书使用说明"], 3);

        // Refund is still possible before shipping, but not after.
        h.server.app.ship_order(&t.fulfilment, &id, "顺丰速运", "SF1234567890").await.unwrap();
        let o = h.order(&token, &id).await;
        assert_eq!(o["status_word"], "已发货");
        assert!(h.sms_containing(phone, "SF1234567890").await.is_some());
        let r = h.post(Some(&token), &format!("/api/v1/orders/{id}/refund"), json!({})).await;
        assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "refund_after_shipping"), "{backend:?}");
        h.server.app.record_form_returned(&t.fulfilment, &id).await.unwrap();

        // Activation: the face check passes; the certificate is released and the PIN goes
        // out once, however often the activation is submitted.
        let code = activation_code(&d);
        let (a, challenge) = activate(&h, &token, &code).await;
        assert_eq!(a["state"], "activated", "{a}");
        // The same video sent again (a double tap, a retry after a lost answer).
        let again = send_video(&h, &token, &code, &challenge).await;
        assert_eq!(again["state"], "activated");
        let after = wait_ocsp(&h, dir.path(), &key.certificate_serial, ": good").await;
        assert!(after.contains("good"), "{after}");
        assert!(h.sms_containing(phone, "PIN码为").await.is_some());
        let pins = pin_messages(&h, phone).await;
        assert_eq!(pins.len(), 1, "one PIN SMS: {pins:?}");
        assert_eq!(pin_of(&pins[0]).len(), 8);
        // The escrow copy is gone; the SO PIN stays for the counter.
        // (Destroyed right after the SMS is handed over: wait for that unit of work.)
        let store = h.server.app.store().clone();
        h.poll_until("the user PIN's escrow copy destroyed", || async {
            let mut tx = store.read().await.unwrap();
            let escrow = tx.escrowed_pin(&key.serial, yiqian_store::fulfilment::PinKind::User).await.unwrap().unwrap();
            escrow.sealed.is_none().then_some(())
        })
        .await;

        // E-invoice: requested by the applicant, issued by finance, downloaded.
        let inv = h
            .post(Some(&token), &format!("/api/v1/orders/{id}/invoice"), json!({"kind": "personal", "name": "张三"}))
            .await
            .ok();
        assert_eq!(inv["state"], "requested", "{inv}");
        let queue =
            h.server.app.invoice_queue(&t.finance, yiqian_domain::invoice::InvoiceState::Requested, 50).await.unwrap();
        assert!(queue.iter().any(|i| i.order.as_str() == id));
        let invoice_pdf = b"%PDF-1.4\n% an invoice\n".to_vec();
        h.server.app.issue_invoice(&t.finance, &id, "25110000000012345678", &invoice_pdf).await.unwrap();
        assert!(h.sms_containing(phone, "电子发票已开具").await.is_some());
        let got =
            h.http.get(h.url(&format!("/api/v1/orders/{id}/invoice.pdf"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(got.status(), StatusCode::OK);
        assert_eq!(got.bytes().await.unwrap().to_vec(), invoice_pdf);

        // Counter: a PIN unlock sends a new PIN; a revocation shows in OCSP.
        let wrong = IdentityCheck { id_number: "11010119900307449X".into(), ..Default::default() };
        let e = h.server.app.counter_unlock_pin(&t.counter, &id, &wrong).await.unwrap_err();
        assert_eq!(e.code(), "identity_mismatch");
        let check =
            IdentityCheck {
                id_number: ID_NUMBER.into(), document: "居民身份证原件".into(), note: String::new()
            };
        h.server.app.counter_unlock_pin(&t.counter, &id, &check).await.unwrap();
        let mut pins = pin_messages(&h, phone).await;
        for _ in 0..50 {
            if pins.len() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            pins = pin_messages(&h, phone).await;
        }
        assert_eq!(pins.len(), 2, "{pins:?}");
        h.server.app.counter_revoke(&t.counter, &id, &check, "key_compromise").await.unwrap();
        let revoked = wait_ocsp(&h, dir.path(), &key.certificate_serial, "keyCompromise").await;
        assert!(revoked.contains("revoked"), "{revoked}");

        let verdict = h.server.app.store().verify_audit().await.unwrap();
        assert!(matches!(verdict, yiqian_store::audit::AuditVerdict::Intact { .. }), "{verdict:?}");
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_back_reject_and_activation_review() {
    for backend in backends() {
        let h = start(backend).await;
        let t = team(&h).await;

        // Send back one step: the applicant gets an SMS, the step reopens, resubmission works.
        let phone = "13900139000";
        let (token, id) = submitted(&h, phone).await;
        let e = h.server.app.send_back_application(&t.reviewer, &id, "id_card", " ").await.unwrap_err();
        assert_eq!(e.code(), "reason_required");
        h.server.app.send_back_application(&t.reviewer, &id, "signature", "签名不清晰").await.unwrap();
        let o = h.order(&token, &id).await;
        assert_eq!(o["state"], "returned");
        assert!(h.sms_containing(phone, "签名不清晰").await.is_some());
        let sig = reqwest::multipart::Form::new()
            .part("image", reqwest::multipart::Part::bytes(png()).file_name("signature.png"))
            .text("strokes", strokes());
        h.post_form(&token, &format!("/api/v1/orders/{id}/signature"), sig).await.ok();
        h.post(Some(&token), &format!("/api/v1/orders/{id}/submit"), json!({})).await.ok();
        assert_eq!(h.order(&token, &id).await["state"], "submitted");

        // Activation left for review (the sandbox decides nothing): 已激活, PIN pending,
        // then the reviewer approves and the PIN goes out once.
        h.server.app.approve_application(&t.reviewer, &id).await.unwrap();
        issue(&h, &t, &token, &id).await;
        h.server.app.ship_order(&t.fulfilment, &id, "中国邮政EMS", "EA123456789CN").await.unwrap();
        let d = h.server.app.dossier(&t.reviewer, &id).await.unwrap();
        let (a, _) = activate(&h, &token, &activation_code(&d)).await;
        assert_eq!(a["state"], "activation_review", "{a}");
        assert_eq!(h.order(&token, &id).await["status_word"], "已激活");
        assert!(h.sms_containing(phone, "审核通过后PIN码").await.is_some());
        assert!(pin_messages(&h, phone).await.is_empty());
        let queue = h.server.app.activation_queue(&t.reviewer, 50).await.unwrap();
        assert!(queue.iter().any(|r| r.order.id.as_str() == id));
        h.server.app.approve_activation(&t.reviewer, &id).await.unwrap();
        assert!(h.server.app.approve_activation(&t.reviewer, &id).await.is_err(), "decided once");
        assert!(h.sms_containing(phone, "PIN码为").await.is_some());
        assert_eq!(pin_messages(&h, phone).await.len(), 1);

        // Reject: the refund starts and completes; one SMS says why and that money goes back.
        let phone2 = "13700137000";
        let (token2, id2) = {
            let token = h.login(phone2).await;
            let id = h.create_order(&token).await;
            h.pay(&token, &id).await;
            // A different applicant needs a different ID number.
            let m = Materials { id_number: "11010519900307005X".into(), ..Materials::default() };
            h.complete_materials_with(&token, &id, phone2, m).await;
            (token, id)
        };
        h.server.app.reject_application(&t.reviewer, &id2, "证件照片不是本人").await.unwrap();
        h.wait_for_state(&token2, &id2, "refunded").await;
        assert!(h.sms_containing(phone2, "证件照片不是本人").await.is_some());
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_role_does_only_its_own_work() {
    let h = start(yiqian_store::Backend::Sqlite).await;
    let t = team(&h).await;
    let app = &h.server.app;
    let (_token, id) = submitted(&h, "13600136000").await;
    let forbidden = |r: Result<(), AppError>| matches!(r, Err(AppError::Forbidden));
    let check = IdentityCheck { id_number: ID_NUMBER.into(), ..Default::default() };
    for s in [&t.fulfilment, &t.finance, &t.counter, &t.auditor, &t.admin] {
        assert!(forbidden(app.approve_application(s, &id).await.map(|_| ())), "{:?} approved", s.role);
        assert!(forbidden(app.review_queue(s, 10).await.map(|_| ())), "{:?} saw the review queue", s.role);
    }
    for s in [&t.reviewer, &t.finance, &t.counter, &t.auditor, &t.admin] {
        assert!(
            forbidden(app.start_issuance_batch(s, std::slice::from_ref(&id), PersonalisedAt::Server).await.map(|_| ())),
            "{:?} issued",
            s.role
        );
        assert!(
            forbidden(app.ship_order(s, &id, "顺丰速运", "SF1234567890").await.map(|_| ())),
            "{:?} shipped",
            s.role
        );
    }
    for s in [&t.reviewer, &t.fulfilment, &t.counter, &t.auditor, &t.admin] {
        assert!(
            forbidden(app.issue_invoice(s, &id, "25110000000012345678", b"%PDF-").await.map(|_| ())),
            "{:?}",
            s.role
        );
    }
    for s in [&t.reviewer, &t.fulfilment, &t.finance, &t.auditor, &t.admin] {
        assert!(forbidden(app.counter_unlock_pin(s, &id, &check).await), "{:?} did counter work", s.role);
    }
    for s in [&t.auditor, &t.admin] {
        assert!(forbidden(app.dossier(s, &id).await.map(|_| ())), "{:?} read personal data", s.role);
    }
    h.server.stop().await;
}
