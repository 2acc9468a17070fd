//! The one error type of the PKI engine. Every message is an English sentence fragment meant
//! for a CA operator: the CLI prints it as it is.

/// Why a PKI operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkiError {
    /// The input is not well-formed DER/PEM, or a field holds a value that cannot be right.
    #[error("malformed input: {0}")]
    Malformed(String),
    /// The input is larger than this parser accepts.
    #[error("input too large: {size} bytes, at most {limit} accepted")]
    TooLarge {
        /// Size of the input, in bytes.
        size: usize,
        /// The largest size accepted, in bytes.
        limit: usize,
    },
    /// An algorithm (key type, curve, signature or hash) this engine does not support.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// A supported algorithm, but a key refused by policy (too small, bad exponent, invalid point).
    #[error("key not allowed: {0}")]
    KeyNotAllowed(String),
    /// The signature algorithm does not belong to the key that is supposed to have signed.
    #[error("signature algorithm mismatch: {0}")]
    AlgorithmMismatch(String),
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// The signer failed to sign (a software key error, later an HSM error).
    #[error("signing failed: {0}")]
    Signing(String),
    /// A key could not be generated, imported or exported.
    #[error("key error: {0}")]
    Key(String),
    /// Something could not be DER-encoded (a value out of range for its ASN.1 type).
    #[error("encoding failed: {0}")]
    Encoding(String),
    /// The request contradicts itself or the issuing CA (wrong profile, wrong signer, dates).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl PkiError {
    /// Wraps a `der` error raised while encoding `what`.
    pub(crate) fn encoding(what: &str, e: impl std::fmt::Display) -> PkiError {
        PkiError::Encoding(format!("{what}: {e}"))
    }

    /// Wraps a `der` error raised while decoding `what`.
    pub(crate) fn malformed(what: &str, e: impl std::fmt::Display) -> PkiError {
        PkiError::Malformed(format!("{what}: {e}"))
    }
}
