//! Staff accounts and their sessions in the store, on every backend of
//! [`yiqian_store::testing::backends`]: accounts round-trip, names are unique, the TOTP secret
//! is sealed at rest, a TOTP step is accepted once, failure counts and locks, sessions.

use chrono::{DateTime, Utc};
use sqlx::{Connection, Row};
use yiqian_domain::staff::{Role, StaffName};
use yiqian_store::StoreError;
use yiqian_store::staff::{NewStaff, SessionStage};
use yiqian_store::testing::{TestStore, backends, test_store};

/// 2026-01-01T00:00:00Z in Unix milliseconds.
const T0: i64 = 1_767_225_600_000;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(T0 + ms).expect("a valid time")
}

fn name(s: &str) -> StaffName {
    StaffName::parse(s).expect("a valid staff name")
}

async fn add(ts: &TestStore, id: &str, n: &str, role: Role) {
    let mut tx = ts.store.begin().await.unwrap();
    let n = name(n);
    tx.insert_staff(&NewStaff { id, name: &n, role, password_hash: "$argon2id$v=19$m=19456,t=2,p=1$x$y" }, at(0))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn staff_accounts_round_trip_and_names_are_unique() {
    for backend in backends() {
        let ts = test_store(backend).await;
        add(&ts, "ST1", "li.wei", Role::Reviewer).await;
        add(&ts, "ST2", "admin", Role::Admin).await;

        let mut tx = ts.store.begin().await.unwrap();
        let s = tx.staff_by_name(&name("li.wei")).await.unwrap().expect("found by name");
        assert_eq!((s.id.as_str(), s.role, s.name.as_str()), ("ST1", Role::Reviewer, "li.wei"), "{backend:?}");
        assert!(!s.has_totp_secret && !s.totp_enrolled && !s.disabled, "{backend:?}");
        assert_eq!((s.failed_logins, s.locked_until, s.last_totp_step), (0, None, None), "{backend:?}");
        assert_eq!((s.created_at, s.updated_at), (at(0), at(0)), "{backend:?}");
        assert!(!format!("{s:?}").contains("argon2"), "Debug leaves out the password hash");
        assert_eq!(tx.staff_by_id("ST2").await.unwrap().unwrap().role, Role::Admin, "{backend:?}");
        assert!(tx.staff_by_name(&name("nobody")).await.unwrap().is_none(), "{backend:?}");
        let all: Vec<String> = tx.all_staff().await.unwrap().into_iter().map(|s| s.name.to_string()).collect();
        assert_eq!(all, ["admin", "li.wei"], "by name, {backend:?}");
        tx.commit().await.unwrap();

        let mut tx = ts.store.begin().await.unwrap();
        let n = name("li.wei");
        let dup = NewStaff { id: "ST3", name: &n, role: Role::Finance, password_hash: "h" };
        assert!(matches!(tx.insert_staff(&dup, at(1)).await, Err(StoreError::Duplicate)), "{backend:?}");
    }
}

#[tokio::test]
async fn the_totp_secret_is_sealed_and_a_step_is_used_once() {
    for backend in backends() {
        let ts = test_store(backend).await;
        add(&ts, "ST1", "li.wei", Role::Reviewer).await;
        let secret = b"12345678901234567890";
        let mut tx = ts.store.begin().await.unwrap();
        assert_eq!(tx.staff_totp_secret("ST1").await.unwrap(), None, "{backend:?}");
        tx.set_staff_totp_secret("ST1", Some(secret), at(1)).await.unwrap();
        assert_eq!(tx.staff_totp_secret("ST1").await.unwrap().as_deref(), Some(&secret[..]), "{backend:?}");
        let s = tx.staff_by_id("ST1").await.unwrap().unwrap();
        assert!(s.has_totp_secret && !s.totp_enrolled, "{backend:?}");
        tx.mark_staff_totp_enrolled("ST1", at(2)).await.unwrap();
        assert!(tx.use_staff_totp_step("ST1", 100, at(2)).await.unwrap(), "{backend:?}");
        assert!(!tx.use_staff_totp_step("ST1", 100, at(3)).await.unwrap(), "the same step again, {backend:?}");
        assert!(!tx.use_staff_totp_step("ST1", 99, at(3)).await.unwrap(), "an earlier step, {backend:?}");
        assert!(tx.use_staff_totp_step("ST1", 101, at(3)).await.unwrap(), "{backend:?}");
        let s = tx.staff_by_id("ST1").await.unwrap().unwrap();
        assert!(s.totp_enrolled, "{backend:?}");
        assert_eq!(s.last_totp_step, Some(101), "{backend:?}");
        tx.commit().await.unwrap();

        // At rest there is neither the secret nor its hex form.
        let mut conn = sqlx::AnyConnection::connect(&ts.url).await.unwrap();
        let r =
            sqlx::query("SELECT totp_secret_sealed FROM staff WHERE id = 'ST1'").fetch_one(&mut conn).await.unwrap();
        let sealed: String = r.try_get(0).unwrap();
        conn.close().await.ok();
        assert!(!sealed.contains("1234567890") && !sealed.contains(&hex::encode(secret)), "{backend:?}");

        // A reset removes the secret, the enrolment and the used step.
        let mut tx = ts.store.begin().await.unwrap();
        tx.set_staff_totp_secret("ST1", None, at(4)).await.unwrap();
        let s = tx.staff_by_id("ST1").await.unwrap().unwrap();
        assert!(!s.has_totp_secret && !s.totp_enrolled && s.last_totp_step.is_none(), "{backend:?}");
        assert!(matches!(tx.set_staff_totp_secret("nobody", None, at(4)).await, Err(StoreError::NotFound(_))));
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn failures_are_counted_locks_set_and_cleared() {
    for backend in backends() {
        let ts = test_store(backend).await;
        add(&ts, "ST1", "li.wei", Role::Reviewer).await;
        let mut tx = ts.store.begin().await.unwrap();
        for n in 1..=3 {
            assert_eq!(tx.add_staff_login_failure("ST1", at(n)).await.unwrap(), n, "{backend:?}");
        }
        tx.lock_staff("ST1", at(900_000), at(4)).await.unwrap();
        let s = tx.staff_by_id("ST1").await.unwrap().unwrap();
        assert_eq!((s.failed_logins, s.locked_until), (0, Some(at(900_000))), "{backend:?}");
        tx.add_staff_login_failure("ST1", at(5)).await.unwrap();
        tx.clear_staff_login_failures("ST1", at(6)).await.unwrap();
        let s = tx.staff_by_id("ST1").await.unwrap().unwrap();
        assert_eq!((s.failed_logins, s.locked_until), (0, None), "{backend:?}");
        tx.set_staff_disabled("ST1", true, at(7)).await.unwrap();
        assert!(tx.staff_by_id("ST1").await.unwrap().unwrap().disabled, "{backend:?}");
        tx.set_staff_disabled("ST1", false, at(8)).await.unwrap();
        assert!(!tx.staff_by_id("ST1").await.unwrap().unwrap().disabled, "{backend:?}");
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn staff_sessions_are_found_touched_and_ended() {
    for backend in backends() {
        let ts = test_store(backend).await;
        add(&ts, "ST1", "li.wei", Role::Reviewer).await;
        let mut tx = ts.store.begin().await.unwrap();
        tx.insert_staff_session("h-pending", "ST1", SessionStage::PasswordOk, at(0), at(300_000)).await.unwrap();
        tx.insert_staff_session("h-full", "ST1", SessionStage::Full, at(0), at(28_800_000)).await.unwrap();
        let s = tx.staff_session("h-full").await.unwrap().expect("a session");
        assert_eq!((s.staff_id.as_str(), s.stage), ("ST1", SessionStage::Full), "{backend:?}");
        assert_eq!((s.created_at, s.expires_at, s.last_seen), (at(0), at(28_800_000), at(0)), "{backend:?}");
        assert_eq!(tx.staff_session("h-pending").await.unwrap().unwrap().stage, SessionStage::PasswordOk);
        assert!(tx.staff_session("h-other").await.unwrap().is_none(), "{backend:?}");

        tx.touch_staff_session("h-full", at(60_000)).await.unwrap();
        tx.touch_staff_session("h-full", at(30_000)).await.unwrap();
        assert_eq!(tx.staff_session("h-full").await.unwrap().unwrap().last_seen, at(60_000), "never backwards");

        assert_eq!(tx.delete_expired_staff_sessions(at(300_000)).await.unwrap(), 1, "{backend:?}");
        assert!(tx.staff_session("h-pending").await.unwrap().is_none(), "{backend:?}");
        assert!(tx.delete_staff_session("h-full").await.unwrap(), "{backend:?}");
        assert!(!tx.delete_staff_session("h-full").await.unwrap(), "{backend:?}");

        tx.insert_staff_session("h-a", "ST1", SessionStage::Full, at(0), at(1_000)).await.unwrap();
        tx.insert_staff_session("h-b", "ST1", SessionStage::Full, at(0), at(1_000)).await.unwrap();
        assert_eq!(tx.delete_staff_sessions_of("ST1").await.unwrap(), 2, "{backend:?}");
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn the_audit_log_pages_newest_first() {
    for backend in backends() {
        let ts = test_store(backend).await;
        for i in 1..=5 {
            let subject = format!("staff:s{i}");
            let entry = yiqian_store::audit::NewAuditEntry {
                actor: "system",
                action: "staff.added",
                subject: &subject,
                detail: serde_json::json!({}),
            };
            let mut tx = ts.store.begin().await.unwrap();
            tx.audit(entry, at(i)).await.unwrap();
            tx.commit().await.unwrap();
        }
        let seqs = |v: Vec<yiqian_store::audit::AuditEntry>| v.into_iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(ts.store.audit_entries_newest_first(None, 2).await.unwrap()), [5, 4], "{backend:?}");
        assert_eq!(seqs(ts.store.audit_entries_newest_first(Some(4), 2).await.unwrap()), [3, 2], "{backend:?}");
        assert_eq!(seqs(ts.store.audit_entries_newest_first(Some(2), 2).await.unwrap()), [1], "{backend:?}");
    }
}
