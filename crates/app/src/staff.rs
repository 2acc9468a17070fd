//! Staff accounts and console login: password (argon2id) then a one-time code (TOTP, RFC 6238,
//! required for every role), enrolment of the authenticator at the first login, lockout after
//! repeated failures, sessions with an absolute and an idle limit, and the administrator's
//! account management.
//!
//! Login has two stages. [`App::staff_login_password`] checks the password and opens a short
//! *pending* session; [`App::staff_login_totp`] (or, the first time,
//! [`App::staff_enrol_totp`]) checks the code and replaces it with a full session. Both
//! sessions are kept only as hashes of their tokens; the CSRF token of a session is derived
//! from its token with a key of the vault ([`App::staff_csrf_token`]) and never stored.
//!
//! Nothing here writes a password, a TOTP secret or code, or a session token to a log line or
//! an audit detail. Other services authorise a member of staff with [`StaffMember::require`]
//! and record them with [`StaffMember::actor`].

use crate::apply::Actor;
use crate::{App, AppError, in_tx, new_id};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use yiqian_domain::staff::{self, policy};
pub use yiqian_domain::staff::{Permission, Role, StaffName};
use yiqian_store::Tx;
use yiqian_store::audit::{AuditEntry, AuditVerdict, NewAuditEntry};
use yiqian_store::staff::{NewStaff, SessionStage, StaffRecord};

/// The issuer shown by authenticator apps.
pub const TOTP_ISSUER: &str = "yiqian";
/// Bytes of a new TOTP secret (160 bits, as RFC 4226 recommends).
const TOTP_SECRET_BYTES: usize = 20;

/// A logged-in member of staff, as the console and every service called from it see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    /// Account id.
    pub id: String,
    /// Login name.
    pub name: StaffName,
    /// Role.
    pub role: Role,
}

impl StaffMember {
    /// Whether the member's role allows `p`.
    pub fn can(&self, p: Permission) -> bool {
        self.role.can(p)
    }

    /// Succeeds when the member's role allows `p`; [`AppError::Forbidden`] otherwise. Call it
    /// first in every service a member of staff uses.
    pub fn require(&self, p: Permission) -> Result<(), AppError> {
        if self.can(p) { Ok(()) } else { Err(AppError::Forbidden) }
    }

    /// Succeeds when the member's role allows at least one of `any` (a page shared by two
    /// duties); [`AppError::Forbidden`] otherwise.
    pub fn require_any(&self, any: &[Permission]) -> Result<(), AppError> {
        if any.iter().any(|p| self.can(*p)) { Ok(()) } else { Err(AppError::Forbidden) }
    }

    /// The member as recorded in history and audit (`staff:NAME`).
    pub fn actor(&self) -> Actor {
        Actor::Staff(self.name.to_string())
    }
}

/// What the password stage of a login leads to.
pub enum StaffLoginStage {
    /// The authenticator is enrolled: ask for its current code.
    NeedsTotp {
        /// The pending session's token (cookie), good for a few minutes.
        pending_token: String,
    },
    /// First login (or after a reset): show the new secret and ask for its first code.
    NeedsEnrolment {
        /// The pending session's token (cookie), good for a few minutes.
        pending_token: String,
        /// The secret in base32, for typing into the authenticator by hand.
        secret_base32: String,
        /// The `otpauth://` URI, for the QR code.
        otpauth_uri: String,
    },
}

/// Debug without the token and the secret.
impl std::fmt::Debug for StaffLoginStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StaffLoginStage::NeedsTotp { .. } => f.write_str("NeedsTotp(..)"),
            StaffLoginStage::NeedsEnrolment { .. } => f.write_str("NeedsEnrolment(..)"),
        }
    }
}

impl StaffLoginStage {
    /// The pending session's token.
    pub fn pending_token(&self) -> &str {
        match self {
            StaffLoginStage::NeedsTotp { pending_token } | StaffLoginStage::NeedsEnrolment { pending_token, .. } => {
                pending_token
            }
        }
    }
}

/// A TOTP secret awaiting its first code, as the enrolment page shows it.
pub struct TotpEnrolment {
    /// The secret in base32, for typing into the authenticator by hand.
    pub secret_base32: String,
    /// The `otpauth://` URI, for the QR code.
    pub otpauth_uri: String,
}

/// Debug without the secret.
impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment(..)")
    }
}

/// A full staff session, shown once.
pub struct StaffSession {
    /// The session token (cookie).
    pub token: String,
    /// The session's CSRF token, carried by every form.
    pub csrf: String,
    /// Seconds until the session ends at the latest.
    pub expires_in_seconds: i64,
}

/// Debug without the tokens.
impl std::fmt::Debug for StaffSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffSession").field("expires_in_seconds", &self.expires_in_seconds).finish_non_exhaustive()
    }
}

/// A staff account as the administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffSummary {
    /// Account id.
    pub id: String,
    /// Login name.
    pub name: StaffName,
    /// Role.
    pub role: Role,
    /// Whether an authenticator is enrolled.
    pub totp_enrolled: bool,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// Until when the account is locked, when it is locked now.
    pub locked_until: Option<DateTime<Utc>>,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

impl StaffSummary {
    fn of(r: &StaffRecord, now: DateTime<Utc>) -> StaffSummary {
        StaffSummary {
            id: r.id.clone(),
            name: r.name.clone(),
            role: r.role,
            totp_enrolled: r.totp_enrolled,
            disabled: r.disabled,
            locked_until: r.locked_until.filter(|t| *t > now),
            created_at: r.created_at,
        }
    }
}

/// The code an authenticator shows at `at` for a secret in base32, or `None` when the
/// secret is not valid base32 of at least 128 bits. For tests and tools: the server only
/// ever checks codes.
pub fn totp_code(secret_base32: &str, at: DateTime<Utc>) -> Option<String> {
    let secret = totp_rs::Secret::try_from_base32(secret_base32).ok()?.as_bytes().to_vec();
    let totp = totp_rs::Builder::new().with_secret(secret).build().ok()?;
    Some(totp.generate(u64::try_from(at.timestamp()).ok()?).to_string())
}

/// What a successful login opens: a console session, or a personalisation station's
/// credential (named).
enum Opens<'a> {
    Console,
    Station(&'a str),
}

/// What [`Opens`] opened.
enum Opened {
    Console(StaffSession),
    Station(crate::station::StationCredential),
}

pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    B64.encode(raw)
}

fn subject(name: &StaffName) -> String {
    format!("staff:{name}")
}

/// The generic refusal of a name or password: the same for unknown names and wrong
/// passwords, so that names cannot be found out.
fn bad_credentials() -> AppError {
    AppError::invalid("staff_login_failed", "用户名或密码错误")
}

fn wrong_code() -> AppError {
    AppError::invalid("staff_totp_wrong", "动态验证码错误")
}

fn locked(until: DateTime<Utc>, now: DateTime<Utc>) -> AppError {
    let seconds = (until - now).num_seconds().max(1);
    let minutes = (seconds + 59) / 60;
    AppError::RateLimited {
        message: format!("账号已锁定,请{minutes}分钟后再试"), retry_after_seconds: seconds
    }
}

fn pending_expired() -> AppError {
    AppError::invalid("staff_login_expired", "登录已超时,请重新输入用户名和密码")
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

/// The TOTP of a secret, labelled for the authenticator as `yiqian:NAME`.
fn totp_of(secret: Vec<u8>, name: &StaffName) -> Result<totp_rs::Totp, AppError> {
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_account_name(name.as_str())
        .with_issuer(Some(TOTP_ISSUER))
        .build()
        .map_err(|e| internal(format!("TOTP: {e}")))
}

/// An argon2id PHC string of `password`, computed off the async threads.
async fn hash_password(password: &str) -> Result<String, AppError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(internal)
    })
    .await
    .map_err(internal)?
}

/// Whether `password` matches the PHC string `hash`, computed off the async threads. With no
/// hash (an unknown name) a dummy hash is checked, so that the answer takes as long.
async fn verify_password(password: &str, hash: Option<String>) -> Result<bool, AppError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = match hash {
            Some(h) => h,
            None => DUMMY
                .get_or_init(|| {
                    let mut raw = [0u8; 24];
                    rand::rngs::OsRng.fill_bytes(&mut raw);
                    Argon2::default().hash_password(&raw).map(|h| h.to_string()).unwrap_or_default()
                })
                .clone(),
        };
        let matches = Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok();
        matches && known
    })
    .await
    .map_err(internal)
}

/// A one-time code as typed: spaces removed.
fn normalise_code(code: &str) -> String {
    code.chars().filter(|c| !c.is_whitespace()).collect()
}

/// How a failed attempt ended.
enum Failure {
    /// Counted; the account stays open.
    Counted,
    /// The account is now locked until then.
    Locked(DateTime<Utc>),
}

impl App {
    /// Adds a member of staff on the operator's authority (the `yiqian admin add` command; the
    /// audit names `system`). In the console use [`App::add_staff_as`].
    pub async fn add_staff(&self, name: &str, role: Role, password: &str) -> Result<StaffSummary, AppError> {
        self.insert_staff(&Actor::System, name, role, password).await
    }

    /// Adds a member of staff on behalf of an administrator.
    pub async fn add_staff_as(
        &self,
        by: &StaffMember,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<StaffSummary, AppError> {
        by.require(Permission::ManageStaff)?;
        self.insert_staff(&by.actor(), name, role, password).await
    }

    async fn insert_staff(
        &self,
        actor: &Actor,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<StaffSummary, AppError> {
        let name = StaffName::parse(name.trim()).map_err(|e| AppError::invalid("invalid_staff_name", e.to_string()))?;
        staff::check_new_password(password).map_err(|e| AppError::invalid("weak_password", e.to_string()))?;
        let duplicate = || AppError::Conflict { code: "staff_exists", message: format!("用户名 {name} 已存在") };
        {
            let mut tx = self.store().read().await?;
            if tx.staff_by_name(&name).await?.is_some() {
                return Err(duplicate());
            }
        }
        let password_hash = hash_password(password).await?;
        let id = new_id("ST", 16);
        let label = actor.label();
        in_tx!(self, |tx| {
            let now = self.now();
            if tx.staff_by_name(&name).await?.is_some() {
                return Err(duplicate());
            }
            let new = NewStaff { id: &id, name: &name, role, password_hash: &password_hash };
            match tx.insert_staff(&new, now).await {
                Ok(()) => {}
                Err(yiqian_store::StoreError::Duplicate) => return Err(duplicate()),
                Err(e) => return Err(e.into()),
            }
            let detail = json!({"role": role.code()});
            let subject = subject(&name);
            tx.audit(NewAuditEntry { actor: &label, action: "staff.added", subject: &subject, detail }, now).await?;
            let rec = tx.staff_by_id(&id).await?.ok_or_else(|| internal("new staff account missing"))?;
            Ok(StaffSummary::of(&rec, now))
        })
    }

    /// The first stage of a console login: checks the name and password. Unknown names and
    /// wrong passwords get the same answer after the same work; five failures in a row (of
    /// passwords or codes) lock the account for fifteen minutes.
    pub async fn staff_login_password(
        &self,
        name: &str,
        password: &str,
        client_ip: &str,
    ) -> Result<StaffLoginStage, AppError> {
        let name = StaffName::parse(name.trim()).ok();
        let record = match &name {
            Some(n) => self.store().read().await?.staff_by_name(n).await?,
            None => None,
        };
        let now = self.now();
        if let Some(until) = record.as_ref().and_then(|r| r.locked_until).filter(|t| *t > now) {
            return Err(locked(until, now));
        }
        let matches = verify_password(password, record.as_ref().map(|r| r.password_hash.clone())).await?;
        if !matches {
            return Err(self.staff_login_failed(record.as_ref(), None, "password", client_ip).await);
        }
        let record = record.ok_or_else(bad_credentials)?;
        if record.disabled {
            return Err(AppError::Conflict {
                code: "staff_disabled", message: "账号已停用,请联系系统管理员".into()
            });
        }
        let pending_token = new_token();
        let pending_hash = token_hash(&pending_token);
        let secret = (!record.totp_enrolled).then(|| {
            let mut s = vec![0u8; TOTP_SECRET_BYTES];
            rand::rngs::OsRng.fill_bytes(&mut s);
            s
        });
        in_tx!(self, |tx| {
            let now = self.now();
            tx.delete_expired_staff_sessions(now).await?;
            if let Some(s) = &secret {
                tx.set_staff_totp_secret(&record.id, Some(s), now).await?;
            }
            let expires = now + Duration::minutes(policy::PENDING_MINUTES);
            tx.insert_staff_session(&pending_hash, &record.id, SessionStage::PasswordOk, now, expires).await?;
            Ok(())
        })?;
        match secret {
            None => Ok(StaffLoginStage::NeedsTotp { pending_token }),
            Some(s) => {
                let totp = totp_of(s, &record.name)?;
                Ok(StaffLoginStage::NeedsEnrolment {
                    pending_token,
                    secret_base32: totp.secret().to_base32(),
                    otpauth_uri: totp.to_url().map_err(|e| internal(format!("TOTP URI: {e}")))?,
                })
            }
        }
    }

    /// The secret awaiting enrolment of a pending login, to show again (e.g. after a wrong
    /// first code); `None` when the account's authenticator is enrolled already (ask for a
    /// code instead). [`AppError::Unauthorized`] when the pending login is unknown or over.
    pub async fn staff_pending_enrolment(&self, pending_token: &str) -> Result<Option<TotpEnrolment>, AppError> {
        let record = self.pending_staff(pending_token).await?;
        if record.totp_enrolled {
            return Ok(None);
        }
        let mut tx = self.store().read().await?;
        let secret = tx.staff_totp_secret(&record.id).await?.ok_or(AppError::Unauthorized)?;
        let totp = totp_of(secret, &record.name)?;
        Ok(Some(TotpEnrolment {
            secret_base32: totp.secret().to_base32(),
            otpauth_uri: totp.to_url().map_err(|e| internal(format!("TOTP URI: {e}")))?,
        }))
    }

    /// The second stage of a console login: checks the authenticator's current code (each
    /// code once) and opens a full session.
    pub async fn staff_login_totp(
        &self,
        pending_token: &str,
        code: &str,
        client_ip: &str,
    ) -> Result<StaffSession, AppError> {
        let record = self.pending_staff(pending_token).await?;
        if !record.totp_enrolled {
            return Err(AppError::invalid("staff_totp_not_enrolled", "请先绑定动态验证码"));
        }
        match self.complete_login(pending_token, record, code, client_ip, false, Opens::Console).await? {
            Opened::Console(session) => Ok(session),
            Opened::Station(_) => Err(internal("a console login opened a station")),
        }
    }

    /// The second stage of a first login: confirms the new authenticator with its first code,
    /// then opens a full session.
    pub async fn staff_enrol_totp(
        &self,
        pending_token: &str,
        code: &str,
        client_ip: &str,
    ) -> Result<StaffSession, AppError> {
        let record = self.pending_staff(pending_token).await?;
        if record.totp_enrolled {
            return Err(AppError::invalid("staff_totp_enrolled", "动态验证码已绑定,请输入当前验证码"));
        }
        match self.complete_login(pending_token, record, code, client_ip, true, Opens::Console).await? {
            Opened::Console(session) => Ok(session),
            Opened::Station(_) => Err(internal("a console login opened a station")),
        }
    }

    /// The second stage of a station's enrolment: checks the authenticator's current code
    /// (as a console login does, with the same lockout) and enrols the station instead of
    /// opening a console session. The authenticator must be enrolled in the console first.
    pub(crate) async fn staff_enrol_station(
        &self,
        pending_token: &str,
        code: &str,
        client_ip: &str,
        station_name: &str,
    ) -> Result<crate::station::StationCredential, AppError> {
        let record = self.pending_staff(pending_token).await?;
        if !record.totp_enrolled {
            return Err(AppError::invalid("staff_totp_not_enrolled", "请先在管理台登录一次并绑定动态验证码"));
        }
        match self.complete_login(pending_token, record, code, client_ip, false, Opens::Station(station_name)).await? {
            Opened::Station(credential) => Ok(credential),
            Opened::Console(_) => Err(internal("a station enrolment opened a console session")),
        }
    }

    /// The account of a live pending login (not locked, not disabled).
    pub(crate) async fn pending_staff(&self, pending_token: &str) -> Result<StaffRecord, AppError> {
        let now = self.now();
        let mut tx = self.store().read().await?;
        let session = tx.staff_session(&token_hash(pending_token)).await?.ok_or(AppError::Unauthorized)?;
        if session.stage != SessionStage::PasswordOk || session.expires_at <= now {
            return Err(pending_expired());
        }
        let record = tx.staff_by_id(&session.staff_id).await?.ok_or(AppError::Unauthorized)?;
        if let Some(until) = record.locked_until.filter(|t| *t > now) {
            return Err(locked(until, now));
        }
        if record.disabled {
            return Err(AppError::Unauthorized);
        }
        Ok(record)
    }

    async fn complete_login(
        &self,
        pending_token: &str,
        record: StaffRecord,
        code: &str,
        client_ip: &str,
        enrolling: bool,
        opens: Opens<'_>,
    ) -> Result<Opened, AppError> {
        let secret = {
            let mut tx = self.store().read().await?;
            tx.staff_totp_secret(&record.id).await?.ok_or(AppError::Unauthorized)?
        };
        let totp = totp_of(secret, &record.name)?;
        let now = self.now();
        let code = normalise_code(code);
        let step = u64::try_from(now.timestamp()).ok().and_then(|t| totp.check(&code, t));
        let Some(step) = step.and_then(|s| i64::try_from(s).ok()) else {
            return Err(self.staff_login_failed(Some(&record), Some(wrong_code()), "totp", client_ip).await);
        };
        let pending_hash = token_hash(pending_token);
        let token = new_token();
        let hash = token_hash(&token);
        let label = subject(&record.name);
        let outcome = in_tx!(self, |tx| {
            let now = self.now();
            if !tx.use_staff_totp_step(&record.id, step, now).await? {
                return Ok(None);
            }
            if !tx.delete_staff_session(&pending_hash).await? {
                return Err(AppError::Unauthorized);
            }
            if enrolling {
                tx.mark_staff_totp_enrolled(&record.id, now).await?;
            }
            tx.clear_staff_login_failures(&record.id, now).await?;
            if let Opens::Station(station_name) = opens {
                let expires = now + Duration::days(policy::STATION_CREDENTIAL_DAYS);
                let station =
                    self.insert_station(&mut tx, &record, station_name, &hash, client_ip, now, expires).await?;
                return Ok(Some((expires, Some(station))));
            }
            let expires = now + Duration::hours(policy::SESSION_HOURS);
            tx.insert_staff_session(&hash, &record.id, SessionStage::Full, now, expires).await?;
            if enrolling {
                let detail = json!({});
                let e = NewAuditEntry { actor: &label, action: "staff.totp_enrolled", subject: &label, detail };
                tx.audit(e, now).await?;
            }
            let detail = json!({"ip": client_ip, "role": record.role.code()});
            tx.audit(NewAuditEntry { actor: &label, action: "staff.login", subject: &label, detail }, now).await?;
            Ok(Some((expires, None)))
        })?;
        match outcome {
            Some((expires, Some(station_id))) => {
                Ok(Opened::Station(crate::station::StationCredential { token, station_id, expires_at: expires }))
            }
            Some((expires, None)) => Ok(Opened::Console(StaffSession {
                csrf: self.staff_csrf_token(&token),
                token,
                expires_in_seconds: (expires - now).num_seconds(),
            })),
            None => {
                let reused = AppError::invalid("staff_totp_reused", "该动态验证码已使用,请等待下一个验证码");
                Err(self.staff_login_failed(Some(&record), Some(reused), "totp", client_ip).await)
            }
        }
    }

    /// Records a failed attempt (counted against a known account, locking it at the limit)
    /// and returns the error to show: `wrong` (default: the generic refusal) or the lock.
    async fn staff_login_failed(
        &self,
        record: Option<&StaffRecord>,
        wrong: Option<AppError>,
        stage: &'static str,
        client_ip: &str,
    ) -> AppError {
        let wrong = wrong.unwrap_or_else(bad_credentials);
        match self.record_login_failure(record, stage, client_ip).await {
            Ok((Some(Failure::Locked(until)), now)) => {
                let id = record.map(|r| r.id.as_str()).unwrap_or("?");
                tracing::warn!(staff_id = %id, "staff account locked after repeated failures");
                locked(until, now)
            }
            Ok(_) => wrong,
            Err(e) => e,
        }
    }

    async fn record_login_failure(
        &self,
        record: Option<&StaffRecord>,
        stage: &'static str,
        client_ip: &str,
    ) -> Result<(Option<Failure>, DateTime<Utc>), AppError> {
        in_tx!(self, |tx| {
            let now = self.now();
            let failure = match record {
                Some(r) => Some(self.count_failure(&mut tx, r, now).await?),
                None => None,
            };
            // An unknown name is not recorded: it may be a password typed in the wrong field.
            let subject = record.map(|r| subject(&r.name)).unwrap_or_else(|| "staff:?".into());
            let detail = json!({"stage": stage, "ip": client_ip, "known": record.is_some()});
            let e = NewAuditEntry { actor: "system", action: "staff.login_failed", subject: &subject, detail };
            tx.audit(e, now).await?;
            if let Some(Failure::Locked(until)) = failure {
                let detail = json!({"minutes": policy::LOCKOUT_MINUTES, "until_ms": until.timestamp_millis()});
                tx.audit(NewAuditEntry { actor: "system", action: "staff.locked", subject: &subject, detail }, now)
                    .await?;
            }
            Ok((failure, now))
        })
    }

    async fn count_failure(&self, tx: &mut Tx, r: &StaffRecord, now: DateTime<Utc>) -> Result<Failure, AppError> {
        let count = tx.add_staff_login_failure(&r.id, now).await?;
        if count < policy::MAX_FAILED_LOGINS {
            return Ok(Failure::Counted);
        }
        let until = now + Duration::minutes(policy::LOCKOUT_MINUTES);
        tx.lock_staff(&r.id, until, now).await?;
        tx.delete_staff_sessions_of(&r.id).await?;
        Ok(Failure::Locked(until))
    }

    /// The CSRF token of a session (full or pending): derived from the session token with a
    /// key of the vault, so it is never stored and cannot be computed without both.
    pub fn staff_csrf_token(&self, session_token: &str) -> String {
        self.store().vault().lookup_hash("staff-csrf", session_token)
    }

    /// The member of staff a full session belongs to, and the session's CSRF token. A session
    /// ends eight hours after login, or after thirty minutes without activity.
    pub async fn staff_authenticate(&self, token: &str) -> Result<(StaffMember, String), AppError> {
        let hash = token_hash(token);
        let now = self.now();
        let (record, last_seen) = {
            let mut tx = self.store().read().await?;
            let s = tx.staff_session(&hash).await?.ok_or(AppError::Unauthorized)?;
            if s.stage != SessionStage::Full
                || s.expires_at <= now
                || s.last_seen + Duration::minutes(policy::IDLE_MINUTES) <= now
            {
                return Err(AppError::Unauthorized);
            }
            let record = tx.staff_by_id(&s.staff_id).await?.ok_or(AppError::Unauthorized)?;
            (record, s.last_seen)
        };
        if record.disabled {
            return Err(AppError::Unauthorized);
        }
        if now - last_seen >= Duration::seconds(policy::LAST_SEEN_RESOLUTION_SECONDS) {
            in_tx!(self, |tx| {
                tx.touch_staff_session(&hash, now).await?;
                Ok(())
            })?;
        }
        let member = StaffMember { id: record.id, name: record.name, role: record.role };
        Ok((member, self.staff_csrf_token(token)))
    }

    /// Ends a session (full or pending). Unknown tokens are ignored.
    pub async fn staff_logout(&self, token: &str) -> Result<(), AppError> {
        let hash = token_hash(token);
        in_tx!(self, |tx| {
            let now = self.now();
            let Some(session) = tx.staff_session(&hash).await? else { return Ok(()) };
            tx.delete_staff_session(&hash).await?;
            if session.stage == SessionStage::Full
                && let Some(r) = tx.staff_by_id(&session.staff_id).await?
            {
                let label = subject(&r.name);
                let e = NewAuditEntry { actor: &label, action: "staff.logout", subject: &label, detail: json!({}) };
                tx.audit(e, now).await?;
            }
            Ok(())
        })
    }

    /// Every staff account, by name (administrators only).
    pub async fn list_staff(&self, by: &StaffMember) -> Result<Vec<StaffSummary>, AppError> {
        by.require(Permission::ManageStaff)?;
        self.operator_list_staff().await
    }

    /// Every staff account, by name, on the operator's authority (`yiqian admin list`).
    pub async fn operator_list_staff(&self) -> Result<Vec<StaffSummary>, AppError> {
        let now = self.now();
        let mut tx = self.store().read().await?;
        Ok(tx.all_staff().await?.iter().map(|r| StaffSummary::of(r, now)).collect())
    }

    /// Disables (ending every session) or re-enables an account (administrators only; not
    /// one's own).
    pub async fn set_staff_disabled(&self, by: &StaffMember, name: &str, disabled: bool) -> Result<(), AppError> {
        by.require(Permission::ManageStaff)?;
        let name = StaffName::parse(name).map_err(|_| AppError::NotFound("账号"))?;
        if disabled && name == by.name {
            return Err(AppError::invalid("staff_self", "不能停用自己的账号"));
        }
        let label = by.actor().label();
        in_tx!(self, |tx| {
            let now = self.now();
            let r = tx.staff_by_name(&name).await?.ok_or(AppError::NotFound("账号"))?;
            if r.disabled == disabled {
                return Ok(());
            }
            tx.set_staff_disabled(&r.id, disabled, now).await?;
            if disabled {
                tx.delete_staff_sessions_of(&r.id).await?;
            }
            let action = if disabled { "staff.disabled" } else { "staff.enabled" };
            let subject = subject(&name);
            tx.audit(NewAuditEntry { actor: &label, action, subject: &subject, detail: json!({}) }, now).await?;
            Ok(())
        })
    }

    /// Removes an account's authenticator (lost phone): its sessions end and the next login
    /// enrols a new one (administrators only).
    pub async fn reset_staff_totp(&self, by: &StaffMember, name: &str) -> Result<(), AppError> {
        by.require(Permission::ManageStaff)?;
        let name = StaffName::parse(name).map_err(|_| AppError::NotFound("账号"))?;
        let label = by.actor().label();
        in_tx!(self, |tx| {
            let now = self.now();
            let r = tx.staff_by_name(&name).await?.ok_or(AppError::NotFound("账号"))?;
            tx.set_staff_totp_secret(&r.id, None, now).await?;
            tx.delete_staff_sessions_of(&r.id).await?;
            let subject = subject(&name);
            let e = NewAuditEntry { actor: &label, action: "staff.totp_reset", subject: &subject, detail: json!({}) };
            tx.audit(e, now).await?;
            Ok(())
        })
    }
}

/// The audit trail as the console shows it.
impl App {
    /// Up to `limit` audit entries before `before_seq` (the newest when `None`), newest first
    /// (auditors and administrators).
    pub async fn audit_log(
        &self,
        by: &StaffMember,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, AppError> {
        by.require(Permission::ViewAudit)?;
        Ok(self.store().audit_entries_newest_first(before_seq, limit.clamp(1, 500)).await?)
    }

    /// Walks the whole audit chain and says whether it holds (auditors and administrators).
    pub async fn verify_audit_chain(&self, by: &StaffMember) -> Result<AuditVerdict, AppError> {
        by.require(Permission::ViewAudit)?;
        Ok(self.store().verify_audit().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn codes_follow_the_rfc_6238_test_vectors() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890", last six of eight digits.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(totp_code(secret, at(59)).unwrap(), "287082");
        assert_eq!(totp_code(secret, at(1_111_111_109)).unwrap(), "081804");
        assert_eq!(totp_code(secret, at(1_234_567_890)).unwrap(), "005924");
        assert_eq!(totp_code(secret, at(2_000_000_000)).unwrap(), "279037");
        assert_eq!(totp_code("not base32!", at(59)), None);
        assert_eq!(totp_code("GEZDGNBV", at(59)), None, "shorter than 128 bits");
    }

    #[test]
    fn the_otpauth_uri_names_the_issuer_and_the_account() {
        let name = StaffName::parse("li.wei").unwrap();
        let totp = totp_of(b"12345678901234567890".to_vec(), &name).unwrap();
        assert_eq!(
            totp.to_url().unwrap(),
            "otpauth://totp/yiqian:li.wei?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=yiqian"
        );
        assert_eq!((totp.digits(), totp.step(), totp.skew()), (6, 30, 1));
    }

    #[test]
    fn members_are_allowed_what_their_role_allows() {
        let m = StaffMember { id: "ST1".into(), name: StaffName::parse("li.wei").unwrap(), role: Role::Reviewer };
        assert!(m.require(Permission::ReviewApplications).is_ok());
        assert!(matches!(m.require(Permission::ManageStaff), Err(AppError::Forbidden)));
        assert!(m.require_any(&[Permission::IssueTokens, Permission::ReviewActivations]).is_ok());
        assert!(matches!(m.require_any(&[Permission::IssueTokens]), Err(AppError::Forbidden)));
        assert!(matches!(m.require_any(&[]), Err(AppError::Forbidden)));
        assert_eq!(m.actor().label(), "staff:li.wei");
    }

    #[test]
    fn the_lock_message_counts_whole_minutes_up() {
        let now = at(1_000_000);
        assert_eq!(locked(now + Duration::minutes(15), now).to_string(), "账号已锁定,请15分钟后再试");
        assert_eq!(locked(now + Duration::seconds(61), now).to_string(), "账号已锁定,请2分钟后再试");
        assert_eq!(locked(now + Duration::seconds(1), now).to_string(), "账号已锁定,请1分钟后再试");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let stage = StaffLoginStage::NeedsEnrolment {
            pending_token: "TOKEN".into(),
            secret_base32: "SECRET".into(),
            otpauth_uri: "otpauth://totp/yiqian:x?secret=SECRET".into(),
        };
        let session = StaffSession { token: "TOKEN".into(), csrf: "CSRF".into(), expires_in_seconds: 1 };
        let enrol = TotpEnrolment { secret_base32: "SECRET".into(), otpauth_uri: "SECRET".into() };
        for text in [format!("{stage:?}"), format!("{session:?}"), format!("{enrol:?}")] {
            assert!(!text.contains("TOKEN") && !text.contains("SECRET") && !text.contains("CSRF"), "{text}");
        }
        assert_eq!(normalise_code(" 123 456\n"), "123456");
    }
}
