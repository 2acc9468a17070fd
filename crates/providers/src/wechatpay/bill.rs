//! WeChat Pay's trade bill (交易账单) of a day, for reconciliation: the parser of the bill
//! file and the two-step download behind [`crate::payment::PaymentGateway::daily_bill`].
//!
//! 1. `GET /v3/bill/tradebill?bill_date=YYYY-MM-DD&bill_type=ALL`, signed like every call; the
//!    answer is signed and names the file's SHA-1 and a short-lived `download_url`. A day
//!    without trades answers `NO_STATEMENT_EXIST`; a bill not generated yet (before about
//!    10:00 the next day) `STATEMENT_CREATING`.
//! 2. `GET download_url`, signed with the merchant key over the URL's path and query. The file
//!    is not signed: its SHA-1 must equal the announced one before anything in it is read.
//!
//! The file is UTF-8 text: a header line naming the columns, one line per payment or refund
//! whose every field starts with a backquote (`` ` ``) and is separated by a comma, then the
//! summary header (`总交易单数,…`) and the summary line. Columns are found by their names in
//! the header, so reordered or added columns do no harm. Amounts are yuan with two decimals and
//! are converted to fen exactly.

use super::config::PROVIDER;
use super::gateway::{ErrorBody, WechatPayGateway, error_of, json, rejected, transient};
use crate::ProviderError;
use crate::payment::BillEntry;
use chrono::NaiveDate;
use serde::Deserialize;
use yiqian_domain::Fen;

/// The column holding WeChat Pay's transaction id.
const COLUMN_TRANSACTION_ID: &str = "微信订单号";
/// The column holding the merchant's order number.
const COLUMN_OUT_TRADE_NO: &str = "商户订单号";
/// The column holding the row's kind: `SUCCESS` for a payment, `REFUND` for a refund.
const COLUMN_STATE: &str = "交易状态";
/// The column holding the currency.
const COLUMN_CURRENCY: &str = "货币种类";
/// The column holding the order's total.
const COLUMN_TOTAL: &str = "订单金额";
/// The column holding the settled total, read when [`COLUMN_TOTAL`] is absent.
const COLUMN_SETTLEMENT_TOTAL: &str = "应结订单金额";
/// The first column of the summary header, which ends the detail lines.
const SUMMARY_HEADER: &str = "总交易单数";

/// Why a bill file could not be read. Messages name lines and columns, never their contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillError {
    /// The file has no header line.
    #[error("the bill has no header line")]
    NoHeader,
    /// The header lacks a column this parser needs.
    #[error("the bill header lacks the column {0}")]
    MissingColumn(&'static str),
    /// A detail line is malformed.
    #[error("bill line {line}: {reason}")]
    Line {
        /// The line's number in the file, from 1.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The file ends before its summary header (it was cut short).
    #[error("the bill ends without its summary")]
    NoSummary,
}

/// The lower-case hex SHA-1 of `data`, as WeChat Pay announces a bill's `hash_value`.
pub fn sha1_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data))
}

/// Parses an amount in yuan (`150.00`, `0.5`, `12`) into fen, exactly. `None` for anything
/// else: signs, more than two decimals, an empty part, or an overflow.
pub fn parse_yuan(s: &str) -> Option<Fen> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 2 || s.ends_with('.') {
        return None;
    }
    let yuan: u64 = whole.parse().ok()?;
    let cents = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<u64>().ok()? * 10,
        _ => fraction.parse::<u64>().ok()?,
    };
    yuan.checked_mul(100)?.checked_add(cents).map(Fen)
}

/// Splits a detail line into its fields, without their leading backquotes. Fields are split
/// where a comma is followed by a backquote, so a comma inside a field (a product name) is kept;
/// trailing fields written without a backquote are split at plain commas.
fn fields(line: &str) -> Option<Vec<&str>> {
    let rest = line.strip_prefix('`')?;
    let mut out: Vec<&str> = rest.split(",`").collect();
    if let Some(last) = out.pop() {
        out.extend(last.split(','));
    }
    Some(out)
}

/// The positions of the columns read.
struct Columns {
    transaction_id: usize,
    out_trade_no: usize,
    state: usize,
    currency: Option<usize>,
    total: usize,
}

impl Columns {
    fn of(header: &str) -> Result<Columns, BillError> {
        let names: Vec<&str> = header.split(',').map(|n| n.trim().trim_start_matches('`').trim()).collect();
        let find = |name: &str| names.iter().position(|n| *n == name);
        let need = |name: &'static str| find(name).ok_or(BillError::MissingColumn(name));
        Ok(Columns {
            transaction_id: need(COLUMN_TRANSACTION_ID)?,
            out_trade_no: need(COLUMN_OUT_TRADE_NO)?,
            state: need(COLUMN_STATE)?,
            currency: find(COLUMN_CURRENCY),
            total: find(COLUMN_TOTAL).map_or_else(|| need(COLUMN_SETTLEMENT_TOTAL), Ok)?,
        })
    }
}

/// Parses a trade bill (`bill_type=ALL`, `SUCCESS` or `REFUND`) into its payments, in file
/// order. Rows whose 交易状态 is `SUCCESS` are payments; `REFUND` rows (refunds, listed under
/// the original order) and `REVOKED` rows (payments reversed) are not. Any other state, a
/// currency other than CNY, a missing id or an amount that is not yuan with at most two
/// decimals is an error naming the line.
pub fn parse_trade_bill(text: &str) -> Result<Vec<BillEntry>, BillError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).enumerate().map(|(i, l)| (i + 1, l));
    let header = lines.by_ref().find(|(_, l)| !l.trim().is_empty()).map(|(_, l)| l).ok_or(BillError::NoHeader)?;
    let columns = Columns::of(header)?;
    let mut entries = Vec::new();
    for (line, content) in lines {
        if content.trim().is_empty() {
            continue;
        }
        if content.trim_start_matches('`').starts_with(SUMMARY_HEADER) {
            return Ok(entries);
        }
        let malformed = |reason: &'static str| BillError::Line { line, reason };
        let fields = fields(content).ok_or_else(|| malformed("a detail field does not start with a backquote"))?;
        let field = |i: usize| fields.get(i).map(|f| f.trim()).ok_or_else(|| malformed("too few fields"));
        match field(columns.state)? {
            "SUCCESS" => {}
            "REFUND" | "REVOKED" => continue,
            _ => return Err(malformed("unknown trade state")),
        }
        if let Some(i) = columns.currency
            && field(i)? != "CNY"
        {
            return Err(malformed("the currency is not CNY"));
        }
        let out_trade_no = field(columns.out_trade_no)?;
        let gateway_txn = field(columns.transaction_id)?;
        if out_trade_no.is_empty() || gateway_txn.is_empty() {
            return Err(malformed("a payment without order number or transaction id"));
        }
        let amount = parse_yuan(field(columns.total)?).ok_or_else(|| malformed("the order amount is not yuan"))?;
        entries.push(BillEntry { out_trade_no: out_trade_no.to_owned(), gateway_txn: gateway_txn.to_owned(), amount });
    }
    Err(BillError::NoSummary)
}

/// The answer of `GET /v3/bill/tradebill`.
#[derive(Deserialize)]
struct BillAnswer {
    hash_type: String,
    hash_value: String,
    download_url: String,
}

/// Whether a download URL may receive our signed request: on the configured API origin, or on
/// WeChat Pay's own HTTPS hosts (the bill of a merchant using the backup domain may be served
/// from the main one).
fn trusted_download_url(base_url: &str, url: &reqwest::Url) -> bool {
    let same_origin = reqwest::Url::parse(base_url).is_ok_and(|base| base.origin() == url.origin());
    let wechat = url.scheme() == "https" && url.host_str().is_some_and(|h| h.ends_with(".mch.weixin.qq.com"));
    same_origin || wechat
}

impl WechatPayGateway {
    /// Downloads and parses the `ALL` trade bill of `day`: its payments (empty for a day
    /// without trades). A bill not generated yet, or a file whose SHA-1 does not match, is a
    /// transient error; a bill this parser cannot read is a refusal.
    pub(super) async fn trade_bill(&self, day: NaiveDate) -> Result<Vec<BillEntry>, ProviderError> {
        let what = "trade bill";
        let path = format!("/v3/bill/tradebill?bill_date={}&bill_type=ALL", day.format("%Y-%m-%d"));
        let answer = self.call(reqwest::Method::GET, &path, "", what).await?;
        if (400..500).contains(&answer.status) {
            let code = serde_json::from_slice::<ErrorBody>(&answer.body).ok().and_then(|e| e.code);
            match code.as_deref() {
                Some("NO_STATEMENT_EXIST") => return Ok(Vec::new()),
                Some("STATEMENT_CREATING") => return Err(transient(format!("{what}: not generated yet"))),
                _ => {}
            }
        }
        if !(200..300).contains(&answer.status) {
            return Err(error_of(&answer, what));
        }
        let BillAnswer { hash_type, hash_value, download_url } = json(&answer, what)?;
        if !hash_type.eq_ignore_ascii_case("SHA1") {
            return Err(rejected(format!("{what}: unsupported hash_type")));
        }
        let url = reqwest::Url::parse(&download_url)
            .ok()
            .filter(|u| trusted_download_url(&self.base_url, u))
            .ok_or_else(|| {
                tracing::warn!(provider = PROVIDER, "{what}: download_url outside WeChat Pay's hosts");
                rejected(format!("{what}: download_url outside WeChat Pay's hosts"))
            })?;
        let what = "bill download";
        let file = self.send_to(reqwest::Method::GET, url, "").await?;
        if !(200..300).contains(&file.status) {
            return Err(error_of(&file, what));
        }
        if !sha1_hex(&file.body).eq_ignore_ascii_case(hash_value.trim()) {
            tracing::warn!(provider = PROVIDER, %day, "{what}: the file's SHA-1 does not match hash_value");
            return Err(transient(format!("{what}: the file's SHA-1 does not match hash_value")));
        }
        let text = std::str::from_utf8(&file.body).map_err(|_| rejected(format!("{what}: the bill is not UTF-8")))?;
        let entries = parse_trade_bill(text).map_err(|e| {
            tracing::warn!(provider = PROVIDER, %day, "{what}: {e}");
            rejected(format!("{what}: {e}"))
        })?;
        tracing::info!(provider = PROVIDER, %day, payments = entries.len(), "trade bill read");
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,\
货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,\
订单金额,申请退款金额,费率备注";

    /// A bill as WeChat Pay writes one: two payments (one of them refunded the same day, with a
    /// comma in its product name), the refund row, the summary, CRLF line ends.
    fn realistic() -> String {
        [
            HEADER,
            "`2026-11-25 10:00:00,`wx2421b1c4370ec43b,`10000100,`0,`,`4200000000202611250000000001,`PY6TN8SRRTLBP4S6CUD4WQ,\
`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`MWEB,`SUCCESS,`OTHERS,`CNY,`150.00,`0.00,`0,`0,`0.00,`0.00,`,`,`个人数字证书,`,`0.90000,\
`0.60%,`150.00,`0.00,`",
            "`2026-11-25 11:30:00,`wx2421b1c4370ec43b,`10000100,`0,`,`4200000000202611250000000002,`PZ7ABcd_99,\
`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`SUCCESS,`CMB_DEBIT,`CNY,`0.01,`0.00,`0,`0,`0.00,`0.00,`,`,`证书,一年,`,`0.00000,\
`0.60%,`0.01,`0.00,`",
            "`2026-11-25 12:00:00,`wx2421b1c4370ec43b,`10000100,`0,`,`4200000000202611250000000002,`PZ7ABcd_99,\
`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`REFUND,`CMB_DEBIT,`CNY,`0.00,`0.00,`50300000402026112500000000001,`RF0001,\
`0.01,`0.00,`ORIGINAL,`SUCCESS,`证书,一年,`,`0.00000,`0.60%,`0.00,`0.01,`",
            "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额",
            "`3,`150.01,`0.01,`0.00,`0.90000,`150.01,`0.01",
            "",
        ]
        .join("\r\n")
    }

    #[test]
    fn a_realistic_bill_yields_its_payments_only() {
        let entries = parse_trade_bill(&realistic()).unwrap();
        assert_eq!(
            entries,
            vec![
                BillEntry {
                    out_trade_no: "PY6TN8SRRTLBP4S6CUD4WQ".into(),
                    gateway_txn: "4200000000202611250000000001".into(),
                    amount: Fen(15000),
                },
                BillEntry {
                    out_trade_no: "PZ7ABcd_99".into(),
                    gateway_txn: "4200000000202611250000000002".into(),
                    amount: Fen(1),
                },
            ]
        );
        // A BOM and LF line ends read the same.
        let lf = format!("\u{feff}{}", realistic().replace("\r\n", "\n"));
        assert_eq!(parse_trade_bill(&lf).unwrap(), entries);
    }

    #[test]
    fn a_bill_without_trades_and_extra_columns_are_fine() {
        let empty = format!("{HEADER}\n总交易单数,应结订单总金额\n`0,`0.00\n");
        assert_eq!(parse_trade_bill(&empty).unwrap(), vec![]);
        let wider = format!(
            "{HEADER},新增列\n`2026-11-25 10:00:00,`wx1,`10000100,`0,`,`42001,`P000001,`o1,`JSAPI,`SUCCESS,\
`OTHERS,`CNY,`90.00,`0.00,`0,`0,`0.00,`0.00,`,`,`证书,`,`0.54000,`0.60%,`100.00,`0.00,`,`x\n总交易单数\n`1\n"
        );
        let entries = parse_trade_bill(&wider).unwrap();
        assert_eq!(entries.len(), 1);
        // 订单金额 (what the payer was charged), not 应结订单金额 (after vouchers).
        assert_eq!(entries[0].amount, Fen(10000));
    }

    #[test]
    fn malformed_bills_name_the_line_and_not_its_content() {
        let bad_amount = realistic().replace("`0.60%,`150.00,", "`0.60%,`150.0O,");
        let e = parse_trade_bill(&bad_amount).unwrap_err();
        assert_eq!(e, BillError::Line { line: 2, reason: "the order amount is not yuan" });
        assert!(!e.to_string().contains("150") && !e.to_string().contains("PY6TN8"), "{e}");

        let three_decimals = realistic().replace("`0.60%,`0.01,", "`0.60%,`0.011,");
        assert_eq!(
            parse_trade_bill(&three_decimals).unwrap_err(),
            BillError::Line { line: 3, reason: "the order amount is not yuan" }
        );
        let no_backquote = realistic().replace("`2026-11-25 11:30:00", "2026-11-25 11:30:00");
        assert!(matches!(parse_trade_bill(&no_backquote), Err(BillError::Line { line: 3, .. })));
        let unknown_state = realistic().replace("`MWEB,`SUCCESS", "`MWEB,`PAYERROR");
        assert!(matches!(parse_trade_bill(&unknown_state), Err(BillError::Line { line: 2, .. })));
        let dollars = realistic().replace("`OTHERS,`CNY", "`OTHERS,`USD");
        assert!(matches!(parse_trade_bill(&dollars), Err(BillError::Line { line: 2, .. })));
        let short = format!("{HEADER}\n`2026-11-25 10:00:00,`wx1,`10000100,`0,`,`42001,`P000001,`o1,`JSAPI,`SUCCESS\n");
        assert!(matches!(parse_trade_bill(&short), Err(BillError::Line { line: 2, reason: "too few fields" })));

        let cut = realistic().split("总交易单数").next().unwrap().to_owned();
        assert_eq!(parse_trade_bill(&cut).unwrap_err(), BillError::NoSummary);
        assert_eq!(parse_trade_bill("\r\n\n").unwrap_err(), BillError::NoHeader);
        let no_txn = realistic().replace(",微信订单号,", ",微信单号,");
        assert_eq!(parse_trade_bill(&no_txn).unwrap_err(), BillError::MissingColumn("微信订单号"));
    }

    #[test]
    fn yuan_parse_exactly_into_fen() {
        assert_eq!(parse_yuan("150.00"), Some(Fen(15000)));
        assert_eq!(parse_yuan("0.01"), Some(Fen(1)));
        assert_eq!(parse_yuan("0.5"), Some(Fen(50)));
        assert_eq!(parse_yuan("12"), Some(Fen(1200)));
        assert_eq!(parse_yuan("19.99"), Some(Fen(1999)));
        for bad in
            ["", ".5", "1.", "1.001", "-1.00", "+1.00", "1,000.00", "1e2", " 1.00", "１.00", "99999999999999999999"]
        {
            assert_eq!(parse_yuan(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sha1_is_lower_case_hex() {
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn only_the_api_origin_and_wechat_hosts_get_the_download_request() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        let base = "https://api2.mch.weixin.qq.com";
        assert!(trusted_download_url(base, &url("https://api2.mch.weixin.qq.com/v3/billdownload/file?token=a")));
        assert!(trusted_download_url(base, &url("https://api.mch.weixin.qq.com/v3/billdownload/file?token=a")));
        assert!(!trusted_download_url(base, &url("http://api.mch.weixin.qq.com/v3/billdownload/file?token=a")));
        assert!(!trusted_download_url(base, &url("https://evil.example/v3/billdownload/file?token=a")));
        assert!(!trusted_download_url(base, &url("https://mch.weixin.qq.com.evil.example/v3/billdownload/file")));
        let local = "http://127.0.0.1:9900";
        assert!(trusted_download_url(local, &url("http://127.0.0.1:9900/v3/billdownload/file?token=a")));
        assert!(!trusted_download_url(local, &url("http://127.0.0.1:9901/v3/billdownload/file?token=a")));
    }
}
