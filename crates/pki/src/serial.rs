//! Certificate serial numbers: 16 random octets, positive, so the DER INTEGER is exactly
//! 16 octets long (RFC 5280 allows up to 20; GM/T 0015 the same).

use crate::PkiError;
use std::fmt;
use std::str::FromStr;

/// Random octets in a new serial number.
const RANDOM_LEN: usize = 16;
/// The longest DER INTEGER content RFC 5280 allows for a serial number.
const MAX_ENCODED_LEN: usize = 20;

/// A certificate serial number: a positive integer whose DER encoding is at most 20 octets.
///
/// Held as its big-endian magnitude without leading zeros. (`x509_cert`'s
/// `SerialNumber::as_bytes` returns the DER content instead, with a 0x00 in front when the
/// top bit is set: convert with `to_x509`/`from_x509`.)
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SerialNumber(Vec<u8>);

impl SerialNumber {
    /// A fresh serial: 16 bytes from the system CSPRNG with the top bit cleared (so the
    /// INTEGER is positive without a padding octet) and a non-zero first byte (so the
    /// encoding is exactly 16 octets): 127 bits of entropy minus a sliver.
    pub fn random() -> SerialNumber {
        let mut bytes = [0u8; RANDOM_LEN];
        loop {
            // The system RNG failing is not an input error: nothing sensible can continue.
            aws_lc_rs::rand::fill(&mut bytes).expect("the system random number generator failed");
            bytes[0] &= 0x7f;
            if bytes[0] != 0 {
                return SerialNumber(bytes.to_vec());
            }
        }
    }

    /// Builds a serial from its big-endian magnitude (leading zero octets are ignored).
    /// Refuses zero and values whose DER encoding would exceed 20 octets.
    pub fn from_bytes(bytes: &[u8]) -> Result<SerialNumber, PkiError> {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        let magnitude = &bytes[start..];
        if magnitude.is_empty() {
            return Err(PkiError::Malformed("a serial number must be positive, not zero".to_owned()));
        }
        let encoded_len = magnitude.len() + usize::from(magnitude[0] & 0x80 != 0);
        if encoded_len > MAX_ENCODED_LEN {
            return Err(PkiError::Malformed(format!(
                "a serial number may be at most {MAX_ENCODED_LEN} octets when encoded, this one needs {encoded_len}"
            )));
        }
        Ok(SerialNumber(magnitude.to_vec()))
    }

    /// The big-endian magnitude, without leading zero octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The DER INTEGER content octets: the magnitude, with a 0x00 in front when its top bit
    /// is set.
    pub fn to_der_content(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() + 1);
        if self.0[0] & 0x80 != 0 {
            out.push(0);
        }
        out.extend_from_slice(&self.0);
        out
    }

    /// Upper-case hex of the magnitude, as `openssl x509 -serial` prints it.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02X}")).collect()
    }

    /// Parses hex, upper- or lower-case, with or without `:` separators or a `0x` prefix (so
    /// both `openssl x509 -serial` and `-text` output are accepted).
    pub fn from_hex(s: &str) -> Result<SerialNumber, PkiError> {
        let s = s.trim();
        let s = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
        let digits: Vec<u8> = s.bytes().filter(|b| *b != b':').collect();
        if digits.is_empty() || digits.len() > 2 * (MAX_ENCODED_LEN + 1) {
            return Err(PkiError::Malformed(format!("{s:?} is not a serial number in hex")));
        }
        let mut nibbles = Vec::with_capacity(digits.len() + 1);
        if digits.len() % 2 == 1 {
            nibbles.push(0);
        }
        for d in digits {
            let v = (d as char)
                .to_digit(16)
                .ok_or_else(|| PkiError::Malformed(format!("{s:?} is not a serial number in hex")))?;
            nibbles.push(v as u8);
        }
        let bytes: Vec<u8> = nibbles.chunks(2).map(|p| (p[0] << 4) | p[1]).collect();
        SerialNumber::from_bytes(&bytes)
    }

    /// The same serial as an `x509_cert` value.
    pub fn to_x509(&self) -> Result<x509_cert::serial_number::SerialNumber, PkiError> {
        x509_cert::serial_number::SerialNumber::new(&self.to_der_content())
            .map_err(|e| PkiError::encoding("serial number", e))
    }

    /// The serial of an `x509_cert` value (e.g. a parsed certificate's).
    pub fn from_x509(serial: &x509_cert::serial_number::SerialNumber) -> Result<SerialNumber, PkiError> {
        SerialNumber::from_bytes(serial.as_bytes())
    }
}

impl fmt::Display for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SerialNumber({})", self.to_hex())
    }
}

impl FromStr for SerialNumber {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<SerialNumber, PkiError> {
        SerialNumber::from_hex(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;
    use std::collections::HashSet;

    #[test]
    fn random_serials_are_positive_sixteen_octets_and_distinct() {
        let mut seen = HashSet::new();
        for _ in 0..2000 {
            let s = SerialNumber::random();
            assert_eq!(s.as_bytes().len(), 16);
            assert!(s.as_bytes()[0] & 0x80 == 0 && s.as_bytes()[0] != 0);
            let der = s.to_x509().unwrap().to_der().unwrap();
            // INTEGER, length 16, no padding octet: positive and minimal.
            assert_eq!(&der[..2], [0x02, 16]);
            assert!(der.len() - 2 <= 20);
            assert!(seen.insert(s));
        }
        // Not stuck on one prefix: the first bytes vary.
        let firsts: HashSet<u8> = seen.iter().map(|s| s.as_bytes()[0]).collect();
        assert!(firsts.len() > 50);
    }

    #[test]
    fn hex_round_trip_and_openssl_formats() {
        let s = SerialNumber::random();
        assert_eq!(SerialNumber::from_hex(&s.to_hex()).unwrap(), s);
        assert_eq!(SerialNumber::from_hex(&s.to_hex().to_lowercase()).unwrap(), s);
        let colons = "3a:00:ff";
        assert_eq!(SerialNumber::from_hex(colons).unwrap().to_hex(), "3A00FF");
        assert_eq!(SerialNumber::from_hex("0x1").unwrap().as_bytes(), [1]);
        assert_eq!(SerialNumber::from_hex("00ab").unwrap().to_hex(), "AB");
        assert_eq!("ab".parse::<SerialNumber>().unwrap().to_der_content(), [0x00, 0xab]);
    }

    #[test]
    fn refuses_zero_too_long_and_garbage() {
        assert!(SerialNumber::from_hex("00").is_err());
        assert!(SerialNumber::from_hex("").is_err());
        assert!(SerialNumber::from_hex("xyz").is_err());
        // 20 octets with the top bit clear fit; with it set they would need 21.
        assert!(SerialNumber::from_hex(&"7F".repeat(20)).is_ok());
        assert!(SerialNumber::from_hex(&"80".repeat(20)).is_err());
        assert!(SerialNumber::from_hex(&"11".repeat(21)).is_err());
    }
}
