//! PKCS#10 certificate requests: building one for a key (tests, the future UKEY token) and
//! checking one a client sent (size, DER, key policy, algorithm, proof of possession).
//!
//! SM2 requests are checked with the CA's distinguishing ID first and then with the empty ID,
//! because OpenSSL 3.0 signs with an empty ID unless the client passes
//! `-sigopt distid:1234567812345678`.

use crate::PkiError;
use crate::algorithm::{Algorithm, key_algorithm, signature_algorithm_name};
use crate::encoding::{PEM_CERTIFICATE_REQUEST, bit_string, from_pem, looks_like_pem, tag, tlv};
use crate::key::{Signer, verify};
use der::{Decode, Encode, Header, Reader, SliceReader};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};

/// The largest request accepted, in bytes (DER or PEM).
pub const MAX_CSR_SIZE: usize = 64 * 1024;

/// A PKCS#10 request that parsed and whose self-signature verifies (proof of possession).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCsr {
    /// The subject the client asked for (the CA decides what it certifies).
    pub subject: Name,
    /// The key to certify.
    pub public_key: SubjectPublicKeyInfoOwned,
    /// The key's algorithm.
    pub algorithm: Algorithm,
    /// For SM2: the distinguishing ID the signature verified with (the CA's, or `""` when the
    /// client used OpenSSL's empty default). `None` for other algorithms.
    pub sm2_distid_used: Option<String>,
}

/// Parses a DER or PEM request and verifies its self-signature. Refuses input over 64 KiB,
/// malformed DER or PEM, unsupported or too-weak keys, a signature algorithm that does not
/// match the key, and a bad signature. SM2 signatures are tried with `sm2_distid`, then with
/// the empty ID; `sm2_distid_used` says which matched.
pub fn verify_csr(input: &[u8], sm2_distid: &str) -> Result<VerifiedCsr, PkiError> {
    if input.len() > MAX_CSR_SIZE {
        return Err(PkiError::TooLarge { size: input.len(), limit: MAX_CSR_SIZE });
    }
    let pem_der;
    let der = if looks_like_pem(input) {
        let (label, der) = from_pem(input)?;
        if label != PEM_CERTIFICATE_REQUEST && label != "NEW CERTIFICATE REQUEST" {
            return Err(PkiError::Malformed(format!("PEM label {label:?} is not a certificate request")));
        }
        pem_der = der;
        &pem_der[..]
    } else {
        input
    };

    let request = CertReq::from_der(der).map_err(|e| PkiError::malformed("certificate request", e))?;
    let info_der = info_bytes(der)?;
    let algorithm = key_algorithm(&request.info.public_key)?;
    if !algorithm.accepts_signature_algorithm(&request.algorithm) {
        return Err(PkiError::AlgorithmMismatch(format!(
            "the request is signed with {}, which does not belong to its {algorithm} key",
            signature_algorithm_name(&request.algorithm.oid)
        )));
    }
    let signature = request
        .signature
        .as_bytes()
        .ok_or_else(|| PkiError::Malformed("the signature BIT STRING has unused bits".to_owned()))?;
    let key = &request.info.public_key;

    let sm2_distid_used = if algorithm == Algorithm::Sm2 {
        let mut ids = vec![sm2_distid];
        if !sm2_distid.is_empty() {
            ids.push("");
        }
        let used = ids
            .into_iter()
            .find(|id| verify(key, algorithm, info_der, signature, id).is_ok())
            .ok_or(PkiError::BadSignature)?;
        Some(used.to_owned())
    } else {
        verify(key, algorithm, info_der, signature, "")?;
        None
    };

    Ok(VerifiedCsr { subject: request.info.subject, public_key: request.info.public_key, algorithm, sm2_distid_used })
}

/// The exact bytes of the CertificationRequestInfo (the signed part) inside a request.
fn info_bytes(der: &[u8]) -> Result<&[u8], PkiError> {
    let malformed = |e: der::Error| PkiError::malformed("certificate request", e);
    let mut reader = SliceReader::new(der).map_err(malformed)?;
    Header::decode(&mut reader).map_err(malformed)?;
    reader.tlv_bytes().map_err(malformed)
}

/// Builds a PKCS#10 request (DER) for the signer's key: version 1, `subject`, no attributes,
/// signed with the signer's algorithm (SM2 with its distinguishing ID).
pub fn build_csr(subject: &Name, signer: &dyn Signer) -> Result<Vec<u8>, PkiError> {
    let info = CertReqInfo {
        version: Version::V1,
        subject: subject.clone(),
        public_key: signer.public_key().clone(),
        attributes: Default::default(),
    };
    let info_der = info.to_der().map_err(|e| PkiError::encoding("certificate request", e))?;
    let sig_alg =
        signer.algorithm().signature_algorithm().to_der().map_err(|e| PkiError::encoding("signature algorithm", e))?;
    let signature = signer.sign(&info_der)?;
    Ok(tlv(tag::SEQUENCE, &[&info_der, &sig_alg, &bit_string(&signature)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::to_pem;
    use crate::key::DEFAULT_SM2_DISTID;
    use crate::key::tests::test_key;
    use crate::name::personal_subject;
    use proptest::prelude::*;

    #[test]
    fn built_requests_verify_in_der_and_pem() {
        for alg in Algorithm::ALL {
            let key = test_key(alg);
            let subject = personal_subject("张三").unwrap();
            let der = build_csr(&subject, key).unwrap();
            let csr = verify_csr(&der, DEFAULT_SM2_DISTID).unwrap();
            assert_eq!(csr.subject, subject);
            assert_eq!(&csr.public_key, key.public_key());
            assert_eq!(csr.algorithm, alg);
            assert_eq!(csr.sm2_distid_used.as_deref(), (alg == Algorithm::Sm2).then_some(DEFAULT_SM2_DISTID));
            let pem = to_pem(PEM_CERTIFICATE_REQUEST, &der);
            assert_eq!(verify_csr(pem.as_bytes(), DEFAULT_SM2_DISTID).unwrap(), csr);
            let (_, back) = from_pem(pem.as_bytes()).unwrap();
            assert_eq!(back, der);
        }
    }

    #[test]
    fn sm2_falls_back_to_the_empty_id_only() {
        let der = test_key(Algorithm::Sm2).to_pkcs8_der().unwrap();
        let subject = personal_subject("李四").unwrap();
        let empty = crate::SoftwareKey::from_pkcs8_der(Algorithm::Sm2, &der).unwrap().with_sm2_distid("");
        let csr = verify_csr(&build_csr(&subject, &empty).unwrap(), DEFAULT_SM2_DISTID).unwrap();
        assert_eq!(csr.sm2_distid_used.as_deref(), Some(""));
        let other =
            crate::SoftwareKey::from_pkcs8_der(Algorithm::Sm2, &der).unwrap().with_sm2_distid("alice@example.cn");
        let request = build_csr(&subject, &other).unwrap();
        assert_eq!(verify_csr(&request, DEFAULT_SM2_DISTID), Err(PkiError::BadSignature));
        assert_eq!(
            verify_csr(&request, "alice@example.cn").unwrap().sm2_distid_used.as_deref(),
            Some("alice@example.cn")
        );
    }

    #[test]
    fn tampering_and_bad_input_give_typed_errors() {
        let key = test_key(Algorithm::P256);
        let der = build_csr(&personal_subject("王五").unwrap(), key).unwrap();
        let mut flipped = der.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x01;
        assert_eq!(verify_csr(&flipped, DEFAULT_SM2_DISTID), Err(PkiError::BadSignature));
        assert!(matches!(verify_csr(&der[..der.len() - 3], DEFAULT_SM2_DISTID), Err(PkiError::Malformed(_))));
        assert!(matches!(verify_csr(b"", DEFAULT_SM2_DISTID), Err(PkiError::Malformed(_))));
        assert!(matches!(
            verify_csr(&vec![0x30; MAX_CSR_SIZE + 1], DEFAULT_SM2_DISTID),
            Err(PkiError::TooLarge { .. })
        ));
        let cert_pem = to_pem("CERTIFICATE", &der);
        assert!(matches!(verify_csr(cert_pem.as_bytes(), DEFAULT_SM2_DISTID), Err(PkiError::Malformed(_))));
    }

    #[test]
    fn a_signature_algorithm_of_another_key_type_is_refused() {
        // A P-256 key whose request claims SM2-with-SM3.
        let key = test_key(Algorithm::P256);
        let info = CertReqInfo {
            version: Version::V1,
            subject: personal_subject("赵六").unwrap(),
            public_key: key.public_key().clone(),
            attributes: Default::default(),
        }
        .to_der()
        .unwrap();
        let sig = key.sign(&info).unwrap();
        let alg = Algorithm::Sm2.signature_algorithm().to_der().unwrap();
        let der = tlv(tag::SEQUENCE, &[&info, &alg, &bit_string(&sig)]);
        assert!(matches!(verify_csr(&der, DEFAULT_SM2_DISTID), Err(PkiError::AlgorithmMismatch(_))));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn verify_csr_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = verify_csr(&bytes, DEFAULT_SM2_DISTID);
        }

        #[test]
        fn verify_csr_never_panics_on_mutated_requests(
            alg in 0usize..2,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            cut in proptest::option::of(any::<usize>()),
        ) {
            // Mutations of a real request reach deeper than random bytes (P-256 and SM2 only:
            // RSA verification is slow in debug builds).
            let key = test_key([Algorithm::P256, Algorithm::Sm2][alg]);
            let mut der = build_csr(&personal_subject("张三").unwrap(), key).unwrap();
            for (at, value) in edits {
                let i = at % der.len();
                der[i] = value;
            }
            if let Some(cut) = cut {
                der.truncate(cut % (der.len() + 1));
            }
            let _ = verify_csr(&der, DEFAULT_SM2_DISTID);
        }
    }
}
