//! Grid codes: a unit grid (万米单元网格) is named by 15 digits =
//! 6-digit district adcode (GB/T 2260) + 3-digit street (乡镇办) + 3-digit community
//! (村组社区) + 3-digit sequence. Its parents are the prefixes of 6, 9 and 12 digits.
//! A level-3 grid (楼院/街区/路段, the plan's third level, where a worker is posted) is a
//! named group of unit grids inside one community, written `<community>-<nn>`.

use std::fmt;
use std::str::FromStr;

/// Why a code was refused. Each message names the code and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("{level} code {code:?} must have {expected} digits, it has {actual} characters")]
    WrongLength {
        level: &'static str,
        code: String,
        expected: usize,
        actual: usize,
    },
    #[error("{level} code {code:?} must contain only the digits 0-9")]
    NotDigits { level: &'static str, code: String },
    #[error(
        "district adcode {code:?} is not a county-level GB/T 2260 code (province 11-82, city and county parts not 00)"
    )]
    BadDistrict { code: String },
    #[error(
        "street part {part:03} of {code:?} is out of range: 001-099 街道 subdistrict, 100-199 镇 town, 200-399 乡 township"
    )]
    BadStreet { code: String, part: u16 },
    #[error("community part of {code:?} must be 001-999, not 000")]
    ZeroCommunity { code: String },
    #[error("sequence part of {code:?} must be 001-999, not 000")]
    ZeroSequence { code: String },
    #[error("level-3 grid code {code:?} must be a 12-digit community code, '-', and 01-99")]
    BadLevel3 { code: String },
}

/// A county-level division (区/县/县级市) by its 6-digit GB/T 2260 adcode, e.g. 410105 金水区.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DistrictCode(u32);

/// A street, town or township (乡镇办, level 1 of the plan): 9 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreetCode(u64);

/// A community or village (村组社区, level 2 of the plan): 12 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommunityCode(u64);

/// A unit grid (万米单元网格, about 100 m × 100 m): 15 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GridCode(u64);

/// A level-3 grid (楼院/街区/路段): the `nn`-th named group of unit grids of a community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Level3Code {
    community: CommunityCode,
    number: u8,
}

/// What kind of level-1 unit a street code denotes, by the standard's number ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreetKind {
    /// 街道 (001–099): urban subdistrict.
    Subdistrict,
    /// 镇 (100–199): town.
    Town,
    /// 乡 (200–399): rural township.
    Township,
}

impl StreetKind {
    pub fn of_number(number: u16) -> Option<StreetKind> {
        match number {
            1..=99 => Some(StreetKind::Subdistrict),
            100..=199 => Some(StreetKind::Town),
            200..=399 => Some(StreetKind::Township),
            _ => None,
        }
    }

    /// The Chinese suffix used in names: 街道, 镇 or 乡.
    pub fn name_zh(self) -> &'static str {
        match self {
            StreetKind::Subdistrict => "街道",
            StreetKind::Town => "镇",
            StreetKind::Township => "乡",
        }
    }

    /// The first and last street number of this kind's range.
    pub fn number_range(self) -> (u16, u16) {
        match self {
            StreetKind::Subdistrict => (1, 99),
            StreetKind::Town => (100, 199),
            StreetKind::Township => (200, 399),
        }
    }
}

fn digits(level: &'static str, code: &str, expected: usize) -> Result<u64, CodeError> {
    if code.len() != expected {
        return Err(CodeError::WrongLength {
            level,
            code: code.to_owned(),
            expected,
            actual: code.chars().count(),
        });
    }
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CodeError::NotDigits {
            level,
            code: code.to_owned(),
        });
    }
    code.parse().map_err(|_| CodeError::NotDigits {
        level,
        code: code.to_owned(),
    })
}

fn check_district(code: &str, adcode: u64) -> Result<(), CodeError> {
    let province = adcode / 10_000;
    let city = (adcode / 100) % 100;
    let county = adcode % 100;
    if (11..=82).contains(&province) && city != 0 && county != 0 {
        Ok(())
    } else {
        Err(CodeError::BadDistrict {
            code: code.to_owned(),
        })
    }
}

fn check_street(code: &str, street: u64) -> Result<(), CodeError> {
    match u16::try_from(street).ok().and_then(StreetKind::of_number) {
        Some(_) => Ok(()),
        None => Err(CodeError::BadStreet {
            code: code.to_owned(),
            part: street as u16,
        }),
    }
}

impl DistrictCode {
    pub fn new(adcode: u32) -> Result<Self, CodeError> {
        format!("{adcode:06}").parse()
    }
    pub fn value(self) -> u32 {
        self.0
    }
    /// The street `number` (1–399) of this district.
    pub fn street(self, number: u16) -> Result<StreetCode, CodeError> {
        format!("{}{number:03}", self).parse()
    }
}

impl StreetCode {
    pub fn district(self) -> DistrictCode {
        DistrictCode((self.0 / 1_000) as u32)
    }
    pub fn number(self) -> u16 {
        (self.0 % 1_000) as u16
    }
    pub fn kind(self) -> StreetKind {
        // Checked at construction, so the number is always in one of the ranges.
        StreetKind::of_number(self.number()).unwrap_or(StreetKind::Township)
    }
    /// The community `number` (1–999) of this street.
    pub fn community(self, number: u16) -> Result<CommunityCode, CodeError> {
        format!("{}{number:03}", self).parse()
    }
}

impl CommunityCode {
    pub fn street(self) -> StreetCode {
        StreetCode(self.0 / 1_000)
    }
    pub fn district(self) -> DistrictCode {
        self.street().district()
    }
    pub fn number(self) -> u16 {
        (self.0 % 1_000) as u16
    }
    /// The unit grid with sequence `number` (1–999) of this community.
    pub fn grid(self, number: u16) -> Result<GridCode, CodeError> {
        format!("{}{number:03}", self).parse()
    }
    /// The level-3 grid `number` (1–99) of this community.
    pub fn level3(self, number: u8) -> Result<Level3Code, CodeError> {
        format!("{self}-{number:02}").parse()
    }
}

impl GridCode {
    pub fn value(self) -> u64 {
        self.0
    }
    /// Rebuilds a code from [`GridCode::value`], checking it like a parsed string.
    pub fn from_value(value: u64) -> Result<Self, CodeError> {
        format!("{value:015}").parse()
    }
    pub fn community(self) -> CommunityCode {
        CommunityCode(self.0 / 1_000)
    }
    pub fn street(self) -> StreetCode {
        self.community().street()
    }
    pub fn district(self) -> DistrictCode {
        self.community().district()
    }
    pub fn sequence(self) -> u16 {
        (self.0 % 1_000) as u16
    }
}

impl Level3Code {
    pub fn community(self) -> CommunityCode {
        self.community
    }
    pub fn number(self) -> u8 {
        self.number
    }
}

impl FromStr for DistrictCode {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        let v = digits("district", s, 6)?;
        check_district(s, v)?;
        Ok(DistrictCode(v as u32))
    }
}

impl FromStr for StreetCode {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        let v = digits("street", s, 9)?;
        check_district(s, v / 1_000)?;
        check_street(s, v % 1_000)?;
        Ok(StreetCode(v))
    }
}

impl FromStr for CommunityCode {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        let v = digits("community", s, 12)?;
        check_district(s, v / 1_000_000)?;
        check_street(s, (v / 1_000) % 1_000)?;
        if v % 1_000 == 0 {
            return Err(CodeError::ZeroCommunity { code: s.to_owned() });
        }
        Ok(CommunityCode(v))
    }
}

impl FromStr for GridCode {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        let v = digits("unit grid", s, 15)?;
        // The community prefix carries the district, street and community checks.
        s[..12].parse::<CommunityCode>().map_err(|e| match e {
            CodeError::ZeroCommunity { .. } => CodeError::ZeroCommunity { code: s.to_owned() },
            CodeError::BadStreet { part, .. } => CodeError::BadStreet {
                code: s.to_owned(),
                part,
            },
            _ => CodeError::BadDistrict { code: s.to_owned() },
        })?;
        if v % 1_000 == 0 {
            return Err(CodeError::ZeroSequence { code: s.to_owned() });
        }
        Ok(GridCode(v))
    }
}

impl FromStr for Level3Code {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        let bad = || CodeError::BadLevel3 { code: s.to_owned() };
        let (community, number) = s.split_once('-').ok_or_else(bad)?;
        let community = community.parse::<CommunityCode>()?;
        if number.len() != 2 || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let number: u8 = number.parse().map_err(|_| bad())?;
        if number == 0 {
            return Err(bad());
        }
        Ok(Level3Code { community, number })
    }
}

impl fmt::Display for DistrictCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}
impl fmt::Display for StreetCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:09}", self.0)
    }
}
impl fmt::Display for CommunityCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:012}", self.0)
    }
}
impl fmt::Display for GridCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:015}", self.0)
    }
}
impl fmt::Display for Level3Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:02}", self.community, self.number)
    }
}

/// Codes travel as strings in JSON and GeoJSON, so leading zeros and width survive.
macro_rules! serde_as_string {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
serde_as_string!(
    DistrictCode,
    StreetCode,
    CommunityCode,
    GridCode,
    Level3Code
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_code_and_its_parents() {
        let code: GridCode = "410105001002003".parse().expect("valid");
        assert_eq!(code.district().to_string(), "410105");
        assert_eq!(code.street().to_string(), "410105001");
        assert_eq!(code.street().kind(), StreetKind::Subdistrict);
        assert_eq!(code.community().to_string(), "410105001002");
        assert_eq!(code.sequence(), 3);
        assert_eq!(code.to_string(), "410105001002003");
        assert_eq!(GridCode::from_value(code.value()), Ok(code));
    }

    #[test]
    fn street_kinds_follow_the_number_ranges() {
        let district = DistrictCode::new(410122).expect("中牟县");
        assert_eq!(
            district.street(99).map(StreetCode::kind),
            Ok(StreetKind::Subdistrict)
        );
        assert_eq!(
            district.street(100).map(StreetCode::kind),
            Ok(StreetKind::Town)
        );
        assert_eq!(
            district.street(199).map(StreetCode::kind),
            Ok(StreetKind::Town)
        );
        assert_eq!(
            district.street(200).map(StreetCode::kind),
            Ok(StreetKind::Township)
        );
        assert_eq!(
            district.street(399).map(StreetCode::kind),
            Ok(StreetKind::Township)
        );
        assert!(matches!(
            district.street(400),
            Err(CodeError::BadStreet { part: 400, .. })
        ));
        assert!(matches!(
            district.street(0),
            Err(CodeError::BadStreet { part: 0, .. })
        ));
    }

    #[test]
    fn bad_codes_are_refused_with_a_clear_error() {
        let err = "41010500100200".parse::<GridCode>().expect_err("14 digits");
        assert!(matches!(
            err,
            CodeError::WrongLength {
                expected: 15,
                actual: 14,
                ..
            }
        ));
        assert!(err.to_string().contains("41010500100200"), "{err}");
        assert!(matches!(
            "4101050010020a3".parse::<GridCode>(),
            Err(CodeError::NotDigits { .. })
        ));
        assert!(matches!(
            "41010500100200３".parse::<GridCode>(),
            Err(CodeError::WrongLength { .. })
        ));
        assert!(matches!(
            "410105001002000".parse::<GridCode>(),
            Err(CodeError::ZeroSequence { .. })
        ));
        assert!(matches!(
            "410105001000003".parse::<GridCode>(),
            Err(CodeError::ZeroCommunity { .. })
        ));
        assert!(matches!(
            "410105400002003".parse::<GridCode>(),
            Err(CodeError::BadStreet { part: 400, .. })
        ));
        assert!(matches!(
            "410100001002003".parse::<GridCode>(),
            Err(CodeError::BadDistrict { .. })
        ));
        assert!(matches!(
            "990105001002003".parse::<GridCode>(),
            Err(CodeError::BadDistrict { .. })
        ));
        assert!(matches!(
            "".parse::<GridCode>(),
            Err(CodeError::WrongLength { .. })
        ));
        assert!(matches!(
            "+41010500100203".parse::<GridCode>(),
            Err(CodeError::NotDigits { .. })
        ));
    }

    #[test]
    fn level3_codes() {
        let l3: Level3Code = "410105001002-04".parse().expect("valid");
        assert_eq!(l3.community().to_string(), "410105001002");
        assert_eq!(l3.number(), 4);
        assert_eq!(l3.to_string(), "410105001002-04");
        for bad in [
            "410105001002-00",
            "410105001002-4",
            "410105001002",
            "410105001002-x1",
        ] {
            assert!(bad.parse::<Level3Code>().is_err(), "{bad}");
        }
    }

    #[test]
    fn codes_are_strings_in_json() {
        let code: GridCode = "410105001002003".parse().expect("valid");
        assert_eq!(
            serde_json::to_string(&code).expect("json"),
            "\"410105001002003\""
        );
        let back: GridCode = serde_json::from_str("\"410105001002003\"").expect("json");
        assert_eq!(back, code);
        assert!(serde_json::from_str::<GridCode>("\"4101050010020\"").is_err());
    }
}
