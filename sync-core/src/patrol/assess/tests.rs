use ::geo::{MultiPolygon, Rect, coord};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use super::*;
use crate::document::Position;
use crate::geo::{distance_m, gcj02_to_wgs84};
use crate::grid::{GridSet, Hierarchy, UnitGrid};
use crate::patrol::{Review, TrackPoint};
use crate::role::Actor;

const S: f64 = 0.001;
const X0: f64 = 113.66;
const Y0: f64 = 34.75;
const COMMUNITY: &str = "410105001001";

fn square(x: f64, y: f64) -> MultiPolygon<f64> {
    MultiPolygon(vec![
        Rect::new(coord! { x: x, y: y }, coord! { x: x + S, y: y + S }).to_polygon(),
    ])
}

/// `columns` × 2 unit squares (GCJ-02) of one community; every two columns are one
/// level-3 grid, numbered from the west. Unit grid `nn` is column `(nn - 1) / 2`, row
/// `(nn - 1) % 2`.
fn index_of(columns: usize) -> GridIndex {
    let mut hierarchy = Hierarchy::default();
    let community: crate::grid::CommunityCode = COMMUNITY.parse().unwrap();
    hierarchy
        .districts
        .insert(community.district(), "金水区".into());
    hierarchy.streets.insert(community.street(), "街道".into());
    hierarchy.communities.insert(community, "社区".into());
    let mut grids = Vec::new();
    for column in 0..columns {
        let level3 = community.level3((column / 2 + 1) as u8).unwrap();
        hierarchy
            .level3
            .insert(level3, format!("三级网格{}", level3.number()));
        for row in 0..2 {
            grids.push(UnitGrid {
                code: community.grid((column * 2 + row + 1) as u16).unwrap(),
                level3,
                geometry: square(X0 + column as f64 * S, Y0 + row as f64 * S),
            });
        }
    }
    GridIndex::build(GridSet::new(hierarchy, grids).unwrap()).unwrap()
}

fn level3(n: u8) -> Level3Code {
    COMMUNITY
        .parse::<crate::grid::CommunityCode>()
        .unwrap()
        .level3(n)
        .unwrap()
}

fn grid(n: u16) -> GridCode {
    COMMUNITY
        .parse::<crate::grid::CommunityCode>()
        .unwrap()
        .grid(n)
        .unwrap()
}

/// A fix whose GCJ-02 position is (`lon`, `lat`), as the phone reports it (WGS-84).
fn fix_at(lon: f64, lat: f64, accuracy_m: f64) -> Position {
    let wgs = gcj02_to_wgs84(LonLat { lon, lat });
    Position {
        lon: wgs.lon,
        lat: wgs.lat,
        accuracy_m: Some(accuracy_m),
    }
}

/// Metres per degree of longitude here, as the index measures.
fn metres_per_lon_degree() -> f64 {
    distance_m(
        LonLat {
            lon: X0,
            lat: Y0 + S,
        },
        LonLat {
            lon: X0 + 1.0,
            lat: Y0 + S,
        },
    )
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
}

/// 09:00 Beijing on the day, plus `minutes`.
fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 1, 0, 0).unwrap() + chrono::TimeDelta::minutes(minutes)
}

fn check_in(id: &str, minutes: i64, position: Position, claimed: Option<GridCode>) -> CheckIn {
    CheckIn {
        id: id.into(),
        at: at(minutes),
        position,
        grid: claimed,
        note: None,
    }
}

fn record(checkins: Vec<CheckIn>, track: Vec<TrackPoint>) -> PatrolRecord {
    PatrolRecord {
        schema_version: 1,
        id: Some(crate::patrol::patrol_log_id("w1", day())),
        worker: Some("w1".into()),
        role: Some(Role::EnforcementOfficer),
        team: Some("enforcement".into()),
        date: Some(day()),
        checkins,
        track,
        cases_found: Vec::new(),
        reviews: Vec::new(),
        problems: Vec::new(),
    }
}

/// Received an hour after the walk began, the phone's clock right.
fn on_time() -> Receipt {
    Receipt {
        now_ms: at(60).timestamp_millis(),
        clock_skew_ms: Some(0),
    }
}

fn level3_numbers(placement: &Placement) -> Vec<u8> {
    placement.level3s.iter().map(|(l, _)| l.number()).collect()
}

#[test]
fn a_fix_counts_for_the_grids_within_its_tolerance() {
    let index = index_of(4);
    let rules = PatrolRules::default();
    let boundary = X0 + 2.0 * S; // between level-3 grids 1 and 2
    let metres = metres_per_lon_degree();
    // 8 m west of the boundary, accurate to 5 m (tolerance 15 m): both level-3 grids.
    let near = fix_at(boundary - 8.0 / metres, Y0 + 0.5 * S, 5.0);
    let placed = place_check_in(&index, &check_in("c1", 0, near, Some(grid(3))), &rules);
    assert_eq!(placed.grid, Some(grid(3)));
    assert_eq!(level3_numbers(&placed), [1, 2]);
    let (_, to_second) = placed.level3s[1];
    assert!((to_second - 8.0).abs() < 1.0, "{to_second} m");
    assert!(placed.counts);
    assert!(placed.flags.is_empty(), "{:?}", placed.flags);
    assert_eq!(placed.distance_m, Some(0.0));

    // 80 m west of it at 80 m accuracy: the tolerance is capped at 60 m.
    let far = fix_at(boundary - 80.0 / metres, Y0 + 0.5 * S, 80.0);
    let placed = place_check_in(&index, &check_in("c2", 0, far, None), &rules);
    assert_eq!(level3_numbers(&placed), [1]);
    assert!(placed.counts);

    // A fix just outside the set, within its tolerance, counts for the nearest grid.
    let outside = fix_at(X0 - 5.0 / metres, Y0 + 0.5 * S, 5.0);
    let placed = place_check_in(&index, &check_in("c3", 0, outside, None), &rules);
    assert_eq!(placed.grid, Some(grid(1)));
    assert_eq!(level3_numbers(&placed), [1]);
    let distance = placed.distance_m.expect("near a grid");
    assert!((distance - 5.0).abs() < 1.0, "{distance} m");
}

#[test]
fn a_fix_on_a_shared_edge_counts_for_both_neighbours() {
    let index = index_of(4);
    let edge = fix_at(X0 + 2.0 * S, Y0 + 0.5 * S, 0.0);
    let placed = place_check_in(
        &index,
        &check_in("c", 0, edge, None),
        &PatrolRules::default(),
    );
    // Nearest first: the datum round trip leaves the fix a hair to one side.
    let mut numbers = level3_numbers(&placed);
    numbers.sort();
    assert_eq!(numbers, [1, 2]);
    assert!(placed.level3s.iter().all(|(_, d)| *d < 1.0));
    assert!(placed.counts);
}

#[test]
fn a_gcj02_position_sent_as_if_it_were_gps_is_caught() {
    // A phone that sends the map's GCJ-02 coordinates instead of the GPS fix is
    // shifted by the datum offset, hundreds of metres here: far from what it claims.
    let index = index_of(4);
    let centre = LonLat {
        lon: X0 + 0.5 * S,
        lat: Y0 + 0.5 * S,
    };
    let offset = distance_m(centre, wgs84_to_gcj02(centre));
    assert!(offset > 300.0, "{offset} m");
    let unconverted = Position {
        lon: centre.lon,
        lat: centre.lat,
        accuracy_m: Some(5.0),
    };
    let placed = place_check_in(
        &index,
        &check_in("c", 0, unconverted, Some(grid(1))),
        &PatrolRules::default(),
    );
    assert!(
        placed.flags.contains(&AnomalyKind::FarFromClaimedGrid),
        "{placed:?}"
    );
    assert!(!placed.counts);
    // Converted properly, the same point is in grid 1.
    let converted = fix_at(centre.lon, centre.lat, 5.0);
    let placed = place_check_in(
        &index,
        &check_in("c", 0, converted, Some(grid(1))),
        &PatrolRules::default(),
    );
    assert_eq!(placed.grid, Some(grid(1)));
    assert!(placed.counts && placed.flags.is_empty());
}

#[test]
fn a_poor_fix_or_one_far_from_every_grid_does_not_count() {
    let index = index_of(4);
    let rules = PatrolRules::default();
    let poor = fix_at(X0 + 0.5 * S, Y0 + 0.5 * S, 150.0);
    let placed = place_check_in(&index, &check_in("c", 0, poor, Some(grid(1))), &rules);
    assert_eq!(placed.flags, [AnomalyKind::PoorAccuracy]);
    assert!(!placed.counts);
    // Poor accuracy is not listed for review: it is too common indoors.
    let assessed = assess(
        &record(vec![check_in("c", 0, poor, Some(grid(1)))], Vec::new()),
        Some(&index),
        on_time(),
        &rules,
    );
    assert!(assessed.anomalies.is_empty(), "{:?}", assessed.anomalies);
    assert!(assessed.visits.is_empty());

    let nowhere = fix_at(X0 + 0.05, Y0, 5.0);
    let placed = place_check_in(&index, &check_in("c", 0, nowhere, None), &rules);
    assert_eq!(placed.flags, [AnomalyKind::OutsideGrids]);
    assert_eq!((placed.grid, placed.distance_m), (None, None));
    assert!(!placed.counts);
    // A position out of range is nowhere too, without a panic.
    let broken = Position {
        lon: f64::NAN,
        lat: 91.0,
        accuracy_m: None,
    };
    let placed = place_check_in(&index, &check_in("c", 0, broken, None), &rules);
    assert_eq!(placed.flags, [AnomalyKind::OutsideGrids]);
}

fn kinds(assessment: &Assessment) -> Vec<(String, AnomalyKind)> {
    assessment
        .anomalies
        .iter()
        .map(|a| (a.id.clone(), a.kind))
        .collect()
}

#[test]
fn times_are_kept_and_doubted_against_the_receipt() {
    let index = index_of(4);
    let rules = PatrolRules::default();
    let inside = fix_at(X0 + 0.5 * S, Y0 + 0.5 * S, 5.0);
    let log = record(
        vec![
            check_in("soon", 62, inside, None),
            check_in("later", 70, inside, None),
        ],
        Vec::new(),
    );
    let assessed = assess(&log, Some(&index), on_time(), &rules);
    // Two minutes after the receipt is within the slack; ten is in the future.
    assert_eq!(
        kinds(&assessed),
        [("future_time:later".to_owned(), AnomalyKind::FutureTime)]
    );
    assert!(assessed.checkins[1].time_flags == [AnomalyKind::FutureTime]);
    // Doubtful times still count: the supervisor decides.
    assert!(assessed.checkins.iter().all(PlacedCheckIn::counts));
    assert_eq!(assessed.visits.len(), 1);
    assert_eq!(assessed.visits[0].checkins, 2);

    // The phone said its clock was three hours fast: each check-in is flagged.
    let skewed = Receipt {
        now_ms: at(600).timestamp_millis(),
        clock_skew_ms: Some(3 * HOUR_MS),
    };
    let assessed = assess(&log, Some(&index), skewed, &rules);
    assert_eq!(
        kinds(&assessed),
        [
            ("clock_skew:soon".to_owned(), AnomalyKind::ClockSkew),
            ("clock_skew:later".to_owned(), AnomalyKind::ClockSkew)
        ]
    );
    assert!(assessed.anomalies[0].detail.contains("3 h 00 min ahead"));
    // Five minutes off, or an old phone that does not say: nothing.
    for skew in [Some(5 * MINUTE_MS), Some(-5 * MINUTE_MS), None] {
        let receipt = Receipt {
            clock_skew_ms: skew,
            ..skewed
        };
        assert!(
            assess(&log, Some(&index), receipt, &rules)
                .anomalies
                .is_empty()
        );
    }

    // Synced the same evening is normal; three days later is late.
    let late = Receipt {
        now_ms: at(72 * 60).timestamp_millis(),
        clock_skew_ms: Some(0),
    };
    let assessed = assess(&log, Some(&index), late, &rules);
    assert!(
        assessed
            .anomalies
            .iter()
            .all(|a| a.kind == AnomalyKind::SyncedLate)
    );
    assert_eq!(assessed.anomalies.len(), 2);
}

#[test]
fn a_check_in_of_another_day_is_flagged() {
    let index = index_of(4);
    let inside = fix_at(X0 + 0.5 * S, Y0 + 0.5 * S, 5.0);
    // 16:00 UTC is midnight in Beijing: the next day.
    let log = record(vec![check_in("night", 15 * 60, inside, None)], Vec::new());
    let receipt = Receipt {
        now_ms: at(16 * 60).timestamp_millis(),
        clock_skew_ms: None,
    };
    let assessed = assess(&log, Some(&index), receipt, &PatrolRules::default());
    assert_eq!(
        kinds(&assessed),
        [("date_mismatch:night".to_owned(), AnomalyKind::DateMismatch)]
    );
    assert!(assessed.anomalies[0].detail.contains("2026-11-28"));
}

fn leader() -> Actor {
    Actor {
        user: "gl".into(),
        role: Role::GridLeader,
        team: None,
        scope: COMMUNITY.parse().unwrap(),
        device: format!("{:032x}", 2),
    }
}

#[test]
fn a_rejected_log_walks_no_grid_until_approved() {
    let index = index_of(4);
    let log_with = |verdicts: &[Verdict]| {
        let mut log = record(
            vec![
                check_in("a", 0, fix_at(X0 + 0.5 * S, Y0 + 0.5 * S, 5.0), None),
                check_in("b", 10, fix_at(X0 + 2.5 * S, Y0 + 1.5 * S, 5.0), None),
            ],
            Vec::new(),
        );
        log.reviews = verdicts
            .iter()
            .enumerate()
            .map(|(i, &verdict)| Review {
                id: format!("r{i}"),
                at: at(100 + i as i64),
                reviewer: leader(),
                verdict,
                comment: Some("看过".into()),
            })
            .collect();
        log
    };
    let walked = |verdicts: &[Verdict]| {
        let assessed = assess(
            &log_with(verdicts),
            Some(&index),
            on_time(),
            &PatrolRules::default(),
        );
        assert_eq!(assessed.checkins.len(), 2, "check-ins are always kept");
        assessed
            .visits
            .iter()
            .map(|v| v.level3.number())
            .collect::<Vec<_>>()
    };
    assert_eq!(walked(&[]), [1, 2]);
    assert_eq!(walked(&[Verdict::Reject]), Vec::<u8>::new());
    assert_eq!(
        walked(&[Verdict::Reject, Verdict::Comment]),
        Vec::<u8>::new()
    );
    assert_eq!(walked(&[Verdict::Reject, Verdict::Approve]), [1, 2]);
    let visit = assess(
        &log_with(&[]),
        Some(&index),
        on_time(),
        &PatrolRules::default(),
    )
    .visits[0];
    assert_eq!(
        (visit.level3, visit.first_at_ms, visit.checkins),
        (level3(1), at(0).timestamp_millis(), 1)
    );
}

#[test]
fn a_jump_of_a_hundred_kilometres_is_listed_once() {
    let index = index_of(4);
    let start = at(0).timestamp_millis();
    let mut track: Vec<TrackPoint> = (0..30)
        .map(|i| TrackPoint {
            at_ms: start + i * 10_000,
            lon: X0 + i as f64 * 1e-4,
            lat: Y0,
            accuracy_m: Some(5.0),
        })
        .collect();
    let last = *track.last().unwrap();
    track.push(TrackPoint {
        at_ms: last.at_ms + 10_000,
        lon: last.lon + 1.1,
        lat: last.lat,
        accuracy_m: Some(5.0),
    });
    let assessed = assess(
        &record(Vec::new(), track),
        Some(&index),
        on_time(),
        &PatrolRules::default(),
    );
    assert_eq!(
        kinds(&assessed),
        [(
            format!("impossible_speed:{}", last.at_ms),
            AnomalyKind::ImpossibleSpeed
        )]
    );
    // Without grids the track is still judged; nothing is placed.
    let assessed = assess(
        &record(
            vec![check_in("c", 0, fix_at(X0, Y0, 5.0), None)],
            Vec::new(),
        ),
        None,
        on_time(),
        &PatrolRules::default(),
    );
    assert!(assessed.checkins[0].placement.is_none());
    assert!(assessed.visits.is_empty());
}

#[test]
fn duties_are_the_level3_grids_under_a_field_workers_posting() {
    let index = index_of(6);
    let scope = |text: &str| -> GridScope { text.parse().unwrap() };
    // Two unit grids of level-3 grid 1 and one of grid 3: both level-3 grids, once.
    let posting = scope(&format!("{},{},{}", grid(1), grid(2), grid(10)));
    assert_eq!(
        duties(Role::EnforcementOfficer, &posting, &index),
        Ok(vec![level3(1), level3(3)])
    );
    assert_eq!(
        duties(Role::SanitationWorker, &scope(COMMUNITY), &index),
        Ok(vec![level3(1), level3(2), level3(3)])
    );
    // Supervisors walk no grid of their own.
    assert_eq!(
        duties(Role::GridLeader, &scope(COMMUNITY), &index),
        Ok(vec![])
    );
    // A posting elsewhere gives none.
    assert_eq!(
        duties(Role::EnforcementOfficer, &scope("410102"), &index),
        Ok(vec![])
    );
    // The whole of a big set is too much to walk; nothing is invented.
    let big = index_of(2 * (MAX_DUTIES + 1));
    assert_eq!(
        duties(Role::EnforcementOfficer, &scope("*"), &big),
        Err(DutyProblem::TooBroad(MAX_DUTIES + 1))
    );
    assert_eq!(big.level3_under(COMMUNITY).len(), MAX_DUTIES + 1);
    assert_eq!(big.level3_under(&grid(3).to_string()), [level3(1)]);
    assert!(big.level3_under("x").is_empty());
}

#[test]
fn distances_to_grids_are_in_metres() {
    let index = index_of(2);
    let metres = metres_per_lon_degree();
    let p = LonLat {
        lon: X0 + 2.0 * S + 50.0 / metres,
        lat: Y0 + 0.5 * S,
    };
    let near = index.near_gcj02(p, 200.0);
    let codes: Vec<GridCode> = near.iter().map(|(c, _)| *c).collect();
    // Grid 3 due west at 50 m, grid 4 diagonally, then the western column.
    assert_eq!(&codes[..2], [grid(3), grid(4)]);
    assert!((near[0].1 - 50.0).abs() < 0.5, "{near:?}");
    assert!(near.windows(2).all(|w| w[0].1 <= w[1].1));
    assert!(index.near_gcj02(p, 10.0).is_empty());
    let d = index.distance_gcj02(grid(3), p).unwrap();
    assert!((d - 50.0).abs() < 0.5, "{d}");
    assert_eq!(
        index.distance_gcj02(
            grid(1),
            LonLat {
                lon: X0 + 0.5 * S,
                lat: Y0 + 0.5 * S
            }
        ),
        Some(0.0)
    );
    assert_eq!(index.distance_gcj02(grid(9), p), None);
    assert_eq!(index.level3_of_grid(grid(4)), Some(level3(1)));
}

#[test]
fn time_walked_is_told_per_level3_grid() {
    use crate::patrol::track::{summarize, time_in_level3};
    let index = index_of(4);
    let rules = TrackRules::default();
    let start = at(0).timestamp_millis();
    // East along the middle of the bottom row: 40 fixes 10 s apart across level-3
    // grid 1 (x < X0 + 2S) into grid 2, then a 10-minute pause, then 5 more fixes.
    let fix = |i: i64, x: f64| {
        let p = fix_at(x, Y0 + 0.5 * S, 5.0);
        TrackPoint {
            at_ms: start + i * 10_000,
            lon: p.lon,
            lat: p.lat,
            accuracy_m: Some(5.0),
        }
    };
    let mut track: Vec<TrackPoint> = (0..40)
        .map(|i| fix(i, X0 + 0.05 * S + i as f64 * 0.1 * S))
        .collect();
    track.extend((0..5).map(|i| fix(100 + i, X0 + 3.5 * S)));
    let time = time_in_level3(&track, &index, &rules);
    let of = |n: u8| {
        time.iter()
            .find(|(l, _)| *l == Some(level3(n)))
            .map_or(0, |(_, ms)| *ms)
    };
    // Steps starting west of the boundary (x < X0 + 2S: i ≤ 19) count for grid 1.
    assert_eq!(of(1), 20 * 10_000);
    // The first walk's other 19 steps and the 4 after the pause, for grid 2; the step
    // across the pause counts for none, and nothing was outside.
    assert_eq!(of(2), 23 * 10_000);
    assert_eq!(time.len(), 2, "{time:?}");
    let total: i64 = time.iter().map(|(_, ms)| ms).sum();
    assert_eq!(total, summarize(&track, &rules).walking_ms);
}

#[test]
fn a_device_not_registered_to_the_worker_is_named() {
    let writers = Writers {
        check_ins: vec![
            ("c1".into(), "aa".into()),
            ("c2".into(), "bb".into()),
            ("c3".into(), "bb".into()),
        ],
        track_batches: vec!["aa".into(), "cc".into()],
    };
    let found = unregistered_devices(&writers, &["aa"]);
    let summary: Vec<(&str, Option<&str>)> = found
        .iter()
        .map(|a| (a.id.as_str(), a.checkin.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            ("unregistered_device:bb", Some("c2")),
            ("unregistered_device:cc", None)
        ]
    );
    assert!(found[0].detail.contains("2 check-ins and 0 track batches"));
    assert!(unregistered_devices(&writers, &["aa", "bb", "cc"]).is_empty());
    assert_eq!(
        AnomalyKind::parse("unregistered_device"),
        Some(AnomalyKind::UnregisteredDevice)
    );
}
