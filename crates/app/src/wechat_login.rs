//! WeChat web authorisation inside WeChat (PRODUCT.md: the applicant arrives from our official
//! account): the code WeChat hands back is exchanged server-side for the applicant's openid
//! under our official account. The openid is bound to the applicant — it is what WeChat Pay's
//! JSAPI needs as `payer.openid` — and, once bound, logs the applicant in without an SMS code.
//! An openid seen before the applicant logged in is held sealed (in a cookie the web layer
//! keeps) and bound right after the SMS login.

use crate::login::Session;
use crate::{App, AppError, in_tx};
use yiqian_domain::ApplicantId;

/// What an authorisation came to.
#[derive(Debug)]
pub enum WechatLogin {
    /// The openid was bound to the applicant already logged in.
    Bound,
    /// The openid belongs to a known applicant: a new session.
    LoggedIn(Session),
    /// Nobody has this openid yet: log in by SMS, then it is bound. The value is the openid
    /// sealed for the web layer to hold until then.
    Unbound {
        /// The sealed openid.
        pending: String,
    },
}

const PENDING_CONTEXT: &str = "wechat-openid-pending";

impl App {
    /// Whether WeChat web authorisation is configured.
    pub fn wechat_login_enabled(&self) -> bool {
        self.providers().wechat_login.is_some()
    }

    /// The openid bound to the applicant, for WeChat Pay JSAPI.
    pub async fn wechat_openid_of(&self, applicant: &ApplicantId) -> Result<Option<String>, AppError> {
        if !self.wechat_login_enabled() {
            return Ok(None);
        }
        Ok(self.store().read().await?.wechat_openid_of(applicant).await?)
    }

    /// A fresh `state` for an authorisation (letters and digits, as WeChat requires).
    pub fn wechat_state(&self) -> String {
        crate::new_id("ST", 30)
    }

    /// Where to send the browser to authorise; WeChat comes back to `/wechat/callback` with
    /// `state` unchanged.
    pub fn wechat_authorize_url(&self, state: &str) -> Result<String, AppError> {
        let oauth = self.providers().wechat_login.as_ref().ok_or(AppError::NotFound("微信授权登录"))?;
        let redirect = format!("{}/wechat/callback", self.config().public_url);
        oauth.authorize_url(&redirect, state).map_err(|e| AppError::invalid("wechat_state", e.to_string()))
    }

    /// Takes the code WeChat returned: binds the openid to `current` (a logged-in applicant),
    /// or logs its applicant in, or hands back the sealed openid to bind after an SMS login.
    pub async fn wechat_callback(&self, code: &str, current: Option<&ApplicantId>) -> Result<WechatLogin, AppError> {
        let oauth = self.providers().wechat_login.clone().ok_or(AppError::NotFound("微信授权登录"))?;
        let who = oauth.exchange_code(code).await.map_err(|e| {
            tracing::warn!(error = %e, "WeChat authorisation code refused");
            AppError::invalid("wechat_code", "微信授权已失效,请重新进入")
        })?;
        if who.snapshot_user {
            return Err(AppError::invalid("wechat_snapshot", "请点击页面底部的“使用完整服务”后再试"));
        }
        let hash = self.store().vault().lookup_hash("wechat-openid", &who.openid);
        in_tx!(self, |tx| {
            let now = self.now();
            if let Some(applicant) = current {
                tx.bind_wechat_openid(applicant, &hash, &who.openid, now).await?;
                return Ok(WechatLogin::Bound);
            }
            match tx.applicant_by_openid(&hash).await? {
                Some(applicant) => {
                    Ok(WechatLogin::LoggedIn(self.open_session(&mut tx, applicant, "wechat", now).await?))
                }
                None => {
                    Ok(WechatLogin::Unbound { pending: self.store().vault().seal_text(&who.openid, PENDING_CONTEXT) })
                }
            }
        })
    }

    /// Binds an openid held since before the SMS login. A pending value that does not open
    /// (tampered, or from another deployment) is ignored.
    pub async fn bind_pending_wechat(&self, applicant: &ApplicantId, pending: &str) -> Result<(), AppError> {
        let Ok(openid) = self.store().vault().open_text(pending, PENDING_CONTEXT) else { return Ok(()) };
        let hash = self.store().vault().lookup_hash("wechat-openid", &openid);
        in_tx!(self, |tx| {
            tx.bind_wechat_openid(applicant, &hash, &openid, self.now()).await?;
            Ok(())
        })
    }
}
