//! Check values of the keys every node of a deployment must share (the master key for
//! personal data, the PIN-escrow key, the sandbox gateway key). The database remembers the
//! check value of each key the first time a node brings it; a node that brings another key
//! — or would create a fresh one against a database that already holds data — is told so
//! before it writes anything under that key.

use crate::{Store, StoreError, millis};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::Row;

/// The check value of `key` known as `name`: the first 8 bytes (16 hex digits) of
/// HMAC-SHA256 over a fixed label. It says whether two keys are equal, not what they are.
pub fn check_value(name: &str, key: &[u8; 32]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"yiqian key check value v1:");
    mac.update(name.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..8])
}

/// Where a node's copy of a key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// From configuration or a key file that already existed.
    Given,
    /// Made by this node just now (not yet written anywhere).
    Fresh,
}

/// What the database says about a node's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    /// The database knows this key: the node may use it.
    Matches,
    /// The database knew no key by this name and now remembers this one.
    Recorded,
    /// The database remembers another key by this name.
    Mismatch {
        /// The check value the database remembers.
        expected: String,
        /// The check value of the node's key.
        given: String,
    },
    /// The node made a fresh key but the database already holds data written by a node with
    /// the deployment's keys.
    FreshKeyOnData,
}

impl KeyCheck {
    /// Whether the node may go on with its key.
    pub fn is_accepted(&self) -> bool {
        matches!(self, KeyCheck::Matches | KeyCheck::Recorded)
    }
}

impl Store {
    /// Compares the node's key `name` with the deployment's and, when the database knows no
    /// key by that name, remembers it. A key made fresh by this node is refused when the
    /// database already holds data (orders, a CA, staff): the data's key exists elsewhere.
    /// Two nodes starting at once on an empty database agree on whichever key is recorded
    /// first; the other is told of the mismatch.
    pub async fn confirm_key(
        &self,
        name: &str,
        key: &[u8; 32],
        origin: KeyOrigin,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<KeyCheck, StoreError> {
        let given = check_value(name, key);
        if let Some(expected) = self.recorded_check_value(name).await? {
            return Ok(if expected == given { KeyCheck::Matches } else { KeyCheck::Mismatch { expected, given } });
        }
        if origin == KeyOrigin::Fresh && self.holds_data().await? {
            return Ok(KeyCheck::FreshKeyOnData);
        }
        sqlx::query(
            "INSERT INTO key_checks (name, check_value, recorded_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(&given)
        .bind(millis(now))
        .execute(self.pool())
        .await?;
        let expected = self.recorded_check_value(name).await?.ok_or(StoreError::NotFound("key check value"))?;
        Ok(if expected == given { KeyCheck::Recorded } else { KeyCheck::Mismatch { expected, given } })
    }

    /// The check value of every key the deployment recorded, by name.
    pub async fn recorded_check_values(&self) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        let rows = sqlx::query("SELECT name, check_value FROM key_checks").fetch_all(self.pool()).await?;
        rows.iter().map(|r| Ok((r.try_get("name")?, r.try_get("check_value")?))).collect()
    }

    async fn recorded_check_value(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT check_value FROM key_checks WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("check_value")?),
            None => None,
        })
    }

    /// Whether anything was written under the deployment's keys: an applicant, an order, a
    /// CA key or a member of staff. (Keys recorded by another node are caught as mismatches.)
    async fn holds_data(&self) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM applicants LIMIT 1) a) \
             + (SELECT COUNT(*) FROM (SELECT 1 FROM orders LIMIT 1) o) \
             + (SELECT COUNT(*) FROM (SELECT 1 FROM ca_keys LIMIT 1) c) \
             + (SELECT COUNT(*) FROM (SELECT 1 FROM staff LIMIT 1) s) AS n",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values_tell_keys_and_names_apart_without_showing_the_key() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        assert_eq!(check_value("master", &a), check_value("master", &a));
        assert_ne!(check_value("master", &a), check_value("master", &b));
        assert_ne!(check_value("master", &a), check_value("pin_escrow", &a));
        assert_eq!(check_value("master", &a).len(), 16);
        assert!(!check_value("master", &a).contains(&hex::encode(&a[..4])));
    }
}
