//! Staff accounts of the console and their sessions.
//!
//! Passwords arrive here already hashed (argon2id PHC strings, made by the application). The
//! TOTP secret is sealed by the vault, bound to the account (`staff:ID:totp`), and only
//! opened by [`Tx::staff_totp_secret`]. Sessions are kept as hashes of their tokens. The
//! rules (lockout, session lengths, who may do what) live in the application and the domain;
//! this module stores and reads, with the few atomic updates those rules need (a failure
//! counter, a TOTP step that can be used only once).

use crate::{StoreError, Tx, from_millis, millis};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;
use yiqian_domain::staff::{Role, StaffName};

/// A staff account as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StaffRecord {
    /// Account id (`ST…`).
    pub id: String,
    /// Login name.
    pub name: StaffName,
    /// Role.
    pub role: Role,
    /// The password's argon2id PHC string.
    pub password_hash: String,
    /// Whether a TOTP secret is stored (enrolled or awaiting confirmation).
    pub has_totp_secret: bool,
    /// Whether the TOTP secret has been confirmed with a first code.
    pub totp_enrolled: bool,
    /// Wrong passwords or codes since the last successful login or lockout.
    pub failed_logins: i64,
    /// Until when the account is locked, if it is.
    pub locked_until: Option<DateTime<Utc>>,
    /// The last TOTP time step accepted (a code of it or an earlier step is refused).
    pub last_totp_step: Option<i64>,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Debug without the password hash.
impl std::fmt::Debug for StaffRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("totp_enrolled", &self.totp_enrolled)
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// A new staff account.
pub struct NewStaff<'a> {
    /// Account id.
    pub id: &'a str,
    /// Login name.
    pub name: &'a StaffName,
    /// Role.
    pub role: Role,
    /// The password's argon2id PHC string.
    pub password_hash: &'a str,
}

/// How far a staff session has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    /// The password was right; the one-time code (or the TOTP enrolment) is awaited.
    PasswordOk,
    /// Fully logged in.
    Full,
}

impl SessionStage {
    /// Stable code used in storage.
    pub fn code(self) -> &'static str {
        match self {
            SessionStage::PasswordOk => "password_ok",
            SessionStage::Full => "full",
        }
    }

    /// Parses a [`SessionStage::code`].
    pub fn from_code(code: &str) -> Option<SessionStage> {
        match code {
            "password_ok" => Some(SessionStage::PasswordOk),
            "full" => Some(SessionStage::Full),
            _ => None,
        }
    }
}

/// A staff session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffSessionRecord {
    /// Whose session.
    pub staff_id: String,
    /// How far it has come.
    pub stage: SessionStage,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When it ends at the latest.
    pub expires_at: DateTime<Utc>,
    /// Its last recorded activity.
    pub last_seen: DateTime<Utc>,
}

const STAFF_COLUMNS: &str = "id, name, role, password_hash, \
     CAST(CASE WHEN totp_secret_sealed IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_secret, totp_enrolled, failed_logins, locked_until, last_totp_step, disabled, created_at, updated_at";

fn staff_of(r: &AnyRow) -> Result<StaffRecord, StoreError> {
    let name: String = r.try_get("name")?;
    let role: String = r.try_get("role")?;
    Ok(StaffRecord {
        id: r.try_get("id")?,
        name: StaffName::parse(&name).map_err(|_| StoreError::Corrupt("staff name".into()))?,
        role: Role::from_code(&role).ok_or_else(|| StoreError::Corrupt(format!("staff role {role:?}")))?,
        password_hash: r.try_get("password_hash")?,
        has_totp_secret: r.try_get::<i64, _>("has_secret")? != 0,
        totp_enrolled: r.try_get::<i64, _>("totp_enrolled")? != 0,
        failed_logins: r.try_get("failed_logins")?,
        locked_until: r.try_get::<Option<i64>, _>("locked_until")?.map(from_millis),
        last_totp_step: r.try_get("last_totp_step")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        created_at: from_millis(r.try_get("created_at")?),
        updated_at: from_millis(r.try_get("updated_at")?),
    })
}

fn totp_context(id: &str) -> String {
    format!("staff:{id}:totp")
}

impl Tx {
    /// Adds an account. A name that exists already is [`StoreError::Duplicate`] (on PostgreSQL
    /// the unit of work is then aborted: check with [`Tx::staff_by_name`] first).
    pub async fn insert_staff(&mut self, s: &NewStaff<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO staff (id, name, role, password_hash, totp_enrolled, failed_logins, disabled, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, 0, 0, 0, $5, $5)",
        )
        .bind(s.id)
        .bind(s.name.as_str())
        .bind(s.role.code())
        .bind(s.password_hash)
        .bind(millis(now))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The account with this login name.
    pub async fn staff_by_name(&mut self, name: &StaffName) -> Result<Option<StaffRecord>, StoreError> {
        let sql = format!("SELECT {STAFF_COLUMNS} FROM staff WHERE name = $1");
        let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name.as_str()).fetch_optional(self.conn()).await?;
        r.as_ref().map(staff_of).transpose()
    }

    /// The account with this id.
    pub async fn staff_by_id(&mut self, id: &str) -> Result<Option<StaffRecord>, StoreError> {
        let sql = format!("SELECT {STAFF_COLUMNS} FROM staff WHERE id = $1");
        let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(self.conn()).await?;
        r.as_ref().map(staff_of).transpose()
    }

    /// Every account, by name.
    pub async fn all_staff(&mut self) -> Result<Vec<StaffRecord>, StoreError> {
        let sql = format!("SELECT {STAFF_COLUMNS} FROM staff ORDER BY name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.conn()).await?;
        rows.iter().map(staff_of).collect()
    }

    /// Stores a new TOTP secret (sealed), not yet enrolled; `None` removes the secret. Either
    /// way the account needs a (new) enrolment and no step has been used.
    pub async fn set_staff_totp_secret(
        &mut self,
        id: &str,
        secret: Option<&[u8]>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sealed = secret.map(|s| self.vault().seal_text(&hex::encode(s), &totp_context(id)));
        let done = sqlx::query(
            "UPDATE staff SET totp_secret_sealed = $1, totp_enrolled = 0, last_totp_step = NULL, updated_at = $2 \
             WHERE id = $3",
        )
        .bind(sealed)
        .bind(millis(now))
        .bind(id)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("staff"));
        }
        Ok(())
    }

    /// The account's TOTP secret, if one is stored.
    pub async fn staff_totp_secret(&mut self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let r = sqlx::query("SELECT totp_secret_sealed FROM staff WHERE id = $1")
            .bind(id)
            .fetch_optional(self.conn())
            .await?
            .ok_or(StoreError::NotFound("staff"))?;
        let sealed: Option<String> = r.try_get("totp_secret_sealed")?;
        match sealed {
            None => Ok(None),
            Some(sealed) => {
                let text = self.vault().open_text(&sealed, &totp_context(id))?;
                Ok(Some(hex::decode(text).map_err(|_| StoreError::Corrupt("staff TOTP secret".into()))?))
            }
        }
    }

    /// Marks the stored TOTP secret as confirmed.
    pub async fn mark_staff_totp_enrolled(&mut self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE staff SET totp_enrolled = 1, updated_at = $1 WHERE id = $2")
            .bind(millis(now))
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Records that a TOTP code of time step `step` was used. Returns false, changing nothing,
    /// when this step or a later one was used already (a replayed code).
    pub async fn use_staff_totp_step(&mut self, id: &str, step: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE staff SET last_totp_step = $1, updated_at = $2 \
             WHERE id = $3 AND (last_totp_step IS NULL OR last_totp_step < $1)",
        )
        .bind(step)
        .bind(millis(now))
        .bind(id)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts one more wrong password or code; returns the count.
    pub async fn add_staff_login_failure(&mut self, id: &str, now: DateTime<Utc>) -> Result<i64, StoreError> {
        let r = sqlx::query(
            "UPDATE staff SET failed_logins = failed_logins + 1, updated_at = $1 WHERE id = $2 RETURNING failed_logins",
        )
        .bind(millis(now))
        .bind(id)
        .fetch_optional(self.conn())
        .await?
        .ok_or(StoreError::NotFound("staff"))?;
        Ok(r.try_get("failed_logins")?)
    }

    /// Locks the account until `until` and starts the failure count afresh.
    pub async fn lock_staff(&mut self, id: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE staff SET failed_logins = 0, locked_until = $1, updated_at = $2 WHERE id = $3")
            .bind(millis(until))
            .bind(millis(now))
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Clears the failure count and any lock (after a complete login).
    pub async fn clear_staff_login_failures(&mut self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE staff SET failed_logins = 0, locked_until = NULL, updated_at = $1 WHERE id = $2")
            .bind(millis(now))
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Disables or re-enables an account.
    pub async fn set_staff_disabled(&mut self, id: &str, disabled: bool, now: DateTime<Utc>) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE staff SET disabled = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(disabled))
            .bind(millis(now))
            .bind(id)
            .execute(self.conn())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("staff"));
        }
        Ok(())
    }

    /// Records a staff session; only the token's hash is kept.
    pub async fn insert_staff_session(
        &mut self,
        token_hash: &str,
        staff_id: &str,
        stage: SessionStage,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO staff_sessions (token_hash, staff_id, stage, created_at, expires_at, last_seen) \
             VALUES ($1, $2, $3, $4, $5, $4)",
        )
        .bind(token_hash)
        .bind(staff_id)
        .bind(stage.code())
        .bind(millis(now))
        .bind(millis(expires_at))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The session with this token hash, whatever its age (the caller judges it).
    pub async fn staff_session(&mut self, token_hash: &str) -> Result<Option<StaffSessionRecord>, StoreError> {
        let r = sqlx::query(
            "SELECT staff_id, stage, created_at, expires_at, last_seen FROM staff_sessions WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.conn())
        .await?;
        let Some(r) = r else { return Ok(None) };
        let stage: String = r.try_get("stage")?;
        Ok(Some(StaffSessionRecord {
            staff_id: r.try_get("staff_id")?,
            stage: SessionStage::from_code(&stage)
                .ok_or_else(|| StoreError::Corrupt(format!("staff session stage {stage:?}")))?,
            created_at: from_millis(r.try_get("created_at")?),
            expires_at: from_millis(r.try_get("expires_at")?),
            last_seen: from_millis(r.try_get("last_seen")?),
        }))
    }

    /// Records activity on a session.
    pub async fn touch_staff_session(&mut self, token_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE staff_sessions SET last_seen = $1 WHERE token_hash = $2 AND last_seen < $1")
            .bind(millis(now))
            .bind(token_hash)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Ends a session; returns whether there was one.
    pub async fn delete_staff_session(&mut self, token_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM staff_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends every session of an account; returns how many there were.
    pub async fn delete_staff_sessions_of(&mut self, staff_id: &str) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM staff_sessions WHERE staff_id = $1").bind(staff_id).execute(self.conn()).await?;
        Ok(done.rows_affected())
    }

    /// Forgets sessions that ended before `now`; returns how many.
    pub async fn delete_expired_staff_sessions(&mut self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM staff_sessions WHERE expires_at <= $1")
            .bind(millis(now))
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected())
    }
}
