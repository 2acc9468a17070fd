//! WeChat web authorisation: `GET /connect/oauth2/authorize` (redirects straight back with a
//! code, as a user who already follows the official account would see) and
//! `GET /sns/oauth2/access_token` (single-use, five-minute codes; WeChat's `errcode` JSON).

use super::{AuthCode, random_alnum};
use crate::Sim;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde_json::json;
use std::collections::HashMap;

/// How long a code may be exchanged.
const CODE_LIFETIME_SECONDS: i64 = 300;

fn refuse(text: &str) -> Response {
    (StatusCode::BAD_REQUEST, [("content-type", "text/html; charset=utf-8")], format!("<h3>{text}</h3>"))
        .into_response()
}

fn with_params(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{separator}{query}")
}

/// `GET /connect/oauth2/authorize?appid=…&redirect_uri=…&response_type=code&scope=…&state=…`
/// (plus the stand-in's `sim_user`, `sim_refuse`, `sim_snapshot`).
pub(super) async fn authorize(State(sim): State<Sim>, Query(q): Query<HashMap<String, String>>) -> Response {
    let w = &sim.wechatpay;
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    if get("appid") != w.account.appid {
        return refuse("appid 参数错误");
    }
    let redirect_uri = get("redirect_uri");
    if !reqwest::Url::parse(redirect_uri).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
        return refuse("redirect_uri 参数错误");
    }
    if get("response_type") != "code" {
        return refuse("response_type 参数错误");
    }
    let scope = get("scope");
    if !matches!(scope, "snsapi_base" | "snsapi_userinfo") {
        return refuse("scope 参数错误");
    }
    let state = get("state");
    if state.len() > 128 {
        return refuse("state 参数错误");
    }
    if get("sim_refuse") == "1" {
        return Redirect::to(&with_params(redirect_uri, &[("state", state)])).into_response();
    }
    let code = random_alnum(32);
    {
        let mut s = w.state();
        let openid = match s.next_openid.take() {
            Some(openid) => openid,
            None => w.openid_for(q.get("sim_user").map_or("default", String::as_str)),
        };
        s.codes.insert(
            code.clone(),
            AuthCode {
                openid,
                scope: scope.to_owned(),
                snapshot: get("sim_snapshot") == "1",
                issued: Utc::now(),
                used: false,
            },
        );
    }
    Redirect::to(&with_params(redirect_uri, &[("code", &code), ("state", state)])).into_response()
}

fn errcode(code: i64, message: &str) -> Response {
    Json(json!({ "errcode": code, "errmsg": format!("{message} rid: {}", random_alnum(24)) })).into_response()
}

/// `GET /sns/oauth2/access_token?appid=…&secret=…&code=…&grant_type=authorization_code`.
pub(super) async fn access_token(State(sim): State<Sim>, Query(q): Query<HashMap<String, String>>) -> Response {
    let w = &sim.wechatpay;
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    if get("appid") != w.account.appid {
        return errcode(40013, "invalid appid");
    }
    if get("secret") != w.account.app_secret {
        return errcode(40125, "invalid appsecret");
    }
    if get("grant_type") != "authorization_code" {
        return errcode(40002, "invalid grant_type");
    }
    let mut s = w.state();
    let Some(code) = s.codes.get_mut(get("code")) else {
        return errcode(40029, "invalid code");
    };
    if (Utc::now() - code.issued).num_seconds() > CODE_LIFETIME_SECONDS {
        return errcode(40029, "invalid code");
    }
    if code.used {
        return errcode(40163, "code been used");
    }
    code.used = true;
    let mut answer = json!({
        "access_token": random_alnum(88),
        "expires_in": 7200,
        "refresh_token": random_alnum(88),
        "openid": code.openid,
        "scope": code.scope,
    });
    if code.snapshot {
        answer["is_snapshotuser"] = json!(1);
    }
    Json(answer).into_response()
}
