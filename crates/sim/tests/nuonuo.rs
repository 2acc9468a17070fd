//! The real Nuonuo adapter against the stand-in: company and personal buyers, the
//! asynchronous result, the PDF, a repeated order number, a wrong secret, a scripted failure
//! and the push callback.

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use std::time::Duration;
use tokio::sync::{OnceCell, mpsc};
use yiqian_domain::Fen;
use yiqian_domain::identity::SocialCreditCode;
use yiqian_domain::invoice::InvoiceBuyer;
use yiqian_providers::ProviderError;
use yiqian_providers::invoice::{InvoiceIssuer, InvoiceRequest, InvoiceStatus};
use yiqian_providers::nuonuo::callback::{CallbackOutcome, parse_callback};
use yiqian_providers::nuonuo::{NuonuoConfig, NuonuoIssuer};
use yiqian_sim::RunningSim;
use yiqian_sim::accounts::SimAccounts;
use yiqian_sim::nuonuo::{STATUS_FAILED, STATUS_ISSUED};

static ACCOUNTS: OnceCell<SimAccounts> = OnceCell::const_new();

async fn accounts() -> &'static SimAccounts {
    ACCOUNTS
        .get_or_init(|| async {
            tokio::task::spawn_blocking(|| SimAccounts::generate().expect("stand-in accounts"))
                .await
                .expect("generation finished")
        })
        .await
}

async fn start() -> RunningSim {
    RunningSim::start(accounts().await).await.unwrap()
}

fn config(sim: &RunningSim, accounts: &SimAccounts, secret: &str, rate: &str) -> NuonuoConfig {
    let a = &accounts.nuonuo;
    let mut config = NuonuoConfig::new(
        a.app_key.clone(),
        secret,
        a.access_token.clone(),
        a.saler_tax_num.clone(),
        "测试开票员",
        "3040201990000000000",
        rate,
    )
    .unwrap()
    .with_base_url(format!("{}/open/v1/services", sim.base_url()))
    .unwrap();
    config.saler_tel = "0591-87654321".into();
    config.saler_address = "福州市鼓楼区五四路100号".into();
    config
}

async fn issuer(sim: &RunningSim) -> NuonuoIssuer {
    let a = accounts().await;
    NuonuoIssuer::new(config(sim, a, &a.nuonuo.app_secret, "0.06")).unwrap()
}

fn company() -> InvoiceBuyer {
    InvoiceBuyer::Company {
        name: "宜签科技有限公司".into(),
        tax_id: SocialCreditCode::parse("91350100M000100Y43").unwrap(),
    }
}

fn request(order_no: &str, buyer: InvoiceBuyer, amount: u64) -> InvoiceRequest {
    InvoiceRequest {
        order_no: order_no.into(),
        buyer,
        buyer_phone: None,
        amount: Fen(amount),
        goods_name: "个人数字证书".into(),
        invoice_date: "2026-01-01 10:00:00".into(),
    }
}

/// A tiny receiver for Nuonuo's callbacks: its URL and the bodies it got.
async fn callback_receiver() -> (String, mpsc::UnboundedReceiver<Bytes>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/nuonuo/callback",
        post(move |body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                "success"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/nuonuo/callback"), rx)
}

#[tokio::test]
async fn company_invoice_is_issued_with_a_pdf() {
    let sim = start().await;
    let nn = issuer(&sim).await;
    assert_eq!(nn.name(), "nuonuo");

    let serial = nn.request_invoice(&request("YQ20260101C1", company(), 15000)).await.unwrap();
    assert_eq!(serial.len(), 20);
    assert_eq!(nn.invoice_status(&serial).await.unwrap(), InvoiceStatus::InProgress);
    let InvoiceStatus::Issued { number, issued_at, pdf_url } = nn.invoice_status(&serial).await.unwrap() else {
        panic!("the second query sees the invoice issued");
    };
    assert_eq!(number.len(), 20);
    assert!(number.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(&number[2..5], "332");
    assert_eq!(issued_at.len(), 19);
    assert_eq!(pdf_url, format!("{}/sim/nuonuo/pdf/{serial}", sim.base_url()));

    let pdf = nn.fetch_pdf(&pdf_url).await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(String::from_utf8_lossy(&pdf).contains(&number));
    // Where poppler is installed, the PDF must open.
    if std::process::Command::new("pdfinfo").arg("-v").output().is_ok() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("invoice.pdf");
        std::fs::write(&path, &pdf).unwrap();
        let info = std::process::Command::new("pdfinfo").arg(&path).output().unwrap();
        assert!(info.status.success(), "{}", String::from_utf8_lossy(&info.stderr));
        let stdout = String::from_utf8_lossy(&info.stdout).into_owned();
        let pages = stdout.lines().find_map(|l| l.strip_prefix("Pages:")).map(str::trim);
        assert_eq!(pages, Some("1"), "{stdout}");
        if let Ok(text) = std::process::Command::new("pdftotext").arg(&path).arg("-").output() {
            assert!(String::from_utf8_lossy(&text.stdout).contains(&number), "the number is readable text");
        }
    }

    let invoices = sim.sim.nuonuo.invoices();
    assert_eq!(invoices.len(), 1);
    let i = &invoices[0];
    assert_eq!(i.buyer_name, "宜签科技有限公司");
    assert_eq!(i.buyer_tax_num.as_deref(), Some("91350100M000100Y43"));
    assert_eq!(i.natural_person_flag, None);
    assert_eq!((i.tax_included, i.tax_excluded, i.tax), (Fen(15000), Fen(14151), Fen(849)));
    assert_eq!(i.tax_rate, "0.06");
    assert_eq!(i.status, STATUS_ISSUED);
    assert_eq!(i.order["pushMode"], "-1");
    assert_eq!(i.order["invoiceLine"], "pc");
    assert_eq!(i.order["salerTel"], "0591-87654321");

    // A page that is not a PDF is refused.
    let err = nn.fetch_pdf(&format!("{}/sim/nuonuo", sim.base_url())).await.unwrap_err();
    assert!(matches!(err, ProviderError::Rejected { .. }), "{err:?}");
    assert!(nn.fetch_pdf(&format!("{}/sim/nuonuo/pdf/00000000000000000000", sim.base_url())).await.is_err());
}

#[tokio::test]
async fn personal_invoice_carries_no_tax_number() {
    let sim = start().await;
    let nn = issuer(&sim).await;
    let serial = nn
        .request_invoice(&request("YQ20260101P1", InvoiceBuyer::Personal { name: "张三".into() }, 15000))
        .await
        .unwrap();
    let i = sim.sim.nuonuo.invoices().into_iter().find(|i| i.serial == serial).unwrap();
    assert_eq!(i.buyer_name, "张三");
    assert_eq!(i.buyer_tax_num, None);
    assert!(i.order.get("buyerTaxNum").is_none());
    assert_eq!(i.natural_person_flag.as_deref(), Some("0"));
}

#[tokio::test]
async fn a_repeated_order_number_returns_the_first_serial() {
    let sim = start().await;
    let nn = issuer(&sim).await;
    let first = nn.request_invoice(&request("YQ20260101D1", company(), 15000)).await.unwrap();
    let again = nn.request_invoice(&request("YQ20260101D1", company(), 15000)).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(sim.sim.nuonuo.invoices().len(), 1);
}

#[tokio::test]
async fn a_wrong_secret_is_refused() {
    let sim = start().await;
    let a = accounts().await;
    let nn = NuonuoIssuer::new(config(&sim, a, "SDWRONGSECRET0000", "0.06")).unwrap();
    let err = nn.request_invoice(&request("YQ20260101W1", company(), 15000)).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Rejected { provider: "nuonuo", detail } if detail.contains("070301")),
        "{err:?}"
    );
    assert!(sim.sim.nuonuo.invoices().is_empty());
    assert!(!nn.invoice_status("22072015181902023731").await.unwrap_err().is_transient());
}

#[tokio::test]
async fn a_scripted_failure_ends_failed_with_its_cause_and_calls_back() {
    let sim = start().await;
    let a = accounts().await;
    let (url, mut bodies) = callback_receiver().await;
    let nn = NuonuoIssuer::new(config(&sim, a, &a.nuonuo.app_secret, "0.06").with_callback_url(url).unwrap()).unwrap();
    sim.sim.nuonuo.fail_next("购方名称与税号不匹配");
    let serial = nn.request_invoice(&request("YQ20260101F1", company(), 15000)).await.unwrap();
    assert_eq!(nn.invoice_status(&serial).await.unwrap(), InvoiceStatus::InProgress);
    assert_eq!(
        nn.invoice_status(&serial).await.unwrap(),
        InvoiceStatus::Failed { reason: "购方名称与税号不匹配".into() }
    );
    assert_eq!(sim.sim.nuonuo.invoices()[0].status, STATUS_FAILED);
    let body = tokio::time::timeout(Duration::from_secs(5), bodies.recv()).await.unwrap().unwrap();
    let hint = parse_callback(&body).unwrap();
    assert_eq!((hint.order_no.as_str(), hint.outcome), ("YQ20260101F1", CallbackOutcome::Failed));

    // Only the next request fails.
    let next = nn.request_invoice(&request("YQ20260101F2", company(), 15000)).await.unwrap();
    nn.invoice_status(&next).await.unwrap();
    assert!(matches!(nn.invoice_status(&next).await.unwrap(), InvoiceStatus::Issued { .. }));
}

#[tokio::test]
async fn the_callback_is_posted_once_issued() {
    let sim = start().await;
    let a = accounts().await;
    let (url, mut bodies) = callback_receiver().await;
    let nn = NuonuoIssuer::new(config(&sim, a, &a.nuonuo.app_secret, "0.06").with_callback_url(url.clone()).unwrap())
        .unwrap();
    let serial = nn.request_invoice(&request("YQ20260101K1", company(), 15000)).await.unwrap();
    assert_eq!(sim.sim.nuonuo.invoices()[0].callback_url.as_deref(), Some(url.as_str()));
    assert!(bodies.try_recv().is_err(), "nothing is pushed before the issuance ends");
    assert_eq!(nn.invoice_status(&serial).await.unwrap(), InvoiceStatus::InProgress);

    let body = tokio::time::timeout(Duration::from_secs(5), bodies.recv()).await.unwrap().unwrap();
    let hint = parse_callback(&body).unwrap();
    assert_eq!(hint.order_no, "YQ20260101K1");
    assert_eq!(hint.serial.as_deref(), Some(serial.as_str()));
    assert_eq!(hint.outcome, CallbackOutcome::Issued);
    assert!(matches!(nn.invoice_status(&serial).await.unwrap(), InvoiceStatus::Issued { .. }));
    for _ in 0..50 {
        if sim.sim.nuonuo.invoices()[0].callbacks_delivered == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim.sim.nuonuo.invoices()[0].callbacks_delivered, 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(bodies.try_recv().is_err(), "one callback only");
}

#[tokio::test]
async fn edge_amounts_and_rates_are_accepted_by_the_stand_in() {
    let sim = start().await;
    let a = accounts().await;
    for (n, (rate, fen, excluded, tax)) in
        [("0.13", 1u64, 1u64, 0u64), ("0.13", 10000, 8850, 1150), ("0", 10000, 10000, 0), ("0.06", 100, 94, 6)]
            .into_iter()
            .enumerate()
    {
        let nn = NuonuoIssuer::new(config(&sim, a, &a.nuonuo.app_secret, rate)).unwrap();
        let serial = nn.request_invoice(&request(&format!("YQ20260101E{n}"), company(), fen)).await.unwrap();
        let i = sim.sim.nuonuo.invoices().into_iter().find(|i| i.serial == serial).unwrap();
        assert_eq!((i.tax_included, i.tax_excluded, i.tax), (Fen(fen), Fen(excluded), Fen(tax)), "{rate} {fen}");
    }
}

#[tokio::test]
async fn the_settle_control_ends_an_issuance_without_a_query() {
    let sim = start().await;
    let nn = issuer(&sim).await;
    let serial = nn.request_invoice(&request("YQ20260101S1", company(), 15000)).await.unwrap();
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/sim/nuonuo/settle", sim.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("serial={serial}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(matches!(nn.invoice_status(&serial).await.unwrap(), InvoiceStatus::Issued { .. }));
    let page = reqwest::get(format!("{}/sim/nuonuo", sim.base_url())).await.unwrap().text().await.unwrap();
    assert!(page.contains(&serial));
}
