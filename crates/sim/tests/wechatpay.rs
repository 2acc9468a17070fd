//! The real WeChat Pay adapter and web-authorisation client against the stand-in: orders
//! (JSAPI, H5 through the cashier page), query, close, refunds, notifications delivered to a
//! local webhook and verified by the adapter, forged notifications refused, both key modes and
//! the certificate download, a request signed with the wrong merchant key, the daily trade bill
//! (payments only, an empty day, a tampered file, a bill not generated yet), and OAuth.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{Duration, FixedOffset, NaiveDate, Utc};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use yiqian_domain::payment::Channel;
use yiqian_domain::{Fen, OrderId, PaymentId, RefundId};
use yiqian_providers::ProviderError;
use yiqian_providers::payment::{
    BillEntry, GatewayNotification, GatewayTrade, NotificationRejected, Payer, PaymentGateway, PaymentRequest,
    PaymentStart, RefundOutcome, RefundRequest, SignedNotification,
};
use yiqian_providers::rsa::{RsaSigner, RsaVerifier};
use yiqian_providers::wechat_oauth::{OAuthError, OAuthScope, WechatOAuth, WechatOAuthConfig};
use yiqian_providers::wechatpay::signing::jsapi_pay_message;
use yiqian_providers::wechatpay::{WechatPayConfig, WechatPayGateway, WechatPayPublicKey};
use yiqian_sim::RunningSim;
use yiqian_sim::accounts::{SimAccounts, WechatPayAccount};

const FOREIGN_KEY: &str = include_str!("../../providers/testdata/wxgo_test_key.pem");
const RETURN_URL: &str = "https://yiqian.example.cn/orders/YQ2026TEST?paid=1";

fn accounts() -> &'static SimAccounts {
    static ACCOUNTS: OnceLock<SimAccounts> = OnceLock::new();
    ACCOUNTS.get_or_init(|| SimAccounts::generate().expect("stand-in accounts generate"))
}

/// What our webhook saw: the adapter's verdict on each notification that reached it.
type Verdicts = Arc<Mutex<Vec<Result<GatewayNotification, NotificationRejected>>>>;

#[derive(Clone)]
struct Webhook {
    gateway: Arc<WechatPayGateway>,
    verdicts: Verdicts,
    /// Answer 500 to this many requests first (to exercise retries).
    fail_first: Arc<AtomicUsize>,
}

async fn notify(State(hook): State<Webhook>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    if hook.fail_first.load(Ordering::SeqCst) > 0 {
        hook.fail_first.fetch_sub(1, Ordering::SeqCst);
        return (StatusCode::INTERNAL_SERVER_ERROR, String::new());
    }
    let n = SignedNotification {
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
    };
    let verdict = hook.gateway.verify_notification(&n, Utc::now());
    let (status, _, text) = if verdict.is_ok() { hook.gateway.acknowledgement() } else { hook.gateway.refusal() };
    hook.verdicts.lock().unwrap().push(verdict);
    (StatusCode::from_u16(status).unwrap(), text.to_owned())
}

struct Env {
    sim: RunningSim,
    gateway: Arc<WechatPayGateway>,
    verdicts: Verdicts,
    fail_first: Arc<AtomicUsize>,
    notify_url: String,
    _webhook: tokio::task::JoinHandle<()>,
}

fn account() -> &'static WechatPayAccount {
    &accounts().wechatpay
}

fn public_key_mode(base_url: &str, notify_url: &str) -> WechatPayConfig {
    let a = account();
    WechatPayConfig {
        base_url: base_url.to_owned(),
        mchid: a.mchid.clone(),
        appid: a.appid.clone(),
        merchant_serial: a.merchant_serial.clone(),
        merchant_key_pem: a.merchant_key_pem.clone(),
        apiv3_key: a.apiv3_key.clone(),
        public_key: Some(WechatPayPublicKey {
            public_key_id: a.public_key_id.clone(),
            public_key_pem: a.platform_public_pem.clone(),
        }),
        platform_certificates: vec![],
        notify_url: notify_url.to_owned(),
    }
}

/// A running stand-in, an adapter configured by `adjust` (public-key mode by default) and our
/// webhook serving it.
async fn env_with(adjust: impl FnOnce(&mut WechatPayConfig)) -> Env {
    let sim = RunningSim::start(accounts()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify_url = format!("http://{}/notify/wechatpay", listener.local_addr().unwrap());
    let mut config = public_key_mode(&sim.base_url(), &notify_url);
    adjust(&mut config);
    let gateway = Arc::new(WechatPayGateway::new(config).unwrap());
    let hook = Webhook { gateway: gateway.clone(), verdicts: Verdicts::default(), fail_first: Arc::default() };
    let (verdicts, fail_first) = (hook.verdicts.clone(), hook.fail_first.clone());
    let app = Router::new().route("/notify/wechatpay", post(notify)).with_state(hook);
    let webhook = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Env { sim, gateway, verdicts, fail_first, notify_url, _webhook: webhook }
}

async fn env() -> Env {
    env_with(|_| {}).await
}

impl Env {
    /// Waits until the webhook has seen `n` notifications; returns them.
    async fn verdicts(&self, n: usize) -> Vec<Result<GatewayNotification, NotificationRejected>> {
        for _ in 0..200 {
            {
                let v = self.verdicts.lock().unwrap();
                if v.len() >= n {
                    return v.clone();
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("expected {n} notifications, got {:?}", self.verdicts.lock().unwrap());
    }

    fn wechat(&self) -> &yiqian_sim::wechatpay::WechatPaySim {
        &self.sim.sim.wechatpay
    }
}

fn payment_id() -> PaymentId {
    PaymentId::parse(&format!("P{}", hex::encode(rand::random::<[u8; 8]>()))).unwrap()
}

fn request(payment: &PaymentId, amount: u64, openid: Option<&str>, ip: Option<&str>) -> PaymentRequest {
    PaymentRequest {
        payment: payment.clone(),
        order: OrderId::parse("YQ2026TEST").unwrap(),
        amount: Fen(amount),
        channel: Channel::Wechat,
        description: "宜签 个人数字证书（一年）".into(),
        return_url: RETURN_URL.into(),
        payer: Payer { wechat_openid: openid.map(str::to_owned), client_ip: ip.map(str::to_owned) },
        expires_at: Utc::now() + Duration::minutes(30),
    }
}

fn jsapi(payment: &PaymentId, amount: u64) -> PaymentRequest {
    request(payment, amount, Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"), None)
}

fn rejected_with(result: Result<impl std::fmt::Debug, ProviderError>, code: &str) {
    match result {
        Err(ProviderError::Rejected { detail, .. }) => assert!(detail.contains(code), "{detail} lacks {code}"),
        other => panic!("expected a refusal with {code}, got {other:?}"),
    }
}

#[tokio::test]
async fn jsapi_payment_is_created_idempotently_paid_and_notified() {
    let env = env().await;
    let id = payment_id();
    // One request, sent twice below: its deadline is made from the clock, and a repeat with
    // another deadline (a second later) is a different order to WeChat Pay.
    let request = jsapi(&id, 150);
    let start = env.gateway.create_payment(&request).await.unwrap();
    let PaymentStart::WechatJsapi { params, return_url } = start else { panic!("expected JSAPI, got {start:?}") };
    assert_eq!(return_url, RETURN_URL);
    assert_eq!(params.app_id, account().appid);
    assert_eq!(params.sign_type, "RSA");
    let order = env.wechat().order(id.as_str()).unwrap();
    assert_eq!(params.package, format!("prepay_id={}", order.prepay_id));
    assert_eq!(order.total, 150);
    assert_eq!(order.notify_url, env.notify_url);
    assert_eq!(order.request["time_expire"].as_str().unwrap().len(), 25);
    assert!(order.request["time_expire"].as_str().unwrap().ends_with("+08:00"));
    let merchant = RsaVerifier::from_pem(&account().merchant_public_pem).unwrap();
    let message = jsapi_pay_message(&params.app_id, &params.time_stamp, &params.nonce_str, &params.package);
    assert!(merchant.verify(message.as_bytes(), &params.pay_sign), "paySign verifies with the merchant key");
    assert!(!merchant.verify(params.package.as_bytes(), &params.pay_sign));

    // The same payment again: the same prepay id.
    let again = env.gateway.create_payment(&request).await.unwrap();
    let PaymentStart::WechatJsapi { params: params2, .. } = again else { panic!() };
    assert_eq!(params2.package, params.package);
    assert_eq!(env.gateway.query_payment(&id).await.unwrap(), GatewayTrade::NotPaid);

    let txn = env.wechat().pay(id.as_str()).unwrap();
    assert_eq!(
        env.gateway.query_payment(&id).await.unwrap(),
        GatewayTrade::Paid { gateway_txn: txn.clone(), amount: Fen(150) }
    );
    let verdicts = env.verdicts(1).await;
    match &verdicts[0] {
        Ok(GatewayNotification::PaymentSucceeded { notification_id, payment, gateway_txn, amount }) => {
            assert_eq!(payment, &id);
            assert_eq!(gateway_txn, &txn);
            assert_eq!(*amount, Fen(150));
            assert_eq!(notification_id, &env.wechat().deliveries()[0].notification_id);
        }
        other => panic!("expected PaymentSucceeded, got {other:?}"),
    }
    let deliveries = env.wechat().deliveries();
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].acknowledged);
    assert_eq!(deliveries[0].event_type, "TRANSACTION.SUCCESS");
    // Paying twice is refused, and so is creating a paid order again.
    assert!(env.wechat().pay(id.as_str()).is_err());
    rejected_with(env.gateway.create_payment(&jsapi(&id, 150)).await, "ORDERPAID");
}

#[tokio::test]
async fn h5_payment_goes_through_the_cashier_page() {
    let env = env().await;
    let id = payment_id();
    rejected_with(env.gateway.create_payment(&request(&id, 990, None, None)).await, "IP");
    assert!(env.wechat().api_calls().is_empty(), "refused before any call");

    let start = env.gateway.create_payment(&request(&id, 990, None, Some("203.0.113.7"))).await.unwrap();
    let PaymentStart::Redirect { pay_url } = start else { panic!("expected a redirect, got {start:?}") };
    let encoded: String = form_urlencoded::byte_serialize(RETURN_URL.as_bytes()).collect();
    assert!(pay_url.ends_with(&format!("&redirect_url={encoded}")), "{pay_url}");
    let order = env.wechat().order(id.as_str()).unwrap();
    assert_eq!(order.trade_type, "MWEB");
    assert_eq!(order.request["scene_info"]["payer_client_ip"], "203.0.113.7");
    assert_eq!(order.request["scene_info"]["h5_info"]["type"], "Wap");

    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap();
    let page = browser.get(&pay_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("确认支付") && html.contains("9.90") && html.contains(RETURN_URL.split('?').next().unwrap()));

    let confirm = browser
        .post(format!("{}/sim/wechatpay/checkmweb/pay", env.sim.base_url()))
        .form(&[("prepay_id", order.prepay_id.as_str()), ("redirect_url", RETURN_URL)])
        .send()
        .await
        .unwrap();
    assert!(confirm.status().is_redirection());
    assert_eq!(confirm.headers()["location"], RETURN_URL);
    let verdicts = env.verdicts(1).await;
    assert!(
        matches!(&verdicts[0], Ok(GatewayNotification::PaymentSucceeded { payment, amount: Fen(990), .. }) if payment == &id)
    );
    assert!(matches!(env.gateway.query_payment(&id).await.unwrap(), GatewayTrade::Paid { amount: Fen(990), .. }));
}

#[tokio::test]
async fn reusing_a_payment_id_for_other_content_is_refused() {
    let env = env().await;
    let id = payment_id();
    env.gateway.create_payment(&jsapi(&id, 100)).await.unwrap();
    rejected_with(env.gateway.create_payment(&jsapi(&id, 200)).await, "INVALID_REQUEST");
    rejected_with(env.gateway.create_payment(&request(&id, 100, None, Some("203.0.113.7"))).await, "INVALID_REQUEST");
    // Ids WeChat Pay cannot take are refused before any call.
    let long = PaymentId::parse(&"P".repeat(40)).unwrap();
    assert!(matches!(env.gateway.create_payment(&jsapi(&long, 100)).await, Err(ProviderError::Rejected { .. })));
}

#[tokio::test]
async fn notifications_are_retried_until_acknowledged() {
    let env = env().await;
    env.fail_first.store(2, Ordering::SeqCst);
    let id = payment_id();
    env.gateway.create_payment(&jsapi(&id, 100)).await.unwrap();
    let control =
        reqwest::Client::new().post(format!("{}/sim/wechatpay/pay/{}", env.sim.base_url(), id)).send().await.unwrap();
    assert_eq!(control.status(), 200);
    let verdicts = env.verdicts(1).await;
    assert!(matches!(&verdicts[0], Ok(GatewayNotification::PaymentSucceeded { .. })));
    let d = &env.wechat().deliveries()[0];
    assert_eq!(d.attempts.iter().map(|a| a.outcome.clone()).collect::<Vec<_>>(), vec![Ok(500), Ok(500), Ok(200)]);
    assert!(d.acknowledged);
}

#[tokio::test]
async fn forged_stale_probing_and_unknown_notifications_are_refused() {
    let env = env().await;
    let id = payment_id();
    env.gateway.create_payment(&jsapi(&id, 100)).await.unwrap();
    env.wechat().pay(id.as_str()).unwrap();
    env.verdicts(1).await;
    let w = env.wechat();
    let resource = w.transaction_resource(id.as_str()).unwrap();
    let build = || w.notification("TRANSACTION.SUCCESS", "transaction", "支付成功", resource.clone());
    let now = Utc::now();
    let verify = |n: &yiqian_sim::wechatpay::Notification| env.gateway.verify_notification(&n.to_signed(), now);

    let genuine = build().build();
    let first = verify(&genuine).unwrap();
    // A replay verifies again and carries the same id (the application deduplicates by it).
    assert_eq!(verify(&genuine).unwrap().id(), first.id());
    assert_eq!(first.id(), genuine.id);

    let mut tampered_body = genuine.clone();
    tampered_body.body = String::from_utf8(tampered_body.body).unwrap().replace("支付成功", "支付失败").into_bytes();
    assert_eq!(verify(&tampered_body), Err(NotificationRejected::BadSignature));

    let mut tampered_signature = genuine.clone();
    let other = build().build();
    let other_signature = other.to_signed().header("wechatpay-signature").unwrap().to_owned();
    tampered_signature.set_header("Wechatpay-Signature", &other_signature);
    assert_eq!(verify(&tampered_signature), Err(NotificationRejected::BadSignature));

    let forged = build().signed_by(RsaSigner::from_pem(FOREIGN_KEY).unwrap()).build();
    assert_eq!(verify(&forged), Err(NotificationRejected::BadSignature));

    let stale = build().timestamp(now.timestamp() - 301).build();
    assert_eq!(verify(&stale), Err(NotificationRejected::Stale));

    let unknown = build().serial("PUB_KEY_ID_0119000000000000000000000000000000").build();
    assert_eq!(verify(&unknown), Err(NotificationRejected::UnknownKey));
    w.use_certificate_mode(true);
    assert_eq!(verify(&build().build()), Err(NotificationRejected::UnknownKey), "no certificate configured");
    w.use_certificate_mode(false);

    let probe = build().probe().build();
    assert_eq!(verify(&probe), Err(NotificationRejected::Probe));

    let mut unsigned = genuine.clone();
    unsigned.headers.retain(|(k, _)| k != "Wechatpay-Signature");
    assert_eq!(verify(&unsigned), Err(NotificationRejected::MissingSignature));

    // Over HTTP, our webhook refuses them with 4xx (and WeChat Pay would retry).
    assert_eq!(w.post_notification(&env.notify_url, &forged).await, Ok(400));
    assert_eq!(w.post_notification(&env.notify_url, &probe).await, Ok(400));
    assert_eq!(w.post_notification(&env.notify_url, &genuine).await, Ok(200));
}

#[tokio::test]
async fn certificate_mode_downloads_and_uses_platform_certificates() {
    // Pure certificate mode, bootstrapped with the certificate from the merchant console.
    let env = env_with(|c| {
        c.public_key = None;
        c.platform_certificates = vec![account().platform_cert_pem.clone()];
    })
    .await;
    let w = env.wechat();
    w.use_certificate_mode(true);
    let refreshed = env.gateway.refresh_platform_certificates().await.unwrap();
    assert_eq!(refreshed.len(), 1);
    assert_eq!(refreshed[0].serial, account().platform_cert_serial.trim_start_matches('0'));
    assert!(refreshed[0].not_after > Utc::now() + Duration::days(365));
    let id = payment_id();
    env.gateway.create_payment(&jsapi(&id, 100)).await.unwrap();
    w.pay(id.as_str()).unwrap();
    assert!(matches!(&env.verdicts(1).await[0], Ok(GatewayNotification::PaymentSucceeded { .. })));
    // A notification under the public key id is unknown in this mode.
    let resource = w.transaction_resource(id.as_str()).unwrap();
    let n = w.notification("TRANSACTION.SUCCESS", "transaction", "支付成功", resource).serial(&account().public_key_id);
    assert_eq!(
        env.gateway.verify_notification(&n.build().to_signed(), Utc::now()),
        Err(NotificationRejected::UnknownKey)
    );
    // Answers signed under an unknown serial are not trusted.
    w.use_certificate_mode(false);
    assert!(env.gateway.query_payment(&id).await.unwrap_err().is_transient());
}

#[tokio::test]
async fn public_key_mode_learns_certificates_for_a_switch_and_accepts_both() {
    let env = env().await;
    let w = env.wechat();
    assert!(env.gateway.platform_certificates().is_empty());
    let id = payment_id();
    env.gateway.create_payment(&jsapi(&id, 100)).await.unwrap();
    // WeChat Pay switches to certificate mode: its answers are not trusted until the download.
    w.use_certificate_mode(true);
    assert!(env.gateway.query_payment(&id).await.unwrap_err().is_transient());
    env.gateway.refresh_platform_certificates().await.unwrap();
    assert_eq!(env.gateway.platform_certificates().len(), 1);
    assert_eq!(env.gateway.query_payment(&id).await.unwrap(), GatewayTrade::NotPaid);
    w.pay(id.as_str()).unwrap();
    assert!(matches!(&env.verdicts(1).await[0], Ok(GatewayNotification::PaymentSucceeded { .. })));
    // Both serials verify now.
    let resource = w.transaction_resource(id.as_str()).unwrap();
    for serial in [&account().public_key_id, &account().platform_cert_serial] {
        let n =
            w.notification("TRANSACTION.SUCCESS", "transaction", "支付成功", resource.clone()).serial(serial).build();
        assert!(env.gateway.verify_notification(&n.to_signed(), Utc::now()).is_ok(), "{serial}");
    }
    // A wrong APIv3 key cannot open the download.
    let other = env_with(|c| c.apiv3_key = "0123456789abcdef0123456789abcdef".into()).await;
    other.wechat().use_certificate_mode(true);
    assert!(matches!(
        other.gateway.refresh_platform_certificates().await,
        Err(ProviderError::Rejected { .. }) | Err(ProviderError::Transient { .. })
    ));
    assert!(other.gateway.platform_certificates().is_empty());
}

fn refund(id: &str, payment: &PaymentId, amount: u64, total: u64) -> RefundRequest {
    RefundRequest {
        refund: RefundId::parse(id).unwrap(),
        payment: payment.clone(),
        amount: Fen(amount),
        payment_amount: Fen(total),
        channel: Channel::Wechat,
        reason: "申请人撤回申请".into(),
    }
}

#[tokio::test]
async fn refunds_are_notified_once_and_repeats_are_harmless() {
    let env = env().await;
    let w = env.wechat();
    let id = payment_id();
    env.gateway.create_payment(&jsapi(&id, 300)).await.unwrap();
    rejected_with(env.gateway.refund(&refund("R0000001", &id, 100, 300)).await, "INVALID_REQUEST");
    w.pay(id.as_str()).unwrap();
    env.verdicts(1).await;

    assert_eq!(env.gateway.refund(&refund("R0000001", &id, 100, 300)).await.unwrap(), RefundOutcome::Pending);
    let verdicts = env.verdicts(2).await;
    match &verdicts[1] {
        Ok(GatewayNotification::RefundSucceeded { refund, amount, .. }) => {
            assert_eq!(refund.as_str(), "R0000001");
            assert_eq!(*amount, Fen(100));
        }
        other => panic!("expected RefundSucceeded, got {other:?}"),
    }
    assert!(matches!(env.gateway.query_payment(&id).await.unwrap(), GatewayTrade::Refunded { amount: Fen(300), .. }));
    // The same refund again: the same refund, no second notification.
    let refund_id = w.refunds()[0].refund_id.clone();
    assert_eq!(
        env.gateway.refund(&refund("R0000001", &id, 100, 300)).await.unwrap(),
        RefundOutcome::Succeeded { gateway_refund: refund_id }
    );
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(w.refunds().len(), 1);
    assert_eq!(w.deliveries().iter().filter(|d| d.event_type.starts_with("REFUND.")).count(), 1);
    assert_eq!(env.verdicts.lock().unwrap().len(), 2);

    // A refund that goes wrong is reported as failed.
    w.set_next_refund_result(yiqian_sim::wechatpay::RefundStatus::Abnormal);
    assert_eq!(env.gateway.refund(&refund("R0000002", &id, 100, 300)).await.unwrap(), RefundOutcome::Pending);
    match &env.verdicts(3).await[2] {
        Ok(GatewayNotification::RefundFailed { refund, status, .. }) => {
            assert_eq!(refund.as_str(), "R0000002");
            assert_eq!(status, "ABNORMAL");
        }
        other => panic!("expected RefundFailed, got {other:?}"),
    }
    // More than is left is refused.
    rejected_with(env.gateway.refund(&refund("R0000003", &id, 250, 300)).await, "INVALID_REQUEST");
}

#[tokio::test]
async fn an_unpaid_order_closes_and_unknown_orders_are_not_found() {
    let env = env().await;
    let id = payment_id();
    assert_eq!(env.gateway.query_payment(&id).await.unwrap(), GatewayTrade::NotFound);
    env.gateway.create_payment(&jsapi(&id, 100)).await.unwrap();
    env.gateway.close_payment(&id).await.unwrap();
    assert_eq!(env.gateway.query_payment(&id).await.unwrap(), GatewayTrade::Closed);
    assert!(env.wechat().pay(id.as_str()).is_err());
    env.gateway.close_payment(&id).await.unwrap();
    rejected_with(env.gateway.create_payment(&jsapi(&id, 100)).await, "ORDER_CLOSED");
}

#[tokio::test]
async fn requests_signed_with_the_wrong_merchant_key_are_refused() {
    let env = env_with(|c| c.merchant_key_pem = FOREIGN_KEY.to_owned()).await;
    let id = payment_id();
    rejected_with(env.gateway.create_payment(&jsapi(&id, 100)).await, "SIGN_ERROR");
    let calls = env.wechat().api_calls();
    assert_eq!((calls[0].status, calls[0].code.as_deref()), (401, Some("SIGN_ERROR")));
    assert!(env.wechat().order(id.as_str()).is_none());

    let env = env_with(|c| c.merchant_serial = "0123456789ABCDEF".to_owned()).await;
    rejected_with(env.gateway.query_payment(&id).await, "SIGN_ERROR");
}

/// The Beijing day of an order's payment.
fn paid_day(env: &Env, payment: &PaymentId) -> NaiveDate {
    let paid = env.wechat().order(payment.as_str()).unwrap().success_time.unwrap();
    paid.with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap()).date_naive()
}

#[tokio::test]
async fn the_trade_bill_lists_the_days_payments_and_not_refunds() {
    let env = env().await;
    let w = env.wechat();
    let (a, b, unpaid) = (payment_id(), payment_id(), payment_id());
    env.gateway.create_payment(&jsapi(&a, 15000)).await.unwrap();
    env.gateway.create_payment(&request(&b, 990, None, Some("203.0.113.7"))).await.unwrap();
    env.gateway.create_payment(&jsapi(&unpaid, 500)).await.unwrap();
    let txn_a = w.pay(a.as_str()).unwrap();
    let txn_b = w.pay(b.as_str()).unwrap();
    env.verdicts(2).await;
    assert_eq!(env.gateway.refund(&refund("R0000001", &b, 990, 990)).await.unwrap(), RefundOutcome::Pending);
    env.verdicts(3).await;
    let day = paid_day(&env, &a);

    let mut entries = env.gateway.daily_bill(day).await.unwrap().expect("WeChat Pay offers a bill");
    entries.sort_by(|x, y| x.gateway_txn.cmp(&y.gateway_txn));
    let mut expected = vec![
        BillEntry { out_trade_no: a.as_str().into(), gateway_txn: txn_a.clone(), amount: Fen(15000) },
        BillEntry { out_trade_no: b.as_str().into(), gateway_txn: txn_b.clone(), amount: Fen(990) },
    ];
    expected.sort_by(|x, y| x.gateway_txn.cmp(&y.gateway_txn));
    assert_eq!(entries, expected);
    // The file did list the refund (and the fee), as a REFUND row the adapter skipped.
    let text = w.trade_bill(day).unwrap();
    let refund_id = &w.refunds()[0].refund_id;
    assert!(text.lines().any(|l| l.contains("`REFUND,") && l.contains(refund_id.as_str())), "{text}");
    assert!(text.contains("`150.00,`0.00,`") && text.contains("`0.90000,`0.60%"), "{text}");
    assert!(!text.contains(unpaid.as_str()));

    // Both steps were signed by us and accepted; the download URL carries the query.
    let calls = env.wechat().api_calls();
    let bill = calls.iter().find(|c| c.path.starts_with("/v3/bill/tradebill")).unwrap();
    assert_eq!(bill.path, format!("/v3/bill/tradebill?bill_date={}&bill_type=ALL", day.format("%Y-%m-%d")));
    assert_eq!(bill.status, 200);
    let download = calls.iter().find(|c| c.path.starts_with("/v3/billdownload/file?token=")).unwrap();
    assert_eq!(download.status, 200);
    // The download itself needs our signature.
    let unsigned = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}{}", env.sim.base_url(), download.path))
        .header("User-Agent", "test")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
}

#[tokio::test]
async fn a_day_without_trades_has_an_empty_bill() {
    let env = env().await;
    let day = Utc::now().date_naive() - Duration::days(30);
    assert_eq!(env.gateway.daily_bill(day).await.unwrap(), Some(vec![]));
    let calls = env.wechat().api_calls();
    assert_eq!(calls.len(), 1, "no download for a day without a bill");
    assert_eq!((calls[0].status, calls[0].code.as_deref()), (400, Some("NO_STATEMENT_EXIST")));
}

#[tokio::test]
async fn a_tampered_or_unready_bill_is_a_transient_error() {
    let env = env().await;
    let w = env.wechat();
    let id = payment_id();
    env.gateway.create_payment(&jsapi(&id, 300)).await.unwrap();
    let txn = w.pay(id.as_str()).unwrap();
    let day = paid_day(&env, &id);

    w.corrupt_next_bill();
    match env.gateway.daily_bill(day).await {
        Err(ProviderError::Transient { detail, .. }) => assert!(detail.contains("SHA-1"), "{detail}"),
        other => panic!("expected a transient error for a tampered bill, got {other:?}"),
    }
    w.bill_creating_next();
    match env.gateway.daily_bill(day).await {
        Err(e @ ProviderError::Transient { .. }) => assert!(e.to_string().contains("not generated yet"), "{e}"),
        other => panic!("expected a transient error for a bill not generated yet, got {other:?}"),
    }
    // Both were one-offs: the bill reads now.
    assert_eq!(
        env.gateway.daily_bill(day).await.unwrap(),
        Some(vec![BillEntry { out_trade_no: id.as_str().into(), gateway_txn: txn, amount: Fen(300) }])
    );
}

async fn oauth(env: &Env, secret: &str) -> WechatOAuth {
    WechatOAuth::new(WechatOAuthConfig {
        appid: account().appid.clone(),
        secret: secret.to_owned(),
        authorize_base: env.sim.base_url(),
        api_base: env.sim.base_url(),
        scope: OAuthScope::SnsapiBase,
    })
    .unwrap()
}

/// Follows the authorise URL like a browser inside WeChat; returns the redirect's query.
async fn authorise(url: &str) -> Vec<(String, String)> {
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap();
    let answer = browser.get(url).send().await.unwrap();
    assert!(answer.status().is_redirection(), "{}", answer.status());
    let location = reqwest::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with("https://yiqian.example.cn/wx/back?"));
    location.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

#[tokio::test]
async fn web_authorisation_yields_the_openid_once_per_code() {
    let env = env().await;
    let client = oauth(&env, &account().app_secret).await;
    let redirect = "https://yiqian.example.cn/wx/back";
    env.wechat().set_openid_for_next_authorisation("oTESTopenid0000000000000001");
    let query = authorise(&client.authorize_url(redirect, "abc123").unwrap()).await;
    assert_eq!(query[1], ("state".to_owned(), "abc123".to_owned()));
    assert_eq!(query[0].0, "code");
    let identity = client.exchange_code(&query[0].1).await.unwrap();
    assert_eq!(identity.openid, "oTESTopenid0000000000000001");
    assert_eq!(identity.scope, "snsapi_base");
    assert!(!identity.snapshot_user && identity.unionid.is_none());
    assert_eq!(client.exchange_code(&query[0].1).await, Err(OAuthError::CodeUsed));
    assert_eq!(client.exchange_code("nonsense").await, Err(OAuthError::InvalidCode));

    // Without a preset openid, a stand-in user's openid is stable.
    let url = client.authorize_url(redirect, "s").unwrap().replace("#wechat_redirect", "&sim_user=alice");
    let code = authorise(&url).await.remove(0).1;
    assert_eq!(client.exchange_code(&code).await.unwrap().openid, env.wechat().openid_for("alice"));
    assert_eq!(env.wechat().openid_for("alice").len(), 28);
    assert_ne!(env.wechat().openid_for("alice"), env.wechat().openid_for("bob"));

    // A user who refuses brings back only the state; a wrong secret is refused.
    let url = client.authorize_url(redirect, "s").unwrap().replace("#wechat_redirect", "&sim_refuse=1");
    assert_eq!(authorise(&url).await, vec![("state".to_owned(), "s".to_owned())]);
    let code = authorise(&client.authorize_url(redirect, "s").unwrap()).await.remove(0).1;
    assert_eq!(oauth(&env, "wrong").await.exchange_code(&code).await, Err(OAuthError::Refused(40125)));
}
