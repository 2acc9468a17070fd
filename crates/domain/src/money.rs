//! Money, always as an integer number of fen (1/100 yuan): no floating point anywhere.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount of money in fen (分). 150 yuan is `Fen(15000)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fen(pub u64);

impl Fen {
    /// The amount in yuan as the string the applicant reads, e.g. `150.00`.
    pub fn yuan(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} 元", self.yuan())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_yuan() {
        assert_eq!(Fen(15000).to_string(), "150.00 元");
        assert_eq!(Fen(1).yuan(), "0.01");
        assert_eq!(Fen(123456).yuan(), "1234.56");
    }
}
