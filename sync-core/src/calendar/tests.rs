use super::*;

use proptest::prelude::*;

/// A local (UTC+08:00) time `YYYY-MM-DD HH:MM[:SS[.f]]` as a UTC instant.
fn at(text: &str) -> DateTime<Utc> {
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
        .unwrap();
    from_local(local).unwrap()
}

/// A UTC instant as local time, `YYYY-MM-DD HH:MM:SS[.f]`.
fn local(instant: DateTime<Utc>) -> String {
    to_local(instant).format("%Y-%m-%d %H:%M:%S%.f").to_string()
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn time(text: &str) -> NaiveTime {
    NaiveTime::parse_from_str(text, "%H:%M").unwrap()
}

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn hours(amount: i64) -> TimeDelta {
    TimeDelta::hours(amount)
}

fn wh(amount: u32) -> TimeLimit {
    TimeLimit::working_hours(amount)
}

fn wd(amount: u32) -> TimeLimit {
    TimeLimit::working_days(amount)
}

/// Local due time of `limit` started at local `start` on `calendar`.
fn due(calendar: &WorkCalendar, start: &str, limit: TimeLimit) -> String {
    local(calendar.due(at(start), limit))
}

const NATIONAL_DAY_TOML: &str = r#"
# Constructed on the pattern of a National Day run (国庆节): Thursday 10-01 to
# Wednesday 10-07 off, Saturday 10-10 worked (调休上班).
holidays = [
    "2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04",
    "2026-10-05", "2026-10-06", "2026-10-07",
]
makeup_workdays = ["2026-10-10"]
"#;

fn national_day() -> WorkCalendar {
    WorkCalendar::from_toml_str(NATIONAL_DAY_TOML).unwrap()
}

fn config_error(text: &str) -> CalendarError {
    WorkCalendar::from_toml_str(text).unwrap_err()
}

// ---------------------------------------------------------------------------------
// Time zone.

#[test]
fn shanghai_is_utc_plus_eight() {
    assert_eq!(SHANGHAI.local_minus_utc(), 8 * 3600);
    assert_eq!(at("2026-11-27 08:30"), utc("2026-11-27T00:30:00Z"));
    assert_eq!(local(utc("2026-11-27T00:30:00Z")), "2026-11-27 08:30:00");
    // The local date changes at 16:00 UTC.
    assert_eq!(
        to_local(utc("2026-11-27T16:00:00Z")).date_naive(),
        date("2026-11-28")
    );
    assert_eq!(
        to_local(utc("2026-11-27T15:59:59Z")).date_naive(),
        date("2026-11-27")
    );
}

#[test]
fn working_time_is_judged_in_local_time() {
    let calendar = WorkCalendar::standard();
    // Friday 2026-11-27 08:30 local is 00:30 UTC.
    assert!(calendar.is_working_time(utc("2026-11-27T00:30:00Z")));
    assert!(!calendar.is_working_time(utc("2026-11-27T00:29:59.999999999Z")));
    // 18:00 local is 10:00 UTC; 17:59:59 local is still working time.
    assert!(calendar.is_working_time(utc("2026-11-27T09:59:59Z")));
    assert!(!calendar.is_working_time(utc("2026-11-27T10:00:00Z")));
    // Monday 00:30 UTC is Monday 08:30 local, but Sunday 23:00 UTC is Monday 07:00.
    assert!(calendar.is_working_time(utc("2026-11-30T00:30:00Z")));
    assert!(!calendar.is_working_time(utc("2026-11-29T23:00:00Z")));
    // Saturday 08:30 local (Saturday 00:30 UTC) is not.
    assert!(!calendar.is_working_time(utc("2026-11-28T00:30:00Z")));
}

#[test]
fn day_numbers_and_weekdays_match_chrono() {
    assert_eq!(day_number(date("1970-01-01")), 0);
    let mut day = date("1600-02-27");
    while day < date("2400-03-02") {
        let number = day_number(day);
        assert_eq!(
            weekday_index(number),
            i64::from(day.weekday().num_days_from_monday()),
            "{day}"
        );
        day += TimeDelta::days(37);
    }
}

// ---------------------------------------------------------------------------------
// Working days and working time.

#[test]
fn monday_to_friday_are_working_days() {
    let calendar = WorkCalendar::standard();
    assert!(calendar.is_working_day(date("2026-11-26"))); // Thursday
    assert!(calendar.is_working_day(date("2026-11-27"))); // Friday
    assert!(!calendar.is_working_day(date("2026-11-28"))); // Saturday
    assert!(!calendar.is_working_day(date("2026-11-29"))); // Sunday
    assert!(calendar.is_working_day(date("2026-11-30"))); // Monday
}

#[test]
fn holidays_and_makeup_days() {
    let calendar = national_day();
    assert!(calendar.is_working_day(date("2026-09-30")));
    for day in 1..=7 {
        let holiday = NaiveDate::from_ymd_opt(2026, 10, day).unwrap();
        assert!(!calendar.is_working_day(holiday), "{holiday}");
    }
    assert!(calendar.is_working_day(date("2026-10-08")));
    assert!(calendar.is_working_day(date("2026-10-09")));
    assert!(calendar.is_working_day(date("2026-10-10"))); // the make-up Saturday
    assert!(!calendar.is_working_day(date("2026-10-11"))); // an ordinary Sunday
    assert!(!calendar.is_working_day(date("2026-10-17"))); // an ordinary Saturday
    assert!(calendar.is_working_time(at("2026-10-10 08:30")));
    assert!(!calendar.is_working_time(at("2026-10-01 09:00")));
    // Weekend holidays are kept as configured.
    assert_eq!(calendar.holidays().len(), 7);
    assert!(calendar.holidays().contains(&date("2026-10-03")));
    assert_eq!(
        calendar
            .makeup_workdays()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        [date("2026-10-10")]
    );
}

#[test]
fn periods_include_their_start_and_exclude_their_end() {
    let calendar = WorkCalendar::standard();
    let cases = [
        ("2026-11-30 00:00", false),
        ("2026-11-30 08:29:59.999999999", false),
        ("2026-11-30 08:30", true),
        ("2026-11-30 11:59:59.999999999", true),
        ("2026-11-30 12:00", false),
        ("2026-11-30 13:29:59", false),
        ("2026-11-30 13:30", true),
        ("2026-11-30 17:59:59", true),
        ("2026-11-30 18:00", false),
        ("2026-11-30 23:59:59", false),
        ("2026-11-28 10:00", false),
    ];
    for (instant, working) in cases {
        assert_eq!(calendar.is_working_time(at(instant)), working, "{instant}");
    }
}

#[test]
fn working_day_length_is_the_sum_of_the_periods() {
    assert_eq!(WorkCalendar::standard().working_day_length(), hours(8));
    let short = WorkCalendar::new([(time("09:00"), time("11:15"))], [], []).unwrap();
    assert_eq!(short.working_day_length(), TimeDelta::minutes(2 * 60 + 15));
    // One working day is one working day's length of working time.
    assert_eq!(
        due(&short, "2026-11-30 10:00", wd(1)),
        "2026-12-01 10:00:00"
    );
    assert_eq!(
        due(&short, "2026-11-30 10:00", wh(2)),
        "2026-12-01 09:45:00"
    );
}

#[test]
fn standard_is_the_default_configuration() {
    let checked = WorkCalendar::new(DEFAULT_PERIODS, [], []).unwrap();
    assert_eq!(checked, WorkCalendar::standard());
    assert_eq!(WorkCalendar::default(), WorkCalendar::standard());
    assert_eq!(
        WorkCalendar::from_toml_str("").unwrap(),
        WorkCalendar::standard()
    );
    assert_eq!(
        WorkCalendar::standard().periods(),
        [
            (time("08:30"), time("12:00")),
            (time("13:30"), time("18:00"))
        ]
    );
}

// ---------------------------------------------------------------------------------
// Due times.

#[test]
fn working_hours_across_a_weekend() {
    let calendar = WorkCalendar::standard();
    // Friday 16:00 + 4 working hours: 2 on Friday, 2 on Monday.
    assert_eq!(
        due(&calendar, "2026-11-27 16:00", wh(4)),
        "2026-11-30 10:30:00"
    );
    assert_eq!(
        calendar.working_time_between(at("2026-11-27 16:00"), at("2026-11-30 10:30")),
        hours(4)
    );
}

#[test]
fn working_time_across_national_day_and_its_makeup_saturday() {
    let calendar = national_day();
    let start = "2026-09-30 17:00"; // Wednesday, the day before the holiday
    // 1 hour on 09-30, then the holiday is skipped.
    assert_eq!(due(&calendar, start, wh(1)), "2026-09-30 18:00:00");
    assert_eq!(due(&calendar, start, wh(4)), "2026-10-08 11:30:00");
    // 1 + 7 hours; 1 + 8 + 7; 1 + 8 + 8 + 7 on the make-up Saturday.
    assert_eq!(due(&calendar, start, wd(1)), "2026-10-08 17:00:00");
    assert_eq!(due(&calendar, start, wd(2)), "2026-10-09 17:00:00");
    assert_eq!(due(&calendar, start, wd(3)), "2026-10-10 17:00:00");
    // Sunday 10-11 is not worked.
    assert_eq!(due(&calendar, start, wd(4)), "2026-10-12 17:00:00");
    // Started during the holiday, the clock waits for 10-08.
    assert_eq!(
        due(&calendar, "2026-10-03 10:00", wh(2)),
        "2026-10-08 10:30:00"
    );
    // Started on the make-up Saturday.
    assert_eq!(
        due(&calendar, "2026-10-10 17:00", wh(2)),
        "2026-10-12 09:30:00"
    );

    assert_eq!(
        calendar.working_time_between(at(start), at("2026-10-10 17:00")),
        hours(24)
    );
    assert_eq!(
        calendar.working_time_between(at("2026-10-01 00:00"), at("2026-10-08 00:00")),
        TimeDelta::zero()
    );
    assert_eq!(
        calendar.working_time_between(at("2026-10-10 00:00"), at("2026-10-11 00:00")),
        hours(8)
    );
    // On the standard calendar the same limit lands on Thursday 10-01.
    assert_eq!(
        due(&WorkCalendar::standard(), start, wh(4)),
        "2026-10-01 11:30:00"
    );
}

#[test]
fn start_before_the_first_period() {
    let calendar = WorkCalendar::standard();
    assert_eq!(
        due(&calendar, "2026-11-30 07:00", wh(1)),
        "2026-11-30 09:30:00"
    );
    // 3.5 hours in the morning, half an hour after lunch.
    assert_eq!(
        due(&calendar, "2026-11-30 07:00", wh(4)),
        "2026-11-30 14:00:00"
    );
    assert_eq!(
        due(&calendar, "2026-11-30 00:00", wh(8)),
        "2026-11-30 18:00:00"
    );
}

#[test]
fn start_during_lunch() {
    let calendar = WorkCalendar::standard();
    assert_eq!(
        due(&calendar, "2026-11-30 12:30", wh(1)),
        "2026-11-30 14:30:00"
    );
    // 4.5 hours in the afternoon, half an hour the next morning.
    assert_eq!(
        due(&calendar, "2026-11-30 12:30", wh(5)),
        "2026-12-01 09:00:00"
    );
}

#[test]
fn start_after_the_last_period() {
    let calendar = WorkCalendar::standard();
    assert_eq!(
        due(&calendar, "2026-11-30 19:00", wh(1)),
        "2026-12-01 09:30:00"
    );
    // Friday evening and Saturday wait for Monday.
    assert_eq!(
        due(&calendar, "2026-11-27 19:00", wh(1)),
        "2026-11-30 09:30:00"
    );
    assert_eq!(
        due(&calendar, "2026-11-28 10:00", wh(1)),
        "2026-11-30 09:30:00"
    );
    assert_eq!(
        due(&calendar, "2026-11-29 23:59", wh(1)),
        "2026-11-30 09:30:00"
    );
}

#[test]
fn start_exactly_at_period_boundaries() {
    let calendar = WorkCalendar::standard();
    assert_eq!(
        due(&calendar, "2026-11-30 08:30", wh(1)),
        "2026-11-30 09:30:00"
    );
    // 12:00 is the end of the morning (excluded): the clock waits for 13:30.
    assert_eq!(
        due(&calendar, "2026-11-30 12:00", wh(1)),
        "2026-11-30 14:30:00"
    );
    assert_eq!(
        due(&calendar, "2026-11-30 13:30", wh(1)),
        "2026-11-30 14:30:00"
    );
    assert_eq!(
        due(&calendar, "2026-11-30 18:00", wh(1)),
        "2026-12-01 09:30:00"
    );
    // One nanosecond before the end of the morning.
    assert_eq!(
        due(&calendar, "2026-11-30 11:59:59.999999999", wh(1)),
        "2026-11-30 14:29:59.999999999"
    );
}

#[test]
fn due_at_a_period_end_stays_at_that_end() {
    let calendar = WorkCalendar::standard();
    assert_eq!(
        due(&calendar, "2026-11-30 09:00", wh(3)),
        "2026-11-30 12:00:00"
    );
    assert_eq!(
        due(&calendar, "2026-11-30 11:00", wh(1)),
        "2026-11-30 12:00:00"
    );
    assert_eq!(
        due(&calendar, "2026-11-30 14:00", wh(4)),
        "2026-11-30 18:00:00"
    );
    // Friday's limit ends on Friday, not on Monday morning.
    assert_eq!(
        due(&calendar, "2026-11-27 14:00", wh(4)),
        "2026-11-27 18:00:00"
    );
    assert_eq!(
        due(&calendar, "2026-11-30 08:30", wd(1)),
        "2026-11-30 18:00:00"
    );
    assert_eq!(
        due(&calendar, "2026-11-30 07:00", wh(8)),
        "2026-11-30 18:00:00"
    );
    // A clock started after hours on Friday runs all of Monday.
    assert_eq!(
        due(&calendar, "2026-11-27 18:00", wd(1)),
        "2026-11-30 18:00:00"
    );
    assert_eq!(
        due(&calendar, "2026-11-27 18:00", wd(2)),
        "2026-12-01 18:00:00"
    );
    assert_eq!(
        calendar.working_time_between(at("2026-11-30 09:00"), at("2026-11-30 12:00")),
        hours(3)
    );
}

#[test]
fn touching_periods_end_at_the_first_period_end() {
    let calendar = WorkCalendar::new(
        [
            (time("08:00"), time("12:00")),
            (time("12:00"), time("13:00")),
        ],
        [],
        [],
    )
    .unwrap();
    assert_eq!(calendar.working_day_length(), hours(5));
    assert_eq!(
        due(&calendar, "2026-11-30 08:00", wh(4)),
        "2026-11-30 12:00:00"
    );
    assert_eq!(
        due(&calendar, "2026-11-30 12:00", wh(1)),
        "2026-11-30 13:00:00"
    );
    assert!(calendar.is_working_time(at("2026-11-30 12:00")));
}

#[test]
fn calendar_hours_ignore_the_calendar() {
    let calendar = national_day();
    assert_eq!(
        due(&calendar, "2026-11-27 23:00", TimeLimit::hours(2)),
        "2026-11-28 01:00:00"
    );
    assert_eq!(
        due(&calendar, "2026-10-01 23:30", TimeLimit::hours(2)),
        "2026-10-02 01:30:00"
    );
    assert_eq!(
        due(&calendar, "2026-09-30 12:15:30", TimeLimit::hours(48)),
        "2026-10-02 12:15:30"
    );
    assert_eq!(
        due(&calendar, "2026-10-01 23:30", TimeLimit::hours(0)),
        "2026-10-01 23:30:00"
    );
}

#[test]
fn working_days_are_eight_working_hours_each() {
    let calendar = national_day();
    let starts = [
        "2026-09-28 10:00",
        "2026-09-30 17:00",
        "2026-10-03 12:00",
        "2026-10-10 13:30",
        "2026-11-27 18:00",
    ];
    for start in starts {
        for days in [1, 2, 5, 10, 365] {
            assert_eq!(
                calendar.due(at(start), wd(days)),
                calendar.due(at(start), wh(8 * days)),
                "{start} + {days} working days"
            );
        }
    }
    // A working week from Wednesday 10:00 is the next Wednesday 10:00.
    assert_eq!(
        due(&WorkCalendar::standard(), "2026-11-25 10:00", wd(5)),
        "2026-12-02 10:00:00"
    );
}

#[test]
fn zero_amounts_are_due_at_the_start() {
    let calendar = WorkCalendar::standard();
    let saturday = at("2026-11-28 10:00");
    assert_eq!(calendar.due(saturday, wh(0)), saturday);
    assert_eq!(calendar.due(saturday, wd(0)), saturday);
    assert_eq!(calendar.add_working_time(saturday, hours(-3)), saturday);
}

#[test]
fn next_working_time_is_where_the_clock_starts() {
    let calendar = national_day();
    let next = |instant: &str| local(calendar.next_working_time(at(instant)));
    assert_eq!(next("2026-09-30 09:15:07"), "2026-09-30 09:15:07");
    assert_eq!(next("2026-09-30 08:00"), "2026-09-30 08:30:00");
    assert_eq!(next("2026-09-30 12:00"), "2026-09-30 13:30:00");
    assert_eq!(next("2026-09-30 18:00"), "2026-10-08 08:30:00");
    assert_eq!(next("2026-10-09 19:00"), "2026-10-10 08:30:00");
    assert_eq!(next("2026-10-10 18:00"), "2026-10-12 08:30:00");
}

#[test]
fn extensions_count_from_the_old_due_time() {
    let calendar = WorkCalendar::standard();
    let old = at("2026-11-27 18:00"); // Friday, at the end of the day
    assert_eq!(local(calendar.extend(old, wh(1))), "2026-11-30 09:30:00");
    assert_eq!(local(calendar.extend(old, wd(2))), "2026-12-01 18:00:00");
    assert_eq!(
        local(calendar.extend(old, TimeLimit::hours(2))),
        "2026-11-27 20:00:00"
    );
}

#[test]
fn a_stopped_clock_resumes_with_what_was_left() {
    let calendar = WorkCalendar::standard();
    let start = at("2026-11-30 16:00");
    let limit = wh(4);
    // Stopped (挂起) at 17:00 after 1 hour, resumed Wednesday 16:00 with 3 left.
    let used = calendar.working_time_between(start, at("2026-11-30 17:00"));
    assert_eq!(used, hours(1));
    let left = hours(4) - used;
    let resumed = calendar.add_working_time(at("2026-12-02 16:00"), left);
    assert_eq!(local(resumed), "2026-12-03 09:30:00");
    assert_eq!(
        calendar.add_working_time(start, hours(4)),
        calendar.due(start, limit)
    );
    assert_eq!(
        local(calendar.add_working_time(at("2026-11-30 17:00"), TimeDelta::minutes(90))),
        "2026-12-01 09:00:00"
    );
}

// ---------------------------------------------------------------------------------
// Working time between two instants.

#[test]
fn working_time_between_counts_only_working_time() {
    let calendar = WorkCalendar::standard();
    let between = |from: &str, to: &str| calendar.working_time_between(at(from), at(to));
    assert_eq!(
        between("2026-11-30 10:00", "2026-11-30 10:00"),
        TimeDelta::zero()
    );
    assert_eq!(
        between("2026-11-30 11:00", "2026-11-30 10:00"),
        TimeDelta::zero()
    );
    assert_eq!(
        between("2026-11-30 11:00", "2026-11-30 14:00"),
        hours(1) + TimeDelta::minutes(30)
    );
    assert_eq!(
        between("2026-11-30 12:10", "2026-11-30 13:20"),
        TimeDelta::zero()
    );
    assert_eq!(
        between("2026-11-28 00:00", "2026-11-30 00:00"),
        TimeDelta::zero()
    );
    assert_eq!(between("2026-11-30 00:00", "2026-12-07 00:00"), hours(40));
    assert_eq!(
        between("2026-11-30 08:30", "2026-11-30 08:30:00.000000001"),
        TimeDelta::nanoseconds(1)
    );
    // 2026 has 261 weekdays.
    assert_eq!(
        between("2026-01-01 00:00", "2027-01-01 00:00"),
        hours(261 * 8)
    );
    // With National Day: five weekday holidays fewer, one Saturday more.
    assert_eq!(
        national_day().working_time_between(at("2026-01-01 00:00"), at("2027-01-01 00:00")),
        hours((261 - 5 + 1) * 8)
    );
}

// ---------------------------------------------------------------------------------
// Long limits and extreme inputs.

#[test]
fn long_limits_are_exact() {
    let calendar = WorkCalendar::standard();
    // 365 working days from Thursday 2026-01-01: 73 whole weeks, ending on the
    // Wednesday 510 days later.
    assert_eq!(
        due(&calendar, "2026-01-01 00:00", wd(365)),
        "2027-05-26 18:00:00"
    );
    assert_eq!(
        due(&calendar, "2026-01-01 00:00", wh(2920)),
        "2027-05-26 18:00:00"
    );
    let start = at("2026-03-17 15:42:11");
    let end = calendar.due(start, wd(365));
    assert_eq!(calendar.working_time_between(start, end), hours(2920));
}

#[test]
fn long_holiday_runs_are_skipped() {
    // Every weekday of 2026 and 2027 is a holiday, except for one make-up Saturday.
    let mut holidays = Vec::new();
    let mut day = date("2026-01-01");
    while day < date("2028-01-01") {
        if !is_weekend(day) {
            holidays.push(day);
        }
        day = day.succ_opt().unwrap();
    }
    let calendar = WorkCalendar::new(DEFAULT_PERIODS, holidays.clone(), []).unwrap();
    assert_eq!(
        due(&calendar, "2025-12-31 17:00", wh(2)),
        "2028-01-03 09:30:00"
    );
    assert_eq!(
        calendar.working_time_between(at("2025-12-31 17:00"), at("2028-01-03 09:30")),
        hours(2)
    );
    let calendar = WorkCalendar::new(DEFAULT_PERIODS, holidays, [date("2027-06-05")]).unwrap();
    assert_eq!(
        due(&calendar, "2025-12-31 17:00", wh(2)),
        "2027-06-05 09:30:00"
    );
    assert_eq!(
        due(&calendar, "2025-12-31 17:00", wd(2)),
        "2028-01-03 17:00:00"
    );
    let end = calendar.due(at("2026-05-01 00:00"), wd(365));
    assert_eq!(
        calendar.working_time_between(at("2026-05-01 00:00"), end),
        hours(365 * 8)
    );
}

#[test]
fn extreme_inputs_saturate_without_panicking() {
    let calendar = national_day();
    let start = at("2026-09-30 17:00");
    let max = DateTime::<Utc>::MAX_UTC;
    let min = DateTime::<Utc>::MIN_UTC;
    assert_eq!(calendar.due(start, wd(u32::MAX)), max);
    assert_eq!(calendar.due(start, wh(u32::MAX)), max);
    assert_eq!(calendar.due(start, TimeLimit::hours(u32::MAX)), max);
    assert_eq!(calendar.add_working_time(start, TimeDelta::MAX), max);
    assert_eq!(calendar.due(max, wh(1)), max);
    assert_eq!(calendar.due(max, TimeLimit::hours(1)), max);
    assert_eq!(calendar.next_working_time(max), max);
    assert!(calendar.due(min, wh(1)) > min);
    assert!(calendar.working_time_between(min, max) > hours(1_000_000));
    assert!(calendar.working_time_between(max, min).is_zero());
    // Whatever the answers, they come back.
    let _ = calendar.is_working_time(min);
    let _ = calendar.is_working_time(max);
    let _ = calendar.next_working_time(min);
    // A leap second counts as the last nanosecond of its second.
    let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
        .unwrap()
        .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
        .unwrap()
        .and_utc();
    assert_eq!(local(calendar.due(leap, wh(1))), "2017-01-02 09:30:00");
    // The tiniest possible calendar still terminates on the largest limits.
    let tiny = WorkCalendar::new(
        [(
            time("12:00"),
            NaiveTime::from_hms_nano_opt(12, 0, 0, 1).unwrap(),
        )],
        [],
        [],
    )
    .unwrap();
    assert_eq!(tiny.due(start, wd(u32::MAX)), max);
    assert_eq!(tiny.due(start, wh(1)), max);
    assert_eq!(
        local(tiny.due(start, wd(3))),
        "2026-10-05 12:00:00.000000001"
    );
}

// ---------------------------------------------------------------------------------
// Configuration.

#[test]
fn the_documented_format_parses() {
    let calendar = WorkCalendar::from_toml_str(
        r#"
periods = [["08:30", "12:00"], ["13:30", "18:00"]]   # optional, default as above
holidays = ["2026-10-01", "2026-10-02"]
makeup_workdays = ["2026-10-10"]
"#,
    )
    .unwrap();
    assert_eq!(calendar.periods(), DEFAULT_PERIODS);
    assert!(!calendar.is_working_day(date("2026-10-02")));
    assert!(calendar.is_working_day(date("2026-10-10")));

    let summer =
        WorkCalendar::from_toml_str(r#"periods = [["08:00", "12:00"], ["15:00:30", "18:30"]]"#)
            .unwrap();
    assert_eq!(
        summer.working_day_length(),
        hours(7) + TimeDelta::seconds(30 * 60 - 30)
    );
    assert!(summer.holidays().is_empty());
}

#[test]
fn serialization_round_trips() {
    let calendar = WorkCalendar::new(
        [
            (time("08:00"), time("12:00")),
            (NaiveTime::from_hms_opt(14, 0, 30).unwrap(), time("18:00")),
        ],
        [date("2026-10-02"), date("2026-10-01")],
        [date("2026-10-10")],
    )
    .unwrap();
    let text = toml::to_string(&calendar).unwrap();
    assert!(text.contains("\"14:00:30\""), "{text}");
    assert!(text.contains("\"2026-10-01\""), "{text}");
    assert_eq!(WorkCalendar::from_toml_str(&text).unwrap(), calendar);
    let json = serde_json::to_string(&calendar).unwrap();
    assert_eq!(
        json,
        r#"{"periods":[["08:00","12:00"],["14:00:30","18:00"]],"holidays":["2026-10-01","2026-10-02"],"makeup_workdays":["2026-10-10"]}"#
    );
    assert_eq!(
        serde_json::from_str::<WorkCalendar>(&json).unwrap(),
        calendar
    );
    // Deserializing checks like parsing does.
    let bad = r#"{"holidays":["2026-10-10"],"makeup_workdays":["2026-10-10"]}"#;
    let error = serde_json::from_str::<WorkCalendar>(bad).unwrap_err();
    assert!(error.to_string().contains("both"), "{error}");
}

#[test]
fn overlapping_unsorted_and_empty_periods_are_refused() {
    let error = config_error(r#"periods = [["08:30", "12:00"], ["11:00", "18:00"]]"#);
    assert_eq!(
        error,
        CalendarError::OverlappingPeriods {
            first: (time("08:30"), time("12:00")),
            second: (time("11:00"), time("18:00")),
        }
    );
    assert_eq!(
        error.to_string(),
        "working periods 08:30–12:00 and 11:00–18:00 overlap"
    );
    assert!(matches!(
        config_error(r#"periods = [["13:30", "18:00"], ["08:30", "12:00"]]"#),
        CalendarError::PeriodsNotSorted { .. }
    ));
    assert_eq!(
        config_error(r#"periods = [["18:00", "08:30"]]"#),
        CalendarError::EmptyPeriod {
            start: time("18:00"),
            end: time("08:30"),
        }
    );
    assert!(matches!(
        config_error(r#"periods = [["12:00", "12:00"]]"#),
        CalendarError::EmptyPeriod { .. }
    ));
    assert_eq!(config_error("periods = []"), CalendarError::NoPeriods);
    assert_eq!(
        WorkCalendar::new([], [], []).unwrap_err(),
        CalendarError::NoPeriods
    );
    let leap = NaiveTime::from_hms_milli_opt(23, 59, 59, 1_500).unwrap();
    assert_eq!(
        WorkCalendar::new([(time("08:00"), leap)], [], []).unwrap_err(),
        CalendarError::LeapSecond { time: leap }
    );
}

#[test]
fn date_list_mistakes_are_refused() {
    let error = config_error(
        r#"
holidays = ["2026-10-01", "2026-10-10"]
makeup_workdays = ["2026-10-10"]
"#,
    );
    assert_eq!(
        error,
        CalendarError::HolidayAndMakeup {
            date: date("2026-10-10")
        }
    );
    assert_eq!(
        error.to_string(),
        "2026-10-10 is listed both as a holiday and as a make-up working day"
    );
    let error = config_error(r#"makeup_workdays = ["2026-10-09"]"#);
    assert_eq!(
        error,
        CalendarError::MakeupOnWeekday {
            date: date("2026-10-09"),
            weekday: Weekday::Fri,
        }
    );
    assert!(error.to_string().contains("is a Fri"), "{error}");
    assert_eq!(
        config_error(r#"holidays = ["2026-10-01", "2026-10-01"]"#),
        CalendarError::DuplicateDate {
            date: date("2026-10-01"),
            list: "holidays",
        }
    );
}

#[test]
fn unknown_keys_and_bad_values_are_toml_errors() {
    let toml_error = |text: &str| match config_error(text) {
        CalendarError::Toml {
            line,
            column,
            message,
        } => (line, column, message),
        other => panic!("expected a TOML error, got {other:?}"),
    };

    let (line, _, message) = toml_error("holidays = []\nmakeup_days = []\n");
    assert_eq!(line, Some(2));
    assert!(message.contains("unknown field `makeup_days`"), "{message}");

    let (line, _, message) = toml_error("holidays = [\n  \"2026-10-01\",\n  \"2026-02-30\",\n]");
    assert_eq!(line, Some(3));
    assert!(message.contains("invalid date \"2026-02-30\""), "{message}");
    let text = config_error(r#"holidays = ["2026/10/01"]"#).to_string();
    assert!(
        text.starts_with("invalid calendar TOML at line 1"),
        "{text}"
    );
    assert!(text.contains("\"2026/10/01\""), "{text}");

    let (_, _, message) = toml_error("holidays = [2026-10-01]");
    assert!(message.contains("quoted string"), "{message}");

    let (_, _, message) = toml_error(r#"periods = [["8h30", "12:00"]]"#);
    assert!(message.contains("invalid time \"8h30\""), "{message}");
    let (_, _, message) = toml_error(r#"periods = [["13:30", "24:00"]]"#);
    assert!(message.contains("invalid time \"24:00\""), "{message}");
    let (_, _, message) = toml_error(r#"periods = [["08:30", "12:00", "13:00"]]"#);
    assert!(message.contains("two times"), "{message}");
    let (_, _, message) = toml_error(r#"periods = [["08:30"]]"#);
    assert!(message.contains("two times"), "{message}");
    let (_, _, message) = toml_error("holidays = \"2026-10-01\"");
    assert!(!message.is_empty());
    let (line, _, _) = toml_error("holidays = [");
    assert!(line.is_some());
}

// ---------------------------------------------------------------------------------
// Properties.

/// 2025-01-01 to 2028-01-01 local, as UTC seconds.
fn instants() -> impl Strategy<Value = DateTime<Utc>> {
    let from = at("2025-01-01 00:00").timestamp();
    let to = at("2028-01-01 00:00").timestamp();
    prop_oneof![
        // Anywhere, to the nanosecond.
        (from..to, 0..1_000_000_000_u32)
            .prop_map(|(seconds, nanos)| DateTime::from_timestamp(seconds, nanos).unwrap()),
        // On a whole half hour, to hit the period boundaries often.
        (from / 1800..to / 1800).prop_map(|half_hours| DateTime::from_timestamp(
            half_hours * 1800,
            0
        )
        .unwrap()),
    ]
}

fn calendars() -> impl Strategy<Value = WorkCalendar> {
    prop_oneof![Just(WorkCalendar::standard()), Just(national_day())]
}

/// An independent working-time test for the default periods, written with chrono
/// only: the calendar under test must agree with it minute by minute.
fn reference_is_working(
    local: NaiveDateTime,
    holidays: &[NaiveDate],
    makeups: &[NaiveDate],
) -> bool {
    let day = local.date();
    let working_day = makeups.contains(&day)
        || (!matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !holidays.contains(&day));
    let minutes = local.hour() * 60 + local.minute();
    working_day
        && ((8 * 60 + 30..12 * 60).contains(&minutes) || (13 * 60 + 30..18 * 60).contains(&minutes))
}

/// The calendar under test and, for the reference, its holidays and make-up days.
fn reference_calendar(national: bool) -> (WorkCalendar, Vec<NaiveDate>, Vec<NaiveDate>) {
    if national {
        let holidays = (1..=7)
            .map(|day| NaiveDate::from_ymd_opt(2026, 10, day).unwrap())
            .collect();
        (national_day(), holidays, vec![date("2026-10-10")])
    } else {
        (WorkCalendar::standard(), Vec::new(), Vec::new())
    }
}

proptest! {
    #[test]
    fn working_time_between_inverts_due(
        calendar in calendars(),
        start in instants(),
        amount in 0..=2920_u32,
    ) {
        let end = calendar.due(start, wh(amount));
        prop_assert!(end >= start);
        prop_assert_eq!(
            calendar.working_time_between(start, end),
            hours(i64::from(amount))
        );
        if amount > 0 {
            // The earliest such instant: a nanosecond earlier is not enough, and
            // that nanosecond is working time.
            let before = end - TimeDelta::nanoseconds(1);
            prop_assert!(calendar.working_time_between(start, before) < hours(i64::from(amount)));
            prop_assert!(calendar.is_working_time(before));
        }
    }

    #[test]
    fn due_is_monotone_in_the_amount(
        calendar in calendars(),
        start in instants(),
        amount in 0..2920_u32,
    ) {
        prop_assert!(calendar.due(start, wh(amount)) < calendar.due(start, wh(amount + 1)));
        prop_assert!(calendar.due(start, wd(amount)) < calendar.due(start, wd(amount + 1)));
    }

    #[test]
    fn working_days_are_working_hours_times_eight(
        calendar in calendars(),
        start in instants(),
        days in 0..=365_u32,
    ) {
        prop_assert_eq!(calendar.due(start, wd(days)), calendar.due(start, wh(8 * days)));
    }

    #[test]
    fn due_is_additive(
        calendar in calendars(),
        start in instants(),
        first in 1..=100_u32,
        second in 1..=100_u32,
    ) {
        let step = calendar.due(calendar.due(start, wh(first)), wh(second));
        prop_assert_eq!(step, calendar.due(start, wh(first + second)));
    }

    #[test]
    fn nth_working_day_matches_stepping_day_by_day(
        calendar in calendars(),
        day in 20_600_i64..20_760, // around 2026-10-01 (day 20_727)
        n in 1..=40_i64,
    ) {
        let mut stepped = day;
        let mut found = 0;
        while found < n {
            stepped += 1;
            if calendar.is_working_day_number(stepped) {
                found += 1;
            }
        }
        prop_assert_eq!(calendar.nth_working_day_after(day, n), Some(stepped));
        prop_assert_eq!(calendar.working_days_between(day + 1, stepped + 1), n);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Due times agree with counting working minutes one by one, around National
    /// Day, on an independent definition of working time.
    #[test]
    fn due_matches_counting_minute_by_minute(
        national in any::<bool>(),
        minute in 0..(30 * 24 * 60_i64),
        amount in 1..=24_u32,
    ) {
        let (calendar, holidays, makeups) = reference_calendar(national);
        let start = at("2026-09-20 00:00") + TimeDelta::minutes(minute);
        let mut instant = start;
        let mut worked = 0;
        while worked < amount * 60 {
            if reference_is_working(to_local(instant).naive_local(), &holidays, &makeups) {
                worked += 1;
            }
            instant += TimeDelta::minutes(1);
        }
        prop_assert_eq!(local(calendar.due(start, wh(amount))), local(instant));
    }

    #[test]
    fn working_time_between_matches_counting_minute_by_minute(
        national in any::<bool>(),
        from in 0..(30 * 24 * 60_i64),
        length in 0..(8 * 24 * 60_i64),
    ) {
        let (calendar, holidays, makeups) = reference_calendar(national);
        let from = at("2026-09-20 00:00") + TimeDelta::minutes(from);
        let to = from + TimeDelta::minutes(length);
        let mut minutes = 0;
        let mut instant = from;
        while instant < to {
            let local = to_local(instant).naive_local();
            prop_assert_eq!(
                calendar.is_working_time(instant),
                reference_is_working(local, &holidays, &makeups)
            );
            if reference_is_working(local, &holidays, &makeups) {
                minutes += 1;
            }
            instant += TimeDelta::minutes(1);
        }
        prop_assert_eq!(calendar.working_time_between(from, to), TimeDelta::minutes(minutes));
    }
}
