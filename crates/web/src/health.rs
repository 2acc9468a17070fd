//! Probes for load balancers and orchestrators: `/healthz` (the process answers) and
//! `/readyz` (this node can serve: database, blob store, keys, background worker).

use crate::WebState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// `GET /healthz`: 200 while the process answers HTTP; touches nothing else, so a slow
/// database does not get a live process restarted.
pub async fn alive() -> Response {
    no_store(StatusCode::OK, json!({"status": "alive"}))
}

/// `GET /readyz`: 200 when every check passes, else 503 naming the checks that failed (the
/// causes are logged, not shown).
pub async fn ready(State(s): State<WebState>) -> Response {
    let readiness = s.app.readiness().await;
    let mut checks = Map::new();
    for check in &readiness.checks {
        let verdict = match &check.problem {
            None => "ok",
            Some(problem) => {
                tracing::warn!(check = check.name, problem = %problem, "readiness check failed");
                "failed"
            }
        };
        checks.insert(check.name.to_owned(), Value::from(verdict));
    }
    if readiness.is_ready() {
        no_store(StatusCode::OK, json!({"status": "ready", "checks": checks}))
    } else {
        no_store(StatusCode::SERVICE_UNAVAILABLE, json!({"status": "not ready", "checks": checks}))
    }
}

fn no_store(status: StatusCode, body: Value) -> Response {
    (status, [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], Json(body)).into_response()
}
