//! Nuonuo's push callback: after an issuance ends, Nuonuo POSTs a form to the request's
//! `callBackUrl` with `operater=callback`, `orderno` and `content`, a JSON string whose
//! `c_status` says how it ended (1 issued, 2 failed, 3 signing failed). The callback is not
//! signed, so it is only a hint: the receiver should query the invoice's status.

use serde_json::Value;

/// What a callback says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Issued (`c_status` 1).
    Issued,
    /// Failed or signing failed (`c_status` 2 or 3).
    Failed,
}

/// A parsed callback: which order it concerns and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceCallback {
    /// Our order number (`orderno`, or `c_orderno` in the content).
    pub order_no: String,
    /// Nuonuo's serial number (`c_fpqqlsh`), when given.
    pub serial: Option<String>,
    /// How it ended.
    pub outcome: CallbackOutcome,
}

/// Why a callback body was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// `operater` is missing or not `callback`.
    #[error("not an invoice callback (operater is not \"callback\")")]
    NotCallback,
    /// A required field is missing or empty.
    #[error("the callback has no {0}")]
    Missing(&'static str),
    /// `content` is not a JSON object.
    #[error("the callback content is not a JSON object")]
    Content,
    /// `c_status` has an unknown value.
    #[error("unknown callback status {0:?}")]
    Status(String),
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses a callback's form body (`application/x-www-form-urlencoded`).
pub fn parse_callback(form_body: &[u8]) -> Result<InvoiceCallback, CallbackError> {
    let mut operater = None;
    let mut orderno = None;
    let mut content = None;
    for (key, value) in form_urlencoded::parse(form_body) {
        match key.as_ref() {
            "operater" => operater = Some(value.into_owned()),
            "orderno" => orderno = Some(value.into_owned()),
            "content" => content = Some(value.into_owned()),
            _ => {}
        }
    }
    if operater.as_deref() != Some("callback") {
        return Err(CallbackError::NotCallback);
    }
    let content = content.filter(|c| !c.is_empty()).ok_or(CallbackError::Missing("content"))?;
    let content: Value = serde_json::from_str(&content).map_err(|_| CallbackError::Content)?;
    if !content.is_object() {
        return Err(CallbackError::Content);
    }
    let order_no = orderno
        .filter(|o| !o.is_empty())
        .or_else(|| text(content.get("c_orderno")))
        .ok_or(CallbackError::Missing("orderno"))?;
    let status = text(content.get("c_status")).ok_or(CallbackError::Missing("c_status"))?;
    let outcome = match status.as_str() {
        "1" => CallbackOutcome::Issued,
        "2" | "3" => CallbackOutcome::Failed,
        _ => return Err(CallbackError::Status(status)),
    };
    Ok(InvoiceCallback { order_no, serial: text(content.get("c_fpqqlsh")), outcome })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish().into_bytes()
    }

    #[test]
    fn issued_and_failed_callbacks() {
        let content =
            r#"{"c_orderno":"YQ1","c_fpqqlsh":"22072015181902023731","c_status":"1","c_fphm":"25332000000000000001"}"#;
        let hint =
            parse_callback(&form(&[("operater", "callback"), ("orderno", "YQ1"), ("content", content)])).unwrap();
        assert_eq!(
            hint,
            InvoiceCallback {
                order_no: "YQ1".into(),
                serial: Some("22072015181902023731".into()),
                outcome: CallbackOutcome::Issued
            }
        );
        let failed = parse_callback(&form(&[
            ("operater", "callback"),
            ("content", r#"{"c_orderno":"YQ2","c_status":2,"c_resultmsg":"税号有误"}"#),
        ]))
        .unwrap();
        assert_eq!((failed.order_no.as_str(), failed.serial, failed.outcome), ("YQ2", None, CallbackOutcome::Failed));
        let signing =
            parse_callback(&form(&[("operater", "callback"), ("orderno", "YQ3"), ("content", r#"{"c_status":"3"}"#)]));
        assert_eq!(signing.unwrap().outcome, CallbackOutcome::Failed);
    }

    #[test]
    fn malformed_callbacks_are_refused() {
        let ok = r#"{"c_status":"1"}"#;
        assert_eq!(parse_callback(&form(&[("orderno", "YQ1"), ("content", ok)])), Err(CallbackError::NotCallback));
        assert_eq!(
            parse_callback(&form(&[("operater", "other"), ("orderno", "YQ1"), ("content", ok)])),
            Err(CallbackError::NotCallback)
        );
        assert_eq!(
            parse_callback(&form(&[("operater", "callback"), ("orderno", "YQ1")])),
            Err(CallbackError::Missing("content"))
        );
        assert_eq!(
            parse_callback(&form(&[("operater", "callback"), ("orderno", "YQ1"), ("content", "not json")])),
            Err(CallbackError::Content)
        );
        assert_eq!(
            parse_callback(&form(&[("operater", "callback"), ("content", ok)])),
            Err(CallbackError::Missing("orderno"))
        );
        assert_eq!(
            parse_callback(&form(&[("operater", "callback"), ("orderno", "YQ1"), ("content", r#"{"c_status":"9"}"#)])),
            Err(CallbackError::Status("9".into()))
        );
        assert_eq!(
            parse_callback(&form(&[("operater", "callback"), ("orderno", "YQ1"), ("content", "{}")])),
            Err(CallbackError::Missing("c_status"))
        );
    }
}
