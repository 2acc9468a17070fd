//! Assembling and running the service: open the data directory and its keys, the store,
//! the providers chosen by configuration, the application and its background workers, and
//! the HTTP server.

use crate::config::Config;
use crate::shared_keys::{self, NodeKey};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use yiqian_app::authority::CaConfig;
use yiqian_app::sandbox_inbox::StoreSmsInbox;
use yiqian_app::{App, AppConfig, Clock, Providers, SystemClock};
use yiqian_providers::payment::{PaymentGateway, PaymentGateways};
use yiqian_providers::sandbox::{SandboxGateway, SandboxIdentity, SandboxSms};
use yiqian_store::blobs::{BlobStore, LocalBlobStore, S3BlobStore};
use yiqian_store::{Store, StoreError, Vault};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory or a key could not be prepared.
    #[error("{what}: {source}")]
    Storage {
        /// What was being prepared.
        what: String,
        /// Why it failed.
        source: StoreError,
    },
    /// The configuration cannot work.
    #[error("{0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Turns a storage failure into a start failure saying what was being prepared.
pub(crate) fn storage(what: impl Into<String>) -> impl FnOnce(StoreError) -> StartError {
    let what = what.into();
    move |source| StartError::Storage { what, source }
}

/// Opens the store of `config`: creates the data directory and, in development, the master
/// key file. Returns the store and the notes worth telling the operator.
pub async fn open_store(config: &Config) -> Result<(Store, Vec<String>), StartError> {
    let mut notes = Vec::new();
    std::fs::create_dir_all(&config.data_dir).map_err(|e| StartError::Storage {
        what: format!("creating {}", config.data_dir.display()),
        source: e.into(),
    })?;
    let master = NodeKey::resolve(&shared_keys::MASTER, config)?;
    let blobs = blob_store(config)?;
    notes.push(format!("photos, videos and PDFs are kept (sealed) in {}", blobs.describe()));
    let store = Store::open(&config.database_url(), Vault::new(master.key()), blobs)
        .await
        .map_err(storage("opening the database"))?;
    notes.extend(master.confirm(&store).await?);
    Ok((store, notes))
}

/// The blob store `config` names: the data directory's `blobs/` or an S3 bucket.
pub fn blob_store(config: &Config) -> Result<Arc<dyn BlobStore>, StartError> {
    Ok(match config.s3().map_err(|e| StartError::Config(e.to_string()))? {
        Some(settings) => Arc::new(S3BlobStore::new(&settings).map_err(storage("preparing the object storage"))?),
        None => Arc::new(LocalBlobStore::new(config.data_dir.join("blobs"))),
    })
}

/// The target of `yiqian db copy`: the database at `url` (migrated, under this deployment's
/// master key) with its blobs in `blobs_to` — a bucket (`http(s)://HOST/BUCKET[/PREFIX]`, with
/// `[blobs]`' access key id and region and the secret in `YIQIAN_S3_SECRET_ACCESS_KEY`) or a
/// directory — or, without it, in this deployment's own blob store.
pub async fn open_copy_target(config: &Config, url: &str, blobs_to: Option<&str>) -> Result<Store, StartError> {
    let master = NodeKey::resolve(&shared_keys::MASTER, config)?;
    if master.is_fresh() {
        return Err(StartError::Config(
            "this deployment has no master key (neither master_key nor its key file): nothing to copy".into(),
        ));
    }
    let blobs: Arc<dyn BlobStore> = match blobs_to {
        None => blob_store(config)?,
        Some(to) if to.starts_with("http://") || to.starts_with("https://") => {
            let (scheme, rest) = to.split_once("://").expect("checked above");
            let mut parts = rest.trim_end_matches('/').splitn(3, '/');
            let host = parts.next().unwrap_or_default();
            let bucket = parts.next().unwrap_or_default();
            if bucket.is_empty() {
                return Err(StartError::Config(format!("--blobs-to {to}: name the bucket, as http(s)://HOST/BUCKET")));
            }
            let secret = config.secret_env.get(crate::config::S3_SECRET_VARIABLE).cloned().ok_or_else(|| {
                StartError::Config(format!(
                    "--blobs-to a bucket needs its secret in {}",
                    crate::config::S3_SECRET_VARIABLE
                ))
            })?;
            let settings = yiqian_store::blobs::S3Settings {
                endpoint: format!("{scheme}://{host}"),
                bucket: bucket.to_owned(),
                region: config.blobs.region.clone(),
                path_style: true,
                prefix: parts.next().unwrap_or_default().to_owned(),
                access_key_id: config.blobs.access_key_id.clone(),
                secret_access_key: secret,
            };
            Arc::new(S3BlobStore::new(&settings).map_err(storage("preparing the target bucket"))?)
        }
        Some(dir) => Arc::new(LocalBlobStore::new(dir)),
    };
    Store::open(url, Vault::new(master.key()), blobs).await.map_err(storage("opening the target database"))
}

/// The application's configuration for a service reachable at `public_url`.
pub fn app_config(config: &Config, public_url: &str) -> Result<AppConfig, StartError> {
    let mut ca = CaConfig::for_public_url(public_url);
    ca.algorithm = config.ca_algorithm().map_err(|e| StartError::Config(e.to_string()))?;
    ca.options.policy_oid = config.ca_policy_oid().map_err(|e| StartError::Config(e.to_string()))?;
    ca.hsm = config.hsm().map_err(|e| StartError::Config(e.to_string()))?;
    Ok(AppConfig {
        public_url: public_url.to_owned(),
        pay_ttl: chrono::Duration::minutes(config.pay_ttl_minutes),
        customer_service: config.customer_service.clone(),
        ca,
        retention: config.retention().map_err(|e| StartError::Config(e.to_string()))?,
        ..AppConfig::default()
    })
}

/// The application with the providers `config` chooses, for a service reachable at
/// `public_url`; also the sandbox gateway when a payment channel runs in the sandbox (for its
/// cashier page), the WeChat Pay gateway when it trusts platform certificates (refreshed by the
/// server), and notes for the operator.
pub async fn assemble(config: &Config, public_url: &str, clock: Arc<dyn Clock>) -> Result<Assembled, StartError> {
    let (store, mut notes) = open_store(config).await?;
    let escrow_key = NodeKey::resolve(&shared_keys::PIN_ESCROW, config)?;
    notes.extend(escrow_key.confirm(&store).await?);
    let vendors = crate::vendors::build(config, public_url).map_err(|e| StartError::Config(e.to_string()))?;
    let gateway_key = NodeKey::resolve(&shared_keys::SANDBOX_GATEWAY, config)?;
    let sandbox = SandboxGateway::new(*gateway_key.key().bytes(), public_url);
    let sandbox_dyn: Arc<dyn PaymentGateway> = Arc::new(sandbox.clone());
    let payments = PaymentGateways {
        wechat: vendors.wechat_gateway().unwrap_or_else(|| sandbox_dyn.clone()),
        alipay: vendors.alipay_gateway().unwrap_or_else(|| sandbox_dyn.clone()),
    };
    let sandbox_in_use = payments.wechat.name() == "sandbox" || payments.alipay.name() == "sandbox";
    if sandbox_in_use {
        notes.extend(gateway_key.confirm(&store).await?);
    }
    let sandbox_identity =
        if config.sandbox_face_check == "pass" { SandboxIdentity::passing() } else { SandboxIdentity::reviewing() };
    let providers = Providers {
        payments,
        sms: vendors
            .sms
            .clone()
            .unwrap_or_else(|| Arc::new(SandboxSms::new(Arc::new(StoreSmsInbox::new(store.clone()))))),
        identity: vendors.identity.clone().unwrap_or_else(|| Arc::new(sandbox_identity)),
        tokens: crate::ukey::token_reader(config, &config.data_dir).map_err(|e| StartError::Config(e.to_string()))?,
        courier: vendors.courier.clone(),
        invoices: vendors.invoices.clone(),
        wechat_login: vendors.wechat_login.clone(),
    };
    if providers.tokens.name() != "software" {
        match providers.tokens.present() {
            Ok(keys) => notes.push(format!("UKEY reader {}: {} key(s) present", providers.tokens.name(), keys.len())),
            Err(e) => notes.push(format!("UKEY reader {}: cannot list the keys: {e}", providers.tokens.name())),
        }
    }
    if config.sandbox_face_check == "pass" && vendors.identity.is_none() {
        notes.push(
            "the sandbox passes every face video (sandbox_face_check = \"pass\"): for demonstrations only".into(),
        );
    }
    notes.push("UKEYs are personalised on software tokens (files under the data directory's tokens/)".into());
    let p = &config.providers;
    let sandboxed: Vec<&str> = [
        (p.payment_wechat == "sandbox", "微信支付"),
        (p.payment_alipay == "sandbox", "支付宝"),
        (p.sms == "sandbox", "SMS"),
        (p.identity == "sandbox", "identity checks"),
    ]
    .into_iter()
    .filter_map(|(sandbox, what)| sandbox.then_some(what))
    .collect();
    if !sandboxed.is_empty() {
        notes.push(format!("in the sandbox (no money moves, no SMS leaves): {}", sandboxed.join(", ")));
    }
    notes.extend(vendors.report.iter().cloned());
    let wechatpay_certificates = vendors.wechatpay.clone().filter(|_| !config.wechatpay.platform_cert_files.is_empty());
    let app = App::new(store, clock, providers, app_config(config, public_url)?, escrow_key.key());
    Ok(Assembled { app, sandbox: sandbox_in_use.then_some(sandbox), wechatpay_certificates, notes })
}

/// What [`assemble`] puts together.
pub struct Assembled {
    /// The application.
    pub app: App,
    /// The sandbox gateway, when a payment channel runs in the sandbox.
    pub sandbox: Option<SandboxGateway>,
    /// WeChat Pay in platform-certificate mode, whose certificates the server refreshes.
    pub wechatpay_certificates: Option<Arc<yiqian_providers::wechatpay::WechatPayGateway>>,
    /// What the operator should know.
    pub notes: Vec<String>,
}

/// Refreshes WeChat Pay's platform certificates now and every 12 hours, as the SDKs do;
/// a failure is logged and the certificates already trusted stay in use.
fn refresh_platform_certificates(
    gateway: Arc<yiqian_providers::wechatpay::WechatPayGateway>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match gateway.refresh_platform_certificates().await {
                Ok(certs) => tracing::info!(certificates = certs.len(), "WeChat Pay platform certificates refreshed"),
                Err(e) => tracing::warn!(error = %e, "WeChat Pay platform certificates not refreshed"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(12 * 3600)).await;
        }
    })
}

/// A running service.
pub struct Server {
    /// The application (tests drive the clock and the outbox through it).
    pub app: App,
    /// The address actually bound.
    pub addr: SocketAddr,
    /// The operators' listener (`/metrics`, health probes), when configured.
    pub operations_addr: Option<SocketAddr>,
    /// The public URL in force.
    pub public_url: String,
    /// What the operator should know (keys created, …).
    pub notes: Vec<String>,
    shutdown: Option<oneshot::Sender<()>>,
    finished: tokio::task::JoinHandle<()>,
    refresher: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Starts the service with the system clock.
    pub async fn start(config: &Config) -> Result<Server, StartError> {
        Server::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Starts the service with `clock` (tests move time by hand). Binding port 0 picks a free
    /// port; the public URL then follows the bound address unless configured.
    pub async fn start_with_clock(config: &Config, clock: Arc<dyn Clock>) -> Result<Server, StartError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let public_url = if config.public_url.is_empty() { format!("http://{addr}") } else { config.public_url() };
        let Assembled { app, sandbox, wechatpay_certificates, mut notes } =
            assemble(config, &public_url, clock).await?;
        let refresher = wechatpay_certificates.map(refresh_platform_certificates);
        let init = app.ca_init(config.ca_algorithm().map_err(|e| StartError::Config(e.to_string()))?, "system").await;
        match init {
            Ok(i) if i.created => notes.push(format!(
                "created a development CA ({} root and issuing CA, keys sealed in the database): for production, create the CA deliberately with `yiqian ca init`",
                i.algorithm
            )),
            Ok(_) => {}
            Err(e) => return Err(StartError::Config(format!("preparing the CA: {e}"))),
        }
        yiqian_web::metrics::exporter();
        let state = yiqian_web::WebState {
            app: app.clone(),
            sandbox_gateway: sandbox,
            dev_mode: config.dev_mode,
            customer_service: config.customer_service.clone(),
            trust_x_real_ip: config.trust_x_real_ip,
            concurrent_uploads: config.concurrent_uploads,
            metrics_here: config.metrics_listen.is_none(),
        };
        let operations = match config.metrics_listen {
            Some(at) => {
                let listener =
                    tokio::net::TcpListener::bind(at).await.map_err(|source| StartError::Bind { addr: at, source })?;
                let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: at, source })?;
                notes.push(format!("metrics and health probes for operators on http://{addr}/metrics"));
                Some((listener, addr, yiqian_web::operations_router(state.clone())))
            }
            None => None,
        };
        let operations_addr = operations.as_ref().map(|(_, addr, _)| *addr);
        let router = yiqian_web::router(state);

        let (tx, rx) = oneshot::channel::<()>();
        let worker_app = app.clone();
        let finished = tokio::spawn(async move {
            let (stop_workers, workers_stopped) = oneshot::channel::<()>();
            let workers = tokio::spawn(async move {
                worker_app
                    .run_workers(async {
                        let _ = workers_stopped.await;
                    })
                    .await
            });
            // Small answers (OCSP, JSON) go out at once rather than waiting on Nagle's algorithm,
            // as nginx's `tcp_nodelay on` does for kept-alive connections.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set");
                }
            });
            let (stop_operations, operations_stopped) = oneshot::channel::<()>();
            let operations = operations.map(|(listener, _, router)| {
                tokio::spawn(async move {
                    let served = axum::serve(listener, router)
                        .with_graceful_shutdown(async {
                            let _ = operations_stopped.await;
                        })
                        .await;
                    if let Err(e) = served {
                        tracing::error!(error = %e, "operators' HTTP listener stopped");
                    }
                })
            });
            let served = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "HTTP server stopped");
            }
            let _ = stop_operations.send(());
            if let Some(operations) = operations {
                let _ = operations.await;
            }
            let _ = stop_workers.send(());
            let _ = workers.await;
        });
        Ok(Server { app, addr, operations_addr, public_url, notes, shutdown: Some(tx), finished, refresher })
    }

    /// Stops accepting requests, lets running ones finish, stops the workers.
    pub async fn stop(mut self) {
        if let Some(r) = self.refresher.take() {
            r.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.finished).await;
    }

    /// Runs until the process is asked to stop (Ctrl-C or SIGTERM).
    pub async fn run_until_signal(self) {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        self.stop().await;
    }
}
