//! The OpenAPI document of `/api/v1` (`crates/web/openapi.json`) stays in step with the
//! routes: every route of `src/api.rs` is documented (the document itself included), nothing
//! else is, and every `$ref` resolves.

use serde_json::Value;
use std::collections::BTreeSet;

/// The router source, read as text: the routes are taken from its `.route(...)` calls.
const API_SOURCE: &str = include_str!("../src/api.rs");

/// HTTP methods of axum's method routers (`get(..)`, `.post(..)`, ...).
const METHODS: [&str; 8] = ["get", "post", "put", "delete", "patch", "head", "options", "trace"];

fn document() -> Value {
    serde_json::from_str(yiqian_web::OPENAPI_JSON).expect("openapi.json is valid JSON")
}

/// Skips a string literal starting at `i` (a `"` or the `r` of a raw string); returns the
/// index just after it.
fn skip_string(b: &[u8], mut i: usize) -> usize {
    if b[i] == b'r' {
        i += 1;
        let mut hashes = 0;
        while b[i] == b'#' {
            hashes += 1;
            i += 1;
        }
        assert_eq!(b[i], b'"', "raw string expected");
        i += 1;
        loop {
            if b[i] == b'"' && b[i + 1..].iter().take(hashes).filter(|c| **c == b'#').count() == hashes {
                return i + 1 + hashes;
            }
            i += 1;
        }
    }
    i += 1;
    while b[i] != b'"' {
        if b[i] == b'\\' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The arguments of the call whose `(` is at `open`: the text up to the matching `)`.
fn call_arguments(src: &str, open: usize) -> &str {
    let b = src.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    loop {
        match b[i] {
            b'"' => {
                i = skip_string(b, i);
                continue;
            }
            b'r' if !is_ident(b[i - 1]) && matches!(b[i + 1], b'"' | b'#') => {
                i = skip_string(b, i);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return &src[open + 1..i];
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// The methods routed by a handler expression such as `get(list).post(create)`: the method
/// router calls at its top level (calls nested inside a handler do not count).
fn methods_of(handler: &str) -> BTreeSet<String> {
    let b = handler.as_bytes();
    let mut out = BTreeSet::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = skip_string(b, i);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            c if depth == 0 && is_ident(c) && (i == 0 || !is_ident(b[i - 1])) => {
                let end = i + b[i..].iter().take_while(|c| is_ident(**c)).count();
                let word = &handler[i..end];
                if b.get(end) == Some(&b'(') && METHODS.contains(&word) {
                    out.insert(word.to_owned());
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Every `(method, path)` routed by `src/api.rs`.
fn routed() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut routes = 0;
    for (at, _) in API_SOURCE.match_indices(".route(") {
        let args = call_arguments(API_SOURCE, at + ".route".len());
        let args = args.trim_start();
        assert!(args.starts_with('"'), "route path is not a string literal: {args}");
        let end = skip_string(args.as_bytes(), 0);
        let path = &args[1..end - 1];
        assert!(path.starts_with("/api/v1/"), "API route outside /api/v1: {path}");
        let handler = args[end..].trim_start().strip_prefix(',').expect("route handler after the path");
        let methods = methods_of(handler);
        assert!(!methods.is_empty(), "no method found for route {path}: {handler}");
        for m in methods {
            out.insert((m, path.to_owned()));
        }
        routes += 1;
    }
    assert!(routes > 0, "no routes found in src/api.rs");
    assert!(!API_SOURCE.contains(".nest("), "nested routers are not recognised by this test");
    out
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths is an object") {
        for (key, _) in item.as_object().expect("path item is an object") {
            if METHODS.contains(&key.as_str()) {
                out.insert((key.clone(), path.clone()));
            }
        }
    }
    out
}

fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Follows a local `$ref` (once) to what it names.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc.pointer(r.strip_prefix('#').expect("local $ref")).unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => v,
    }
}

#[test]
fn is_an_openapi_3_document() {
    let doc = document();
    let version = doc["openapi"].as_str().expect("`openapi` is a string");
    assert!(version.starts_with("3."), "openapi is {version}");
    assert_eq!(doc["info"]["title"], "yiqian applicant API");
    assert!(doc["info"]["version"].is_string());
}

#[test]
fn documents_exactly_the_routes_of_the_api() {
    let routed = routed();
    let documented = documented(&document());
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(missing.is_empty(), "routes of src/api.rs missing from openapi.json: {missing:?}");
    assert!(extra.is_empty(), "operations in openapi.json that src/api.rs does not route: {extra:?}");
}

#[test]
fn route_extraction_reads_chained_methods() {
    let routed = routed();
    assert!(routed.contains(&("post".to_owned(), "/api/v1/session".to_owned())));
    assert!(routed.contains(&("delete".to_owned(), "/api/v1/session".to_owned())));
    assert!(routed.contains(&("get".to_owned(), "/api/v1/orders".to_owned())));
    assert!(routed.contains(&("post".to_owned(), "/api/v1/orders".to_owned())));
    assert_eq!(
        methods_of(r#"get(|| async { x.get("a").post(1) }).delete(out)"#),
        ["delete", "get"].map(String::from).into()
    );
}

#[test]
fn every_ref_resolves_to_a_component() {
    let doc = document();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("non-local $ref {r}"));
        assert!(pointer.starts_with("/components/"), "$ref outside components: {r}");
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }
}

#[test]
fn operations_are_complete() {
    let doc = document();
    let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let templated: BTreeSet<&str> =
            path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{name}: no operationId"));
            assert!(ids.insert(id.to_owned()), "{name}: duplicate operationId {id}");
            assert!(op["summary"].is_string(), "{name}: no summary");
            let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{name}: no responses"));
            assert!(responses.keys().any(|k| k.starts_with('2')), "{name}: no success response");
            for (status, response) in responses {
                let response = resolve(&doc, response);
                if !status.starts_with('2') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error",
                        "{name}: {status} does not answer the Error schema"
                    );
                }
            }
            let params: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|ps| ps.iter().map(|p| resolve(&doc, p)).filter(|p| p["in"] == "path"))
                .into_iter()
                .flatten()
                .map(|p| p["name"].as_str().expect("parameter name"))
                .collect();
            assert_eq!(params, templated, "{name}: path parameters do not match the path");
            if let Some(security) = op.get("security").or(doc.get("security")) {
                for requirement in security.as_array().expect("security is a list") {
                    for scheme in requirement.as_object().expect("security requirement").keys() {
                        assert!(schemes.contains_key(scheme), "{name}: unknown security scheme {scheme}");
                    }
                }
            }
        }
    }
}
