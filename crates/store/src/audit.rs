//! The tamper-evident audit trail: every state change and staff action, appended in the same
//! transaction as the change, each entry hashing its predecessor. `yiqian audit verify` walks
//! the chain and names the first broken link.
//!
//! Entries name records by id, never by personal data.

use crate::{Store, StoreError, Tx, millis};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// The hash that precedes the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When, in Unix milliseconds.
    pub at: i64,
    /// Who: `applicant:ID`, `staff:NAME`, `system`, `gateway:NAME`.
    pub actor: String,
    /// What, e.g. `order.paid`.
    pub action: String,
    /// On what, e.g. `order:YQ…`.
    pub subject: String,
    /// Details as JSON (ids and codes only).
    pub detail: String,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// The hash of an entry: SHA-256 over the previous hash and every field, each length-prefixed
/// so that no two different entries hash alike.
pub fn entry_hash(
    prev_hash: &str,
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    for field in [
        prev_hash.as_bytes(),
        &seq.to_be_bytes(),
        &at.to_be_bytes(),
        actor.as_bytes(),
        action.as_bytes(),
        subject.as_bytes(),
        detail.as_bytes(),
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field);
    }
    hex::encode(h.finalize())
}

/// A new audit entry, before it takes its place in the chain.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    /// Who.
    pub actor: &'a str,
    /// What.
    pub action: &'a str,
    /// On what.
    pub subject: &'a str,
    /// Details (no personal data).
    pub detail: serde_json::Value,
}

impl Tx {
    /// Appends an entry to the chain. The chain head row is locked until commit, so entries
    /// are appended one transaction at a time; call this as the last write of a unit of work.
    pub async fn audit(
        &mut self,
        entry: NewAuditEntry<'_>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
            .fetch_one(self.conn())
            .await?;
        let seq: i64 = row.try_get("seq")?;
        let prev: String = row.try_get("hash")?;
        let at = millis(now);
        let detail = entry.detail.to_string();
        let hash = entry_hash(&prev, seq, at, entry.actor, entry.action, entry.subject, &detail);
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&hash).execute(self.conn()).await?;
        sqlx::query(
            "INSERT INTO audit_events (seq, at, actor, action, subject, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(seq)
        .bind(at)
        .bind(entry.actor)
        .bind(entry.action)
        .bind(entry.subject)
        .bind(&detail)
        .bind(&prev)
        .bind(&hash)
        .execute(self.conn())
        .await?;
        Ok(seq)
    }
}

/// The outcome of checking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVerdict {
    /// Every entry links to its predecessor and hashes correctly.
    Intact {
        /// Number of entries checked.
        entries: i64,
        /// The hash of the last entry.
        head: String,
    },
    /// The first entry that does not hold.
    Broken {
        /// Its sequence number.
        seq: i64,
        /// What is wrong with it.
        reason: String,
    },
}

impl Store {
    /// Walks the whole chain in order, recomputing every hash.
    pub async fn verify_audit(&self) -> Result<AuditVerdict, StoreError> {
        let mut prev = GENESIS.to_owned();
        let mut expected_seq = 1i64;
        loop {
            let page = self.audit_entries(expected_seq, 1000).await?;
            if page.is_empty() {
                break;
            }
            for e in page {
                if e.seq != expected_seq {
                    return Ok(AuditVerdict::Broken {
                        seq: expected_seq,
                        reason: format!("entry {expected_seq} is missing"),
                    });
                }
                if e.prev_hash != prev {
                    return Ok(AuditVerdict::Broken {
                        seq: e.seq,
                        reason: "does not link to the previous entry".into(),
                    });
                }
                let h = entry_hash(&e.prev_hash, e.seq, e.at, &e.actor, &e.action, &e.subject, &e.detail);
                if h != e.hash {
                    return Ok(AuditVerdict::Broken { seq: e.seq, reason: "content does not match its hash".into() });
                }
                prev = e.hash;
                expected_seq += 1;
            }
        }
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(self.pool()).await?;
        let head_seq: i64 = head.try_get("seq")?;
        let head_hash: String = head.try_get("hash")?;
        if head_seq != expected_seq - 1 || head_hash != prev {
            return Ok(AuditVerdict::Broken {
                seq: expected_seq,
                reason: format!(
                    "the chain head says {head_seq} entries; entries after {} are missing",
                    expected_seq - 1
                ),
            });
        }
        Ok(AuditVerdict::Intact { entries: expected_seq - 1, head: prev })
    }

    /// Up to `limit` entries before `before_seq` (all when `None`), newest first: the pages of
    /// the console's audit log.
    pub async fn audit_entries_newest_first(
        &self,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit_events \
             WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry_of).collect()
    }

    /// Up to `limit` entries from `from_seq` on, in order.
    pub async fn audit_entries(&self, from_seq: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit_events \
             WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(from_seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry_of).collect()
    }
}

fn entry_of(r: &sqlx::any::AnyRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        subject: r.try_get("subject")?,
        detail: r.try_get("detail")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

#[cfg(test)]
mod tests {
    //! Tampering with the stored chain, which needs raw SQL on the store's own pool; run on
    //! every test backend.

    use super::*;
    use crate::from_millis;
    use crate::testing::{backends, test_store};
    use serde_json::json;

    /// 2026-01-01T00:00:00Z in Unix milliseconds.
    const T0: i64 = 1_767_225_600_000;

    /// Appends `n` entries, each in a transaction of its own.
    async fn chain_of(store: &Store, n: i64) {
        for i in 1..=n {
            let subject = format!("order:YQ-{i}");
            let detail = json!({"payment": format!("PAY-{i}")});
            let entry = NewAuditEntry { actor: "system", action: "order.paid", subject: &subject, detail };
            let mut tx = store.begin().await.unwrap();
            assert_eq!(tx.audit(entry, from_millis(T0 + i)).await.unwrap(), i);
            tx.commit().await.unwrap();
        }
        assert!(matches!(store.verify_audit().await.unwrap(), AuditVerdict::Intact { entries, .. } if entries == n));
    }

    async fn raw(store: &Store, sql: &'static str, text: &str, seq: i64) {
        sqlx::query(sql).bind(text).bind(seq).execute(store.pool()).await.unwrap();
    }

    fn broken_at(verdict: AuditVerdict) -> i64 {
        match verdict {
            AuditVerdict::Broken { seq, .. } => seq,
            other => panic!("the tampering went unnoticed: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_changed_detail_breaks_the_chain_at_that_entry() {
        for backend in backends() {
            let ts = test_store(backend).await;
            chain_of(&ts.store, 4).await;
            raw(&ts.store, "UPDATE audit_events SET detail = $1 WHERE seq = $2", r#"{"payment":"PAY-forged"}"#, 2)
                .await;
            assert_eq!(broken_at(ts.store.verify_audit().await.unwrap()), 2, "{backend:?}");
        }
    }

    #[tokio::test]
    async fn a_rehashed_entry_breaks_the_link_to_the_next() {
        for backend in backends() {
            let ts = test_store(backend).await;
            chain_of(&ts.store, 4).await;
            // The forger changes entry 2 and gives it a matching hash; entry 3 still names the old one.
            let mut e = ts.store.audit_entries(2, 1).await.unwrap().remove(0);
            e.detail = r#"{"payment":"PAY-forged"}"#.into();
            let forged = entry_hash(&e.prev_hash, e.seq, e.at, &e.actor, &e.action, &e.subject, &e.detail);
            raw(&ts.store, "UPDATE audit_events SET detail = $1 WHERE seq = $2", &e.detail, 2).await;
            raw(&ts.store, "UPDATE audit_events SET hash = $1 WHERE seq = $2", &forged, 2).await;
            assert_eq!(broken_at(ts.store.verify_audit().await.unwrap()), 3, "{backend:?}");
        }
    }

    #[tokio::test]
    async fn a_deleted_last_entry_is_noticed_through_the_head() {
        for backend in backends() {
            let ts = test_store(backend).await;
            chain_of(&ts.store, 4).await;
            raw(&ts.store, "DELETE FROM audit_events WHERE actor = $1 AND seq = $2", "system", 4).await;
            assert_eq!(ts.store.audit_entries(1, 10).await.unwrap().len(), 3, "{backend:?}");
            assert_eq!(broken_at(ts.store.verify_audit().await.unwrap()), 4, "{backend:?}");
        }
    }

    #[tokio::test]
    async fn a_deleted_middle_entry_is_missing() {
        for backend in backends() {
            let ts = test_store(backend).await;
            chain_of(&ts.store, 4).await;
            raw(&ts.store, "DELETE FROM audit_events WHERE actor = $1 AND seq = $2", "system", 2).await;
            assert_eq!(broken_at(ts.store.verify_audit().await.unwrap()), 2, "{backend:?}");
        }
    }
}
