//! Stand-in for WeChat Pay API v3 and WeChat web authorisation.
//!
//! Merchant API (`/v3/…`): every request's `Authorization` is checked as WeChat Pay does
//! (mchid, `serial_no` = the merchant certificate serial, SHA256withRSA by the merchant key over
//! method, path with query, timestamp, nonce and body, timestamp within five minutes); a failure
//! answers `401 {"code":"SIGN_ERROR",…}`. Every answer — errors included — is signed with the
//! WeChat Pay key and names `Wechatpay-Serial` = the public key id, or the platform certificate
//! serial after [`WechatPaySim::use_certificate_mode`]. Served: JSAPI and H5 order creation
//! (same `out_trade_no` and content → same prepay id; different content → `400
//! INVALID_REQUEST`), query, close, refunds (idempotent per `out_refund_no`; answered
//! `PROCESSING`, settled 0.3 s later as `SUCCESS` or as set with
//! [`WechatPaySim::set_next_refund_result`]), refund query, `/v3/certificates` (encrypted
//! with the APIv3 key) and the trade bill: `/v3/bill/tradebill` answers the SHA-1 of the file it
//! will serve and a five-minute `download_url` (`/v3/billdownload/file?token=…`, signature
//! checked, answer unsigned as WeChat Pay's is) whose file lists the payments and refunds of
//! that Beijing day ([`WechatPaySim::trade_bill`]); `NO_STATEMENT_EXIST` for a day without any,
//! `STATEMENT_CREATING` once after [`WechatPaySim::bill_creating_next`], and a file that no
//! longer matches its hash once after [`WechatPaySim::corrupt_next_bill`]. Calls are recorded
//! ([`WechatPaySim::api_calls`]).
//!
//! Paying: H5 orders get an `h5_url` to a cashier page (`/sim/wechatpay/checkmweb`) with a
//! 确认支付 button; JSAPI orders (whose cashier lives inside WeChat) are paid with
//! [`WechatPaySim::pay`] or `POST /sim/wechatpay/pay/{out_trade_no}`. Paying or settling a
//! refund sends the notification — encrypted resource, signed headers, a fresh envelope id per
//! event — to the order's or refund's `notify_url`, retried on anything but 2xx after 0.2 s,
//! 0.5 s, 1 s, 2 s, 5 s, 10 s, 20 s, 30 s, 60 s (ten tries), re-signed each time; every attempt
//! is recorded ([`WechatPaySim::deliveries`], or as JSON at `GET /sim/wechatpay/deliveries`). [`WechatPaySim::notification`] builds a signed
//! notification tests can tamper with.
//!
//! Web authorisation: `GET /connect/oauth2/authorize` redirects to `redirect_uri?code=…&state=…`
//! at once (no consent page). The openid a code stands for is, in this order: the one set with
//! [`WechatPaySim::set_openid_for_next_authorisation`], else a stable openid derived from the
//! app id and the `sim_user` query parameter (default `default`; see
//! [`WechatPaySim::openid_for`]). `sim_refuse=1` plays a user who refuses (only `state` comes
//! back), `sim_snapshot=1` a snapshot-page user. `GET /sns/oauth2/access_token` exchanges a
//! single-use, five-minute code, answering WeChat's `errcode` JSON on failure.
//!
//! State lives in memory for the life of the process.

mod api;
mod cashier;
mod notify;
mod oauth;

pub use notify::{DELIVERY_SCHEDULE, Notification, NotificationBuilder};

use crate::Sim;
use crate::accounts::WechatPayAccount;
use axum::Router;
use axum::routing::{get, post};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use rand::Rng;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use yiqian_providers::rsa::{RsaSigner, RsaVerifier};

/// Where the cashier page lives (the `h5_url` points here).
pub const CASHIER_PATH: &str = "/sim/wechatpay/checkmweb";

/// A trade's state, as `trade_state` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeState {
    /// `NOTPAY`.
    NotPay,
    /// `SUCCESS`.
    Success,
    /// `REFUND` (paid, then refunded in part or whole).
    Refund,
    /// `CLOSED`.
    Closed,
}

impl TradeState {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            TradeState::NotPay => "NOTPAY",
            TradeState::Success => "SUCCESS",
            TradeState::Refund => "REFUND",
            TradeState::Closed => "CLOSED",
        }
    }

    fn description(self) -> &'static str {
        match self {
            TradeState::NotPay => "订单未支付",
            TradeState::Success => "支付成功",
            TradeState::Refund => "订单发生过退款",
            TradeState::Closed => "订单已关闭",
        }
    }
}

/// An order as the stand-in records it.
#[derive(Debug, Clone)]
pub struct Order {
    /// The merchant's order number.
    pub out_trade_no: String,
    /// `JSAPI` or `MWEB` (H5).
    pub trade_type: &'static str,
    /// The creation request's JSON, to tell a repeat from a conflicting reuse.
    pub request: Value,
    /// The prepay id handed out.
    pub prepay_id: String,
    /// What the payer sees.
    pub description: String,
    /// Amount in fen.
    pub total: u64,
    /// Where the payment notification goes.
    pub notify_url: String,
    /// JSAPI payer.
    pub openid: Option<String>,
    /// Until when it may be paid.
    pub time_expire: Option<DateTime<FixedOffset>>,
    /// Its state.
    pub trade_state: TradeState,
    /// WeChat Pay's transaction id, once paid.
    pub transaction_id: Option<String>,
    /// When paid.
    pub success_time: Option<DateTime<Utc>>,
    /// Fen refunded or being refunded.
    pub refunded: u64,
}

/// A refund's status, as `status` / `refund_status` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStatus {
    /// `PROCESSING`.
    Processing,
    /// `SUCCESS`.
    Success,
    /// `ABNORMAL` (e.g. the payer's card was closed).
    Abnormal,
    /// `CLOSED`.
    Closed,
}

impl RefundStatus {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Processing => "PROCESSING",
            RefundStatus::Success => "SUCCESS",
            RefundStatus::Abnormal => "ABNORMAL",
            RefundStatus::Closed => "CLOSED",
        }
    }
}

/// A refund as the stand-in records it.
#[derive(Debug, Clone)]
pub struct Refund {
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// WeChat Pay's refund id.
    pub refund_id: String,
    /// The order refunded.
    pub out_trade_no: String,
    /// Its transaction id.
    pub transaction_id: String,
    /// Fen returned.
    pub refund: u64,
    /// The order's total.
    pub total: u64,
    /// Where the refund notification goes (none when the request named none).
    pub notify_url: Option<String>,
    /// Its status.
    pub status: RefundStatus,
    /// When asked for.
    pub create_time: DateTime<Utc>,
    /// When it succeeded.
    pub success_time: Option<DateTime<Utc>>,
}

/// One try at delivering a notification.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// When.
    pub at: DateTime<Utc>,
    /// The HTTP status our side answered, or why nothing came back.
    pub outcome: Result<u16, String>,
}

/// A notification the stand-in sent (or is still sending).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The envelope id.
    pub notification_id: String,
    /// e.g. `TRANSACTION.SUCCESS`.
    pub event_type: String,
    /// The merchant's order or refund number it concerns.
    pub subject: String,
    /// Where it goes.
    pub url: String,
    /// Tries so far.
    pub attempts: Vec<Attempt>,
    /// Whether a try got a 2xx.
    pub acknowledged: bool,
}

/// A merchant API call the stand-in answered.
#[derive(Debug, Clone)]
pub struct ApiCall {
    /// `GET`, `POST`.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// The error `code` answered, if any.
    pub code: Option<String>,
}

/// Why [`WechatPaySim::pay`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayError {
    /// No such order.
    #[error("订单不存在")]
    NotFound,
    /// Already paid.
    #[error("该订单已支付")]
    AlreadyPaid,
    /// Closed.
    #[error("订单已关闭")]
    Closed,
    /// Past its `time_expire`.
    #[error("订单已过期")]
    Expired,
}

#[derive(Debug, Clone)]
struct AuthCode {
    openid: String,
    scope: String,
    snapshot: bool,
    issued: DateTime<Utc>,
    used: bool,
}

#[derive(Default)]
struct State {
    orders: BTreeMap<String, Order>,
    refunds: BTreeMap<String, Refund>,
    deliveries: Vec<Delivery>,
    calls: Vec<ApiCall>,
    codes: HashMap<String, AuthCode>,
    next_openid: Option<String>,
    next_refund_result: Option<RefundStatus>,
    /// Bill files handed out, by download token.
    bills: HashMap<String, BillFile>,
    /// Serve the next bill file altered after its hash was announced.
    corrupt_next_bill: bool,
    /// Answer the next bill request `STATEMENT_CREATING`.
    bill_creating_next: bool,
}

/// A bill file handed out for download.
#[derive(Debug, Clone)]
struct BillFile {
    /// What the download serves.
    body: Vec<u8>,
    /// Until when the token is good.
    expires: DateTime<Utc>,
}

/// The WeChat Pay stand-in's state.
pub struct WechatPaySim {
    account: WechatPayAccount,
    base_url: String,
    platform: RsaSigner,
    merchant: RsaVerifier,
    certificate_mode: AtomicBool,
    state: Arc<Mutex<State>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for WechatPaySim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatPaySim").field("mchid", &self.account.mchid).field("base_url", &self.base_url).finish()
    }
}

fn random_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect()
}

fn random_digits(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

/// An RFC 3339 time in China Standard Time, as WeChat Pay writes times.
fn cst(t: DateTime<Utc>) -> String {
    let offset = FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset");
    t.with_timezone(&offset).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// The Beijing calendar day of an instant.
fn beijing_day(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")).date_naive()
}

/// The columns of a `bill_type=ALL` trade bill, in WeChat Pay's order.
const BILL_HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,\
付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,\
手续费,费率,订单金额,申请退款金额,费率备注";

/// The summary's columns.
const BILL_SUMMARY_HEADER: &str =
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";

/// The stand-in's fee rate, in parts per thousand (0.60%).
const FEE_PER_MILLE: i64 = 6;

/// Fen as yuan with two decimals, e.g. `150.00`.
fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// A fee in hundred-thousandths of a yuan as WeChat Pay writes it, e.g. `0.90000`, `-0.90000`.
fn fee(units: i64) -> String {
    let sign = if units < 0 { "-" } else { "" };
    format!("{sign}{}.{:05}", units.unsigned_abs() / 100_000, units.unsigned_abs() % 100_000)
}

/// The trade bill (`bill_type=ALL`) of a Beijing day: payments made that day and refunds asked
/// for that day, in time order, then the summary; `None` when there is neither. `corrupt`
/// inflates the first payment's amounts by one yuan (a file altered after its hash was taken).
fn build_trade_bill<'a>(
    account: &WechatPayAccount,
    day: NaiveDate,
    orders: &BTreeMap<String, Order>,
    refunds: impl Iterator<Item = &'a Refund>,
    corrupt: bool,
) -> Option<String> {
    let time = |t: DateTime<Utc>| {
        t.with_timezone(&FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset"))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let mut rows: Vec<(DateTime<Utc>, Vec<String>)> = Vec::new();
    let (mut settled, mut refunded, mut fees, mut asked) = (0u64, 0u64, 0i64, 0u64);
    for order in orders.values() {
        let (Some(txn), Some(paid)) = (&order.transaction_id, order.success_time) else { continue };
        if beijing_day(paid) != day {
            continue;
        }
        let fee_units = i64::try_from(order.total).unwrap_or(i64::MAX).saturating_mul(FEE_PER_MILLE);
        settled += order.total;
        fees += fee_units;
        rows.push((
            paid,
            vec![
                time(paid),
                account.appid.clone(),
                account.mchid.clone(),
                "0".into(),
                String::new(),
                txn.clone(),
                order.out_trade_no.clone(),
                order.openid.clone().unwrap_or_default(),
                order.trade_type.into(),
                "SUCCESS".into(),
                "OTHERS".into(),
                "CNY".into(),
                yuan(order.total),
                "0.00".into(),
                "0".into(),
                "0".into(),
                "0.00".into(),
                "0.00".into(),
                String::new(),
                String::new(),
                order.description.clone(),
                String::new(),
                fee(fee_units),
                "0.60%".into(),
                yuan(order.total),
                "0.00".into(),
                String::new(),
            ],
        ));
    }
    for refund in refunds {
        if beijing_day(refund.create_time) != day {
            continue;
        }
        let order = orders.get(&refund.out_trade_no);
        let succeeded = refund.status == RefundStatus::Success;
        let fee_units = -i64::try_from(refund.refund).unwrap_or(i64::MAX).saturating_mul(FEE_PER_MILLE);
        asked += refund.refund;
        if succeeded {
            refunded += refund.refund;
            fees += fee_units;
        }
        rows.push((
            refund.create_time,
            vec![
                time(refund.create_time),
                account.appid.clone(),
                account.mchid.clone(),
                "0".into(),
                String::new(),
                refund.transaction_id.clone(),
                refund.out_trade_no.clone(),
                order.and_then(|o| o.openid.clone()).unwrap_or_default(),
                order.map_or("JSAPI", |o| o.trade_type).into(),
                "REFUND".into(),
                "OTHERS".into(),
                "CNY".into(),
                "0.00".into(),
                "0.00".into(),
                refund.refund_id.clone(),
                refund.out_refund_no.clone(),
                yuan(if succeeded { refund.refund } else { 0 }),
                "0.00".into(),
                "ORIGINAL".into(),
                refund.status.as_str().into(),
                order.map(|o| o.description.clone()).unwrap_or_default(),
                String::new(),
                fee(if succeeded { fee_units } else { 0 }),
                "0.60%".into(),
                "0.00".into(),
                yuan(refund.refund),
                String::new(),
            ],
        ));
    }
    if rows.is_empty() {
        return None;
    }
    rows.sort_by_key(|(at, _)| *at);
    if corrupt && let Some((_, fields)) = rows.iter_mut().find(|(_, f)| f[9] == "SUCCESS") {
        let inflated = orders.get(&fields[6]).map_or(100, |o| o.total + 100);
        fields[12] = yuan(inflated);
        fields[24] = yuan(inflated);
    }
    let backquoted = |fields: &[String]| fields.iter().map(|f| format!("`{f}")).collect::<Vec<_>>().join(",");
    let mut text = format!("{BILL_HEADER}\r\n");
    for (_, fields) in &rows {
        text.push_str(&backquoted(fields));
        text.push_str("\r\n");
    }
    let summary =
        [rows.len().to_string(), yuan(settled), yuan(refunded), "0.00".into(), fee(fees), yuan(settled), yuan(asked)];
    text.push_str(&format!("{BILL_SUMMARY_HEADER}\r\n{}\r\n", backquoted(&summary)));
    Some(text)
}

/// FNV-1a, 64 bits: a stable, dependency-free hash for deriving stand-in openids.
fn fnv1a(seed: u64, data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325 ^ seed, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

impl WechatPaySim {
    /// A stand-in for `account`, reachable at `base_url` (used in the `h5_url`s it hands out).
    ///
    /// # Panics
    /// If the account's keys do not parse (they come from [`crate::accounts::SimAccounts`]).
    pub fn new(account: &WechatPayAccount, base_url: &str) -> WechatPaySim {
        WechatPaySim {
            account: account.clone(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            platform: RsaSigner::from_pem(&account.platform_key_pem).expect("the stand-in's platform key parses"),
            merchant: RsaVerifier::from_pem(&account.merchant_public_pem).expect("the merchant public key parses"),
            certificate_mode: AtomicBool::new(false),
            state: Arc::new(Mutex::new(State::default())),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .expect("an HTTP client builds"),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Signs answers and notifications under the platform certificate's serial (`true`) or the
    /// public key id (`false`, the default). The key is the same; only the serial named differs.
    pub fn use_certificate_mode(&self, on: bool) {
        self.certificate_mode.store(on, Ordering::SeqCst);
    }

    /// The `Wechatpay-Serial` currently used.
    pub fn current_serial(&self) -> String {
        if self.certificate_mode.load(Ordering::SeqCst) {
            self.account.platform_cert_serial.clone()
        } else {
            self.account.public_key_id.clone()
        }
    }

    /// The account served.
    pub fn account(&self) -> &WechatPayAccount {
        &self.account
    }

    /// An order by `out_trade_no`.
    pub fn order(&self, out_trade_no: &str) -> Option<Order> {
        self.state().orders.get(out_trade_no).cloned()
    }

    /// Every refund asked for.
    pub fn refunds(&self) -> Vec<Refund> {
        self.state().refunds.values().cloned().collect()
    }

    /// Every notification sent, in order, with its attempts so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state().deliveries.clone()
    }

    /// Every merchant API call answered, in order.
    pub fn api_calls(&self) -> Vec<ApiCall> {
        self.state().calls.clone()
    }

    /// Makes the next refund end `ABNORMAL` or `CLOSED` instead of `SUCCESS`.
    pub fn set_next_refund_result(&self, status: RefundStatus) {
        self.state().next_refund_result = Some(status);
    }

    /// Makes the next trade bill file served differ from the one whose SHA-1 was announced (one
    /// payment's amount altered), as a file tampered with on the way would.
    pub fn corrupt_next_bill(&self) {
        self.state().corrupt_next_bill = true;
    }

    /// Makes the next trade bill request answer `400 STATEMENT_CREATING` (not generated yet).
    pub fn bill_creating_next(&self) {
        self.state().bill_creating_next = true;
    }

    /// The `bill_type=ALL` trade bill of a Beijing day as served: one line per payment made that
    /// day (`SUCCESS`, also when refunded since) and per refund asked for that day (`REFUND`),
    /// in time order, then the summary. `None` for a day without any.
    pub fn trade_bill(&self, day: NaiveDate) -> Option<String> {
        let state = self.state();
        build_trade_bill(&self.account, day, &state.orders, state.refunds.values(), false)
    }

    /// The openid the next web authorisation yields (once).
    pub fn set_openid_for_next_authorisation(&self, openid: &str) {
        self.state().next_openid = Some(openid.to_owned());
    }

    /// The stable openid of stand-in user `sim_user` under this app id (28 characters,
    /// starting with `o`, the same across restarts).
    pub fn openid_for(&self, sim_user: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let data = format!("{}\0{sim_user}", self.account.appid);
        let mut out = String::from("o");
        for seed in 0..4u64 {
            let mut h = fnv1a(seed, data.as_bytes());
            for _ in 0..7 {
                out.push(char::from(ALPHABET[(h & 63) as usize]));
                h >>= 6;
            }
        }
        out.truncate(28);
        out
    }

    /// Pays an unpaid order (as the payer confirming at the cashier would) and sends the
    /// `TRANSACTION.SUCCESS` notification. Returns the transaction id.
    pub fn pay(&self, out_trade_no: &str) -> Result<String, PayError> {
        let (notification, order) = {
            let mut state = self.state();
            let order = state.orders.get_mut(out_trade_no).ok_or(PayError::NotFound)?;
            match order.trade_state {
                TradeState::NotPay => {}
                TradeState::Success | TradeState::Refund => return Err(PayError::AlreadyPaid),
                TradeState::Closed => return Err(PayError::Closed),
            }
            if order.time_expire.is_some_and(|t| t < Utc::now()) {
                return Err(PayError::Expired);
            }
            order.trade_state = TradeState::Success;
            order.transaction_id = Some(format!("42000{}", random_digits(23)));
            order.success_time = Some(Utc::now());
            if order.openid.is_none() {
                // An H5 payer is a WeChat user too; the notification names them.
                order.openid = Some(format!("o{}", random_alnum(27)));
            }
            let order = order.clone();
            let resource = self.transaction_resource_of(&order);
            (self.notification("TRANSACTION.SUCCESS", "transaction", "支付成功", resource).build(), order)
        };
        tracing::info!(out_trade_no, "stand-in payment made");
        self.deliver(&order.out_trade_no, &order.notify_url, notification);
        Ok(order.transaction_id.unwrap_or_default())
    }

    /// The decrypted resource of a payment notification for a paid order.
    pub fn transaction_resource(&self, out_trade_no: &str) -> Option<Value> {
        let order = self.order(out_trade_no)?;
        order.transaction_id.is_some().then(|| self.transaction_resource_of(&order))
    }

    fn transaction_json(&self, order: &Order) -> Value {
        let mut v = json!({
            "appid": self.account.appid,
            "mchid": self.account.mchid,
            "out_trade_no": order.out_trade_no,
            "trade_type": order.trade_type,
            "trade_state": order.trade_state.as_str(),
            "trade_state_desc": order.trade_state.description(),
            "attach": "",
            "payer": {},
            "amount": {"total": order.total, "currency": "CNY", "payer_currency": "CNY"},
            "promotion_detail": [],
        });
        if let Some(txn) = &order.transaction_id {
            v["transaction_id"] = json!(txn);
            v["bank_type"] = json!("OTHERS");
            v["success_time"] = json!(order.success_time.map(cst));
            v["amount"]["payer_total"] = json!(order.total);
        }
        if let Some(openid) = &order.openid {
            v["payer"] = json!({ "openid": openid });
        }
        v
    }

    fn transaction_resource_of(&self, order: &Order) -> Value {
        let mut v = self.transaction_json(order);
        if let Some(o) = v.as_object_mut() {
            o.remove("promotion_detail");
        }
        v
    }

    /// The decrypted resource of a refund notification.
    pub fn refund_resource(&self, out_refund_no: &str) -> Option<Value> {
        let refund = self.state().refunds.get(out_refund_no).cloned()?;
        Some(self.refund_resource_of(&refund))
    }

    fn refund_resource_of(&self, r: &Refund) -> Value {
        let mut v = json!({
            "mchid": self.account.mchid,
            "out_trade_no": r.out_trade_no,
            "transaction_id": r.transaction_id,
            "out_refund_no": r.out_refund_no,
            "refund_id": r.refund_id,
            "refund_status": r.status.as_str(),
            "user_received_account": "支付用户零钱",
            "amount": {"total": r.total, "refund": r.refund, "payer_total": r.total, "payer_refund": r.refund},
        });
        if let Some(t) = r.success_time {
            v["success_time"] = json!(cst(t));
        }
        v
    }

    /// Settles a processing refund: `SUCCESS` unless [`WechatPaySim::set_next_refund_result`]
    /// said otherwise, and sends its notification.
    fn settle_refund(&self, out_refund_no: &str) {
        let settled = {
            let mut state = self.state();
            let result = state.next_refund_result.take().unwrap_or(RefundStatus::Success);
            let Some(refund) = state.refunds.get_mut(out_refund_no) else { return };
            if refund.status != RefundStatus::Processing {
                return;
            }
            refund.status = result;
            if result == RefundStatus::Success {
                refund.success_time = Some(Utc::now());
            }
            let refund = refund.clone();
            if let Some(order) = state.orders.get_mut(&refund.out_trade_no) {
                match result {
                    RefundStatus::Success => order.trade_state = TradeState::Refund,
                    _ => order.refunded = order.refunded.saturating_sub(refund.refund),
                }
            }
            refund
        };
        let (event, summary) = match settled.status {
            RefundStatus::Success => ("REFUND.SUCCESS", "退款成功"),
            RefundStatus::Abnormal => ("REFUND.ABNORMAL", "退款异常"),
            _ => ("REFUND.CLOSED", "退款关闭"),
        };
        if let Some(url) = &settled.notify_url {
            let n = self.notification(event, "refund", summary, self.refund_resource_of(&settled)).build();
            self.deliver(&settled.out_refund_no, url, n);
        }
    }
}

/// The WeChat Pay and web-authorisation routes.
pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/v3/pay/transactions/jsapi", post(api::create_jsapi))
        .route("/v3/pay/transactions/h5", post(api::create_h5))
        .route("/v3/pay/transactions/out-trade-no/{out_trade_no}", get(api::query_by_out_trade_no))
        .route("/v3/pay/transactions/id/{transaction_id}", get(api::query_by_transaction_id))
        .route("/v3/pay/transactions/out-trade-no/{out_trade_no}/close", post(api::close))
        .route("/v3/refund/domestic/refunds", post(api::create_refund))
        .route("/v3/refund/domestic/refunds/{out_refund_no}", get(api::query_refund))
        .route("/v3/certificates", get(api::certificates))
        .route("/v3/bill/tradebill", get(api::trade_bill))
        .route("/v3/billdownload/file", get(api::download_bill))
        .route(CASHIER_PATH, get(cashier::page))
        .route("/sim/wechatpay/checkmweb/pay", post(cashier::confirm))
        .route("/sim/wechatpay/pay/{out_trade_no}", post(cashier::control_pay))
        .route("/sim/wechatpay/deliveries", get(cashier::control_deliveries))
        .route("/connect/oauth2/authorize", get(oauth::authorize))
        .route("/sns/oauth2/access_token", get(oauth::access_token))
}
