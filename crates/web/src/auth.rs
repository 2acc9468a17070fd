//! Who is calling: the applicant's session from the `yiqian_session` cookie (pages) or an
//! `Authorization: Bearer` token (API clients such as a mini-program).

use crate::WebState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use yiqian_app::AppError;
use yiqian_domain::ApplicantId;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "yiqian_session";

/// The session token of a request, if any.
pub fn session_token(parts: &Parts) -> Option<String> {
    session_token_in(&parts.headers)
}

/// The session token in a request's headers (bearer token or cookie), if any.
pub fn session_token_in(headers: &axum::http::HeaderMap) -> Option<String> {
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if let Some(t) = bearer {
        return Some(t.trim().to_owned());
    }
    cookie(headers, SESSION_COOKIE)
}

/// A cookie's value by name.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A logged-in applicant, for API handlers (401 JSON otherwise).
pub struct ApiApplicant(pub ApplicantId);

impl FromRequestParts<WebState> for ApiApplicant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        let token = session_token(parts).ok_or(ApiError(AppError::Unauthorized))?;
        Ok(ApiApplicant(state.app.authenticate(&token).await?))
    }
}

/// A logged-in applicant, for pages (redirect to the login page otherwise).
pub struct PageApplicant(pub ApplicantId);

impl FromRequestParts<WebState> for PageApplicant {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let to_login = || Redirect::to(&format!("/login?next={}", urlencode(next))).into_response();
        let Some(token) = session_token(parts) else { return Err(to_login()) };
        match state.app.authenticate(&token).await {
            Ok(id) => Ok(PageApplicant(id)),
            Err(AppError::Unauthorized) => Err(to_login()),
            Err(e) => Err(ApiError(e).into_response()),
        }
    }
}

/// Percent-encodes a value for a query string.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A `next` parameter that stays on this site (a path, not `//host` or a full URL).
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(token: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}
