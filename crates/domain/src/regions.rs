//! Administrative divisions (GB/T 2260) for shipping addresses: province → city → district.
//! The data is compiled in (`data/regions.json`; source in `docs/data-sources.md`) and is
//! the same file the address pickers load, so the server validates exactly what the pages
//! offer.

use serde::Deserialize;
use std::sync::OnceLock;

/// The region tree as JSON, served to browsers as `/static/regions.json`.
pub const REGIONS_JSON: &str = include_str!("../data/regions.json");

/// One division.
#[derive(Debug, Clone, Deserialize)]
pub struct Region {
    /// Six-digit code.
    #[serde(rename = "c")]
    pub code: String,
    /// Chinese name.
    #[serde(rename = "n")]
    pub name: String,
    /// Subdivisions.
    #[serde(rename = "s", default)]
    pub children: Vec<Region>,
}

/// All provinces.
pub fn provinces() -> &'static [Region] {
    static TREE: OnceLock<Vec<Region>> = OnceLock::new();
    TREE.get_or_init(|| serde_json::from_str(REGIONS_JSON).expect("the compiled-in region data is valid JSON"))
}

/// A resolved province / city / district, with names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Division {
    /// Province name.
    pub province: String,
    /// City name.
    pub city: String,
    /// District name (empty where the city has no districts).
    pub district: String,
    /// The most precise code given.
    pub code: String,
}

/// Why a division was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DivisionError {
    /// The province code is unknown.
    #[error("请选择省份")]
    Province,
    /// The city code is not in that province.
    #[error("请选择城市")]
    City,
    /// The district code is not in that city.
    #[error("请选择区县")]
    District,
}

/// Resolves the three picker codes. Where a city has no districts, the district code may be
/// the city's own code (the pickers send that).
pub fn resolve(province: &str, city: &str, district: &str) -> Result<Division, DivisionError> {
    let p = provinces().iter().find(|r| r.code == province).ok_or(DivisionError::Province)?;
    let c = p.children.iter().find(|r| r.code == city).ok_or(DivisionError::City)?;
    if c.children.is_empty() {
        if district.is_empty() || district == c.code {
            return Ok(Division {
                province: p.name.clone(),
                city: c.name.clone(),
                district: String::new(),
                code: c.code.clone(),
            });
        }
        return Err(DivisionError::District);
    }
    let d = c.children.iter().find(|r| r.code == district).ok_or(DivisionError::District)?;
    Ok(Division { province: p.name.clone(), city: c.name.clone(), district: d.name.clone(), code: d.code.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_covers_the_mainland() {
        assert_eq!(provinces().len(), 31);
        let d = resolve("440000", "440300", "440305").unwrap();
        assert_eq!((d.province.as_str(), d.city.as_str(), d.district.as_str()), ("广东省", "深圳市", "南山区"));
        assert_eq!(resolve("440000", "440300", "110101"), Err(DivisionError::District));
        assert_eq!(resolve("990000", "440300", "440305"), Err(DivisionError::Province));
        assert_eq!(resolve("440000", "110100", "110101"), Err(DivisionError::City));
    }

    #[test]
    fn cities_without_districts_resolve() {
        let dg = provinces().iter().flat_map(|p| &p.children).find(|c| c.name == "东莞市").expect("东莞市 in data");
        assert!(dg.children.is_empty());
        let d = resolve("440000", &dg.code, &dg.code).unwrap();
        assert_eq!(d.district, "");
    }
}
