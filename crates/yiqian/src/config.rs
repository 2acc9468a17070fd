//! Configuration: built-in defaults (SQLite and sandbox providers under `./yiqian-data`),
//! then a TOML file, then `YIQIAN_*` environment variables, then command-line flags.

use crate::vendors::{
    AlipaySection, NuonuoSection, ProviderChoice, SECRET_VARIABLES, SfSection, TencentSection, WechatLoginSection,
    WechatPaySection,
};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The service's configuration. Not `Debug`: it holds the master key and the HSM PIN.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for the database, blobs and generated keys.
    pub data_dir: PathBuf,
    /// Database URL; empty means SQLite in the data directory.
    pub database_url: String,
    /// Public base URL (for payment links and notifications); empty means `http://LISTEN`.
    pub public_url: String,
    /// Master key for personal data (base64 of 32 bytes); empty means the key file.
    pub master_key: String,
    /// File holding the master key; empty means `DATA/master.key`, created on first start.
    pub master_key_file: String,
    /// PIN-escrow key (base64 of 32 bytes), shared by every node; empty means the key file.
    pub pin_escrow_key: String,
    /// File holding the PIN-escrow key; empty means `DATA/pin-escrow.key`, created on first start.
    pub pin_escrow_key_file: String,
    /// Key of the sandbox payment gateway (base64 of 32 bytes); empty means the key file.
    pub sandbox_gateway_key: String,
    /// File holding the sandbox gateway key; empty means `DATA/sandbox-gateway.key`.
    pub sandbox_gateway_key_file: String,
    /// Development mode: the sandbox SMS inbox page is served.
    pub dev_mode: bool,
    /// Customer-service line shown on every page.
    pub customer_service: String,
    /// Minutes an unpaid order waits for payment.
    pub pay_ttl_minutes: i64,
    /// Whether a reverse proxy in front sets `X-Real-IP` (believed only then).
    pub trust_x_real_ip: bool,
    /// Uploads (ID photos, face videos, invoice PDFs) handled at once; more are told to retry.
    pub concurrent_uploads: usize,
    /// How log lines are written to standard error: `text` (for people) or `json` (one object
    /// a line, for a log collector).
    pub log_format: LogFormat,
    /// Address of the operators' listener (`/metrics`, `/healthz`, `/readyz`); when set,
    /// `/metrics` is served only there, not on the public listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Algorithm of a CA created on first start or by `ca init`: `sm2`, `p256` or `rsa3072`.
    pub ca_algorithm: String,
    /// Certificate policy OID written into personal certificates (dotted), if any.
    pub ca_policy_oid: String,
    /// PKCS#11 module of the HSM holding the CA keys; empty: software keys sealed in the store.
    pub hsm_module: String,
    /// Label of the HSM token.
    pub hsm_token: String,
    /// File holding the token's user PIN (or `YIQIAN_HSM_PIN`).
    pub hsm_pin_file: String,
    /// The user PIN, from `YIQIAN_HSM_PIN` only (never from the file, never printed).
    #[serde(skip)]
    pub hsm_pin: String,
    /// What the sandbox identity provider answers to a face video: `review` (a reviewer
    /// decides; the default) or `pass` (passes every video; for demonstrations).
    pub sandbox_face_check: String,
    /// Which implementation each outside service uses.
    pub providers: ProviderChoice,
    /// WeChat Pay.
    pub wechatpay: WechatPaySection,
    /// WeChat web authorisation.
    pub wechat_login: WechatLoginSection,
    /// Alipay.
    pub alipay: AlipaySection,
    /// Tencent Cloud.
    pub tencent: TencentSection,
    /// SF Express.
    pub sf: SfSection,
    /// Nuonuo.
    pub nuonuo: NuonuoSection,
    /// The UKEY reader that personalises keys.
    pub ukey: crate::ukey::UkeySection,
    /// Where photos, videos, signatures and PDFs are kept.
    pub blobs: BlobsSection,
    /// How long personal data is kept.
    pub retention: RetentionSection,
    /// Secrets given in the environment ([`SECRET_VARIABLES`]), by variable name; never printed.
    #[serde(skip)]
    pub secret_env: std::collections::BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./yiqian-data"),
            database_url: String::new(),
            public_url: String::new(),
            master_key: String::new(),
            master_key_file: String::new(),
            pin_escrow_key: String::new(),
            pin_escrow_key_file: String::new(),
            sandbox_gateway_key: String::new(),
            sandbox_gateway_key_file: String::new(),
            dev_mode: true,
            customer_service: "400-000-0000".into(),
            pay_ttl_minutes: 30,
            trust_x_real_ip: false,
            concurrent_uploads: yiqian_web::DEFAULT_CONCURRENT_UPLOADS,
            metrics_listen: None,
            log_format: LogFormat::Text,
            sandbox_face_check: "review".into(),
            ca_algorithm: "sm2".into(),
            ca_policy_oid: String::new(),
            hsm_module: String::new(),
            hsm_token: String::new(),
            hsm_pin_file: String::new(),
            hsm_pin: String::new(),
            providers: ProviderChoice::default(),
            wechatpay: WechatPaySection::default(),
            wechat_login: WechatLoginSection::default(),
            alipay: AlipaySection::default(),
            tencent: TencentSection::default(),
            sf: SfSection::default(),
            nuonuo: NuonuoSection::default(),
            ukey: crate::ukey::UkeySection::default(),
            blobs: BlobsSection::default(),
            retention: RetentionSection::default(),
            secret_env: Default::default(),
        }
    }
}

/// `[retention]`: how long personal data is kept (the defaults are the lawful ones).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSection {
    /// Days the materials of a cancelled or refunded order are kept after it closed.
    pub closed_order_days: u32,
    /// Years identity materials are kept after the order's last certificate expired; at least 5
    /// (Electronic Signature Law art. 24).
    pub years_after_certificate_expiry: u32,
}

impl Default for RetentionSection {
    fn default() -> RetentionSection {
        let lawful = yiqian_app::retention::RetentionPolicy::default();
        RetentionSection {
            closed_order_days: lawful.closed_order_days,
            years_after_certificate_expiry: lawful.years_after_certificate_expiry,
        }
    }
}

impl Config {
    /// The retention periods, refused when shorter than the law allows.
    pub fn retention(&self) -> Result<yiqian_app::retention::RetentionPolicy, ConfigError> {
        let r = &self.retention;
        let minimum = yiqian_app::retention::LAWFUL_MINIMUM_YEARS;
        if r.years_after_certificate_expiry < minimum {
            return Err(ConfigError::Value {
                key: "retention.years_after_certificate_expiry",
                message: format!(
                    "{} is less than the {minimum} years the Electronic Signature Law (art. 24) requires",
                    r.years_after_certificate_expiry
                ),
            });
        }
        Ok(yiqian_app::retention::RetentionPolicy {
            closed_order_days: r.closed_order_days,
            years_after_certificate_expiry: r.years_after_certificate_expiry,
        })
    }
}

/// `[blobs]`: where the sealed photos, videos, signatures and invoice PDFs are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlobsSection {
    /// `local` (the data directory's `blobs/`) or `s3` (an S3-compatible bucket).
    pub store: String,
    /// `s3`: the service's base URL (with virtual-hosted requests, including the bucket).
    pub endpoint: String,
    /// `s3`: the bucket.
    pub bucket: String,
    /// `s3`: the bucket's region.
    pub region: String,
    /// `s3`: path-style requests (MinIO, Ceph) rather than virtual-hosted ones (COS, OSS).
    pub path_style: bool,
    /// `s3`: a prefix for every object key.
    pub prefix: String,
    /// `s3`: the access key id.
    pub access_key_id: String,
    /// `s3`: file holding the secret access key; or `YIQIAN_S3_SECRET_ACCESS_KEY`.
    pub secret_access_key_file: String,
}

impl Default for BlobsSection {
    fn default() -> Self {
        BlobsSection {
            store: "local".into(),
            endpoint: String::new(),
            bucket: String::new(),
            region: "us-east-1".into(),
            path_style: true,
            prefix: String::new(),
            access_key_id: String::new(),
            secret_access_key_file: String::new(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line, with the request's span (its id, method and route).
    Json,
}

/// The environment variable holding the object storage's secret access key.
pub const S3_SECRET_VARIABLE: &str = "YIQIAN_S3_SECRET_ACCESS_KEY";

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("config file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An environment variable is not valid.
    #[error("environment variable {name} is invalid: {message}")]
    Env {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A setting has a value that cannot work.
    #[error("setting {key} is invalid: {message}")]
    Value {
        /// The setting.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A provider that does not exist was chosen.
    #[error("unknown {service} provider {name:?}; available: {available}")]
    Provider {
        /// Which service.
        service: &'static str,
        /// The name given.
        name: String,
        /// The choices.
        available: String,
    },
    /// A chosen provider's configuration cannot work.
    #[error("{0}")]
    Vendor(#[from] yiqian_providers::ConfigError),
}

impl Config {
    /// Defaults, overlaid by `file` (if any) and then by the environment.
    pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })?
            }
            None => Config::default(),
        };
        if let Some(v) = env("YIQIAN_LISTEN") {
            config.listen = v
                .parse()
                .map_err(|_| ConfigError::Env { name: "YIQIAN_LISTEN", message: "expected HOST:PORT".into() })?;
        }
        if let Some(v) = env("YIQIAN_DATA") {
            config.data_dir = v.into();
        }
        if let Some(v) = env("YIQIAN_DATABASE_URL") {
            config.database_url = v;
        }
        if let Some(v) = env("YIQIAN_PUBLIC_URL") {
            config.public_url = v;
        }
        if let Some(v) = env("YIQIAN_MASTER_KEY") {
            config.master_key = v;
        }
        if let Some(v) = env("YIQIAN_MASTER_KEY_FILE") {
            config.master_key_file = v;
        }
        if let Some(v) = env("YIQIAN_PIN_ESCROW_KEY") {
            config.pin_escrow_key = v;
        }
        if let Some(v) = env("YIQIAN_PIN_ESCROW_KEY_FILE") {
            config.pin_escrow_key_file = v;
        }
        if let Some(v) = env("YIQIAN_SANDBOX_GATEWAY_KEY") {
            config.sandbox_gateway_key = v;
        }
        if let Some(v) = env("YIQIAN_SANDBOX_GATEWAY_KEY_FILE") {
            config.sandbox_gateway_key_file = v;
        }
        if let Some(v) = env("YIQIAN_DEV_MODE") {
            config.dev_mode = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(v) = env("YIQIAN_CUSTOMER_SERVICE") {
            config.customer_service = v;
        }
        if let Some(v) = env("YIQIAN_PAY_TTL_MINUTES") {
            config.pay_ttl_minutes = v
                .parse()
                .map_err(|_| ConfigError::Env { name: "YIQIAN_PAY_TTL_MINUTES", message: "expected minutes".into() })?;
        }
        if let Some(v) = env("YIQIAN_LOG_FORMAT") {
            config.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Env {
                        name: "YIQIAN_LOG_FORMAT",
                        message: "expected text or json".into(),
                    });
                }
            };
        }
        if let Some(v) = env("YIQIAN_METRICS_LISTEN") {
            config.metrics_listen = Some(v.parse().map_err(|_| ConfigError::Env {
                name: "YIQIAN_METRICS_LISTEN",
                message: "expected HOST:PORT".into(),
            })?);
        }
        if let Some(v) = env("YIQIAN_CONCURRENT_UPLOADS") {
            config.concurrent_uploads = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| ConfigError::Env {
                name: "YIQIAN_CONCURRENT_UPLOADS",
                message: "expected a number of uploads, at least 1".into(),
            })?;
        }
        if let Some(v) = env("YIQIAN_CA_ALGORITHM") {
            config.ca_algorithm = v;
        }
        if let Some(v) = env("YIQIAN_HSM_MODULE") {
            config.hsm_module = v;
        }
        if let Some(v) = env("YIQIAN_HSM_TOKEN") {
            config.hsm_token = v;
        }
        if let Some(v) = env("YIQIAN_HSM_PIN_FILE") {
            config.hsm_pin_file = v;
        }
        if let Some(v) = env("YIQIAN_HSM_PIN") {
            config.hsm_pin = v;
        }
        if let Some(v) = env("YIQIAN_BLOB_STORE") {
            config.blobs.store = v;
        }
        if let Some(v) = env("YIQIAN_S3_ENDPOINT") {
            config.blobs.endpoint = v;
        }
        if let Some(v) = env("YIQIAN_S3_BUCKET") {
            config.blobs.bucket = v;
        }
        if let Some(v) = env("YIQIAN_S3_REGION") {
            config.blobs.region = v;
        }
        if let Some(v) = env("YIQIAN_S3_ACCESS_KEY_ID") {
            config.blobs.access_key_id = v;
        }
        if let Some(v) = env("YIQIAN_SANDBOX_FACE_CHECK") {
            config.sandbox_face_check = v;
        }
        for name in SECRET_VARIABLES.iter().chain(&[
            crate::ukey::FACTORY_SO_PIN_VARIABLE,
            crate::ukey::DEVICE_AUTH_KEY_VARIABLE,
            S3_SECRET_VARIABLE,
        ]) {
            if let Some(v) = env(name) {
                config.secret_env.insert((*name).to_owned(), v);
            }
        }
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if !matches!(self.sandbox_face_check.as_str(), "review" | "pass") {
            return Err(ConfigError::Value {
                key: "sandbox_face_check",
                message: format!("{:?} is not one of review, pass", self.sandbox_face_check),
            });
        }
        self.ca_algorithm()?;
        self.ca_policy_oid()?;
        self.s3()?;
        if !crate::ukey::READERS.contains(&self.ukey.reader.as_str()) {
            return Err(ConfigError::Value {
                key: "ukey.reader",
                message: format!("{:?} is not one of {}", self.ukey.reader, crate::ukey::READERS.join(", ")),
            });
        }
        for (service, name, available) in self.providers.services() {
            if !available.contains(&name) {
                return Err(ConfigError::Provider { service, name: name.to_owned(), available: available.join(", ") });
            }
        }
        Ok(())
    }

    /// The CA algorithm in force.
    pub fn ca_algorithm(&self) -> Result<yiqian_pki::Algorithm, ConfigError> {
        self.ca_algorithm.parse().map_err(|_| ConfigError::Value {
            key: "ca_algorithm",
            message: format!("{:?} is not one of sm2, p256, rsa3072", self.ca_algorithm),
        })
    }

    /// The certificate policy OID, if configured.
    pub fn ca_policy_oid(&self) -> Result<Option<yiqian_pki::const_oid::ObjectIdentifier>, ConfigError> {
        if self.ca_policy_oid.is_empty() {
            return Ok(None);
        }
        self.ca_policy_oid.parse().map(Some).map_err(|_| ConfigError::Value {
            key: "ca_policy_oid",
            message: format!("{:?} is not a dotted object identifier", self.ca_policy_oid),
        })
    }

    /// The HSM holding the CA keys, if one is configured.
    pub fn hsm(&self) -> Result<Option<yiqian_app::authority::HsmConfig>, ConfigError> {
        if self.hsm_module.is_empty() {
            return Ok(None);
        }
        let invalid = |message: String| ConfigError::Value { key: "hsm_module", message };
        if self.hsm_token.is_empty() {
            return Err(invalid("an HSM needs hsm_token (the token's label)".into()));
        }
        let pin = if !self.hsm_pin.is_empty() {
            self.hsm_pin.clone()
        } else if !self.hsm_pin_file.is_empty() {
            std::fs::read_to_string(&self.hsm_pin_file)
                .map_err(|e| invalid(format!("cannot read hsm_pin_file {}: {e}", self.hsm_pin_file)))?
                .trim()
                .to_owned()
        } else {
            return Err(invalid("an HSM needs its user PIN in YIQIAN_HSM_PIN or hsm_pin_file".into()));
        };
        Ok(Some(yiqian_app::authority::HsmConfig {
            module: self.hsm_module.clone().into(),
            token_label: self.hsm_token.clone(),
            pin: pin.into(),
        }))
    }

    /// The bucket blobs are kept in, when `[blobs] store = "s3"`; `None` for the local
    /// directory.
    pub fn s3(&self) -> Result<Option<yiqian_store::blobs::S3Settings>, ConfigError> {
        let b = &self.blobs;
        let invalid = |key: &'static str, message: String| ConfigError::Value { key, message };
        match b.store.as_str() {
            "local" => return Ok(None),
            "s3" => {}
            other => return Err(invalid("blobs.store", format!("{other:?} is not one of local, s3"))),
        }
        if !(b.endpoint.starts_with("https://") || b.endpoint.starts_with("http://")) {
            return Err(invalid("blobs.endpoint", format!("{:?} is not an http(s) URL", b.endpoint)));
        }
        if b.bucket.is_empty() {
            return Err(invalid("blobs.bucket", "the bucket is not set".into()));
        }
        let secret = match self.secret_env.get(S3_SECRET_VARIABLE) {
            Some(v) => v.clone(),
            None if !b.secret_access_key_file.is_empty() => std::fs::read_to_string(&b.secret_access_key_file)
                .map_err(|e| {
                    invalid("blobs.secret_access_key_file", format!("cannot read {}: {e}", b.secret_access_key_file))
                })?
                .trim()
                .to_owned(),
            None => {
                return Err(invalid(
                    "blobs.secret_access_key_file",
                    format!("set {S3_SECRET_VARIABLE} or blobs.secret_access_key_file"),
                ));
            }
        };
        Ok(Some(yiqian_store::blobs::S3Settings {
            endpoint: b.endpoint.clone(),
            bucket: b.bucket.clone(),
            region: b.region.clone(),
            path_style: b.path_style,
            prefix: b.prefix.clone(),
            access_key_id: b.access_key_id.clone(),
            secret_access_key: secret,
        }))
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}?mode=rwc", self.data_dir.join("yiqian.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// The public URL in force.
    pub fn public_url(&self) -> String {
        if self.public_url.is_empty() {
            format!("http://{}", self.listen)
        } else {
            self.public_url.trim_end_matches('/').into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("yiqian.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ncustomer_service = \"95000\"\n[providers]\nsms = \"sandbox\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), |k| (k == "YIQIAN_LISTEN").then(|| "127.0.0.1:9100".to_owned())).unwrap();
        assert_eq!(c.listen.port(), 9100);
        assert_eq!(c.customer_service, "95000");
        assert_eq!(c.public_url(), "http://127.0.0.1:9100");
        assert!(c.database_url().starts_with("sqlite://"));
    }

    #[test]
    fn refuses_unknown_keys_and_providers() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("yiqian.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        assert!(matches!(Config::load(Some(&file), |_| None), Err(ConfigError::Parse { .. })));
        std::fs::write(&file, "[providers]\npayment_wechat = \"tenpay\"\n").unwrap();
        assert!(matches!(Config::load(Some(&file), |_| None), Err(ConfigError::Provider { .. })));
        assert!(matches!(
            Config::load(None, |k| (k == "YIQIAN_LISTEN").then(|| "nope".into())),
            Err(ConfigError::Env { .. })
        ));
    }
}
