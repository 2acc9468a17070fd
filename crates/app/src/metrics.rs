//! What yiqian counts for its operators: one function per fact, each with the Prometheus name
//! and labels it is exposed under (the exporter is the web crate's; without one installed,
//! recording costs nearly nothing). Labels are closed sets — route templates, states, provider
//! and gateway names, outcome words — never an id, a name, a number or a code of a person.
//! `docs/operations.md` lists every metric; keep the two in step.

use crate::App;
use async_trait::async_trait;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};
use yiqian_domain::OrderState;
use yiqian_providers::ProviderError;
use yiqian_providers::identity::{IdCardReading, IdentityVerifier, LivenessVerdict};
use yiqian_providers::sms::{SmsMessage, SmsSender};

/// Prefix of every metric name.
pub const PREFIX: &str = "yiqian_";

/// The histograms' buckets, in seconds: from a cached OCSP answer to a slow provider call.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Gives every metric its help text (the `# HELP` lines); called once when the exporter is
/// installed.
pub fn describe() {
    describe_counter!("yiqian_http_requests_total", "HTTP requests answered, by method, route template and status.");
    describe_histogram!(
        "yiqian_http_request_duration_seconds",
        "Time to answer an HTTP request, by method and route template."
    );
    describe_counter!(
        "yiqian_order_transitions_total",
        "Orders that changed state, by the state left and the state entered."
    );
    describe_gauge!("yiqian_orders", "Orders in each state (deployment-wide, read from the database).");
    describe_gauge!("yiqian_outbox_messages", "Outbox messages by delivery state; dead ones need an operator.");
    describe_gauge!(
        "yiqian_outbox_oldest_waiting_age_seconds",
        "Age of the oldest outbox message not yet delivered (0 when none waits)."
    );
    describe_counter!(
        "yiqian_outbox_deliveries_total",
        "Outbox delivery attempts by kind and outcome (delivered, retrying, dead)."
    );
    describe_counter!("yiqian_payments_total", "Payments started at, or confirmed by, each gateway.");
    describe_counter!(
        "yiqian_refunds_total",
        "Refunds asked of each gateway, and those it reported succeeded or failed."
    );
    describe_counter!(
        "yiqian_payment_notifications_total",
        "Payment gateway notifications by verdict (signature, stale, malformed are refused)."
    );
    describe_counter!(
        "yiqian_provider_calls_total",
        "Calls to SMS and identity providers by call and outcome (ok, transient, rejected)."
    );
    describe_histogram!("yiqian_provider_call_duration_seconds", "Time of calls to SMS and identity providers.");
    describe_counter!(
        "yiqian_ocsp_requests_total",
        "OCSP requests by how they were answered (cached, confirmed, signed, or refused)."
    );
    describe_counter!("yiqian_certificates_issued_total", "Personal certificates issued, by key algorithm.");
    describe_counter!(
        "yiqian_certificate_status_changes_total",
        "Certificate status changes, by the status entered (revoked, hold, active)."
    );
    describe_counter!(
        "yiqian_personalisations_total",
        "UKEY personalisations ended, on the server or at a station, by outcome."
    );
    describe_counter!("yiqian_uploads_total", "Uploads taken, by route template.");
    describe_counter!("yiqian_upload_bytes_total", "Bytes of uploads taken, by route template.");
    describe_counter!("yiqian_upload_rejects_total", "Uploads refused, by route template and reason.");
    describe_counter!(
        "yiqian_scheduled_jobs_total",
        "Turns of scheduled jobs on this node: ran, skipped (another node had the period) or failed."
    );
    describe_gauge!(
        "yiqian_crl_next_update_timestamp_seconds",
        "When the latest published CRL says the next one is due (Unix time)."
    );
    describe_gauge!("yiqian_build_info", "Always 1; the version label says which yiqian runs.");
}

/// An HTTP request answered: `route` is the matched route template (`/api/v1/orders/{id}`), or
/// `unmatched`; a method outside the standard ones counts as `other`, so no client can make new
/// label values.
pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let method = standard_method(method);
    let seconds = elapsed.as_secs_f64();
    let routes = HTTP_HANDLES.get_or_init(Default::default);
    {
        let known = routes.read().unwrap_or_else(|e| e.into_inner());
        if let Some(handles) = known.get(route)
            && handles.record(method, status, seconds)
        {
            return;
        }
    }
    let mut known = routes.write().unwrap_or_else(|e| e.into_inner());
    let handles = known.entry(route.to_owned()).or_default();
    if !handles.counters.iter().any(|(m, s, _)| *m == method && *s == status) {
        let counter = counter!("yiqian_http_requests_total", "method" => method, "route" => route.to_owned(), "status" => status.to_string());
        handles.counters.push((method, status, counter));
    }
    if !handles.histograms.iter().any(|(m, _)| *m == method) {
        let histogram =
            histogram!("yiqian_http_request_duration_seconds", "method" => method, "route" => route.to_owned());
        handles.histograms.push((method, histogram));
    }
    handles.record(method, status, seconds);
}

/// The HTTP metrics' handles of one route, registered on its first request: a request then
/// costs a map lookup instead of building and hashing its label set (the OCSP responder answers
/// tens of thousands a second). Registered after the recorder is installed — the server installs
/// it before it serves.
#[derive(Default)]
struct RouteHandles {
    counters: Vec<(&'static str, u16, metrics::Counter)>,
    histograms: Vec<(&'static str, metrics::Histogram)>,
}

impl RouteHandles {
    /// Counts and times a request; `false` when a handle is not registered yet.
    fn record(&self, method: &'static str, status: u16, seconds: f64) -> bool {
        let counter = self.counters.iter().find(|(m, s, _)| *m == method && *s == status);
        let histogram = self.histograms.iter().find(|(m, _)| *m == method);
        match (counter, histogram) {
            (Some((_, _, c)), Some((_, h))) => {
                c.increment(1);
                h.record(seconds);
                true
            }
            _ => false,
        }
    }
}

static HTTP_HANDLES: OnceLock<RwLock<HashMap<String, RouteHandles>>> = OnceLock::new();

/// The method as a label: the standard ones by name, any other as `other`.
fn standard_method(method: &str) -> &'static str {
    ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"].into_iter().find(|m| *m == method).unwrap_or("other")
}

/// An order changed state.
pub(crate) fn order_transition(from: OrderState, to: OrderState) {
    counter!("yiqian_order_transitions_total", "from" => from.code(), "to" => to.code()).increment(1);
}

/// An outbox message of `kind` was tried: `delivered`, `retrying` or `dead` (given up).
pub(crate) fn outbox_delivery(kind: &str, outcome: &'static str) {
    counter!("yiqian_outbox_deliveries_total", "kind" => kind.to_owned(), "outcome" => outcome).increment(1);
}

/// A payment was started at `gateway`, or confirmed by it.
pub(crate) fn payment(gateway: &'static str, event: &'static str) {
    counter!("yiqian_payments_total", "gateway" => gateway, "event" => event).increment(1);
}

/// A refund was asked of `gateway` (`requested`), or it reported `succeeded` or `failed`.
pub(crate) fn refund(gateway: &'static str, event: &'static str) {
    counter!("yiqian_refunds_total", "gateway" => gateway, "event" => event).increment(1);
}

/// A payment gateway's notification (webhook) was judged: `signature`, `stale` or
/// `malformed` (refused), or once verified `applied`, `duplicate`, `acknowledged` or `refused`.
pub(crate) fn payment_notification(gateway: &'static str, verdict: &'static str) {
    counter!("yiqian_payment_notifications_total", "gateway" => gateway, "verdict" => verdict).increment(1);
}

/// A call to an outside service (`sms`, `identity`) of `provider` ended: `ok`, `transient` or
/// `rejected`.
fn provider_call<T>(
    service: &'static str,
    provider: &'static str,
    call: &'static str,
    elapsed: Duration,
    result: &Result<T, ProviderError>,
) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(ProviderError::Transient { .. }) => "transient",
        Err(ProviderError::Rejected { .. }) => "rejected",
    };
    counter!("yiqian_provider_calls_total", "service" => service, "provider" => provider, "call" => call, "outcome" => outcome)
        .increment(1);
    histogram!("yiqian_provider_call_duration_seconds", "service" => service, "provider" => provider, "call" => call)
        .record(elapsed.as_secs_f64());
}

/// An OCSP request was answered: `cached` (from memory), `confirmed` (from memory after a
/// status check), `signed` (signed now and cached), `signed_for_requester` (with its nonce, or
/// for several certificates: not cached), or
/// refused as `malformed`, `unauthorized` (another CA) or `internal_error`.
pub(crate) fn ocsp_answer(outcome: &'static str) {
    // The busiest counter of all: its handles are kept, as the HTTP ones are.
    static ANSWERS: OnceLock<RwLock<Vec<(&'static str, metrics::Counter)>>> = OnceLock::new();
    let answers = ANSWERS.get_or_init(Default::default);
    if let Some((_, c)) = answers.read().unwrap_or_else(|e| e.into_inner()).iter().find(|(o, _)| *o == outcome) {
        c.increment(1);
        return;
    }
    let counter = counter!("yiqian_ocsp_requests_total", "outcome" => outcome);
    counter.increment(1);
    answers.write().unwrap_or_else(|e| e.into_inner()).push((outcome, counter));
}

/// A certificate was issued with `algorithm`.
pub(crate) fn certificate_issued(algorithm: &str) {
    counter!("yiqian_certificates_issued_total", "algorithm" => algorithm.to_owned()).increment(1);
}

/// A certificate's status changed to `status` (`revoked`, `hold`, `active` on release).
pub(crate) fn certificate_status_changed(status: &'static str) {
    counter!("yiqian_certificate_status_changes_total", "status" => status).increment(1);
}

/// A UKEY personalisation ended, on the `server` (software tokens) or at a `station`:
/// `done`, `failed` or `abandoned`.
pub(crate) fn personalisation(site: &'static str, outcome: &'static str) {
    counter!("yiqian_personalisations_total", "site" => site, "outcome" => outcome).increment(1);
}

/// An upload to `route` (its template) was taken, `bytes` long.
pub fn upload_stored(route: &str, bytes: u64) {
    counter!("yiqian_upload_bytes_total", "route" => route.to_owned()).increment(bytes);
    counter!("yiqian_uploads_total", "route" => route.to_owned()).increment(1);
}

/// An upload to `route` was refused: `too_large`, `busy` (every slot taken), `timeout` (the
/// body stopped coming), `refused` (its content or the order's state) or `failed` (ours).
pub fn upload_rejected(route: &str, reason: &'static str) {
    counter!("yiqian_upload_rejects_total", "route" => route.to_owned(), "reason" => reason).increment(1);
}

/// An order's personal data was deleted, for `reason` (`closed_order`,
/// `certificate_retention`, `applicant_request`).
pub(crate) fn personal_data_erased(reason: &'static str) {
    counter!("yiqian_personal_data_erasures_total", "reason" => reason).increment(1);
}

/// A scheduled job's turn on this node: `ran`, `skipped` (another node had the period) or
/// `failed`.
pub(crate) fn scheduled_job(job: &'static str, outcome: &'static str) {
    counter!("yiqian_scheduled_jobs_total", "job" => job, "outcome" => outcome).increment(1);
}

/// An SMS sender whose calls are counted and timed.
pub(crate) struct MeteredSms(pub(crate) Arc<dyn SmsSender>);

#[async_trait]
impl SmsSender for MeteredSms {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    async fn send(&self, message: &SmsMessage, idempotency_key: &str) -> Result<(), ProviderError> {
        let started = Instant::now();
        let result = self.0.send(message, idempotency_key).await;
        provider_call("sms", self.name(), "send", started.elapsed(), &result);
        result
    }
}

/// An identity provider whose calls are counted and timed.
pub(crate) struct MeteredIdentity(pub(crate) Arc<dyn IdentityVerifier>);

#[async_trait]
impl IdentityVerifier for MeteredIdentity {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    async fn live_code(&self) -> Result<String, ProviderError> {
        let started = Instant::now();
        let result = self.0.live_code().await;
        provider_call("identity", self.name(), "live_code", started.elapsed(), &result);
        result
    }

    async fn read_id_card(&self, front: &[u8], back: &[u8]) -> Result<IdCardReading, ProviderError> {
        let started = Instant::now();
        let result = self.0.read_id_card(front, back).await;
        provider_call("identity", self.name(), "read_id_card", started.elapsed(), &result);
        result
    }

    async fn check_liveness(
        &self,
        video: &[u8],
        digits: &str,
        id_photo: &[u8],
    ) -> Result<LivenessVerdict, ProviderError> {
        let started = Instant::now();
        let result = self.0.check_liveness(video, digits, id_photo).await;
        provider_call("identity", self.name(), "check_liveness", started.elapsed(), &result);
        result
    }
}

impl App {
    /// Sets the gauges read from the database — orders by state, the outbox by state and its
    /// oldest waiting message, the CRL's next update — just before they are exposed. Every node
    /// reports the same deployment-wide values.
    pub async fn observe_gauges(&self) -> Result<(), crate::AppError> {
        let store = self.store();
        let orders = store.count_orders_by_state().await?;
        for state in OrderState::ALL {
            let n = orders.iter().find(|(s, _)| *s == state.code()).map_or(0, |(_, n)| *n);
            gauge!("yiqian_orders", "state" => state.code()).set(n as f64);
        }
        let outbox = store.outbox_counts().await?;
        for state in ["pending", "sending", "done", "dead"] {
            let n = outbox.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n);
            gauge!("yiqian_outbox_messages", "state" => state).set(n as f64);
        }
        let now = self.now();
        let oldest = store.oldest_waiting_outbox_message().await?;
        let age = oldest.map_or(0.0, |created| (now - created).num_milliseconds().max(0) as f64 / 1000.0);
        gauge!("yiqian_outbox_oldest_waiting_age_seconds").set(age);
        if let Some(next_update) = self.crl_next_update().await? {
            gauge!("yiqian_crl_next_update_timestamp_seconds").set(next_update.timestamp() as f64);
        }
        gauge!("yiqian_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        Ok(())
    }
}
