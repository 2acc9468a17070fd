//! Alipay amounts: yuan strings with at most two decimals (`"150.00"`), converted to and from
//! [`Fen`] by exact decimal arithmetic — never through floating point. Anything else (signs,
//! exponents, three decimals, spaces, a bare `.`) is refused.

use yiqian_domain::Fen;

/// The largest amount Alipay takes in one trade: 100 000 000.00 yuan.
pub const MAX_AMOUNT: Fen = Fen(10_000_000_000);

/// A text that is not a yuan amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a yuan amount: {0:?}")]
pub struct AmountError(pub String);

/// Parses a yuan amount such as `"150.00"`, `"0.1"` or `"7"` into fen.
pub fn parse_yuan(text: &str) -> Result<Fen, AmountError> {
    let refuse = || AmountError(text.chars().take(32).collect());
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    // Twelve digits of yuan keep every sum far inside u64.
    if whole.is_empty() || whole.len() > 12 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse());
    }
    let fen = match fraction {
        None => 0,
        Some(f) if (1..=2).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()) => {
            let digits: u64 = f.parse().map_err(|_| refuse())?;
            if f.len() == 1 { digits * 10 } else { digits }
        }
        Some(_) => return Err(refuse()),
    };
    let yuan: u64 = whole.parse().map_err(|_| refuse())?;
    Ok(Fen(yuan * 100 + fen))
}

/// Formats fen as Alipay wants it: yuan with exactly two decimals.
pub fn format_yuan(amount: Fen) -> String {
    amount.yuan()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_amounts() {
        assert_eq!(parse_yuan("150.00"), Ok(Fen(15000)));
        assert_eq!(parse_yuan("0.01"), Ok(Fen(1)));
        assert_eq!(parse_yuan("0.1"), Ok(Fen(10)));
        assert_eq!(parse_yuan("7"), Ok(Fen(700)));
        assert_eq!(parse_yuan("100000000.00"), Ok(MAX_AMOUNT));
        // 0.29 is 0.28999… in binary floating point; here it stays 29 fen.
        assert_eq!(parse_yuan("0.29"), Ok(Fen(29)));
        assert_eq!(parse_yuan("1234567.89"), Ok(Fen(123456789)));
    }

    #[test]
    fn refuses_malformed_amounts() {
        for bad in
            ["", ".", "1.", ".5", "1.234", "-1.00", "+1.00", "1e2", " 1.00", "1.00 ", "1,00", "1.0.0", "１.00", "0x10"]
        {
            assert!(parse_yuan(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_yuan("9999999999999").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for fen in [0, 1, 10, 99, 100, 15000, 123456789] {
            assert_eq!(parse_yuan(&format_yuan(Fen(fen))), Ok(Fen(fen)));
        }
        assert_eq!(format_yuan(Fen(15000)), "150.00");
    }
}
