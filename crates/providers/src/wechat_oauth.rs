//! WeChat web authorisation (OAuth2 `snsapi_base` / `snsapi_userinfo`): the redirect to WeChat
//! and the server-side exchange of the code for the applicant's openid.
//!
//! The authorise URL keeps WeChat's parameter order (`appid`, `redirect_uri`, `response_type`,
//! `scope`, `state`) and ends with `#wechat_redirect`. A code is single-use and lives five
//! minutes; the exchange (`/sns/oauth2/access_token`) answers `{openid, scope, …}` or
//! `{errcode, errmsg}` with HTTP 200. The access token it also returns is not kept: only the
//! openid (per app id, what JSAPI payments need) and the unionid, if any, leave this module.

use crate::{ConfigError, check_base_url};
use serde::Deserialize;

const PROVIDER: &str = "wechat_oauth";

/// WeChat's authorisation page host.
pub const DEFAULT_AUTHORIZE_BASE: &str = "https://open.weixin.qq.com";
/// WeChat's API host.
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";
/// The longest `state` WeChat passes back.
pub const MAX_STATE_LEN: usize = 128;

/// What the authorisation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthScope {
    /// Silent; yields the openid only.
    SnsapiBase,
    /// Asks the user's consent; yields also the profile (and unionid with an open-platform binding).
    SnsapiUserinfo,
}

impl OAuthScope {
    /// The wire value, `snsapi_base` or `snsapi_userinfo`.
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthScope::SnsapiBase => "snsapi_base",
            OAuthScope::SnsapiUserinfo => "snsapi_userinfo",
        }
    }
}

/// The official account's web-authorisation settings (secret already resolved).
#[derive(Clone, PartialEq, Eq)]
pub struct WechatOAuthConfig {
    /// The official account's AppID.
    pub appid: String,
    /// Its AppSecret. Secret.
    pub secret: String,
    /// [`DEFAULT_AUTHORIZE_BASE`] in production.
    pub authorize_base: String,
    /// [`DEFAULT_API_BASE`] in production.
    pub api_base: String,
    /// The scope asked for.
    pub scope: OAuthScope,
}

impl std::fmt::Debug for WechatOAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatOAuthConfig")
            .field("appid", &self.appid)
            .field("secret", &"<secret>")
            .field("authorize_base", &self.authorize_base)
            .field("api_base", &self.api_base)
            .field("scope", &self.scope)
            .finish()
    }
}

/// Who authorised, as WeChat identifies them under our app id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WechatIdentity {
    /// The openid under our app id.
    pub openid: String,
    /// The unionid, when the app is bound to an open-platform account (snsapi_userinfo only).
    pub unionid: Option<String>,
    /// The scope granted, e.g. `snsapi_base`.
    pub scope: String,
    /// A "snapshot page" virtual user (`is_snapshotuser=1`): do not bind or let pay.
    pub snapshot_user: bool,
}

/// Why authorisation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The `state` is not 1–128 characters of `[a-zA-Z0-9]`.
    #[error("state must be 1-128 characters of [a-zA-Z0-9]")]
    InvalidState,
    /// The redirect URI is not an absolute http(s) URL.
    #[error("redirect_uri is not an absolute http(s) URL")]
    InvalidRedirectUri,
    /// The code is unknown or expired (errcode 40029).
    #[error("the authorisation code is invalid or expired")]
    InvalidCode,
    /// The code was used before (errcode 40163).
    #[error("the authorisation code was already used")]
    CodeUsed,
    /// WeChat refused for another reason (e.g. 40013 invalid appid, 40125 invalid secret).
    #[error("WeChat refused the code exchange: errcode {0}")]
    Refused(i64),
    /// Worth retrying (network, WeChat busy `-1`, rate limit 45011).
    #[error("temporary failure exchanging the code: {0}")]
    Transient(String),
}

/// The web-authorisation client.
pub struct WechatOAuth {
    config: WechatOAuthConfig,
    http: reqwest::Client,
}

impl std::fmt::Debug for WechatOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatOAuth").field("config", &self.config).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    errcode: i64,
    openid: Option<String>,
    #[serde(default)]
    scope: String,
    unionid: Option<String>,
    #[serde(default)]
    is_snapshotuser: i64,
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl WechatOAuth {
    /// A client for `config`, validated without any network call.
    pub fn new(config: WechatOAuthConfig) -> Result<WechatOAuth, ConfigError> {
        if config.appid.is_empty() || !config.appid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ConfigError::new(PROVIDER, "appid", "must be set, letters and digits only"));
        }
        if config.secret.is_empty() || config.secret.trim() != config.secret {
            return Err(ConfigError::new(PROVIDER, "secret", "must be set, without surrounding spaces"));
        }
        check_base_url(PROVIDER, "authorize_base", &config.authorize_base)?;
        check_base_url(PROVIDER, "api_base", &config.api_base)?;
        Ok(WechatOAuth { config, http: crate::http_client() })
    }

    /// The page to send the browser to: `…/connect/oauth2/authorize?appid=…&redirect_uri=…&
    /// response_type=code&scope=…&state=…#wechat_redirect`. WeChat comes back to
    /// `redirect_uri?code=…&state=…` (only `state` when the user refused).
    pub fn authorize_url(&self, redirect_uri: &str, state: &str) -> Result<String, OAuthError> {
        if state.is_empty() || state.len() > MAX_STATE_LEN || !state.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(OAuthError::InvalidState);
        }
        let parsed = reqwest::Url::parse(redirect_uri).map_err(|_| OAuthError::InvalidRedirectUri)?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(OAuthError::InvalidRedirectUri);
        }
        Ok(format!(
            "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope={}&state={state}#wechat_redirect",
            self.config.authorize_base.trim_end_matches('/'),
            self.config.appid,
            encode(redirect_uri),
            self.config.scope.as_str(),
        ))
    }

    /// Exchanges a code from the redirect for the user's identity.
    pub async fn exchange_code(&self, code: &str) -> Result<WechatIdentity, OAuthError> {
        if code.is_empty() || code.len() > 256 {
            return Err(OAuthError::InvalidCode);
        }
        let url = format!(
            "{}/sns/oauth2/access_token?appid={}&secret={}&code={}&grant_type=authorization_code",
            self.config.api_base.trim_end_matches('/'),
            self.config.appid,
            encode(&self.config.secret),
            encode(code),
        );
        // The URL carries the secret: errors are reported without it.
        let response =
            self.http.get(&url).send().await.map_err(|e| OAuthError::Transient(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(OAuthError::Transient(format!("HTTP {status}")));
        }
        let body = response.bytes().await.map_err(|e| OAuthError::Transient(e.without_url().to_string()))?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| OAuthError::Transient(format!("unreadable answer ({:?})", e.classify())))?;
        match answer.errcode {
            0 => {}
            40029 => return Err(OAuthError::InvalidCode),
            40163 => return Err(OAuthError::CodeUsed),
            -1 | 45011 => return Err(OAuthError::Transient(format!("errcode {}", answer.errcode))),
            other => {
                tracing::warn!(provider = PROVIDER, errcode = other, "code exchange refused");
                return Err(OAuthError::Refused(other));
            }
        }
        let openid = answer
            .openid
            .filter(|o| !o.is_empty())
            .ok_or_else(|| OAuthError::Transient("answer without openid".into()))?;
        Ok(WechatIdentity {
            openid,
            unionid: answer.unionid.filter(|u| !u.is_empty()),
            scope: answer.scope,
            snapshot_user: answer.is_snapshotuser == 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(scope: OAuthScope) -> WechatOAuth {
        WechatOAuth::new(WechatOAuthConfig {
            appid: "wx520c15f417810387".into(),
            secret: "s3cr3t".into(),
            authorize_base: DEFAULT_AUTHORIZE_BASE.into(),
            api_base: DEFAULT_API_BASE.into(),
            scope,
        })
        .unwrap()
    }

    #[test]
    fn the_authorise_url_keeps_wechats_order_and_fragment() {
        assert_eq!(
            client(OAuthScope::SnsapiBase).authorize_url("https://yiqian.example.cn/wx/back?x=1", "Ab12").unwrap(),
            "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx520c15f417810387\
             &redirect_uri=https%3A%2F%2Fyiqian.example.cn%2Fwx%2Fback%3Fx%3D1&response_type=code\
             &scope=snsapi_base&state=Ab12#wechat_redirect"
        );
        assert!(
            client(OAuthScope::SnsapiUserinfo)
                .authorize_url("https://a.cn/", "s")
                .unwrap()
                .contains("&scope=snsapi_userinfo&state=s#")
        );
    }

    #[test]
    fn bad_state_and_redirects_are_refused() {
        let c = client(OAuthScope::SnsapiBase);
        assert_eq!(c.authorize_url("https://a.cn/", ""), Err(OAuthError::InvalidState));
        assert_eq!(c.authorize_url("https://a.cn/", "a-b"), Err(OAuthError::InvalidState));
        assert_eq!(c.authorize_url("https://a.cn/", &"a".repeat(129)), Err(OAuthError::InvalidState));
        assert!(c.authorize_url("https://a.cn/", &"a".repeat(128)).is_ok());
        assert_eq!(c.authorize_url("/relative", "s"), Err(OAuthError::InvalidRedirectUri));
        assert_eq!(c.authorize_url("ftp://a.cn/", "s"), Err(OAuthError::InvalidRedirectUri));
    }

    #[test]
    fn configuration_is_checked_and_the_secret_hidden() {
        let config = WechatOAuthConfig {
            appid: "wx1".into(),
            secret: "s3cr3t".into(),
            authorize_base: DEFAULT_AUTHORIZE_BASE.into(),
            api_base: DEFAULT_API_BASE.into(),
            scope: OAuthScope::SnsapiBase,
        };
        assert!(!format!("{config:?}").contains("s3cr3t"));
        assert_eq!(
            WechatOAuth::new(WechatOAuthConfig { secret: String::new(), ..config.clone() }).unwrap_err().field,
            "secret"
        );
        assert_eq!(
            WechatOAuth::new(WechatOAuthConfig { api_base: "x".into(), ..config.clone() }).unwrap_err().field,
            "api_base"
        );
        assert_eq!(WechatOAuth::new(WechatOAuthConfig { appid: "wx 1".into(), ..config }).unwrap_err().field, "appid");
    }
}
