//! A day's GPS track as a supervisor sees it (issue 8): the points in time order, cut
//! into walked segments at long gaps and impossible jumps, each simplified for display,
//! with the distance walked, the time walking, and the jumps flagged for review (never
//! dropped silently: the raw points stay in the log).
//!
//! Simplification is Ramer–Douglas–Peucker (`geo`'s `SimplifyIdx`, georust's
//! maintained crate, already compiled for the grids), run in local metres so its
//! tolerance means "every fix is within ε metres of the line drawn", and by index, so
//! the points kept are original fixes with their times. Visvalingam–Whyatt was not
//! chosen: its tolerance is an area, which nobody can check against a map.

use ::geo::{Coord, LineString, SimplifyIdx};

use std::collections::BTreeMap;

use super::TrackPoint;
use crate::geo::{Crs, LonLat, distance_m};
use crate::grid::{GridIndex, Level3Code};

/// The thresholds of a track summary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackRules {
    /// A pause longer than this ends a walked segment, milliseconds.
    pub max_gap_ms: i64,
    /// Faster than this between two fixes (after their accuracy radii) is a jump,
    /// metres per second: no one patrols at motorway speed.
    pub max_speed_mps: f64,
    /// A jump of more than this many metres at the same instant is one too.
    pub max_instant_jump_m: f64,
    /// Fixes less accurate than this (radius, metres) are left out of the line.
    pub max_accuracy_m: f64,
    /// The simplification tolerance, metres.
    pub simplify_m: f64,
    /// The most jumps listed; more are counted.
    pub max_jumps: usize,
}

impl Default for TrackRules {
    fn default() -> TrackRules {
        TrackRules {
            max_gap_ms: 5 * 60 * 1000,
            max_speed_mps: 50.0,
            max_instant_jump_m: 100.0,
            max_accuracy_m: 50.0,
            simplify_m: 5.0,
            max_jumps: 50,
        }
    }
}

/// Two consecutive fixes too far apart for the time between them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jump {
    /// The fix before.
    pub from: TrackPoint,
    /// The fix after.
    pub to: TrackPoint,
    /// The speed it implies, metres per second (infinite at the same instant).
    pub speed_mps: f64,
}

/// A track summarized.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrackSummary {
    /// Walked segments, each simplified, each of at least two original fixes.
    pub segments: Vec<Vec<TrackPoint>>,
    /// Fixes used (after dropping inaccurate, invalid and duplicate ones).
    pub points: usize,
    /// Fixes dropped as inaccurate or invalid.
    pub dropped: usize,
    /// Length of the simplified segments, metres (standing-still jitter does not add up).
    pub distance_m: f64,
    /// Time between consecutive fixes of a segment, milliseconds.
    pub walking_ms: i64,
    /// The first and last fix's times.
    pub span_ms: Option<(i64, i64)>,
    /// Impossible jumps (a run of consecutive ones counts once), at most
    /// [`TrackRules::max_jumps`].
    pub jumps: Vec<Jump>,
    /// Jumps beyond that limit.
    pub jumps_not_listed: usize,
}

fn lon_lat(p: &TrackPoint) -> Option<LonLat> {
    LonLat::new(p.lon, p.lat).ok()
}

/// The usable fixes in time order, without exact duplicates, and how many were dropped
/// as inaccurate or invalid.
fn ordered_fixes(points: &[TrackPoint], rules: &TrackRules) -> (Vec<TrackPoint>, usize) {
    let mut fixes: Vec<TrackPoint> = points
        .iter()
        .filter(|p| {
            lon_lat(p).is_some()
                && p.accuracy_m
                    .is_none_or(|a| a.is_finite() && f64::from(a) <= rules.max_accuracy_m)
        })
        .copied()
        .collect();
    let dropped = points.len() - fixes.len();
    fixes.sort_by_key(|p| p.at_ms);
    fixes.dedup_by(|b, a| a.at_ms == b.at_ms && a.lon == b.lon && a.lat == b.lat);
    (fixes, dropped)
}

/// What lies between two consecutive fixes.
enum Step {
    /// Walking, for this many milliseconds.
    Walk(i64),
    /// A pause too long to call walking.
    Gap,
    /// Too fast to be walking (metres per second).
    Jump(f64),
}

fn step(last: &TrackPoint, fix: &TrackPoint, rules: &TrackRules) -> Step {
    let dt_ms = fix.at_ms - last.at_ms;
    let (Some(a), Some(b)) = (lon_lat(last), lon_lat(fix)) else {
        return Step::Gap;
    };
    let metres = distance_m(a, b);
    // Only movement beyond both fixes' error radii counts against the speed.
    let moved = (metres
        - f64::from(last.accuracy_m.unwrap_or(0.0))
        - f64::from(fix.accuracy_m.unwrap_or(0.0)))
    .max(0.0);
    let speed = if dt_ms > 0 {
        moved / (dt_ms as f64 / 1000.0)
    } else if metres > rules.max_instant_jump_m {
        f64::INFINITY
    } else {
        0.0
    };
    if speed > rules.max_speed_mps {
        Step::Jump(speed)
    } else if dt_ms > rules.max_gap_ms {
        Step::Gap
    } else {
        Step::Walk(dt_ms)
    }
}

/// Summarizes a day's fixes (in any order: two devices' batches interleave).
pub fn summarize(points: &[TrackPoint], rules: &TrackRules) -> TrackSummary {
    let (fixes, dropped) = ordered_fixes(points, rules);
    let mut summary = TrackSummary {
        dropped,
        points: fixes.len(),
        span_ms: fixes
            .first()
            .zip(fixes.last())
            .map(|(a, b)| (a.at_ms, b.at_ms)),
        ..TrackSummary::default()
    };

    let mut segment: Vec<TrackPoint> = Vec::new();
    let mut in_jump = false;
    let mut segments = Vec::new();
    for fix in fixes {
        let Some(last) = segment.last().copied() else {
            segment.push(fix);
            continue;
        };
        match step(&last, &fix, rules) {
            Step::Jump(speed) => {
                if !in_jump {
                    if summary.jumps.len() < rules.max_jumps {
                        summary.jumps.push(Jump {
                            from: last,
                            to: fix,
                            speed_mps: speed,
                        });
                    } else {
                        summary.jumps_not_listed += 1;
                    }
                }
                in_jump = true;
                segments.push(std::mem::replace(&mut segment, vec![fix]));
            }
            Step::Gap => {
                in_jump = false;
                segments.push(std::mem::replace(&mut segment, vec![fix]));
            }
            Step::Walk(dt_ms) => {
                in_jump = false;
                summary.walking_ms += dt_ms;
                segment.push(fix);
            }
        }
    }
    segments.push(segment);

    for segment in segments.into_iter().filter(|s| s.len() >= 2) {
        let simplified = simplify(&segment, rules.simplify_m);
        summary.distance_m += simplified
            .windows(2)
            .filter_map(|w| Some(distance_m(lon_lat(&w[0])?, lon_lat(&w[1])?)))
            .sum::<f64>();
        summary.segments.push(simplified);
    }
    summary
}

/// Time walked in each level-3 grid (三级网格), most first: each walking step between
/// consecutive fixes (no pause, no jump) counts for the grid its first fix is in;
/// `None` gathers the time outside every grid. The steps' sum is the summary's
/// `walking_ms`. Computed on request (a locate per fix), not on the write path.
pub fn time_in_level3(
    points: &[TrackPoint],
    index: &GridIndex,
    rules: &TrackRules,
) -> Vec<(Option<Level3Code>, i64)> {
    let (fixes, _) = ordered_fixes(points, rules);
    let mut time: BTreeMap<Option<Level3Code>, i64> = BTreeMap::new();
    for pair in fixes.windows(2) {
        let Step::Walk(dt_ms) = step(&pair[0], &pair[1], rules) else {
            continue;
        };
        let level3 = lon_lat(&pair[0])
            .and_then(|p| index.locate(p, Crs::Wgs84))
            .and_then(|grid| index.level3_of_grid(grid));
        *time.entry(level3).or_default() += dt_ms;
    }
    let mut time: Vec<(Option<Level3Code>, i64)> = time.into_iter().collect();
    time.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    time
}

/// The fixes Ramer–Douglas–Peucker keeps at `tolerance_m`, in local metres (an
/// equirectangular projection about the first fix: under 0.1 % off within a few km).
fn simplify(segment: &[TrackPoint], tolerance_m: f64) -> Vec<TrackPoint> {
    let Some(origin) = segment.first() else {
        return Vec::new();
    };
    let metres_per_lon = 111_320.0 * origin.lat.to_radians().cos();
    let line: LineString<f64> = segment
        .iter()
        .map(|p| Coord {
            x: (p.lon - origin.lon) * metres_per_lon,
            y: (p.lat - origin.lat) * 110_574.0,
        })
        .collect();
    line.simplify_idx(tolerance_m)
        .into_iter()
        .filter_map(|index| segment.get(index).copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A walk east along a street at 1.2 m/s with ±2 m of sideways noise, a fix every
    /// 10 s, starting at `t0` (ms) and `lon0`.
    fn walk(t0: i64, lon0: f64, fixes: usize) -> Vec<TrackPoint> {
        (0..fixes)
            .map(|i| {
                let east_m = i as f64 * 12.0;
                let north_m = if i % 2 == 0 { 2.0 } else { -2.0 };
                TrackPoint {
                    at_ms: t0 + i as i64 * 10_000,
                    lon: lon0 + east_m / (111_320.0 * 34.75_f64.to_radians().cos()),
                    lat: 34.75 + north_m / 110_574.0,
                    accuracy_m: Some(5.0),
                }
            })
            .collect()
    }

    #[test]
    fn a_straight_walk_simplifies_to_its_ends_and_keeps_its_length() {
        let fixes = walk(0, 113.66, 61);
        let summary = summarize(&fixes, &TrackRules::default());
        assert_eq!(summary.points, 61);
        assert_eq!(summary.segments.len(), 1);
        let line = &summary.segments[0];
        // The ±2 m zigzag is within the 5 m tolerance: the ends remain, as original fixes.
        assert_eq!(line.first(), fixes.first());
        assert_eq!(line.last(), fixes.last());
        assert!(line.len() < 5, "{} fixes kept", line.len());
        // 60 steps of 12 m east: 720 m, not the zigzag's longer path.
        assert!(
            (summary.distance_m - 720.0).abs() < 5.0,
            "{}",
            summary.distance_m
        );
        assert_eq!(summary.walking_ms, 600_000);
        assert_eq!(summary.span_ms, Some((0, 600_000)));
        assert!(summary.jumps.is_empty());
    }

    #[test]
    fn a_long_pause_splits_and_an_impossible_jump_is_flagged() {
        let morning = walk(0, 113.66, 10);
        // Lunch: 40 minutes later, on the same street.
        let after_lunch = walk(40 * 60_000 + 90_000, 113.661, 10);
        // Then a fix 5 km away 10 s later (a spoofed or bad fix), and back.
        let last = *after_lunch.last().expect("fix");
        let far = TrackPoint {
            at_ms: last.at_ms + 10_000,
            lon: last.lon + 0.055,
            ..last
        };
        let back = TrackPoint {
            at_ms: far.at_ms + 10_000,
            ..last
        };
        let mut all = [morning, after_lunch, vec![far, back]].concat();
        all.reverse(); // any order in
        let summary = summarize(&all, &TrackRules::default());
        assert_eq!(summary.jumps.len(), 1, "there and back is one run");
        assert!(summary.jumps[0].speed_mps > 400.0);
        assert_eq!(summary.jumps[0].to, far);
        assert_eq!(summary.segments.len(), 2, "the far fix alone draws nothing");
        assert_eq!(summary.walking_ms, 2 * 9 * 10_000);
    }

    #[test]
    fn inaccurate_duplicate_and_invalid_fixes_are_left_out() {
        let mut fixes = walk(0, 113.66, 5);
        fixes.push(fixes[2]);
        fixes.push(TrackPoint {
            accuracy_m: Some(400.0),
            ..fixes[3]
        });
        fixes.push(TrackPoint {
            lon: f64::NAN,
            ..fixes[1]
        });
        let summary = summarize(&fixes, &TrackRules::default());
        assert_eq!((summary.points, summary.dropped), (5, 2));
        assert!(summarize(&[], &TrackRules::default()).segments.is_empty());
    }
}
