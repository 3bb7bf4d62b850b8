//! `/v1/patrol`: the supervisor's review of the synced walk-patrol logs (徒步巡查):
//! logs by unit and day, one log with its check-ins, duties, track and anomalies, the
//! track as GeoJSON, reviews written into the log (so the worker's phone receives them
//! on its next sync), coverage (见巡率) with the missed grids, anomalies, and the daily
//! or monthly summary per street or district as JSON or CSV.
//!
//! Who sees what: reviewers (网格长, 值班长 and the 分包 leaders) see the logs whose
//! units (where the check-ins were, where the worker had duties) are in their scope; a
//! field worker sees their own logs; everyone else gets 403. A log out of scope is 404,
//! as for cases.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use wangge_sync_core::geo::Crs;
use wangge_sync_core::patrol::{self, PatrolError, PatrolLog, PatrolRecord, Review, Verdict};
use wangge_sync_core::role::GridScope;
use wangge_sync_core::sync::server::Written;
use wangge_sync_core::sync::{DocKind, DocMeta};

use super::{ApiError, AppState, Caller, JsonBody, QueryParams, bad_request, current_user, now_ms};
use crate::store::User;
use crate::store::patrol::{CoverageBy, CoverageRow, PatrolLogFilter, PatrolLogRow};

/// The most logs one page lists.
pub const MAX_LOGS_PER_PAGE: u32 = 500;

/// What the caller may see of the patrol.
enum Viewer {
    /// A reviewer, over these unit prefixes (`""`: the city).
    Reviewer(GridScope),
    /// A field worker: their own logs.
    Worker,
}

fn viewer(user: &User) -> Result<Viewer, ApiError> {
    if patrol::reviews(user.role) {
        Ok(Viewer::Reviewer(user.scope.clone()))
    } else if user.role.is_field_worker() {
        Ok(Viewer::Worker)
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "a {} does not review patrol logs",
                user.role.as_str().replace('_', " ")
            ),
        ))
    }
}

fn reviewer_only(user: &User) -> Result<GridScope, ApiError> {
    match viewer(user)? {
        Viewer::Reviewer(scope) => Ok(scope),
        Viewer::Worker => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "coverage and summaries are for reviewers; a worker sees their own logs",
        )),
    }
}

fn log_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "patrol_log_not_found",
        format!("no patrol log {id:?} in your scope"),
    )
}

/// A unit code (2, 4, 6, 9 or 12 digits) the caller's scope encloses.
fn unit_in_scope(scope: &GridScope, unit: &str) -> Result<String, ApiError> {
    if !matches!(unit.len(), 2 | 4 | 6 | 9 | 12) || !unit.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_request(
            "invalid_query",
            format!(
                "unit {unit:?}: a city (4 digits), district (6), street (9) or community (12) code"
            ),
        ));
    }
    let asked = GridScope::new([unit]).map_err(|e| bad_request("invalid_query", e.to_string()))?;
    if !scope.encloses(&asked) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "out_of_scope",
            format!("unit {unit} is not in your scope ({scope})"),
        ));
    }
    Ok(unit.to_owned())
}

/// The unit a report is about: the one asked for, or the caller's only one.
fn report_unit(scope: &GridScope, unit: Option<&str>) -> Result<String, ApiError> {
    match (unit, scope.prefixes()) {
        (Some(unit), _) => unit_in_scope(scope, unit),
        (None, [only]) if only.len() <= 12 => Ok(only.clone()),
        _ => Err(bad_request(
            "invalid_query",
            "unit is required: your scope has several units",
        )),
    }
}

/// A day (`day=`), a month (`month=`) or today, as inclusive China dates.
#[derive(Debug, Clone, Copy)]
struct Days {
    from: NaiveDate,
    to: NaiveDate,
}

impl Days {
    fn parse(day: Option<&str>, month: Option<&str>) -> Result<Days, ApiError> {
        match (day, month) {
            (Some(_), Some(_)) => Err(bad_request("invalid_query", "give day or month, not both")),
            (Some(day), None) => {
                let day: NaiveDate = day.parse().map_err(|_| {
                    bad_request("invalid_query", format!("day {day:?}: YYYY-MM-DD"))
                })?;
                Ok(Days { from: day, to: day })
            }
            (None, Some(month)) => {
                let first: NaiveDate = format!("{month}-01").parse().map_err(|_| {
                    bad_request("invalid_query", format!("month {month:?}: YYYY-MM"))
                })?;
                let next = first
                    .checked_add_months(chrono::Months::new(1))
                    .ok_or_else(|| bad_request("invalid_query", "month out of range"))?;
                Ok(Days {
                    from: first,
                    to: next.pred_opt().unwrap_or(first),
                })
            }
            (None, None) => {
                let today = crate::patrol::today(now_ms());
                Ok(Days {
                    from: today,
                    to: today,
                })
            }
        }
    }

    fn text(&self) -> (String, String) {
        (self.from.to_string(), self.to.to_string())
    }

    /// `[from, to]` as UTC milliseconds of China midnights, `to` exclusive.
    fn ms(&self) -> (i64, i64) {
        let midnight = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp_millis())
                .unwrap_or_default()
                - i64::from(wangge_sync_core::calendar::SHANGHAI.local_minus_utc()) * 1000
        };
        (
            midnight(self.from),
            midnight(self.to.succ_opt().unwrap_or(self.to)),
        )
    }

    fn json(&self) -> Value {
        json!({ "from": self.from.to_string(), "to": self.to.to_string() })
    }
}

/// `GET /v1/patrol/logs` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LogsQuery {
    unit: Option<String>,
    day: Option<String>,
    month: Option<String>,
    worker: Option<String>,
    /// `none`, `approve` or `reject`.
    verdict: Option<String>,
    limit: Option<u32>,
    #[serde(default)]
    offset: u32,
}

fn log_json(row: &PatrolLogRow) -> Value {
    let mut value = serde_json::to_value(row).unwrap_or_default();
    if let Some(label) = row.verdict.as_deref().map(verdict_label) {
        value["verdict_label"] = json!(label);
    }
    value
}

fn verdict_label(verdict: &str) -> &'static str {
    match verdict {
        "approve" => "合格 approved",
        "reject" => "不合格 rejected",
        _ => "评语 comment",
    }
}

/// `GET /v1/patrol/logs`: logs of a unit and day (or month), by day then worker.
pub(super) async fn list(
    State(state): State<AppState>,
    Caller(claims): Caller,
    QueryParams(query): QueryParams<LogsQuery>,
) -> Result<Json<Value>, ApiError> {
    let user = current_user(&state, &claims).await?;
    let days = Days::parse(query.day.as_deref(), query.month.as_deref())?;
    if let Some(v) = &query.verdict
        && !matches!(v.as_str(), "none" | "approve" | "reject")
    {
        return Err(bad_request(
            "invalid_query",
            format!("verdict {v:?}: none, approve or reject"),
        ));
    }
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LOGS_PER_PAGE {
        return Err(bad_request(
            "invalid_query",
            format!("limit must be 1–{MAX_LOGS_PER_PAGE}"),
        ));
    }
    let (from_day, to_day) = days.text();
    let mut filter = PatrolLogFilter {
        user: user.id.clone(),
        from_day,
        to_day,
        verdict: query.verdict.clone(),
        worker: query.worker.clone(),
        limit,
        offset: query.offset,
        ..PatrolLogFilter::default()
    };
    match viewer(&user)? {
        Viewer::Reviewer(scope) => {
            filter.scope = scope.prefixes().to_vec();
            if let Some(unit) = &query.unit {
                filter.unit = Some(unit_in_scope(&scope, unit)?);
            }
        }
        Viewer::Worker => {
            if query.unit.is_some() || query.worker.as_ref().is_some_and(|w| *w != user.id) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "out_of_scope",
                    "a worker lists their own logs only",
                ));
            }
            filter.worker = Some(user.id.clone());
        }
    }
    let rows = state.store.patrol_logs(&filter).await?;
    Ok(Json(json!({
        "days": days.json(),
        "logs": rows.iter().map(log_json).collect::<Vec<_>>(),
    })))
}

/// The log's row and document, if the caller may see it.
async fn load_in_scope(
    state: &AppState,
    user: &User,
    id: &str,
) -> Result<(PatrolLogRow, PatrolLog), ApiError> {
    let row = state
        .store
        .patrol_log(id)
        .await?
        .ok_or_else(|| log_not_found(id))?;
    let visible = match viewer(user)? {
        Viewer::Worker => row.worker == user.id,
        Viewer::Reviewer(scope) => {
            row.worker == user.id || {
                let areas = state.store.patrol_log_areas(id).await?;
                areas
                    .iter()
                    .any(|a| scope.prefixes().iter().any(|p| a.starts_with(p.as_str())))
            }
        }
    };
    if !visible {
        return Err(log_not_found(id));
    }
    let doc = crate::writes::load_stored(state.store.as_ref(), id)
        .await?
        .ok_or_else(|| log_not_found(id))?;
    Ok((row, PatrolLog::from_automerge(doc)))
}

fn reviews_json(record: &PatrolRecord) -> Vec<Value> {
    record
        .reviews
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "at": r.at.timestamp_millis(),
                "user": r.reviewer.user,
                "role": r.reviewer.role.as_str(),
                "role_name_zh": r.reviewer.role.name_zh(),
                "verdict": r.verdict.as_str(),
                "verdict_label": verdict_label(r.verdict.as_str()),
                "comment": r.comment,
            })
        })
        .collect()
}

/// `GET /v1/patrol/logs/{id}`: the log with its check-ins (placement, flags, receive
/// time), the day's duties and which were missed, the track summary, the cases found,
/// the reviews, the anomalies and what could not be read.
pub(super) async fn show(
    State(state): State<AppState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user = current_user(&state, &claims).await?;
    let (row, log) = load_in_scope(&state, &user, &id).await?;
    let record = log.read();
    let checkins = state.store.patrol_checkins(&id).await?;
    let duties = state.store.patrol_duties(&row.worker, &row.day).await?;
    let visits = state.store.patrol_visits(&row.worker, &row.day).await?;
    let snapshot = state.store.patrol_worker_day(&row.worker, &row.day).await?;
    let anomalies = state
        .store
        .patrol_anomalies(Some(&id), None, (&row.day, &row.day), None)
        .await?;
    let duties: Vec<Value> = duties
        .iter()
        .map(|d| {
            let visit = visits.iter().find(|v| v.level3 == d.level3);
            json!({
                "level3": d.level3,
                "community": d.community,
                "walked": visit.is_some(),
                "first_at": visit.map(|v| v.first_at),
                "last_at": visit.map(|v| v.last_at),
                "checkins": visit.map_or(0, |v| v.checkins),
            })
        })
        .collect();
    let assigned: std::collections::BTreeSet<&str> =
        duties.iter().filter_map(|d| d["level3"].as_str()).collect();
    // Walking outside the duties is not wrong in itself: it is shown, not flagged.
    let outside_duties: Vec<&str> = visits
        .iter()
        .map(|v| v.level3.as_str())
        .filter(|l| !assigned.contains(l))
        .collect();
    let missed: Vec<&Value> = duties.iter().filter(|d| d["walked"] == false).collect();
    Ok(Json(json!({
        "log": log_json(&row),
        "duties": duties,
        "missed": missed,
        "walked_outside_duties": outside_duties,
        "posting": snapshot,
        "checkins": checkins,
        "cases_found": record.cases_found,
        "reviews": reviews_json(&record),
        "anomalies": anomalies,
        "problems": record.problems.iter().map(|p| json!({"path": p.path, "reason": p.reason})).collect::<Vec<_>>(),
    })))
}

/// `GET /v1/patrol/logs/{id}/track` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TrackQuery {
    /// Simplification tolerance, metres (1–50; 5 by default).
    simplify: Option<f64>,
    /// `gcj02` (default, overlays `/v1/grids`) or `wgs84`.
    crs: Option<String>,
}

/// `GET /v1/patrol/logs/{id}/track`: the track as GeoJSON.
pub(super) async fn track(
    State(state): State<AppState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<TrackQuery>,
) -> Result<Response, ApiError> {
    let simplify = query.simplify.unwrap_or(5.0);
    if !(1.0..=50.0).contains(&simplify) {
        return Err(bad_request("invalid_query", "simplify must be 1–50 metres"));
    }
    let crs = match query.crs.as_deref() {
        None | Some("gcj02") => Crs::Gcj02,
        Some("wgs84") => Crs::Wgs84,
        Some(other) => {
            return Err(bad_request(
                "invalid_query",
                format!("crs {other:?}: gcj02 or wgs84"),
            ));
        }
    };
    let user = current_user(&state, &claims).await?;
    let (_, log) = load_in_scope(&state, &user, &id).await?;
    let record = log.read();
    let body = crate::patrol::track_geojson(&record, state.grids.as_deref(), simplify, crs);
    Ok(([(header::CONTENT_TYPE, "application/geo+json")], Json(body)).into_response())
}

/// `POST /v1/patrol/logs/{id}/reviews` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReviewBody {
    /// `approve`, `reject` or `comment`.
    verdict: String,
    comment: Option<String>,
}

/// `POST /v1/patrol/logs/{id}/reviews`: a review written into the log by the caller's
/// device (the same write rules as on a phone), pushed to the worker's phone.
pub(super) async fn review(
    State(state): State<AppState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReviewBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let verdict = Verdict::parse(&body.verdict).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_review",
            format!("verdict {:?}: approve, reject or comment", body.verdict),
        )
    })?;
    let user = current_user(&state, &claims).await?;
    reviewer_only(&user)?;
    let (row, mut log) = load_in_scope(&state, &user, &id).await?;
    let context = state.sync.rules.context();
    let previous = DocMeta::of(DocKind::PatrolLog, log.automerge(), &context).1;
    let before = log.automerge().get_heads();
    let now = DateTime::<Utc>::from_timestamp_millis(now_ms()).unwrap_or_default();
    let review = Review {
        id: uuid::Uuid::now_v7().to_string(),
        at: now,
        reviewer: user.actor(&claims.act),
        verdict,
        comment: body.comment.clone(),
    };
    log.review(&review).map_err(|error| match error {
        PatrolError::WriteRefused(_) => {
            ApiError::new(StatusCode::CONFLICT, "review_refused", error.to_string())
        }
        PatrolError::NewerSchema { .. } => {
            ApiError::new(StatusCode::CONFLICT, "newer_schema", error.to_string())
        }
        other => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_review",
            other.to_string(),
        ),
    })?;
    let edit = crate::writes::ServerEdit {
        id: id.clone(),
        kind: DocKind::PatrolLog,
        before,
        meta: DocMeta::of(DocKind::PatrolLog, log.automerge(), &context).1,
        previous,
        doc: log.into_automerge(),
    };
    state
        .store_edit(&claims.act, edit, now.timestamp_millis())
        .await?;
    tracing::info!(log = %id, worker = %row.worker, user = %user.id, verdict = verdict.as_str(), "patrol log reviewed");
    let row = state
        .store
        .patrol_log(&id)
        .await?
        .ok_or_else(|| log_not_found(&id))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "review_id": review.id, "log": log_json(&row) })),
    ))
}

/// `GET /v1/patrol/coverage` and `/v1/patrol/summary` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CoverageQuery {
    unit: Option<String>,
    day: Option<String>,
    month: Option<String>,
    /// `worker`, `level3`, `community`, `street`, `district` or `day`.
    by: Option<String>,
    /// `json` (default) or `csv` (summary only).
    format: Option<String>,
}

fn rate(covered: i64, assigned: i64) -> Option<f64> {
    (assigned > 0).then(|| covered as f64 / assigned as f64)
}

fn coverage_json(row: &CoverageRow) -> Value {
    json!({
        "key": row.key,
        "workers": row.workers,
        "assigned": row.assigned,
        "covered": row.covered,
        "missed": row.assigned - row.covered,
        "rate": rate(row.covered, row.assigned),
        "first_at": row.first_at,
        "last_at": row.last_at,
    })
}

fn total(rows: &[CoverageRow]) -> Value {
    let assigned: i64 = rows.iter().map(|r| r.assigned).sum();
    let covered: i64 = rows.iter().map(|r| r.covered).sum();
    json!({
        "assigned": assigned,
        "covered": covered,
        "missed": assigned - covered,
        "rate": rate(covered, assigned),
    })
}

/// `GET /v1/patrol/coverage`: 见巡率 of the duties under a unit for a day or month,
/// grouped (by worker by default), with the missed level-3 grids.
pub(super) async fn coverage(
    State(state): State<AppState>,
    Caller(claims): Caller,
    QueryParams(query): QueryParams<CoverageQuery>,
) -> Result<Json<Value>, ApiError> {
    if query.format.is_some() {
        return Err(bad_request(
            "invalid_query",
            "format is for /v1/patrol/summary",
        ));
    }
    let user = current_user(&state, &claims).await?;
    let scope = reviewer_only(&user)?;
    let unit = report_unit(&scope, query.unit.as_deref())?;
    let days = Days::parse(query.day.as_deref(), query.month.as_deref())?;
    let by = match query.by.as_deref() {
        None => CoverageBy::Worker,
        Some(text) => CoverageBy::parse(text).ok_or_else(|| {
            bad_request(
                "invalid_query",
                format!("by {text:?}: worker, level3, community, street, district or day"),
            )
        })?,
    };
    let (from, to) = days.text();
    let rows = state.store.patrol_coverage(&unit, (&from, &to), by).await?;
    let missed = state.store.patrol_missed(&unit, (&from, &to)).await?;
    Ok(Json(json!({
        "unit": unit,
        "days": days.json(),
        "by": by.column(),
        "total": total(&rows),
        "rows": rows.iter().map(coverage_json).collect::<Vec<_>>(),
        "missed": missed,
    })))
}

/// `GET /v1/patrol/anomalies` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AnomaliesQuery {
    unit: Option<String>,
    day: Option<String>,
    month: Option<String>,
    kind: Option<String>,
}

/// `GET /v1/patrol/anomalies`: what the logs of a unit ask a supervisor to look at,
/// newest first.
pub(super) async fn anomalies(
    State(state): State<AppState>,
    Caller(claims): Caller,
    QueryParams(query): QueryParams<AnomaliesQuery>,
) -> Result<Json<Value>, ApiError> {
    let user = current_user(&state, &claims).await?;
    let scope = reviewer_only(&user)?;
    let unit = report_unit(&scope, query.unit.as_deref())?;
    let days = Days::parse(query.day.as_deref(), query.month.as_deref())?;
    if let Some(kind) = &query.kind
        && wangge_sync_core::patrol::assess::AnomalyKind::parse(kind).is_none()
    {
        return Err(bad_request(
            "invalid_query",
            format!("kind {kind:?} is not an anomaly kind"),
        ));
    }
    let (from, to) = days.text();
    let rows = state
        .store
        .patrol_anomalies(
            None,
            (!unit.is_empty()).then_some(unit.as_str()),
            (&from, &to),
            query.kind.as_deref(),
        )
        .await?;
    let rows: Vec<Value> = rows
        .iter()
        .map(|a| {
            let mut v = serde_json::to_value(a).unwrap_or_default();
            if let Some(kind) = wangge_sync_core::patrol::assess::AnomalyKind::parse(&a.kind) {
                v["label"] = json!(format!("{} {}", kind.label_zh(), a.kind.replace('_', " ")));
            }
            v
        })
        .collect();
    Ok(Json(
        json!({ "unit": unit, "days": days.json(), "anomalies": rows }),
    ))
}

/// The unit level one below `unit`, as a coverage grouping.
fn child_level(unit: &str) -> CoverageBy {
    match unit.len() {
        6 => CoverageBy::Street,
        9 => CoverageBy::Community,
        12 => CoverageBy::Level3,
        _ => CoverageBy::District,
    }
}

/// `GET /v1/patrol/summary`: per child unit of a district or street (streets of a
/// district, communities of a street), for a day or a month: workers, duties, 见巡率,
/// missed, first and last check-in, cases found by patrol of all (发现率). JSON, or
/// CSV for a spreadsheet (UTF-8 with a byte-order mark, so Excel reads the Chinese).
pub(super) async fn summary(
    State(state): State<AppState>,
    Caller(claims): Caller,
    QueryParams(query): QueryParams<CoverageQuery>,
) -> Result<Response, ApiError> {
    if query.by.is_some() {
        return Err(bad_request(
            "invalid_query",
            "the summary is by the next unit level; by is for /v1/patrol/coverage",
        ));
    }
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(bad_request(
                "invalid_query",
                format!("format {other:?}: json or csv"),
            ));
        }
    };
    let user = current_user(&state, &claims).await?;
    let scope = reviewer_only(&user)?;
    let unit = report_unit(&scope, query.unit.as_deref())?;
    let days = Days::parse(query.day.as_deref(), query.month.as_deref())?;
    let by = child_level(&unit);
    let (from, to) = days.text();
    let coverage = state.store.patrol_coverage(&unit, (&from, &to), by).await?;
    let (from_ms, to_ms) = days.ms();
    let discovery = if by == CoverageBy::Level3 {
        Vec::new()
    } else {
        state
            .store
            .patrol_discovery(&unit, from_ms, to_ms, by)
            .await?
    };
    let anomalies = state
        .store
        .patrol_anomalies(
            None,
            (!unit.is_empty()).then_some(unit.as_str()),
            (&from, &to),
            None,
        )
        .await?;
    let mut keys: Vec<&str> = coverage
        .iter()
        .map(|r| r.key.as_str())
        .chain(discovery.iter().map(|d| d.key.as_str()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let rows: Vec<Value> = keys
        .iter()
        .map(|key| {
            let c = coverage.iter().find(|r| r.key == *key);
            let d = discovery.iter().find(|r| r.key == *key);
            let (assigned, covered) = c.map_or((0, 0), |c| (c.assigned, c.covered));
            let (cases, by_patrol) = d.map_or((0, 0), |d| (d.cases, d.by_patrol));
            json!({
                "unit": key,
                "workers": c.map_or(0, |c| c.workers),
                "assigned": assigned,
                "covered": covered,
                "missed": assigned - covered,
                "rate": rate(covered, assigned),
                "first_at": c.and_then(|c| c.first_at),
                "last_at": c.and_then(|c| c.last_at),
                "cases": cases,
                "cases_by_patrol": by_patrol,
                "discovery_rate": rate(by_patrol, cases),
            })
        })
        .collect();
    if csv {
        let body = summary_csv(&rows);
        let name = format!("patrol-{unit}-{from}-{to}.csv");
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            body,
        )
            .into_response());
    }
    let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
    for a in &anomalies {
        *kinds.entry(a.kind.as_str()).or_default() += 1;
    }
    Ok(Json(json!({
        "unit": unit,
        "days": days.json(),
        "by": by.column(),
        "total": total(&coverage),
        "rows": rows,
        "anomalies": kinds,
    }))
    .into_response())
}

/// A China-time `YYYY-MM-DD HH:MM` for a spreadsheet cell.
fn china_time(ms: Option<i64>) -> String {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(|t| {
            let t = t.with_timezone(&wangge_sync_core::calendar::SHANGHAI);
            format!(
                "{:04}-{:02}-{:02} {}",
                t.year(),
                t.month(),
                t.day(),
                t.format("%H:%M")
            )
        })
        .unwrap_or_default()
}

/// One CSV field, quoted when it must be (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn summary_csv(rows: &[Value]) -> String {
    let mut out = String::from('\u{feff}');
    out.push_str(
        "单位 unit,人员 workers,应巡 assigned,已巡 covered,未巡 missed,见巡率 coverage,\
         首次打卡 first check-in,末次打卡 last check-in,案件 cases,巡查发现 by patrol,发现率 discovery\r\n",
    );
    let number = |v: &Value| v.as_i64().map(|n| n.to_string()).unwrap_or_default();
    let percent = |v: &Value| {
        v.as_f64()
            .map(|r| format!("{:.1}%", r * 100.0))
            .unwrap_or_default()
    };
    for row in rows {
        let fields = [
            csv_field(row["unit"].as_str().unwrap_or_default()),
            number(&row["workers"]),
            number(&row["assigned"]),
            number(&row["covered"]),
            number(&row["missed"]),
            percent(&row["rate"]),
            china_time(row["first_at"].as_i64()),
            china_time(row["last_at"].as_i64()),
            number(&row["cases"]),
            number(&row["cases_by_patrol"]),
            percent(&row["discovery_rate"]),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// `GET /v1/double-reports` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DoubleReportsQuery {
    /// At most this many (1–1000, default 100).
    limit: Option<i64>,
}

/// `GET /v1/double-reports`: the double reports (双报告) the caller was told of, newest
/// first: cases field workers reported beyond their authority in the caller's grids.
pub(super) async fn double_reports(
    State(state): State<AppState>,
    Caller(claims): Caller,
    QueryParams(query): QueryParams<DoubleReportsQuery>,
) -> Result<Json<Value>, ApiError> {
    let user = current_user(&state, &claims).await?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(bad_request("invalid_query", "limit: 1 to 1000"));
    }
    let rows = state.store.double_reports_for(&user.id, limit).await?;
    Ok(Json(json!({ "double_reports": rows })))
}

/// After a device's round: the duties of each written log's worker and day are
/// snapshotted if not yet (a log synced days later is judged against the posting as
/// it was when the server first saw that day, or as it is now).
pub(crate) async fn after_round(state: &AppState, written: &[Written]) {
    for w in written.iter().filter(|w| w.kind == DocKind::PatrolLog) {
        let Some((worker, day)) = crate::patrol::log_owner(&w.id) else {
            continue;
        };
        if let Err(error) = crate::patrol::ensure_duties(
            state.store.as_ref(),
            state.grids.as_deref(),
            &worker,
            day,
            false,
            now_ms(),
        )
        .await
        {
            // The periodic pass takes it again.
            tracing::warn!(%error, log = %w.id, "snapshotting the day's duties failed");
        }
        match crate::patrol::check_writers(state.store.as_ref(), &w.id, now_ms()).await {
            Ok(0) => {}
            Ok(found) => {
                tracing::warn!(log = %w.id, found, "patrol log written by a device not registered to its worker")
            }
            // The next round that writes the log checks again.
            Err(error) => tracing::warn!(%error, log = %w.id, "checking the log's devices failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("410105001"), "410105001");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn a_month_is_its_days_and_china_midnights() {
        let days = Days::parse(None, Some("2026-02")).expect("month");
        assert_eq!(days.text(), ("2026-02-01".into(), "2026-02-28".into()));
        let (from, to) = days.ms();
        // 2026-02-01 00:00 in Beijing is 2026-01-31 16:00 UTC.
        assert_eq!(from, 1_769_875_200_000);
        assert_eq!(to - from, 28 * 86_400_000);
        assert!(Days::parse(Some("2026-02-30"), None).is_err());
        assert!(Days::parse(Some("2026-02-01"), Some("2026-02")).is_err());
    }
}
