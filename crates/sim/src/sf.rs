//! Stand-in for the SF Express Open Platform (`POST /std/service`).
//!
//! Like SF it takes the form fields `partnerID`, `requestID`, `serviceCode`, `timestamp`,
//! `msgDigest`, `msgData`, checks the partner and the digest (Base64 MD5 of the URL-encoded
//! `msgData + timestamp + checkword`), and answers SF's envelope: `apiResultCode`,
//! `apiErrorMsg`, `apiResponseID` and `apiResultData`, the business result as a JSON *string*.
//!
//! Services: `EXP_RECE_CREATE_ORDER` (a waybill `SF` + 13 digits per `orderId`; a repeated
//! `orderId` is business error `8016` 重复下单), `EXP_RECE_SEARCH_ORDER_RESP` (the waybill of
//! a booked `orderId`, `8024` 未下单 otherwise) and `EXP_RECE_SEARCH_ROUTES` (by waybill with
//! `checkPhoneNo`, the last four digits of the recipient's or sender's phone, or by `orderId`).
//! Every new waybill gets the scan 顺丰速运 已收取快件 (op code 50); tests add more with
//! [`SfSim::add_route`] or `POST /sim/sf/route`.
//!
//! Gateway codes used: `A1001` 必传参数不可为空, `A1002` 请求时效已过期 (timestamp more than
//! 10 minutes off), `A1004` 无对应服务权限 (unknown partner or service), `A1006` 数字签名无效.
//! Business codes other than SF's `8016` and `8024` are the stand-in's own: `S0001` for an
//! unreadable `msgData`, `8000` for a missing or wrong field.
//!
//! Pages: `GET /sim/sf` lists the orders and their routes, with a form per waybill that adds a
//! scan (`POST /sim/sf/route`: `waybill`, `place`, `remark`, `op_code`).

use crate::Sim;
use crate::accounts::SfAccount;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use rand::Rng;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use yiqian_providers::sf::digest::verify_msg_digest;

/// A contact (sender or recipient) as the stand-in received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfContactSeen {
    /// Company (may be empty).
    pub company: String,
    /// Contact person.
    pub contact: String,
    /// Mobile or landline.
    pub mobile: String,
    /// Province.
    pub province: String,
    /// City.
    pub city: String,
    /// County or district.
    pub county: String,
    /// Address.
    pub address: String,
}

/// One scan of a parcel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfRoute {
    /// `acceptTime`, `YYYY-MM-DD HH:MM:SS` Beijing time.
    pub accept_time: String,
    /// `acceptAddress`.
    pub accept_address: String,
    /// `remark`.
    pub remark: String,
    /// `opCode`, e.g. `50` picked up, `80` delivered.
    pub op_code: String,
}

/// An order the stand-in booked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SfOrder {
    /// The customer's `orderId`.
    pub order_id: String,
    /// The waybill number (`SF` + 13 digits).
    pub waybill_no: String,
    /// `expressTypeId`.
    pub express_type_id: i64,
    /// `payMethod`.
    pub pay_method: i64,
    /// `monthlyCard`.
    pub monthly_card: String,
    /// `parcelQty`.
    pub parcel_qty: i64,
    /// The cargo names.
    pub cargo: Vec<String>,
    /// The sender (`contactType` 1).
    pub sender: SfContactSeen,
    /// The recipient (`contactType` 2).
    pub recipient: SfContactSeen,
    /// The scans so far, oldest first.
    pub routes: Vec<SfRoute>,
    /// How many `EXP_RECE_CREATE_ORDER` calls named this `orderId` (1 when never repeated).
    pub create_calls: u32,
}

/// The SF Express stand-in's state.
pub struct SfSim {
    account: SfAccount,
    orders: Mutex<Vec<SfOrder>>,
}

fn beijing_now() -> String {
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    chrono::Utc::now().with_timezone(&beijing).format("%Y-%m-%d %H:%M:%S").to_string()
}

fn last4(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(4)..].iter().collect()
}

/// A JSON value as text (numbers too).
fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn int(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// SF's envelope around a business result (or a gateway error without one).
fn envelope(code: &str, message: &str, data: Option<Value>) -> Response {
    let body = json!({
        "apiResultCode": code,
        "apiErrorMsg": message,
        "apiResponseID": hex::encode_upper(rand::random::<[u8; 16]>()),
        "apiResultData": data.map(|d| d.to_string()),
    });
    ([(header::CONTENT_TYPE, "application/json;charset=UTF-8")], body.to_string()).into_response()
}

fn business_ok(msg_data: Value) -> Value {
    json!({ "success": true, "errorCode": "S0000", "errorMsg": null, "msgData": msg_data })
}

fn business_error(code: &str, message: &str) -> Value {
    json!({ "success": false, "errorCode": code, "errorMsg": message, "msgData": null })
}

impl SfSim {
    /// A stand-in for `account`.
    pub fn new(account: &SfAccount) -> SfSim {
        SfSim { account: account.clone(), orders: Mutex::new(Vec::new()) }
    }

    /// Every order booked so far, in booking order.
    pub fn orders(&self) -> Vec<SfOrder> {
        self.orders.lock().expect("sf state").clone()
    }

    /// Adds a scan (now) to `waybill`; false when there is no such waybill.
    pub fn add_route(&self, waybill: &str, place: &str, remark: &str, op_code: &str) -> bool {
        let mut orders = self.orders.lock().expect("sf state");
        let Some(order) = orders.iter_mut().find(|o| o.waybill_no == waybill) else {
            return false;
        };
        order.routes.push(SfRoute {
            accept_time: beijing_now(),
            accept_address: place.to_owned(),
            remark: remark.to_owned(),
            op_code: op_code.to_owned(),
        });
        true
    }

    /// Handles one `/std/service` call.
    fn service(&self, body: &[u8]) -> Response {
        let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let (Some(partner), Some(request_id), Some(service), Some(timestamp), Some(digest), Some(msg_data)) = (
            field("partnerID"),
            field("requestID"),
            field("serviceCode"),
            field("timestamp"),
            field("msgDigest"),
            field("msgData"),
        ) else {
            return envelope("A1001", "必传参数不可为空", None);
        };
        if request_id.len() > 40 {
            return envelope("A1001", "requestID长度不能超过40", None);
        }
        if partner != self.account.partner_id {
            return envelope("A1004", "无对应服务权限", None);
        }
        if !verify_msg_digest(msg_data, timestamp, &self.account.checkword, digest) {
            return envelope("A1006", "数字签名无效", None);
        }
        let Ok(ms) = timestamp.parse::<i64>() else {
            return envelope("A1001", "timestamp格式错误", None);
        };
        if (chrono::Utc::now().timestamp_millis() - ms).abs() > 10 * 60 * 1000 {
            return envelope("A1002", "请求时效已过期", None);
        }
        let Ok(msg) = serde_json::from_str::<Value>(msg_data) else {
            return envelope("A1000", "", Some(business_error("S0001", "非法的JSON格式")));
        };
        let result = match service {
            yiqian_providers::sf::SERVICE_CREATE_ORDER => self.create_order(&msg),
            yiqian_providers::sf::SERVICE_SEARCH_ORDER => self.search_order(&msg),
            yiqian_providers::sf::SERVICE_SEARCH_ROUTES => self.search_routes(&msg),
            _ => return envelope("A1004", "无对应服务权限", None),
        };
        tracing::debug!(service, success = result["success"].as_bool(), "sf stand-in answered");
        envelope("A1000", "", Some(result))
    }

    fn contact(msg: &Value, contact_type: i64) -> Option<SfContactSeen> {
        let c =
            msg.get("contactInfoList")?.as_array()?.iter().find(|c| int(c.get("contactType")) == Some(contact_type))?;
        let mobile = Some(text(c.get("mobile"))).filter(|m| !m.is_empty()).unwrap_or_else(|| text(c.get("tel")));
        Some(SfContactSeen {
            company: text(c.get("company")),
            contact: text(c.get("contact")),
            mobile,
            province: text(c.get("province")),
            city: text(c.get("city")),
            county: text(c.get("county")),
            address: text(c.get("address")),
        })
    }

    fn create_order(&self, msg: &Value) -> Value {
        let order_id = text(msg.get("orderId"));
        if order_id.is_empty() || order_id.len() > 64 {
            return business_error("8000", "orderId不能为空且不超过64位");
        }
        let mut orders = self.orders.lock().expect("sf state");
        if let Some(existing) = orders.iter_mut().find(|o| o.order_id == order_id) {
            existing.create_calls += 1;
            return business_error(yiqian_providers::sf::ERROR_DUPLICATE_ORDER, "重复下单");
        }
        let (Some(sender), Some(recipient)) = (Self::contact(msg, 1), Self::contact(msg, 2)) else {
            return business_error("8000", "寄件人和收件人信息不能为空");
        };
        for (who, c) in [("寄件人", &sender), ("收件人", &recipient)] {
            if c.contact.is_empty() || c.mobile.is_empty() || c.address.is_empty() {
                return business_error("8000", &format!("{who}的联系人、电话、地址不能为空"));
            }
        }
        let cargo: Vec<String> = msg
            .get("cargoDetails")
            .and_then(Value::as_array)
            .map(|list| list.iter().map(|c| text(c.get("name"))).filter(|n| !n.is_empty()).collect())
            .unwrap_or_default();
        if cargo.is_empty() {
            return business_error("8000", "托寄物信息不能为空");
        }
        let pay_method = int(msg.get("payMethod")).unwrap_or(1);
        let monthly_card = text(msg.get("monthlyCard"));
        if pay_method == 1 && monthly_card != self.account.monthly_card {
            return business_error("8000", "月结卡号不存在或与顾客编码不匹配");
        }
        let waybill_no = loop {
            let candidate = format!("SF{:013}", rand::thread_rng().gen_range(0..10_000_000_000_000u64));
            if !orders.iter().any(|o| o.waybill_no == candidate) {
                break candidate;
            }
        };
        let first_scan = SfRoute {
            accept_time: beijing_now(),
            accept_address: sender.city.clone(),
            remark: "顺丰速运 已收取快件".to_owned(),
            op_code: "50".to_owned(),
        };
        orders.push(SfOrder {
            order_id: order_id.clone(),
            waybill_no: waybill_no.clone(),
            express_type_id: int(msg.get("expressTypeId")).unwrap_or(1),
            pay_method,
            monthly_card,
            parcel_qty: int(msg.get("parcelQty")).unwrap_or(1),
            cargo,
            sender,
            recipient,
            routes: vec![first_scan],
            create_calls: 1,
        });
        business_ok(Self::order_msg(&order_id, &waybill_no))
    }

    fn order_msg(order_id: &str, waybill_no: &str) -> Value {
        json!({
            "orderId": order_id,
            "originCode": "591",
            "destCode": "010",
            "filterResult": 2,
            "remark": "",
            "waybillNoInfoList": [{ "waybillType": 1, "waybillNo": waybill_no }],
            "routeLabelInfo": [],
        })
    }

    fn search_order(&self, msg: &Value) -> Value {
        let order_id = text(msg.get("orderId"));
        let orders = self.orders.lock().expect("sf state");
        match orders.iter().find(|o| o.order_id == order_id) {
            Some(o) => business_ok(Self::order_msg(&o.order_id, &o.waybill_no)),
            None => business_error("8024", "未下单"),
        }
    }

    fn search_routes(&self, msg: &Value) -> Value {
        let tracking_type = int(msg.get("trackingType")).unwrap_or(1);
        let numbers: Vec<String> = msg
            .get("trackingNumber")
            .and_then(Value::as_array)
            .map(|list| list.iter().map(|n| text(Some(n))).filter(|n| !n.is_empty()).collect())
            .unwrap_or_default();
        if numbers.is_empty() || numbers.len() > 10 {
            return business_error("8000", "trackingNumber须为1至10个单号");
        }
        let checks: Vec<String> = text(msg.get("checkPhoneNo")).split(',').map(|c| c.trim().to_owned()).collect();
        let orders = self.orders.lock().expect("sf state");
        let resps: Vec<Value> = numbers
            .iter()
            .map(|number| {
                let order = orders.iter().find(|o| match tracking_type {
                    2 => &o.order_id == number,
                    _ => &o.waybill_no == number,
                });
                let routes: Vec<Value> = match order {
                    Some(o)
                        if tracking_type == 2
                            || checks
                                .iter()
                                .any(|c| *c == last4(&o.recipient.mobile) || *c == last4(&o.sender.mobile)) =>
                    {
                        o.routes
                            .iter()
                            .map(|r| {
                                json!({
                                    "acceptTime": r.accept_time,
                                    "acceptAddress": r.accept_address,
                                    "remark": r.remark,
                                    "opCode": r.op_code,
                                })
                            })
                            .collect()
                    }
                    _ => Vec::new(),
                };
                let mail_no = order.map_or(number.as_str(), |o| o.waybill_no.as_str());
                json!({ "mailNo": mail_no, "routes": routes })
            })
            .collect();
        business_ok(json!({ "routeResps": resps }))
    }

    fn page(&self) -> Markup {
        let orders = self.orders();
        html! {
            (DOCTYPE)
            html lang="zh-CN" {
                head { meta charset="utf-8"; title { "顺丰速运 stand-in" } }
                body {
                    h1 { "顺丰速运 stand-in" }
                    p { "顾客编码 " code { (self.account.partner_id) } ", " (orders.len()) " 单" }
                    @for o in &orders {
                        section {
                            h2 { (o.waybill_no) " — 订单 " (o.order_id) }
                            p { "收件: " (o.recipient.contact) ", " (o.recipient.province) (o.recipient.city) (o.recipient.county) }
                            ol {
                                @for r in &o.routes {
                                    li { (r.accept_time) " " (r.accept_address) " " (r.remark) " (" (r.op_code) ")" }
                                }
                            }
                            form method="post" action="/sim/sf/route" {
                                input type="hidden" name="waybill" value=(o.waybill_no);
                                input name="place" value=(o.recipient.city);
                                input name="remark" value="已签收";
                                input name="op_code" value="80" size="3";
                                button type="submit" { "添加路由" }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn service(State(sim): State<Sim>, body: Bytes) -> Response {
    sim.sf.service(&body)
}

async fn page(State(sim): State<Sim>) -> Markup {
    sim.sf.page()
}

async fn add_route(State(sim): State<Sim>, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if get("remark").is_empty() || get("op_code").is_empty() {
        return (StatusCode::BAD_REQUEST, "remark and op_code are required").into_response();
    }
    if sim.sf.add_route(get("waybill"), get("place"), get("remark"), get("op_code")) {
        Redirect::to("/sim/sf").into_response()
    } else {
        (StatusCode::NOT_FOUND, "no such waybill").into_response()
    }
}

/// The SF Express routes: the API and the stand-in's page and control.
pub fn routes() -> Router<Sim> {
    Router::new()
        .route("/std/service", post(service))
        .route("/sim/sf", get(page))
        .route("/sim/sf/route", post(add_route))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_four_digits() {
        assert_eq!(last4("13800138000"), "8000");
        assert_eq!(last4("0591-8888 1234"), "1234");
        assert_eq!(last4("12"), "12");
    }
}
