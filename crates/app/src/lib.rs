//! The use cases of yiqian, one service method per thing a person or the system does
//! ("log in", "pay", "confirm the ID card", "request a refund", …). Each loads what it needs,
//! applies the domain transition, and commits the new state, the order's history, the audit
//! event and the outbox messages in one transaction ([`App::apply`]). Side effects (SMS,
//! refunds at the gateway) are delivered afterwards by the [`outbox`] worker.
//!
//! The applicant pages, the JSON API and (later) the staff console all call these methods;
//! no rule lives anywhere else.

pub mod activation;
mod apply;
pub mod authority;
pub mod clock;
pub mod counter;
mod error;
pub mod export;
pub mod fulfilment;
pub mod health;
pub mod invoices;
pub mod issuance;
pub mod login;
pub mod materials;
pub mod metrics;
pub mod ocsp;
pub mod orders;
pub mod outbox;
pub mod payments;
pub mod reconciliation;
pub mod retention;
pub mod review;
pub mod sandbox_inbox;
pub mod schedule;
pub mod seed;
pub mod shipping;
pub mod sms_codes;
pub mod staff;
pub mod station;
pub mod station_counter;
pub mod wechat_login;

pub use clock::{Clock, SystemClock, TestClock};
pub use error::AppError;

use chrono::Duration;
use rand::Rng;
use std::sync::Arc;
use yiqian_domain::Product;
use yiqian_providers::courier::Courier;
use yiqian_providers::identity::IdentityVerifier;
use yiqian_providers::invoice::InvoiceIssuer;
use yiqian_providers::payment::PaymentGateways;
use yiqian_providers::sms::SmsSender;
use yiqian_store::Store;

/// Rules that a deployment may tune.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The product sold.
    pub product: Product,
    /// How long an unpaid order waits for payment.
    pub pay_ttl: Duration,
    /// How long a login lasts.
    pub session_ttl: Duration,
    /// Our public base URL (for payment return links).
    pub public_url: String,
    /// SMS verification code rules.
    pub sms: SmsPolicy,
    /// Face video rules.
    pub liveness: LivenessPolicy,
    /// How the certificate authority issues.
    pub ca: authority::CaConfig,
    /// The CA's name as printed on forms.
    pub ca_display_name: String,
    /// The customer-service line printed on forms and said in messages.
    pub customer_service: String,
    /// Face checks at activation that may fail before the applicant is sent to the counter.
    pub max_activation_failures: i64,
    /// How long personal data is kept.
    pub retention: retention::RetentionPolicy,
}

/// SMS verification code rules.
#[derive(Debug, Clone)]
pub struct SmsPolicy {
    /// How long a code works.
    pub code_ttl: Duration,
    /// Wrong tries allowed per code.
    pub max_attempts: i64,
    /// Wait between two codes to the same phone.
    pub resend_cooldown: Duration,
    /// Codes per phone per day.
    pub per_phone_daily: i64,
    /// Codes per client address per day.
    pub per_ip_daily: i64,
}

/// Face video rules.
#[derive(Debug, Clone)]
pub struct LivenessPolicy {
    /// How long the digits may be answered.
    pub challenge_ttl: Duration,
    /// Challenges per order per day (retries are limited).
    pub max_challenges_per_day: i64,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            product: Product::personal_ukey(),
            pay_ttl: Duration::minutes(30),
            session_ttl: Duration::days(7),
            public_url: "http://127.0.0.1:8080".into(),
            sms: SmsPolicy {
                code_ttl: Duration::minutes(5),
                max_attempts: 5,
                resend_cooldown: Duration::seconds(60),
                per_phone_daily: 10,
                per_ip_daily: 30,
            },
            liveness: LivenessPolicy { challenge_ttl: Duration::minutes(10), max_challenges_per_day: 10 },
            ca: authority::CaConfig::for_public_url("http://127.0.0.1:8080"),
            ca_display_name: "宜签数字证书认证中心".into(),
            customer_service: "400-000-0000".into(),
            max_activation_failures: 3,
            retention: retention::RetentionPolicy::default(),
        }
    }
}

/// The outside services the application talks to.
#[derive(Clone)]
pub struct Providers {
    /// The payment gateway of each channel.
    pub payments: PaymentGateways,
    /// SMS sender.
    pub sms: Arc<dyn SmsSender>,
    /// ID card OCR and face checks.
    pub identity: Arc<dyn IdentityVerifier>,
    /// The key reader of the personalisation station.
    pub tokens: Arc<dyn yiqian_token::TokenReader>,
    /// The courier booked from the fulfilment desk; `None`: staff enter waybills by hand.
    pub courier: Option<Arc<dyn Courier>>,
    /// The e-invoicing service; `None`: finance staff upload invoices by hand.
    pub invoices: Option<Arc<dyn InvoiceIssuer>>,
    /// WeChat web authorisation of the official account; `None`: SMS login only.
    pub wechat_login: Option<Arc<yiqian_providers::wechat_oauth::WechatOAuth>>,
}

struct Inner {
    store: Store,
    clock: Arc<dyn Clock>,
    providers: Providers,
    config: AppConfig,
    outbox_wakeup: tokio::sync::Notify,
    issuing_ca: tokio::sync::RwLock<Option<Arc<authority::IssuingCa>>>,
    ocsp_responder: tokio::sync::RwLock<Option<Arc<ocsp::OcspResponder>>>,
    ocsp_cache: ocsp::ResponseCache,
    pin_escrow: yiqian_store::Vault,
    /// The HPKE key pair stations seal PINs to, derived from the PIN-escrow key.
    escrow_pair: yiqian_token::escrow::EscrowKeyPair,
    documents: std::sync::OnceLock<Arc<yiqian_documents::DocumentRenderer>>,
    /// This node's name in claims on scheduled jobs: process id and a random part.
    node_id: String,
    /// Memory for face videos read whole for the identity provider, in MiB permits.
    face_checks: tokio::sync::Semaphore,
    /// When the background worker last passed its loop.
    worker_seen: std::sync::Mutex<Option<std::time::Instant>>,
}

/// The application: every use case, over one store and one set of providers. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

impl App {
    /// Assembles the application. `pin_escrow` seals the PINs of personalised keys until they
    /// are delivered; it is a key of its own, apart from the one that protects personal data.
    /// Stations seal PINs to the HPKE public key derived from it ([`App::escrow_public_key`]).
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        providers: Providers,
        config: AppConfig,
        pin_escrow: &yiqian_store::MasterKey,
    ) -> App {
        // Calls to the SMS and identity providers are counted and timed for the operators.
        let providers = Providers {
            sms: Arc::new(metrics::MeteredSms(providers.sms)),
            identity: Arc::new(metrics::MeteredIdentity(providers.identity)),
            ..providers
        };
        App {
            inner: Arc::new(Inner {
                store,
                clock,
                providers,
                config,
                outbox_wakeup: tokio::sync::Notify::new(),
                issuing_ca: tokio::sync::RwLock::new(None),
                ocsp_responder: tokio::sync::RwLock::new(None),
                ocsp_cache: ocsp::ResponseCache::default(),
                pin_escrow: yiqian_store::Vault::new(pin_escrow),
                escrow_pair: yiqian_token::escrow::EscrowKeyPair::derive(pin_escrow.bytes()),
                documents: std::sync::OnceLock::new(),
                node_id: format!("node-{}-{}", std::process::id(), new_id("", 6)),
                face_checks: tokio::sync::Semaphore::new(FACE_CHECK_MEMORY_MIB as usize),
                worker_seen: std::sync::Mutex::new(None),
            }),
        }
    }

    /// This node's name in claims on scheduled jobs.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &AppConfig {
        &self.inner.config
    }

    /// The providers.
    pub fn providers(&self) -> &Providers {
        &self.inner.providers
    }

    /// Now, by the application's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }

    fn wake_outbox(&self) {
        self.inner.outbox_wakeup.notify_one();
    }
}

const ID_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// A random identifier: `prefix` followed by `len` characters that cannot be misread
/// (no 0/O, 1/I).
/// China Standard Time (UTC+8): the time zone of dates on paper, of the gateways' days and of
/// the vendors' timestamps.
pub fn china_time() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

pub(crate) fn new_id(prefix: &str, len: usize) -> String {
    let mut rng = rand::thread_rng();
    let mut s = String::with_capacity(prefix.len() + len);
    s.push_str(prefix);
    for _ in 0..len {
        s.push(ID_ALPHABET[rng.gen_range(0..ID_ALPHABET.len())] as char);
    }
    s
}

/// Runs a unit of work, retrying the whole of it when the store reports a concurrent change
/// or a busy database. `$body` is an async block using `$tx`; it must not commit.
macro_rules! in_tx {
    ($app:expr, |$tx:ident| $body:expr) => {{
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut $tx = $app.store().begin().await?;
            let result: Result<_, $crate::AppError> = async { $body }.await;
            let outcome = match result {
                Ok(value) => match $tx.commit().await {
                    Ok(()) => Ok(value),
                    Err(e) => Err($crate::AppError::from(e)),
                },
                Err(e) => {
                    drop($tx);
                    Err(e)
                }
            };
            match outcome {
                Err(e) if e.is_retryable() && attempt < $crate::MAX_ATTEMPTS => {
                    $crate::backoff(attempt).await;
                }
                Err(e) if e.is_retryable() => break Err($crate::AppError::Busy),
                other => break other,
            }
        }
    }};
}
pub(crate) use in_tx;

/// Memory (MiB) that face videos being compared by the identity provider may hold at once.
/// The provider takes a video whole, so each check holds its video's size of this budget
/// until it is answered: ten phone videos of 3 MB at once (Tencent Cloud takes videos up to
/// 6 MB), one of the largest (30 MB) at a time.
/// The uploads themselves are sealed into the store as they arrive, never whole in memory.
pub const FACE_CHECK_MEMORY_MIB: u32 = 32;

/// How many times a unit of work is tried before the caller is told the system is busy.
pub(crate) const MAX_ATTEMPTS: u32 = 30;

/// A short randomised pause before retrying a unit of work.
pub(crate) async fn backoff(attempt: u32) {
    let base = 2u64.saturating_pow(attempt.min(6));
    let jitter = rand::thread_rng().gen_range(0..=base);
    tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
}
