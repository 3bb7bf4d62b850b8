//! The working-time calendar (工作日历): which instants are working time in
//! Zhengzhou, and when a workflow step's time limit (时限) runs out.
//!
//! A step's due time is the time it starts plus its [`TimeLimit`], counted on this
//! calendar; cases are assessed on time or overdue against it, so the arithmetic is
//! exact to the nanosecond and never steps minute by minute.
//!
//! - **Time zone**: Asia/Shanghai, always UTC+08:00 ([`SHANGHAI`]). The API takes and
//!   returns [`DateTime<Utc>`]; local time is only used inside.
//! - **Working periods** (工作时段): by default 08:30–12:00 and 13:30–18:00 local
//!   ([`DEFAULT_PERIODS`], 8 working hours a day). A period includes its start and
//!   excludes its end.
//! - **Working days** (工作日): Monday to Friday, except the public holidays
//!   (法定节假日) the operator lists, plus the make-up working days (调休上班: a
//!   Saturday or Sunday that is worked) the operator lists. The State Council
//!   publishes both lists every year, so they are configuration, not code.
//!
//! # Counting
//!
//! - [`TimeUnit::Hours`] (calendar hours) ignore the calendar: start + amount hours.
//! - [`TimeUnit::WorkingHours`] count working time only. A clock started outside
//!   working time starts at the next period's start.
//! - [`TimeUnit::WorkingDays`] count `amount ×` [`WorkCalendar::working_day_length`]
//!   of working time the same way, so one working day from Monday 10:00 is
//!   Tuesday 10:00.
//!
//! The due time is the *earliest* instant by which the limit's working time has
//! elapsed: a limit that runs out exactly at a period's end is due at that end
//! (12:00 or 18:00), not at the next period's start. So
//! `working_time_between(start, due(start, limit))` is exactly the limit.
//!
//! # Format
//!
//! ```toml
//! periods = [["08:30", "12:00"], ["13:30", "18:00"]]   # optional; this is the default
//! holidays = ["2026-10-01", "2026-10-02"]              # 法定节假日, optional
//! makeup_workdays = ["2026-10-10"]                     # 调休上班, optional
//! ```
//!
//! Times are `HH:MM` (or `HH:MM:SS`) local, dates `YYYY-MM-DD` as quoted strings.
//! Unknown keys are errors; so are periods that are empty, unsorted or overlap, a
//! date listed twice or in both lists, and a make-up working day that is not a
//! Saturday or Sunday (see [`CalendarError`]). Holidays may fall on a weekend (the
//! whole published run, e.g. 10-01 to 10-07, can be listed); they change nothing
//! there. This module does no I/O: the caller reads the file.

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc,
    Weekday,
};
use serde::{Deserialize, Serialize};

use crate::catalog::{TimeLimit, TimeUnit};

/// Seconds east of UTC of Asia/Shanghai.
const OFFSET_SECONDS: i32 = 8 * 3600;

/// The time zone of Zhengzhou, Asia/Shanghai: UTC+08:00.
///
/// A fixed offset is exact here, not an approximation: the People's Republic has
/// observed no daylight saving time since 1991 and uses one zone (Beijing time,
/// 北京时间) for the whole country, so every instant this system will ever handle
/// is UTC+08:00. That spares a time zone database (chrono-tz) and the ambiguous or
/// missing local times that DST would bring.
pub const SHANGHAI: FixedOffset = match FixedOffset::east_opt(OFFSET_SECONDS) {
    Some(offset) => offset,
    None => panic!("UTC+08:00 is a valid offset"),
};

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
const NANOS_PER_HOUR: i128 = 3600 * NANOS_PER_SECOND as i128;

/// Days from 0001-01-01 (day 1 of the common era in chrono) to 1970-01-01.
const UNIX_EPOCH_FROM_CE: i64 = 719_163;

/// More working days than chrono can represent (about 190 million days): a count
/// beyond this saturates at [`DateTime::<Utc>::MAX_UTC`], and keeps all day
/// arithmetic far from `i64` overflow.
const MAX_DAY_COUNT: i64 = 100_000_000_000;

const fn hour_minute(hour: u32, minute: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(hour, minute, 0) {
        Some(time) => time,
        None => panic!("invalid constant time"),
    }
}

/// The default working periods (工作时段), local time: 08:30–12:00 and
/// 13:30–18:00, 8 working hours a day. An office that keeps other hours (summer
/// hours, 夏季作息) configures its own periods.
pub const DEFAULT_PERIODS: [(NaiveTime, NaiveTime); 2] = [
    (hour_minute(8, 30), hour_minute(12, 0)),
    (hour_minute(13, 30), hour_minute(18, 0)),
];

/// `instant` in Zhengzhou local time (UTC+08:00), e.g. to show a due time.
pub fn to_local(instant: DateTime<Utc>) -> DateTime<FixedOffset> {
    instant.with_timezone(&SHANGHAI)
}

/// The UTC instant of a Zhengzhou local time. `None` only at the very ends of
/// chrono's range. Never ambiguous: the offset is fixed (see [`SHANGHAI`]).
pub fn from_local(local: NaiveDateTime) -> Option<DateTime<Utc>> {
    local
        .checked_sub_signed(TimeDelta::seconds(i64::from(OFFSET_SECONDS)))
        .map(|utc| utc.and_utc())
}

/// Why a calendar configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The text is not valid TOML or does not have the calendar's shape: a syntax
    /// error, an unknown key, a value of the wrong type, a malformed date or time.
    #[error("invalid calendar TOML{}: {message}", location(*.line, *.column))]
    Toml {
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// 1-based column (in characters) of the problem, when known.
        column: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// No working period: there would be no working time at all, and no working
    /// time limit could ever run out.
    #[error("a working day needs at least one working period")]
    NoPeriods,
    /// A period does not start before it ends (periods cannot run past midnight).
    #[error(
        "working period {}–{} does not start before it ends (a period must lie within one day)",
        time_text(*.start),
        time_text(*.end)
    )]
    EmptyPeriod {
        /// Start of the period.
        start: NaiveTime,
        /// End of the period.
        end: NaiveTime,
    },
    /// A period starts before the one listed before it.
    #[error(
        "working periods are not in order: {}–{} is listed before {}–{}",
        time_text(first.0),
        time_text(first.1),
        time_text(second.0),
        time_text(second.1)
    )]
    PeriodsNotSorted {
        /// The period listed first.
        first: (NaiveTime, NaiveTime),
        /// The period listed next, which starts earlier.
        second: (NaiveTime, NaiveTime),
    },
    /// A period starts before the previous one ends.
    #[error(
        "working periods {}–{} and {}–{} overlap",
        time_text(first.0),
        time_text(first.1),
        time_text(second.0),
        time_text(second.1)
    )]
    OverlappingPeriods {
        /// The earlier period.
        first: (NaiveTime, NaiveTime),
        /// The later period, which starts before `first` ends.
        second: (NaiveTime, NaiveTime),
    },
    /// A period boundary is a leap second (chrono's 23:59:60), which has no place
    /// in a daily schedule.
    #[error("working period boundary {time} is a leap second")]
    LeapSecond {
        /// The boundary.
        time: NaiveTime,
    },
    /// The same date is listed twice in one list (probably a typo for another).
    #[error("{date} is listed twice in {list}")]
    DuplicateDate {
        /// The date.
        date: NaiveDate,
        /// The list: `holidays` or `makeup_workdays`.
        list: &'static str,
    },
    /// A date is both a public holiday and a make-up working day.
    #[error("{date} is listed both as a holiday and as a make-up working day")]
    HolidayAndMakeup {
        /// The date.
        date: NaiveDate,
    },
    /// A make-up working day is a weekday, which is a working day anyway: almost
    /// certainly a wrong date.
    #[error(
        "make-up working day {date} is a {weekday}; only a Saturday or Sunday can be a make-up working day"
    )]
    MakeupOnWeekday {
        /// The date.
        date: NaiveDate,
        /// Its day of the week.
        weekday: Weekday,
    },
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(" at line {line}, column {column}"),
        (Some(line), None) => format!(" at line {line}"),
        _ => String::new(),
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |index| index + 1);
    let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
    (line, column)
}

/// A time as the configuration writes it: `08:30`, `08:30:15` or with a fraction.
fn time_text(time: NaiveTime) -> String {
    if time.nanosecond() != 0 {
        time.format("%H:%M:%S%.f").to_string()
    } else if time.second() != 0 {
        time.format("%H:%M:%S").to_string()
    } else {
        time.format("%H:%M").to_string()
    }
}

/// What an exception to the Monday–Friday rule makes of its day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayKind {
    /// A public holiday on a weekday.
    Holiday,
    /// A make-up working day on a weekend.
    Makeup,
}

/// A local instant: the day (days since 1970-01-01 local) and the nanoseconds
/// since local midnight, less than a day.
#[derive(Debug, Clone, Copy)]
struct Local {
    day: i64,
    nanos: i64,
}

impl Local {
    fn of(instant: DateTime<Utc>) -> Local {
        // A leap second (subsecond nanos >= 10^9) counts as the last nanosecond of
        // its second, which keeps the mapping monotone and the offset in range.
        let subsec = i64::from(instant.timestamp_subsec_nanos()).min(NANOS_PER_SECOND - 1);
        let seconds = instant.timestamp() + i64::from(OFFSET_SECONDS);
        Local {
            day: seconds.div_euclid(SECONDS_PER_DAY),
            nanos: seconds.rem_euclid(SECONDS_PER_DAY) * NANOS_PER_SECOND + subsec,
        }
    }
}

/// The UTC instant of local `nanos` after midnight of local `day`; saturates at
/// the end of chrono's range (results only ever move forward from a valid start).
fn utc_of(day: i64, nanos: i64) -> DateTime<Utc> {
    day.checked_mul(SECONDS_PER_DAY)
        .and_then(|seconds| seconds.checked_add(nanos.div_euclid(NANOS_PER_SECOND)))
        .and_then(|seconds| seconds.checked_sub(i64::from(OFFSET_SECONDS)))
        .and_then(|seconds| {
            let subsec = u32::try_from(nanos.rem_euclid(NANOS_PER_SECOND)).ok()?;
            DateTime::from_timestamp(seconds, subsec)
        })
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) - UNIX_EPOCH_FROM_CE
}

/// Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday).
fn weekday_index(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

/// Mondays to Fridays in `[1969-12-29, day)`, negative before it (1969-12-29 was
/// a Monday).
fn weekdays_before(day: i64) -> i64 {
    let since_monday = day + 3;
    since_monday.div_euclid(7) * 5 + since_monday.rem_euclid(7).min(5)
}

/// Mondays to Fridays in `[from, to)`.
fn weekdays_between(from: i64, to: i64) -> i64 {
    weekdays_before(to) - weekdays_before(from)
}

/// The `n`-th Monday-to-Friday on or after `from` (`n >= 1`).
fn nth_weekday_from(from: i64, n: i64) -> i64 {
    let mut monday_offset = weekday_index(from);
    let mut day = from;
    if monday_offset >= 5 {
        day += 7 - monday_offset;
        monday_offset = 0;
    }
    let index = monday_offset + n - 1;
    day - monday_offset + index / 5 * 7 + index % 5
}

fn nanos_of(time: NaiveTime) -> i64 {
    i64::from(time.num_seconds_from_midnight()) * NANOS_PER_SECOND + i64::from(time.nanosecond())
}

fn nanos_of_delta(delta: TimeDelta) -> i128 {
    i128::from(delta.num_seconds()) * i128::from(NANOS_PER_SECOND)
        + i128::from(delta.subsec_nanos())
}

fn delta_of_nanos(nanos: i128) -> TimeDelta {
    let per_second = i128::from(NANOS_PER_SECOND);
    i64::try_from(nanos.div_euclid(per_second))
        .ok()
        .and_then(|seconds| {
            let subsec = u32::try_from(nanos.rem_euclid(per_second)).ok()?;
            TimeDelta::new(seconds, subsec)
        })
        .unwrap_or(TimeDelta::MAX)
}

/// The working-time calendar of Zhengzhou: working periods, public holidays and
/// make-up working days, and the time-limit arithmetic on them.
///
/// Always valid: built by [`WorkCalendar::standard`], [`WorkCalendar::new`],
/// [`WorkCalendar::from_toml_str`] or deserialization, which all check the
/// configuration. Serializes to the format of the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkCalendar {
    periods: Vec<(NaiveTime, NaiveTime)>,
    holidays: BTreeSet<NaiveDate>,
    makeup_workdays: BTreeSet<NaiveDate>,
    /// `periods` as nanoseconds since local midnight.
    spans: Vec<(i64, i64)>,
    /// Working time of one working day, in nanoseconds (> 0).
    day_nanos: i64,
    /// The days that break the Monday–Friday rule, by day number: holidays on
    /// weekdays and make-up working days. Holidays on weekends change nothing
    /// and are left out, which keeps the counting below exact.
    exceptions: BTreeMap<i64, DayKind>,
}

impl Default for WorkCalendar {
    /// [`WorkCalendar::standard`].
    fn default() -> Self {
        WorkCalendar::standard()
    }
}

impl WorkCalendar {
    /// The built-in calendar: [`DEFAULT_PERIODS`] on Monday to Friday, no holidays
    /// and no make-up working days. Real deployments load the year's holiday
    /// lists with [`WorkCalendar::from_toml_str`].
    pub fn standard() -> WorkCalendar {
        WorkCalendar::build(DEFAULT_PERIODS.to_vec(), BTreeSet::new(), BTreeSet::new())
    }

    /// Checks a configuration and builds the calendar from it: working periods
    /// (local start and end, sorted, not overlapping, at least one), public
    /// holidays (法定节假日) and make-up working days (调休上班, Saturdays or
    /// Sundays). A date may be in only one list, once.
    pub fn new(
        periods: impl IntoIterator<Item = (NaiveTime, NaiveTime)>,
        holidays: impl IntoIterator<Item = NaiveDate>,
        makeup_workdays: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<WorkCalendar, CalendarError> {
        let periods: Vec<(NaiveTime, NaiveTime)> = periods.into_iter().collect();
        if periods.is_empty() {
            return Err(CalendarError::NoPeriods);
        }
        for &(start, end) in &periods {
            for time in [start, end] {
                if time.nanosecond() >= 1_000_000_000 {
                    return Err(CalendarError::LeapSecond { time });
                }
            }
            if start >= end {
                return Err(CalendarError::EmptyPeriod { start, end });
            }
        }
        for pair in periods.windows(2) {
            if let &[first, second] = pair {
                if second.0 < first.0 {
                    return Err(CalendarError::PeriodsNotSorted { first, second });
                }
                if second.0 < first.1 {
                    return Err(CalendarError::OverlappingPeriods { first, second });
                }
            }
        }
        let holidays = unique_dates(holidays, "holidays")?;
        let makeup_workdays = unique_dates(makeup_workdays, "makeup_workdays")?;
        if let Some(&date) = holidays.intersection(&makeup_workdays).next() {
            return Err(CalendarError::HolidayAndMakeup { date });
        }
        if let Some(&date) = makeup_workdays.iter().find(|date| !is_weekend(**date)) {
            return Err(CalendarError::MakeupOnWeekday {
                date,
                weekday: date.weekday(),
            });
        }
        Ok(WorkCalendar::build(periods, holidays, makeup_workdays))
    }

    /// Parses and checks a calendar in the format of the module documentation.
    pub fn from_toml_str(input: &str) -> Result<WorkCalendar, CalendarError> {
        let file: CalendarFile = toml::from_str(input).map_err(|error| {
            let (line, column) = match error.span() {
                Some(span) => {
                    let (line, column) = line_column(input, span.start);
                    (Some(line), Some(column))
                }
                None => (None, None),
            };
            CalendarError::Toml {
                line,
                column,
                message: error.message().trim_end().to_owned(),
            }
        })?;
        WorkCalendar::from_file(file)
    }

    /// The working periods of a working day, local time, in order.
    pub fn periods(&self) -> &[(NaiveTime, NaiveTime)] {
        &self.periods
    }

    /// The public holidays (法定节假日) as configured, weekend ones included.
    pub fn holidays(&self) -> &BTreeSet<NaiveDate> {
        &self.holidays
    }

    /// The make-up working days (调休上班) as configured.
    pub fn makeup_workdays(&self) -> &BTreeSet<NaiveDate> {
        &self.makeup_workdays
    }

    /// Whether `date` (local) is a working day: a make-up working day, or Monday
    /// to Friday and not a holiday.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        self.is_working_day_number(day_number(date))
    }

    /// Whether the clock of a working-time limit runs at `instant`: a working
    /// day, inside a period (start included, end excluded).
    pub fn is_working_time(&self, instant: DateTime<Utc>) -> bool {
        let local = Local::of(instant);
        self.is_working_day_number(local.day)
            && self
                .spans
                .iter()
                .any(|&(start, end)| start <= local.nanos && local.nanos < end)
    }

    /// The working time of one working day (the sum of the periods; 8 hours by
    /// default): what one [`TimeUnit::WorkingDays`] unit counts.
    pub fn working_day_length(&self) -> TimeDelta {
        delta_of_nanos(i128::from(self.day_nanos))
    }

    /// The first instant at or after `instant` that is working time: where a
    /// working-time clock started at `instant` actually starts running.
    pub fn next_working_time(&self, instant: DateTime<Utc>) -> DateTime<Utc> {
        let local = Local::of(instant);
        if self.is_working_day_number(local.day) {
            for &(start, end) in &self.spans {
                if local.nanos < start {
                    return utc_of(local.day, start);
                }
                if local.nanos < end {
                    return instant;
                }
            }
        }
        let first_start = self.spans.first().map_or(0, |span| span.0);
        match self.nth_working_day_after(local.day, 1) {
            Some(day) => utc_of(day, first_start),
            None => DateTime::<Utc>::MAX_UTC,
        }
    }

    /// When a step that starts at `start` with time limit `limit` is due.
    ///
    /// [`TimeUnit::Hours`]: `start` + amount hours, day or night. Working hours and
    /// working days: the earliest instant by which that much working time has
    /// elapsed since `start` (a limit running out at a period's end is due at that
    /// end). An amount of 0 is due at `start`. Results past the end of chrono's
    /// range saturate at [`DateTime::<Utc>::MAX_UTC`]; this never panics, whatever
    /// the amount (the catalogue keeps real limits within
    /// [`MAX_DAYS`](crate::catalog::MAX_DAYS)).
    pub fn due(&self, start: DateTime<Utc>, limit: TimeLimit) -> DateTime<Utc> {
        let amount = i64::from(limit.amount);
        match limit.unit {
            TimeUnit::Hours => TimeDelta::try_hours(amount)
                .and_then(|hours| start.checked_add_signed(hours))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            TimeUnit::WorkingHours => {
                self.add_working_nanos(start, i128::from(amount) * NANOS_PER_HOUR)
            }
            TimeUnit::WorkingDays => {
                self.add_working_nanos(start, i128::from(amount) * i128::from(self.day_nanos))
            }
        }
    }

    /// A due time moved by an extension (延期) of `extra`: the extension is counted
    /// from the old due time, on the same clocks as [`WorkCalendar::due`].
    pub fn extend(&self, due: DateTime<Utc>, extra: TimeLimit) -> DateTime<Utc> {
        self.due(due, extra)
    }

    /// The earliest instant by which `amount` of working time has elapsed since
    /// `start` (`start` itself if `amount` is zero or negative). For a clock that
    /// was stopped (挂起) and resumes with the time that was left.
    pub fn add_working_time(&self, start: DateTime<Utc>, amount: TimeDelta) -> DateTime<Utc> {
        self.add_working_nanos(start, nanos_of_delta(amount))
    }

    /// The working time in `[from, to)`: zero if `to <= from`. Measures how late a
    /// step was and how much of a limit a stopped clock has used.
    pub fn working_time_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> TimeDelta {
        if to <= from {
            return TimeDelta::zero();
        }
        let from = Local::of(from);
        let to = Local::of(to);
        let whole_days = i128::from(self.working_days_between(from.day, to.day));
        let nanos = whole_days * i128::from(self.day_nanos) + i128::from(self.worked_before(to))
            - i128::from(self.worked_before(from));
        delta_of_nanos(nanos.max(0))
    }

    fn build(
        periods: Vec<(NaiveTime, NaiveTime)>,
        holidays: BTreeSet<NaiveDate>,
        makeup_workdays: BTreeSet<NaiveDate>,
    ) -> WorkCalendar {
        let spans: Vec<(i64, i64)> = periods
            .iter()
            .map(|&(start, end)| (nanos_of(start), nanos_of(end)))
            .collect();
        let day_nanos = spans.iter().map(|&(start, end)| end - start).sum();
        let holiday_exceptions = holidays
            .iter()
            .filter(|date| !is_weekend(**date))
            .map(|&date| (day_number(date), DayKind::Holiday));
        let makeup_exceptions = makeup_workdays
            .iter()
            .map(|&date| (day_number(date), DayKind::Makeup));
        let exceptions = holiday_exceptions.chain(makeup_exceptions).collect();
        WorkCalendar {
            periods,
            holidays,
            makeup_workdays,
            spans,
            day_nanos,
            exceptions,
        }
    }

    fn from_file(file: CalendarFile) -> Result<WorkCalendar, CalendarError> {
        let periods = match file.periods {
            Some(periods) => periods
                .into_iter()
                .map(|period| (period.0, period.1))
                .collect(),
            None => DEFAULT_PERIODS.to_vec(),
        };
        WorkCalendar::new(
            periods,
            file.holidays.into_iter().map(|date| date.0),
            file.makeup_workdays.into_iter().map(|date| date.0),
        )
    }

    fn to_file(&self) -> CalendarFile {
        CalendarFile {
            periods: Some(
                self.periods
                    .iter()
                    .map(|&(start, end)| PeriodText(start, end))
                    .collect(),
            ),
            holidays: self.holidays.iter().copied().map(DateText).collect(),
            makeup_workdays: self.makeup_workdays.iter().copied().map(DateText).collect(),
        }
    }

    fn is_working_day_number(&self, day: i64) -> bool {
        match self.exceptions.get(&day) {
            Some(DayKind::Makeup) => true,
            Some(DayKind::Holiday) => false,
            None => weekday_index(day) < 5,
        }
    }

    /// Working days in `[from, to)`: the weekdays, less the weekday holidays,
    /// plus the make-up working days. O(exceptions in the range).
    fn working_days_between(&self, from: i64, to: i64) -> i64 {
        if to <= from {
            return 0;
        }
        let adjustment: i64 = self
            .exceptions
            .range(from..to)
            .map(|(_, kind)| match kind {
                DayKind::Makeup => 1,
                DayKind::Holiday => -1,
            })
            .sum();
        weekdays_between(from, to) + adjustment
    }

    /// The `n`-th working day after `day` (`n >= 1`), `None` beyond any date chrono
    /// can represent. Jumps over runs of ordinary weeks in O(1) and visits each
    /// exception at most once, so it is bounded by the configuration's size
    /// whatever `n` is.
    fn nth_working_day_after(&self, day: i64, n: i64) -> Option<i64> {
        if !(1..=MAX_DAY_COUNT).contains(&n) {
            return None;
        }
        let mut from = day + 1;
        let mut left = n;
        for (&exception, &kind) in self.exceptions.range(from..) {
            let weekdays = weekdays_between(from, exception);
            if weekdays >= left {
                return Some(nth_weekday_from(from, left));
            }
            left -= weekdays;
            if kind == DayKind::Makeup {
                left -= 1;
                if left == 0 {
                    return Some(exception);
                }
            }
            from = exception + 1;
        }
        Some(nth_weekday_from(from, left))
    }

    /// Working time from local midnight to `nanos` on a working day.
    fn worked_in_day(&self, nanos: i64) -> i64 {
        self.spans
            .iter()
            .map(|&(start, end)| (nanos.min(end) - start).max(0))
            .sum()
    }

    /// Working time from local midnight to `local` (zero on a non-working day).
    fn worked_before(&self, local: Local) -> i64 {
        if self.is_working_day_number(local.day) {
            self.worked_in_day(local.nanos)
        } else {
            0
        }
    }

    /// The earliest time of a working day at which `worked` (in `(0, day_nanos]`)
    /// of its working time has elapsed: inside a period or at its end.
    fn time_of_day_worked(&self, worked: i64) -> i64 {
        let mut before = 0;
        for &(start, end) in &self.spans {
            let length = end - start;
            if worked <= before + length {
                return start + (worked - before);
            }
            before += length;
        }
        self.spans.last().map_or(0, |span| span.1)
    }

    fn add_working_nanos(&self, start: DateTime<Utc>, amount: i128) -> DateTime<Utc> {
        if amount <= 0 {
            return start;
        }
        let local = Local::of(start);
        let day_nanos = i128::from(self.day_nanos);
        // Working time still to count after the start day.
        let mut left = amount;
        if self.is_working_day_number(local.day) {
            let target = i128::from(self.worked_in_day(local.nanos)) + amount;
            if target <= day_nanos {
                return match i64::try_from(target) {
                    Ok(target) => utc_of(local.day, self.time_of_day_worked(target)),
                    Err(_) => DateTime::<Utc>::MAX_UTC,
                };
            }
            left = target - day_nanos;
        }
        // `days - 1` whole working days, then `last` (in `(0, day_nanos]`) of the
        // `days`-th working day after the start day.
        let days = (left + day_nanos - 1) / day_nanos;
        let last = left - (days - 1) * day_nanos;
        let day = i64::try_from(days)
            .ok()
            .and_then(|days| self.nth_working_day_after(local.day, days));
        match (day, i64::try_from(last)) {
            (Some(day), Ok(last)) => utc_of(day, self.time_of_day_worked(last)),
            _ => DateTime::<Utc>::MAX_UTC,
        }
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

fn unique_dates(
    dates: impl IntoIterator<Item = NaiveDate>,
    list: &'static str,
) -> Result<BTreeSet<NaiveDate>, CalendarError> {
    let mut unique = BTreeSet::new();
    for date in dates {
        if !unique.insert(date) {
            return Err(CalendarError::DuplicateDate { date, list });
        }
    }
    Ok(unique)
}

/// The calendar is serialized in its file form (so JSON and TOML look alike) and
/// deserializing checks it exactly as [`WorkCalendar::from_toml_str`] does.
impl Serialize for WorkCalendar {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_file().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for WorkCalendar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let file = CalendarFile::deserialize(deserializer)?;
        WorkCalendar::from_file(file).map_err(serde::de::Error::custom)
    }
}

/// A calendar file as written, before validation.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    periods: Option<Vec<PeriodText>>,
    #[serde(default)]
    holidays: Vec<DateText>,
    #[serde(default)]
    makeup_workdays: Vec<DateText>,
}

/// A working period written `["08:30", "12:00"]`: exactly two times.
#[derive(Debug, Clone, Copy)]
struct PeriodText(NaiveTime, NaiveTime);

impl Serialize for PeriodText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (TimeText(self.0), TimeText(self.1)).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PeriodText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = PeriodText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a working period [start, end], e.g. [\"08:30\", \"12:00\"]")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<PeriodText, A::Error> {
                let wrong_length =
                    || serde::de::Error::custom("a working period is [start, end]: two times");
                let start: TimeText = seq.next_element()?.ok_or_else(wrong_length)?;
                let end: TimeText = seq.next_element()?.ok_or_else(wrong_length)?;
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(wrong_length());
                }
                Ok(PeriodText(start.0, end.0))
            }
        }

        deserializer.deserialize_seq(Visitor)
    }
}

/// A local time written `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fff`.
#[derive(Debug, Clone, Copy)]
struct TimeText(NaiveTime);

impl Serialize for TimeText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&time_text(self.0))
    }
}

impl<'de> Deserialize<'de> for TimeText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TimeText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a local time as a string \"HH:MM\", e.g. \"08:30\"")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<TimeText, E> {
                NaiveTime::parse_from_str(text, "%H:%M")
                    .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S%.f"))
                    .map(TimeText)
                    .map_err(|_| {
                        E::custom(format!(
                            "invalid time {text:?}: expected \"HH:MM\" between 00:00 and 23:59, e.g. \"08:30\""
                        ))
                    })
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                _map: A,
            ) -> Result<TimeText, A::Error> {
                Err(serde::de::Error::custom(
                    "write a time as a quoted string, e.g. \"08:30\"",
                ))
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}

/// A date written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy)]
struct DateText(NaiveDate);

impl Serialize for DateText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.format("%Y-%m-%d").to_string())
    }
}

impl<'de> Deserialize<'de> for DateText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = DateText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a date as a string \"YYYY-MM-DD\", e.g. \"2026-10-01\"")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<DateText, E> {
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map(DateText)
                    .map_err(|_| {
                        E::custom(format!(
                            "invalid date {text:?}: expected a real date \"YYYY-MM-DD\", e.g. \"2026-10-01\""
                        ))
                    })
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                _map: A,
            ) -> Result<DateText, A::Error> {
                Err(serde::de::Error::custom(
                    "write a date as a quoted string, e.g. \"2026-10-01\"",
                ))
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}
