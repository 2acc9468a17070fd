//! Identifiers of the things an order involves. They are opaque strings chosen by the
//! application layer (which owns randomness); the domain only carries them.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an identifier; it must be 1–64 ASCII letters, digits, `-` or `_`.
            pub fn parse(value: &str) -> Option<Self> {
                let ok = !value.is_empty()
                    && value.len() <= 64
                    && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                ok.then(|| Self(value.to_owned()))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// An order number, shown to the applicant (e.g. `YQ20261125K7M2Q9XW`).
    OrderId
);
id_type!(
    /// An applicant account.
    ApplicantId
);
id_type!(
    /// One payment attempt (our out-trade-number at the payment gateway).
    PaymentId
);
id_type!(
    /// One refund (our out-refund-number at the payment gateway).
    RefundId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_long_and_odd_characters() {
        assert!(OrderId::parse("YQ2026").is_some());
        assert!(OrderId::parse("").is_none());
        assert!(OrderId::parse(&"a".repeat(65)).is_none());
        assert!(OrderId::parse("a b").is_none());
        assert!(OrderId::parse("../x").is_none());
    }
}
