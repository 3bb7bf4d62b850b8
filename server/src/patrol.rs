//! The server's part in the walk patrol (徒步巡查, issue 8): a patrol log document as
//! rows ([`rows_of`], over sync-core's `patrol::assess`), the workers' daily duties
//! snapshotted from their postings ([`ensure_duties`], [`duty_pass`]), and the track as
//! GeoJSON for the supervisor's map ([`track_geojson`]).

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};
use wangge_sync_core::geo::{Crs, LonLat};
use wangge_sync_core::grid::GridIndex;
use wangge_sync_core::patrol::assess::{self, Assessment, Receipt};
use wangge_sync_core::patrol::track::{TrackRules, summarize, time_in_level3};
use wangge_sync_core::patrol::{PatrolRecord, patrol_date};

use crate::store::patrol::{
    AnomalyRow, CheckInRow, DutyRow, PatrolLogRow, PatrolRows, VisitRow, WorkerDay,
};
use crate::store::{Store, StoreError};

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A patrol log's worker and day from its id (`patrol:<worker>:<YYYY-MM-DD>`).
pub fn log_owner(id: &str) -> Option<(String, NaiveDate)> {
    let rest = id.strip_prefix("patrol:")?;
    let (worker, day) = rest.rsplit_once(':')?;
    Some((worker.to_owned(), day.parse().ok()?))
}

/// The rows of log `id` as read and assessed at `receipt`; `None` when it has no
/// worker or day (nothing to count it for; its problems are in the document).
pub fn rows_of(
    id: &str,
    record: &PatrolRecord,
    assessment: &Assessment,
    receipt: Receipt,
) -> Option<PatrolRows> {
    let worker = record.worker.clone()?;
    let day = record.date?.to_string();
    let now = receipt.now_ms;
    let mut areas = std::collections::BTreeSet::new();
    let checkins: Vec<CheckInRow> = assessment
        .checkins
        .iter()
        .map(|placed| {
            let c = &placed.check_in;
            let placement = placed.placement.as_ref();
            let grid = placement.and_then(|p| p.grid);
            if let Some(grid) = grid {
                areas.insert(grid.district().to_string());
                areas.insert(grid.street().to_string());
                areas.insert(grid.community().to_string());
                areas.insert(grid.to_string());
            }
            let flags: Vec<&str> = placement
                .map(|p| p.flags.as_slice())
                .unwrap_or_default()
                .iter()
                .chain(&placed.time_flags)
                .map(|k| k.as_str())
                .collect();
            CheckInRow {
                log_id: id.to_owned(),
                checkin_id: c.id.clone(),
                worker: worker.clone(),
                day: day.clone(),
                at: c.at.timestamp_millis(),
                received_at: now,
                clock_skew_ms: receipt.clock_skew_ms,
                lon: c.position.lon,
                lat: c.position.lat,
                accuracy_m: c.position.accuracy_m,
                claimed_grid: c.grid.map(|g| g.to_string()),
                grid: grid.map(|g| g.to_string()),
                level3s: placement
                    .map(|p| {
                        p.level3s
                            .iter()
                            .map(|(l, _)| l.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
                distance_m: placement.and_then(|p| p.distance_m),
                counts: placed.counts(),
                flags: flags.join(","),
                note: c.note.clone(),
            }
        })
        .collect();
    let anomalies = assessment
        .anomalies
        .iter()
        .map(|a| AnomalyRow {
            log_id: id.to_owned(),
            anomaly_id: a.id.clone(),
            worker: worker.clone(),
            day: day.clone(),
            kind: a.kind.as_str().to_owned(),
            checkin_id: a.checkin.clone(),
            at: a.at_ms,
            detail: a.detail.clone(),
            found_at: now,
        })
        .collect();
    let visits = assessment
        .visits
        .iter()
        .map(|v| VisitRow {
            day: day.clone(),
            worker: worker.clone(),
            level3: v.level3.to_string(),
            first_at: v.first_at_ms,
            last_at: v.last_at_ms,
            checkins: i32::try_from(v.checkins).unwrap_or(i32::MAX),
        })
        .collect();
    let times = record.checkins.iter().map(|c| c.at.timestamp_millis());
    let standing = record.verdict();
    let log = PatrolLogRow {
        id: id.to_owned(),
        worker: worker.clone(),
        day: day.clone(),
        role: record.role.map(|r| r.as_str().to_owned()),
        team: record.team.clone(),
        checkins: count(record.checkins.len()),
        counted: count(assessment.checkins.iter().filter(|c| c.counts()).count()),
        first_at: times.clone().min(),
        last_at: times.max(),
        points: count(assessment.track.points),
        distance_m: assessment.track.distance_m,
        walking_ms: assessment.track.walking_ms,
        cases_found: count(record.cases_found.len()),
        reviews: count(record.reviews.len()),
        verdict: standing.map(|r| r.verdict.as_str().to_owned()),
        reviewed_at: standing.map(|r| r.at.timestamp_millis()),
        reviewer: standing.map(|r| r.reviewer.user.clone()),
        problems: count(record.problems.len()),
        first_received_at: now,
        updated_at: now,
    };
    Some(PatrolRows {
        log,
        checkins,
        anomalies,
        visits,
        areas: areas.into_iter().collect(),
    })
}

/// Checks who wrote log `id` against the devices ever registered to its worker, and
/// records an `unregistered_device` anomaly per stranger (`assess::unregistered_devices`).
/// Returns how many were new. Run after each round that wrote the log: the write
/// rules refuse such changes through sync, so this guards what came another way.
pub async fn check_writers(store: &dyn Store, id: &str, now_ms: i64) -> Result<u64, StoreError> {
    let Some((worker, day)) = log_owner(id) else {
        return Ok(0);
    };
    let Some(stored) = store.sync_documents(&[id]).await?.remove(id) else {
        return Ok(0);
    };
    let Ok(doc) = wangge_sync_core::sync::load_chunks(&stored.chunks) else {
        // A stored document always loads; if not, the sync path reports it.
        return Ok(0);
    };
    let writers = wangge_sync_core::patrol::PatrolLog::from_automerge(doc).writers();
    let devices = store.devices(Some(&worker)).await?;
    let registered: Vec<&str> = devices.iter().map(|d| d.actor_id.as_str()).collect();
    let rows: Vec<AnomalyRow> = assess::unregistered_devices(&writers, &registered)
        .into_iter()
        .map(|a| AnomalyRow {
            log_id: id.to_owned(),
            anomaly_id: a.id,
            worker: worker.clone(),
            day: day.to_string(),
            kind: a.kind.as_str().to_owned(),
            checkin_id: a.checkin,
            at: a.at_ms,
            detail: a.detail,
            found_at: now_ms,
        })
        .collect();
    store.patrol_add_anomalies(&rows).await
}

/// Today in China, as a patrol day.
pub fn today(now_ms: i64) -> NaiveDate {
    patrol_date(DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default())
}

/// Snapshots `worker`'s duties of `day` from their posting now, unless taken already
/// (or, with `replace`, replacing it: the posting changed today). Only enabled field
/// workers have duties; nothing is written without grids. True when written.
pub async fn ensure_duties(
    store: &dyn Store,
    grids: Option<&GridIndex>,
    worker: &str,
    day: NaiveDate,
    replace: bool,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let day_text = day.to_string();
    if !replace && store.patrol_worker_day(worker, &day_text).await?.is_some() {
        return Ok(false);
    }
    let Some(grids) = grids else {
        return Ok(false);
    };
    let Some(user) = store.user(worker).await? else {
        return Ok(false);
    };
    if user.disabled || !user.role.is_field_worker() {
        return Ok(false);
    }
    let (duties, problem) = match assess::duties(user.role, &user.scope, grids) {
        Ok(level3s) => (
            level3s
                .iter()
                .map(|l| {
                    let community = l.community();
                    DutyRow {
                        level3: l.to_string(),
                        community: community.to_string(),
                        street: community.street().to_string(),
                        district: community.district().to_string(),
                    }
                })
                .collect::<Vec<_>>(),
            None,
        ),
        Err(problem) => (Vec::new(), Some(format!("posting_too_broad: {problem}"))),
    };
    let snapshot = WorkerDay {
        day: day_text,
        worker: worker.to_owned(),
        role: user.role.as_str().to_owned(),
        team: user.team.map(|t| t.to_string()),
        scope: user.scope.to_string(),
        problem,
        duties_at: now_ms,
    };
    store.patrol_set_duties(&snapshot, &duties, replace).await
}

/// Snapshots today's duties of every field worker who has none yet (idempotent, on
/// any node). Returns how many were written.
pub async fn duty_pass(
    store: &dyn Store,
    grids: Option<&GridIndex>,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let day = today(now_ms);
    let mut written = 0;
    for user in store.users().await? {
        if user.disabled || !user.role.is_field_worker() {
            continue;
        }
        if ensure_duties(store, grids, &user.id, day, false, now_ms).await? {
            written += 1;
        }
    }
    Ok(written)
}

/// The day's track as GeoJSON (RFC 7946 FeatureCollection): a LineString per walked
/// segment (simplified with `simplify_m`), a Point per check-in, and a `summary`
/// foreign member (distance, time walking, and time in each level-3 grid). In GCJ-02 by default, like `/v1/grids`, so it overlays the grids.
pub fn track_geojson(
    record: &PatrolRecord,
    grids: Option<&GridIndex>,
    simplify_m: f64,
    crs: Crs,
) -> Value {
    let rules = TrackRules {
        simplify_m,
        ..TrackRules::default()
    };
    let summary = summarize(&record.track, &rules);
    let out = |lon: f64, lat: f64| -> [f64; 2] {
        match LonLat::new(lon, lat) {
            Ok(p) if crs == Crs::Gcj02 => {
                let g = wangge_sync_core::geo::wgs84_to_gcj02(p);
                [g.lon, g.lat]
            }
            _ => [lon, lat],
        }
    };
    let mut features: Vec<Value> = summary
        .segments
        .iter()
        .filter_map(|segment| {
            let (first, last) = (segment.first()?, segment.last()?);
            let coordinates: Vec<[f64; 2]> = segment.iter().map(|p| out(p.lon, p.lat)).collect();
            Some(json!({
                "type": "Feature",
                "geometry": { "type": "LineString", "coordinates": coordinates },
                "properties": {
                    "kind": "segment",
                    "from": first.at_ms,
                    "to": last.at_ms,
                    "points_kept": segment.len(),
                },
            }))
        })
        .collect();
    for c in &record.checkins {
        features.push(json!({
            "type": "Feature",
            "geometry": { "type": "Point", "coordinates": out(c.position.lon, c.position.lat) },
            "properties": {
                "kind": "checkin",
                "id": c.id,
                "at": c.at.timestamp_millis(),
                "grid": grids.and_then(|g| g.locate(
                    LonLat::new(c.position.lon, c.position.lat).ok()?, Crs::Wgs84)).map(|g| g.to_string()),
            },
        }));
    }
    // Time walked per level-3 grid (null: outside every grid), most first.
    let time_in_grids: Vec<Value> = grids
        .map(|index| time_in_level3(&record.track, index, &rules))
        .unwrap_or_default()
        .into_iter()
        .map(|(level3, ms)| json!({ "level3": level3.map(|l| l.to_string()), "ms": ms }))
        .collect();
    json!({
        "type": "FeatureCollection",
        "features": features,
        "crs_name": if crs == Crs::Gcj02 { "gcj02" } else { "wgs84" },
        "summary": {
            "points": summary.points,
            "points_dropped": summary.dropped,
            "points_kept": summary.segments.iter().map(Vec::len).sum::<usize>(),
            "segments": summary.segments.len(),
            "distance_m": summary.distance_m,
            "walking_ms": summary.walking_ms,
            "jumps": summary.jumps.len() + summary.jumps_not_listed,
            "simplify_m": simplify_m,
            "time_in_level3": time_in_grids,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::log_owner;

    #[test]
    fn log_owner_reads_ids_with_colons_in_the_user() {
        let (worker, day) = log_owner("patrol:w:1:2026-12-02").expect("parsed");
        assert_eq!(worker, "w:1");
        assert_eq!(day.to_string(), "2026-12-02");
        assert!(log_owner("case:x").is_none());
        assert!(log_owner("patrol:w:2026-13-40").is_none());
    }
}
