//! The static files the pages load (`app.css`, `app.js`, `console.css`, the icon, the region
//! tree), each served under a name that carries a hash of its content
//! (`/static/app.3f2a9c1b.js`) with a one-year immutable cache, so a phone on a weak network
//! fetches each file once per release and never asks again. The plain names (`/static/app.js`)
//! still answer, with a short cache, for anything that saved an old link.
//!
//! Compression is not done here: the router's compression layer gzips or brotli-encodes text
//! answers for clients that accept it.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// One static file: its plain name, its content-hashed name and what it is.
struct Asset {
    /// The name in the source tree, e.g. `app.js`.
    name: &'static str,
    /// The name pages link to, e.g. `app.3f2a9c1b.js`.
    hashed: String,
    content_type: &'static str,
    body: &'static [u8],
}

/// Long cache for content-hashed names: the content behind a name never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Short cache for plain names, whose content changes with each release.
const SHORT: &str = "public, max-age=300";

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    [
        ("app.css", "text/css; charset=utf-8", include_bytes!("../static/app.css").as_slice()),
        ("app.js", "text/javascript; charset=utf-8", include_bytes!("../static/app.js").as_slice()),
        ("console.css", "text/css; charset=utf-8", include_bytes!("../static/console.css").as_slice()),
        ("favicon.svg", "image/svg+xml", include_bytes!("../static/favicon.svg").as_slice()),
        ("regions.json", "application/json", yiqian_domain::regions::REGIONS_JSON.as_bytes()),
    ]
    .into_iter()
    .map(|(name, content_type, body)| Asset { name, hashed: hashed_name(name, body), content_type, body })
    .collect()
});

/// `app.js` with its content `body` → `app.<first 8 hex digits of SHA-256>.js`.
fn hashed_name(name: &str, body: &[u8]) -> String {
    let digest = hex::encode(&Sha256::digest(body)[..4]);
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{digest}.{ext}"),
        None => format!("{name}.{digest}"),
    }
}

/// `app.3f2a9c1b.js` → `app.js`; `None` for a name without an 8-hex-digit hash.
fn unhashed(file: &str) -> Option<String> {
    let (rest, ext) = file.rsplit_once('.')?;
    let (stem, digest) = rest.rsplit_once('.')?;
    (digest.len() == 8 && digest.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("{stem}.{ext}"))
}

/// The URL pages use for the static file `name` (`app.js` → `/static/app.3f2a9c1b.js`).
///
/// # Panics
/// When `name` is not one of the embedded files: a typo in a page, caught by any test that
/// renders it.
pub fn url(name: &str) -> String {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => format!("/static/{}", a.hashed),
        None => panic!("no static file named {name}"),
    }
}

/// `/static/{file}` (hashed or plain names) and the `/favicon.ico` browsers ask for by themselves.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/static/{file}", get(|Path(file): Path<String>| async move { serve(&file) }))
        .route("/favicon.ico", get(|| async { serve("favicon.svg") }))
}

/// A hashed name serves its file forever; a plain name, or the hashed name of another release
/// (during a rolling upgrade a page from one node may ask another), serves today's file briefly.
fn serve(file: &str) -> Response {
    let found = ASSETS.iter().find_map(|a| {
        if a.hashed == file {
            Some((a, IMMUTABLE))
        } else if a.name == file || unhashed(file).as_deref() == Some(a.name) {
            Some((a, SHORT))
        } else {
            None
        }
    });
    match found {
        Some((a, cache)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(a.content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
                (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            ],
            a.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_follow_the_content() {
        assert_eq!(hashed_name("app.js", b"a"), hashed_name("app.js", b"a"));
        assert_ne!(hashed_name("app.js", b"a"), hashed_name("app.js", b"b"));
        let n = hashed_name("app.js", b"a");
        assert!(n.starts_with("app.") && n.ends_with(".js") && n.len() == "app..js".len() + 8, "{n}");
    }

    #[test]
    fn every_page_asset_has_a_url_that_serves_it_forever() {
        for name in ["app.css", "app.js", "console.css", "favicon.svg", "regions.json"] {
            let u = url(name);
            let file = u.trim_start_matches("/static/");
            let r = serve(file);
            assert_eq!(r.status(), StatusCode::OK, "{u}");
            assert_eq!(r.headers()[header::CACHE_CONTROL], IMMUTABLE, "{u}");
            assert_eq!(serve(name).headers()[header::CACHE_CONTROL], SHORT, "{name}");
        }
        let other_release = serve("app.00000000.js");
        assert_eq!(other_release.status(), StatusCode::OK, "another release's name: today's file");
        assert_eq!(other_release.headers()[header::CACHE_CONTROL], SHORT, "but not cached for long");
        assert_eq!(serve("app.0000000g.js").status(), StatusCode::NOT_FOUND);
        assert_eq!(serve("../Cargo.toml").status(), StatusCode::NOT_FOUND);
    }
}
