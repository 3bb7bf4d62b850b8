//! Category codes (分类代码): the kind letter plus the 2-digit major class and
//! 2-digit minor class of CJ/T 214, written `C0101` or `E0501`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of a case (案卷类型): what was found in public space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Component (部件): a fixed object in public space that is missing or damaged,
    /// e.g. a manhole cover or a street light. Written with the letter `C`.
    Component,
    /// Event (事件): a behaviour or a state of the environment, e.g. exposed garbage
    /// or street vending. Written with the letter `E`.
    Event,
}

impl Kind {
    /// Both kinds, components first (the order of the catalogue).
    pub const ALL: [Kind; 2] = [Kind::Component, Kind::Event];

    /// The letter a code of this kind starts with: `C` or `E`.
    pub const fn prefix(self) -> char {
        match self {
            Kind::Component => 'C',
            Kind::Event => 'E',
        }
    }

    /// The kind a code letter stands for (`C` or `E`, upper case only).
    pub const fn from_prefix(letter: char) -> Option<Kind> {
        match letter {
            'C' => Some(Kind::Component),
            'E' => Some(Kind::Event),
            _ => None,
        }
    }

    /// The identifier used in TOML and JSON: `component` or `event`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Component => "component",
            Kind::Event => "event",
        }
    }

    /// Chinese label: 部件 or 事件.
    pub const fn name_zh(self) -> &'static str {
        match self {
            Kind::Component => "部件",
            Kind::Event => "事件",
        }
    }

    /// English label: Component or Event.
    pub const fn name_en(self) -> &'static str {
        match self {
            Kind::Component => "Component",
            Kind::Event => "Event",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a category code or a major class code could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// The code has the wrong number of characters.
    #[error("invalid code {input:?}: expected {expected}")]
    Length {
        /// The text that was parsed.
        input: String,
        /// What a code of this type looks like.
        expected: &'static str,
    },
    /// The code does not start with `C` (component) or `E` (event).
    #[error("invalid code {input:?}: must start with C (部件 component) or E (事件 event)")]
    Prefix {
        /// The text that was parsed.
        input: String,
    },
    /// Something other than the digits 0-9 follows the kind letter.
    #[error("invalid code {input:?}: only the digits 0-9 may follow the kind letter")]
    NotDigits {
        /// The text that was parsed.
        input: String,
    },
    /// The major class is `00`; major classes run from 01 to 99.
    #[error("invalid code {input:?}: major class 00 does not exist (01-99)")]
    ZeroMajor {
        /// The text that was parsed.
        input: String,
    },
    /// The minor class is `00`; minor classes run from 01 to 99.
    #[error("invalid code {input:?}: minor class 00 does not exist (01-99)")]
    ZeroMinor {
        /// The text that was parsed.
        input: String,
    },
}

const CATEGORY_EXPECTED: &str = "a kind letter and 4 digits, e.g. \"C0101\" or \"E0501\"";
const MAJOR_EXPECTED: &str = "a kind letter and 2 digits, e.g. \"C01\" or \"E05\"";

/// Splits `input` into its kind and its digits, checking the letter, the length
/// and that only ASCII digits follow.
fn split_code<'a>(
    input: &'a str,
    digits: usize,
    expected: &'static str,
) -> Result<(Kind, &'a [u8]), CodeError> {
    let mut chars = input.chars();
    let Some(letter) = chars.next() else {
        return Err(CodeError::Length {
            input: input.to_owned(),
            expected,
        });
    };
    let kind = Kind::from_prefix(letter).ok_or_else(|| CodeError::Prefix {
        input: input.to_owned(),
    })?;
    let rest = chars.as_str();
    if rest.chars().count() != digits {
        return Err(CodeError::Length {
            input: input.to_owned(),
            expected,
        });
    }
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CodeError::NotDigits {
            input: input.to_owned(),
        });
    }
    Ok((kind, rest.as_bytes()))
}

/// The value of two ASCII digits (the caller has checked they are digits).
fn two_digits(digits: &[u8]) -> u8 {
    digits
        .iter()
        .fold(0, |value, digit| value * 10 + (digit - b'0'))
}

/// A major class code (大类代码) qualified by kind: `C01` is the component class
/// 01 公用设施, `E05` the event class 05 街面秩序.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MajorCode {
    kind: Kind,
    major: u8,
}

impl MajorCode {
    /// The code of major class `major` (1-99) of `kind`; `None` when out of range.
    pub const fn new(kind: Kind, major: u8) -> Option<MajorCode> {
        if major == 0 || major > 99 {
            return None;
        }
        Some(MajorCode { kind, major })
    }

    /// Component or event.
    pub const fn kind(self) -> Kind {
        self.kind
    }

    /// The 2-digit major class number, 1-99.
    pub const fn major(self) -> u8 {
        self.major
    }
}

impl FromStr for MajorCode {
    type Err = CodeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (kind, digits) = split_code(input, 2, MAJOR_EXPECTED)?;
        let major = two_digits(digits);
        if major == 0 {
            return Err(CodeError::ZeroMajor {
                input: input.to_owned(),
            });
        }
        Ok(MajorCode { kind, major })
    }
}

impl fmt::Display for MajorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:02}", self.kind.prefix(), self.major)
    }
}

impl fmt::Debug for MajorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MajorCode({self})")
    }
}

impl TryFrom<String> for MajorCode {
    type Error = CodeError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<MajorCode> for String {
    fn from(code: MajorCode) -> String {
        code.to_string()
    }
}

/// A category code (分类代码): 2-digit major class and 2-digit minor class of
/// CJ/T 214, qualified by kind. Written `C0101` (component 0101 上水井盖) or
/// `E0501` (event 0501 无照经营游商); this string is its form in TOML and JSON.
///
/// Codes order by kind (components first), then major class, then minor class.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CategoryCode {
    kind: Kind,
    major: u8,
    minor: u8,
}

impl CategoryCode {
    /// The code of minor class `minor` in major class `major` of `kind`, both
    /// 1-99; `None` when out of range.
    pub const fn new(kind: Kind, major: u8, minor: u8) -> Option<CategoryCode> {
        if major == 0 || major > 99 || minor == 0 || minor > 99 {
            return None;
        }
        Some(CategoryCode { kind, major, minor })
    }

    /// Component or event.
    pub const fn kind(self) -> Kind {
        self.kind
    }

    /// The 2-digit major class number, 1-99.
    pub const fn major(self) -> u8 {
        self.major
    }

    /// The 2-digit minor class number, 1-99.
    pub const fn minor(self) -> u8 {
        self.minor
    }

    /// The major class this category belongs to (`C01` for `C0101`).
    pub const fn major_code(self) -> MajorCode {
        MajorCode {
            kind: self.kind,
            major: self.major,
        }
    }

    /// The four digits as a number (101 for `C0101`); written with `{:04}` it
    /// gives the major + minor part of a 16-digit component object code.
    pub const fn number(self) -> u16 {
        self.major as u16 * 100 + self.minor as u16
    }
}

impl FromStr for CategoryCode {
    type Err = CodeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (kind, digits) = split_code(input, 4, CATEGORY_EXPECTED)?;
        let (major, minor) = digits.split_at(2);
        let (major, minor) = (two_digits(major), two_digits(minor));
        if major == 0 {
            return Err(CodeError::ZeroMajor {
                input: input.to_owned(),
            });
        }
        if minor == 0 {
            return Err(CodeError::ZeroMinor {
                input: input.to_owned(),
            });
        }
        Ok(CategoryCode { kind, major, minor })
    }
}

impl fmt::Display for CategoryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{:02}{:02}",
            self.kind.prefix(),
            self.major,
            self.minor
        )
    }
}

impl fmt::Debug for CategoryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CategoryCode({self})")
    }
}

impl TryFrom<String> for CategoryCode {
    type Error = CodeError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<CategoryCode> for String {
    fn from(code: CategoryCode) -> String {
        code.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn good_category_codes_parse_and_print_back() {
        for text in ["C0101", "C0114", "C9999", "E0501", "E0101", "E0650"] {
            let code: CategoryCode = text.parse().unwrap();
            assert_eq!(code.to_string(), text);
        }
        let code: CategoryCode = "C0118".parse().unwrap();
        assert_eq!(code.kind(), Kind::Component);
        assert_eq!((code.major(), code.minor()), (1, 18));
        assert_eq!(code.number(), 118);
        assert_eq!(code.major_code().to_string(), "C01");
        assert_eq!(CategoryCode::new(Kind::Component, 1, 18), Some(code));
        let event: CategoryCode = "E0505".parse().unwrap();
        assert_eq!(event.kind(), Kind::Event);
    }

    #[test]
    fn bad_category_codes_are_rejected_with_the_right_variant() {
        fn variant(error: &CodeError) -> &'static str {
            match error {
                CodeError::Length { .. } => "length",
                CodeError::Prefix { .. } => "prefix",
                CodeError::NotDigits { .. } => "digits",
                CodeError::ZeroMajor { .. } => "major",
                CodeError::ZeroMinor { .. } => "minor",
            }
        }
        let cases = [
            ("", "length"),
            ("C", "length"),
            ("C010", "length"),
            ("C01011", "length"),
            ("E05011", "length"),
            ("0101", "prefix"),
            ("X0101", "prefix"),
            ("c0101", "prefix"),
            ("部0101", "prefix"),
            (" C0101", "prefix"),
            ("C01a1", "digits"),
            ("C-101", "digits"),
            ("C01１1", "digits"),
            ("C0001", "major"),
            ("E0100", "minor"),
        ];
        for (text, expected) in cases {
            let error = text.parse::<CategoryCode>().unwrap_err();
            assert_eq!(variant(&error), expected, "{text:?} gave {error:?}");
            assert!(
                error.to_string().contains(&format!("{text:?}")),
                "message names the input: {error}"
            );
        }
    }

    #[test]
    fn error_messages_explain_the_rule() {
        let error = "X0101".parse::<CategoryCode>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid code \"X0101\": must start with C (部件 component) or E (事件 event)"
        );
        let error = "C01".parse::<CategoryCode>().unwrap_err();
        assert!(error.to_string().contains("4 digits"), "{error}");
    }

    #[test]
    fn major_codes() {
        let code: MajorCode = "E05".parse().unwrap();
        assert_eq!((code.kind(), code.major()), (Kind::Event, 5));
        assert_eq!(code.to_string(), "E05");
        assert!(matches!(
            "C00".parse::<MajorCode>(),
            Err(CodeError::ZeroMajor { .. })
        ));
        assert!(matches!(
            "C0101".parse::<MajorCode>(),
            Err(CodeError::Length { .. })
        ));
        assert_eq!(MajorCode::new(Kind::Event, 100), None);
        assert_eq!(CategoryCode::new(Kind::Event, 1, 0), None);
    }

    #[test]
    fn codes_order_components_first_then_numerically() {
        let mut codes: Vec<CategoryCode> = ["E0101", "C0201", "C0118", "E0099"]
            .iter()
            .filter_map(|text| text.parse().ok())
            .collect();
        codes.sort();
        let texts: Vec<String> = codes.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["C0118", "C0201", "E0101"]);
    }

    #[test]
    fn serde_uses_the_string_form() {
        let code: CategoryCode = "C0111".parse().unwrap();
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"C0111\"");
        let back: CategoryCode = serde_json::from_str("\"C0111\"").unwrap();
        assert_eq!(back, code);
        let error = serde_json::from_str::<CategoryCode>("\"C0011\"").unwrap_err();
        assert!(error.to_string().contains("major class 00"), "{error}");
        assert_eq!(serde_json::to_string(&Kind::Event).unwrap(), "\"event\"");
    }
}
