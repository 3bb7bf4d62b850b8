//! The walk patrol (徒步巡查) as rows: each patrol log document's check-ins, visits,
//! anomalies and summary, written in the transaction that stores the document
//! (`write_patrol`, called by the sync store like `upsert_case`), the workers' daily
//! duties, and the coverage queries (见巡率, missed grids, 发现率). One SQL text serves
//! both databases (`impl_patrol_store!`).
//!
//! **Insert-once.** A check-in row keeps the receive time and flags of its first
//! receipt: a log synced again (a review, more check-ins) never moves them, and an
//! anomaly is never deleted. Visits and the log row are replaced on every write, under
//! the document row's lock (one log per worker and day, so no two writers race on a
//! worker-day).

use serde::Serialize;

use super::StoreFuture;

/// The rows of one patrol log, derived from its document.
#[derive(Debug, Clone, PartialEq)]
pub struct PatrolRows {
    /// The summary row.
    pub log: PatrolLogRow,
    /// Every readable check-in (inserted if new).
    pub checkins: Vec<CheckInRow>,
    /// Anomalies; those of a check-in are inserted only with the check-in's first
    /// receipt (their time flags are that receipt's).
    pub anomalies: Vec<AnomalyRow>,
    /// The level-3 grids visited (replace the worker-day's).
    pub visits: Vec<VisitRow>,
    /// Units (6, 9, 12 and 15 digits) the check-ins were located in.
    pub areas: Vec<String>,
}

/// A patrol log's summary, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct PatrolLogRow {
    /// Document id, `patrol:<worker>:<day>`.
    pub id: String,
    /// The worker.
    pub worker: String,
    /// China date.
    pub day: String,
    /// The worker's role as the log claims it.
    pub role: Option<String>,
    /// The worker's team.
    pub team: Option<String>,
    /// Check-ins read.
    pub checkins: i32,
    /// Check-ins that count for coverage.
    pub counted: i32,
    /// First check-in (phone time, ms).
    pub first_at: Option<i64>,
    /// Last check-in.
    pub last_at: Option<i64>,
    /// Track fixes used.
    pub points: i32,
    /// Walked, metres (simplified track).
    pub distance_m: f64,
    /// Time walking, ms.
    pub walking_ms: i64,
    /// Cases reported on the walk.
    pub cases_found: i32,
    /// Review entries.
    pub reviews: i32,
    /// `approve` / `reject`: the standing verdict.
    pub verdict: Option<String>,
    /// When the standing verdict was given.
    pub reviewed_at: Option<i64>,
    /// Who gave it.
    pub reviewer: Option<String>,
    /// Parts of the document that could not be read.
    pub problems: i32,
    /// When the server first stored the log.
    pub first_received_at: i64,
    /// When the row was last written.
    pub updated_at: i64,
}

/// A check-in as stored.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CheckInRow {
    /// The log.
    pub log_id: String,
    /// The check-in's id in the log.
    pub checkin_id: String,
    /// The worker.
    pub worker: String,
    /// The log's day.
    pub day: String,
    /// When, by the phone (ms).
    pub at: i64,
    /// When the server first stored it (ms).
    pub received_at: i64,
    /// The phone's clock minus the server's on that sync round, when the phone told it.
    pub clock_skew_ms: Option<i64>,
    /// WGS-84 as reported.
    pub lon: f64,
    /// WGS-84 as reported.
    pub lat: f64,
    /// Accuracy radius, metres.
    pub accuracy_m: Option<f64>,
    /// The unit grid the phone resolved.
    pub claimed_grid: Option<String>,
    /// The unit grid the server placed it in.
    pub grid: Option<String>,
    /// Level-3 grids it counts for, comma-separated.
    pub level3s: String,
    /// Distance to `grid`, metres (0 inside).
    pub distance_m: Option<f64>,
    /// Whether it counts for coverage.
    pub counts: bool,
    /// Anomaly kinds of the first receipt, comma-separated.
    pub flags: String,
    /// The worker's note.
    pub note: Option<String>,
}

/// An anomaly for review.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AnomalyRow {
    /// The log.
    pub log_id: String,
    /// Deterministic within the log (`<kind>:<check-in id>`, `impossible_speed:<ms>`).
    pub anomaly_id: String,
    /// The worker.
    pub worker: String,
    /// The log's day.
    pub day: String,
    /// `clock_skew`, `outside_grids`, …
    pub kind: String,
    /// The check-in concerned.
    pub checkin_id: Option<String>,
    /// When it happened (phone time, ms).
    pub at: Option<i64>,
    /// What, in words and numbers.
    pub detail: String,
    /// When the server found it.
    pub found_at: i64,
}

/// A level-3 grid a worker's counted check-ins reached on a day.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct VisitRow {
    /// China date.
    pub day: String,
    /// The worker.
    pub worker: String,
    /// Level-3 grid code (`<community>-nn`).
    pub level3: String,
    /// First check-in there (phone time).
    pub first_at: i64,
    /// Last check-in there.
    pub last_at: i64,
    /// Check-ins there.
    pub checkins: i32,
}

/// A worker's posting as snapshotted for a day.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct WorkerDay {
    /// China date.
    pub day: String,
    /// The worker.
    pub worker: String,
    /// Role then.
    pub role: String,
    /// Team then.
    pub team: Option<String>,
    /// Scope then (GridScope text).
    pub scope: String,
    /// Why the posting gave no duties (`posting_too_broad: …`), if so.
    pub problem: Option<String>,
    /// When the snapshot was taken (ms).
    pub duties_at: i64,
}

/// One level-3 grid a worker must walk on a day, with its units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DutyRow {
    /// Level-3 grid code.
    pub level3: String,
    /// Community code (12 digits).
    pub community: String,
    /// Street code (9).
    pub street: String,
    /// District code (6).
    pub district: String,
}

/// Which logs to list. The caller's scope always applies.
#[derive(Debug, Clone, Default)]
pub struct PatrolLogFilter {
    /// Unit prefixes the caller may see (`""`: everything).
    pub scope: Vec<String>,
    /// The caller, who always sees their own logs.
    pub user: String,
    /// Only logs concerning this unit (6, 9, 12 or 15 digits).
    pub unit: Option<String>,
    /// From this day (inclusive).
    pub from_day: String,
    /// To this day (inclusive).
    pub to_day: String,
    /// Only this worker's.
    pub worker: Option<String>,
    /// `none`, `approve` or `reject`.
    pub verdict: Option<String>,
    /// At most this many.
    pub limit: u32,
    /// Skip this many.
    pub offset: u32,
}

/// How coverage rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoverageBy {
    /// Per worker.
    Worker,
    /// Per level-3 grid.
    Level3,
    /// Per community.
    Community,
    /// Per street.
    Street,
    /// Per district.
    District,
    /// Per day.
    Day,
}

/// Writes the coverage rollup rows of worker `$2` on day `$1` from their duties and
/// visits (after deleting the old ones).
pub const COVERAGE_ROLLUP: &str = "INSERT INTO patrol_coverage
     (day, worker, community, street, district, assigned, covered, first_at, last_at)
     SELECT d.day, d.worker, d.community, d.street, d.district, COUNT(*), COUNT(v.level3),
         MIN(v.first_at), MAX(v.last_at)
     FROM patrol_duties d LEFT JOIN patrol_visits v
         ON v.day = d.day AND v.worker = d.worker AND v.level3 = d.level3
     WHERE d.day = $1 AND d.worker = $2
     GROUP BY d.day, d.worker, d.community, d.street, d.district";

impl CoverageBy {
    /// The duty column grouped on.
    pub const fn column(self) -> &'static str {
        match self {
            CoverageBy::Worker => "worker",
            CoverageBy::Level3 => "level3",
            CoverageBy::Community => "community",
            CoverageBy::Street => "street",
            CoverageBy::District => "district",
            CoverageBy::Day => "day",
        }
    }

    /// Parses a `by=` value.
    pub fn parse(text: &str) -> Option<CoverageBy> {
        [
            CoverageBy::Worker,
            CoverageBy::Level3,
            CoverageBy::Community,
            CoverageBy::Street,
            CoverageBy::District,
            CoverageBy::Day,
        ]
        .into_iter()
        .find(|b| b.column() == text)
    }
}

/// Coverage (见巡率) of one group: level-3 grid duties walked of those assigned.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CoverageRow {
    /// The group's key (a worker, a unit code, a day).
    pub key: String,
    /// Workers with duties in it.
    pub workers: i64,
    /// Worker-day level-3 duties.
    pub assigned: i64,
    /// Of which walked (at least one counted check-in).
    pub covered: i64,
    /// Earliest check-in.
    pub first_at: Option<i64>,
    /// Latest check-in.
    pub last_at: Option<i64>,
}

/// A duty not walked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct MissedRow {
    /// China date.
    pub day: String,
    /// The worker.
    pub worker: String,
    /// The level-3 grid.
    pub level3: String,
    /// Its community.
    pub community: String,
}

/// Cases reported in a unit: all, and found by patrol (发现率).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct DiscoveryRow {
    /// The unit.
    pub key: String,
    /// Cases reported (not voided).
    pub cases: i64,
    /// Of which by patrol.
    pub by_patrol: i64,
}

/// Patrol queries and the duty snapshots.
pub trait PatrolStore: Send + Sync {
    /// The worker's posting snapshot of a day, if taken.
    fn patrol_worker_day<'a>(
        &'a self,
        worker: &'a str,
        day: &'a str,
    ) -> StoreFuture<'a, Option<WorkerDay>>;
    /// Snapshots a worker's duties for a day. With `replace`, an existing snapshot is
    /// replaced (a posting changed today); without, one taken meanwhile wins and
    /// nothing is written. True when written.
    fn patrol_set_duties<'a>(
        &'a self,
        snapshot: &'a WorkerDay,
        duties: &'a [DutyRow],
        replace: bool,
    ) -> StoreFuture<'a, bool>;
    /// A worker's duties of a day.
    fn patrol_duties<'a>(&'a self, worker: &'a str, day: &'a str) -> StoreFuture<'a, Vec<DutyRow>>;
    /// Logs matching `filter`, newest day first, then by worker.
    fn patrol_logs<'a>(&'a self, filter: &'a PatrolLogFilter)
    -> StoreFuture<'a, Vec<PatrolLogRow>>;
    /// One log's row.
    fn patrol_log<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<PatrolLogRow>>;
    /// The units a log concerns.
    fn patrol_log_areas<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Vec<String>>;
    /// A log's check-ins, by time.
    fn patrol_checkins<'a>(&'a self, log_id: &'a str) -> StoreFuture<'a, Vec<CheckInRow>>;
    /// A log's visits.
    fn patrol_visits<'a>(&'a self, worker: &'a str, day: &'a str)
    -> StoreFuture<'a, Vec<VisitRow>>;
    /// Anomalies of one log, or of the logs concerning `unit` in the days, newest
    /// first, optionally of one kind.
    fn patrol_anomalies<'a>(
        &'a self,
        log_id: Option<&'a str>,
        unit: Option<&'a str>,
        days: (&'a str, &'a str),
        kind: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<AnomalyRow>>;
    /// Coverage of the duties under `unit` (2–12 digits, `""` = all) in the days
    /// (inclusive), grouped by `by`.
    fn patrol_coverage<'a>(
        &'a self,
        unit: &'a str,
        days: (&'a str, &'a str),
        by: CoverageBy,
    ) -> StoreFuture<'a, Vec<CoverageRow>>;
    /// Duties under `unit` in the days that no counted check-in reached.
    fn patrol_missed<'a>(
        &'a self,
        unit: &'a str,
        days: (&'a str, &'a str),
    ) -> StoreFuture<'a, Vec<MissedRow>>;
    /// Adds anomalies found outside a document write (ids already there are kept);
    /// returns how many were new.
    fn patrol_add_anomalies<'a>(&'a self, rows: &'a [AnomalyRow]) -> StoreFuture<'a, u64>;
    /// Cases reported under `unit` in `[from_ms, to_ms)`, all and by patrol, grouped by
    /// the unit column `by` (`district`, `street`, `community`).
    fn patrol_discovery<'a>(
        &'a self,
        unit: &'a str,
        from_ms: i64,
        to_ms: i64,
        by: CoverageBy,
    ) -> StoreFuture<'a, Vec<DiscoveryRow>>;
}

/// Implements [`PatrolStore`] and `write_patrol` for `$store` over `$db`.
macro_rules! impl_patrol_store {
    ($store:ty, $db:ident) => {
        impl $crate::store::patrol::PatrolStore for $store {
            fn patrol_worker_day<'a>(
                &'a self,
                worker: &'a str,
                day: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::patrol::WorkerDay>> {
                Box::pin(async move {
                    Ok(sqlx::query_as(
                        "SELECT * FROM patrol_worker_days WHERE worker = $1 AND day = $2",
                    )
                    .bind(worker)
                    .bind(day)
                    .fetch_optional(&self.pool)
                    .await?)
                })
            }

            fn patrol_set_duties<'a>(
                &'a self,
                snapshot: &'a $crate::store::patrol::WorkerDay,
                duties: &'a [$crate::store::patrol::DutyRow],
                replace: bool,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(async move {
                    let _turn = self.write_turn().await;
                    let mut tx = self.pool.begin().await?;
                    lock_worker_day(&mut tx, &snapshot.day, &snapshot.worker).await?;
                    let insert = if replace {
                        "INSERT INTO patrol_worker_days (day, worker, role, team, scope, problem, duties_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                         ON CONFLICT (day, worker) DO UPDATE SET role = excluded.role,
                             team = excluded.team, scope = excluded.scope,
                             problem = excluded.problem, duties_at = excluded.duties_at
                         RETURNING day"
                    } else {
                        "INSERT INTO patrol_worker_days (day, worker, role, team, scope, problem, duties_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                         ON CONFLICT (day, worker) DO NOTHING RETURNING day"
                    };
                    let written: Option<(String,)> = sqlx::query_as(insert)
                        .bind(&snapshot.day)
                        .bind(&snapshot.worker)
                        .bind(&snapshot.role)
                        .bind(&snapshot.team)
                        .bind(&snapshot.scope)
                        .bind(&snapshot.problem)
                        .bind(snapshot.duties_at)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if written.is_none() {
                        return Ok(false);
                    }
                    sqlx::query("DELETE FROM patrol_duties WHERE day = $1 AND worker = $2")
                        .bind(&snapshot.day)
                        .bind(&snapshot.worker)
                        .execute(&mut *tx)
                        .await?;
                    if !duties.is_empty() {
                        let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                            "INSERT INTO patrol_duties (day, worker, level3, community, street, district) ",
                        );
                        q.push_values(duties, |mut row, duty| {
                            row.push_bind(&snapshot.day)
                                .push_bind(&snapshot.worker)
                                .push_bind(&duty.level3)
                                .push_bind(&duty.community)
                                .push_bind(&duty.street)
                                .push_bind(&duty.district);
                        });
                        q.build().execute(&mut *tx).await?;
                        // The worker's log of the day concerns these units, written
                        // or not yet: its reviewers find it (or its absence) there.
                        let log_id = wangge_sync_core::patrol::patrol_log_id(
                            &snapshot.worker,
                            snapshot.day.parse().unwrap_or_default(),
                        );
                        let mut areas: Vec<&str> = duties
                            .iter()
                            .flat_map(|d| [d.district.as_str(), d.street.as_str(), d.community.as_str()])
                            .collect();
                        areas.sort_unstable();
                        areas.dedup();
                        insert_areas(&mut tx, &log_id, &snapshot.day, &areas).await?;
                    }
                    recount_coverage(&mut tx, &snapshot.day, &snapshot.worker).await?;
                    tx.commit().await?;
                    Ok(true)
                })
            }

            fn patrol_duties<'a>(
                &'a self,
                worker: &'a str,
                day: &'a str,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::patrol::DutyRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as(
                        "SELECT level3, community, street, district FROM patrol_duties
                         WHERE worker = $1 AND day = $2 ORDER BY level3",
                    )
                    .bind(worker)
                    .bind(day)
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn patrol_logs<'a>(
                &'a self,
                filter: &'a $crate::store::patrol::PatrolLogFilter,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::patrol::PatrolLogRow>> {
                Box::pin(async move {
                    let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                        "SELECT * FROM patrol_logs WHERE day >= ",
                    );
                    q.push_bind(filter.from_day.clone())
                        .push(" AND day <= ")
                        .push_bind(filter.to_day.clone());
                    if !filter.scope.iter().any(String::is_empty) {
                        q.push(" AND (worker = ")
                            .push_bind(filter.user.clone())
                            .push(" OR id IN (SELECT log_id FROM patrol_log_areas WHERE ");
                        push_area_in(&mut q, &filter.scope);
                        q.push(" AND day >= ")
                            .push_bind(filter.from_day.clone())
                            .push(" AND day <= ")
                            .push_bind(filter.to_day.clone())
                            .push("))");
                    }
                    if let Some(unit) = &filter.unit {
                        q.push(" AND id IN (SELECT log_id FROM patrol_log_areas WHERE ");
                        push_area_in(&mut q, std::slice::from_ref(unit));
                        q.push(" AND day >= ")
                            .push_bind(filter.from_day.clone())
                            .push(" AND day <= ")
                            .push_bind(filter.to_day.clone())
                            .push(")");
                    }
                    if let Some(worker) = &filter.worker {
                        q.push(" AND worker = ").push_bind(worker.clone());
                    }
                    match filter.verdict.as_deref() {
                        Some("none") => {
                            q.push(" AND verdict IS NULL");
                        }
                        Some(verdict) => {
                            q.push(" AND verdict = ").push_bind(verdict.to_owned());
                        }
                        None => {}
                    }
                    q.push(" ORDER BY day DESC, worker LIMIT ")
                        .push_bind(i64::from(filter.limit))
                        .push(" OFFSET ")
                        .push_bind(i64::from(filter.offset));
                    Ok(q.build_query_as().fetch_all(&self.pool).await?)
                })
            }

            fn patrol_log<'a>(
                &'a self,
                id: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::patrol::PatrolLogRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as("SELECT * FROM patrol_logs WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?)
                })
            }

            fn patrol_log_areas<'a>(
                &'a self,
                id: &'a str,
            ) -> $crate::store::StoreFuture<'a, Vec<String>> {
                Box::pin(async move {
                    let rows: Vec<(String,)> = sqlx::query_as(
                        "SELECT DISTINCT area FROM patrol_log_areas WHERE log_id = $1 ORDER BY area",
                    )
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows.into_iter().map(|(area,)| area).collect())
                })
            }

            fn patrol_checkins<'a>(
                &'a self,
                log_id: &'a str,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::patrol::CheckInRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as(
                        "SELECT * FROM patrol_checkins WHERE log_id = $1 ORDER BY at, checkin_id",
                    )
                    .bind(log_id)
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn patrol_visits<'a>(
                &'a self,
                worker: &'a str,
                day: &'a str,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::patrol::VisitRow>> {
                Box::pin(async move {
                    Ok(sqlx::query_as(
                        "SELECT * FROM patrol_visits WHERE worker = $1 AND day = $2 ORDER BY level3",
                    )
                    .bind(worker)
                    .bind(day)
                    .fetch_all(&self.pool)
                    .await?)
                })
            }

            fn patrol_anomalies<'a>(
                &'a self,
                log_id: Option<&'a str>,
                unit: Option<&'a str>,
                days: (&'a str, &'a str),
                kind: Option<&'a str>,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::patrol::AnomalyRow>> {
                Box::pin(async move {
                    let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                        "SELECT * FROM patrol_anomalies WHERE day >= ",
                    );
                    q.push_bind(days.0.to_owned())
                        .push(" AND day <= ")
                        .push_bind(days.1.to_owned());
                    if let Some(id) = log_id {
                        q.push(" AND log_id = ").push_bind(id.to_owned());
                    }
                    if let Some(unit) = unit {
                        q.push(" AND log_id IN (SELECT log_id FROM patrol_log_areas WHERE ");
                        push_area_in(&mut q, &[unit.to_owned()]);
                        q.push(" AND day >= ")
                            .push_bind(days.0.to_owned())
                            .push(" AND day <= ")
                            .push_bind(days.1.to_owned())
                            .push(")");
                    }
                    if let Some(kind) = kind {
                        q.push(" AND kind = ").push_bind(kind.to_owned());
                    }
                    q.push(" ORDER BY day DESC, at DESC, anomaly_id LIMIT 10000");
                    Ok(q.build_query_as().fetch_all(&self.pool).await?)
                })
            }

            fn patrol_coverage<'a>(
                &'a self,
                unit: &'a str,
                days: (&'a str, &'a str),
                by: $crate::store::patrol::CoverageBy,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::patrol::CoverageRow>> {
                Box::pin(async move {
                    let column = by.column();
                    // Per level-3 grid from the duties themselves (a unit's few); every
                    // other grouping from the rollup, one row per worker-day-community.
                    let from = if by == $crate::store::patrol::CoverageBy::Level3 {
                        "COUNT(*) AS assigned, COUNT(v.level3) AS covered,
                             MIN(v.first_at) AS first_at, MAX(v.last_at) AS last_at
                         FROM patrol_duties d LEFT JOIN patrol_visits v
                             ON v.day = d.day AND v.worker = d.worker AND v.level3 = d.level3"
                    } else {
                        "SUM(d.assigned) AS assigned, SUM(d.covered) AS covered,
                             MIN(d.first_at) AS first_at, MAX(d.last_at) AS last_at
                         FROM patrol_coverage d"
                    };
                    let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(format!(
                        "SELECT d.{column} AS key, COUNT(DISTINCT d.worker) AS workers, {from}
                         WHERE "
                    ));
                    push_duty_unit(&mut q, unit);
                    q.push(" AND d.day >= ")
                        .push_bind(days.0.to_owned())
                        .push(" AND d.day <= ")
                        .push_bind(days.1.to_owned())
                        .push(format!(" GROUP BY d.{column} ORDER BY d.{column}"));
                    Ok(q.build_query_as().fetch_all(&self.pool).await?)
                })
            }

            fn patrol_missed<'a>(
                &'a self,
                unit: &'a str,
                days: (&'a str, &'a str),
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::patrol::MissedRow>> {
                Box::pin(async move {
                    let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                        "SELECT d.day, d.worker, d.level3, d.community
                         FROM patrol_duties d LEFT JOIN patrol_visits v
                             ON v.day = d.day AND v.worker = d.worker AND v.level3 = d.level3
                         WHERE v.level3 IS NULL AND ",
                    );
                    push_duty_unit(&mut q, unit);
                    q.push(" AND d.day >= ")
                        .push_bind(days.0.to_owned())
                        .push(" AND d.day <= ")
                        .push_bind(days.1.to_owned())
                        .push(" ORDER BY d.day, d.worker, d.level3 LIMIT 10000");
                    Ok(q.build_query_as().fetch_all(&self.pool).await?)
                })
            }

            fn patrol_add_anomalies<'a>(
                &'a self,
                rows: &'a [$crate::store::patrol::AnomalyRow],
            ) -> $crate::store::StoreFuture<'a, u64> {
                Box::pin(async move {
                    if rows.is_empty() {
                        return Ok(0);
                    }
                    let _turn = self.write_turn().await;
                    let rows: Vec<&$crate::store::patrol::AnomalyRow> = rows.iter().collect();
                    let mut added = 0;
                    for chunk in rows.chunks(1000) {
                        added += insert_anomalies(chunk)
                            .build()
                            .execute(&self.pool)
                            .await?
                            .rows_affected();
                    }
                    Ok(added)
                })
            }

            fn patrol_discovery<'a>(
                &'a self,
                unit: &'a str,
                from_ms: i64,
                to_ms: i64,
                by: $crate::store::patrol::CoverageBy,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::patrol::DiscoveryRow>> {
                Box::pin(async move {
                    let column = match by {
                        $crate::store::patrol::CoverageBy::District => "district",
                        $crate::store::patrol::CoverageBy::Street => "street",
                        _ => "community",
                    };
                    let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(format!(
                        "SELECT {column} AS key, COUNT(*) AS cases,
                             SUM(CASE WHEN source = 'patrol' THEN 1 ELSE 0 END) AS by_patrol
                         FROM cases WHERE {column} IS NOT NULL AND "
                    ));
                    push_prefix(&mut q, unit);
                    q.push(" AND reported_at >= ")
                        .push_bind(from_ms)
                        .push(" AND reported_at < ")
                        .push_bind(to_ms)
                        .push(format!(
                            " AND status IS NOT NULL AND status <> 'voided' GROUP BY {column} ORDER BY {column}"
                        ));
                    Ok(q.build_query_as().fetch_all(&self.pool).await?)
                })
            }
        }

        /// `area IN (…)` for unit prefixes (`""`: any; 2 and 4 digits: the districts
        /// beginning so; none: nothing, never an empty `IN ()`).
        fn push_area_in(q: &mut sqlx::QueryBuilder<sqlx::$db>, prefixes: &[String]) {
            if prefixes.is_empty() {
                q.push("FALSE");
                return;
            }
            q.push("(");
            for (i, prefix) in prefixes.iter().enumerate() {
                if i > 0 {
                    q.push(" OR ");
                }
                match prefix.len() {
                    0 => {
                        q.push("TRUE");
                    }
                    2 | 4 => {
                        q.push("(length(area) = 6 AND substr(area, 1, ")
                            .push_bind(i32::try_from(prefix.len()).unwrap_or(0))
                            .push(") = ")
                            .push_bind(prefix.clone())
                            .push(")");
                    }
                    _ => {
                        q.push("area = ").push_bind(prefix.clone());
                    }
                }
            }
            q.push(")");
        }

        /// `<the duties under this unit>` (alias `d`).
        fn push_duty_unit(q: &mut sqlx::QueryBuilder<sqlx::$db>, unit: &str) {
            match unit.len() {
                0 => {
                    q.push("TRUE");
                }
                6 => {
                    q.push("d.district = ").push_bind(unit.to_owned());
                }
                9 => {
                    q.push("d.street = ").push_bind(unit.to_owned());
                }
                12 => {
                    q.push("d.community = ").push_bind(unit.to_owned());
                }
                n => {
                    q.push("substr(d.district, 1, ")
                        .push_bind(i32::try_from(n).unwrap_or(0))
                        .push(") = ")
                        .push_bind(unit.to_owned());
                }
            }
        }

        async fn insert_areas(
            tx: &mut sqlx::Transaction<'_, sqlx::$db>,
            log_id: &str,
            day: &str,
            areas: &[&str],
        ) -> Result<(), $crate::store::StoreError> {
            if areas.is_empty() {
                return Ok(());
            }
            let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                "INSERT INTO patrol_log_areas (area, day, log_id) ",
            );
            q.push_values(areas, |mut row, area| {
                row.push_bind(*area).push_bind(day).push_bind(log_id);
            });
            q.push(" ON CONFLICT (area, day, log_id) DO NOTHING");
            q.build().execute(&mut **tx).await?;
            Ok(())
        }

        /// Writes a patrol log's rows in the transaction storing its document: the
        /// summary and visits replaced, new check-ins inserted with their anomalies
        /// (an old one keeps its first receipt's), the others' anomalies added.
        pub(crate) async fn write_patrol(
            tx: &mut sqlx::Transaction<'_, sqlx::$db>,
            rows: &$crate::store::patrol::PatrolRows,
        ) -> Result<(), $crate::store::StoreError> {
            let log = &rows.log;
            lock_worker_day(tx, &log.day, &log.worker).await?;
            sqlx::query(
                "INSERT INTO patrol_logs (id, worker, day, role, team, checkins, counted, first_at,
                     last_at, points, distance_m, walking_ms, cases_found, reviews, verdict,
                     reviewed_at, reviewer, problems, first_received_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                     $17, $18, $19, $20)
                 ON CONFLICT (id) DO UPDATE SET worker = excluded.worker, day = excluded.day,
                     role = excluded.role, team = excluded.team, checkins = excluded.checkins,
                     counted = excluded.counted, first_at = excluded.first_at,
                     last_at = excluded.last_at, points = excluded.points,
                     distance_m = excluded.distance_m, walking_ms = excluded.walking_ms,
                     cases_found = excluded.cases_found, reviews = excluded.reviews,
                     verdict = excluded.verdict, reviewed_at = excluded.reviewed_at,
                     reviewer = excluded.reviewer, problems = excluded.problems,
                     updated_at = excluded.updated_at",
            )
            .bind(&log.id)
            .bind(&log.worker)
            .bind(&log.day)
            .bind(&log.role)
            .bind(&log.team)
            .bind(log.checkins)
            .bind(log.counted)
            .bind(log.first_at)
            .bind(log.last_at)
            .bind(log.points)
            .bind(log.distance_m)
            .bind(log.walking_ms)
            .bind(log.cases_found)
            .bind(log.reviews)
            .bind(&log.verdict)
            .bind(log.reviewed_at)
            .bind(&log.reviewer)
            .bind(log.problems)
            .bind(log.first_received_at)
            .bind(log.updated_at)
            .execute(&mut **tx)
            .await?;

            let mut new_checkins: std::collections::BTreeSet<String> = Default::default();
            // 17 parameters a row: 500 rows stay under SQLite's 32,766.
            for chunk in rows.checkins.chunks(500) {
                let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                    "INSERT INTO patrol_checkins (log_id, checkin_id, worker, day, at, received_at,
                         clock_skew_ms, lon, lat, accuracy_m, claimed_grid, grid, level3s,
                         distance_m, counts, flags, note) ",
                );
                q.push_values(chunk, |mut row, c| {
                    row.push_bind(&c.log_id)
                        .push_bind(&c.checkin_id)
                        .push_bind(&c.worker)
                        .push_bind(&c.day)
                        .push_bind(c.at)
                        .push_bind(c.received_at)
                        .push_bind(c.clock_skew_ms)
                        .push_bind(c.lon)
                        .push_bind(c.lat)
                        .push_bind(c.accuracy_m)
                        .push_bind(&c.claimed_grid)
                        .push_bind(&c.grid)
                        .push_bind(&c.level3s)
                        .push_bind(c.distance_m)
                        .push_bind(c.counts)
                        .push_bind(&c.flags)
                        .push_bind(&c.note);
                });
                q.push(" ON CONFLICT (log_id, checkin_id) DO NOTHING RETURNING checkin_id");
                let inserted: Vec<(String,)> = q.build_query_as().fetch_all(&mut **tx).await?;
                new_checkins.extend(inserted.into_iter().map(|(id,)| id));
            }

            let anomalies: Vec<&$crate::store::patrol::AnomalyRow> = rows
                .anomalies
                .iter()
                .filter(|a| a.checkin_id.as_ref().is_none_or(|c| new_checkins.contains(c)))
                .collect();
            for chunk in anomalies.chunks(1000) {
                insert_anomalies(chunk).build().execute(&mut **tx).await?;
            }

            sqlx::query("DELETE FROM patrol_visits WHERE day = $1 AND worker = $2")
                .bind(&log.day)
                .bind(&log.worker)
                .execute(&mut **tx)
                .await?;
            if !rows.visits.is_empty() {
                let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                    "INSERT INTO patrol_visits (day, worker, level3, first_at, last_at, checkins) ",
                );
                q.push_values(&rows.visits, |mut row, v| {
                    row.push_bind(&v.day)
                        .push_bind(&v.worker)
                        .push_bind(&v.level3)
                        .push_bind(v.first_at)
                        .push_bind(v.last_at)
                        .push_bind(v.checkins);
                });
                q.build().execute(&mut **tx).await?;
            }
            let areas: Vec<&str> = rows.areas.iter().map(String::as_str).collect();
            insert_areas(tx, &log.id, &log.day, &areas).await?;
            recount_coverage(tx, &log.day, &log.worker).await
        }

        /// Inserts anomalies, keeping those already there (ids are deterministic).
        fn insert_anomalies<'q>(
            rows: &'q [&'q $crate::store::patrol::AnomalyRow],
        ) -> sqlx::QueryBuilder<sqlx::$db> {
            let mut q = sqlx::QueryBuilder::<sqlx::$db>::new(
                "INSERT INTO patrol_anomalies (log_id, anomaly_id, worker, day, kind, checkin_id,
                     at, detail, found_at) ",
            );
            q.push_values(rows, |mut row, a| {
                row.push_bind(&a.log_id)
                    .push_bind(&a.anomaly_id)
                    .push_bind(&a.worker)
                    .push_bind(&a.day)
                    .push_bind(&a.kind)
                    .push_bind(&a.checkin_id)
                    .push_bind(a.at)
                    .push_bind(&a.detail)
                    .push_bind(a.found_at);
            });
            q.push(" ON CONFLICT (log_id, anomaly_id) DO NOTHING");
            q
        }

        /// Takes the worker-day's lock row (migration 0012's `patrol_day_locks`): the
        /// first statement of every transaction that changes the day's duties or visits.
        async fn lock_worker_day(
            tx: &mut sqlx::Transaction<'_, sqlx::$db>,
            day: &str,
            worker: &str,
        ) -> Result<(), $crate::store::StoreError> {
            sqlx::query(
                "INSERT INTO patrol_day_locks (day, worker, writes) VALUES ($1, $2, 1)
                 ON CONFLICT (day, worker) DO UPDATE SET writes = patrol_day_locks.writes + 1",
            )
            .bind(day)
            .bind(worker)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        /// Recomputes the worker-day's coverage rollup from its duties and visits.
        async fn recount_coverage(
            tx: &mut sqlx::Transaction<'_, sqlx::$db>,
            day: &str,
            worker: &str,
        ) -> Result<(), $crate::store::StoreError> {
            sqlx::query("DELETE FROM patrol_coverage WHERE day = $1 AND worker = $2")
                .bind(day)
                .bind(worker)
                .execute(&mut **tx)
                .await?;
            sqlx::query($crate::store::patrol::COVERAGE_ROLLUP)
            .bind(day)
            .bind(worker)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }
    };
}

pub(crate) use impl_patrol_store;
