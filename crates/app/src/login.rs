//! Applicant login by phone number and SMS code, and sessions. WeChat web authorisation
//! (`wechat_login.rs`) is a second way to obtain the same session.

use crate::sms_codes::CodePurpose;
use crate::{App, AppError, in_tx, new_id};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rand::RngCore;
use sha2::{Digest, Sha256};
use yiqian_domain::ApplicantId;
use yiqian_domain::identity::MobileNumber;
use yiqian_store::audit::NewAuditEntry;

/// A new login session. The token is shown once (cookie or API answer) and stored hashed.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    /// Who logged in.
    pub applicant: ApplicantId,
    /// Seconds until it ends.
    pub expires_in_seconds: i64,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl App {
    /// Sends a login code.
    pub async fn send_login_code(&self, phone: &str, client_ip: &str) -> Result<crate::sms_codes::CodeSent, AppError> {
        let phone = MobileNumber::parse(phone)?;
        self.send_code(&phone, CodePurpose::Login, client_ip).await
    }

    /// Logs in with a phone number and the code sent to it; creates the account on first
    /// login.
    pub async fn login(&self, phone: &str, code: &str) -> Result<Session, AppError> {
        let phone = MobileNumber::parse(phone)?;
        let matched = self.check_code(&phone, CodePurpose::Login, code).await?;
        let new_applicant = ApplicantId::parse(&new_id("AP", 20)).expect("generated ids are valid");
        in_tx!(self, |tx| {
            let now = self.now();
            self.use_code(&mut tx, &matched).await?;
            let applicant = tx.applicant_by_phone(&phone, &new_applicant, now).await?;
            self.open_session(&mut tx, applicant, "sms", now).await
        })
    }

    /// The seam every way of logging in ends in: records a new session for an identified
    /// applicant within the caller's unit of work. Phone + SMS code is one way to identify
    /// the applicant; WeChat web authorisation (code → openid → applicant) is another.
    pub(crate) async fn open_session(
        &self,
        tx: &mut yiqian_store::Tx,
        applicant: ApplicantId,
        method: &'static str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Session, AppError> {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = B64.encode(raw);
        let ttl = self.config().session_ttl;
        tx.insert_session(&token_hash(&token), &applicant, now, now + ttl).await?;
        let actor = format!("applicant:{applicant}");
        let detail = serde_json::json!({"method": method});
        tx.audit(NewAuditEntry { actor: &actor, action: "applicant.login", subject: &actor, detail }, now).await?;
        Ok(Session { token, applicant, expires_in_seconds: ttl.num_seconds() })
    }

    /// The applicant a session token belongs to.
    pub async fn authenticate(&self, token: &str) -> Result<ApplicantId, AppError> {
        let mut tx = self.store().read().await?;
        tx.session(&token_hash(token), self.now()).await?.ok_or(AppError::Unauthorized)
    }

    /// Ends a session.
    pub async fn logout(&self, token: &str) -> Result<(), AppError> {
        let hash = token_hash(token);
        in_tx!(self, |tx| {
            tx.delete_session(&hash).await?;
            Ok(())
        })
    }
}
