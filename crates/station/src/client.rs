//! The station's HTTP client of the server's station API: one method per operation, each a
//! JSON request with the station's bearer credential, answered by a [`wire`] body or a typed
//! [`ApiError`] carrying the server's code and Chinese message.

use crate::wire::{self, ErrorBody};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a call to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error.
    #[error("{message} ({code}, HTTP {status})")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's stable code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached, or its answer was not understood.
    #[error("服务器无法访问: {0}")]
    Unreachable(String),
}

impl ApiError {
    /// The server's code, when it answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Refused { code, .. } => Some(code),
            ApiError::Unreachable(_) => None,
        }
    }
}

/// A client of one server, with or without a station credential.
#[derive(Clone)]
pub struct StationClient {
    http: reqwest::Client,
    base: String,
    credential: Option<String>,
}

impl std::fmt::Debug for StationClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StationClient").field("base", &self.base).finish_non_exhaustive()
    }
}

/// A path segment as it goes into a URL (ids and serials are ASCII; anything else escaped).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl StationClient {
    /// A client of the server at `base` (e.g. `https://ca.example.cn`).
    pub fn new(base: &str, credential: Option<String>) -> Result<StationClient, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("yiqian-station/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        Ok(StationClient { http, base: base.trim_end_matches('/').to_owned(), credential })
    }

    async fn call<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, ApiError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(c) = &self.credential {
            request = request.bearer_auth(c);
        }
        if let Some(b) = body {
            request = request.json(b);
        }
        let response = request.send().await.map_err(|e| ApiError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| ApiError::Unreachable(e.without_url().to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::Unreachable(format!("unexpected answer to {path}: {e}")));
        }
        if status == reqwest::StatusCode::UNAUTHORIZED && self.credential.is_some() {
            return Err(ApiError::Refused {
                status: status.as_u16(),
                code: "unauthorized".into(),
                message: "工作站凭证无效、已过期或已被管理员吊销:请重新运行 yiqian station enrol 登记".into(),
            });
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => Err(ApiError::Refused { status: status.as_u16(), code: b.error.code, message: b.error.message }),
            Err(_) => Err(ApiError::Unreachable(format!("HTTP {status} from {path}"))),
        }
    }

    async fn post<B: Serialize + ?Sized, R: DeserializeOwned>(&self, path: &str, body: &B) -> Result<R, ApiError> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Enrols a station with a member of staff's password and code.
    pub async fn enrol(&self, request: &wire::EnrolmentRequest) -> Result<wire::EnrolmentResponse, ApiError> {
        self.post("/api/v1/station/enrolment", request).await
    }

    /// Starts a run (the station's leases of an earlier run are given up).
    pub async fn start(&self) -> Result<wire::StartResponse, ApiError> {
        self.post("/api/v1/station/start", &serde_json::json!({})).await
    }

    /// What the station is and the key PINs are sealed to, without starting a run.
    pub async fn info(&self) -> Result<wire::StartResponse, ApiError> {
        self.call::<(), _>(reqwest::Method::GET, "/api/v1/station/info", None).await
    }

    /// Takes the next order of a batch for a key.
    pub async fn claim(&self, batch: &str, request: &wire::ClaimRequest) -> Result<Option<wire::Claim>, ApiError> {
        let r: wire::ClaimResponse =
            self.post(&format!("/api/v1/station/batches/{}/claims", segment(batch)), request).await?;
        Ok(r.claim)
    }

    /// Has the certificate issued for a lease's CSR.
    pub async fn certify(
        &self,
        lease: &str,
        request: &wire::CertifyRequest,
    ) -> Result<wire::CertifyResponse, ApiError> {
        self.post(&format!("/api/v1/station/leases/{}/certificate", segment(lease)), request).await
    }

    /// Records a lease's key against its order.
    pub async fn complete(
        &self,
        lease: &str,
        request: &wire::CompleteRequest,
    ) -> Result<wire::CompleteResponse, ApiError> {
        self.post(&format!("/api/v1/station/leases/{}/complete", segment(lease)), request).await
    }

    /// Starts a counter service (`unlock-pin`, `renew`, `reissue`) for an order.
    pub async fn counter_start(
        &self,
        order: &str,
        service: &str,
        request: &wire::CounterStartRequest,
    ) -> Result<wire::CounterStartResponse, ApiError> {
        self.post(&format!("/api/v1/station/counter/{}/{}", segment(order), segment(service)), request).await
    }

    /// Gives a lease up.
    pub async fn abandon(&self, lease: &str, reason: &str) -> Result<(), ApiError> {
        let _: serde_json::Value = self
            .post(
                &format!("/api/v1/station/leases/{}/abandon", segment(lease)),
                &wire::AbandonRequest { reason: reason.to_owned() },
            )
            .await?;
        Ok(())
    }

    /// A half-personalised key's SO PIN, sealed to the station's one-time key.
    pub async fn recover(
        &self,
        serial: &str,
        request: &wire::RecoveryRequest,
    ) -> Result<wire::RecoveryResponse, ApiError> {
        self.post(&format!("/api/v1/station/keys/{}/recovery", segment(serial)), request).await
    }

    /// Where a batch stands.
    pub async fn batch(&self, batch: &str) -> Result<wire::BatchResponse, ApiError> {
        self.call::<(), _>(reqwest::Method::GET, &format!("/api/v1/station/batches/{}", segment(batch)), None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(segment("BT0123abcd"), "BT0123abcd");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
