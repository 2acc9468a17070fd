//! The product catalogue: what is sold, for how much, for how long, under which agreement.

use crate::money::Fen;
use serde::{Deserialize, Serialize};

/// A certificate product an applicant can buy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Stable product code, stored on each order.
    pub code: String,
    /// Name shown to the applicant.
    pub name: String,
    /// Price in fen.
    pub price: Fen,
    /// Validity of the issued certificate, in years.
    pub validity_years: u32,
    /// Version of the application agreement the applicant must accept.
    pub agreement_version: String,
}

impl Product {
    /// The personal certificate on a UKEY sold by the service the product is modelled on:
    /// 150 yuan, valid for two years.
    pub fn personal_ukey() -> Product {
        Product {
            code: "personal-ukey".into(),
            name: "个人数字证书(UKEY)".into(),
            price: Fen(15000),
            validity_years: 2,
            agreement_version: "2026-11".into(),
        }
    }
}
