//! The outbox worker against a deliberately unreliable SMS provider: retries with backoff,
//! the same idempotency key on every attempt, giving up on permanent errors and after too
//! many attempts, and one delivery even when two workers race.

use async_trait::async_trait;
use chrono::{Duration, Utc};
use std::sync::{Arc, Mutex};
use yiqian_app::sms_codes::CodePurpose;
use yiqian_app::{App, AppConfig, Providers, TestClock};
use yiqian_domain::identity::MobileNumber;
use yiqian_providers::ProviderError;
use yiqian_providers::payment::PaymentGateways;
use yiqian_providers::sandbox::{SandboxGateway, SandboxIdentity};
use yiqian_providers::sms::{SmsMessage, SmsSender};
use yiqian_store::testing::{backends, test_store};
use yiqian_token::software::SoftwareTokenReader;

/// Fails the first `failures` sends (transiently, or permanently), then succeeds; records the
/// idempotency key of every attempt.
struct FlakySms {
    failures: Mutex<u32>,
    permanent: bool,
    attempts: Mutex<Vec<String>>,
    delivered: Mutex<Vec<String>>,
}

impl FlakySms {
    fn new(failures: u32, permanent: bool) -> Arc<FlakySms> {
        Arc::new(FlakySms {
            failures: Mutex::new(failures),
            permanent,
            attempts: Mutex::default(),
            delivered: Mutex::default(),
        })
    }
}

#[async_trait]
impl SmsSender for FlakySms {
    fn name(&self) -> &'static str {
        "flaky"
    }

    async fn send(&self, message: &SmsMessage, key: &str) -> Result<(), ProviderError> {
        assert!(message.template.text().contains("验证码"));
        self.attempts.lock().unwrap().push(key.to_owned());
        let mut failures = self.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            let detail = "simulated outage".to_owned();
            return Err(if self.permanent {
                ProviderError::Rejected { provider: "flaky", detail }
            } else {
                ProviderError::Transient { provider: "flaky", detail }
            });
        }
        self.delivered.lock().unwrap().push(key.to_owned());
        Ok(())
    }
}

async fn app_with(
    backend: yiqian_store::Backend,
    sms: Arc<FlakySms>,
) -> (App, Arc<TestClock>, yiqian_store::testing::TestStore) {
    let ts = test_store(backend).await;
    let clock = Arc::new(TestClock::at(Utc::now()));
    let providers = Providers {
        payments: PaymentGateways::single(Arc::new(SandboxGateway::new([1; 32], "http://127.0.0.1:9"))),
        sms,
        identity: Arc::new(SandboxIdentity::reviewing()),
        tokens: Arc::new(SoftwareTokenReader::new(std::env::temp_dir().join("yiqian-outbox-test-tokens"))),
        courier: None,
        invoices: None,
        wechat_login: None,
    };
    let escrow = yiqian_store::MasterKey::generate();
    let app = App::new(ts.store.clone(), clock.clone(), providers, AppConfig::default(), &escrow);
    (app, clock, ts)
}

fn phone() -> MobileNumber {
    MobileNumber::parse("13800138000").unwrap()
}

async fn counts(app: &App) -> Vec<(String, i64)> {
    app.store().outbox_counts().await.unwrap()
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff_and_the_same_key() {
    for backend in backends() {
        let sms = FlakySms::new(3, false);
        let (app, clock, _ts) = app_with(backend, sms.clone()).await;
        app.send_code(&phone(), CodePurpose::Login, "127.0.0.1").await.unwrap();
        assert_eq!(app.deliver_due().await.unwrap(), 0);
        // Not due again before its backoff ends.
        assert_eq!(app.deliver_due().await.unwrap(), 0);
        assert_eq!(sms.attempts.lock().unwrap().len(), 1, "{backend:?}");
        for _ in 0..2 {
            clock.advance(Duration::seconds(10));
            assert_eq!(app.deliver_due().await.unwrap(), 0);
        }
        clock.advance(Duration::seconds(10));
        assert_eq!(app.deliver_due().await.unwrap(), 1);
        let attempts = sms.attempts.lock().unwrap().clone();
        assert_eq!(attempts.len(), 4);
        assert!(attempts.iter().all(|k| k == &attempts[0]), "one idempotency key for every attempt");
        assert_eq!(sms.delivered.lock().unwrap().len(), 1);
        assert_eq!(counts(&app).await, vec![("done".to_owned(), 1)]);
        // Nothing left to do.
        clock.advance(Duration::hours(1));
        assert_eq!(app.deliver_due().await.unwrap(), 0);
        assert_eq!(sms.attempts.lock().unwrap().len(), 4);
    }
}

#[tokio::test]
async fn permanent_failures_and_endless_outages_are_given_up() {
    for backend in backends() {
        let sms = FlakySms::new(1, true);
        let (app, _clock, _ts) = app_with(backend, sms.clone()).await;
        app.send_code(&phone(), CodePurpose::Login, "127.0.0.1").await.unwrap();
        app.deliver_due().await.unwrap();
        assert_eq!(counts(&app).await, vec![("dead".to_owned(), 1)], "{backend:?}");

        let sms = FlakySms::new(u32::MAX, false);
        let (app, clock, _ts) = app_with(backend, sms.clone()).await;
        app.send_code(&phone(), CodePurpose::Login, "127.0.0.1").await.unwrap();
        for _ in 0..20 {
            app.deliver_due().await.unwrap();
            clock.advance(Duration::hours(2));
        }
        assert_eq!(sms.attempts.lock().unwrap().len(), 12, "{backend:?}");
        assert_eq!(counts(&app).await, vec![("dead".to_owned(), 1)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_workers_deliver_once() {
    for backend in backends() {
        let sms = FlakySms::new(0, false);
        let (app, clock, _ts) = app_with(backend, sms.clone()).await;
        for i in 0..10 {
            let p = MobileNumber::parse(&format!("1380013{:04}", i)).unwrap();
            app.send_code(&p, CodePurpose::Login, "127.0.0.1").await.unwrap();
            clock.advance(Duration::seconds(1));
        }
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { app.deliver_due().await.unwrap() })
            })
            .collect();
        let mut total = 0;
        for w in workers {
            total += w.await.unwrap();
        }
        assert_eq!(total, 10, "{backend:?}");
        let mut delivered = sms.delivered.lock().unwrap().clone();
        delivered.sort();
        delivered.dedup();
        assert_eq!(delivered.len(), 10);
        assert_eq!(sms.attempts.lock().unwrap().len(), 10);
    }
}
