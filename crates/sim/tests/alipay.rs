//! The real Alipay adapter against the Alipay stand-in, in public-key and certificate modes:
//! payment through the cashier, the signed notification to a local receiver, queries, refunds
//! (and their repetition), closing, and the refusal of anything that does not check out.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::{Duration, Utc};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;
use yiqian_domain::payment::Channel;
use yiqian_domain::{Fen, OrderId, PaymentId, RefundId};
use yiqian_providers::ProviderError;
use yiqian_providers::alipay::notify::decode_form;
use yiqian_providers::alipay::sign::{NOTIFY_EXCLUDES, sign_content};
use yiqian_providers::alipay::{AlipayConfig, AlipayGateway, AlipayKeyMode, beijing_time};
use yiqian_providers::payment::{
    GatewayNotification, GatewayTrade, NotificationRejected, Payer, PaymentGateway, PaymentRequest, PaymentStart,
    RefundOutcome, RefundRequest, SignedNotification,
};
use yiqian_providers::rsa::{RsaSigner, RsaVerifier};
use yiqian_sim::RunningSim;
use yiqian_sim::accounts::SimAccounts;
use yiqian_sim::alipay::notify::form_body;
use yiqian_sim::alipay::{AnswerTamper, PayError, TradeStatus};

static ACCOUNTS: OnceCell<SimAccounts> = OnceCell::const_new();

async fn accounts() -> &'static SimAccounts {
    ACCOUNTS.get_or_init(|| async { tokio::task::spawn_blocking(SimAccounts::generate).await.unwrap().unwrap() }).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    PublicKey,
    Certificate,
}

type Received = Arc<Mutex<Vec<Result<GatewayNotification, NotificationRejected>>>>;

#[derive(Clone)]
struct ReceiverState {
    gateway: Arc<AlipayGateway>,
    received: Received,
    /// How many more notifications to refuse before acknowledging.
    refuse: Arc<AtomicUsize>,
}

/// Our webhook, as the service would run it: verify, then acknowledge or refuse.
async fn receive(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let headers =
        headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect();
    let result = state.gateway.verify_notification(&SignedNotification { headers, body: body.to_vec() }, Utc::now());
    let accepted = result.is_ok();
    state.received.lock().unwrap().push(result);
    let refuse = state.refuse.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let (status, content_type, body) =
        if accepted && !refuse { state.gateway.acknowledgement() } else { state.gateway.refusal() };
    (StatusCode::from_u16(status).unwrap(), [(header::CONTENT_TYPE, content_type)], body)
}

struct Env {
    sim: RunningSim,
    gateway: Arc<AlipayGateway>,
    received: Received,
    refuse: Arc<AtomicUsize>,
    mode: Mode,
    receiver: tokio::task::JoinHandle<()>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

fn config(accounts: &SimAccounts, gateway_url: String, mode: Mode, notify_url: String) -> AlipayConfig {
    let a = &accounts.alipay;
    let key_mode = match mode {
        Mode::PublicKey => AlipayKeyMode::PublicKey { alipay_public_key_pem: a.alipay_public_pem.clone() },
        Mode::Certificate => AlipayKeyMode::Certificate {
            app_cert_pem: a.app_cert_pem.clone(),
            alipay_cert_pem: a.alipay_cert_pem.clone(),
            alipay_root_cert_pem: a.root_cert_pem.clone(),
        },
    };
    AlipayConfig {
        gateway_url,
        app_id: a.app_id.clone(),
        app_private_key_pem: a.app_private_pem.clone(),
        mode: key_mode,
        notify_url,
        seller_id: Some(a.seller_id.clone()),
    }
}

/// The stand-ins, and a receiver running the adapter configured by `adjust`.
async fn env_with(mode: Mode, adjust: impl FnOnce(&mut AlipayConfig)) -> Env {
    let accounts = accounts().await;
    let sim = RunningSim::start(accounts).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify_url = format!("http://{}/notify/alipay", listener.local_addr().unwrap());
    let mut config = config(accounts, sim.sim.alipay.gateway_url(), mode, notify_url);
    adjust(&mut config);
    let gateway = Arc::new(AlipayGateway::new(config).unwrap());
    let received = Received::default();
    let refuse = Arc::new(AtomicUsize::new(0));
    let state = ReceiverState { gateway: gateway.clone(), received: received.clone(), refuse: refuse.clone() };
    let app = Router::new().route("/notify/alipay", post(receive)).with_state(state);
    let receiver = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Env { sim, gateway, received, refuse, mode, receiver }
}

async fn env(mode: Mode) -> Env {
    env_with(mode, |_| {}).await
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(rand::random::<[u8; 6]>()))
}

fn payment_request(payment: &PaymentId, amount: Fen) -> PaymentRequest {
    PaymentRequest {
        payment: payment.clone(),
        order: OrderId::parse("YQ20260101K7M2Q9XW").unwrap(),
        amount,
        channel: Channel::Alipay,
        description: "个人数字证书（一年）".into(),
        return_url: "https://yiqian.example.com/orders/YQ20260101K7M2Q9XW".into(),
        payer: Payer::default(),
        expires_at: Utc::now() + Duration::minutes(30),
    }
}

fn refund_request(refund: &str, payment: &PaymentId, amount: Fen) -> RefundRequest {
    RefundRequest {
        refund: RefundId::parse(refund).unwrap(),
        payment: payment.clone(),
        amount,
        payment_amount: Fen(15000),
        channel: Channel::Alipay,
        reason: "申请人撤回申请".into(),
    }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap()
}

async fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(found) = probe() {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

impl Env {
    /// Creates a payment and opens its cashier page; returns the page.
    async fn open_cashier(&self, payment: &PaymentId) -> String {
        let start = self.gateway.create_payment(&payment_request(payment, Fen(15000))).await.unwrap();
        let PaymentStart::Redirect { pay_url } = start else { panic!("expected a redirect") };
        assert!(pay_url.starts_with(&self.sim.sim.alipay.gateway_url()));
        assert_eq!(pay_url.contains("app_cert_sn="), self.mode == Mode::Certificate);
        let page = browser().get(&pay_url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        page.text().await.unwrap()
    }

    /// Waits for an accepted notification matching `wanted`.
    async fn notification(&self, wanted: impl Fn(&GatewayNotification) -> bool) -> GatewayNotification {
        wait_for("a notification", || {
            self.received.lock().unwrap().iter().filter_map(|r| r.as_ref().ok()).find(|n| wanted(n)).cloned()
        })
        .await
    }

    fn verify(&self, body: &str) -> Result<GatewayNotification, NotificationRejected> {
        self.gateway.verify_notification(&SignedNotification { headers: vec![], body: body.into() }, Utc::now())
    }
}

async fn full_flow(mode: Mode) {
    let env = env(mode).await;
    let alipay = &env.sim.sim.alipay;
    let payment = PaymentId::parse(&unique("P")).unwrap();

    // Before the payer reaches the cashier, Alipay has no trade.
    assert_eq!(env.gateway.query_payment(&payment).await.unwrap(), GatewayTrade::NotFound);
    let page = env.open_cashier(&payment).await;
    assert!(page.contains("确认付款") && page.contains("150.00") && page.contains("个人数字证书"), "{page}");
    assert_eq!(env.gateway.query_payment(&payment).await.unwrap(), GatewayTrade::NotPaid);

    let (trade, _) = alipay.pay(payment.as_str()).unwrap();
    assert!(trade.trade_no.starts_with(&beijing_time(Utc::now())[..4]));
    assert_eq!(trade.certificate_mode, mode == Mode::Certificate);
    let paid = env.notification(|n| matches!(n, GatewayNotification::PaymentSucceeded { .. })).await;
    let GatewayNotification::PaymentSucceeded { payment: paid_payment, gateway_txn, amount, .. } = paid else {
        unreachable!()
    };
    assert_eq!((paid_payment, &gateway_txn, amount), (payment.clone(), &trade.trade_no, Fen(15000)));
    let deliveries = wait_for("the acknowledgement", || {
        let d = alipay.deliveries();
        d.iter().any(|d| d.acknowledged).then_some(d)
    })
    .await;
    assert_eq!(deliveries.len(), 1, "acknowledged at once: {deliveries:?}");
    assert_eq!(deliveries[0].answer, "success");
    assert_eq!(
        env.gateway.query_payment(&payment).await.unwrap(),
        GatewayTrade::Paid { gateway_txn: trade.trade_no.clone(), amount: Fen(15000) }
    );
    assert_eq!(alipay.pay(payment.as_str()), Err(PayError::NotPayable(payment.to_string(), "TRADE_SUCCESS")));

    // A partial refund, its callback (not a second payment), and its repetition.
    let succeeded = RefundOutcome::Succeeded { gateway_refund: trade.trade_no.clone() };
    let first = refund_request("R1", &payment, Fen(5000));
    assert_eq!(env.gateway.refund(&first).await.unwrap(), succeeded);
    let callback = env.notification(|n| matches!(n, GatewayNotification::Informational { .. })).await;
    assert!(matches!(callback, GatewayNotification::Informational { ref summary, .. } if summary.contains("refund")));
    assert_eq!(env.gateway.refund(&first).await.unwrap(), succeeded);
    assert_eq!(alipay.refunds().len(), 1);
    assert_eq!(alipay.trade(payment.as_str()).unwrap().refunded, Fen(5000));
    // More than what is left is refused, and no money moves.
    let too_much = env.gateway.refund(&refund_request("R2", &payment, Fen(15000))).await.unwrap_err();
    assert!(
        matches!(too_much, ProviderError::Rejected { ref detail, .. } if detail.contains("REFUND_AMT_NOT_EQUAL_TOTAL"))
    );
    // The same refund id for another amount is refused too.
    let discordant = env.gateway.refund(&refund_request("R1", &payment, Fen(6000))).await.unwrap_err();
    assert!(matches!(discordant, ProviderError::Rejected { .. }), "{discordant:?}");
    assert_eq!(alipay.refunds().len(), 1);
    // The rest: the trade closes, refunded.
    assert_eq!(env.gateway.refund(&refund_request("R3", &payment, Fen(10000))).await.unwrap(), succeeded);
    assert_eq!(env.gateway.refund(&refund_request("R3", &payment, Fen(10000))).await.unwrap(), succeeded);
    let refunds = alipay.refunds();
    assert_eq!(
        refunds.iter().map(|r| (r.out_request_no.as_str(), r.amount)).collect::<Vec<_>>(),
        [("R1", Fen(5000)), ("R3", Fen(10000))]
    );
    assert_eq!(alipay.trade(payment.as_str()).unwrap().status, TradeStatus::TradeClosed);
    assert_eq!(
        env.gateway.query_payment(&payment).await.unwrap(),
        GatewayTrade::Refunded { gateway_txn: trade.trade_no.clone(), amount: Fen(15000) }
    );
    wait_for("both refund callbacks", || {
        let received = env.received.lock().unwrap();
        let informational =
            received.iter().filter(|r| matches!(r, Ok(GatewayNotification::Informational { .. }))).count();
        (informational == 2).then_some(())
    })
    .await;
    // Closing a paid trade is refused.
    assert!(env.gateway.close_payment(&payment).await.is_err());

    // Closing: a trade never opened, an open one (twice), and the cashier afterwards.
    let never = PaymentId::parse(&unique("N")).unwrap();
    env.gateway.close_payment(&never).await.unwrap();
    let unpaid = PaymentId::parse(&unique("C")).unwrap();
    env.open_cashier(&unpaid).await;
    env.gateway.close_payment(&unpaid).await.unwrap();
    env.gateway.close_payment(&unpaid).await.unwrap();
    assert_eq!(env.gateway.query_payment(&unpaid).await.unwrap(), GatewayTrade::Closed);
    assert!(env.open_cashier(&unpaid).await.contains("交易已关闭"));
    assert_eq!(alipay.pay(unpaid.as_str()), Err(PayError::NotPayable(unpaid.to_string(), "TRADE_CLOSED")));
    let closed = env
        .notification(
            |n| matches!(n, GatewayNotification::Informational { summary, .. } if summary.contains(unpaid.as_str())),
        )
        .await;
    assert!(
        matches!(closed, GatewayNotification::Informational { ref summary, .. } if summary.contains("TRADE_CLOSED"))
    );
    // Refunding an unpaid trade is refused.
    assert!(env.gateway.refund(&refund_request("R9", &unpaid, Fen(100))).await.is_err());
    // Nothing was ever refused by the receiver.
    assert!(env.received.lock().unwrap().iter().all(Result::is_ok));
}

#[tokio::test]
async fn public_key_mode_pays_refunds_and_closes() {
    full_flow(Mode::PublicKey).await;
}

#[tokio::test]
async fn certificate_mode_pays_refunds_and_closes() {
    full_flow(Mode::Certificate).await;
}

#[tokio::test]
async fn the_cashier_button_pays_and_returns_with_signed_parameters() {
    let env = env(Mode::PublicKey).await;
    let alipay = &env.sim.sim.alipay;
    let payment = PaymentId::parse(&unique("B")).unwrap();
    env.open_cashier(&payment).await;
    let trade = alipay.trade(payment.as_str()).unwrap();
    let answer = browser()
        .post(format!("{}/sim/alipay/pay", env.sim.base_url()))
        .form(&[("trade_no", trade.trade_no.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    let location = answer.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let (base, query) = location.split_once('?').unwrap();
    assert_eq!(base, "https://yiqian.example.com/orders/YQ20260101K7M2Q9XW");
    let params = decode_form(query.as_bytes()).unwrap();
    assert_eq!(params["method"], "alipay.trade.wap.pay.return");
    assert_eq!(params["out_trade_no"], payment.as_str());
    assert_eq!(params["total_amount"], "150.00");
    let alipay_key = RsaVerifier::from_pem(&accounts().await.alipay.alipay_public_pem).unwrap();
    assert!(alipay_key.verify(sign_content(&params, NOTIFY_EXCLUDES).as_bytes(), &params["sign"]));
    env.notification(|n| matches!(n, GatewayNotification::PaymentSucceeded { payment: p, .. } if *p == payment)).await;
    // Pressing the button again does not pay twice.
    let again = browser()
        .post(format!("{}/sim/alipay/pay", env.sim.base_url()))
        .form(&[("trade_no", trade.trade_no.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
}

#[tokio::test]
async fn notifications_are_retried_until_acknowledged_with_the_same_id() {
    let env = env(Mode::PublicKey).await;
    let alipay = &env.sim.sim.alipay;
    env.refuse.store(2, Ordering::SeqCst);
    let payment = PaymentId::parse(&unique("T")).unwrap();
    env.open_cashier(&payment).await;
    alipay.pay(payment.as_str()).unwrap();
    let deliveries = wait_for("the acknowledgement", || {
        let d = alipay.deliveries();
        d.iter().any(|d| d.acknowledged).then_some(d)
    })
    .await;
    assert_eq!(
        deliveries.iter().map(|d| (d.attempt, d.acknowledged)).collect::<Vec<_>>(),
        [(1, false), (2, false), (3, true)]
    );
    assert_eq!(deliveries[0].answer, "fail");
    assert!(deliveries.iter().all(|d| d.notify_id == deliveries[0].notify_id && d.body == deliveries[0].body));
    assert_eq!(deliveries.iter().map(|d| d.out_trade_no.as_str()).collect::<Vec<_>>(), [payment.as_str(); 3]);
}

async fn refuses_bad_notifications(mode: Mode) {
    let env = env(mode).await;
    let alipay = &env.sim.sim.alipay;
    let a = &accounts().await.alipay;
    let payment = PaymentId::parse(&unique("F")).unwrap();
    env.open_cashier(&payment).await;
    alipay.pay(payment.as_str()).unwrap();
    let delivery =
        wait_for("a delivery", || alipay.deliveries().into_iter().find(|d| d.out_trade_no == payment.as_str())).await;
    let genuine = delivery.body.clone();
    let fields = decode_form(genuine.as_bytes()).unwrap();
    for name in [
        "notify_time",
        "notify_type",
        "notify_id",
        "app_id",
        "charset",
        "version",
        "sign_type",
        "sign",
        "trade_no",
        "out_trade_no",
        "trade_status",
        "total_amount",
        "receipt_amount",
        "buyer_pay_amount",
        "gmt_create",
        "gmt_payment",
        "seller_id",
        "buyer_id",
        "subject",
        "fund_bill_list",
    ] {
        assert!(fields.contains_key(name), "the notification lacks {name}");
    }
    assert_eq!(fields["sign_type"], "RSA2");

    // A replay verifies again, with the same id (duplicates are absorbed downstream).
    let first = env.verify(&genuine).unwrap();
    assert_eq!(env.verify(&genuine).unwrap().id(), first.id());
    assert_eq!(first.id(), fields["notify_id"]);

    // Tampered with after signing.
    let mut tampered = fields.clone();
    tampered.insert("total_amount".into(), "0.01".into());
    assert_eq!(env.verify(&form_body(&tampered)), Err(NotificationRejected::BadSignature));
    // Signed with sign_type included (not the V1 rule).
    let mut v2 = fields.clone();
    let alipay_key = RsaSigner::from_pem(&a.alipay_private_pem).unwrap();
    v2.insert("sign".into(), alipay_key.sign(sign_content(&v2, &["sign"]).as_bytes()).unwrap());
    assert_eq!(env.verify(&form_body(&v2)), Err(NotificationRejected::BadSignature));
    // Forged with a key that is not Alipay's (the application's own).
    let mut forged = fields.clone();
    forged.insert("total_amount".into(), "0.01".into());
    yiqian_sim::alipay::notify::sign_notification(&RsaSigner::from_pem(&a.app_private_pem).unwrap(), &mut forged);
    assert_eq!(env.verify(&form_body(&forged)), Err(NotificationRejected::BadSignature));
    // Genuinely signed by Alipay, but for another application.
    let mut foreign = fields.clone();
    foreign.insert("app_id".into(), "2021009999999999".into());
    alipay.sign_notification(&mut foreign);
    assert_eq!(env.verify(&form_body(&foreign)), Err(NotificationRejected::UnknownKey));
    // Genuinely signed, for our application, but another seller.
    let mut seller = fields.clone();
    seller.insert("seller_id".into(), "2088000000000000".into());
    alipay.sign_notification(&mut seller);
    assert_eq!(env.verify(&form_body(&seller)), Err(NotificationRejected::UnknownKey));
    // Without a signature.
    let mut unsigned = fields.clone();
    unsigned.remove("sign");
    assert_eq!(env.verify(&form_body(&unsigned)), Err(NotificationRejected::MissingSignature));
    // A freshly built notification for the same trade: genuine, another notify_id.
    let fresh = alipay.trade_notification(payment.as_str()).unwrap();
    assert_ne!(fresh["notify_id"], fields["notify_id"]);
    assert!(matches!(
        env.verify(&form_body(&fresh)),
        Ok(GatewayNotification::PaymentSucceeded { ref notification_id, amount: Fen(15000), .. })
            if *notification_id == fresh["notify_id"]
    ));
    // A genuine refund callback is informational.
    let mut refund = fields.clone();
    refund.insert("refund_fee".into(), "150.00".into());
    refund.insert("gmt_refund".into(), "2026-01-01 12:00:00.000".into());
    refund.insert("trade_status".into(), "TRADE_CLOSED".into());
    alipay.sign_notification(&mut refund);
    assert!(matches!(env.verify(&form_body(&refund)), Ok(GatewayNotification::Informational { .. })));

    // An adapter configured with the wrong Alipay key refuses the genuine notification.
    let wrong = env_with(mode, |c| {
        c.mode = AlipayKeyMode::PublicKey { alipay_public_key_pem: a.app_public_pem.clone() };
    })
    .await;
    assert_eq!(wrong.verify(&genuine), Err(NotificationRejected::BadSignature));
}

#[tokio::test]
async fn bad_notifications_are_refused_in_public_key_mode() {
    refuses_bad_notifications(Mode::PublicKey).await;
}

#[tokio::test]
async fn bad_notifications_are_refused_in_certificate_mode() {
    refuses_bad_notifications(Mode::Certificate).await;
}

async fn refuses_bad_answers(mode: Mode) {
    let env = env(mode).await;
    let alipay = &env.sim.sim.alipay;
    let payment = PaymentId::parse(&unique("A")).unwrap();
    env.open_cashier(&payment).await;
    alipay.pay(payment.as_str()).unwrap();
    let mut tampers = vec![AnswerTamper::BadSignature, AnswerTamper::AlteredContent, AnswerTamper::Unsigned];
    if mode == Mode::Certificate {
        tampers.push(AnswerTamper::OtherCertSn);
    }
    for tamper in tampers {
        alipay.tamper_answers(Some(tamper));
        let e = env.gateway.query_payment(&payment).await.unwrap_err();
        assert!(e.is_transient(), "{tamper:?}: {e:?}");
        // A refund whose answer cannot be believed is not reported as made…
        let e = env.gateway.refund(&refund_request("R1", &payment, Fen(100))).await.unwrap_err();
        assert!(e.is_transient(), "{tamper:?}: {e:?}");
    }
    alipay.tamper_answers(None);
    // …and its retry finds that it was (once).
    let refunded = env.gateway.refund(&refund_request("R1", &payment, Fen(100))).await.unwrap();
    assert!(matches!(refunded, RefundOutcome::Succeeded { .. }));
    assert_eq!(alipay.refunds().len(), 1);
    assert!(matches!(env.gateway.query_payment(&payment).await.unwrap(), GatewayTrade::Paid { .. }));
}

#[tokio::test]
async fn tampered_answers_are_errors_in_public_key_mode() {
    refuses_bad_answers(Mode::PublicKey).await;
}

#[tokio::test]
async fn tampered_answers_are_errors_in_certificate_mode() {
    refuses_bad_answers(Mode::Certificate).await;
}

#[tokio::test]
async fn the_stand_in_refuses_requests_that_do_not_check_out() {
    let a = &accounts().await.alipay;
    // Signed with a key that is not the application's: a signed error answer, and the
    // cashier shows Alipay's error page.
    let wrong_key = env_with(Mode::PublicKey, |c| c.app_private_key_pem = a.alipay_private_pem.clone()).await;
    let payment = PaymentId::parse(&unique("W")).unwrap();
    let e = wrong_key.gateway.query_payment(&payment).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Rejected { ref detail, .. } if detail.contains("isv.invalid-signature")),
        "{e:?}"
    );
    let page = wrong_key.open_cashier(&payment).await;
    assert!(page.contains("invalid-signature") && !page.contains("确认付款"), "{page}");
    assert!(wrong_key.sim.sim.alipay.trade(payment.as_str()).is_none());

    // Certificate mode with a certificate the stand-in does not know as the application's.
    let wrong_cert = env_with(Mode::Certificate, |c| {
        c.app_private_key_pem = a.alipay_private_pem.clone();
        if let AlipayKeyMode::Certificate { app_cert_pem, .. } = &mut c.mode {
            *app_cert_pem = a.alipay_cert_pem.clone();
        }
    })
    .await;
    let e = wrong_cert.gateway.close_payment(&payment).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Rejected { ref detail, .. } if detail.contains("isv.app-cert-not-exist")),
        "{e:?}"
    );

    // A pay URL altered on its way (the amount) is refused.
    let env = env(Mode::PublicKey).await;
    let start = env.gateway.create_payment(&payment_request(&payment, Fen(15000))).await.unwrap();
    let PaymentStart::Redirect { pay_url } = start else { panic!("expected a redirect") };
    assert!(pay_url.contains("150.00"));
    let page = browser().get(pay_url.replace("150.00", "1.00")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("invalid-signature") && !page.contains("确认付款"), "{page}");

    // A foreign app id.
    let foreign = env_with(Mode::PublicKey, |c| c.app_id = "2021009999999999".into()).await;
    let e = foreign.gateway.query_payment(&payment).await.unwrap_err();
    assert!(matches!(e, ProviderError::Rejected { ref detail, .. } if detail.contains("isv.invalid-app-id")), "{e:?}");
}

#[test]
fn form_bodies_round_trip() {
    let fields: BTreeMap<String, String> =
        [("subject", "个人 数字证书 & 1+1=2"), ("a", "x")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    assert_eq!(decode_form(form_body(&fields).as_bytes()).unwrap(), fields);
}

/// Posts hand-made request parameters (signed with the application key) to the stand-in and
/// returns its verified answer's content.
async fn raw_call(sim: &RunningSim, mut params: BTreeMap<String, String>) -> serde_json::Value {
    let a = &accounts().await.alipay;
    let signer = RsaSigner::from_pem(&a.app_private_pem).unwrap();
    let signature = yiqian_providers::alipay::sign::sign_request(&signer, &params).unwrap();
    params.insert("sign".into(), signature);
    let method = params["method"].clone();
    let text = browser().post(sim.sim.alipay.gateway_url()).form(&params).send().await.unwrap().text().await.unwrap();
    let raw = yiqian_providers::alipay::response::split_answer(&text, &method).unwrap();
    let alipay_key = RsaVerifier::from_pem(&a.alipay_public_pem).unwrap();
    assert!(alipay_key.verify(raw.content.as_bytes(), raw.sign.as_deref().unwrap()), "{text}");
    serde_json::from_str(raw.content).unwrap()
}

#[tokio::test]
async fn the_stand_in_checks_timestamp_charset_and_method() {
    let sim = RunningSim::start(accounts().await).await.unwrap();
    let app_id = accounts().await.alipay.app_id.as_str();
    let params = |timestamp: String, charset: &str, method: &str| -> BTreeMap<String, String> {
        [
            ("app_id", app_id),
            ("method", method),
            ("format", "JSON"),
            ("charset", charset),
            ("sign_type", "RSA2"),
            ("version", "1.0"),
            ("timestamp", timestamp.as_str()),
            ("biz_content", r#"{"out_trade_no":"X1"}"#),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    };
    let now = beijing_time(Utc::now());
    let ok = raw_call(&sim, params(now.clone(), "utf-8", "alipay.trade.query")).await;
    assert_eq!((ok["code"].as_str(), ok["sub_code"].as_str()), (Some("40004"), Some("ACQ.TRADE_NOT_EXIST")));
    let stale =
        raw_call(&sim, params(beijing_time(Utc::now() - Duration::hours(1)), "utf-8", "alipay.trade.query")).await;
    assert_eq!(stale["sub_code"], "isv.invalid-timestamp");
    let gbk = raw_call(&sim, params(now.clone(), "GBK", "alipay.trade.query")).await;
    assert_eq!(gbk["sub_code"], "isv.invalid-charset");
    let unknown = raw_call(&sim, params(now, "utf-8", "alipay.trade.unknown")).await;
    assert_eq!(unknown["sub_code"], "isv.invalid-method");
}
