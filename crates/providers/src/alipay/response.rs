//! Alipay gateway answers, `{"<method with dots→underscores>_response":{…},"sign":"…"}` (or
//! `error_response`; certificate mode adds `alipay_cert_sn`). The signature covers the exact
//! text of the `…_response` object as received, so the object is cut out of the answer by a
//! scanner that matches brackets while respecting strings and escapes — the answer is never
//! re-serialised before its signature is checked.

use serde_json::Value;

/// The member an answer carries when the gateway itself refused the request.
pub const ERROR_RESPONSE: &str = "error_response";

/// Why an answer could not be taken apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Not a JSON object as the gateway writes it.
    #[error("malformed answer at byte {0}")]
    Syntax(usize),
    /// Neither the method's response nor `error_response` is in it.
    #[error("the answer has no {0} member")]
    Missing(String),
    /// The response member is not an object.
    #[error("the {0} member is not an object")]
    NotAnObject(String),
}

/// `alipay.trade.query` → `alipay_trade_query_response`.
pub fn response_key(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && matches!(bytes[at], b' ' | b'\t' | b'\r' | b'\n') {
        at += 1;
    }
    at
}

/// The end (exclusive) of the string literal starting at `start` (its opening quote).
fn string_end(bytes: &[u8], start: usize) -> Result<usize, AnswerError> {
    let mut at = start + 1;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return Ok(at + 1),
            _ => at += 1,
        }
    }
    Err(AnswerError::Syntax(start))
}

/// The end (exclusive) of the JSON value starting at `start`.
fn value_end(bytes: &[u8], start: usize) -> Result<usize, AnswerError> {
    match bytes.get(start) {
        None => Err(AnswerError::Syntax(start)),
        Some(b'"') => string_end(bytes, start),
        Some(b'{' | b'[') => {
            let mut closers = Vec::new();
            let mut at = start;
            while at < bytes.len() {
                match bytes[at] {
                    b'"' => {
                        at = string_end(bytes, at)?;
                        continue;
                    }
                    b'{' => closers.push(b'}'),
                    b'[' => closers.push(b']'),
                    close @ (b'}' | b']') => {
                        if closers.pop() != Some(close) {
                            return Err(AnswerError::Syntax(at));
                        }
                        if closers.is_empty() {
                            return Ok(at + 1);
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
            Err(AnswerError::Syntax(start))
        }
        Some(_) => {
            let mut at = start;
            while at < bytes.len() && !matches!(bytes[at], b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                at += 1;
            }
            if at == start { Err(AnswerError::Syntax(start)) } else { Ok(at) }
        }
    }
}

/// The members of a JSON object, each with its value's raw text exactly as it appears.
pub fn top_level_members(json: &str) -> Result<Vec<(String, &str)>, AnswerError> {
    let bytes = json.as_bytes();
    let mut at = skip_whitespace(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return Err(AnswerError::Syntax(at));
    }
    at = skip_whitespace(bytes, at + 1);
    let mut members = Vec::new();
    if bytes.get(at) == Some(&b'}') {
        at += 1;
    } else {
        loop {
            if bytes.get(at) != Some(&b'"') {
                return Err(AnswerError::Syntax(at));
            }
            let key_end = string_end(bytes, at)?;
            let key: String = serde_json::from_str(&json[at..key_end]).map_err(|_| AnswerError::Syntax(at))?;
            at = skip_whitespace(bytes, key_end);
            if bytes.get(at) != Some(&b':') {
                return Err(AnswerError::Syntax(at));
            }
            at = skip_whitespace(bytes, at + 1);
            let end = value_end(bytes, at)?;
            members.push((key, &json[at..end]));
            at = skip_whitespace(bytes, end);
            match bytes.get(at) {
                Some(b',') => at = skip_whitespace(bytes, at + 1),
                Some(b'}') => {
                    at += 1;
                    break;
                }
                _ => return Err(AnswerError::Syntax(at)),
            }
        }
    }
    if skip_whitespace(bytes, at) != bytes.len() {
        return Err(AnswerError::Syntax(at));
    }
    Ok(members)
}

/// A gateway answer taken apart, its signature not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAnswer<'a> {
    /// Which member held the response: the method's `…_response` or `error_response`.
    pub key: String,
    /// That member's value, exactly as received: the signed content.
    pub content: &'a str,
    /// `sign`, if any.
    pub sign: Option<String>,
    /// `alipay_cert_sn` (certificate mode), if any.
    pub alipay_cert_sn: Option<String>,
}

/// Takes apart the answer to `method`.
pub fn split_answer<'a>(json: &'a str, method: &str) -> Result<RawAnswer<'a>, AnswerError> {
    let members = top_level_members(json)?;
    let wanted = response_key(method);
    let (key, content) = members
        .iter()
        .find(|(k, _)| *k == wanted)
        .or_else(|| members.iter().find(|(k, _)| k == ERROR_RESPONSE))
        .ok_or_else(|| AnswerError::Missing(wanted.clone()))?;
    if !content.starts_with('{') {
        return Err(AnswerError::NotAnObject(key.clone()));
    }
    let string_member = |name: &str| {
        members.iter().find(|(k, _)| k == name).and_then(|(_, raw)| match serde_json::from_str::<Value>(raw) {
            Ok(Value::String(s)) => Some(s),
            _ => None,
        })
    };
    Ok(RawAnswer {
        key: key.clone(),
        content,
        sign: string_member("sign"),
        alipay_cert_sn: string_member("alipay_cert_sn"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_method() {
        assert_eq!(response_key("alipay.trade.fastpay.refund.query"), "alipay_trade_fastpay_refund_query_response");
    }

    #[test]
    fn cuts_the_response_exactly_as_received() {
        let content = r#"{ "code":"10000","msg":"Success","subject":"a \"quoted\" }{ brace, \\","n":[1,{"x":"]"}],"o":{"p":{}} }"#;
        let answer =
            format!(r#"{{"alipay_trade_query_response":{content} , "sign":"c2ln\/bmF0dXJl","alipay_cert_sn":"abc"}}"#);
        let raw = split_answer(&answer, "alipay.trade.query").unwrap();
        assert_eq!(raw.key, "alipay_trade_query_response");
        assert_eq!(raw.content, content);
        // The escaped slash is decoded: the sign is the string's value.
        assert_eq!(raw.sign.as_deref(), Some("c2ln/bmF0dXJl"));
        assert_eq!(raw.alipay_cert_sn.as_deref(), Some("abc"));
    }

    #[test]
    fn the_sign_may_come_first_and_unicode_stays_intact() {
        let content = r#"{"code":"40004","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在\u4e0d"}"#;
        let answer = format!("{{\n  \"sign\": \"s\",\n  \"alipay_trade_close_response\" :\t{content}\n}}\n");
        let raw = split_answer(&answer, "alipay.trade.close").unwrap();
        assert_eq!(raw.content, content);
        assert_eq!(raw.sign.as_deref(), Some("s"));
        assert_eq!(raw.alipay_cert_sn, None);
    }

    #[test]
    fn falls_back_to_error_response() {
        let answer = r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature"},"sign":"x"}"#;
        let raw = split_answer(answer, "alipay.trade.refund").unwrap();
        assert_eq!(raw.key, ERROR_RESPONSE);
        assert!(raw.content.ends_with("invalid-signature\"}"));
    }

    #[test]
    fn a_member_name_inside_a_string_is_not_a_member() {
        // The wanted key appears only inside another member's string value.
        let answer = r#"{"note":"\"alipay_trade_query_response\":{\"code\":\"10000\"}","sign":"x"}"#;
        assert_eq!(
            split_answer(answer, "alipay.trade.query"),
            Err(AnswerError::Missing("alipay_trade_query_response".into()))
        );
    }

    #[test]
    fn refuses_broken_answers() {
        for bad in [
            "",
            "[]",
            r#"{"alipay_trade_query_response":{"code":"10000""#,
            r#"{"alipay_trade_query_response":{"code":"10000]}"#,
            r#"{"alipay_trade_query_response":{"code":"10000"]}"#,
            r#"{"alipay_trade_query_response":{"code":"10000"}} trailing"#,
            r#"{"alipay_trade_query_response" {"code":"10000"}}"#,
            r#"{"alipay_trade_query_response":{"code":"10000"},}"#,
        ] {
            assert!(split_answer(bad, "alipay.trade.query").is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            split_answer(r#"{"alipay_trade_query_response":"text"}"#, "alipay.trade.query"),
            Err(AnswerError::NotAnObject("alipay_trade_query_response".into()))
        );
        assert_eq!(top_level_members("{}").unwrap(), vec![]);
    }
}
