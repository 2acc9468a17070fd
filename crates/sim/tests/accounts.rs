//! Stand-in accounts: generated keys pair up, certificates parse, and a written directory reads back.

use yiqian_providers::rsa::{RsaSigner, RsaVerifier};
use yiqian_sim::accounts::{SimAccounts, parse_certificate};

#[test]
fn generated_accounts_pair_up_and_round_trip_through_a_directory() {
    let a = SimAccounts::generate().unwrap();
    for (private, public) in [
        (&a.wechatpay.merchant_key_pem, &a.wechatpay.merchant_public_pem),
        (&a.wechatpay.platform_key_pem, &a.wechatpay.platform_public_pem),
        (&a.alipay.app_private_pem, &a.alipay.app_public_pem),
        (&a.alipay.alipay_private_pem, &a.alipay.alipay_public_pem),
    ] {
        let sig = RsaSigner::from_pem(private).unwrap().sign(b"message").unwrap();
        assert!(RsaVerifier::from_pem(public).unwrap().verify(b"message", &sig));
    }
    for pem in
        [&a.wechatpay.platform_cert_pem, &a.alipay.root_cert_pem, &a.alipay.app_cert_pem, &a.alipay.alipay_cert_pem]
    {
        parse_certificate(pem).unwrap();
    }
    assert_eq!(a.wechatpay.apiv3_key.len(), 32);
    let dir = tempfile::tempdir().unwrap();
    a.write(dir.path()).unwrap();
    let back = SimAccounts::read(dir.path()).unwrap();
    assert_eq!(back.wechatpay.mchid, a.wechatpay.mchid);
    assert_eq!(std::fs::read_to_string(dir.path().join("wechatpay_apiv3_key")).unwrap(), a.wechatpay.apiv3_key);
}
