//! Personalisation stations and their leases.
//!
//! A station's bearer credential is kept only as the SHA-256 hash the application computes. A
//! lease is one key being worked on for one order ([`LeaseService`]): `claimed` (PINs sealed to the escrow key
//! by the station, the key not yet certified), `certified` (a certificate was issued for it),
//! then `completed` or `abandoned`. Two partial unique indexes keep at most one live lease per
//! order and per key; a second claim of either fails with [`StoreError::Duplicate`]. The
//! rules (expiry, who may do what, what an abandonment revokes) live in the application.

use crate::{StoreError, Tx, from_millis, millis};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;
use yiqian_domain::OrderId;

/// A station as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationRecord {
    /// Station id (`WS…`).
    pub id: String,
    /// The name given at enrolment (e.g. `制证室-1`).
    pub name: String,
    /// The member of staff who enrolled it, and whose role it acts with.
    pub staff_id: String,
    /// When it was enrolled.
    pub created_at: DateTime<Utc>,
    /// When its credential ends.
    pub expires_at: DateTime<Utc>,
    /// Its last request.
    pub last_seen: DateTime<Utc>,
    /// When and by whom it was revoked, if it was.
    pub revoked: Option<(DateTime<Utc>, String)>,
}

/// Where a lease is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// The order is taken for the key; no certificate yet.
    Claimed,
    /// A certificate (on hold) was issued for the key.
    Certified,
    /// The key is recorded against the order.
    Completed,
    /// Given up (by the station, its restart, or expiry); its certificate, if any, revoked.
    Abandoned,
}

impl LeaseState {
    /// Storage code.
    pub fn code(self) -> &'static str {
        match self {
            LeaseState::Claimed => "claimed",
            LeaseState::Certified => "certified",
            LeaseState::Completed => "completed",
            LeaseState::Abandoned => "abandoned",
        }
    }

    fn from_code(code: &str) -> Result<LeaseState, StoreError> {
        Ok(match code {
            "claimed" => LeaseState::Claimed,
            "certified" => LeaseState::Certified,
            "completed" => LeaseState::Completed,
            "abandoned" => LeaseState::Abandoned,
            other => return Err(StoreError::Corrupt(format!("lease state {other:?}"))),
        })
    }

    /// Whether the lease still holds its order and key.
    pub fn is_live(self) -> bool {
        matches!(self, LeaseState::Claimed | LeaseState::Certified)
    }
}

/// What a lease does to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseService {
    /// Personalise a blank key for an order of a batch.
    Issue,
    /// 解锁: a new user PIN set with the SO PIN (the key in hand at the counter).
    UnlockPin,
    /// 续期: a new key pair and certificate on the same key, with a new PIN.
    Renew,
    /// 补办: a new key for the order; the old one is retired.
    Reissue,
}

impl LeaseService {
    /// Storage code.
    pub fn code(self) -> &'static str {
        match self {
            LeaseService::Issue => "issue",
            LeaseService::UnlockPin => "unlock_pin",
            LeaseService::Renew => "renew",
            LeaseService::Reissue => "reissue",
        }
    }

    /// The service of a storage code.
    pub fn from_code(code: &str) -> Option<LeaseService> {
        Some(match code {
            "issue" => LeaseService::Issue,
            "unlock_pin" => LeaseService::UnlockPin,
            "renew" => LeaseService::Renew,
            "reissue" => LeaseService::Reissue,
            _ => return None,
        })
    }
}

/// One key being worked on for one order at a station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// Lease id (`LS…`).
    pub id: String,
    /// The station holding it.
    pub station_id: String,
    /// What it does.
    pub service: LeaseService,
    /// The batch the order was taken from (personalisation only).
    pub batch_id: Option<String>,
    /// The order.
    pub order: OrderId,
    /// The key's hardware serial.
    pub token_serial: String,
    /// The SO PIN the station set, sealed by the station to the escrow public key.
    pub so_pin_sealed: String,
    /// The user PIN the station set, sealed likewise.
    pub user_pin_sealed: String,
    /// Where it is.
    pub state: LeaseState,
    /// The certificate issued for the key, once certified.
    pub certificate_serial: Option<String>,
    /// Why it ended (`completed`, `station restarted`, `expired`, the station's reason).
    pub outcome: Option<String>,
    /// When it lapses unless the station carries on.
    pub expires_at: DateTime<Utc>,
    /// When it was claimed.
    pub created_at: DateTime<Utc>,
    /// Its last change.
    pub updated_at: DateTime<Utc>,
}

macro_rules! station_columns {
    () => {
        "id, name, staff_id, created_at, expires_at, last_seen, revoked_at, revoked_by"
    };
}

macro_rules! lease_columns {
    () => {
        "id, station_id, service, batch_id, order_id, token_serial, so_pin_sealed, user_pin_sealed, state, \
         certificate_serial, outcome, expires_at, created_at, updated_at"
    };
}

fn station_from_row(row: &AnyRow) -> Result<StationRecord, StoreError> {
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    let revoked_by: Option<String> = row.try_get("revoked_by")?;
    Ok(StationRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        staff_id: row.try_get("staff_id")?,
        created_at: from_millis(row.try_get("created_at")?),
        expires_at: from_millis(row.try_get("expires_at")?),
        last_seen: from_millis(row.try_get("last_seen")?),
        revoked: revoked_at.map(|t| (from_millis(t), revoked_by.unwrap_or_default())),
    })
}

fn lease_from_row(row: &AnyRow) -> Result<LeaseRecord, StoreError> {
    let order: String = row.try_get("order_id")?;
    Ok(LeaseRecord {
        id: row.try_get("id")?,
        station_id: row.try_get("station_id")?,
        service: {
            let code: String = row.try_get("service")?;
            LeaseService::from_code(&code).ok_or_else(|| StoreError::Corrupt(format!("lease service {code:?}")))?
        },
        batch_id: row.try_get("batch_id")?,
        order: OrderId::parse(&order).ok_or_else(|| StoreError::Corrupt(format!("lease order {order:?}")))?,
        token_serial: row.try_get("token_serial")?,
        so_pin_sealed: row.try_get("so_pin_sealed")?,
        user_pin_sealed: row.try_get("user_pin_sealed")?,
        state: LeaseState::from_code(&row.try_get::<String, _>("state")?)?,
        certificate_serial: row.try_get("certificate_serial")?,
        outcome: row.try_get("outcome")?,
        expires_at: from_millis(row.try_get("expires_at")?),
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
    })
}

/// A new station, as enrolment records it.
#[derive(Debug)]
pub struct NewStation<'a> {
    /// Station id.
    pub id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Who enrolled it.
    pub staff_id: &'a str,
    /// The hash of its credential.
    pub credential_hash: &'a str,
    /// When the credential ends.
    pub expires_at: DateTime<Utc>,
}

impl Tx {
    /// Records an enrolled station.
    pub async fn insert_station(&mut self, s: &NewStation<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO stations (id, name, staff_id, credential_hash, created_at, expires_at, last_seen) \
             VALUES ($1, $2, $3, $4, $5, $6, $5)",
        )
        .bind(s.id)
        .bind(s.name)
        .bind(s.staff_id)
        .bind(s.credential_hash)
        .bind(millis(now))
        .bind(millis(s.expires_at))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The station holding the credential of this hash.
    pub async fn station_by_credential(&mut self, hash: &str) -> Result<Option<StationRecord>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", station_columns!(), " FROM stations WHERE credential_hash = $1"))
            .bind(hash)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(station_from_row).transpose()
    }

    /// A station by id.
    pub async fn station(&mut self, id: &str) -> Result<Option<StationRecord>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", station_columns!(), " FROM stations WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(station_from_row).transpose()
    }

    /// Every station, the newest first.
    pub async fn all_stations(&mut self) -> Result<Vec<StationRecord>, StoreError> {
        let rows = sqlx::query(concat!("SELECT ", station_columns!(), " FROM stations ORDER BY created_at DESC"))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(station_from_row).collect()
    }

    /// Notes a station's request.
    pub async fn touch_station(&mut self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE stations SET last_seen = $1 WHERE id = $2")
            .bind(millis(now))
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Revokes a station's credential; false when it was revoked already.
    pub async fn revoke_station(&mut self, id: &str, by: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE stations SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL")
                .bind(millis(now))
                .bind(by)
                .bind(id)
                .execute(self.conn())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a claim; [`StoreError::Duplicate`] when the order or the key has a live lease.
    pub async fn insert_lease(&mut self, l: &LeaseRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO station_leases (id, station_id, service, batch_id, order_id, token_serial, so_pin_sealed, \
             user_pin_sealed, state, certificate_serial, outcome, expires_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&l.id)
        .bind(&l.station_id)
        .bind(l.service.code())
        .bind(&l.batch_id)
        .bind(l.order.as_str())
        .bind(&l.token_serial)
        .bind(&l.so_pin_sealed)
        .bind(&l.user_pin_sealed)
        .bind(l.state.code())
        .bind(&l.certificate_serial)
        .bind(&l.outcome)
        .bind(millis(l.expires_at))
        .bind(millis(l.created_at))
        .bind(millis(l.updated_at))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// A lease by id.
    pub async fn lease(&mut self, id: &str) -> Result<Option<LeaseRecord>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", lease_columns!(), " FROM station_leases WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(lease_from_row).transpose()
    }

    /// The leases that still hold an order and a key: all of them, or those of one station.
    pub async fn live_leases(&mut self, station: Option<&str>) -> Result<Vec<LeaseRecord>, StoreError> {
        let rows = match station {
            Some(station) => {
                sqlx::query(concat!(
                    "SELECT ",
                    lease_columns!(),
                    " FROM station_leases WHERE state IN ('claimed', 'certified') AND station_id = $1 \
                     ORDER BY created_at"
                ))
                .bind(station)
                .fetch_all(self.conn())
                .await?
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    lease_columns!(),
                    " FROM station_leases WHERE state IN ('claimed', 'certified') ORDER BY created_at"
                ))
                .fetch_all(self.conn())
                .await?
            }
        };
        rows.iter().map(lease_from_row).collect()
    }

    /// The leases of a batch, oldest first.
    pub async fn leases_of_batch(&mut self, batch: &str) -> Result<Vec<LeaseRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            lease_columns!(),
            " FROM station_leases WHERE batch_id = $1 ORDER BY created_at"
        ))
        .bind(batch)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(lease_from_row).collect()
    }

    /// The newest lease of a key.
    pub async fn latest_lease_of_key(&mut self, serial: &str) -> Result<Option<LeaseRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            lease_columns!(),
            " FROM station_leases WHERE token_serial = $1 ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(serial)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(lease_from_row).transpose()
    }

    /// Moves a lease from `from` to `to` (with the certificate and outcome given, and a new
    /// expiry); false when it was no longer in `from` (changed meanwhile).
    #[allow(clippy::too_many_arguments, reason = "one guarded update of one row")]
    pub async fn advance_lease(
        &mut self,
        id: &str,
        from: LeaseState,
        to: LeaseState,
        certificate_serial: Option<&str>,
        outcome: Option<&str>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE station_leases SET state = $1, certificate_serial = COALESCE($2, certificate_serial), \
             outcome = COALESCE($3, outcome), expires_at = $4, updated_at = $5 WHERE id = $6 AND state = $7",
        )
        .bind(to.code())
        .bind(certificate_serial)
        .bind(outcome)
        .bind(millis(expires_at))
        .bind(millis(now))
        .bind(id)
        .bind(from.code())
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
