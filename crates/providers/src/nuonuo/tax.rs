//! The tax on a tax-inclusive amount, in integer fen: a rate given as an exact decimal string
//! (`0.06`), tax = round-half-up(amount × rate / (1 + rate)), and the tax-exclusive amount is
//! what remains, so the two always add up to the amount paid.

use yiqian_domain::Fen;

/// A VAT rate such as `0.06`, held exactly as `numerator / 10^scale`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxRate {
    numerator: u64,
    denominator: u64,
    text: String,
}

/// Why a rate was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxRateError {
    /// Not a decimal of the form `0.06`.
    #[error("{0:?} is not a decimal rate such as 0.06")]
    Syntax(String),
    /// More than four decimal places.
    #[error("{0:?} has more than four decimal places")]
    Precision(String),
    /// One (100 %) or more.
    #[error("{0:?} is not below 1")]
    Range(String),
}

/// A tax-inclusive amount split into its two parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaxSplit {
    /// 不含税金额.
    pub excluded: Fen,
    /// 税额.
    pub tax: Fen,
}

impl TaxRate {
    /// Parses `0`, `0.06`, `0.13`, `0.015`, … (at most four decimal places, below 1).
    pub fn parse(input: &str) -> Result<TaxRate, TaxRateError> {
        let s = input.trim();
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !digits(int) || !digits(frac) || (s.contains('.') && frac.is_empty()) {
            return Err(TaxRateError::Syntax(input.to_owned()));
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > 4 {
            return Err(TaxRateError::Precision(input.to_owned()));
        }
        if !int.trim_start_matches('0').is_empty() {
            return Err(TaxRateError::Range(input.to_owned()));
        }
        let denominator = 10u64.pow(frac.len() as u32);
        let numerator = if frac.is_empty() { 0 } else { frac.parse::<u64>().expect("checked digits") };
        let text = if numerator == 0 { "0".to_owned() } else { format!("0.{frac}") };
        Ok(TaxRate { numerator, denominator, text })
    }

    /// The rate as Nuonuo expects it (`0.06`, `0`; trailing zeros dropped).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Splits the tax-inclusive `amount`: tax = round-half-up(amount × r / (1 + r)).
    pub fn split(&self, amount: Fen) -> TaxSplit {
        let (n, d) = (u128::from(self.numerator), u128::from(self.denominator));
        let a = u128::from(amount.0);
        // amount × (n/d) / (1 + n/d) = amount × n / (d + n), rounded half up.
        let tax = (2 * a * n + (d + n)) / (2 * (d + n));
        let tax = u64::try_from(tax).expect("the tax is below the amount");
        TaxSplit { excluded: Fen(amount.0 - tax), tax: Fen(tax) }
    }

    /// The tax on a tax-exclusive amount, rounded half up (for checking a split).
    pub fn tax_on_excluded(&self, excluded: Fen) -> Fen {
        let (n, d) = (u128::from(self.numerator), u128::from(self.denominator));
        let tax = (2 * u128::from(excluded.0) * n + d) / (2 * d);
        Fen(u64::try_from(tax).unwrap_or(u64::MAX))
    }
}

impl std::fmt::Display for TaxRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(rate: &str, fen: u64) -> (String, String) {
        let s = TaxRate::parse(rate).unwrap().split(Fen(fen));
        assert_eq!(s.excluded.0 + s.tax.0, fen);
        (s.excluded.yuan(), s.tax.yuan())
    }

    #[test]
    fn one_hundred_fifty_yuan_at_six_percent() {
        assert_eq!(split("0.06", 15000), ("141.51".into(), "8.49".into()));
    }

    #[test]
    fn edge_amounts_and_rates() {
        // 0.01 × 0.06 / 1.06 = 0.000566… → no tax.
        assert_eq!(split("0.06", 1), ("0.01".into(), "0.00".into()));
        // 100 × 0.06 / 1.06 = 5.6603… → 5.66.
        assert_eq!(split("0.06", 10000), ("94.34".into(), "5.66".into()));
        // 100 × 0.13 / 1.13 = 11.5044… → 11.50.
        assert_eq!(split("0.13", 10000), ("88.50".into(), "11.50".into()));
        // 150 × 0.13 / 1.13 = 17.2566… → 17.26.
        assert_eq!(split("0.13", 15000), ("132.74".into(), "17.26".into()));
        assert_eq!(split("0", 15000), ("150.00".into(), "0.00".into()));
        assert_eq!(split("0.00", 1), ("0.01".into(), "0.00".into()));
        // 1.5 %: 106.00 × 0.015 / 1.015 = 1.5665… → 1.57.
        assert_eq!(split("0.015", 10600), ("104.43".into(), "1.57".into()));
        // 1.06 × 0.06 / 1.06 = 0.06 exactly.
        assert_eq!(split("0.06", 106), ("1.00".into(), "0.06".into()));
        // No overflow at the largest amount (the helper checks the parts add up).
        split("0.13", u64::MAX);
    }

    #[test]
    fn half_fen_rounds_up() {
        // Rate 0.6: tax = amount × 6 / 16 = amount × 3 / 8; 0.04 → 1.5 fen → 2.
        let r = TaxRate::parse("0.6").unwrap();
        assert_eq!(r.split(Fen(4)).tax, Fen(2));
        assert_eq!(r.split(Fen(12)).tax, Fen(5)); // 4.5 → 5
        assert_eq!(r.split(Fen(20)).tax, Fen(8)); // 7.5 → 8
    }

    #[test]
    fn parsing_is_exact_and_strict() {
        assert_eq!(TaxRate::parse("0.060").unwrap().as_str(), "0.06");
        assert_eq!(TaxRate::parse("0.13").unwrap().to_string(), "0.13");
        assert_eq!(TaxRate::parse("0").unwrap().as_str(), "0");
        for bad in ["", "6%", ".06", "0.", "-0.06", "0,06", "abc"] {
            assert!(matches!(TaxRate::parse(bad), Err(TaxRateError::Syntax(_))), "{bad}");
        }
        assert!(matches!(TaxRate::parse("0.00001"), Err(TaxRateError::Precision(_))));
        assert!(matches!(TaxRate::parse("1"), Err(TaxRateError::Range(_))));
        assert!(matches!(TaxRate::parse("6"), Err(TaxRateError::Range(_))));
    }

    #[test]
    fn tax_on_excluded_matches_the_split() {
        let r = TaxRate::parse("0.06").unwrap();
        let s = r.split(Fen(15000));
        // 141.51 × 0.06 = 8.4906 → 8.49.
        assert_eq!(r.tax_on_excluded(s.excluded), s.tax);
    }
}
