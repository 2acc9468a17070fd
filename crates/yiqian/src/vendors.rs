//! The vendor sections of the configuration (`[wechatpay]`, `[wechat_login]`, `[alipay]`,
//! `[tencent]`, `[sf]`, `[nuonuo]`), how their secrets are found — an environment variable
//! holding the value, else a file named in the section, never the TOML itself —, and the
//! construction of the adapters chosen under `[providers]`. Every adapter validates its
//! configuration when built (keys parse, certificates are current, URLs are well formed)
//! without calling anyone; `yiqian providers check` shows the result.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Which implementation each outside service uses. `sandbox` (or `manual`, `off`) is the
/// embedded default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderChoice {
    /// 微信支付: `sandbox` or `wechatpay`.
    pub payment_wechat: String,
    /// 支付宝: `sandbox` or `alipay`.
    pub payment_alipay: String,
    /// SMS: `sandbox` or `tencent`.
    pub sms: String,
    /// ID card OCR and face checks: `sandbox` or `tencent`.
    pub identity: String,
    /// Courier: `manual` (staff enter waybills) or `sf`.
    pub courier: String,
    /// E-invoices: `manual` (finance uploads them) or `nuonuo`.
    pub invoice: String,
    /// WeChat web authorisation: `off` or `wechat`.
    pub wechat_login: String,
}

impl Default for ProviderChoice {
    fn default() -> Self {
        ProviderChoice {
            payment_wechat: "sandbox".into(),
            payment_alipay: "sandbox".into(),
            sms: "sandbox".into(),
            identity: "sandbox".into(),
            courier: "manual".into(),
            invoice: "manual".into(),
            wechat_login: "off".into(),
        }
    }
}

impl ProviderChoice {
    /// Each service, its choice, and the choices that exist.
    pub fn services(&self) -> [(&'static str, &str, &'static [&'static str]); 7] {
        [
            ("payment_wechat", &self.payment_wechat, &["sandbox", "wechatpay"]),
            ("payment_alipay", &self.payment_alipay, &["sandbox", "alipay"]),
            ("sms", &self.sms, &["sandbox", "tencent"]),
            ("identity", &self.identity, &["sandbox", "tencent"]),
            ("courier", &self.courier, &["manual", "sf"]),
            ("invoice", &self.invoice, &["manual", "nuonuo"]),
            ("wechat_login", &self.wechat_login, &["off", "wechat"]),
        ]
    }
}

/// `[wechatpay]`: WeChat Pay API v3, direct merchant.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WechatPaySection {
    /// API host.
    pub base_url: String,
    /// 商户号.
    pub mchid: String,
    /// The official account's AppID bound to the merchant.
    pub appid: String,
    /// Serial number of the merchant API certificate.
    pub merchant_serial: String,
    /// The merchant private key (`apiclient_key.pem`); or `YIQIAN_WECHATPAY_MERCHANT_KEY`.
    pub merchant_key_file: String,
    /// The APIv3 key; or `YIQIAN_WECHATPAY_APIV3_KEY`.
    pub apiv3_key_file: String,
    /// WeChat Pay public-key mode: the key's id (`PUB_KEY_ID_…`).
    pub public_key_id: String,
    /// WeChat Pay public-key mode: the public key file.
    pub public_key_file: String,
    /// Platform-certificate mode: certificate files (refreshed from the API every 12 hours).
    pub platform_cert_files: Vec<String>,
}

impl Default for WechatPaySection {
    fn default() -> Self {
        WechatPaySection {
            base_url: "https://api.mch.weixin.qq.com".into(),
            mchid: String::new(),
            appid: String::new(),
            merchant_serial: String::new(),
            merchant_key_file: String::new(),
            apiv3_key_file: String::new(),
            public_key_id: String::new(),
            public_key_file: String::new(),
            platform_cert_files: Vec::new(),
        }
    }
}

/// `[wechat_login]`: WeChat web authorisation of the official account.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WechatLoginSection {
    /// The official account's AppID (default: `wechatpay.appid`).
    pub appid: String,
    /// The AppSecret; or `YIQIAN_WECHAT_APP_SECRET`.
    pub app_secret_file: String,
    /// `snsapi_base` (silent, openid only) or `snsapi_userinfo`.
    pub scope: String,
    /// Where the browser is sent to authorise.
    pub authorize_base: String,
    /// Where codes are exchanged.
    pub api_base: String,
}

impl Default for WechatLoginSection {
    fn default() -> Self {
        WechatLoginSection {
            appid: String::new(),
            app_secret_file: String::new(),
            scope: "snsapi_base".into(),
            authorize_base: "https://open.weixin.qq.com".into(),
            api_base: "https://api.weixin.qq.com".into(),
        }
    }
}

/// `[alipay]`: the Alipay open platform application.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlipaySection {
    /// The gateway.
    pub gateway_url: String,
    /// The application's app_id.
    pub app_id: String,
    /// The seller's Alipay user id (2088…), checked in notifications when set.
    pub seller_id: String,
    /// The application private key; or `YIQIAN_ALIPAY_APP_PRIVATE_KEY`.
    pub app_private_key_file: String,
    /// Public-key mode: Alipay's public key.
    pub alipay_public_key_file: String,
    /// Certificate mode: the application's public-key certificate.
    pub app_cert_file: String,
    /// Certificate mode: Alipay's public-key certificate.
    pub alipay_cert_file: String,
    /// Certificate mode: Alipay's root certificate bundle.
    pub alipay_root_cert_file: String,
}

impl Default for AlipaySection {
    fn default() -> Self {
        AlipaySection {
            gateway_url: "https://openapi.alipay.com/gateway.do".into(),
            app_id: String::new(),
            seller_id: String::new(),
            app_private_key_file: String::new(),
            alipay_public_key_file: String::new(),
            app_cert_file: String::new(),
            alipay_cert_file: String::new(),
            alipay_root_cert_file: String::new(),
        }
    }
}

/// `[tencent]`: Tencent Cloud API credentials, SMS application and templates.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TencentSection {
    /// SecretId.
    pub secret_id: String,
    /// SecretKey; or `YIQIAN_TENCENT_SECRET_KEY`.
    pub secret_key_file: String,
    /// Region, e.g. `ap-guangzhou`.
    pub region: String,
    /// One base URL for every service instead of `https://{service}.tencentcloudapi.com`.
    pub endpoint: String,
    /// SMS application id.
    pub sms_sdk_app_id: String,
    /// The approved SMS signature.
    pub sms_sign_name: String,
    /// Template id per message (`verification_code`, `paid`, … — all of them).
    pub sms_templates: BTreeMap<String, String>,
}

impl Default for TencentSection {
    fn default() -> Self {
        TencentSection {
            secret_id: String::new(),
            secret_key_file: String::new(),
            region: "ap-guangzhou".into(),
            endpoint: String::new(),
            sms_sdk_app_id: String::new(),
            sms_sign_name: String::new(),
            sms_templates: BTreeMap::new(),
        }
    }
}

/// `[sf]`: SF Express customer account and the sender's address.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SfSection {
    /// The service URL.
    pub base_url: String,
    /// 顾客编码.
    pub partner_id: String,
    /// 校验码; or `YIQIAN_SF_CHECKWORD`.
    pub checkword_file: String,
    /// 月结卡号.
    pub monthly_card: String,
    /// 1 顺丰特快, 2 顺丰标快, ….
    pub express_type_id: u32,
    /// Sender company.
    pub sender_company: String,
    /// Sender contact.
    pub sender_contact: String,
    /// Sender phone.
    pub sender_mobile: String,
    /// Sender province.
    pub sender_province: String,
    /// Sender city.
    pub sender_city: String,
    /// Sender district.
    pub sender_county: String,
    /// Sender street address.
    pub sender_address: String,
}

impl Default for SfSection {
    fn default() -> Self {
        SfSection {
            base_url: "https://sfapi.sf-express.com/std/service".into(),
            partner_id: String::new(),
            checkword_file: String::new(),
            monthly_card: String::new(),
            express_type_id: 2,
            sender_company: String::new(),
            sender_contact: String::new(),
            sender_mobile: String::new(),
            sender_province: String::new(),
            sender_city: String::new(),
            sender_county: String::new(),
            sender_address: String::new(),
        }
    }
}

/// `[nuonuo]`: the Nuonuo open platform application and the seller.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NuonuoSection {
    /// The service URL.
    pub base_url: String,
    /// appKey.
    pub app_key: String,
    /// appSecret; or `YIQIAN_NUONUO_APP_SECRET`.
    pub app_secret_file: String,
    /// The seller's access token; or `YIQIAN_NUONUO_ACCESS_TOKEN`.
    pub access_token_file: String,
    /// The seller's tax number.
    pub saler_tax_num: String,
    /// The seller's phone.
    pub saler_tel: String,
    /// The seller's address.
    pub saler_address: String,
    /// 开票人 (the name bound to the e-tax login).
    pub clerk: String,
    /// 19-digit tax classification code of the certificate service.
    pub goods_code: String,
    /// The invoice line's goods name (default: the product's name).
    pub goods_name: String,
    /// Tax rate, e.g. `0.06`.
    pub tax_rate: String,
    /// `pc` (数电普票) or `bs` (数电专票).
    pub invoice_line: String,
}

impl Default for NuonuoSection {
    fn default() -> Self {
        NuonuoSection {
            base_url: "https://sdk.nuonuo.com/open/v1/services".into(),
            app_key: String::new(),
            app_secret_file: String::new(),
            access_token_file: String::new(),
            saler_tax_num: String::new(),
            saler_tel: String::new(),
            saler_address: String::new(),
            clerk: String::new(),
            goods_code: String::new(),
            goods_name: String::new(),
            tax_rate: "0.06".into(),
            invoice_line: "pc".into(),
        }
    }
}

/// The environment variables that may hold secrets, captured when the configuration loads.
pub const SECRET_VARIABLES: [&str; 8] = [
    "YIQIAN_WECHATPAY_MERCHANT_KEY",
    "YIQIAN_WECHATPAY_APIV3_KEY",
    "YIQIAN_WECHAT_APP_SECRET",
    "YIQIAN_ALIPAY_APP_PRIVATE_KEY",
    "YIQIAN_TENCENT_SECRET_KEY",
    "YIQIAN_SF_CHECKWORD",
    "YIQIAN_NUONUO_APP_SECRET",
    "YIQIAN_NUONUO_ACCESS_TOKEN",
];

use crate::config::{Config, ConfigError};
use std::sync::Arc;
use yiqian_providers::alipay::{AlipayConfig, AlipayGateway, AlipayKeyMode};
use yiqian_providers::courier::Courier;
use yiqian_providers::identity::IdentityVerifier;
use yiqian_providers::invoice::InvoiceIssuer;
use yiqian_providers::nuonuo::{NuonuoConfig, NuonuoIssuer};
use yiqian_providers::payment::PaymentGateway;
use yiqian_providers::sf::{SfConfig, SfContact, SfCourier};
use yiqian_providers::sms::SmsSender;
use yiqian_providers::tencent::{TencentCloud, TencentCloudConfig, TencentIdentity, TencentSms, TencentSmsConfig};
use yiqian_providers::wechat_oauth::{OAuthScope, WechatOAuth, WechatOAuthConfig};
use yiqian_providers::wechatpay::{WechatPayConfig, WechatPayGateway, WechatPayPublicKey};

/// Our webhook for WeChat Pay notifications (payments and refunds).
pub const WECHATPAY_NOTIFY_PATH: &str = "/notify/wechatpay";
/// Our webhook for Alipay notifications.
pub const ALIPAY_NOTIFY_PATH: &str = "/notify/alipay";
/// Our webhook for Nuonuo's invoice results.
pub const NUONUO_CALLBACK_PATH: &str = "/notify/invoice/nuonuo";

/// The vendor adapters a configuration chooses (`None`: the embedded default).
#[derive(Default)]
pub struct VendorAdapters {
    /// WeChat Pay, serving 微信支付.
    pub wechatpay: Option<Arc<WechatPayGateway>>,
    /// Alipay, serving 支付宝.
    pub alipay: Option<Arc<AlipayGateway>>,
    /// Tencent Cloud SMS.
    pub sms: Option<Arc<dyn SmsSender>>,
    /// Tencent Cloud OCR and FaceID.
    pub identity: Option<Arc<dyn IdentityVerifier>>,
    /// SF Express.
    pub courier: Option<Arc<dyn Courier>>,
    /// Nuonuo.
    pub invoices: Option<Arc<dyn InvoiceIssuer>>,
    /// WeChat web authorisation.
    pub wechat_login: Option<Arc<WechatOAuth>>,
    /// What was checked, one line per chosen vendor (certificate expiries and the like).
    pub report: Vec<String>,
}

impl VendorAdapters {
    /// The gateway serving 微信支付 when WeChat Pay is chosen.
    pub fn wechat_gateway(&self) -> Option<Arc<dyn PaymentGateway>> {
        self.wechatpay.clone().map(|g| g as Arc<dyn PaymentGateway>)
    }

    /// The gateway serving 支付宝 when Alipay is chosen.
    pub fn alipay_gateway(&self) -> Option<Arc<dyn PaymentGateway>> {
        self.alipay.clone().map(|g| g as Arc<dyn PaymentGateway>)
    }
}

/// Reads a secret: the environment variable `env` when set, else the file named by `file`
/// (trailing whitespace trimmed for one-line secrets; PEM files are used as they are).
fn secret(
    config: &Config,
    provider: &'static str,
    field: &'static str,
    env: &str,
    file: &str,
) -> Result<String, ConfigError> {
    if let Some(v) = config.secret_env.get(env) {
        return Ok(v.clone());
    }
    if file.is_empty() {
        return Err(yiqian_providers::ConfigError::new(provider, field, format!("set {env} or {field}_file")).into());
    }
    let text = read_file(provider, field, file)?;
    Ok(if text.contains("-----BEGIN") { text } else { text.trim().to_owned() })
}

/// Reads a file the configuration names (a key, a certificate).
fn read_file(provider: &'static str, field: &'static str, path: &str) -> Result<String, ConfigError> {
    if path.is_empty() {
        return Err(yiqian_providers::ConfigError::new(provider, field, "not set").into());
    }
    std::fs::read_to_string(path)
        .map_err(|e| yiqian_providers::ConfigError::new(provider, field, format!("cannot read {path}: {e}")).into())
}

fn required(provider: &'static str, field: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        return Err(yiqian_providers::ConfigError::new(provider, field, "not set").into());
    }
    Ok(())
}

fn date(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// Builds the adapters `config` chooses for a service reachable at `public_url`. Nothing is
/// called: keys, certificates and URLs are checked as they load.
pub fn build(config: &Config, public_url: &str) -> Result<VendorAdapters, ConfigError> {
    let mut out = VendorAdapters::default();
    let p = &config.providers;
    if p.payment_wechat == "wechatpay" {
        let w = &config.wechatpay;
        required("wechatpay", "mchid", &w.mchid)?;
        let public_key = if w.public_key_id.is_empty() {
            None
        } else {
            Some(WechatPayPublicKey {
                public_key_id: w.public_key_id.clone(),
                public_key_pem: read_file("wechatpay", "public_key_file", &w.public_key_file)?,
            })
        };
        let platform_certificates = w
            .platform_cert_files
            .iter()
            .map(|f| read_file("wechatpay", "platform_cert_files", f))
            .collect::<Result<Vec<_>, _>>()?;
        let gateway = WechatPayGateway::new(WechatPayConfig {
            base_url: w.base_url.clone(),
            mchid: w.mchid.clone(),
            appid: w.appid.clone(),
            merchant_serial: w.merchant_serial.clone(),
            merchant_key_pem: secret(
                config,
                "wechatpay",
                "merchant_key",
                "YIQIAN_WECHATPAY_MERCHANT_KEY",
                &w.merchant_key_file,
            )?,
            apiv3_key: secret(config, "wechatpay", "apiv3_key", "YIQIAN_WECHATPAY_APIV3_KEY", &w.apiv3_key_file)?,
            public_key,
            platform_certificates,
            notify_url: format!("{public_url}{WECHATPAY_NOTIFY_PATH}"),
        })?;
        let mut line = format!("wechatpay: merchant {} at {}", w.mchid, w.base_url);
        if !w.public_key_id.is_empty() {
            line.push_str(&format!("; WeChat Pay public key {}", w.public_key_id));
        }
        for c in gateway.platform_certificates() {
            line.push_str(&format!("; platform certificate {} until {}", c.serial, date(c.not_after)));
        }
        out.report.push(line);
        out.wechatpay = Some(Arc::new(gateway));
    }
    if p.wechat_login == "wechat" {
        let l = &config.wechat_login;
        let appid = if l.appid.is_empty() { config.wechatpay.appid.clone() } else { l.appid.clone() };
        let scope = match l.scope.as_str() {
            "snsapi_base" => OAuthScope::SnsapiBase,
            "snsapi_userinfo" => OAuthScope::SnsapiUserinfo,
            other => {
                return Err(yiqian_providers::ConfigError::new(
                    "wechat_login",
                    "scope",
                    format!("{other:?} is not snsapi_base or snsapi_userinfo"),
                )
                .into());
            }
        };
        let oauth = WechatOAuth::new(WechatOAuthConfig {
            appid: appid.clone(),
            secret: secret(config, "wechat_login", "app_secret", "YIQIAN_WECHAT_APP_SECRET", &l.app_secret_file)?,
            authorize_base: l.authorize_base.clone(),
            api_base: l.api_base.clone(),
            scope,
        })?;
        out.report.push(format!("wechat_login: official account {appid}, {}", l.scope));
        out.wechat_login = Some(Arc::new(oauth));
    }
    if p.payment_alipay == "alipay" {
        let a = &config.alipay;
        let mode = if !a.app_cert_file.is_empty() {
            AlipayKeyMode::Certificate {
                app_cert_pem: read_file("alipay", "app_cert_file", &a.app_cert_file)?,
                alipay_cert_pem: read_file("alipay", "alipay_cert_file", &a.alipay_cert_file)?,
                alipay_root_cert_pem: read_file("alipay", "alipay_root_cert_file", &a.alipay_root_cert_file)?,
            }
        } else {
            AlipayKeyMode::PublicKey {
                alipay_public_key_pem: read_file("alipay", "alipay_public_key_file", &a.alipay_public_key_file)?,
            }
        };
        let mut alipay = AlipayConfig::new(
            a.app_id.clone(),
            secret(config, "alipay", "app_private_key", "YIQIAN_ALIPAY_APP_PRIVATE_KEY", &a.app_private_key_file)?,
            mode,
            format!("{public_url}{ALIPAY_NOTIFY_PATH}"),
        );
        alipay.gateway_url = a.gateway_url.clone();
        alipay.seller_id = (!a.seller_id.is_empty()).then(|| a.seller_id.clone());
        let gateway = AlipayGateway::new(alipay)?;
        let mut line = format!("alipay: app {} at {}", a.app_id, a.gateway_url);
        match gateway.certificate_validity() {
            Some(v) => line.push_str(&format!(
                "; certificate mode, application certificate until {}, Alipay certificate until {}",
                date(v.app_cert_not_after),
                date(v.alipay_cert_not_after)
            )),
            None => line.push_str("; public-key mode"),
        }
        out.report.push(line);
        out.alipay = Some(Arc::new(gateway));
    }
    if p.sms == "tencent" || p.identity == "tencent" {
        let t = &config.tencent;
        let endpoint = (!t.endpoint.is_empty()).then_some(t.endpoint.as_str());
        let cloud = TencentCloud::new(TencentCloudConfig::new(
            t.secret_id.clone(),
            secret(config, "tencent", "secret_key", "YIQIAN_TENCENT_SECRET_KEY", &t.secret_key_file)?,
            Some(&t.region),
            endpoint,
        )?)?;
        if p.sms == "tencent" {
            let sms = TencentSms::new(
                cloud.clone(),
                TencentSmsConfig {
                    sdk_app_id: t.sms_sdk_app_id.clone(),
                    sign_name: t.sms_sign_name.clone(),
                    templates: t.sms_templates.clone(),
                },
            )?;
            out.report.push(format!(
                "tencent sms: application {}, {} templates",
                t.sms_sdk_app_id,
                t.sms_templates.len()
            ));
            out.sms = Some(Arc::new(sms));
        }
        if p.identity == "tencent" {
            out.report.push(format!("tencent identity: IDCardOCR and FaceID in {}", t.region));
            out.identity = Some(Arc::new(TencentIdentity::new(cloud)));
        }
    }
    if p.courier == "sf" {
        let s = &config.sf;
        let sender = SfContact {
            company: s.sender_company.clone(),
            contact: s.sender_contact.clone(),
            mobile: s.sender_mobile.clone(),
            province: s.sender_province.clone(),
            city: s.sender_city.clone(),
            county: s.sender_county.clone(),
            address: s.sender_address.clone(),
        };
        let mut sf = SfConfig::new(
            s.partner_id.clone(),
            secret(config, "sf", "checkword", "YIQIAN_SF_CHECKWORD", &s.checkword_file)?,
            s.monthly_card.clone(),
            sender,
        )?
        .with_base_url(s.base_url.clone())?;
        sf.express_type_id = s.express_type_id;
        sf.validate()?;
        out.report.push(format!("sf: customer {} at {}", s.partner_id, s.base_url));
        out.courier = Some(Arc::new(SfCourier::new(sf)?));
    }
    if p.invoice == "nuonuo" {
        let n = &config.nuonuo;
        let mut nuonuo = NuonuoConfig::new(
            n.app_key.clone(),
            secret(config, "nuonuo", "app_secret", "YIQIAN_NUONUO_APP_SECRET", &n.app_secret_file)?,
            secret(config, "nuonuo", "access_token", "YIQIAN_NUONUO_ACCESS_TOKEN", &n.access_token_file)?,
            n.saler_tax_num.clone(),
            n.clerk.clone(),
            n.goods_code.clone(),
            &n.tax_rate,
        )?
        .with_base_url(n.base_url.clone())?
        .with_callback_url(format!("{public_url}{NUONUO_CALLBACK_PATH}"))?;
        nuonuo.saler_tel = n.saler_tel.clone();
        nuonuo.saler_address = n.saler_address.clone();
        nuonuo.invoice_line = n.invoice_line.clone();
        if !n.goods_name.is_empty() {
            nuonuo.goods_name = n.goods_name.clone();
        }
        nuonuo.validate()?;
        out.report.push(format!("nuonuo: seller {} at {}, rate {}", n.saler_tax_num, n.base_url, n.tax_rate));
        out.invoices = Some(Arc::new(NuonuoIssuer::new(nuonuo)?));
    }
    Ok(out)
}
