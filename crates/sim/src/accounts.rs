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

impl SimAccounts {
    /// The vendor part of a `yiqian` configuration file that points every real provider at
    /// stand-ins served at `sim_url`, with these accounts' files in `dir` (as written by
    /// [`SimAccounts::write`]). `certificate_modes` chooses WeChat Pay's platform certificates
    /// and Alipay's certificate mode instead of their public keys. SMS template ids are
    /// [`sms_template_ids`].
    pub fn yiqian_config(&self, dir: &Path, sim_url: &str, certificate_modes: bool) -> String {
        let file = |name: &str| toml_string(&dir.join(name).display().to_string());
        let w = &self.wechatpay;
        let a = &self.alipay;
        let (wechat_keys, alipay_keys) = if certificate_modes {
            (
                format!("platform_cert_files = [{}]\n", file("wechatpay_platform_cert.pem")),
                format!(
                    "app_cert_file = {}\nalipay_cert_file = {}\nalipay_root_cert_file = {}\n",
                    file("alipay_app_cert.pem"),
                    file("alipay_cert.pem"),
                    file("alipay_root_cert.pem")
                ),
            )
        } else {
            (
                format!(
                    "public_key_id = {}\npublic_key_file = {}\n",
                    toml_string(&w.public_key_id),
                    file("wechatpay_public_key.pem")
                ),
                format!("alipay_public_key_file = {}\n", file("alipay_public_key.pem")),
            )
        };
        let templates: String = sms_template_ids().iter().map(|(name, id)| format!("{name} = \"{id}\"\n")).collect();
        let url = |path: &str| toml_string(&format!("{}{path}", sim_url.trim_end_matches('/')));
        format!(
            r#"# Every outside service pointed at the yiqian-sim stand-ins at {sim_url}.
[providers]
payment_wechat = "wechatpay"
payment_alipay = "alipay"
sms = "tencent"
identity = "tencent"
courier = "sf"
invoice = "nuonuo"
wechat_login = "wechat"

[wechatpay]
base_url = {base}
mchid = {mchid}
appid = {appid}
merchant_serial = {serial}
merchant_key_file = {merchant_key}
apiv3_key_file = {apiv3}
{wechat_keys}
[wechat_login]
appid = {appid}
app_secret_file = {app_secret}
scope = "snsapi_base"
authorize_base = {base}
api_base = {base}

[alipay]
gateway_url = {gateway}
app_id = {app_id}
seller_id = {seller_id}
app_private_key_file = {app_key}
{alipay_keys}
[tencent]
secret_id = {secret_id}
secret_key_file = {secret_key}
region = "ap-guangzhou"
endpoint = {base}
sms_sdk_app_id = {sms_app}
sms_sign_name = {sign_name}

[tencent.sms_templates]
{templates}
[sf]
base_url = {sf_url}
partner_id = {partner}
checkword_file = {checkword}
monthly_card = {card}
sender_company = "宜签数字证书认证中心"
sender_contact = "制证组"
sender_mobile = "13900139000"
sender_province = "广东省"
sender_city = "深圳市"
sender_county = "南山区"
sender_address = "科技园北区2栋"

[nuonuo]
base_url = {nuonuo_url}
app_key = {app_key_nn}
app_secret_file = {nn_secret}
access_token_file = {nn_token}
saler_tax_num = {tax_num}
saler_tel = "0755-88888888"
saler_address = "深圳市南山区科技园北区2栋"
clerk = "财务一"
goods_code = "3040201990000000000"
tax_rate = "0.06"
"#,
            base = toml_string(sim_url.trim_end_matches('/')),
            mchid = toml_string(&w.mchid),
            appid = toml_string(&w.appid),
            serial = toml_string(&w.merchant_serial),
            merchant_key = file("wechatpay_merchant_key.pem"),
            apiv3 = file("wechatpay_apiv3_key"),
            app_secret = file("wechat_app_secret"),
            gateway = url("/gateway.do"),
            app_id = toml_string(&a.app_id),
            seller_id = toml_string(&a.seller_id),
            app_key = file("alipay_app_private_key.pem"),
            secret_id = toml_string(&self.tencent.secret_id),
            secret_key = file("tencent_secret_key"),
            sms_app = toml_string(&self.tencent.sms_sdk_app_id),
            sign_name = toml_string(&self.tencent.sms_sign_name),
            sf_url = url("/std/service"),
            partner = toml_string(&self.sf.partner_id),
            checkword = file("sf_checkword"),
            card = toml_string(&self.sf.monthly_card),
            nuonuo_url = url("/open/v1/services"),
            app_key_nn = toml_string(&self.nuonuo.app_key),
            nn_secret = file("nuonuo_app_secret"),
            nn_token = file("nuonuo_access_token"),
            tax_num = toml_string(&self.nuonuo.saler_tax_num),
        )
    }
}

/// The SMS template ids of a stand-in deployment, by template name: `100001`, `100002`, … in
/// the order of [`yiqian_providers::sms::SmsTemplate::NAMES`].
pub fn sms_template_ids() -> std::collections::BTreeMap<String, String> {
    yiqian_providers::sms::SmsTemplate::NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| ((*name).to_owned(), (100_001 + i).to_string()))
        .collect()
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parses the first certificate of a PEM text (for the stand-ins' own use).
pub fn parse_certificate(pem: &str) -> Result<x509_cert::Certificate, AccountsError> {
    let (_, der) = yiqian_pki::from_pem(pem.as_bytes())?;
    x509_cert::Certificate::from_der(&der)
        .map_err(|e| yiqian_pki::PkiError::Encoding(format!("certificate: {e}")).into())
}
