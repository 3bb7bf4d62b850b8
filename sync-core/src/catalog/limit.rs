//! Time limits (时限) of the workflow steps, written `"4 working_hours"`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A workflow step that has a time limit. The names are the workflow's own
/// (`dispatch` here is `dispatch` in SQL, JSON and the bindings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Accept (受理/核实): a supervisor confirms on site that the report is real.
    Accept,
    /// Register (立案): the command centre registers the case.
    Register,
    /// Dispatch (派遣): the case is sent to the team that handles it.
    Dispatch,
    /// Handle (处置): the team fixes the problem.
    Handle,
    /// Verify (核查): a supervisor checks the result on site.
    Verify,
    /// Close (结案): the command centre closes the case.
    Close,
    /// Reply (回访): the hotline tells the caller of a hotline or citizen case the
    /// result, once it is closed. Only such cases run this step.
    Reply,
}

impl Step {
    /// All steps in workflow order.
    pub const ALL: [Step; 7] = [
        Step::Accept,
        Step::Register,
        Step::Dispatch,
        Step::Handle,
        Step::Verify,
        Step::Close,
        Step::Reply,
    ];

    /// The identifier used in TOML and JSON, e.g. `dispatch`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Step::Accept => "accept",
            Step::Register => "register",
            Step::Dispatch => "dispatch",
            Step::Handle => "handle",
            Step::Verify => "verify",
            Step::Close => "close",
            Step::Reply => "reply",
        }
    }

    /// Chinese label, e.g. 派遣.
    pub const fn name_zh(self) -> &'static str {
        match self {
            Step::Accept => "受理",
            Step::Register => "立案",
            Step::Dispatch => "派遣",
            Step::Handle => "处置",
            Step::Verify => "核查",
            Step::Close => "结案",
            Step::Reply => "回访",
        }
    }

    /// English label, e.g. Dispatch.
    pub const fn name_en(self) -> &'static str {
        match self {
            Step::Accept => "Accept",
            Step::Register => "Register",
            Step::Dispatch => "Dispatch",
            Step::Handle => "Handle",
            Step::Verify => "Verify",
            Step::Close => "Close",
            Step::Reply => "Reply to the caller",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reply step's limit when a catalogue sets none: 3 working days after the close,
/// the usual 12319 practice (办结后三个工作日内回访).
pub const REPLY_FALLBACK: TimeLimit = TimeLimit::working_days(3);

/// The clock a time limit runs on. Which hours are working hours (and which days
/// are holidays) is the workflow clock's business, not the catalogue's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeUnit {
    /// Working hours (工作时): the clock runs only during working time.
    WorkingHours,
    /// Working days (工作日).
    WorkingDays,
    /// Calendar hours (小时): the clock never stops; for emergencies such as a
    /// missing manhole cover (on site within 2 hours, day or night).
    Hours,
}

impl TimeUnit {
    /// All units.
    pub const ALL: [TimeUnit; 3] = [
        TimeUnit::WorkingHours,
        TimeUnit::WorkingDays,
        TimeUnit::Hours,
    ];

    /// The identifier in a time limit string (plural): `working_hours`,
    /// `working_days` or `hours`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TimeUnit::WorkingHours => "working_hours",
            TimeUnit::WorkingDays => "working_days",
            TimeUnit::Hours => "hours",
        }
    }

    /// The singular identifier, used after an amount of 1: `working_hour`,
    /// `working_day` or `hour`.
    pub const fn singular(self) -> &'static str {
        match self {
            TimeUnit::WorkingHours => "working_hour",
            TimeUnit::WorkingDays => "working_day",
            TimeUnit::Hours => "hour",
        }
    }

    /// Chinese label: 工作时, 工作日 or 小时.
    pub const fn name_zh(self) -> &'static str {
        match self {
            TimeUnit::WorkingHours => "工作时",
            TimeUnit::WorkingDays => "工作日",
            TimeUnit::Hours => "小时",
        }
    }

    /// English label: working hours, working days or hours.
    pub const fn name_en(self) -> &'static str {
        match self {
            TimeUnit::WorkingHours => "working hours",
            TimeUnit::WorkingDays => "working days",
            TimeUnit::Hours => "hours",
        }
    }

    /// The largest amount of this unit a limit may have: 365 days, counting a
    /// working day as 8 working hours (2920 working hours, 365 working days,
    /// 8760 hours).
    pub const fn max_amount(self) -> u32 {
        match self {
            TimeUnit::WorkingHours => MAX_DAYS * 8,
            TimeUnit::WorkingDays => MAX_DAYS,
            TimeUnit::Hours => MAX_DAYS * 24,
        }
    }

    fn from_identifier(text: &str) -> Option<TimeUnit> {
        TimeUnit::ALL
            .into_iter()
            .find(|unit| unit.as_str() == text || unit.singular() == text)
    }
}

/// The longest time limit, in days, that a catalogue accepts.
pub const MAX_DAYS: u32 = 365;

/// Why a time limit string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeLimitError {
    /// Not two words.
    #[error("invalid time limit {input:?}: expected \"<amount> <unit>\", e.g. \"4 working_hours\"")]
    Format {
        /// The text that was parsed.
        input: String,
    },
    /// The amount is not a whole number.
    #[error("invalid time limit {input:?}: the amount must be a whole number")]
    Amount {
        /// The text that was parsed.
        input: String,
    },
    /// The unit is not one of the known units.
    #[error(
        "invalid time limit {input:?}: unknown unit {unit:?} (expected working_hours, working_days or hours)"
    )]
    Unit {
        /// The text that was parsed.
        input: String,
        /// The unit that was not recognised.
        unit: String,
    },
}

/// A time limit (时限) for one workflow step: an amount of a unit.
///
/// In TOML and JSON it is the string `"<amount> <unit>"`: `"4 working_hours"`,
/// `"2 working_days"`, `"2 hours"`; the singular (`"1 working_hour"`) is
/// accepted too and is what an amount of 1 is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeLimit {
    /// How many units.
    pub amount: u32,
    /// Which clock.
    pub unit: TimeUnit,
}

impl TimeLimit {
    /// `amount` of `unit`.
    pub const fn new(amount: u32, unit: TimeUnit) -> TimeLimit {
        TimeLimit { amount, unit }
    }

    /// `amount` working hours.
    pub const fn working_hours(amount: u32) -> TimeLimit {
        TimeLimit::new(amount, TimeUnit::WorkingHours)
    }

    /// `amount` working days.
    pub const fn working_days(amount: u32) -> TimeLimit {
        TimeLimit::new(amount, TimeUnit::WorkingDays)
    }

    /// `amount` calendar hours.
    pub const fn hours(amount: u32) -> TimeLimit {
        TimeLimit::new(amount, TimeUnit::Hours)
    }

    /// Whether this limit is longer than [`MAX_DAYS`] (see
    /// [`TimeUnit::max_amount`]).
    pub const fn is_too_long(self) -> bool {
        self.amount > self.unit.max_amount()
    }

    /// Chinese label, e.g. `4工作时`.
    pub fn label_zh(self) -> String {
        format!("{}{}", self.amount, self.unit.name_zh())
    }

    /// English label, e.g. `4 working hours`.
    pub fn label_en(self) -> String {
        format!("{} {}", self.amount, self.unit.name_en())
    }
}

impl FromStr for TimeLimit {
    type Err = TimeLimitError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let mut words = input.split_whitespace();
        let (Some(amount), Some(unit), None) = (words.next(), words.next(), words.next()) else {
            return Err(TimeLimitError::Format {
                input: input.to_owned(),
            });
        };
        if !amount.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TimeLimitError::Amount {
                input: input.to_owned(),
            });
        }
        let amount = amount.parse().map_err(|_| TimeLimitError::Amount {
            input: input.to_owned(),
        })?;
        let unit = TimeUnit::from_identifier(unit).ok_or_else(|| TimeLimitError::Unit {
            input: input.to_owned(),
            unit: unit.to_owned(),
        })?;
        Ok(TimeLimit { amount, unit })
    }
}

impl fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.amount == 1 {
            self.unit.singular()
        } else {
            self.unit.as_str()
        };
        write!(f, "{} {unit}", self.amount)
    }
}

impl TryFrom<String> for TimeLimit {
    type Error = TimeLimitError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<TimeLimit> for String {
    fn from(limit: TimeLimit) -> String {
        limit.to_string()
    }
}

/// The time limits of every step, as resolved for one category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Accept (受理/核实).
    pub accept: TimeLimit,
    /// Register (立案).
    pub register: TimeLimit,
    /// Dispatch (派遣).
    pub dispatch: TimeLimit,
    /// Handle (处置).
    pub handle: TimeLimit,
    /// Verify (核查).
    pub verify: TimeLimit,
    /// Close (结案).
    pub close: TimeLimit,
    /// Reply to the caller (回访).
    pub reply: TimeLimit,
}

impl Limits {
    /// The limit of `step`.
    pub const fn get(&self, step: Step) -> TimeLimit {
        match step {
            Step::Accept => self.accept,
            Step::Register => self.register,
            Step::Dispatch => self.dispatch,
            Step::Handle => self.handle,
            Step::Verify => self.verify,
            Step::Close => self.close,
            Step::Reply => self.reply,
        }
    }

    /// Each step with its limit, in workflow order.
    pub fn iter(&self) -> impl Iterator<Item = (Step, TimeLimit)> + '_ {
        Step::ALL.into_iter().map(|step| (step, self.get(step)))
    }
}

/// Time limits for some of the steps: the `[defaults]` table of a catalogue and
/// the `limits` table of a category. Unknown keys are an error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepLimits {
    /// Accept (受理/核实).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<TimeLimit>,
    /// Register (立案).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register: Option<TimeLimit>,
    /// Dispatch (派遣).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch: Option<TimeLimit>,
    /// Handle (处置).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<TimeLimit>,
    /// Verify (核查).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<TimeLimit>,
    /// Close (结案).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<TimeLimit>,
    /// Reply to the caller (回访); [`REPLY_FALLBACK`] when neither the category nor
    /// `[defaults]` sets it (catalogues written before the step existed stay valid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<TimeLimit>,
}

impl StepLimits {
    /// The limit given for `step`, if any.
    pub const fn get(&self, step: Step) -> Option<TimeLimit> {
        match step {
            Step::Accept => self.accept,
            Step::Register => self.register,
            Step::Dispatch => self.dispatch,
            Step::Handle => self.handle,
            Step::Verify => self.verify,
            Step::Close => self.close,
            Step::Reply => self.reply,
        }
    }

    /// Sets (or with `None` clears) the limit of `step`.
    pub fn set(&mut self, step: Step, limit: Option<TimeLimit>) {
        let slot = match step {
            Step::Accept => &mut self.accept,
            Step::Register => &mut self.register,
            Step::Dispatch => &mut self.dispatch,
            Step::Handle => &mut self.handle,
            Step::Verify => &mut self.verify,
            Step::Close => &mut self.close,
            Step::Reply => &mut self.reply,
        };
        *slot = limit;
    }

    /// Whether no step has a limit.
    pub fn is_empty(&self) -> bool {
        Step::ALL.into_iter().all(|step| self.get(step).is_none())
    }

    /// The steps that have a limit, in workflow order.
    pub fn iter(&self) -> impl Iterator<Item = (Step, TimeLimit)> + '_ {
        Step::ALL
            .into_iter()
            .filter_map(|step| self.get(step).map(|limit| (step, limit)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn time_limits_parse_in_both_numbers() {
        assert_eq!(
            "4 working_hours".parse::<TimeLimit>().unwrap(),
            TimeLimit::working_hours(4)
        );
        assert_eq!(
            "1 working_day".parse::<TimeLimit>().unwrap(),
            TimeLimit::working_days(1)
        );
        assert_eq!(
            "1 working_days".parse::<TimeLimit>().unwrap(),
            TimeLimit::working_days(1)
        );
        assert_eq!(
            "  2   hours ".parse::<TimeLimit>().unwrap(),
            TimeLimit::hours(2)
        );
    }

    #[test]
    fn time_limits_print_singular_for_one() {
        assert_eq!(TimeLimit::working_hours(4).to_string(), "4 working_hours");
        assert_eq!(TimeLimit::working_hours(1).to_string(), "1 working_hour");
        assert_eq!(TimeLimit::hours(1).to_string(), "1 hour");
        assert_eq!(TimeLimit::working_days(2).label_zh(), "2工作日");
        assert_eq!(TimeLimit::hours(2).label_en(), "2 hours");
    }

    #[test]
    fn bad_time_limits_are_rejected() {
        assert!(matches!(
            "4".parse::<TimeLimit>(),
            Err(TimeLimitError::Format { .. })
        ));
        assert!(matches!(
            "4 working hours".parse::<TimeLimit>(),
            Err(TimeLimitError::Format { .. })
        ));
        assert!(matches!(
            "-4 hours".parse::<TimeLimit>(),
            Err(TimeLimitError::Amount { .. })
        ));
        assert!(matches!(
            "99999999999 hours".parse::<TimeLimit>(),
            Err(TimeLimitError::Amount { .. })
        ));
        let error = "4 days".parse::<TimeLimit>().unwrap_err();
        assert!(matches!(error, TimeLimitError::Unit { .. }));
        assert!(error.to_string().contains("\"days\""), "{error}");
    }

    #[test]
    fn too_long_means_more_than_a_year() {
        assert!(!TimeLimit::working_days(365).is_too_long());
        assert!(TimeLimit::working_days(366).is_too_long());
        assert!(!TimeLimit::hours(8760).is_too_long());
        assert!(TimeLimit::hours(8761).is_too_long());
        assert!(TimeLimit::working_hours(2921).is_too_long());
    }

    #[test]
    fn step_limits_get_and_set() {
        let mut limits = StepLimits::default();
        assert!(limits.is_empty());
        limits.set(Step::Handle, Some(TimeLimit::hours(2)));
        assert_eq!(limits.get(Step::Handle), Some(TimeLimit::hours(2)));
        assert_eq!(limits.get(Step::Close), None);
        assert_eq!(limits.iter().count(), 1);
    }
}
