//! The fulfilment desk (制证发货) and the invoice desk (发票) of the staff console, over HTTP
//! on SQLite and (when configured) PostgreSQL: two approved applications issued in one batch
//! whose page counts up to 已完成 2 / 2, their parcel papers (confirmation forms and user
//! guides) printed as one PDF, one shipped (the applicant gets the waybill by SMS) and its
//! signed form recorded as returned, refusals shown in Chinese on the page, each desk closed to
//! other roles; then an invoice requested by the applicant, issued by finance with an uploaded
//! PDF, and downloaded.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use yiqian_app::counter::IdentityCheck;
use yiqian_app::staff::Role;
use yiqian_domain::OrderState;
use yiqian_store::audit::AuditVerdict;

const ZHANG_ID: &str = "110101199003074477";
const ZHANG_PHONE: &str = "13800138001";
const OTHER_ID: &str = "11010519900307005X";
const OTHER_PHONE: &str = "13800138002";

/// An applicant whose application is submitted with the ID number `id_number`; returns
/// (token, order id). Like `complete_materials`, which always uses one ID number.
async fn submitted(h: &Harness, phone: &str, id_number: &str) -> (String, String) {
    let token = h.login(phone).await;
    let id = h.create_order(&token).await;
    h.pay(&token, &id).await;
    let m = Materials { id_number: id_number.into(), ..Materials::default() };
    let done = h.complete_materials_with(&token, &id, phone, m).await;
    assert_eq!(done["state"], "submitted", "{done}");
    (token, id)
}

/// A GET with the console session whose body is kept as bytes (PDFs).
async fn console_bytes(
    c: &ConsoleClient,
    req: reqwest::RequestBuilder,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let r = req.header("cookie", format!("yiqian_console={}", c.token)).send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.bytes().await.unwrap().to_vec())
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Follows a redirect of the console and returns the page it leads to.
async fn follow(c: &ConsoleClient, r: &ConsolePage) -> ConsolePage {
    let to = r.location.clone().unwrap_or_else(|| panic!("no redirect: {} {}", r.status, r.body));
    let page = c.get(&to).await;
    assert_eq!(page.status, StatusCode::OK, "{to}: {}", page.body);
    page
}

async fn audit_intact(h: &Harness) {
    match h.server.app.store().verify_audit().await.unwrap() {
        AuditVerdict::Intact { .. } => {}
        broken => panic!("audit chain broken on {:?}: {broken:?}", h.backend),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fulfilment_staff_issue_print_ship_and_record_returns_on_the_console() {
    for backend in backends() {
        let h = start(backend).await;
        let app = &h.server.app;
        let (zhang_token, zhang) = submitted(&h, ZHANG_PHONE, ZHANG_ID).await;
        let (_, other) = submitted(&h, OTHER_PHONE, OTHER_ID).await;
        let reviewer = staff(Role::Reviewer, "rev1");
        app.approve_application(&reviewer, &zhang).await.unwrap();
        app.approve_application(&reviewer, &other).await.unwrap();
        let desk = console_login(&h, "zhang.fa", "fulfilment").await;

        // 待制证 lists both, with boxes to tick; 全选 ticks them all.
        let page = desk.get("/console/fulfilment").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        for needle in ["待制证", "待发货", "已发货", "批量制证", "全选", "张三", zhang.as_str(), other.as_str()]
        {
            assert!(page.body.contains(needle), "{needle:?} not on the page: {}", page.body);
        }
        assert!(page.body.contains(&format!("name=\"orders\" value=\"{zhang}\"")), "{}", page.body);
        assert!(!page.body.contains("checked"), "nothing ticked at first");
        let all = desk.get("/console/fulfilment?tab=approved&all=1").await;
        assert_eq!(all.body.matches("checked").count(), 2, "{}", all.body);
        assert!(all.body.contains("取消全选"));

        // Nothing ticked: told so on the page.
        let none = desk.post_form("/console/fulfilment/batches", &[]).await;
        assert_eq!(none.status, StatusCode::BAD_REQUEST, "{}", none.body);
        assert!(none.body.contains("请选择要制证的订单"), "{}", none.body);

        // 批量制证 for both: the batch page counts up while the worker personalises the keys.
        let r = desk.post_form("/console/fulfilment/batches", &[("orders", &zhang), ("orders", &other)]).await;
        r.assert_redirect("/console/fulfilment/batches/");
        let batch_path = r.location.clone().unwrap();
        let mut page = follow(&desk, &r).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !page.body.contains("已完成 2 / 2") {
            assert!(
                page.body.contains("http-equiv=\"refresh\" content=\"2\""),
                "refreshes while running: {}",
                page.body
            );
            assert!(page.body.contains("<progress"), "{}", page.body);
            assert!(std::time::Instant::now() < deadline, "batch not done within 60 s: {}", page.body);
            app.deliver_due().await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            page = desk.get(&batch_path).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        }
        assert!(!page.body.contains("http-equiv=\"refresh\""), "a finished batch stays put: {}", page.body);
        assert_eq!(page.body.matches("已制证").count(), 3, "two orders and the summary: {}", page.body);
        assert!(page.body.contains("value=\"2\" max=\"2\""), "{}", page.body);
        assert!(page.body.contains(&zhang) && page.body.contains(&other));
        assert!(page.body.contains("打印本批业务确认单"));
        for id in [&zhang, &other] {
            assert_eq!(stored_order(&h, id).await.order.state, OrderState::Issued);
        }

        // 待发货: both, with the couriers to choose from.
        let page = desk.get("/console/fulfilment?tab=issued").await;
        assert_eq!(page.status, StatusCode::OK);
        for needle in
            ["打印业务确认单", "确认发货", "顺丰速运", "中国邮政EMS", "未打印", zhang.as_str(), other.as_str()]
        {
            assert!(page.body.contains(needle), "{needle:?} not on the page: {}", page.body);
        }

        // The parcel papers of both in one PDF, shown in the browser: each order's two
        // confirmation-form copies, then its user guide.
        let url = format!("{}/console/fulfilment/forms", h.base);
        let fields = [("csrf", desk.csrf.as_str()), ("orders", zhang.as_str()), ("orders", other.as_str())];
        let (status, headers, pdf) = console_bytes(&desk, desk.http.post(&url).form(&fields)).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&pdf));
        assert_eq!(header(&headers, "content-type"), "application/pdf");
        let today = app.now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).format("%Y%m%d");
        let disposition = header(&headers, "content-disposition");
        assert!(disposition.starts_with("inline;") && disposition.contains(&today.to_string()), "{disposition}");
        assert!(pdf.starts_with(b"%PDF-"));
        let dir = tempfile::tempdir().unwrap();
        check_pdf(dir.path(), &pdf, &["张三", &zhang, &other, "个人数字证书使用说明"], 6);
        // A row's 打印 link: that order's three pages.
        let (status, headers, one) = console_bytes(&desk, desk.http.get(format!("{url}?order={zhang}"))).await;
        assert_eq!((status, header(&headers, "content-type")), (StatusCode::OK, "application/pdf"));
        check_pdf(dir.path(), &one, &[&zhang, "个人数字证书使用说明"], 3);
        // Printing is recorded; a form without the CSRF token is refused.
        assert!(desk.get("/console/fulfilment?tab=issued").await.body.contains("已打印"));
        let forged = desk.post_form_raw("/console/fulfilment/forms", &[("orders", &zhang)]).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);

        // A wrong waybill number: the reason in Chinese, what was typed kept, nothing shipped.
        let bad = desk
            .post_form(
                &format!("/console/fulfilment/orders/{other}/ship"),
                &[("courier", "京东物流"), ("tracking_no", "JD-12")],
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
        assert!(bad.body.contains("运单号应为8至30位字母或数字"), "{}", bad.body);
        assert!(bad.body.contains("value=\"JD-12\"") && bad.body.contains("<option value=\"京东物流\" selected"));
        assert_eq!(stored_order(&h, &other).await.order.state, OrderState::Issued);

        // Shipping one: 已发货, and the applicant has the waybill by SMS.
        let r = desk
            .post_form(
                &format!("/console/fulfilment/orders/{zhang}/ship"),
                &[("courier", "顺丰速运"), ("tracking_no", "sf1234567890")],
            )
            .await;
        r.assert_redirect("/console/fulfilment?tab=issued");
        let page = follow(&desk, &r).await;
        assert!(page.body.contains(&format!("订单 {zhang} 已发货")), "{}", page.body);
        assert!(!page.body.contains(&format!("data-order=\"{zhang}\"")), "no longer waiting: {}", page.body);
        assert_eq!(stored_order(&h, &zhang).await.order.state, OrderState::Shipped);
        assert!(h.sms_containing(ZHANG_PHONE, "SF1234567890").await.is_some(), "waybill SMS");
        assert_eq!(h.order(&zhang_token, &zhang).await["status_word"], "已发货");

        // 已发货: courier, waybill, time, and the signed form not back yet.
        let page = desk.get("/console/fulfilment?tab=shipped").await;
        for needle in ["顺丰速运", "SF1234567890", "未回寄", "登记回寄", zhang.as_str()] {
            assert!(page.body.contains(needle), "{needle:?} not on the page: {}", page.body);
        }
        assert!(!page.body.contains(&other), "not shipped: {}", page.body);
        // An order not shipped cannot have its form back.
        let early = desk.post_form(&format!("/console/fulfilment/orders/{other}/form-returned"), &[]).await;
        assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.body);
        assert!(early.body.contains("订单尚未发货,不能登记回寄"), "{}", early.body);
        // 登记回寄.
        let r = desk.post_form(&format!("/console/fulfilment/orders/{zhang}/form-returned"), &[]).await;
        r.assert_redirect("/console/fulfilment?tab=shipped");
        let page = follow(&desk, &r).await;
        assert!(page.body.contains(&format!("已登记订单 {zhang} 的业务确认单回寄")), "{}", page.body);
        assert!(page.body.contains("已回寄") && !page.body.contains("登记回寄</button>"), "{}", page.body);
        let id = yiqian_domain::OrderId::parse(&zhang).unwrap();
        let f = app.store().read().await.unwrap().fulfilment(&id).await.unwrap().unwrap();
        assert!(f.form_returned.is_some() && f.form_printed_at.is_some());

        // Other roles: refused.
        let reviewer = console_login(&h, "li.shen", "reviewer").await;
        for path in ["/console/fulfilment", "/console/fulfilment?tab=shipped", &batch_path, "/console/invoices"] {
            let page = reviewer.get(path).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}: {}", page.body);
            assert!(page.body.contains("您的角色无权访问此页面"), "{path}");
            assert!(!page.body.contains("href=\"/console/fulfilment\""), "not in the reviewer's navigation");
        }
        let refused = reviewer
            .post_form(
                &format!("/console/fulfilment/orders/{other}/ship"),
                &[("courier", "顺丰速运"), ("tracking_no", "SF1234567891")],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(stored_order(&h, &other).await.order.state, OrderState::Issued);
        assert_eq!(desk.get("/console/invoices").await.status, StatusCode::FORBIDDEN);

        audit_intact(&h).await;
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finance_issues_a_requested_invoice_by_uploading_its_pdf() {
    for backend in backends() {
        let h = start(backend).await;
        let app = &h.server.app;
        let (token, id) = submitted(&h, ZHANG_PHONE, ZHANG_ID).await;
        ship_order_as_staff(&h, &id).await;
        let check =
            IdentityCheck { id_number: ZHANG_ID.into(), document: "居民身份证原件".into(), note: String::new() };
        app.counter_activate(&staff(Role::Counter, "ctr1"), &id, &check).await.unwrap();
        let company = json!({"kind": "company", "name": "宜签科技有限公司", "tax_id": "91350100M000100Y43"});
        let r = h.post(Some(&token), &format!("/api/v1/orders/{id}/invoice"), company).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let finance = console_login(&h, "wang.cai", "finance").await;

        // 待开票: the request with its 抬头 and amount.
        let page = finance.get("/console/invoices").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let price = yiqian_domain::money::Fen(stored_order(&h, &id).await.order.price.0).yuan();
        for needle in ["待开票", "已开票", "单位", "宜签科技有限公司", "91350100M000100Y43", &price, &id, "上传并开具"]
        {
            assert!(page.body.contains(needle), "{needle:?} not on the page: {}", page.body);
        }
        assert!(page.body.contains("enctype=\"multipart/form-data\""));

        let path = format!("/console/invoices/{id}/issue");
        let upload = |no: &str, bytes: Vec<u8>| {
            finance
                .multipart()
                .text("invoice_no", no.to_owned())
                .part("pdf", reqwest::multipart::Part::bytes(bytes).file_name("invoice.pdf"))
        };
        // Not a PDF: refused in Chinese, the number kept.
        let r = finance.post_multipart(&path, upload("25110000000012345678", b"hello".to_vec())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(r.body.contains("请上传PDF格式的电子发票"), "{}", r.body);
        assert!(r.body.contains("value=\"25110000000012345678\""), "{}", r.body);
        // A bad number.
        let invoice_pdf = b"%PDF-1.4\n% an e-invoice\n%%EOF\n".to_vec();
        let r = finance.post_multipart(&path, upload("12", invoice_pdf.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("发票号码应为8至30位数字或字母"), "{}", r.body);
        // Without the CSRF token.
        let forged = reqwest::multipart::Form::new()
            .text("invoice_no", "25110000000012345678")
            .part("pdf", reqwest::multipart::Part::bytes(invoice_pdf.clone()).file_name("invoice.pdf"));
        assert_eq!(finance.post_multipart(&path, forged).await.status, StatusCode::FORBIDDEN);
        assert_eq!(
            app.store()
                .read()
                .await
                .unwrap()
                .invoice(&yiqian_domain::OrderId::parse(&id).unwrap())
                .await
                .unwrap()
                .unwrap()
                .state,
            yiqian_domain::invoice::InvoiceState::Requested
        );

        // The real one: 已开票, downloadable by finance and by the applicant, byte for byte.
        let r = finance.post_multipart(&path, upload("25110000000012345678", invoice_pdf.clone())).await;
        r.assert_redirect("/console/invoices?tab=requested");
        let page = follow(&finance, &r).await;
        assert!(page.body.contains("电子发票已开具"), "{}", page.body);
        assert!(!page.body.contains(&format!("data-order=\"{id}\"")), "{}", page.body);
        let page = finance.get("/console/invoices?tab=issued").await;
        let link = format!("/console/invoices/{id}.pdf");
        for needle in ["25110000000012345678", "宜签科技有限公司", "wang.cai", link.as_str(), "下载"] {
            assert!(page.body.contains(needle), "{needle:?} not on the page: {}", page.body);
        }
        let (status, headers, got) = console_bytes(&finance, finance.http.get(format!("{}{link}", h.base))).await;
        assert_eq!((status, header(&headers, "content-type")), (StatusCode::OK, "application/pdf"));
        assert_eq!(got, invoice_pdf);
        let got =
            h.http.get(h.url(&format!("/api/v1/orders/{id}/invoice.pdf"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(got.status(), StatusCode::OK);
        assert_eq!(got.bytes().await.unwrap().to_vec(), invoice_pdf);
        assert!(h.sms_containing(ZHANG_PHONE, "电子发票已开具").await.is_some());
        // Issued once only.
        let again = finance.post_multipart(&path, upload("25110000000012345679", invoice_pdf.clone())).await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        assert!(again.body.contains("该发票已开具"), "{}", again.body);
        // A made-up file name.
        assert_eq!(finance.get("/console/invoices/nothing.pdf").await.status, StatusCode::NOT_FOUND);

        audit_intact(&h).await;
        h.server.stop().await;
    }
}
