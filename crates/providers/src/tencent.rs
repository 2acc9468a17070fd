//! Tencent Cloud API 3.0 (SMS, FaceID, IDCardOCR): the configuration, a small signed JSON
//! client shared by every service, and the adapters built on it — [`TencentSms`]
//! ([`crate::sms::SmsSender`]) and [`TencentIdentity`] ([`crate::identity::IdentityVerifier`]).
//!
//! Every call is a `POST /` to `https://{service}.tencentcloudapi.com` (or the one configured
//! endpoint, e.g. the local stand-in) signed with TC3-HMAC-SHA256 ([`tc3`]). Tencent answers
//! HTTP 200 even for errors, so the client always looks for `Response.Error`. Bodies are never
//! logged (they carry phone numbers, ID numbers, images); only actions, error codes and
//! RequestIds are.

pub mod identity;
pub mod sms;
pub mod tc3;

pub use identity::TencentIdentity;
pub use sms::{TencentSms, TencentSmsConfig};

use crate::{ConfigError, ProviderError, check_base_url, http_client};
use serde::Deserialize;
use serde_json::Value;

/// The provider name in errors and configuration messages.
pub const PROVIDER: &str = "tencent";
/// The region used when none is configured.
pub const DEFAULT_REGION: &str = "ap-guangzhou";

fn default_region() -> String {
    DEFAULT_REGION.to_owned()
}

/// Credentials and placement of a Tencent Cloud account. `Debug` hides the secret key.
#[derive(Clone, Deserialize)]
pub struct TencentCloudConfig {
    /// SecretId (`AKID…`).
    pub secret_id: String,
    /// SecretKey; never sent, never printed.
    pub secret_key: String,
    /// `X-TC-Region`, default [`DEFAULT_REGION`].
    #[serde(default = "default_region")]
    pub region: String,
    /// One base URL for every service (e.g. the local stand-in `http://127.0.0.1:9900`),
    /// replacing `https://{service}.tencentcloudapi.com`.
    #[serde(default)]
    pub endpoint: Option<String>,
}

impl std::fmt::Debug for TencentCloudConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TencentCloudConfig")
            .field("secret_id", &self.secret_id)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl TencentCloudConfig {
    /// A checked configuration; `region` defaults to [`DEFAULT_REGION`], `endpoint` to the
    /// public `https://{service}.tencentcloudapi.com`.
    pub fn new(
        secret_id: impl Into<String>,
        secret_key: impl Into<String>,
        region: Option<&str>,
        endpoint: Option<&str>,
    ) -> Result<TencentCloudConfig, ConfigError> {
        let config = TencentCloudConfig {
            secret_id: secret_id.into(),
            secret_key: secret_key.into(),
            region: region.map_or_else(default_region, str::to_owned),
            endpoint: endpoint.map(str::to_owned),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every field (also for a configuration read with serde).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let printable = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
        if !printable(&self.secret_id) || self.secret_id.contains(['/', ',']) {
            return Err(ConfigError::new(PROVIDER, "secret_id", "must be a non-empty SecretId without spaces"));
        }
        if !printable(&self.secret_key) {
            return Err(ConfigError::new(PROVIDER, "secret_key", "must be a non-empty SecretKey without spaces"));
        }
        if self.region.is_empty()
            || !self.region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(ConfigError::new(
                PROVIDER,
                "region",
                format!("{:?} is not a region like ap-guangzhou", self.region),
            ));
        }
        if let Some(endpoint) = &self.endpoint {
            check_base_url(PROVIDER, "endpoint", endpoint)?;
            let url =
                reqwest::Url::parse(endpoint).map_err(|e| ConfigError::new(PROVIDER, "endpoint", e.to_string()))?;
            if url.path() != "/" {
                return Err(ConfigError::new(
                    PROVIDER,
                    "endpoint",
                    "Tencent Cloud API 3.0 is served at `/`; give no path",
                ));
            }
        }
        Ok(())
    }
}

/// An error answer of Tencent Cloud (`Response.Error`). Holds no personal data: Tencent's
/// `Message` may quote the request, so only the code and the RequestId are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The action called.
    pub action: &'static str,
    /// The error code, e.g. `AuthFailure.SignatureFailure`.
    pub code: String,
    /// The RequestId of the answer.
    pub request_id: String,
}

impl ApiError {
    /// Whether a later retry of the same request may succeed (see [`code_is_transient`]).
    pub fn is_transient(&self) -> bool {
        code_is_transient(&self.code)
    }
}

impl From<ApiError> for ProviderError {
    fn from(e: ApiError) -> ProviderError {
        let detail = format!("{} answered {} (RequestId {})", e.action, e.code, e.request_id);
        if e.is_transient() {
            ProviderError::Transient { provider: PROVIDER, detail }
        } else {
            ProviderError::Rejected { provider: PROVIDER, detail }
        }
    }
}

/// Whether an error code means "try again later": `InternalError*`, `RequestLimitExceeded*`,
/// `ResourceUnavailable*`, `ServiceUnavailable*`, and the FailedOperation codes of Tencent's own
/// back-end failures. Everything else (`AuthFailure.*`, `InvalidParameter*`,
/// `UnauthorizedOperation*`, `LimitExceeded.*`, other `FailedOperation.*`, …) is a refusal.
pub fn code_is_transient(code: &str) -> bool {
    const TRANSIENT_PREFIXES: [&str; 4] =
        ["InternalError", "RequestLimitExceeded", "ResourceUnavailable", "ServiceUnavailable"];
    const TRANSIENT_FAILURES: [&str; 9] = [
        "FailedOperation.DbError",
        "FailedOperation.EngineRecognizeTimeout",
        "FailedOperation.FileSaveError",
        "FailedOperation.RequestLimitExceeded",
        "FailedOperation.LivessSystemError",
        "FailedOperation.CompareSystemError",
        "FailedOperation.DecryptSystemError",
        "FailedOperation.UnKnown",
        "FailedOperation.UnKnowError",
    ];
    TRANSIENT_PREFIXES.iter().any(|p| code.starts_with(p)) || TRANSIENT_FAILURES.contains(&code)
}

/// Why a call failed: Tencent answered with an error, or there was no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// `Response.Error`, for callers that treat some codes as results.
    Api(ApiError),
    /// Transport failure, an HTTP error status, or an unreadable answer.
    Other(ProviderError),
}

impl From<CallError> for ProviderError {
    fn from(e: CallError) -> ProviderError {
        match e {
            CallError::Api(e) => e.into(),
            CallError::Other(e) => e,
        }
    }
}

/// A signed JSON client of Tencent Cloud API 3.0. Cheap to clone.
#[derive(Clone)]
pub struct TencentCloud {
    credentials: tc3::Credentials,
    region: String,
    endpoint: Option<reqwest::Url>,
    http: reqwest::Client,
}

impl std::fmt::Debug for TencentCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TencentCloud")
            .field("credentials", &self.credentials)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint.as_ref().map(reqwest::Url::as_str))
            .finish_non_exhaustive()
    }
}

impl TencentCloud {
    /// A client for `config` (checked again here), using [`http_client`].
    pub fn new(config: TencentCloudConfig) -> Result<TencentCloud, ConfigError> {
        config.validate()?;
        let endpoint = match &config.endpoint {
            Some(e) => Some(reqwest::Url::parse(e).map_err(|e| ConfigError::new(PROVIDER, "endpoint", e.to_string()))?),
            None => None,
        };
        Ok(TencentCloud {
            credentials: tc3::Credentials { secret_id: config.secret_id, secret_key: config.secret_key },
            region: config.region,
            endpoint,
            http: http_client(),
        })
    }

    /// The URL a call to `service` goes to.
    fn url(&self, service: &str) -> Result<reqwest::Url, ProviderError> {
        match &self.endpoint {
            Some(url) => Ok(url.clone()),
            None => reqwest::Url::parse(&format!("https://{service}.tencentcloudapi.com/"))
                .map_err(|e| ProviderError::transport(PROVIDER, format!("no URL for service {service}: {e}"))),
        }
    }

    /// Calls `action` of `service` (API `version`) with `body`; returns the `Response` object.
    /// Every `Response.Error` is mapped to [`ProviderError`] (see [`code_is_transient`]).
    pub async fn call(
        &self,
        service: &str,
        version: &str,
        action: &'static str,
        body: &Value,
    ) -> Result<Value, ProviderError> {
        Ok(self.try_call(service, version, action, body).await?)
    }

    /// Like [`TencentCloud::call`], but hands `Response.Error` back as [`CallError::Api`] for
    /// callers that treat some codes as business results.
    pub async fn try_call(
        &self,
        service: &str,
        version: &str,
        action: &'static str,
        body: &Value,
    ) -> Result<Value, CallError> {
        let other = |detail: String| CallError::Other(ProviderError::transport(PROVIDER, detail));
        let url = self.url(service).map_err(CallError::Other)?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(other(format!("{action}: the endpoint has no host"))),
        };
        let payload = serde_json::to_vec(body).map_err(|e| other(format!("{action}: cannot encode the body: {e}")))?;
        let timestamp = chrono::Utc::now();
        let request = tc3::Tc3Request {
            service,
            host: &host,
            content_type: tc3::CONTENT_TYPE,
            payload: &payload,
            timestamp: chrono::DateTime::from_timestamp(timestamp.timestamp(), 0).unwrap_or(timestamp),
        };
        let authorization = tc3::authorization(&self.credentials, &request);
        let response = self
            .http
            .post(url)
            .header(reqwest::header::HOST, &host)
            .header(reqwest::header::CONTENT_TYPE, tc3::CONTENT_TYPE)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header("X-TC-Action", action)
            .header("X-TC-Version", version)
            .header("X-TC-Timestamp", request.timestamp.timestamp().to_string())
            .header("X-TC-Region", &self.region)
            .body(payload)
            .send()
            .await
            .map_err(|e| other(format!("{action}: {}", without_url(e))))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| other(format!("{action}: {}", without_url(e))))?;
        let envelope = serde_json::from_slice::<Value>(&bytes).ok();
        let Some(Value::Object(mut answer)) = envelope.and_then(|mut v| v.get_mut("Response").map(Value::take)) else {
            let detail = format!("{action}: HTTP {status} without a Tencent Cloud answer");
            tracing::warn!(action, %status, "Tencent Cloud gave no readable answer");
            return Err(CallError::Other(
                if status.is_server_error() || status.as_u16() == 429 || status.is_success() {
                    ProviderError::Transient { provider: PROVIDER, detail }
                } else {
                    ProviderError::Rejected { provider: PROVIDER, detail }
                },
            ));
        };
        let request_id = answer.get("RequestId").and_then(Value::as_str).unwrap_or("").to_owned();
        if let Some(error) = answer.remove("Error") {
            let code = error.get("Code").and_then(Value::as_str).unwrap_or("").to_owned();
            if code.is_empty() {
                return Err(other(format!("{action}: an error without a code (RequestId {request_id})")));
            }
            tracing::warn!(action, code = %code, request_id = %request_id, "Tencent Cloud answered an error");
            return Err(CallError::Api(ApiError { action, code, request_id }));
        }
        tracing::debug!(action, request_id = %request_id, "Tencent Cloud answered");
        Ok(Value::Object(answer))
    }
}

/// A reqwest error's text without the URL (which is only ever the endpoint, but keep it short).
fn without_url(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

/// Reads the `RequestId` of a `Response` object (for logs and error details).
pub(crate) fn request_id(response: &Value) -> &str {
    response.get("RequestId").and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_classified() {
        for code in [
            "InternalError",
            "InternalError.Timeout",
            "RequestLimitExceeded",
            "RequestLimitExceeded.UinLimitExceeded",
            "ResourceUnavailable.InArrears",
            "FailedOperation.LivessSystemError",
        ] {
            assert!(code_is_transient(code), "{code}");
        }
        for code in [
            "AuthFailure.SignatureFailure",
            "AuthFailure.SignatureExpire",
            "InvalidParameterValue.IncorrectPhoneNumber",
            "InvalidParameter",
            "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
            "LimitExceeded.PhoneNumberDailyLimit",
            "FailedOperation.PhoneNumberInBlacklist",
            "FailedOperation.SignatureIncorrectOrUnapproved",
            "MissingParameter",
        ] {
            assert!(!code_is_transient(code), "{code}");
        }
        let e: ProviderError =
            ApiError { action: "SendSms", code: "AuthFailure.SignatureFailure".into(), request_id: "r-1".into() }
                .into();
        assert_eq!(
            e,
            ProviderError::Rejected {
                provider: PROVIDER,
                detail: "SendSms answered AuthFailure.SignatureFailure (RequestId r-1)".into()
            }
        );
    }

    #[test]
    fn configuration_is_checked_and_debug_hides_the_key() {
        let c = TencentCloudConfig::new("AKIDabc", "s3cr3t-key", None, None).unwrap();
        assert_eq!(c.region, DEFAULT_REGION);
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let client = TencentCloud::new(c).unwrap();
        assert!(!format!("{client:?}").contains("s3cr3t"));
        assert_eq!(client.url("sms").unwrap().as_str(), "https://sms.tencentcloudapi.com/");

        let c = TencentCloudConfig::new("AKIDabc", "k", Some("ap-beijing"), Some("http://127.0.0.1:9900")).unwrap();
        let client = TencentCloud::new(c).unwrap();
        assert_eq!(client.url("ocr").unwrap().as_str(), "http://127.0.0.1:9900/");

        let field = |r: Result<TencentCloudConfig, ConfigError>| r.unwrap_err().field;
        assert_eq!(field(TencentCloudConfig::new("", "k", None, None)), "secret_id");
        assert_eq!(field(TencentCloudConfig::new("AKID x", "k", None, None)), "secret_id");
        assert_eq!(field(TencentCloudConfig::new("AKID", "", None, None)), "secret_key");
        assert_eq!(field(TencentCloudConfig::new("AKID", "k", Some("Guangzhou"), None)), "region");
        assert_eq!(field(TencentCloudConfig::new("AKID", "k", None, Some("ftp://x"))), "endpoint");
        assert_eq!(field(TencentCloudConfig::new("AKID", "k", None, Some("http://x/tencent"))), "endpoint");
        assert_eq!(field(TencentCloudConfig::new("AKID", "k", None, Some("http://x/?a=1"))), "endpoint");
    }

    #[test]
    fn a_config_reads_from_json_with_the_default_region() {
        let c: TencentCloudConfig = serde_json::from_str(r#"{"secret_id":"AKID1","secret_key":"k"}"#).unwrap();
        assert_eq!((c.region.as_str(), c.endpoint), (DEFAULT_REGION, None));
    }
}
