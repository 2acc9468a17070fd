//! The accounts a stand-in deployment uses: merchant and platform keys, certificates, app
//! secrets. Generated fresh (nothing here is a real credential), written to a directory as PEM
//! files plus `accounts.json`, and read back by both the stand-ins and the service's
//! configuration.

use der::{Decode, Encode};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, SystemTime};
use yiqian_pki::{Algorithm, CertificateRequest, IssuanceOptions, Profile, SerialNumber, Signer, SoftwareKey};

/// WeChat Pay merchant and platform credentials (and the official account for web login).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WechatPayAccount {
    /// 商户号.
    pub mchid: String,
    /// The official account's AppID bound to the merchant.
    pub appid: String,
    /// The official account's AppSecret (web authorisation).
    pub app_secret: String,
    /// Serial number (hex) of the merchant API certificate.
    pub merchant_serial: String,
    /// The merchant's private key (PKCS#8 PEM): the service signs requests with it.
    pub merchant_key_pem: String,
    /// The merchant's public key (SPKI PEM): the stand-in verifies requests with it.
    pub merchant_public_pem: String,
    /// The WeChat Pay private key (PKCS#8 PEM): the stand-in signs answers and notifications.
    pub platform_key_pem: String,
    /// The WeChat Pay public key (SPKI PEM), public-key mode.
    pub platform_public_pem: String,
    /// Its id, `PUB_KEY_ID_…` (the `Wechatpay-Serial` in public-key mode).
    pub public_key_id: String,
    /// A platform certificate for the same key (certificate mode), PEM.
    pub platform_cert_pem: String,
    /// Its serial (upper-case hex), the `Wechatpay-Serial` in certificate mode.
    pub platform_cert_serial: String,
    /// The APIv3 key (32 ASCII characters).
    pub apiv3_key: String,
}

/// Alipay application credentials in both public-key and certificate modes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlipayAccount {
    /// The application's app_id.
    pub app_id: String,
    /// The seller's Alipay user id (`seller_id`, 2088…).
    pub seller_id: String,
    /// The application's private key (PKCS#8 PEM): the service signs with it.
    pub app_private_pem: String,
    /// The application's public key (SPKI PEM): the stand-in verifies with it.
    pub app_public_pem: String,
    /// Alipay's private key (PKCS#8 PEM): the stand-in signs with it.
    pub alipay_private_pem: String,
    /// Alipay's public key (SPKI PEM).
    pub alipay_public_pem: String,
    /// Certificate mode: the root certificate bundle (PEM).
    pub root_cert_pem: String,
    /// Certificate mode: the application's public-key certificate (PEM), issued by the root.
    pub app_cert_pem: String,
    /// Certificate mode: Alipay's public-key certificate (PEM), issued by the root.
    pub alipay_cert_pem: String,
}

/// Tencent Cloud API credentials and SMS application.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TencentAccount {
    /// SecretId (`AKID…`).
    pub secret_id: String,
    /// SecretKey.
    pub secret_key: String,
    /// SMS application id (`1400…`).
    pub sms_sdk_app_id: String,
    /// The approved SMS signature text.
    pub sms_sign_name: String,
}

/// SF Express customer credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SfAccount {
    /// 顾客编码 (partnerID).
    pub partner_id: String,
    /// 校验码 (checkword).
    pub checkword: String,
    /// 月结卡号.
    pub monthly_card: String,
}

/// Nuonuo open-platform credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NuonuoAccount {
    /// appKey.
    pub app_key: String,
    /// appSecret.
    pub app_secret: String,
    /// The access token of the seller's authorisation.
    pub access_token: String,
    /// The seller's tax number (the sandbox's `339902999999789113`).
    pub saler_tax_num: String,
}

/// Every vendor account of a stand-in deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimAccounts {
    /// WeChat Pay and the official account.
    pub wechatpay: WechatPayAccount,
    /// Alipay.
    pub alipay: AlipayAccount,
    /// Tencent Cloud.
    pub tencent: TencentAccount,
    /// SF Express.
    pub sf: SfAccount,
    /// Nuonuo.
    pub nuonuo: NuonuoAccount,
}

/// Why accounts could not be made, written or read.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// Key or certificate generation failed.
    #[error("cannot generate stand-in keys: {0}")]
    Pki(#[from] yiqian_pki::PkiError),
    /// The directory could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// `accounts.json` is not valid.
    #[error("{path} is not valid: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len).map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())])).collect()
}

fn digits(len: usize) -> String {
    random_string(b"0123456789", len)
}

fn alnum(len: usize) -> String {
    random_string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", len)
}

struct KeyPem {
    key: SoftwareKey,
    private_pem: String,
    public_pem: String,
}

fn rsa_key() -> Result<KeyPem, AccountsError> {
    let key = SoftwareKey::generate(Algorithm::Rsa3072)?;
    let private_pem = yiqian_pki::to_pem("PRIVATE KEY", &key.to_pkcs8_der()?);
    let spki = key.public_key().to_der().map_err(|e| yiqian_pki::PkiError::Encoding(format!("public key: {e}")))?;
    let public_pem = yiqian_pki::to_pem("PUBLIC KEY", &spki);
    Ok(KeyPem { key, private_pem, public_pem })
}

/// A certificate for `subject_key`, issued by `issuer` (or self-signed), valid from an hour
/// ago for five years, with the given serial.
fn certificate(
    common_name: &str,
    subject_key: &SoftwareKey,
    serial: &SerialNumber,
    issuer: Option<(&x509_cert::Certificate, &SoftwareKey)>,
) -> Result<x509_cert::Certificate, AccountsError> {
    let now = SystemTime::now();
    let options = IssuanceOptions::default();
    let request = CertificateRequest {
        profile: if issuer.is_some() { Profile::IssuingCa } else { Profile::Root },
        subject: yiqian_pki::personal_subject(common_name)?,
        public_key: subject_key.public_key().clone(),
        serial: serial.clone(),
        not_before: now - Duration::from_secs(3600),
        not_after: now + Duration::from_secs(5 * 365 * 86400) - Duration::from_secs(issuer.map_or(0, |_| 60)),
        issuer: issuer.map(|(c, _)| c),
        options: &options,
    };
    let signer: &dyn Signer = issuer.map_or(subject_key, |(_, k)| k);
    Ok(yiqian_pki::issue(&request, signer)?)
}

fn cert_pem(cert: &x509_cert::Certificate) -> Result<String, AccountsError> {
    let der = cert.to_der().map_err(|e| yiqian_pki::PkiError::Encoding(format!("certificate: {e}")))?;
    Ok(yiqian_pki::to_pem("CERTIFICATE", &der))
}

impl SimAccounts {
    /// Fresh accounts with new RSA keys (a few seconds: five RSA-3072 keys).
    pub fn generate() -> Result<SimAccounts, AccountsError> {
        let merchant = rsa_key()?;
        let platform = rsa_key()?;
        let platform_serial = SerialNumber::random();
        let platform_cert = certificate("WeChat Pay Stand-in Platform", &platform.key, &platform_serial, None)?;
        let wechatpay = WechatPayAccount {
            mchid: format!("19{}", digits(8)),
            appid: format!("wx{}", hex::encode(rand::random::<[u8; 8]>())),
            app_secret: hex::encode(rand::random::<[u8; 16]>()),
            merchant_serial: hex::encode_upper(rand::random::<[u8; 20]>()),
            merchant_key_pem: merchant.private_pem,
            merchant_public_pem: merchant.public_pem,
            platform_key_pem: platform.private_pem,
            platform_public_pem: platform.public_pem,
            public_key_id: format!("PUB_KEY_ID_0119{}", digits(28)),
            platform_cert_pem: cert_pem(&platform_cert)?,
            platform_cert_serial: platform_serial.to_hex().to_ascii_uppercase(),
            apiv3_key: alnum(32),
        };

        let app = rsa_key()?;
        let alipay_key = rsa_key()?;
        let root_key = rsa_key()?;
        let root = certificate("Alipay Stand-in Root", &root_key.key, &SerialNumber::random(), None)?;
        let app_cert = certificate(
            "Alipay Stand-in Application",
            &app.key,
            &SerialNumber::random(),
            Some((&root, &root_key.key)),
        )?;
        let alipay_cert = certificate(
            "Alipay Stand-in Gateway",
            &alipay_key.key,
            &SerialNumber::random(),
            Some((&root, &root_key.key)),
        )?;
        let alipay = AlipayAccount {
            app_id: format!("2021{}", digits(12)),
            seller_id: format!("2088{}", digits(12)),
            app_private_pem: app.private_pem,
            app_public_pem: app.public_pem,
            alipay_private_pem: alipay_key.private_pem,
            alipay_public_pem: alipay_key.public_pem,
            root_cert_pem: cert_pem(&root)?,
            app_cert_pem: cert_pem(&app_cert)?,
            alipay_cert_pem: cert_pem(&alipay_cert)?,
        };

        Ok(SimAccounts {
            wechatpay,
            alipay,
            tencent: TencentAccount {
                secret_id: format!("AKID{}", alnum(32)),
                secret_key: alnum(32),
                sms_sdk_app_id: format!("1400{}", digits(6)),
                sms_sign_name: "宜签".into(),
            },
            sf: SfAccount { partner_id: format!("YQ{}", digits(8)), checkword: alnum(32), monthly_card: digits(10) },
            nuonuo: NuonuoAccount {
                app_key: format!("SD{}", digits(8)),
                app_secret: format!("SD{}", alnum(14).to_ascii_uppercase()),
                access_token: alnum(32).to_ascii_lowercase(),
                saler_tax_num: "339902999999789113".into(),
            },
        })
    }

    /// Writes `accounts.json` and one file per key, certificate and secret into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), AccountsError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| AccountsError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let w = &self.wechatpay;
        let a = &self.alipay;
        let files: [(&str, &str); 16] = [
            ("wechatpay_merchant_key.pem", &w.merchant_key_pem),
            ("wechatpay_public_key.pem", &w.platform_public_pem),
            ("wechatpay_platform_cert.pem", &w.platform_cert_pem),
            ("wechatpay_apiv3_key", &w.apiv3_key),
            ("wechat_app_secret", &w.app_secret),
            ("alipay_app_private_key.pem", &a.app_private_pem),
            ("alipay_public_key.pem", &a.alipay_public_pem),
            ("alipay_root_cert.pem", &a.root_cert_pem),
            ("alipay_app_cert.pem", &a.app_cert_pem),
            ("alipay_cert.pem", &a.alipay_cert_pem),
            ("tencent_secret_key", &self.tencent.secret_key),
            ("sf_checkword", &self.sf.checkword),
            ("nuonuo_app_secret", &self.nuonuo.app_secret),
            ("nuonuo_access_token", &self.nuonuo.access_token),
            ("tencent_secret_id", &self.tencent.secret_id),
            ("accounts.json", &serde_json::to_string_pretty(self).expect("accounts serialise")),
        ];
        for (name, content) in files {
            let path = dir.join(name);
            std::fs::write(&path, content).map_err(io(&path))?;
        }
        Ok(())
    }

    /// Reads `accounts.json` from `dir`.
    pub fn read(dir: &Path) -> Result<SimAccounts, AccountsError> {
        let path = dir.join("accounts.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|source| AccountsError::Io { path: path.display().to_string(), source })?;
        serde_json::from_str(&text)
            .map_err(|e| AccountsError::Invalid { path: path.display().to_string(), message: e.to_string() })
    }
}

/// Parses the first certificate of a PEM text (for the stand-ins' own use).
pub fn parse_certificate(pem: &str) -> Result<x509_cert::Certificate, AccountsError> {
    let (_, der) = yiqian_pki::from_pem(pem.as_bytes())?;
    x509_cert::Certificate::from_der(&der)
        .map_err(|e| yiqian_pki::PkiError::Encoding(format!("certificate: {e}")).into())
}
