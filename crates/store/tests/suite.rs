//! The store's test suite: every public operation of `yiqian-store`, run against every
//! backend of [`yiqian_store::testing::backends`] — SQLite always, PostgreSQL as well when
//! `YIQIAN_TEST_DATABASE_URL` is set (CI sets `YIQIAN_REQUIRE_POSTGRES=1` so it cannot be
//! skipped there).
//!
//! Each test gets a fresh, migrated store per backend from [`on_each_backend`], which names
//! the backend in the failure message. Times are whole milliseconds after a fixed instant,
//! because the store keeps times as Unix milliseconds.
//!
//! Tamper detection of the audit chain needs raw writes to the store's own tables and lives in
//! the unit tests of `src/audit.rs`; here sealed columns are read back through a connection of
//! the test's own to check that no plaintext reaches the database.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Connection, Row};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use yiqian_domain::identity::MobileNumber;
use yiqian_domain::payment::{Channel, GatewayState};
use yiqian_domain::{
    ApplicantId, Checklist, Fen, Order, OrderEvent, OrderId, OrderState, PaymentId, RefundId, RefundReason, Step,
};
use yiqian_store::audit::{AuditVerdict, GENESIS, NewAuditEntry, entry_hash};
use yiqian_store::blobs::{BlobInfo, LocalBlobStore};
use yiqian_store::orders::{Challenge, OrderRecord};
use yiqian_store::payments::{PaymentRecord, RefundRecord};
use yiqian_store::sms::{SandboxSms, SmsCodeRecord};
use yiqian_store::testing::{TestStore, backends, test_store};
use yiqian_store::{MasterKey, Store, StoreError, Vault};

// ---------------------------------------------------------------------------------------------
// Harness and fixtures
// ---------------------------------------------------------------------------------------------

/// Runs `test` once per backend on a fresh store. A failure is re-raised with the backend's
/// name in front, so `[Postgres] assertion failed…` says where it broke.
///
/// The store is shared, not moved: an `async move` block that uses only `ts.store` captures
/// just that field, and the temporary directory (holding the SQLite file) would be deleted
/// under the running test. The harness keeps its own handle until the test is over.
async fn on_each_backend<F, Fut>(test: F)
where
    F: Fn(Arc<TestStore>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    for backend in backends() {
        let ts = Arc::new(test_store(backend).await);
        let started = Instant::now();
        let outcome = tokio::spawn(test(ts.clone())).await;
        drop(ts);
        match outcome {
            Ok(()) => eprintln!("[{backend:?}] passed in {:?}", started.elapsed()),
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                let message = payload
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| payload.downcast_ref::<&str>().copied())
                    .unwrap_or("(panic without a message)");
                panic!("[{backend:?}] {message}");
            }
            Err(e) => panic!("[{backend:?}] the test task did not finish: {e}"),
        }
    }
}

/// 2026-01-01T00:00:00Z in Unix milliseconds: the suite's fixed "now".
const T0: i64 = 1_767_225_600_000;

/// `T0 + ms`, at the millisecond precision the store keeps.
fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(T0 + ms).expect("a valid time")
}

fn order_id(s: &str) -> OrderId {
    OrderId::parse(s).expect("a valid order id")
}

fn applicant_id(s: &str) -> ApplicantId {
    ApplicantId::parse(s).expect("a valid applicant id")
}

fn payment_id(s: &str) -> PaymentId {
    PaymentId::parse(s).expect("a valid payment id")
}

fn phone(s: &str) -> MobileNumber {
    MobileNumber::parse(s).expect("a valid mobile number")
}

/// Creates (or finds) the applicant with this phone number, committed.
async fn applicant(store: &Store, number: &str, id: &str) -> ApplicantId {
    let mut tx = store.begin().await.unwrap();
    let a = tx.applicant_by_phone(&phone(number), &applicant_id(id), at(0)).await.unwrap();
    tx.commit().await.unwrap();
    a
}

/// An order record with every field set to something other than its default.
fn order_record(
    id: &str,
    applicant: &ApplicantId,
    created_ms: i64,
    state: OrderState,
    deadline_ms: i64,
) -> OrderRecord {
    OrderRecord {
        order: Order {
            id: order_id(id),
            price: Fen(15_000),
            state,
            checklist: Checklist::default(),
            paid_by: None,
            pay_deadline: at(deadline_ms),
        },
        applicant: applicant.clone(),
        product_code: "personal-standard".into(),
        agreement_version: "2026-01".into(),
        agreement_accepted_at: at(created_ms - 5),
        created_at: at(created_ms),
        updated_at: at(created_ms),
        version: 1,
    }
}

/// Inserts the orders, committed.
async fn insert_orders(store: &Store, records: &[&OrderRecord]) {
    let mut tx = store.begin().await.unwrap();
    for r in records {
        tx.insert_order(r).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// An applicant with one unpaid order `id`, committed; returns the order's record.
async fn one_order(store: &Store, id: &str) -> OrderRecord {
    let a = applicant(store, "13800138000", "app-1").await;
    let r = order_record(id, &a, 0, OrderState::Created, 1_800_000);
    insert_orders(store, &[&r]).await;
    r
}

/// Every value of a text column, read through a connection of the test's own.
async fn raw_column(ts: &TestStore, sql: &str) -> Vec<String> {
    let mut conn = sqlx::AnyConnection::connect(&ts.url).await.expect("a raw connection");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).fetch_all(&mut conn).await.expect("the raw query");
    let values = rows.iter().map(|r| r.try_get::<String, _>(0).expect("a text column")).collect();
    conn.close().await.ok();
    values
}

/// A second store on the same database, holding a different master key.
async fn store_with_other_key(ts: &TestStore) -> Store {
    let blobs = Arc::new(LocalBlobStore::new(ts.dir.path().join("blobs")));
    Store::open(&ts.url, Vault::new(&MasterKey::generate()), blobs).await.expect("a second store")
}

fn audit_entry<'a>(subject: &'a str, detail: serde_json::Value) -> NewAuditEntry<'a> {
    NewAuditEntry { actor: "system", action: "order.touched", subject, detail }
}

// ---------------------------------------------------------------------------------------------
// 1. Orders
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn order_round_trips_with_every_field() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        let a = applicant(store, "13800138000", "app-1").await;
        let r = OrderRecord {
            order: Order {
                id: order_id("YQ20260101K7M2Q9XW"),
                price: Fen(12_345),
                state: OrderState::Collecting,
                checklist: Checklist::default().complete(Step::Phone).unwrap().complete(Step::IdCard).unwrap(),
                paid_by: Some(payment_id("PAY-0001")),
                pay_deadline: at(1_800_000),
            },
            applicant: a.clone(),
            product_code: "personal-standard".into(),
            agreement_version: "2026-01".into(),
            agreement_accepted_at: at(-1_234),
            created_at: at(0),
            updated_at: at(777),
            version: 3,
        };
        insert_orders(store, &[&r]).await;

        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.load_order(&r.order.id).await.unwrap(), r);
        assert!(matches!(tx.load_order(&order_id("YQ-none")).await, Err(StoreError::NotFound(_))));

        // A second order with the same id is a duplicate.
        let mut tx = store.begin().await.unwrap();
        assert!(matches!(tx.insert_order(&r).await, Err(StoreError::Duplicate)));
    })
    .await;
}

#[tokio::test]
async fn update_order_checks_and_bumps_the_version() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        let original = one_order(store, "YQ-1").await;

        // The right version: saved, and the version goes up by one.
        let mut tx = store.begin().await.unwrap();
        let mut changed = tx.load_order(&original.order.id).await.unwrap();
        changed.order.state = OrderState::Collecting;
        changed.order.paid_by = Some(payment_id("PAY-1"));
        changed.order.checklist = Checklist::default().complete(Step::Phone).unwrap();
        let saved = tx.update_order(&changed, at(60_000)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(saved.version, 2);
        assert_eq!(saved.updated_at, at(60_000));
        assert_eq!(saved.order, changed.order);

        let mut tx = store.read().await.unwrap();
        let loaded = tx.load_order(&original.order.id).await.unwrap();
        drop(tx);
        assert_eq!(loaded, saved);
        // What update_order does not own is left alone.
        assert_eq!(loaded.created_at, original.created_at);
        assert_eq!(loaded.product_code, original.product_code);

        // A stale version: Conflict, and nothing changes.
        let mut stale = original.clone();
        stale.order.state = OrderState::Cancelled;
        let mut tx = store.begin().await.unwrap();
        assert!(matches!(tx.update_order(&stale, at(70_000)).await, Err(StoreError::Conflict)));
        drop(tx);
        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.load_order(&original.order.id).await.unwrap(), saved);

        // The new version works again, once.
        let mut tx = store.begin().await.unwrap();
        let again = tx.update_order(&saved, at(80_000)).await.unwrap();
        assert_eq!(again.version, 3);
        assert!(matches!(tx.update_order(&saved, at(80_000)).await, Err(StoreError::Conflict)));
        tx.commit().await.unwrap();

        // An order that does not exist cannot be updated either.
        let mut ghost = saved.clone();
        ghost.order.id = order_id("YQ-ghost");
        let mut tx = store.begin().await.unwrap();
        assert!(matches!(tx.update_order(&ghost, at(90_000)).await, Err(StoreError::Conflict)));
    })
    .await;
}

#[tokio::test]
async fn orders_of_lists_an_applicants_orders_newest_first() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        let a = applicant(store, "13800138000", "app-a").await;
        let b = applicant(store, "13900139000", "app-b").await;
        let a1 = order_record("YQ-A1", &a, 1_000, OrderState::Created, 10_000);
        let a2 = order_record("YQ-A2", &a, 3_000, OrderState::Collecting, 10_000);
        let a3 = order_record("YQ-A3", &a, 2_000, OrderState::Cancelled, 10_000);
        let b1 = order_record("YQ-B1", &b, 4_000, OrderState::Created, 10_000);
        insert_orders(store, &[&a1, &a2, &a3, &b1]).await;

        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.orders_of(&a).await.unwrap(), vec![a2, a3, a1]);
        assert_eq!(tx.orders_of(&b).await.unwrap(), vec![b1]);
        assert!(tx.orders_of(&applicant_id("app-nobody")).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn overdue_unpaid_orders_are_created_orders_past_their_deadline() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        let a = applicant(store, "13800138000", "app-1").await;
        let now = 50_000;
        let late = order_record("YQ-late", &a, 0, OrderState::Created, 20_000);
        let later = order_record("YQ-later", &a, 0, OrderState::Created, 10_000);
        let due_now = order_record("YQ-due-now", &a, 0, OrderState::Created, now);
        let not_yet = order_record("YQ-not-yet", &a, 0, OrderState::Created, now + 1);
        let paid = order_record("YQ-paid", &a, 0, OrderState::Collecting, 10_000);
        let cancelled = order_record("YQ-cancelled", &a, 0, OrderState::Cancelled, 10_000);
        insert_orders(store, &[&late, &later, &due_now, &not_yet, &paid, &cancelled]).await;

        let mut tx = store.read().await.unwrap();
        let ids = |v: Vec<OrderId>| v.iter().map(|i| i.as_str().to_owned()).collect::<Vec<_>>();
        // Oldest deadline first; a deadline equal to now is overdue.
        assert_eq!(ids(tx.overdue_unpaid_orders(at(now), 10).await.unwrap()), ["YQ-later", "YQ-late", "YQ-due-now"]);
        assert_eq!(ids(tx.overdue_unpaid_orders(at(now), 1).await.unwrap()), ["YQ-later"]);
        assert!(tx.overdue_unpaid_orders(at(9_999), 10).await.unwrap().is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 2. History
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn history_numbers_events_across_calls_in_order() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        let r = one_order(store, "YQ-1").await;
        let other = order_record("YQ-2", &r.applicant, 0, OrderState::Created, 1_800_000);
        insert_orders(store, &[&other]).await;
        let paid = OrderEvent::Paid { payment: payment_id("PAY-1"), amount: Fen(15_000) };

        let mut order = r.order.clone();
        order.state = OrderState::Collecting;
        let mut tx = store.begin().await.unwrap();
        tx.append_history(&order, "gateway:wechat", std::slice::from_ref(&paid), at(1_000)).await.unwrap();
        tx.commit().await.unwrap();

        order.state = OrderState::Submitted;
        let steps = [OrderEvent::StepCompleted { step: Step::Address }, OrderEvent::Submitted];
        let mut tx = store.begin().await.unwrap();
        tx.append_history(&order, "applicant", &steps, at(2_000)).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        let h = tx.history(&order.id).await.unwrap();
        let summary: Vec<_> =
            h.iter().map(|e| (e.seq, e.at, e.actor.as_str(), e.event.clone(), e.state_after)).collect();
        assert_eq!(
            summary,
            vec![
                (1, at(1_000), "gateway:wechat", paid, OrderState::Collecting),
                (2, at(2_000), "applicant", steps[0].clone(), OrderState::Submitted),
                (3, at(2_000), "applicant", steps[1].clone(), OrderState::Submitted),
            ]
        );
        // Another order's history starts at 1 on its own and does not mix in.
        assert!(tx.history(&other.order.id).await.unwrap().is_empty());
        drop(tx);
        let mut tx = store.begin().await.unwrap();
        tx.append_history(&other.order, "system", &[OrderEvent::Expired], at(3_000)).await.unwrap();
        let h = tx.history(&other.order.id).await.unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!((h[0].seq, &h[0].event, h[0].state_after), (1, &OrderEvent::Expired, OrderState::Created));
        assert_eq!(tx.history(&order.id).await.unwrap().len(), 3);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 3. Materials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn materials_are_sealed_and_replaced() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        let r = one_order(store, "YQ-1").await;
        let id = &r.order.id;
        let id_card = Step::IdCard.code();
        let first = json!({"name": "张三", "id_number": "110101199003074477", "valid": ["2020-01-01", "2040-01-01"]});
        let second = json!({"name": "李四", "id_number": "11010519491231002X"});
        let draft = json!({"front": "blob0001abcd", "back": "blob0002abcd"});

        let mut tx = store.begin().await.unwrap();
        tx.save_material(id, id_card, &first, at(1_000)).await.unwrap();
        tx.save_material(id, "id_card_draft", &draft, at(1_000)).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.material(id, id_card).await.unwrap(), Some(first.clone()));
        assert_eq!(tx.material(id, "id_card_draft").await.unwrap(), Some(draft.clone()));
        assert_eq!(tx.material(id, Step::Address.code()).await.unwrap(), None);
        drop(tx);

        let mut tx = store.begin().await.unwrap();
        tx.save_material(id, id_card, &second, at(2_000)).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.material(id, id_card).await.unwrap(), Some(second.clone()));
        assert_eq!(tx.material(id, "id_card_draft").await.unwrap(), Some(draft.clone()), "another key is untouched");
        drop(tx);

        // One row per key, and none holds plaintext.
        let sealed = raw_column(&ts, "SELECT sealed FROM materials").await;
        assert_eq!(sealed.len(), 2);
        for plain in ["李四", "11010519491231002X", "张三", "110101199003074477", "blob0001abcd"] {
            assert!(sealed.iter().all(|s| !s.contains(plain)), "a sealed column shows {plain:?}");
        }

        // Another master key cannot open it.
        let other = store_with_other_key(&ts).await;
        let mut tx = other.read().await.unwrap();
        assert!(matches!(tx.material(id, id_card).await, Err(StoreError::Corrupt(_))));
    })
    .await;
}

#[tokio::test]
async fn live_orders_are_found_by_id_number_hash() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        let a = applicant(store, "13800138000", "app-1").await;
        let mine = order_record("YQ-mine", &a, 0, OrderState::Collecting, 0);
        let live = order_record("YQ-live", &a, 0, OrderState::Submitted, 0);
        let refunded = order_record("YQ-refunded", &a, 0, OrderState::Refunded, 0);
        let cancelled = order_record("YQ-cancelled", &a, 0, OrderState::Cancelled, 0);
        let unrelated = order_record("YQ-unrelated", &a, 0, OrderState::Approved, 0);
        insert_orders(store, &[&mine, &live, &refunded, &cancelled, &unrelated]).await;
        let mut tx = store.begin().await.unwrap();
        for o in [&mine, &live, &refunded, &cancelled] {
            tx.set_order_id_number_hash(&o.order.id, "hash-of-id-1").await.unwrap();
        }
        tx.set_order_id_number_hash(&unrelated.order.id, "hash-of-id-2").await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        assert_eq!(
            tx.live_orders_with_id_number("hash-of-id-1", &mine.order.id).await.unwrap(),
            vec![live.order.id.clone()]
        );
        assert!(tx.live_orders_with_id_number("hash-of-id-2", &unrelated.order.id).await.unwrap().is_empty());
        assert!(tx.live_orders_with_id_number("hash-of-id-3", &mine.order.id).await.unwrap().is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 4. Blobs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn blobs_are_sealed_on_disk_and_tampering_is_detected() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        let mut bytes = b"\xFF\xD8\xFF\xE0 JFIF PLAINTEXT-MARKER ".to_vec();
        bytes.extend((0..4096u32).map(|i| (i % 251) as u8));
        let info = BlobInfo {
            id: "blob0001abcd".into(),
            order_id: "YQ-1".into(),
            kind: "id_front".into(),
            content_type: "image/jpeg".into(),
            size: bytes.len() as i64,
        };
        store.put_blob(&info, &bytes).await.unwrap();
        // Stored but not recorded: not found.
        assert!(matches!(store.get_blob(&info.id).await, Err(StoreError::NotFound(_))));
        let mut tx = store.begin().await.unwrap();
        tx.insert_blob(&info, at(0)).await.unwrap();
        tx.commit().await.unwrap();

        let (got_info, got_bytes) = store.get_blob(&info.id).await.unwrap();
        assert_eq!(got_info, info);
        assert_eq!(got_bytes, bytes);
        assert!(matches!(store.get_blob("blob-missing").await, Err(StoreError::NotFound(_))));

        let path = ts.dir.path().join("blobs").join(&info.id[..2]).join(&info.id);
        let mut on_disk = std::fs::read(&path).expect("the blob file");
        assert!(on_disk.len() > bytes.len(), "the file is not larger than the plaintext");
        assert!(!on_disk.windows(17).any(|w| w == b"PLAINTEXT-MARKER "), "the file holds plaintext");
        assert!(!on_disk.windows(64).any(|w| w == &bytes[100..164]), "the file holds plaintext");

        *on_disk.last_mut().unwrap() ^= 0x01;
        std::fs::write(&path, &on_disk).unwrap();
        assert!(matches!(store.get_blob(&info.id).await, Err(StoreError::Corrupt(_))));
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 5. Payments, refunds, notifications
// ---------------------------------------------------------------------------------------------

fn payment(id: &str, order: &OrderId, created_ms: i64) -> PaymentRecord {
    PaymentRecord {
        id: payment_id(id),
        order: order.clone(),
        channel: Channel::Alipay,
        amount: Fen(15_000),
        state: GatewayState::Pending,
        gateway_txn: None,
        created_at: at(created_ms),
    }
}

fn refund(id: &str, p: &PaymentRecord, created_ms: i64) -> RefundRecord {
    RefundRecord {
        id: RefundId::parse(id).unwrap(),
        order: p.order.clone(),
        payment: p.id.clone(),
        amount: p.amount,
        reason: RefundReason::ApplicantRequest,
        state: GatewayState::Pending,
        created_at: at(created_ms),
    }
}

#[tokio::test]
async fn payments_are_confirmed_once() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        let r = one_order(store, "YQ-1").await;
        let p2 = PaymentRecord { channel: Channel::Wechat, amount: Fen(9_900), ..payment("PAY-2", &r.order.id, 2_000) };
        let p1 = payment("PAY-1", &r.order.id, 1_000);
        let mut tx = store.begin().await.unwrap();
        tx.insert_payment(&p2).await.unwrap();
        tx.insert_payment(&p1).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.payment(&p1.id).await.unwrap(), p1);
        assert_eq!(tx.payment(&p2.id).await.unwrap(), p2);
        assert_eq!(tx.payments_of(&r.order.id).await.unwrap(), vec![p1.clone(), p2.clone()]);
        assert!(matches!(tx.payment(&payment_id("PAY-none")).await, Err(StoreError::NotFound(_))));
        drop(tx);

        let mut tx = store.begin().await.unwrap();
        tx.confirm_payment(&p1.id, "4200001234", at(3_000)).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert!(matches!(tx.confirm_payment(&p1.id, "4200009999", at(4_000)).await, Err(StoreError::Conflict)));
        assert!(matches!(tx.confirm_payment(&payment_id("PAY-none"), "x", at(4_000)).await, Err(StoreError::Conflict)));
        let confirmed = tx.payment(&p1.id).await.unwrap();
        assert_eq!(
            confirmed,
            PaymentRecord { state: GatewayState::Succeeded, gateway_txn: Some("4200001234".into()), ..p1.clone() }
        );
        assert_eq!(tx.payment(&p2.id).await.unwrap(), p2, "the other payment is untouched");
    })
    .await;
}

#[tokio::test]
async fn one_refund_per_payment_and_replayed_notifications_are_duplicates() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        let r = one_order(store, "YQ-1").await;
        let p = payment("PAY-1", &r.order.id, 1_000);
        let rf = RefundRecord { reason: RefundReason::Rejected, ..refund("RF-1", &p, 2_000) };
        let mut tx = store.begin().await.unwrap();
        tx.insert_payment(&p).await.unwrap();
        tx.insert_refund(&rf).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.refund(&rf.id).await.unwrap(), rf);
        assert_eq!(tx.refunds_of(&r.order.id).await.unwrap(), vec![rf.clone()]);
        assert!(matches!(tx.refund(&RefundId::parse("RF-none").unwrap()).await, Err(StoreError::NotFound(_))));
        drop(tx);

        // A second refund of the same payment, under another id.
        let mut tx = store.begin().await.unwrap();
        assert!(matches!(tx.insert_refund(&refund("RF-2", &p, 3_000)).await, Err(StoreError::Duplicate)));
        drop(tx);
        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.refunds_of(&r.order.id).await.unwrap(), vec![rf.clone()]);
        drop(tx);

        let mut tx = store.begin().await.unwrap();
        tx.confirm_refund(&rf.id, at(4_000)).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert!(matches!(tx.confirm_refund(&rf.id, at(5_000)).await, Err(StoreError::Conflict)));
        assert_eq!(tx.refund(&rf.id).await.unwrap().state, GatewayState::Succeeded);
        drop(tx);

        let mut tx = store.begin().await.unwrap();
        tx.record_notification("wx-notify-1", "payment", at(1_000)).await.unwrap();
        tx.record_notification("wx-notify-2", "refund", at(1_000)).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert!(matches!(
            tx.record_notification("wx-notify-1", "payment", at(2_000)).await,
            Err(StoreError::Duplicate)
        ));
        drop(tx);
        let mut tx = store.begin().await.unwrap();
        tx.record_notification("wx-notify-3", "payment", at(2_000)).await.unwrap();
        tx.commit().await.unwrap();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 6. SMS codes and the sandbox inbox
// ---------------------------------------------------------------------------------------------

fn sms_code(id: &str, phone_hash: &str, purpose: &str, ip: &str, created_ms: i64) -> SmsCodeRecord {
    SmsCodeRecord {
        id: id.into(),
        phone_hash: phone_hash.into(),
        purpose: purpose.into(),
        code_hash: format!("code-hash-of-{id}"),
        client_ip: ip.into(),
        created_at: at(created_ms),
        expires_at: at(created_ms + 300_000),
        attempts: 0,
        consumed_at: None,
    }
}

#[tokio::test]
async fn sms_codes_are_found_counted_and_consumed_once() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        let mine = store.vault().lookup_hash("phone", "13800138000");
        let theirs = store.vault().lookup_hash("phone", "13900139000");
        let c1 = sms_code("sms-1", &mine, "login", "10.0.0.1", 0);
        let c2 = sms_code("sms-2", &mine, "login", "10.0.0.1", 1_000);
        let c3 = sms_code("sms-3", &mine, "bind_phone", "10.0.0.2", 2_000);
        let c4 = sms_code("sms-4", &theirs, "login", "10.0.0.1", 500);
        let mut tx = store.begin().await.unwrap();
        for c in [&c2, &c1, &c3, &c4] {
            tx.insert_sms_code(c).await.unwrap();
        }
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.latest_sms_code(&mine, "login").await.unwrap(), Some(c2.clone()));
        assert_eq!(tx.latest_sms_code(&mine, "bind_phone").await.unwrap(), Some(c3.clone()));
        assert_eq!(tx.latest_sms_code(&theirs, "login").await.unwrap(), Some(c4.clone()));
        assert_eq!(tx.latest_sms_code(&theirs, "bind_phone").await.unwrap(), None);

        tx.count_sms_attempt(&c2.id).await.unwrap();
        tx.count_sms_attempt(&c2.id).await.unwrap();
        tx.consume_sms_code(&c2.id, at(1_500)).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert!(matches!(tx.consume_sms_code(&c2.id, at(1_600)).await, Err(StoreError::Conflict)));
        assert!(matches!(tx.consume_sms_code("sms-none", at(1_600)).await, Err(StoreError::Conflict)));
        assert_eq!(
            tx.latest_sms_code(&mine, "login").await.unwrap(),
            Some(SmsCodeRecord { attempts: 2, consumed_at: Some(at(1_500)), ..c2.clone() })
        );
        assert_eq!(tx.latest_sms_code(&theirs, "login").await.unwrap().unwrap().attempts, 0);

        assert_eq!(tx.sms_codes_to_phone_since(&mine, at(0)).await.unwrap(), 3);
        assert_eq!(tx.sms_codes_to_phone_since(&mine, at(1_000)).await.unwrap(), 2);
        assert_eq!(tx.sms_codes_to_phone_since(&mine, at(2_001)).await.unwrap(), 0);
        assert_eq!(tx.sms_codes_to_phone_since(&theirs, at(0)).await.unwrap(), 1);
        assert_eq!(tx.sms_codes_from_ip_since("10.0.0.1", at(0)).await.unwrap(), 3);
        assert_eq!(tx.sms_codes_from_ip_since("10.0.0.1", at(600)).await.unwrap(), 1);
        assert_eq!(tx.sms_codes_from_ip_since("10.0.0.2", at(0)).await.unwrap(), 1);
        assert_eq!(tx.sms_codes_from_ip_since("10.9.9.9", at(0)).await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn sandbox_sms_is_delivered_once_per_key_and_listed_newest_first() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        let msg = |id: &str, phone: &str, ms: i64| SandboxSms {
            id: id.into(),
            phone: phone.into(),
            template: "login_code".into(),
            text: format!("【易签】验证码 {id},5分钟内有效。"),
            at: at(ms),
        };
        let m1 = msg("sb-1", "13800138000", 0);
        let m2 = msg("sb-2", "13900139000", 1_000);
        let m3 = msg("sb-3", "13800138000", 2_000);
        let mut tx = store.begin().await.unwrap();
        assert!(tx.deliver_sandbox_sms("key-1", &m1).await.unwrap());
        assert!(!tx.deliver_sandbox_sms("key-1", &msg("sb-1-again", "13800138000", 5_000)).await.unwrap());
        assert!(tx.deliver_sandbox_sms("key-2", &m2).await.unwrap());
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert!(!tx.deliver_sandbox_sms("key-1", &m1).await.unwrap());
        assert!(tx.deliver_sandbox_sms("key-3", &m3).await.unwrap());
        tx.commit().await.unwrap();

        assert_eq!(store.sandbox_sms(None, 10).await.unwrap(), vec![m3.clone(), m2.clone(), m1.clone()]);
        assert_eq!(store.sandbox_sms(Some("13800138000"), 10).await.unwrap(), vec![m3.clone(), m1.clone()]);
        assert_eq!(store.sandbox_sms(Some("13900139000"), 10).await.unwrap(), vec![m2.clone()]);
        assert_eq!(store.sandbox_sms(None, 1).await.unwrap(), vec![m3.clone()]);
        assert!(store.sandbox_sms(Some("13700137000"), 10).await.unwrap().is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 7. Outbox
// ---------------------------------------------------------------------------------------------

fn counts(v: &[(&str, i64)]) -> Vec<(String, i64)> {
    v.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
}

#[tokio::test]
async fn outbox_keeps_one_message_per_key_and_leases_claims() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        let p1 = json!({"phone": "13800138000", "template": "login_code", "code": "482913"});
        let p2 = json!({"phone": "13800138000", "template": "login_code", "code": "000000"});
        let p3 = json!({"refund": "RF-1", "amount": 15000});
        let mut tx = store.begin().await.unwrap();
        assert!(tx.enqueue("m1", "sms", "key-1", &p1, at(0)).await.unwrap());
        assert!(!tx.enqueue("m2", "sms", "key-1", &p2, at(0)).await.unwrap());
        assert!(tx.enqueue("m3", "refund", "key-3", &p3, at(10)).await.unwrap());
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert!(!tx.enqueue("m4", "sms", "key-3", &p1, at(20)).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(store.outbox_counts().await.unwrap(), counts(&[("pending", 2)]));

        // Payloads are sealed at rest.
        let sealed = raw_column(&ts, "SELECT payload_sealed FROM outbox").await;
        assert_eq!(sealed.len(), 2);
        assert!(sealed.iter().all(|s| !s.contains("13800138000") && !s.contains("482913") && !s.contains("RF-1")));

        // Not due yet: m3 is due at 10.
        let lease = 30_000;
        let only_m1 = store.claim_outbox(at(5), at(5 + lease), 10).await.unwrap();
        assert_eq!(only_m1.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["m1"]);
        // m1 is leased until 5 + lease; m3 is claimed alone, with everything opened.
        let claimed = store.claim_outbox(at(20), at(20 + lease), 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let m3 = &claimed[0];
        assert_eq!(
            (m3.id.as_str(), m3.kind.as_str(), m3.idempotency_key.as_str(), &m3.payload, m3.attempts, m3.created_at),
            ("m3", "refund", "key-3", &p3, 1, at(10))
        );
        let m1 = &only_m1[0];
        assert_eq!(
            (m1.id.as_str(), m1.kind.as_str(), m1.idempotency_key.as_str(), &m1.payload, m1.attempts, m1.created_at),
            ("m1", "sms", "key-1", &p1, 1, at(0))
        );
        assert_eq!(store.outbox_counts().await.unwrap(), counts(&[("sending", 2)]));

        // Nothing before a lease ends; at its end the message is claimed again.
        assert!(store.claim_outbox(at(5 + lease - 1), at(10 * lease), 10).await.unwrap().is_empty());
        let again = store.claim_outbox(at(5 + lease), at(100_000), 10).await.unwrap();
        assert_eq!(again.iter().map(|m| (m.id.as_str(), m.attempts)).collect::<Vec<_>>(), [("m1", 2)]);
        // The limit holds: both due at 200_000 (m1 leased to 100_000, m3 to 20 + lease), one taken.
        let one = store.claim_outbox(at(200_000), at(300_000), 1).await.unwrap();
        assert_eq!(one.iter().map(|m| (m.id.as_str(), m.attempts)).collect::<Vec<_>>(), [("m3", 2)]);
        let other = store.claim_outbox(at(200_000), at(300_000), 1).await.unwrap();
        assert_eq!(other.iter().map(|m| (m.id.as_str(), m.attempts)).collect::<Vec<_>>(), [("m1", 3)]);

        // A failure with a retry time: pending again, due then.
        store.outbox_failed("m1", "provider timed out", Some(at(400_000))).await.unwrap();
        assert_eq!(store.outbox_counts().await.unwrap(), counts(&[("pending", 1), ("sending", 1)]));
        assert!(store.claim_outbox(at(299_999), at(1_000_000), 10).await.unwrap().is_empty());
        let retried = store.claim_outbox(at(400_000), at(500_000), 10).await.unwrap();
        assert_eq!(retried.iter().map(|m| (m.id.as_str(), m.attempts)).collect::<Vec<_>>(), [("m3", 3), ("m1", 4)]);

        // A failure without a retry time: dead, never claimed again.
        store.outbox_failed("m3", "refund rejected", None).await.unwrap();
        store.outbox_done("m1", at(450_000)).await.unwrap();
        assert_eq!(store.outbox_counts().await.unwrap(), counts(&[("dead", 1), ("done", 1)]));
        let far = at(10 * 365 * 86_400_000);
        assert!(store.claim_outbox(far, far, 10).await.unwrap().is_empty());
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 8. Audit
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn audit_chain_links_committed_entries_only() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        assert_eq!(store.verify_audit().await.unwrap(), AuditVerdict::Intact { entries: 0, head: GENESIS.into() });

        let subjects = ["order:YQ-1", "order:YQ-2", "staff:li"];
        for (i, subject) in subjects.iter().enumerate() {
            let mut tx = store.begin().await.unwrap();
            let seq = tx.audit(audit_entry(subject, json!({"n": i})), at(i as i64 * 1_000)).await.unwrap();
            tx.commit().await.unwrap();
            assert_eq!(seq, i as i64 + 1);
        }

        let entries = store.audit_entries(1, 100).await.unwrap();
        assert_eq!(entries.len(), 3);
        let mut prev = GENESIS.to_owned();
        for (i, e) in entries.iter().enumerate() {
            assert_eq!((e.seq, e.at), (i as i64 + 1, T0 + i as i64 * 1_000));
            assert_eq!(
                (e.actor.as_str(), e.action.as_str(), e.subject.as_str()),
                ("system", "order.touched", subjects[i])
            );
            assert_eq!(serde_json::from_str::<serde_json::Value>(&e.detail).unwrap(), json!({"n": i}));
            assert_eq!(e.prev_hash, prev);
            assert_eq!(e.hash, entry_hash(&prev, e.seq, e.at, &e.actor, &e.action, &e.subject, &e.detail));
            prev = e.hash.clone();
        }
        assert_eq!(store.audit_entries(3, 100).await.unwrap(), entries[2..].to_vec());
        assert_eq!(store.verify_audit().await.unwrap(), AuditVerdict::Intact { entries: 3, head: prev.clone() });

        // A unit of work dropped without commit leaves no trace in the chain.
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.audit(audit_entry("order:YQ-9", json!({})), at(9_000)).await.unwrap(), 4);
        drop(tx);
        assert_eq!(store.verify_audit().await.unwrap(), AuditVerdict::Intact { entries: 3, head: prev.clone() });
        assert_eq!(store.audit_entries(1, 100).await.unwrap(), entries);

        // The next committed entry takes the place of the rolled-back one.
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.audit(audit_entry("order:YQ-4", json!({"n": 3})), at(10_000)).await.unwrap(), 4);
        tx.commit().await.unwrap();
        let last = store.audit_entries(4, 1).await.unwrap().remove(0);
        assert_eq!((last.subject.as_str(), &last.prev_hash), ("order:YQ-4", &prev));
        assert_eq!(store.verify_audit().await.unwrap(), AuditVerdict::Intact { entries: 4, head: last.hash });
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 9. Concurrency
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_of_one_order_all_land_exactly_once() {
    on_each_backend(|ts| async move {
        const WRITERS: i64 = 20;
        const MAX_TRIES: u64 = 200;
        let store = ts.store.clone();
        let r = one_order(&store, "YQ-hot").await;

        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let store = store.clone();
            let id = r.order.id.clone();
            tasks.push(tokio::spawn(async move {
                for attempt in 1..=MAX_TRIES {
                    let result = async {
                        let mut tx = store.begin().await?;
                        let current = tx.load_order(&id).await?;
                        let saved = tx.update_order(&current, at(1_000 + writer)).await?;
                        let subject = format!("order:{id}");
                        let detail = json!({"writer": writer, "version": saved.version});
                        tx.audit(audit_entry(&subject, detail), at(1_000 + writer)).await?;
                        tx.commit().await
                    }
                    .await;
                    match result {
                        Ok(()) => return attempt,
                        Err(e) if e.is_retryable() => {
                            tokio::time::sleep(Duration::from_millis(1 + (writer as u64 * 7 + attempt) % 5)).await;
                        }
                        Err(e) => panic!("writer {writer}, attempt {attempt}: {e} ({e:?})"),
                    }
                }
                panic!("writer {writer} did not get through in {MAX_TRIES} tries");
            }));
        }
        let mut retries = 0;
        for t in tasks {
            retries += t.await.expect("a writer task") - 1;
        }
        eprintln!("[{:?}] {WRITERS} writers needed {retries} retries", store.backend());

        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.load_order(&r.order.id).await.unwrap().version, 1 + WRITERS);
        drop(tx);
        let AuditVerdict::Intact { entries, .. } = store.verify_audit().await.unwrap() else {
            panic!("the audit chain broke under concurrency");
        };
        assert_eq!(entries, WRITERS);
        // Each writer landed once, and each saw a different version.
        let details: Vec<serde_json::Value> = store
            .audit_entries(1, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| serde_json::from_str(&e.detail).unwrap())
            .collect();
        let mut writers: Vec<i64> = details.iter().map(|d| d["writer"].as_i64().unwrap()).collect();
        writers.sort_unstable();
        assert_eq!(writers, (0..WRITERS).collect::<Vec<_>>());
        let versions: Vec<i64> = details.iter().map(|d| d["version"].as_i64().unwrap()).collect();
        assert_eq!(versions, (2..=WRITERS + 1).collect::<Vec<_>>(), "audit order follows commit order");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 10. Applicants and sessions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn applicants_are_found_by_phone_and_sessions_expire() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        let first = applicant(store, "13800138000", "app-1").await;
        assert_eq!(first, applicant_id("app-1"));
        // The same number, written differently, finds the same account.
        assert_eq!(applicant(store, "+86 138-0013-8000", "app-2").await, first);
        let second = applicant(store, "13900139000", "app-2").await;
        assert_eq!(second, applicant_id("app-2"));

        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.applicant_phone(&first).await.unwrap(), phone("13800138000"));
        assert_eq!(tx.applicant_phone(&second).await.unwrap(), phone("13900139000"));
        assert!(matches!(tx.applicant_phone(&applicant_id("app-none")).await, Err(StoreError::NotFound(_))));
        drop(tx);
        let at_rest = raw_column(&ts, "SELECT phone_sealed FROM applicants").await;
        let hashes = raw_column(&ts, "SELECT phone_hash FROM applicants").await;
        assert_eq!(at_rest.len(), 2);
        assert!(at_rest.iter().chain(&hashes).all(|v| !v.contains("13800138000") && !v.contains("13900139000")));

        let mut tx = store.begin().await.unwrap();
        tx.insert_session("tok-hash-1", &first, at(0), at(1_000)).await.unwrap();
        tx.insert_session("tok-hash-2", &second, at(0), at(1_000)).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert!(matches!(tx.insert_session("tok-hash-1", &second, at(0), at(1_000)).await, Err(StoreError::Duplicate)));
        drop(tx);

        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.session("tok-hash-1", at(999)).await.unwrap(), Some(first.clone()));
        assert_eq!(tx.session("tok-hash-2", at(0)).await.unwrap(), Some(second.clone()));
        assert_eq!(tx.session("tok-hash-1", at(1_000)).await.unwrap(), None, "expired at expires_at");
        assert_eq!(tx.session("tok-hash-none", at(0)).await.unwrap(), None);
        tx.delete_session("tok-hash-1").await.unwrap();
        tx.delete_session("tok-hash-none").await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.session("tok-hash-1", at(1)).await.unwrap(), None);
        assert_eq!(tx.session("tok-hash-2", at(1)).await.unwrap(), Some(second));
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 11. Liveness challenges
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn liveness_challenges_are_used_once_and_counted() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        let r = one_order(store, "YQ-1").await;
        let other = order_record("YQ-2", &r.applicant, 0, OrderState::Collecting, 0);
        insert_orders(store, &[&other]).await;
        let challenge = |id: &str, order: &OrderId, ms: i64| Challenge {
            id: id.into(),
            order: order.clone(),
            digits: format!("48{ms:02}"),
            created_at: at(ms),
            expires_at: at(ms + 300_000),
            used_at: None,
        };
        let c1 = challenge("ch-1", &r.order.id, 0);
        let mut tx = store.begin().await.unwrap();
        tx.insert_challenge(&c1).await.unwrap();
        tx.insert_challenge(&challenge("ch-2", &r.order.id, 1_000)).await.unwrap();
        tx.insert_challenge(&challenge("ch-3", &r.order.id, 2_000)).await.unwrap();
        tx.insert_challenge(&challenge("ch-x", &other.order.id, 1_500)).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.challenge("ch-1").await.unwrap(), c1);
        assert!(matches!(tx.challenge("ch-none").await, Err(StoreError::NotFound(_))));
        tx.use_challenge("ch-1", at(10)).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert!(matches!(tx.use_challenge("ch-1", at(20)).await, Err(StoreError::Conflict)));
        assert!(matches!(tx.use_challenge("ch-none", at(20)).await, Err(StoreError::Conflict)));
        assert_eq!(tx.challenge("ch-1").await.unwrap(), Challenge { used_at: Some(at(10)), ..c1 });
        assert_eq!(tx.challenge("ch-2").await.unwrap().used_at, None);

        assert_eq!(tx.challenges_since(&r.order.id, at(0)).await.unwrap(), 3);
        assert_eq!(tx.challenges_since(&r.order.id, at(1_000)).await.unwrap(), 2);
        assert_eq!(tx.challenges_since(&r.order.id, at(2_001)).await.unwrap(), 0);
        assert_eq!(tx.challenges_since(&other.order.id, at(0)).await.unwrap(), 1);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Certificate authority records
// ---------------------------------------------------------------------------------------------

fn ca_key(id: &str, role: &str) -> yiqian_store::certificates::CaKeyRecord {
    yiqian_store::certificates::CaKeyRecord {
        id: id.into(),
        role: role.into(),
        algorithm: "sm2".into(),
        certificate_der: vec![0x30, 0x03, 0x02, 0x01, 0x01],
        key_ref: "software".into(),
        pkcs8: Some(b"private key bytes".to_vec()),
        created_at: at(0),
        active: true,
    }
}

fn cert(
    serial: &str,
    status: yiqian_store::certificates::CertificateStatus,
    not_after_ms: i64,
) -> yiqian_store::certificates::CertificateRecord {
    yiqian_store::certificates::CertificateRecord {
        serial: serial.into(),
        issuer_id: "CA1".into(),
        order_id: Some("YQ1".into()),
        profile: "personal".into(),
        status,
        reason: None,
        status_changed_at: at(10),
        not_before: at(0),
        not_after: at(not_after_ms),
        der: format!("certificate of 张三 {serial}").into_bytes(),
    }
}

#[tokio::test]
async fn ca_keys_and_certificates_are_sealed_and_change_status_once() {
    use yiqian_store::certificates::CertificateStatus as S;
    on_each_backend(|ts| async move {
        let store = &ts.store;
        assert!(store.active_ca_key("issuing").await.unwrap().is_none());
        let mut tx = store.begin().await.unwrap();
        tx.insert_ca_key(&ca_key("CA1", "issuing")).await.unwrap();
        tx.insert_certificate(&cert("0A", S::Hold, 1_000_000)).await.unwrap();
        tx.insert_certificate(&cert("0B", S::Active, 1_000_000)).await.unwrap();
        tx.insert_certificate(&cert("0C", S::Active, 5)).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert!(matches!(tx.insert_certificate(&cert("0A", S::Active, 1)).await, Err(StoreError::Duplicate)));
        drop(tx);

        let key = store.active_ca_key("issuing").await.unwrap().unwrap();
        assert_eq!(key.pkcs8.as_deref(), Some(&b"private key bytes"[..]));
        assert!(!format!("{key:?}").contains("private"));
        for sealed in raw_column(&ts, "SELECT key_sealed FROM ca_keys").await {
            assert!(!sealed.contains("private"));
        }
        for sealed in raw_column(&ts, "SELECT der_sealed FROM certificates").await {
            assert!(!sealed.contains("张三"));
        }
        assert!(store_with_other_key(&ts).await.certificate("0A").await.is_err());

        let c = store.certificate("0A").await.unwrap().unwrap();
        assert_eq!(c.der, "certificate of 张三 0A".as_bytes());
        assert_eq!(c.status, S::Hold);

        let mut tx = store.begin().await.unwrap();
        tx.change_certificate_status("0A", S::Hold, S::Active, None, at(20)).await.unwrap();
        assert!(matches!(
            tx.change_certificate_status("0A", S::Hold, S::Active, None, at(21)).await,
            Err(StoreError::Conflict)
        ));
        tx.change_certificate_status("0B", S::Active, S::Revoked, Some("key_compromise"), at(30)).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        tx.insert_certificate(&cert("0D", S::Hold, 1_000_000)).await.unwrap();
        tx.commit().await.unwrap();
        // On the CRL: the revoked one and the held one; not the active one, not the expired one.
        let unusable = store.unusable_certificates("CA1", at(100)).await.unwrap();
        let listed: Vec<(&str, &str)> = unusable.iter().map(|u| (u.serial.as_str(), u.reason.as_str())).collect();
        assert_eq!(listed, vec![("0B", "key_compromise"), ("0D", "certificate_hold")]);
        assert_eq!(unusable[0].since, at(30));

        assert!(store.latest_crl("CA1").await.unwrap().is_none());
        let mut tx = store.begin().await.unwrap();
        tx.insert_crl("CA1", 1, at(0), at(1000), b"crl one").await.unwrap();
        tx.insert_crl("CA1", 2, at(10), at(1010), b"crl two").await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert!(matches!(tx.insert_crl("CA1", 2, at(10), at(1010), b"again").await, Err(StoreError::Duplicate)));
        drop(tx);
        let (number, _, next, der) = store.latest_crl("CA1").await.unwrap().unwrap();
        assert_eq!((number, next, der.as_slice()), (2, at(1010), &b"crl two"[..]));
        assert_eq!(store.certificates(10).await.unwrap().len(), 4);
    })
    .await;
}

#[tokio::test]
async fn a_unit_of_work_that_carried_on_after_a_failure_never_half_commits() {
    on_each_backend(|ts| async move {
        let store = &ts.store;
        let a = applicant(store, "13800138000", "AP1").await;
        let r = order_record("YQ1", &a, 0, OrderState::Created, 1_800_000);
        insert_orders(store, &[&r]).await;
        let mut tx = store.begin().await.unwrap();
        let second = order_record("YQ2", &a, 0, OrderState::Created, 1_800_000);
        tx.insert_order(&second).await.unwrap();
        assert!(matches!(tx.insert_order(&r).await, Err(StoreError::Duplicate)));
        match (store.backend(), tx.commit().await) {
            // PostgreSQL abandoned the transaction: commit says so, and YQ2 is not there.
            (yiqian_store::Backend::Postgres, Err(StoreError::Aborted)) => {
                let mut tx = store.read().await.unwrap();
                assert!(matches!(tx.load_order(&order_id("YQ2")).await, Err(StoreError::NotFound(_))));
            }
            // SQLite undoes only the failed statement: YQ2 is committed whole.
            (yiqian_store::Backend::Sqlite, Ok(())) => {
                let mut tx = store.read().await.unwrap();
                assert_eq!(tx.load_order(&order_id("YQ2")).await.unwrap(), second);
            }
            (backend, outcome) => panic!("{backend:?}: unexpected commit outcome {outcome:?}"),
        }
    })
    .await;
}

/// Stations and their leases: a credential found by its hash, revocation once, at most one
/// live lease per order and per key (a second claim is `Duplicate`), guarded moves, and a key's
/// newest lease.
#[tokio::test]
async fn stations_and_leases() {
    use yiqian_domain::staff::{Role, StaffName};
    use yiqian_store::staff::NewStaff;
    use yiqian_store::stations::{LeaseRecord, LeaseService, LeaseState, NewStation};
    on_each_backend(|ts| async move {
        let store = &ts.store;
        one_order(store, "YQ20260101AAAAAAAA").await;
        let mut tx = store.begin().await.unwrap();
        let name = StaffName::parse("zhao.min").unwrap();
        tx.insert_staff(&NewStaff { id: "ST1", name: &name, role: Role::Fulfilment, password_hash: "h" }, at(0))
            .await
            .unwrap();
        let new =
            NewStation {
                id: "WS1", name: "制证室-1", staff_id: "ST1", credential_hash: "H1", expires_at: at(1_000)
            };
        tx.insert_station(&new, at(0)).await.unwrap();
        let s = tx.station_by_credential("H1").await.unwrap().expect("found by its credential's hash");
        assert_eq!((s.id.as_str(), s.name.as_str(), s.staff_id.as_str()), ("WS1", "制证室-1", "ST1"));
        assert_eq!((s.expires_at, s.last_seen, s.revoked.clone()), (at(1_000), at(0), None));
        assert!(tx.station_by_credential("H2").await.unwrap().is_none());
        tx.touch_station("WS1", at(5)).await.unwrap();
        assert_eq!(tx.station("WS1").await.unwrap().unwrap().last_seen, at(5));

        let lease = |id: &str, serial: &str| LeaseRecord {
            id: id.into(),
            station_id: "WS1".into(),
            service: LeaseService::Issue,
            batch_id: Some("BT1".into()),
            order: order_id("YQ20260101AAAAAAAA"),
            token_serial: serial.into(),
            so_pin_sealed: "hpke1:so".into(),
            user_pin_sealed: "hpke1:user".into(),
            state: LeaseState::Claimed,
            certificate_serial: None,
            outcome: None,
            expires_at: at(600),
            created_at: at(10),
            updated_at: at(10),
        };
        tx.insert_lease(&lease("LS1", "K1")).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        assert!(
            matches!(tx.insert_lease(&lease("LS2", "K2")).await, Err(StoreError::Duplicate)),
            "one live lease per order"
        );
        drop(tx);
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.live_leases(None).await.unwrap().len(), 1);
        assert_eq!(tx.live_leases(Some("WS1")).await.unwrap()[0].id, "LS1");
        assert!(tx.live_leases(Some("WS2")).await.unwrap().is_empty());
        let moved = tx
            .advance_lease("LS1", LeaseState::Claimed, LeaseState::Certified, Some("C1"), None, at(700), at(20))
            .await
            .unwrap();
        assert!(moved);
        assert!(
            !tx.advance_lease("LS1", LeaseState::Claimed, LeaseState::Abandoned, None, Some("x"), at(20), at(20))
                .await
                .unwrap(),
            "guarded by the state it is in"
        );
        tx.advance_lease("LS1", LeaseState::Certified, LeaseState::Abandoned, None, Some("expired"), at(30), at(30))
            .await
            .unwrap();
        let l = tx.lease("LS1").await.unwrap().unwrap();
        assert_eq!(
            (l.state, l.certificate_serial.as_deref(), l.outcome.as_deref()),
            (LeaseState::Abandoned, Some("C1"), Some("expired"))
        );
        // Ended leases free the order and the key.
        let mut again = lease("LS3", "K1");
        again.created_at = at(40);
        tx.insert_lease(&again).await.unwrap();
        assert_eq!(tx.latest_lease_of_key("K1").await.unwrap().unwrap().id, "LS3");
        assert_eq!(tx.leases_of_batch("BT1").await.unwrap().len(), 2);
        assert!(tx.revoke_station("WS1", "staff:admin", at(50)).await.unwrap());
        assert!(!tx.revoke_station("WS1", "staff:admin", at(51)).await.unwrap(), "once");
        assert_eq!(tx.station("WS1").await.unwrap().unwrap().revoked, Some((at(50), "staff:admin".to_owned())));
        tx.commit().await.unwrap();
    })
    .await;
}
