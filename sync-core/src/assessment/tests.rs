//! The facts of folded cases, the rates, the rules file and the ranking.

use super::*;
use crate::case::tests::{at, cast, context, new_case, reported};
use crate::case::{CaseDocument, ReplyChannel};
use crate::catalog::TeamId;
use crate::role::Actor;

fn act(case: &mut CaseDocument, who: &Actor, action: Action, minutes: i64) {
    let id = format!("e{}-{}", who.user, case.fold(&context()).entries.len());
    case.act(&context(), who, &id, action, at(minutes), None)
        .unwrap_or_else(|e| panic!("{} as {}: {e}", who.user, who.role));
}

fn dispatch() -> Action {
    Action::Dispatch {
        team: TeamId::new("sanitation").unwrap(),
        assignee: None,
    }
}

fn facts(case: &CaseDocument) -> CaseFacts {
    CaseFacts::of(&case.fold(&context()))
}

#[test]
fn a_case_closed_on_time_counts_every_step_and_its_handler() {
    let c = cast();
    let mut case = reported(&c.officer);
    act(&mut case, &c.acceptor, Action::Accept, 10);
    act(&mut case, &c.shift_lead, Action::Register, 20);
    act(&mut case, &c.dispatcher, dispatch(), 30);
    act(&mut case, &c.sanitation, Action::Handle, 120);
    act(&mut case, &c.supervisor, Action::Verify, 180);
    act(&mut case, &c.shift_lead, Action::Close, 200);
    let f = facts(&case);
    assert_eq!(f.month.as_deref(), Some("2026-11"));
    assert_eq!(f.level, Some(Level::Street));
    assert_eq!(f.handler.as_deref(), Some("u2"));
    let expected = Counts {
        reports: 1,
        problems: 1,
        own_found: 1,
        registered: 1,
        dispatched: 1,
        dispatched_on_time: 1,
        handled: 1,
        handled_on_time: 1,
        closed: 1,
        closed_on_time: 1,
        accepted: 1,
        accepted_on_time: 1,
        checked: 1,
        checked_on_time: 1,
        ..Counts::default()
    };
    assert_eq!(f.counts, expected);
    assert_eq!(f.accepter.as_deref(), Some(c.acceptor.user.as_str()));
    assert_eq!(f.checker.as_deref(), Some(c.supervisor.user.as_str()));
    assert_eq!(f.dispatcher.as_deref(), Some(c.dispatcher.user.as_str()));
}

#[test]
fn a_returned_dispatch_counts_against_its_dispatcher_and_a_late_check_against_its_checker() {
    let c = cast();
    let mut case = reported(&c.officer);
    act(&mut case, &c.acceptor, Action::Accept, 10);
    act(&mut case, &c.shift_lead, Action::Register, 20);
    act(&mut case, &c.dispatcher, dispatch(), 30);
    act(&mut case, &c.sanitation, Action::Return, 40);
    // The shift lead dispatches again: the first dispatcher's stays the one judged.
    act(&mut case, &c.shift_lead, dispatch(), 50);
    act(&mut case, &c.sanitation, Action::Handle, 120);
    // The check's limit runs from the handling; two days later is late.
    act(&mut case, &c.supervisor, Action::Verify, 120 + 2 * 24 * 60);
    let f = facts(&case);
    assert_eq!(f.dispatcher.as_deref(), Some(c.dispatcher.user.as_str()));
    assert_eq!((f.counts.dispatched, f.counts.dispatch_returned), (1, 1));
    assert_eq!((f.counts.checked, f.counts.checked_on_time), (1, 0));
    assert_eq!(f.checker.as_deref(), Some(c.supervisor.user.as_str()));
    assert_eq!((f.counts.accepted, f.counts.accepted_on_time), (1, 1));
    // The server's return (the case was reclassified) is no one's mistake, and a
    // team's return of the second dispatch is not the first dispatcher's.
    let mut later = reported(&c.officer);
    act(&mut later, &c.acceptor, Action::Accept, 10);
    act(&mut later, &c.shift_lead, Action::Register, 20);
    act(&mut later, &c.dispatcher, dispatch(), 30);
    act(&mut later, &c.server, Action::Return, 40);
    act(&mut later, &c.shift_lead, dispatch(), 50);
    act(&mut later, &c.sanitation, Action::Return, 60);
    let g = facts(&later);
    assert_eq!(g.dispatcher.as_deref(), Some(c.dispatcher.user.as_str()));
    assert_eq!(g.counts.dispatch_returned, 0, "{:?}", g.counts);
    let unit = UnitCounts::of(f.counts);
    assert_eq!(
        unit.fraction(Indicator::AccurateDispatchRate, None),
        Fraction {
            numerator: 0,
            denominator: 1
        }
    );
}

#[test]
fn a_supervisor_is_judged_on_their_reports_acceptances_and_checks_only() {
    let all = |n| Counts {
        reports: n,
        problems: n,
        accepted: n,
        accepted_on_time: n,
        checked: n,
        checked_on_time: n,
        dispatched: n,
        ..Counts::default()
    };
    let unit = UnitCounts::of_supervisor(&all(2), &all(3), &all(5));
    assert_eq!((unit.all.reports, unit.all.problems), (2, 2));
    assert_eq!((unit.all.accepted, unit.all.checked), (3, 5));
    assert_eq!(
        unit.all.dispatched, 0,
        "the cases' other steps are not theirs"
    );
    assert_eq!(unit.cases(UnitKind::Reporter), 10);
    assert_eq!(unit.cases(UnitKind::Dispatcher), 0);
}

#[test]
fn a_late_reworked_case_is_handled_but_not_on_time() {
    let c = cast();
    let mut case = reported(&c.officer);
    act(&mut case, &c.acceptor, Action::Accept, 10);
    act(&mut case, &c.shift_lead, Action::Register, 20);
    act(&mut case, &c.dispatcher, dispatch(), 30);
    // Due at 15:00 (minute 360); handled at 16:00.
    act(&mut case, &c.sanitation, Action::Handle, 420);
    act(&mut case, &c.supervisor, Action::Rework, 430);
    act(&mut case, &c.sanitation2, Action::Handle, 440);
    let f = facts(&case);
    assert_eq!(f.counts.handled, 1);
    assert_eq!(f.counts.handled_on_time, 0);
    assert_eq!(f.counts.reworked, 1);
    assert_eq!(f.counts.closed, 0);
    assert_eq!(f.handler.as_deref(), Some("u3"), "the handling that stood");
}

#[test]
fn a_voided_report_is_a_report_but_no_problem() {
    let c = cast();
    let mut case = reported(&c.officer);
    act(&mut case, &c.acceptor, Action::Void, 10);
    let f = facts(&case);
    assert_eq!(
        f.counts,
        Counts {
            reports: 1,
            ..Counts::default()
        }
    );
}

#[test]
fn who_escalated_decides_whether_the_street_reported_up() {
    let c = cast();
    // The street's dispatcher raises it: the street reported it up.
    let mut own = reported(&c.officer);
    act(&mut own, &c.acceptor, Action::Accept, 10);
    act(&mut own, &c.shift_lead, Action::Register, 20);
    act(&mut own, &c.dispatcher, Action::Escalate, 30);
    let f = facts(&own);
    assert_eq!(f.level, Some(Level::District));
    assert_eq!(f.counts.reported_up_by_street, 1);
    assert_eq!(f.counts.reported_up_by_district, 0);
    // The district's dispatcher takes it up itself: the street did not.
    let mut taken = reported(&c.officer);
    act(&mut taken, &c.acceptor, Action::Accept, 10);
    act(&mut taken, &c.shift_lead, Action::Register, 20);
    act(&mut taken, &c.district_dispatcher, Action::Escalate, 30);
    let f = facts(&taken);
    assert_eq!(f.level, Some(Level::District));
    assert_eq!(f.counts.reported_up_by_street, 0);
}

#[test]
fn a_hotline_case_owes_its_caller_a_reply_once_closed() {
    let c = cast();
    let mut new = new_case();
    new.source = Source::Hotline;
    let mut case = CaseDocument::create(&new, &c.hotline, "e0", at(0)).unwrap();
    act(&mut case, &c.acceptor, Action::Accept, 10);
    act(&mut case, &c.shift_lead, Action::Register, 20);
    act(&mut case, &c.dispatcher, dispatch(), 30);
    act(&mut case, &c.sanitation, Action::Handle, 120);
    act(&mut case, &c.supervisor, Action::Verify, 180);
    act(&mut case, &c.shift_lead, Action::Close, 200);
    let f = facts(&case);
    assert_eq!((f.counts.reply_due, f.counts.replied), (1, 0));
    assert_eq!(f.counts.own_found, 0, "the hotline found it, not the staff");
    act(
        &mut case,
        &c.hotline,
        Action::Reply {
            channel: ReplyChannel::Phone,
            satisfied: false,
        },
        300,
    );
    let f = facts(&case);
    assert_eq!(
        (f.counts.reply_due, f.counts.replied, f.counts.satisfied),
        (1, 1, 0)
    );
}

#[test]
fn a_region_splits_its_cases_by_authority() {
    let street_case = Counts {
        problems: 2,
        registered: 2,
        dispatched: 1,
        ..Counts::default()
    };
    let district_case = Counts {
        problems: 1,
        registered: 1,
        reported_up_by_street: 1,
        ..Counts::default()
    };
    let city_case = Counts {
        problems: 1,
        reported_up_by_district: 1,
        ..Counts::default()
    };
    let groups = [
        (Level::Street, street_case),
        (Level::District, district_case),
        (Level::City, city_case),
    ];
    let street = UnitCounts::of_region(Level::Street, &groups);
    let rate = |u: &UnitCounts, i, l| u.fraction(i, Some(l));
    assert_eq!(
        rate(&street, Indicator::DispatchRate, Level::Street),
        Fraction {
            numerator: 1,
            denominator: 2
        }
    );
    // The street reported one of its two cases that needed a higher level.
    assert_eq!(
        rate(&street, Indicator::ReportUpRate, Level::Street),
        Fraction {
            numerator: 1,
            denominator: 2
        }
    );
    let district = UnitCounts::of_region(Level::District, &groups);
    assert_eq!(
        rate(&district, Indicator::DispatchRate, Level::District),
        Fraction {
            numerator: 1,
            denominator: 3
        }
    );
    assert_eq!(
        rate(&district, Indicator::ReportUpRate, Level::District),
        Fraction {
            numerator: 1,
            denominator: 1
        }
    );
    assert_eq!(
        Fraction {
            numerator: 0,
            denominator: 0
        }
        .rate(),
        None
    );
}

#[test]
fn periods_parse_and_cover_their_months() {
    assert_eq!(
        Period::parse("2026-11").unwrap().months(),
        vec!["2026-11".to_owned()]
    );
    let q = Period::parse("2026-Q4").unwrap();
    assert_eq!(q.months(), ["2026-10", "2026-11", "2026-12"]);
    assert_eq!(q.to_string(), "2026-Q4");
    assert_eq!(
        q.days(),
        (
            NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()
        )
    );
    for bad in [
        "2026-13", "2026-00", "2026-Q5", "26-11", "2026", "2026-1", "x", "1999-01",
    ] {
        assert!(Period::parse(bad).is_err(), "{bad}");
    }
    // November ends at midnight of 1 December, Zhengzhou time (16:00 UTC the day before).
    let nov = Period::parse("2026-11").unwrap();
    let utc = |d, h| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, d, h, 0, 0).unwrap();
    assert!(!nov.ended_by(utc(30, 15)));
    assert!(nov.ended_by(utc(30, 16)));
}

#[test]
fn the_built_in_rules_are_valid_and_bad_files_are_named() {
    let rules = AssessmentRules::standard();
    for kind in UnitKind::ALL {
        let sum: f64 = rules.indicators(kind).iter().map(|(_, w)| w).sum();
        assert!((sum - 100.0).abs() < 1e-9, "{kind:?}");
    }
    assert_eq!(rules.grade(90.0), "A");
    assert_eq!(rules.grade(89.9), "B");
    assert_eq!(rules.grade(39.0), "E");
    let not_hundred = DEFAULT_RULES.replace("dispatch_rate = 10", "dispatch_rate = 11");
    assert_eq!(
        AssessmentRules::from_toml_str(&not_hundred),
        Err(RulesError::WeightsNotHundred {
            kind: "region",
            sum: 101.0
        })
    );
    let unknown = DEFAULT_RULES.replace("dispatch_rate = 10", "dispach_rate = 10");
    assert!(matches!(
        AssessmentRules::from_toml_str(&unknown),
        Err(RulesError::UnknownIndicator { kind: "region", .. })
    ));
    let grades = DEFAULT_RULES.replace("B = 75", "B = 95");
    assert!(matches!(
        AssessmentRules::from_toml_str(&grades),
        Err(RulesError::BadGrades(_))
    ));
    let missing = DEFAULT_RULES.replace("[handler]", "[handlers]");
    assert!(AssessmentRules::from_toml_str(&missing).is_err());
    assert!(matches!(
        AssessmentRules::from_toml_str("not toml ["),
        Err(RulesError::Syntax(_))
    ));
}

#[test]
fn a_score_leaves_out_what_the_unit_had_no_case_of_and_inverts_rework() {
    let rules = AssessmentRules::standard();
    let counts = Counts {
        problems: 4,
        registered: 4,
        dispatched: 4,
        handled_on_time: 3,
        handled: 4,
        reworked: 1,
        ..Counts::default()
    };
    // Handler: on time 3/4 × 70 + (1 − 1/4) × 30 = 52.5 + 22.5 = 75.
    let score = rules
        .score(UnitKind::Handler, &UnitCounts::of(counts), None)
        .unwrap();
    assert!((score - 75.0).abs() < 1e-9, "{score}");
    assert_eq!(
        rules.score(UnitKind::Handler, &UnitCounts::default(), None),
        None
    );
}

fn units(list: &[(&str, Option<f64>, u64)]) -> Vec<(String, Option<f64>, u64)> {
    list.iter()
        .map(|(u, s, c)| ((*u).to_owned(), *s, *c))
        .collect()
}

#[test]
fn the_last_of_a_month_is_flagged_ties_share_places_and_small_units_wait() {
    let rules = AssessmentRules::standard();
    let month = Period::parse("2026-11").unwrap();
    let ranked = rank(
        units(&[
            ("a", Some(80.0), 10),
            ("b", Some(95.0), 10),
            ("c", Some(70.0), 10),
            ("d", Some(70.0), 10),
            ("e", Some(99.0), 2),
            ("f", None, 0),
        ]),
        5,
        month,
        &rules,
    );
    type Line<'a> = (&'a str, Option<u32>, Option<&'a str>, Option<&'a str>);
    let view: Vec<Line<'_>> = ranked
        .iter()
        .map(|r| (r.unit.as_str(), r.rank, r.flag, r.unranked))
        .collect();
    assert_eq!(
        view,
        [
            ("b", Some(1), None, None),
            ("a", Some(2), None, None),
            ("c", Some(3), Some("penalty"), None),
            ("d", Some(3), Some("penalty"), None),
            ("e", None, None, Some("too_few_cases")),
            ("f", None, None, Some("no_score")),
        ]
    );
    assert_eq!(ranked[0].grade.as_deref(), Some("A"));
    let quarter = Period::parse("2026-Q4").unwrap();
    let ranked = rank(
        units(&[
            ("a", Some(80.0), 10),
            ("b", Some(95.0), 10),
            ("c", Some(70.0), 10),
            ("d", Some(60.0), 10),
        ]),
        5,
        quarter,
        &rules,
    );
    let rewarded: Vec<&str> = ranked
        .iter()
        .filter(|r| r.flag == Some("reward"))
        .map(|r| r.unit.as_str())
        .collect();
    assert_eq!(rewarded, ["b", "a", "c"]);
    let alone = rank(units(&[("a", Some(10.0), 10)]), 5, month, &rules);
    assert_eq!(alone[0].flag, None, "one unit is not last of anything");
}
