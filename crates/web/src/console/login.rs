//! Console login in two stages — name and password, then the authenticator's code (or, the
//! first time, enrolling the authenticator from a QR code) — and logout.
//!
//! Between the stages the `yiqian_console` cookie holds a short pending session; the code
//! forms carry that session's CSRF token. The password form has none (there is no session
//! yet); the cookie's SameSite=Strict keeps other sites from riding a session.

use super::{
    ConsoleStaff, CsrfForm, bare_layout, client_ip, console_cookie, console_layout, console_next, console_token,
    csrf_field, same_secret,
};
use crate::WebState;
use crate::auth::urlencode;
use crate::error::status_of;
use axum::Router;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use std::net::SocketAddr;
use yiqian_app::AppError;
use yiqian_app::staff::{StaffLoginStage, StaffSession};
use yiqian_domain::staff::policy;

/// Routes of login, enrolment and logout.
pub(super) fn routes() -> Router<WebState> {
    Router::new()
        .route("/console/login", get(login_page).post(login_submit))
        .route("/console/login/totp", get(totp_page).post(totp_submit))
        .route("/console/enrol", get(enrol_page).post(enrol_submit))
        .route("/console/logout", get(logout_page).post(logout_submit))
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

fn login_form(next: &str, name: &str, error: Option<&str>) -> Markup {
    let body = html! {
        form.c-form method="post" action="/console/login" {
            input type="hidden" name="next" value=(next);
            @if let Some(e) = error { p.c-error role="alert" { (e) } }
            label { span { "用户名" } input type="text" name="name" value=(name) autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus; }
            label { span { "密码" } input type="password" name="password" autocomplete="current-password" required; }
            button.c-btn.c-primary type="submit" { "下一步" }
            p.c-muted { "登录需要密码和手机身份验证器中的动态验证码。连续输错5次,账号将锁定15分钟。" }
        }
    };
    bare_layout("工作人员登录", body)
}

/// The login page; a member of staff already logged in goes on at once.
async fn login_page(State(s): State<WebState>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let next = console_next(q.next.as_deref());
    if let Some(token) = console_token(&headers)
        && s.app.staff_authenticate(&token).await.is_ok()
    {
        return Redirect::to(&next).into_response();
    }
    login_form(&next, "", None).into_response()
}

/// The login page again with the reason, ending whatever pending login the cookie held.
fn refused(s: &WebState, next: &str, name: &str, e: &AppError) -> Response {
    let status = status_of(e);
    if status.is_server_error() {
        tracing::error!(code = e.code(), error = ?e, "console login failed");
    }
    let message = match e {
        AppError::Unauthorized => "登录已超时,请重新输入用户名和密码".to_owned(),
        other => other.to_string(),
    };
    let cookie = console_cookie(s, "", 0);
    (status, [(header::SET_COOKIE, cookie)], login_form(next, name, Some(&message))).into_response()
}

async fn login_submit(
    State(s): State<WebState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = console_next(f.next.as_deref());
    let ip = client_ip(&s, &headers, &addr);
    match s.app.staff_login_password(&f.name, &f.password, &ip).await {
        Ok(stage) => {
            let to = match &stage {
                StaffLoginStage::NeedsTotp { .. } => "/console/login/totp",
                StaffLoginStage::NeedsEnrolment { .. } => "/console/enrol",
            };
            let cookie = console_cookie(&s, stage.pending_token(), policy::PENDING_MINUTES * 60);
            ([(header::SET_COOKIE, cookie)], Redirect::to(&format!("{to}?next={}", urlencode(&next)))).into_response()
        }
        Err(e) => refused(&s, &next, f.name.trim(), &e),
    }
}

fn code_form(action: &str, csrf: &str, next: &str, error: Option<&str>, button: &str) -> Markup {
    html! {
        form.c-form method="post" action=(action) {
            (csrf_field(csrf))
            input type="hidden" name="next" value=(next);
            @if let Some(e) = error { p.c-error role="alert" { (e) } }
            label {
                span { "动态验证码" }
                input.c-code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" maxlength="8" placeholder="6位数字" required autofocus;
            }
            button.c-btn.c-primary type="submit" { (button) }
            p { a href="/console/login" { "重新登录" } }
        }
    }
}

fn totp_form(s: &WebState, pending: &str, next: &str, error: Option<&str>) -> Markup {
    let body = html! {
        p { "请输入手机身份验证器中“yiqian”账户显示的6位动态验证码。" }
        (code_form("/console/login/totp", &s.app.staff_csrf_token(pending), next, error, "登录"))
    };
    bare_layout("输入动态验证码", body)
}

/// The code page of a pending login (or the way to where the login stands).
async fn totp_page(State(s): State<WebState>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let next = console_next(q.next.as_deref());
    let Some(pending) = console_token(&headers) else { return Redirect::to("/console/login").into_response() };
    match s.app.staff_pending_enrolment(&pending).await {
        Ok(None) => totp_form(&s, &pending, &next, None).into_response(),
        Ok(Some(_)) => Redirect::to(&format!("/console/enrol?next={}", urlencode(&next))).into_response(),
        Err(e) => refused(&s, &next, "", &e),
    }
}

/// Where a full session begins: the cookie, then the page asked for.
fn logged_in(s: &WebState, session: StaffSession, next: &str) -> Response {
    let cookie = console_cookie(s, &session.token, session.expires_in_seconds);
    ([(header::SET_COOKIE, cookie)], Redirect::to(next)).into_response()
}

/// Whether the code form came from the pending login's own page.
fn pending_csrf_ok(s: &WebState, pending: &str, submitted: &str) -> bool {
    !submitted.is_empty() && same_secret(&s.app.staff_csrf_token(pending), submitted)
}

/// What a code form (TOTP or enrolment) needs before calling the app: where to go next, the
/// pending login (or back to the password), its CSRF token checked, the client's address.
#[allow(clippy::result_large_err)]
fn code_form_context(
    s: &WebState,
    headers: &HeaderMap,
    addr: &SocketAddr,
    f: &CodeForm,
) -> Result<(String, String, String), Response> {
    let next = console_next(f.next.as_deref());
    let Some(pending) = console_token(headers) else { return Err(Redirect::to("/console/login").into_response()) };
    if !pending_csrf_ok(s, &pending, &f.csrf) {
        return Err(super::csrf_refused());
    }
    Ok((next, pending, client_ip(s, headers, addr)))
}

async fn totp_submit(
    State(s): State<WebState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Response {
    let (next, pending, ip) = match code_form_context(&s, &headers, &addr, &f) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match s.app.staff_login_totp(&pending, &f.code, &ip).await {
        Ok(session) => logged_in(&s, session, &next),
        Err(e @ AppError::Invalid { .. }) if e.code().starts_with("staff_totp") => {
            (StatusCode::BAD_REQUEST, totp_form(&s, &pending, &next, Some(&e.to_string()))).into_response()
        }
        Err(e) => refused(&s, &next, "", &e),
    }
}

/// The QR code of an `otpauth://` URI as inline SVG.
fn qr_svg(uri: &str) -> Markup {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color>()
                .min_dimensions(220, 220)
                .dark_color(qrcode::render::svg::Color("#000000"))
                .light_color(qrcode::render::svg::Color("#ffffff"))
                .build();
            // Inline in HTML: without the XML declaration.
            let start = svg.find("<svg").unwrap_or(0);
            PreEscaped(svg[start..].to_owned())
        }
        Err(_) => html! { p.c-error { "二维码生成失败,请手动输入下方密钥。" } },
    }
}

fn enrol_form(s: &WebState, pending: &str, next: &str, secret: &str, uri: &str, error: Option<&str>) -> Markup {
    let body = html! {
        p { "首次登录需要绑定手机身份验证器。每个角色都必须使用动态验证码登录。" }
        ol.c-steps {
            li { "在手机上打开支持 TOTP 的身份验证器应用(如 Microsoft Authenticator、Google Authenticator、FreeOTP)。" }
            li { "扫描下方二维码;无法扫码时,选择手动输入密钥。" }
            li { "输入应用显示的6位动态验证码,完成绑定。" }
        }
        div.c-qr aria-label="动态验证码绑定二维码" { (qr_svg(uri)) }
        p.c-secret-line { "密钥(手动输入):" code.c-secret id="totp-secret" { (secret) } }
        p.c-muted { "密钥只在绑定时显示,请勿截图、转发或告诉他人。" }
        (code_form("/console/enrol", &s.app.staff_csrf_token(pending), next, error, "绑定并登录"))
    };
    bare_layout("绑定动态验证码", body)
}

/// The enrolment page of a pending first login.
async fn enrol_page(State(s): State<WebState>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let next = console_next(q.next.as_deref());
    let Some(pending) = console_token(&headers) else { return Redirect::to("/console/login").into_response() };
    match s.app.staff_pending_enrolment(&pending).await {
        Ok(Some(e)) => enrol_form(&s, &pending, &next, &e.secret_base32, &e.otpauth_uri, None).into_response(),
        Ok(None) => Redirect::to(&format!("/console/login/totp?next={}", urlencode(&next))).into_response(),
        Err(e) => refused(&s, &next, "", &e),
    }
}

async fn enrol_submit(
    State(s): State<WebState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Response {
    let (next, pending, ip) = match code_form_context(&s, &headers, &addr, &f) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match s.app.staff_enrol_totp(&pending, &f.code, &ip).await {
        Ok(session) => logged_in(&s, session, &next),
        Err(e @ AppError::Invalid { .. }) if e.code().starts_with("staff_totp") => {
            match s.app.staff_pending_enrolment(&pending).await {
                Ok(Some(en)) => {
                    let page =
                        enrol_form(&s, &pending, &next, &en.secret_base32, &en.otpauth_uri, Some(&e.to_string()));
                    (StatusCode::BAD_REQUEST, page).into_response()
                }
                Ok(None) => Redirect::to("/console/login/totp").into_response(),
                Err(e) => refused(&s, &next, "", &e),
            }
        }
        Err(e) => refused(&s, &next, "", &e),
    }
}

/// Asks to confirm logging out (logging out is a POST, with the session's CSRF token).
async fn logout_page(State(s): State<WebState>, staff: ConsoleStaff) -> Response {
    let body = html! {
        form.c-form method="post" action="/console/logout" {
            (csrf_field(&staff.csrf))
            p { "确定退出登录吗?" }
            button.c-btn.c-primary type="submit" id="logout" { "退出登录" }
            " "
            a.c-btn href="/console" { "取消" }
        }
    };
    console_layout(&s, &staff.member, "退出登录", "", body).into_response()
}

async fn logout_submit(State(s): State<WebState>, headers: HeaderMap, _form: CsrfForm<Empty>) -> Response {
    if let Some(token) = console_token(&headers)
        && let Err(e) = s.app.staff_logout(&token).await
    {
        return super::console_error(&s, None, e);
    }
    ([(header::SET_COOKIE, console_cookie(&s, "", 0))], Redirect::to("/console/login")).into_response()
}

/// A form with no fields but the CSRF token.
#[derive(Deserialize)]
pub(super) struct Empty {}
