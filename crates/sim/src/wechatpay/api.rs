//! The merchant API (`/v3/…`): the `Authorization` check, signed answers, and the order,
//! refund, certificate and trade bill endpoints.

use super::{
    BillFile, CASHIER_PATH, Order, Refund, RefundStatus, TradeState, WechatPaySim, beijing_day, build_trade_bill, cst,
    random_alnum, random_digits,
};
use crate::Sim;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use yiqian_providers::wechatpay::bill::sha1_hex;
use yiqian_providers::wechatpay::certificates::PlatformCertificate;
use yiqian_providers::wechatpay::resource::encrypt_resource;

/// What a handler answers before signing.
pub(super) struct Reply {
    status: StatusCode,
    body: Option<Value>,
}

fn ok(body: Value) -> Reply {
    Reply { status: StatusCode::OK, body: Some(body) }
}

fn no_content() -> Reply {
    Reply { status: StatusCode::NO_CONTENT, body: None }
}

fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    Reply { status, body: Some(json!({ "code": code, "message": message })) }
}

fn param_error(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, "PARAM_ERROR", message)
}

fn sign_error(message: &str) -> Reply {
    error(StatusCode::UNAUTHORIZED, "SIGN_ERROR", message)
}

/// Whether `s` is a valid `out_trade_no`: 6–32 of `[0-9A-Za-z_-|*]`.
fn valid_out_trade_no(s: &str) -> bool {
    (6..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-|*".contains(&b))
}

fn valid_url(s: &str) -> bool {
    reqwest::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none())
}

impl WechatPaySim {
    /// Checks the `Authorization` header as WeChat Pay does.
    fn authenticate(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<(), Reply> {
        if headers.get("user-agent").is_none() {
            return Err(param_error("HTTP 头缺少 User-Agent"));
        }
        let value = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| sign_error("缺少 Authorization 头"))?;
        let params = value
            .strip_prefix("WECHATPAY2-SHA256-RSA2048 ")
            .ok_or_else(|| sign_error("认证类型不是 WECHATPAY2-SHA256-RSA2048"))?;
        let mut fields = BTreeMap::new();
        for part in params.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(|| sign_error("Authorization 格式错误"))?;
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| sign_error("Authorization 格式错误"))?;
            fields.insert(k.trim(), v);
        }
        let field = |name: &str| fields.get(name).copied().ok_or_else(|| sign_error("Authorization 缺少参数"));
        let (mchid, nonce, timestamp, serial, signature) =
            (field("mchid")?, field("nonce_str")?, field("timestamp")?, field("serial_no")?, field("signature")?);
        if mchid != self.account.mchid {
            return Err(sign_error("商户号不存在或与证书不匹配"));
        }
        if !serial.eq_ignore_ascii_case(&self.account.merchant_serial) {
            return Err(sign_error("商户证书序列号有误"));
        }
        let ts: i64 = timestamp.parse().map_err(|_| sign_error("timestamp 格式错误"))?;
        if (ts - Utc::now().timestamp()).abs() > 300 {
            return Err(sign_error("请求时间与系统时间相差过大"));
        }
        if nonce.is_empty() {
            return Err(sign_error("nonce_str 为空"));
        }
        let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        let mut message = format!("{}\n{path}\n{timestamp}\n{nonce}\n", method.as_str()).into_bytes();
        message.extend_from_slice(body);
        message.push(b'\n');
        if !self.merchant.verify(&message, signature) {
            return Err(sign_error("签名错误，请检查后再试"));
        }
        Ok(())
    }

    /// Signs an answer with the platform key.
    fn signed(&self, reply: Reply) -> Response {
        let body = reply.body.map(|b| b.to_string()).unwrap_or_default();
        let timestamp = Utc::now().timestamp().to_string();
        let nonce = random_alnum(32);
        let signature = self
            .platform
            .sign(format!("{timestamp}\n{nonce}\n{body}\n").as_bytes())
            .expect("an RSA key signs with the system RNG");
        let mut response = (reply.status, body.clone()).into_response();
        let h = response.headers_mut();
        let mut set = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        };
        set("wechatpay-timestamp", &timestamp);
        set("wechatpay-nonce", &nonce);
        set("wechatpay-signature", &signature);
        set("wechatpay-serial", &self.current_serial());
        set("request-id", &random_alnum(32));
        if body.is_empty() {
            h.remove("content-type");
        } else {
            set("content-type", "application/json; charset=utf-8");
        }
        response
    }

    /// Authenticates, runs `f`, records the call and signs the answer.
    fn handle(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        f: impl FnOnce(&WechatPaySim) -> Reply,
    ) -> Response {
        let reply = match self.authenticate(method, uri, headers, body) {
            Ok(()) => f(self),
            Err(reply) => reply,
        };
        self.record(method, uri, &reply);
        self.signed(reply)
    }

    /// Records a call and how it was answered.
    fn record(&self, method: &Method, uri: &Uri, reply: &Reply) {
        let code = reply.body.as_ref().and_then(|b| b.get("code")).and_then(Value::as_str).map(str::to_owned);
        if let Some(code) = &code {
            tracing::info!(path = %uri.path(), status = reply.status.as_u16(), code = %code, "stand-in refused a call");
        }
        self.state().calls.push(super::ApiCall {
            method: method.to_string(),
            path: uri.path_and_query().map_or(uri.path(), |p| p.as_str()).to_owned(),
            status: reply.status.as_u16(),
            code,
        });
    }

    fn create(&self, jsapi: bool, body: &[u8]) -> Reply {
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return param_error("请求体不是合法的 JSON");
        };
        let s =
            |path: &[&str]| path.iter().try_fold(&request, |v, k| v.get(*k)).and_then(Value::as_str).map(str::to_owned);
        if s(&["appid"]).as_deref() != Some(&self.account.appid) {
            return error(StatusCode::BAD_REQUEST, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配");
        }
        if s(&["mchid"]).as_deref() != Some(&self.account.mchid) {
            return error(StatusCode::BAD_REQUEST, "MCH_NOT_EXISTS", "商户号不存在");
        }
        let Some(description) = s(&["description"]).filter(|d| !d.is_empty() && d.len() <= 127) else {
            return param_error("description 必填，且不超过127字节");
        };
        let Some(out_trade_no) = s(&["out_trade_no"]).filter(|o| valid_out_trade_no(o)) else {
            return param_error("out_trade_no 须为6-32位数字、字母、_-|*");
        };
        let Some(notify_url) = s(&["notify_url"]).filter(|u| valid_url(u)) else {
            return param_error("notify_url 须为不带参数的 http(s) 地址");
        };
        let Some(total) = request.get("amount").and_then(|a| a.get("total")).and_then(Value::as_u64).filter(|t| *t > 0)
        else {
            return param_error("amount.total 须为正整数（分）");
        };
        if s(&["amount", "currency"]).is_some_and(|c| c != "CNY") {
            return param_error("amount.currency 只支持 CNY");
        }
        let time_expire = match s(&["time_expire"]) {
            None => None,
            Some(t) => match DateTime::parse_from_rfc3339(&t) {
                Ok(t) => Some(t),
                Err(_) => return param_error("time_expire 须为 RFC 3339 格式"),
            },
        };
        let openid = if jsapi {
            match s(&["payer", "openid"]).filter(|o| !o.is_empty()) {
                Some(o) => Some(o),
                None => return param_error("payer.openid 必填"),
            }
        } else {
            if s(&["scene_info", "payer_client_ip"]).is_none_or(|ip| ip.is_empty()) {
                return param_error("scene_info.payer_client_ip 必填");
            }
            if !matches!(s(&["scene_info", "h5_info", "type"]).as_deref(), Some("iOS" | "Android" | "Wap")) {
                return param_error("scene_info.h5_info.type 须为 iOS、Android 或 Wap");
            }
            None
        };
        let trade_type = if jsapi { "JSAPI" } else { "MWEB" };
        let mut state = self.state();
        let prepay_id = match state.orders.get(&out_trade_no) {
            Some(existing) => {
                match existing.trade_state {
                    TradeState::Success | TradeState::Refund => {
                        return error(StatusCode::BAD_REQUEST, "ORDERPAID", "该订单已支付");
                    }
                    TradeState::Closed => return error(StatusCode::BAD_REQUEST, "ORDER_CLOSED", "订单已关闭"),
                    TradeState::NotPay => {}
                }
                if existing.trade_type != trade_type || existing.request != request {
                    return error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "商户订单号重复");
                }
                existing.prepay_id.clone()
            }
            None => {
                let prepay_id =
                    format!("wx{}{}", Utc::now().format("%d%H%M%S"), hex::encode(rand::random::<[u8; 13]>()));
                state.orders.insert(
                    out_trade_no.clone(),
                    Order {
                        out_trade_no: out_trade_no.clone(),
                        trade_type,
                        request,
                        prepay_id: prepay_id.clone(),
                        description,
                        total,
                        notify_url,
                        openid,
                        time_expire,
                        trade_state: TradeState::NotPay,
                        transaction_id: None,
                        success_time: None,
                        refunded: 0,
                    },
                );
                prepay_id
            }
        };
        if jsapi {
            ok(json!({ "prepay_id": prepay_id }))
        } else {
            let package = random_digits(10);
            ok(json!({ "h5_url": format!("{}{CASHIER_PATH}?prepay_id={prepay_id}&package={package}", self.base_url) }))
        }
    }

    fn query(&self, order: Option<Order>, uri: &Uri) -> Reply {
        let mchid = uri.query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "mchid").map(|(_, v)| v.into_owned())
        });
        if mchid.as_deref() != Some(&self.account.mchid) {
            return param_error("mchid 必填，且须为请求方商户号");
        }
        match order {
            Some(order) => ok(self.transaction_json(&order)),
            None => error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在"),
        }
    }

    fn close(&self, out_trade_no: &str, body: &[u8]) -> Reply {
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        if request.get("mchid").and_then(Value::as_str) != Some(&self.account.mchid) {
            return param_error("mchid 必填，且须为请求方商户号");
        }
        let mut state = self.state();
        let Some(order) = state.orders.get_mut(out_trade_no) else {
            return error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在");
        };
        match order.trade_state {
            TradeState::NotPay | TradeState::Closed => {
                order.trade_state = TradeState::Closed;
                no_content()
            }
            TradeState::Success | TradeState::Refund => error(StatusCode::BAD_REQUEST, "ORDERPAID", "订单已支付"),
        }
    }

    fn refund_json(&self, r: &Refund) -> Value {
        let mut v = json!({
            "refund_id": r.refund_id,
            "out_refund_no": r.out_refund_no,
            "transaction_id": r.transaction_id,
            "out_trade_no": r.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": cst(r.create_time),
            "status": r.status.as_str(),
            "funds_account": "AVAILABLE",
            "amount": {
                "total": r.total, "refund": r.refund, "payer_total": r.total, "payer_refund": r.refund,
                "settlement_total": r.total, "settlement_refund": r.refund, "discount_refund": 0,
                "currency": "CNY", "from": [],
            },
            "promotion_detail": [],
        });
        if let Some(t) = r.success_time {
            v["success_time"] = json!(cst(t));
        }
        v
    }

    /// Creates (or repeats) a refund; `Ok(Some(no))` when a new one must be settled.
    fn create_refund(&self, body: &[u8]) -> (Reply, Option<String>) {
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return (param_error("请求体不是合法的 JSON"), None);
        };
        let s = |k: &str| request.get(k).and_then(Value::as_str).map(str::to_owned);
        let n = |k: &str| request.get("amount").and_then(|a| a.get(k)).and_then(Value::as_u64);
        let Some(out_refund_no) = s("out_refund_no").filter(|o| !o.is_empty() && o.len() <= 64) else {
            return (param_error("out_refund_no 必填"), None);
        };
        let (Some(refund), Some(total)) = (n("refund").filter(|r| *r > 0), n("total")) else {
            return (param_error("amount.refund 与 amount.total 必填"), None);
        };
        if request.get("amount").and_then(|a| a.get("currency")).and_then(Value::as_str) != Some("CNY") {
            return (param_error("amount.currency 必填，且只支持 CNY"), None);
        }
        let notify_url = s("notify_url");
        if notify_url.as_deref().is_some_and(|u| !valid_url(u)) {
            return (param_error("notify_url 须为不带参数的 http(s) 地址"), None);
        }
        let mut state = self.state();
        let order_key = match (s("out_trade_no"), s("transaction_id")) {
            (Some(no), _) => Some(no),
            (None, Some(txn)) => state
                .orders
                .values()
                .find(|o| o.transaction_id.as_deref() == Some(&txn))
                .map(|o| o.out_trade_no.clone()),
            (None, None) => return (param_error("out_trade_no 与 transaction_id 须填其一"), None),
        };
        if let Some(existing) = state.refunds.get(&out_refund_no) {
            if Some(&existing.out_trade_no) != order_key.as_ref() || existing.refund != refund {
                return (error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "退款单号重复，但退款参数不一致"), None);
            }
            return (ok(self.refund_json(existing)), None);
        }
        let Some(order) = order_key.and_then(|k| state.orders.get_mut(&k)) else {
            return (error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "订单不存在"), None);
        };
        let Some(transaction_id) = order.transaction_id.clone() else {
            return (error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "订单未支付，不能退款"), None);
        };
        if total != order.total {
            return (param_error("amount.total 与原订单金额不符"), None);
        }
        if order.refunded + refund > order.total {
            return (error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "申请退款金额超过订单可退金额"), None);
        }
        order.refunded += refund;
        let record = Refund {
            out_refund_no: out_refund_no.clone(),
            refund_id: format!("50{}", random_digits(30)),
            out_trade_no: order.out_trade_no.clone(),
            transaction_id,
            refund,
            total,
            notify_url,
            status: RefundStatus::Processing,
            create_time: Utc::now(),
            success_time: None,
        };
        let reply = ok(self.refund_json(&record));
        state.refunds.insert(out_refund_no.clone(), record);
        (reply, Some(out_refund_no))
    }

    fn certificate_list(&self) -> Reply {
        let key = self.account.apiv3_key.as_bytes();
        let nonce = random_alnum(12);
        let Ok(ciphertext) = encrypt_resource(key, &nonce, "certificate", self.account.platform_cert_pem.as_bytes())
        else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "SYSTEM_ERROR", "APIv3 密钥无效");
        };
        let Ok(cert) = PlatformCertificate::from_pem(&self.account.platform_cert_pem) else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "SYSTEM_ERROR", "平台证书无效");
        };
        ok(json!({ "data": [{
            "serial_no": self.account.platform_cert_serial,
            "effective_time": cst(cert.not_before),
            "expire_time": cst(cert.not_after),
            "encrypt_certificate": {
                "algorithm": "AEAD_AES_256_GCM",
                "nonce": nonce,
                "associated_data": "certificate",
                "ciphertext": ciphertext,
            },
        }]}))
    }
}

/// A query parameter's value.
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query().and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned()))
}

/// How long a bill's download URL is good.
const BILL_URL_LIFETIME: chrono::Duration = chrono::Duration::minutes(5);

impl WechatPaySim {
    /// `GET /v3/bill/tradebill`: the hash and download URL of a day's `ALL` bill (the only type
    /// served, uncompressed only), for any day up to today in Beijing.
    fn bill_request(&self, uri: &Uri) -> Reply {
        let day = query_param(uri, "bill_date")
            .filter(|d| d.len() == 10)
            .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
        let Some(day) = day else {
            return param_error("bill_date 必填，格式为 yyyy-MM-DD");
        };
        if day > beijing_day(Utc::now()) {
            return param_error("bill_date 不能晚于今天");
        }
        if query_param(uri, "bill_type").is_some_and(|t| t != "ALL") {
            return param_error("模拟环境仅支持 bill_type=ALL");
        }
        if query_param(uri, "tar_type").is_some() {
            return param_error("模拟环境不提供压缩账单");
        }
        let mut state = self.state();
        if std::mem::take(&mut state.bill_creating_next) {
            return error(StatusCode::BAD_REQUEST, "STATEMENT_CREATING", "账单生成中，请稍后再试");
        }
        let Some(genuine) = build_trade_bill(&self.account, day, &state.orders, state.refunds.values(), false) else {
            return error(StatusCode::BAD_REQUEST, "NO_STATEMENT_EXIST", "账单文件不存在");
        };
        let hash_value = sha1_hex(genuine.as_bytes());
        let served = if std::mem::take(&mut state.corrupt_next_bill) {
            build_trade_bill(&self.account, day, &state.orders, state.refunds.values(), true).unwrap_or_default()
        } else {
            genuine
        };
        let now = Utc::now();
        state.bills.retain(|_, b| b.expires > now);
        let token = random_alnum(48);
        state.bills.insert(token.clone(), BillFile { body: served.into_bytes(), expires: now + BILL_URL_LIFETIME });
        ok(json!({
            "hash_type": "SHA1",
            "hash_value": hash_value,
            "download_url": format!("{}/v3/billdownload/file?token={token}", self.base_url),
        }))
    }

    /// The file behind a download token.
    fn bill_file(&self, uri: &Uri) -> Result<Vec<u8>, Reply> {
        let token = query_param(uri, "token").ok_or_else(|| param_error("token 必填"))?;
        let state = self.state();
        match state.bills.get(&token) {
            Some(file) if file.expires > Utc::now() => Ok(file.body.clone()),
            _ => Err(error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "下载链接已失效，请重新申请账单")),
        }
    }
}

/// `POST /v3/pay/transactions/jsapi`.
pub(super) async fn create_jsapi(
    State(sim): State<Sim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.wechatpay.handle(&method, &uri, &headers, &body, |w| w.create(true, &body))
}

/// `POST /v3/pay/transactions/h5`.
pub(super) async fn create_h5(
    State(sim): State<Sim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.wechatpay.handle(&method, &uri, &headers, &body, |w| w.create(false, &body))
}

/// `GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=…`.
pub(super) async fn query_by_out_trade_no(
    State(sim): State<Sim>,
    Path(out_trade_no): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.wechatpay.handle(&method, &uri, &headers, &body, |w| w.query(w.order(&out_trade_no), &uri))
}

/// `GET /v3/pay/transactions/id/{transaction_id}?mchid=…`.
pub(super) async fn query_by_transaction_id(
    State(sim): State<Sim>,
    Path(transaction_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.wechatpay.handle(&method, &uri, &headers, &body, |w| {
        let order = w.state().orders.values().find(|o| o.transaction_id.as_deref() == Some(&transaction_id)).cloned();
        w.query(order, &uri)
    })
}

/// `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close`.
pub(super) async fn close(
    State(sim): State<Sim>,
    Path(out_trade_no): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.wechatpay.handle(&method, &uri, &headers, &body, |w| w.close(&out_trade_no, &body))
}

/// `POST /v3/refund/domestic/refunds`: answers `PROCESSING`, settles a moment later.
pub(super) async fn create_refund(
    State(sim): State<Sim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut created = None;
    let response = sim.wechatpay.handle(&method, &uri, &headers, &body, |w| {
        let (reply, new) = w.create_refund(&body);
        created = new;
        reply
    });
    if let Some(out_refund_no) = created {
        let w = sim.wechatpay.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            w.settle_refund(&out_refund_no);
        });
    }
    response
}

/// `GET /v3/refund/domestic/refunds/{out_refund_no}`.
pub(super) async fn query_refund(
    State(sim): State<Sim>,
    Path(out_refund_no): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.wechatpay.handle(&method, &uri, &headers, &body, |w| {
        let refund = w.state().refunds.get(&out_refund_no).cloned();
        match refund {
            Some(r) => ok(w.refund_json(&r)),
            None => error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "退款单不存在"),
        }
    })
}

/// `GET /v3/certificates`.
pub(super) async fn certificates(
    State(sim): State<Sim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.wechatpay.handle(&method, &uri, &headers, &body, |w| w.certificate_list())
}

/// `GET /v3/bill/tradebill?bill_date=…&bill_type=ALL`.
pub(super) async fn trade_bill(
    State(sim): State<Sim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.wechatpay.handle(&method, &uri, &headers, &body, |w| w.bill_request(&uri))
}

/// `GET /v3/billdownload/file?token=…`: the signature is checked; the file is served unsigned
/// (refusals are signed JSON like any other).
pub(super) async fn download_bill(
    State(sim): State<Sim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let w = &sim.wechatpay;
    match w.authenticate(&method, &uri, &headers, &body).and_then(|()| w.bill_file(&uri)) {
        Ok(file) => {
            w.record(&method, &uri, &Reply { status: StatusCode::OK, body: None });
            (StatusCode::OK, [("content-type", "text/plain; charset=utf-8")], file).into_response()
        }
        Err(reply) => {
            w.record(&method, &uri, &reply);
            w.signed(reply)
        }
    }
}
