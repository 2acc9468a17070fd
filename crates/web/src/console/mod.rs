//! The staff console at `/console`: a desktop web application in Chinese for the CA's staff.
//!
//! This module is the shell every console page is built on:
//! - [`ConsoleStaff`], the extractor of the logged-in member of staff (redirects to the login
//!   page otherwise) with the session's CSRF token;
//! - CSRF protection: every console POST form carries [`csrf_field`]; handlers take
//!   [`CsrfForm`] (urlencoded forms) or call [`check_csrf`] (multipart forms);
//! - [`console_layout`], the page frame whose navigation shows only the sections the role may
//!   use, and [`console_error`] for refusals (403 "您的角色无权访问此页面" and the rest);
//! - `Cache-Control: no-store` and `X-Frame-Options: DENY` on every console response.
//!
//! Sessions live in the `yiqian_console` cookie (Path=/console, HttpOnly, SameSite=Strict,
//! Secure behind https). Rules — roles, passwords, codes, lockout — live in
//! `yiqian_app::staff`; handlers here parse, call one service and render.
//!
//! Pages of a new section go in a submodule whose `routes()` is merged in [`routes`] (before
//! the layer, so the security headers apply), with an entry in [`SECTIONS`].

mod audit;
mod counter;
mod erasure;
mod fulfilment;
mod invoices;
mod login;
mod review;
mod staff;
mod stations;

use crate::WebState;
use crate::auth::urlencode;
use crate::error::status_of;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::{DateTime, FixedOffset, Utc};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use yiqian_app::AppError;
use yiqian_app::staff::{Permission, StaffMember};

/// The console session cookie's name.
pub(crate) const CONSOLE_COOKIE: &str = "yiqian_console";

/// The console's sections: path, title in the navigation, and the permission that shows it.
/// `/console` leads to the first one the role may use.
pub(crate) const SECTIONS: &[(&str, &str, Permission)] = &[
    ("/console/review", "审核", Permission::ReviewApplications),
    ("/console/activations", "激活复核", Permission::ReviewActivations),
    ("/console/fulfilment", "制证发货", Permission::IssueTokens),
    ("/console/invoices", "发票", Permission::ManageInvoices),
    ("/console/counter", "柜台业务", Permission::CounterService),
    ("/console/audit", "审计日志", Permission::ViewAudit),
    ("/console/staff", "人员管理", Permission::ManageStaff),
    ("/console/stations", "制证工作站", Permission::ManageStaff),
    ("/console/erasure", "个人资料删除", Permission::ManageStaff),
];

/// Console routes: login, logout, enrolment, `/console`, staff management, the audit log.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .merge(login::routes())
        .merge(staff::routes())
        .merge(audit::routes())
        .merge(review::routes())
        .merge(fulfilment::routes())
        .merge(invoices::routes())
        .merge(counter::routes())
        .merge(stations::routes())
        .merge(erasure::routes())
        .layer(axum::middleware::map_response(security_headers))
}

/// Console responses are never cached and never framed.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// `/console`: the first section the role may use.
async fn home(staff: ConsoleStaff) -> Response {
    match SECTIONS.iter().find(|(_, _, p)| staff.member.can(*p)) {
        Some((path, _, _)) => Redirect::to(path).into_response(),
        None => StatusCode::FORBIDDEN.into_response(),
    }
}

/// A logged-in member of staff and the CSRF token of their session. As a handler argument it
/// redirects to `/console/login?next=…` when nobody is logged in (or the session ended).
#[derive(Clone)]
pub(crate) struct ConsoleStaff {
    /// Who.
    pub member: StaffMember,
    /// The session's CSRF token: put it in forms with [`csrf_field`].
    pub csrf: String,
}

impl FromRequestParts<WebState> for ConsoleStaff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        if let Some(s) = parts.extensions.get::<ConsoleStaff>() {
            return Ok(s.clone());
        }
        // Only a page can be returned to; after a refused POST the console's home will do.
        let next = match parts.method {
            Method::GET => parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/console"),
            _ => "/console",
        };
        let to_login = || Redirect::to(&format!("/console/login?next={}", urlencode(next))).into_response();
        let Some(token) = console_token(&parts.headers) else { return Err(to_login()) };
        match state.app.staff_authenticate(&token).await {
            Ok((member, csrf)) => {
                let s = ConsoleStaff { member, csrf };
                parts.extensions.insert(s.clone());
                Ok(s)
            }
            Err(AppError::Unauthorized) => Err(to_login()),
            Err(e) => Err(console_error(state, None, e)),
        }
    }
}

/// The console session token of a request (cookie only: the console has no API clients).
pub(crate) fn console_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, v)| *k == CONSOLE_COOKIE && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// The `Set-Cookie` value of a console session (`max_age` 0 removes it).
pub(crate) fn console_cookie(state: &WebState, token: &str, max_age: i64) -> String {
    let secure = state.app.config().public_url.starts_with("https://");
    format!(
        "{CONSOLE_COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The hidden field every console POST form carries.
pub(crate) fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// Equality that takes as long whatever the first difference.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the `csrf` value a form sent against the session's; the 403 page otherwise. For
/// multipart forms, whose `csrf` field the handler reads itself.
#[allow(clippy::result_large_err, reason = "the refusal is the response a handler returns at once")]
pub(crate) fn check_csrf(staff: &ConsoleStaff, submitted: &str) -> Result<(), Response> {
    if !submitted.is_empty() && same_secret(&staff.csrf, submitted) { Ok(()) } else { Err(csrf_refused()) }
}

/// The answer to a form without the right CSRF token.
pub(crate) fn csrf_refused() -> Response {
    tracing::debug!("console form refused: missing or wrong CSRF token");
    let body = html! {
        p.c-error { "请求已失效或来源不明,已拒绝。请返回页面刷新后重试。" }
        p { a href="/console" { "返回控制台" } }
    };
    (StatusCode::FORBIDDEN, bare_layout("请求被拒绝", body)).into_response()
}

/// A urlencoded console form whose `csrf` field matched the session's. It authenticates the
/// member of staff as [`ConsoleStaff`] does (once per request: take both as arguments freely).
/// `T` receives every field; it need not declare `csrf`.
pub(crate) struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<WebState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &WebState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let staff = ConsoleStaff::from_request_parts(&mut parts, state).await?;
        let bytes =
            Bytes::from_request(Request::from_parts(parts, body), state).await.map_err(|e| e.into_response())?;
        #[derive(Deserialize)]
        struct Token {
            #[serde(default)]
            csrf: String,
        }
        let token: Token = parse_form(&bytes).await.map_err(|_| csrf_refused())?;
        check_csrf(&staff, &token.csrf)?;
        Ok(CsrfForm(parse_form(&bytes).await?))
    }
}

/// Parses a urlencoded body.
async fn parse_form<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Response> {
    let req = Request::builder()
        .method(Method::POST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(bytes.clone()))
        .map_err(|_| StatusCode::BAD_REQUEST.into_response())?;
    let Form(value) = Form::<T>::from_request(req, &()).await.map_err(|e| e.into_response())?;
    Ok(value)
}

/// The frame of every console page: top bar (who is logged in, logout), the navigation with
/// the sections the role may use (`active_nav` is the current section's path), the content.
pub(crate) fn console_layout(
    state: &WebState,
    staff: &StaffMember,
    title: &str,
    active_nav: &str,
    body: Markup,
) -> Markup {
    console_layout_with_head(state, staff, title, active_nav, html! {}, body)
}

/// [`console_layout`] with extra elements in `<head>` (e.g. a `<meta http-equiv="refresh">`).
pub(crate) fn console_layout_with_head(
    state: &WebState,
    staff: &StaffMember,
    title: &str,
    active_nav: &str,
    head: Markup,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " - 宜签管理控制台" }
                link rel="icon" type="image/svg+xml" href=(crate::assets::url("favicon.svg"));
                link rel="stylesheet" href=(crate::assets::url("console.css"));
                (head)
            }
            body.console {
                header.c-top {
                    a.c-brand href="/console" { "宜签 · 管理控制台" }
                    div.c-who {
                        span.c-name id="console-user" { (staff.name) }
                        span.c-role { (staff.role.title()) }
                        a.c-logout href="/console/logout" { "退出登录" }
                    }
                }
                div.c-frame {
                    nav.c-nav {
                        ul {
                            @for (path, label, permission) in SECTIONS {
                                @if staff.can(*permission) {
                                    li { a.active[*path == active_nav] href=(path) { (label) } }
                                }
                            }
                        }
                    }
                    main.c-main {
                        h1 { (title) }
                        (body)
                    }
                }
                footer.c-footer { "客服热线 " (state.customer_service) " · 本系统的每一次操作均记入审计日志" }
            }
        }
    }
}

/// A page without navigation (login, refusals before login).
pub(crate) fn bare_layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " - 宜签管理控制台" }
                link rel="icon" type="image/svg+xml" href=(crate::assets::url("favicon.svg"));
                link rel="stylesheet" href=(crate::assets::url("console.css"));
            }
            body.console.c-bare {
                div.c-card.c-narrow {
                    div.c-brand { "宜签 · 管理控制台" }
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The page for a refused or failed console request: 403 "您的角色无权访问此页面" for
/// [`AppError::Forbidden`], the login page for [`AppError::Unauthorized`], otherwise the
/// error's message with its status. With `staff` the page keeps the navigation.
pub(crate) fn console_error(state: &WebState, staff: Option<&StaffMember>, e: AppError) -> Response {
    if matches!(e, AppError::Unauthorized) {
        return Redirect::to("/console/login").into_response();
    }
    let status = status_of(&e);
    if status.is_server_error() {
        tracing::error!(code = e.code(), error = ?e, "console request failed");
    }
    let (title, message) = match &e {
        AppError::Forbidden => ("无权访问", "您的角色无权访问此页面".to_owned()),
        other => ("操作未完成", other.to_string()),
    };
    let body = html! {
        p.c-error { (message) }
        p { a href="/console" { "返回控制台" } }
    };
    let page = match staff {
        Some(s) => console_layout(state, s, title, "", body),
        None => bare_layout(title, body),
    };
    (status, page).into_response()
}

/// The client's address for the audit trail: the connecting address, or `X-Real-IP` when the
/// deployment says a proxy sets it.
pub(crate) fn client_ip(state: &WebState, headers: &HeaderMap, addr: &SocketAddr) -> String {
    let forwarded = state.trust_x_real_ip.then(|| headers.get("x-real-ip").and_then(|v| v.to_str().ok())).flatten();
    forwarded.map(|v| v.trim().to_owned()).unwrap_or_else(|| addr.ip().to_string())
}

/// A time as staff in China read it: Beijing time, to the second.
pub(crate) fn beijing_time(t: DateTime<Utc>) -> String {
    let beijing = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    t.with_timezone(&beijing).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A `next` parameter that stays inside the console.
pub(crate) fn console_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if (n == "/console" || n.starts_with("/console/") || n.starts_with("/console?"))
                && !n.contains("//")
                && !n.contains('\\') =>
        {
            n.to_owned()
        }
        _ => "/console".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_in_the_console() {
        assert_eq!(console_next(Some("/console/staff?x=1")), "/console/staff?x=1");
        assert_eq!(console_next(Some("/console")), "/console");
        for bad in ["https://evil.example/console", "//evil.example", "/orders", "/console//evil", "/consolex", ""] {
            assert_eq!(console_next(Some(bad)), "/console", "{bad}");
        }
        assert_eq!(console_next(None), "/console");
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; yiqian_console=tok; yiqian_session=s"));
        assert_eq!(console_token(&h).as_deref(), Some("tok"));
        h.insert(header::COOKIE, HeaderValue::from_static("yiqian_console="));
        assert_eq!(console_token(&h), None);
    }

    #[test]
    fn times_are_shown_in_beijing_time() {
        let t = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        assert_eq!(beijing_time(t), "2026-01-01 08:00:00");
    }
}
