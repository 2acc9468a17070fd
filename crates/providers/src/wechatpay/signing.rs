//! The merchant's request signature: SHA256withRSA (PKCS#1 v1.5) over five lines — method,
//! canonical URL, timestamp in seconds, nonce, body — each ended by `\n`, Base64-encoded, and
//! sent in the `Authorization: WECHATPAY2-SHA256-RSA2048 …` header. Also the `paySign` of the
//! JSAPI front-end call (`appId\ntimeStamp\nnonceStr\npackage\n`, where `package` is the whole
//! `prepay_id=…`; the APP form signs the bare prepay id instead and is not used here).

use crate::payment::JsapiParams;
use crate::rsa::{RsaError, RsaSigner};

/// The scheme named in the `Authorization` header.
pub const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";

/// A merchant's signing key with its certificate serial and merchant id. `Debug` shows no key.
pub struct MerchantSigner {
    mchid: String,
    serial_no: String,
    key: RsaSigner,
}

impl std::fmt::Debug for MerchantSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerchantSigner").field("mchid", &self.mchid).field("serial_no", &self.serial_no).finish()
    }
}

/// The message signed for a request.
pub fn request_message(method: &str, url: &str, timestamp: i64, nonce: &str, body: &str) -> String {
    format!("{method}\n{url}\n{timestamp}\n{nonce}\n{body}\n")
}

/// The message a JSAPI (and mini-program) `paySign` signs: line 4 is the whole `package`
/// value, `prepay_id=…`.
pub fn jsapi_pay_message(app_id: &str, time_stamp: &str, nonce_str: &str, package: &str) -> String {
    format!("{app_id}\n{time_stamp}\n{nonce_str}\n{package}\n")
}

/// The message an APP payment's `sign` signs: line 4 is the bare prepay id. Shown for contrast
/// only; mixing it up with [`jsapi_pay_message`] is a classic cause of a failed payment.
pub fn app_pay_message(app_id: &str, time_stamp: &str, nonce_str: &str, prepay_id: &str) -> String {
    format!("{app_id}\n{time_stamp}\n{nonce_str}\n{prepay_id}\n")
}

impl MerchantSigner {
    /// The merchant id.
    pub fn mchid(&self) -> &str {
        &self.mchid
    }

    /// The merchant certificate's serial.
    pub fn serial_no(&self) -> &str {
        &self.serial_no
    }

    /// The parameters of `getBrandWCPayRequest` for `prepay_id`, signed.
    pub fn jsapi_params(
        &self,
        app_id: &str,
        prepay_id: &str,
        time_stamp: i64,
        nonce_str: &str,
    ) -> Result<JsapiParams, RsaError> {
        let time_stamp = time_stamp.to_string();
        let package = format!("prepay_id={prepay_id}");
        let pay_sign = self.sign(jsapi_pay_message(app_id, &time_stamp, nonce_str, &package).as_bytes())?;
        Ok(JsapiParams {
            app_id: app_id.to_owned(),
            time_stamp,
            nonce_str: nonce_str.to_owned(),
            package,
            sign_type: "RSA".to_owned(),
            pay_sign,
        })
    }

    /// A signer from the merchant's `apiclient_key.pem` (PKCS#8 PEM).
    pub fn from_pem(mchid: &str, serial_no: &str, pem: &str) -> Result<MerchantSigner, RsaError> {
        Ok(MerchantSigner { mchid: mchid.into(), serial_no: serial_no.into(), key: RsaSigner::from_pem(pem)? })
    }

    /// SHA256withRSA over `message`, Base64.
    pub fn sign(&self, message: &[u8]) -> Result<String, RsaError> {
        self.key.sign(message)
    }

    /// The `Authorization` header for a request.
    pub fn authorization(
        &self,
        method: &str,
        url: &str,
        timestamp: i64,
        nonce: &str,
        body: &str,
    ) -> Result<String, RsaError> {
        let signature = self.sign(request_message(method, url, timestamp, nonce, body).as_bytes())?;
        Ok(format!(
            r#"{SCHEME} mchid="{}",nonce_str="{nonce}",timestamp="{timestamp}",serial_no="{}",signature="{signature}""#,
            self.mchid, self.serial_no
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WXGO_KEY: &str = include_str!("../../testdata/wxgo_test_key.pem");
    const WXDOC_KEY: &str = include_str!("../../testdata/wxdoc_test_key.pem");

    /// WX-1: the Go SDK's signer test.
    #[test]
    fn wx1_vector() {
        let signer = MerchantSigner::from_pem("1900000001", "SERIAL", WXGO_KEY).unwrap();
        assert_eq!(
            signer.sign(b"source").unwrap(),
            "BKyAfU4iMCuvXMXS0Wzam3V/cnxZ+JaqigPM5OhljS2iOT95OO6Fsuml2JkFANJU9K6q9bLlDhPXuoVz+pp4hAm6pHU4ld815U4jsKu1RkyaII+1CYBUYC8TK0XtJ8FwUXXz8vZHh58rrAVN1XwNyvD1vfpxrMT4SL536GLwvpUHlCqIMzoZUguLli/K8V29QiOhuH6IEqLNJn8e9b3nwNcQ7be3CzYGpDAKBfDGPCqCv8Rw5zndhlffk2FEA70G4hvMwe51qMN/RAJbknXG23bSlObuTCN7Ndj1aJGH6/L+hdwfLpUtJm4QYVazzW7DFD27EpSQEqA8bX9+8m1rLg=="
        );
    }

    /// WX-2: the documentation's worked example of a JSAPI order request.
    #[test]
    fn wx2_vector() {
        let signer = MerchantSigner::from_pem("1900007291", "SERIAL", WXDOC_KEY).unwrap();
        let body = r#"{"appid":"wxd678efh567hg6787","mchid":"1900007291","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","notify_url":"https://www.weixin.qq.com/wxpay/pay.php","amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}"#;
        let expected = "jnks4dlrPw3ZX+ozVvSK39oa0t7OMBsg83BHAwd8BRdUFiVaQNTLTvci+wURgP1OQBbKYhFGvt7iqYpDSTQkp7Uq1sltaQKyncCyrA1g88m5bsKERQfPyT0ahSwKTYJ1CAn9QiJuSJRq1QsQs07eehbU/k9BCS51jTyc1Jpsi2H77HF9f/BnjXAOP3/sPObg6V5Ee4EzwLox684hhuMuIwHo7D8KFk3LIHOKDcNI4It1aCXydFWNpNK+SG86VUDe5kwoDpw4Ulqfu9z8OFDGbDs9TCxEv8iqQzbpxOlEVoOe2kalSYM5kApQb3nZcxdUtoE0liJGW3RGUNE0t4v01A==";
        let message =
            request_message("POST", "/v3/pay/transactions/jsapi", 1554208460, "593BEC0C930BF1AFEB40B4A08C8FB242", body);
        assert_eq!(signer.sign(message.as_bytes()).unwrap(), expected);
        let header = signer
            .authorization("POST", "/v3/pay/transactions/jsapi", 1554208460, "593BEC0C930BF1AFEB40B4A08C8FB242", body)
            .unwrap();
        assert!(header.starts_with(r#"WECHATPAY2-SHA256-RSA2048 mchid="1900007291",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",timestamp="1554208460",serial_no="SERIAL",signature=""#));
        assert!(header.ends_with(&format!("{expected}\"")));
    }

    /// WX-6: the documentation's JSAPI paySign, and the different APP form.
    #[test]
    fn wx6_vector() {
        let signer = MerchantSigner::from_pem("1900007291", "SERIAL", WXDOC_KEY).unwrap();
        let params = signer
            .jsapi_params(
                "wx2421b1c4370ec43b",
                "wx201410272009395522657a690389285100",
                1554208460,
                "593BEC0C930BF1AFEB40B4A08C8FB242",
            )
            .unwrap();
        assert_eq!(params.package, "prepay_id=wx201410272009395522657a690389285100");
        assert_eq!(params.sign_type, "RSA");
        assert_eq!(params.time_stamp, "1554208460");
        assert_eq!(
            params.pay_sign,
            "mI35pfNEQV6777ke/1T+LJLQDNTm7yeoUJH+j/adPGhmCCi0PbgkvYQTRcXH0uibcLVtvFLdGLpmoYO9FV6lBBsTAjuhh5YOvQi0e2g3e0yytitiNET9FEuqM0pjnKfRW4K6LIZDdbWJv9KhZUx3DrJa5TL7OJ7VdADVivxVySIlPVKjGwuCXzuXSJes0UcILgWQUMyha5/3nYofuHtS7r+KYyMuxD+oJ9VM1Qdxk4UIG59CP5Y3wtYIFybyF3bdu1caHTRRX+DLyMXyYA/IrTmiW01c4RPjpHBX5Dk1sZyY1zVsWNsvMHr2e1NTWtBxKJ+qk5N61J7caYoepHFaxw=="
        );
        let app = signer
            .sign(
                app_pay_message(
                    "wx2421b1c4370ec43b",
                    "1554208460",
                    "593BEC0C930BF1AFEB40B4A08C8FB242",
                    "wx201410272009395522657a690389285100",
                )
                .as_bytes(),
            )
            .unwrap();
        // The reference sheet elides the APP value as `gXx9KhTP6IooKV1S…Kk7LShaCK+lS3Q==`; the
        // computed tail reads `…KCk7LShaCK+lS3Q==` (a one-character slip in the sheet's elision:
        // the 16-character prefix cannot match by chance), so the tail is checked from `k7`.
        assert!(app.starts_with("gXx9KhTP6IooKV1S") && app.ends_with("k7LShaCK+lS3Q=="), "{app}");
        assert_ne!(app, params.pay_sign);
    }

    #[test]
    fn a_get_without_body_ends_with_two_newlines() {
        assert_eq!(request_message("GET", "/v3/certificates", 1, "n", ""), "GET\n/v3/certificates\n1\nn\n\n");
    }

    #[test]
    fn bad_keys_are_refused_clearly() {
        assert!(matches!(MerchantSigner::from_pem("1", "S", "not a key"), Err(RsaError::Key(_))));
        let signer = MerchantSigner::from_pem("1900007291", "SERIAL", WXDOC_KEY).unwrap();
        assert!(!format!("{signer:?}").contains("PRIVATE"));
    }
}
