//! WeChat web authorisation pages: `/wechat/login` sends the browser to WeChat with a fresh
//! `state` (kept in a short-lived cookie), `/wechat/callback` checks the state and hands the
//! code to the application, which binds the openid, logs the applicant in, or holds the openid
//! (sealed, in a cookie) until the SMS login binds it.

use crate::WebState;
use crate::auth::{cookie, local_path, session_cookie, session_token_in, urlencode};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Deserialize;
use yiqian_app::wechat_login::WechatLogin;

/// Holds `state|next` between the redirect to WeChat and the callback.
const STATE_COOKIE: &str = "yiqian_wx_state";
/// Holds the sealed openid of a visitor who has not logged in yet.
pub const PENDING_COOKIE: &str = "yiqian_wx_pending";

/// The routes (present whether or not WeChat login is configured; without it they answer 404).
pub fn routes() -> Router<WebState> {
    Router::new().route("/wechat/login", get(start)).route("/wechat/callback", get(callback))
}

#[derive(Deserialize)]
struct StartQuery {
    next: Option<String>,
}

fn short_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/wechat; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

fn secure(s: &WebState) -> bool {
    s.app.config().public_url.starts_with("https://")
}

async fn start(State(s): State<WebState>, Query(q): Query<StartQuery>) -> Response {
    let state = s.app.wechat_state();
    let next = local_path(q.next.as_deref());
    match s.app.wechat_authorize_url(&state) {
        Ok(url) => {
            let value = format!("{state}|{}", B64.encode(next.as_bytes()));
            ([(header::SET_COOKIE, short_cookie(STATE_COOKIE, &value, 600, secure(&s)))], Redirect::to(&url))
                .into_response()
        }
        Err(e) => crate::pages::error_page(&s, e),
    }
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

async fn callback(State(s): State<WebState>, headers: HeaderMap, Query(q): Query<CallbackQuery>) -> Response {
    let clear_state = short_cookie(STATE_COOKIE, "", 0, secure(&s));
    let kept = cookie(&headers, STATE_COOKIE).unwrap_or_default();
    let (kept_state, next) = kept.split_once('|').unwrap_or(("", "/"));
    let next = B64.decode(next).ok().and_then(|b| String::from_utf8(b).ok());
    let next = local_path(next.as_deref());
    let to_login = format!("/login?next={}", urlencode(&next));
    if kept_state.is_empty() || q.state.as_deref() != Some(kept_state) {
        // Not the authorisation we started (or the cookie expired): start over by SMS login.
        return ([(header::SET_COOKIE, clear_state)], Redirect::to(&to_login)).into_response();
    }
    let Some(code) = q.code else {
        // The applicant declined: log in by SMS instead.
        return ([(header::SET_COOKIE, clear_state)], Redirect::to(&to_login)).into_response();
    };
    let current = match session_token_in(&headers) {
        Some(token) => s.app.authenticate(&token).await.ok(),
        None => None,
    };
    match s.app.wechat_callback(&code, current.as_ref()).await {
        Ok(WechatLogin::Bound) => ([(header::SET_COOKIE, clear_state)], Redirect::to(&next)).into_response(),
        Ok(WechatLogin::LoggedIn(session)) => {
            let session = session_cookie(&session.token, session.expires_in_seconds, secure(&s));
            ([(header::SET_COOKIE, clear_state), (header::SET_COOKIE, session)], Redirect::to(&next)).into_response()
        }
        Ok(WechatLogin::Unbound { pending }) => {
            let pending = format!(
                "{PENDING_COOKIE}={pending}; Path=/; HttpOnly; SameSite=Lax; Max-Age=1800{}",
                if secure(&s) { "; Secure" } else { "" }
            );
            ([(header::SET_COOKIE, clear_state), (header::SET_COOKIE, pending)], Redirect::to(&to_login))
                .into_response()
        }
        Err(e) => crate::pages::error_page(&s, e),
    }
}
