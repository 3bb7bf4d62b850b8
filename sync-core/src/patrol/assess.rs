//! What a patrol log (巡查记录) proves, judged the same way wherever it is read (issue 8):
//! where each check-in (签到) counts ([`place_check_in`]), which of its times to doubt,
//! which level-3 grids (三级网格) it shows walked ([`Visit`]), and what a supervisor
//! should look at ([`Anomaly`]). Nothing is dropped: a doubtful check-in is kept and
//! flagged, and the supervisor decides by approving or rejecting the log.
//!
//! **Where a check-in counts.** Its WGS-84 fix is converted to GCJ-02 once (the
//! grids' datum). It counts for every level-3 grid with a unit grid within
//! `base_tolerance_m + min(accuracy, max_tolerance_accuracy_m)` of it: a fix on a
//! shared edge counts for both neighbours, and a poor fix cannot claim grids far away.
//! A fix less accurate than `unusable_accuracy_m`, or far from the grid the phone said
//! it was in, does not count.
//!
//! **Time.** The phone's time is kept as written (check-ins are taken offline and
//! synced later). The receipt, the server's time when the check-in was first stored and
//! the phone's clock as it told it then, only adds flags: a time in the future, a phone
//! clock far from the server's, a time on another day than the log's, a sync days late.
//!
//! **Duties.** A field worker's level-3 grids of the day are those under their posting
//! ([`duties`]); a posting too broad to walk in a day gives none rather than inventing
//! some.

use std::collections::BTreeMap;

use super::track::{TrackRules, TrackSummary, summarize};
use super::{CheckIn, PatrolRecord, Verdict, Writers, patrol_date};
use crate::geo::{LonLat, wgs84_to_gcj02};
use crate::grid::{GridCode, GridIndex, Level3Code};
use crate::role::{GridScope, Role};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// The thresholds of an assessment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatrolRules {
    /// Tolerance around a grid for any fix (digitized edges, the datum conversion),
    /// metres.
    pub base_tolerance_m: f64,
    /// The most of a fix's accuracy radius added to the tolerance, metres.
    pub max_tolerance_accuracy_m: f64,
    /// The accuracy assumed when the phone reported none, metres.
    pub default_accuracy_m: f64,
    /// A fix less accurate than this proves no place: it does not count, metres.
    pub unusable_accuracy_m: f64,
    /// Farther than this (plus the accuracy) from the grid the phone claimed is an
    /// anomaly, metres.
    pub far_from_claimed_m: f64,
    /// No grid within this distance: the check-in is outside every grid, metres.
    pub outside_grids_m: f64,
    /// A check-in time later than the receipt by more than this is in the future, ms.
    pub future_slack_ms: i64,
    /// A phone clock off the server's by more than this is flagged, ms.
    pub clock_skew_ms: i64,
    /// Received more than this after its time is a late sync, ms.
    pub synced_late_ms: i64,
    /// The track's thresholds.
    pub track: TrackRules,
}

impl Default for PatrolRules {
    fn default() -> PatrolRules {
        PatrolRules {
            base_tolerance_m: 10.0,
            max_tolerance_accuracy_m: 50.0,
            default_accuracy_m: 30.0,
            unusable_accuracy_m: 100.0,
            far_from_claimed_m: 200.0,
            outside_grids_m: 300.0,
            future_slack_ms: 5 * MINUTE_MS,
            clock_skew_ms: 10 * MINUTE_MS,
            synced_late_ms: 48 * HOUR_MS,
            track: TrackRules::default(),
        }
    }
}

/// What a supervisor is asked to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnomalyKind {
    /// The fix is too inaccurate to prove a place (a check-in flag, not listed).
    PoorAccuracy,
    /// No grid near the check-in.
    OutsideGrids,
    /// The check-in is far from the grid the phone said it was in.
    FarFromClaimedGrid,
    /// The check-in's time is after it reached the server.
    FutureTime,
    /// The phone's clock was far from the server's when it synced.
    ClockSkew,
    /// The check-in's Beijing date is not the log's.
    DateMismatch,
    /// The check-in reached the server days after it was taken.
    SyncedLate,
    /// Two track fixes too far apart for the time between them.
    ImpossibleSpeed,
    /// Check-ins or track written by a device not registered to the worker.
    UnregisteredDevice,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 9] = [
        AnomalyKind::PoorAccuracy,
        AnomalyKind::OutsideGrids,
        AnomalyKind::FarFromClaimedGrid,
        AnomalyKind::FutureTime,
        AnomalyKind::ClockSkew,
        AnomalyKind::DateMismatch,
        AnomalyKind::SyncedLate,
        AnomalyKind::ImpossibleSpeed,
        AnomalyKind::UnregisteredDevice,
    ];

    /// The identifier in the API and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::PoorAccuracy => "poor_accuracy",
            AnomalyKind::OutsideGrids => "outside_grids",
            AnomalyKind::FarFromClaimedGrid => "far_from_claimed_grid",
            AnomalyKind::FutureTime => "future_time",
            AnomalyKind::ClockSkew => "clock_skew",
            AnomalyKind::DateMismatch => "date_mismatch",
            AnomalyKind::SyncedLate => "synced_late",
            AnomalyKind::ImpossibleSpeed => "impossible_speed",
            AnomalyKind::UnregisteredDevice => "unregistered_device",
        }
    }

    pub fn parse(text: &str) -> Option<AnomalyKind> {
        AnomalyKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The label a supervisor reads.
    pub const fn label_zh(self) -> &'static str {
        match self {
            AnomalyKind::PoorAccuracy => "定位精度差",
            AnomalyKind::OutsideGrids => "不在任何网格内",
            AnomalyKind::FarFromClaimedGrid => "远离所报网格",
            AnomalyKind::FutureTime => "时间在未来",
            AnomalyKind::ClockSkew => "手机时钟偏差",
            AnomalyKind::DateMismatch => "日期与记录不符",
            AnomalyKind::SyncedLate => "同步过迟",
            AnomalyKind::ImpossibleSpeed => "轨迹速度异常",
            AnomalyKind::UnregisteredDevice => "非本人登记设备",
        }
    }

    /// Whether it is listed for review (poor accuracy is common indoors: it only
    /// stops the check-in from counting).
    pub const fn is_listed(self) -> bool {
        !matches!(self, AnomalyKind::PoorAccuracy)
    }
}

/// Where one check-in is, by the grids.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// The unit grid containing the fix, or else the nearest within the tolerance.
    pub grid: Option<GridCode>,
    /// Every level-3 grid within the tolerance, nearest first, with its distance
    /// (0 inside), metres.
    pub level3s: Vec<(Level3Code, f64)>,
    /// Distance to the nearest unit grid (0 inside); `None` when none is within
    /// [`PatrolRules::outside_grids_m`].
    pub distance_m: Option<f64>,
    /// Whether it shows the level-3 grids walked.
    pub counts: bool,
    /// Why it is doubted, if it is.
    pub flags: Vec<AnomalyKind>,
}

/// Places a check-in on the grids (see the module docs).
pub fn place_check_in(index: &GridIndex, check_in: &CheckIn, rules: &PatrolRules) -> Placement {
    let nowhere = Placement {
        grid: None,
        level3s: Vec::new(),
        distance_m: None,
        counts: false,
        flags: vec![AnomalyKind::OutsideGrids],
    };
    let Ok(fix) = LonLat::new(check_in.position.lon, check_in.position.lat) else {
        return nowhere;
    };
    let accuracy = check_in
        .position
        .accuracy_m
        .filter(|a| a.is_finite() && *a >= 0.0)
        .unwrap_or(rules.default_accuracy_m);
    let tolerance = rules.base_tolerance_m + accuracy.min(rules.max_tolerance_accuracy_m);
    let point = wgs84_to_gcj02(fix);
    let near = index.near_gcj02(point, rules.outside_grids_m.max(tolerance));

    let mut level3s: Vec<(Level3Code, f64)> = Vec::new();
    for &(code, distance) in near.iter().take_while(|(_, d)| *d <= tolerance) {
        if let Some(level3) = index.level3_of_grid(code)
            && !level3s.iter().any(|(l, _)| *l == level3)
        {
            level3s.push((level3, distance));
        }
    }
    let grid = index.locate_gcj02(point).or_else(|| {
        near.first()
            .filter(|(_, d)| *d <= tolerance)
            .map(|(c, _)| *c)
    });

    let mut flags = Vec::new();
    if accuracy > rules.unusable_accuracy_m {
        flags.push(AnomalyKind::PoorAccuracy);
    }
    if near.is_empty() {
        flags.push(AnomalyKind::OutsideGrids);
    }
    if let Some(claimed) = check_in.grid {
        // A grid the index does not know is as far as can be: the phone's grids differ.
        let off = index
            .distance_gcj02(claimed, point)
            .unwrap_or(f64::INFINITY);
        if off > rules.far_from_claimed_m + accuracy {
            flags.push(AnomalyKind::FarFromClaimedGrid);
        }
    }
    let counts = !level3s.is_empty()
        && !flags.iter().any(|f| {
            matches!(
                f,
                AnomalyKind::PoorAccuracy | AnomalyKind::FarFromClaimedGrid
            )
        });
    Placement {
        grid,
        level3s,
        distance_m: near.first().map(|(_, d)| *d),
        counts,
        flags,
    }
}

/// When and how a log reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The server's time, ms since the epoch.
    pub now_ms: i64,
    /// The phone's clock minus the server's, as the phone told it on this sync round.
    pub clock_skew_ms: Option<i64>,
}

/// A check-in with its placement (`None` when there are no grids to place it on) and
/// the doubts about its time.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedCheckIn {
    pub check_in: CheckIn,
    pub placement: Option<Placement>,
    pub time_flags: Vec<AnomalyKind>,
}

impl PlacedCheckIn {
    /// Whether it shows its level-3 grids walked. Doubtful times still count: the
    /// supervisor decides those.
    pub fn counts(&self) -> bool {
        self.placement.as_ref().is_some_and(|p| p.counts)
    }
}

/// A level-3 grid walked: the counted check-ins in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit {
    pub level3: Level3Code,
    pub first_at_ms: i64,
    pub last_at_ms: i64,
    pub checkins: u32,
}

/// Something for a supervisor to look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    /// Deterministic within the log (`<kind>:<check-in id>`, `impossible_speed:<ms>`),
    /// so assessing the log again never lists it twice.
    pub id: String,
    pub kind: AnomalyKind,
    /// When it happened, by the phone's clock, ms.
    pub at_ms: Option<i64>,
    /// The check-in concerned.
    pub checkin: Option<String>,
    /// What, in words and numbers.
    pub detail: String,
}

/// A patrol log judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub checkins: Vec<PlacedCheckIn>,
    /// The level-3 grids walked, in order; none while the log stands rejected.
    pub visits: Vec<Visit>,
    pub track: TrackSummary,
    pub anomalies: Vec<Anomaly>,
    /// The standing verdict (the last approve or reject).
    pub verdict: Option<Verdict>,
}

impl Assessment {
    /// The unit grids its check-ins were located in, sorted, once each: what decides
    /// which reviewers receive the log (never the grids the phone claimed).
    pub fn located_grids(&self) -> Vec<GridCode> {
        let mut grids: Vec<GridCode> = self
            .checkins
            .iter()
            .filter_map(|c| c.placement.as_ref().and_then(|p| p.grid))
            .collect();
        grids.sort();
        grids.dedup();
        grids
    }
}

fn time_flags(
    check_in: &CheckIn,
    record: &PatrolRecord,
    receipt: Receipt,
    rules: &PatrolRules,
) -> Vec<(AnomalyKind, String)> {
    let at = check_in.at.timestamp_millis();
    let mut flags = Vec::new();
    let ahead = at - receipt.now_ms;
    if ahead > rules.future_slack_ms {
        flags.push((
            AnomalyKind::FutureTime,
            format!("taken {} after it reached the server", span(ahead)),
        ));
    }
    if let Some(skew) = receipt.clock_skew_ms
        && skew.abs() > rules.clock_skew_ms
    {
        let side = if skew > 0 { "ahead of" } else { "behind" };
        flags.push((
            AnomalyKind::ClockSkew,
            format!(
                "the phone's clock was {} {side} the server's ({skew} ms)",
                span(skew.abs())
            ),
        ));
    }
    if let Some(date) = record.date
        && patrol_date(check_in.at) != date
    {
        flags.push((
            AnomalyKind::DateMismatch,
            format!(
                "taken on {} (Beijing), in the log of {date}",
                patrol_date(check_in.at)
            ),
        ));
    }
    let late = receipt.now_ms - at;
    if late > rules.synced_late_ms {
        flags.push((
            AnomalyKind::SyncedLate,
            format!("reached the server {} after it was taken", span(late)),
        ));
    }
    flags
}

/// A duration in hours and minutes.
fn span(ms: i64) -> String {
    let minutes = ms.abs() / MINUTE_MS;
    format!("{} h {:02} min", minutes / 60, minutes % 60)
}

/// Judges a log as read at `receipt` (see the module docs). Without grids nothing is
/// placed, so nothing counts and no place is doubted.
pub fn assess(
    record: &PatrolRecord,
    index: Option<&GridIndex>,
    receipt: Receipt,
    rules: &PatrolRules,
) -> Assessment {
    let mut anomalies = Vec::new();
    let mut checkins = Vec::with_capacity(record.checkins.len());
    for check_in in &record.checkins {
        let at = check_in.at.timestamp_millis();
        let mut note = |kind: AnomalyKind, detail: String| {
            anomalies.push(Anomaly {
                id: format!("{}:{}", kind.as_str(), check_in.id),
                kind,
                at_ms: Some(at),
                checkin: Some(check_in.id.clone()),
                detail,
            });
        };
        let placement = index.map(|index| place_check_in(index, check_in, rules));
        if let Some(placement) = &placement {
            for &kind in placement.flags.iter().filter(|k| k.is_listed()) {
                let detail = match kind {
                    AnomalyKind::FarFromClaimedGrid => format!(
                        "claimed grid {}, found in {}",
                        check_in.grid.map(|g| g.to_string()).unwrap_or_default(),
                        placement
                            .grid
                            .map_or_else(|| "no grid".to_owned(), |g| g.to_string())
                    ),
                    _ => format!(
                        "no grid within {} m of ({:.6}, {:.6})",
                        rules.outside_grids_m, check_in.position.lon, check_in.position.lat
                    ),
                };
                note(kind, detail);
            }
        }
        let times = time_flags(check_in, record, receipt, rules);
        let mut kinds = Vec::with_capacity(times.len());
        for (kind, detail) in times {
            kinds.push(kind);
            note(kind, detail);
        }
        checkins.push(PlacedCheckIn {
            check_in: check_in.clone(),
            placement,
            time_flags: kinds,
        });
    }

    let track = summarize(&record.track, &rules.track);
    for jump in &track.jumps {
        anomalies.push(Anomaly {
            id: format!(
                "{}:{}",
                AnomalyKind::ImpossibleSpeed.as_str(),
                jump.from.at_ms
            ),
            kind: AnomalyKind::ImpossibleSpeed,
            at_ms: Some(jump.from.at_ms),
            checkin: None,
            detail: if jump.speed_mps.is_finite() {
                format!(
                    "{:.0} m/s between fixes at {} and {}",
                    jump.speed_mps, jump.from.at_ms, jump.to.at_ms
                )
            } else {
                format!(
                    "two far-apart fixes at the same instant {}",
                    jump.from.at_ms
                )
            },
        });
    }

    let verdict = record.verdict().map(|r| r.verdict);
    let visits = if verdict == Some(Verdict::Reject) {
        Vec::new()
    } else {
        visits_of(&checkins)
    };
    Assessment {
        checkins,
        visits,
        track,
        anomalies,
        verdict,
    }
}

fn visits_of(checkins: &[PlacedCheckIn]) -> Vec<Visit> {
    let mut visits: BTreeMap<Level3Code, Visit> = BTreeMap::new();
    for placed in checkins.iter().filter(|c| c.counts()) {
        let at = placed.check_in.at.timestamp_millis();
        let Some(placement) = &placed.placement else {
            continue;
        };
        for &(level3, _) in &placement.level3s {
            visits
                .entry(level3)
                .and_modify(|v| {
                    v.first_at_ms = v.first_at_ms.min(at);
                    v.last_at_ms = v.last_at_ms.max(at);
                    v.checkins += 1;
                })
                .or_insert(Visit {
                    level3,
                    first_at_ms: at,
                    last_at_ms: at,
                    checkins: 1,
                });
        }
    }
    visits.into_values().collect()
}

/// The devices that wrote into a log but are not among `registered` (the Automerge
/// actors of the devices ever registered to the worker, revoked ones included): one
/// anomaly per such device (`unregistered_device:<actor>`), naming its first check-in.
/// The write rules already refuse such changes through sync; this catches what
/// reached the store another way.
pub fn unregistered_devices(writers: &Writers, registered: &[&str]) -> Vec<Anomaly> {
    writers
        .actors()
        .into_iter()
        .filter(|actor| !registered.contains(actor))
        .map(|actor| {
            let check_ins: Vec<&str> = writers
                .check_ins
                .iter()
                .filter(|(_, a)| a == actor)
                .map(|(id, _)| id.as_str())
                .collect();
            let batches = writers.track_batches.iter().filter(|a| *a == actor).count();
            Anomaly {
                id: format!("{}:{actor}", AnomalyKind::UnregisteredDevice.as_str()),
                kind: AnomalyKind::UnregisteredDevice,
                at_ms: None,
                checkin: check_ins.first().map(|id| (*id).to_owned()),
                detail: format!(
                    "device {actor} is not registered to the worker: it wrote {} check-ins and {batches} track batches",
                    check_ins.len()
                ),
            }
        })
        .collect()
}

/// The most level-3 grids one worker can be given to walk in a day.
pub const MAX_DUTIES: usize = 16;

/// Why a posting gives no duties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DutyProblem {
    #[error("the posting holds {0} level-3 grids, more than {MAX_DUTIES} to walk in a day")]
    TooBroad(usize),
}

/// The level-3 grids a worker is to walk each day: those with a unit grid under their
/// posting. Only field workers walk; others have none.
pub fn duties(
    role: Role,
    scope: &GridScope,
    index: &GridIndex,
) -> Result<Vec<Level3Code>, DutyProblem> {
    if !role.is_field_worker() {
        return Ok(Vec::new());
    }
    let mut level3s: Vec<Level3Code> = Vec::new();
    for prefix in scope.prefixes() {
        level3s.extend(index.level3_under(prefix));
    }
    level3s.sort();
    level3s.dedup();
    if level3s.len() > MAX_DUTIES {
        return Err(DutyProblem::TooBroad(level3s.len()));
    }
    Ok(level3s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
