//! The Prometheus exposition at `/metrics`: one recorder per process, installed when the
//! server starts, kept small by a periodic upkeep; the gauges read from the database are set
//! just before each exposition. What is counted, and under which names, is
//! `yiqian_app::metrics`.

use crate::WebState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

/// How often histograms are folded into their buckets when nobody scrapes.
const UPKEEP_PERIOD: Duration = Duration::from_secs(5);

static EXPORTER: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use (every server of the process
/// shares it: metrics are the process's).
pub fn exporter() -> &'static PrometheusHandle {
    EXPORTER.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets(yiqian_app::metrics::LATENCY_BUCKETS)
            .expect("the latency buckets are not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed in this process");
        yiqian_app::metrics::describe();
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_PERIOD);
                    upkeep.run_upkeep();
                }
            })
            .expect("a thread for the metrics upkeep");
        handle
    })
}

/// The route a request matched, as its metrics and logs name it: the template
/// (`/api/v1/orders/{id}`), or `unmatched` — never the path itself, which may carry an order id
/// or an activation code. Kept past the request at the cost of a reference count.
pub struct Route(Option<MatchedPath>);

impl Route {
    /// The route of `request`.
    pub fn of(request: &Request) -> Route {
        Route(request.extensions().get::<MatchedPath>().cloned())
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        self.0.as_ref().map_or("unmatched", MatchedPath::as_str)
    }
}

/// `GET /metrics`: the Prometheus text exposition (format 0.0.4).
pub async fn exposition(State(s): State<WebState>) -> Response {
    if let Err(e) = s.app.observe_gauges().await {
        // The counters are still worth having; the database gauges keep their last values.
        tracing::warn!(error = %e, "metrics: the database gauges could not be read");
    }
    let body = exporter().render();
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}
