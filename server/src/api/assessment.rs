//! `/v1/assessment`: a period's rates and ranking (JSON, CSV, XLSX), publishing a
//! month or quarter (kept as published, shown beside its recomputation), and spot
//! checks (抽查). The figures come from `crate::assessment`; the definitions from
//! sync-core's `assessment` (docs/assessment.md).
//!
//! Who sees what: the city's supervisors (and the administrator) everything; a
//! district supervisor their own district's streets, communities, teams and people,
//! and their own district's line of the districts' ranking (with how many are
//! ranked). Everyone else: 403.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use wangge_sync_core::assessment::Period;
use wangge_sync_core::case::Source;
use wangge_sync_core::role::{GridScope, Role};

use super::{ApiError, AppState, Caller, JsonBody, QueryParams, bad_request, current_user, now_ms};
use crate::assessment::{ReportLevel, differences, to_csv, to_xlsx};
use crate::intake::{Contact, Reporter};
use crate::store::User;
use crate::store::assessment::{FindingRow, ReportRow, SpotCheckRow};

/// The most problems one spot check records.
pub const MAX_FINDINGS: usize = 100;

/// Whether a role reads and publishes assessment (the console shows the pane).
pub(super) const fn may_assess(role: Role) -> bool {
    matches!(
        role,
        Role::CitySupervisor | Role::DistrictSupervisor | Role::Admin
    )
}

fn assessor(user: &User) -> Result<GridScope, ApiError> {
    match user.role {
        role if may_assess(role) => Ok(user.scope.clone()),
        role => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "assessment is for district and city supervisors, not a {}",
                role.as_str().replace('_', " ")
            ),
        )),
    }
}

fn period_of(text: Option<&str>) -> Result<Period, ApiError> {
    let text = text
        .ok_or_else(|| bad_request("invalid_query", "period is required (2026-11 or 2026-Q4)"))?;
    Period::parse(text).map_err(|e| bad_request("invalid_period", e.to_string()))
}

/// `within`: the city (`""`), a district (6 digits), a street (9) or a community (12).
fn area_of(text: Option<&str>) -> Result<String, ApiError> {
    let text = text.unwrap_or_default();
    if !matches!(text.len(), 0 | 6 | 9 | 12) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_request(
            "invalid_query",
            format!("within {text:?}: a district (6 digits), street (9) or community (12) code"),
        ));
    }
    Ok(text.to_owned())
}

/// Whether `scope` encloses the whole of `area` (`""`: the city).
fn encloses(scope: &GridScope, area: &str) -> bool {
    scope
        .prefixes()
        .iter()
        .any(|p| p.is_empty() || (!area.is_empty() && area.starts_with(p.as_str())))
}

fn out_of_scope(area: &str) -> ApiError {
    let what = if area.is_empty() {
        "the whole city".to_owned()
    } else {
        area.to_owned()
    };
    ApiError::new(
        StatusCode::FORBIDDEN,
        "out_of_scope",
        format!("{what} is outside your scope"),
    )
}

/// `GET /v1/assessment` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportQuery {
    period: Option<String>,
    /// `district`, `street`, `community`, `team`, `handler`, `reporter`, `dispatcher`.
    level: Option<String>,
    within: Option<String>,
    /// `json` (default), `csv`, `xlsx`.
    format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Xlsx,
}

fn format_of(text: Option<&str>) -> Result<Format, ApiError> {
    match text {
        None | Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some("xlsx") => Ok(Format::Xlsx),
        Some(other) => Err(bad_request(
            "invalid_query",
            format!("format {other:?}: json, csv or xlsx"),
        )),
    }
}

fn download(report: &Value, format: Format, name: &str) -> Result<Response, ApiError> {
    let failed = |e: crate::assessment::ExportError| {
        tracing::error!(error = %e, "writing an assessment download failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the download could not be written",
        )
    };
    let (bytes, kind, ext) = match format {
        Format::Json => return Ok(Json(report.clone()).into_response()),
        Format::Csv => (
            to_csv(report).map_err(failed)?,
            "text/csv; charset=utf-8",
            "csv",
        ),
        Format::Xlsx => (
            to_xlsx(report).map_err(failed)?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"assessment-{name}.{ext}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// Computes a report for a caller of `scope`: a district supervisor asking for the
/// districts' ranking gets their own line (the ranking is computed over all).
async fn report_for(
    state: &AppState,
    scope: &GridScope,
    period: Period,
    level: ReportLevel,
    within: &str,
) -> Result<Value, ApiError> {
    let own_line_only = !encloses(scope, within);
    if own_line_only && !(level == ReportLevel::District && within.is_empty()) {
        return Err(out_of_scope(within));
    }
    let report = crate::assessment::compute(
        state.store.as_ref(),
        &state.sync.rules,
        &state.assessment,
        period,
        level,
        within,
    )
    .await?;
    let mut value = serde_json::to_value(&report).map_err(|e| {
        tracing::error!(error = %e, "serializing a report failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the report could not be written",
        )
    })?;
    if own_line_only && let Some(units) = value["units"].as_array_mut() {
        units.retain(|u| u["unit"].as_str().is_some_and(|unit| encloses(scope, unit)));
    }
    Ok(value)
}

fn default_level(level: Option<&str>, within: &str) -> Result<ReportLevel, ApiError> {
    match level {
        Some(text) => ReportLevel::parse(text).ok_or_else(|| {
            bad_request(
                "invalid_query",
                format!(
                    "level {text:?}: district, street, community, team, handler, reporter \
                     or dispatcher"
                ),
            )
        }),
        None => Ok(match within.len() {
            0 => ReportLevel::District,
            6 => ReportLevel::Street,
            _ => ReportLevel::Community,
        }),
    }
}

/// `GET /v1/assessment`: a period's figures and ranking of one level of units.
pub(super) async fn report(
    State(state): State<AppState>,
    Caller(claims): Caller,
    QueryParams(query): QueryParams<ReportQuery>,
) -> Result<Response, ApiError> {
    let user = current_user(&state, &claims).await?;
    let scope = assessor(&user)?;
    let period = period_of(query.period.as_deref())?;
    let within = area_of(query.within.as_deref())?;
    let level = default_level(query.level.as_deref(), &within)?;
    let format = format_of(query.format.as_deref())?;
    let mut value = report_for(&state, &scope, period, level, &within).await?;
    if level == ReportLevel::District && within.is_empty() {
        value["district_assessments"] = district_assessments(&state, period, &value).await?;
    }
    let name = format!(
        "{period}-{}{}",
        level.as_str(),
        if within.is_empty() {
            String::new()
        } else {
            format!("-{within}")
        }
    );
    download(&value, format, &name)
}

/// For the city's districts' ranking: whether each district published its own
/// assessment of its streets for the period, and when (the plan's items 4–5).
async fn district_assessments(
    state: &AppState,
    period: Period,
    report: &Value,
) -> Result<Value, ApiError> {
    let published = state.store.reports_of(&period.to_string()).await?;
    let lines: Vec<Value> = report["units"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["unit"].as_str())
        .map(|district| {
            let own = published.iter().find(|r| r.unit == district);
            json!({
                "district": district,
                "published": own.is_some(),
                "published_at": own.map(|r| r.published_at),
                "published_by": own.map(|r| r.published_by.clone()),
            })
        })
        .collect();
    Ok(Value::Array(lines))
}

/// `POST /v1/assessment/reports` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PublishBody {
    period: String,
    /// `""` (or absent): the city's report of its districts; a district code: that
    /// district's report of its streets.
    #[serde(default)]
    unit: String,
}

fn report_level(unit: &str) -> Result<ReportLevel, ApiError> {
    match unit.len() {
        0 => Ok(ReportLevel::District),
        6 if unit.bytes().all(|b| b.is_ascii_digit()) => Ok(ReportLevel::Street),
        _ => Err(bad_request(
            "invalid_query",
            format!("unit {unit:?}: \"\" for the city or a district code (6 digits)"),
        )),
    }
}

/// `POST /v1/assessment/reports`: publishes an ended month or quarter. The city's
/// supervisors publish the city's report, a district's supervisor their district's;
/// once published it never changes (409 on a second try).
pub(super) async fn publish(
    State(state): State<AppState>,
    Caller(claims): Caller,
    JsonBody(body): JsonBody<PublishBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = current_user(&state, &claims).await?;
    let scope = assessor(&user)?;
    let period =
        Period::parse(&body.period).map_err(|e| bad_request("invalid_period", e.to_string()))?;
    let level = report_level(&body.unit)?;
    if !encloses(&scope, &body.unit) {
        return Err(out_of_scope(&body.unit));
    }
    let now = now_ms();
    let ended = chrono::DateTime::from_timestamp_millis(now).is_some_and(|t| period.ended_by(t));
    if !ended {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "period_not_ended",
            format!("{period} has not ended yet: a period is published once it is over"),
        ));
    }
    let mut value = report_for(&state, &scope, period, level, &body.unit).await?;
    if level == ReportLevel::District {
        value["district_assessments"] = district_assessments(&state, period, &value).await?;
    }
    let row = ReportRow {
        period: period.to_string(),
        unit: body.unit.clone(),
        published_at: now,
        published_by: user.id.clone(),
        body: value.to_string(),
    };
    if !state.store.report_publish(&row).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_published",
            format!("{period} was published already for this unit; it stays as published"),
        ));
    }
    tracing::info!(period = %period, unit = %body.unit, by = %user.id, "assessment published");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "period": row.period, "unit": row.unit,
            "published_at": row.published_at, "published_by": row.published_by,
            "report": value,
        })),
    ))
}

/// `GET /v1/assessment/reports/{period}` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PublishedQuery {
    #[serde(default)]
    unit: String,
    format: Option<String>,
}

/// `GET /v1/assessment/reports/{period}`: the published report, with today's
/// recomputation and the differences (JSON); CSV and XLSX give the published figures.
pub(super) async fn published(
    State(state): State<AppState>,
    Caller(claims): Caller,
    Path(period): Path<String>,
    QueryParams(query): QueryParams<PublishedQuery>,
) -> Result<Response, ApiError> {
    let user = current_user(&state, &claims).await?;
    let scope = assessor(&user)?;
    let period =
        Period::parse(&period).map_err(|e| bad_request("invalid_period", e.to_string()))?;
    let level = report_level(&query.unit)?;
    let format = format_of(query.format.as_deref())?;
    let own_line_only = !encloses(&scope, &query.unit);
    if own_line_only && !query.unit.is_empty() {
        return Err(out_of_scope(&query.unit));
    }
    let Some(row) = state.store.report(&period.to_string(), &query.unit).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_published",
            format!("{period} has not been published for this unit"),
        ));
    };
    let mut body: Value = serde_json::from_str(&row.body).map_err(|e| {
        tracing::error!(error = %e, "a stored report is not JSON");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the stored report is damaged",
        )
    })?;
    if own_line_only && let Some(units) = body["units"].as_array_mut() {
        units.retain(|u| {
            u["unit"]
                .as_str()
                .is_some_and(|unit| encloses(&scope, unit))
        });
    }
    if format != Format::Json {
        return download(
            &body,
            format,
            &format!(
                "{period}-published{}",
                if query.unit.is_empty() {
                    String::new()
                } else {
                    format!("-{}", query.unit)
                }
            ),
        );
    }
    let now = report_for(&state, &scope, period, level, &query.unit).await?;
    let changes = differences(&body, &now);
    Ok(Json(json!({
        "period": row.period, "unit": row.unit,
        "published_at": row.published_at, "published_by": row.published_by,
        "published": body,
        "recomputed": now,
        "differences": changes,
    }))
    .into_response())
}

/// `POST /v1/assessment/spot-checks` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SpotCheckBody {
    /// The area checked: a unit grid (15 digits), community (12) or street (9).
    area: String,
    /// When (ms); now when absent.
    checked_at: Option<i64>,
    #[serde(default)]
    note: String,
    findings: Vec<FindingBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FindingBody {
    /// A case the grid's staff had reported already.
    case_id: Option<String>,
    /// A problem they had missed: a new case.
    problem: Option<super::intake::NewProblemBody>,
}

/// `POST /v1/assessment/spot-checks`: a supervisor's spot check of an area. Each
/// problem found is either a case already reported (named by id; it must be in the
/// area and reported before the check) or a new case of source `spot_check`, taken
/// in like a call (located, routed, dispatched). A finding that does not check out
/// (a case outside the area or reported after the check, a malformed problem) stores
/// nothing; a missed problem the intake refuses stops there, the ones taken in before
/// it stay and the check is recorded with them (the error says so).
pub(super) async fn spot_check(
    State(state): State<AppState>,
    Caller(claims): Caller,
    JsonBody(body): JsonBody<SpotCheckBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = current_user(&state, &claims).await?;
    let scope = assessor(&user)?;
    if user.role == Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "spot checks are made by supervisors",
        ));
    }
    let area = body.area.trim().to_owned();
    if !matches!(area.len(), 9 | 12 | 15) || !area.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_request(
            "invalid_spot_check",
            format!("area {area:?}: a street (9 digits), community (12) or unit grid (15) code"),
        ));
    }
    if !encloses(&scope, &area) {
        return Err(out_of_scope(&area));
    }
    let now = now_ms();
    let checked_at = body.checked_at.unwrap_or(now);
    if checked_at > now + 60_000 || checked_at < now - 90 * 86_400_000 {
        return Err(bad_request(
            "invalid_spot_check",
            "checked_at: within the last 90 days, not in the future",
        ));
    }
    if body.findings.is_empty() || body.findings.len() > MAX_FINDINGS {
        return Err(bad_request(
            "invalid_spot_check",
            format!("findings: 1 to {MAX_FINDINGS}"),
        ));
    }
    // Check every finding before anything is stored.
    let mut known = Vec::new();
    let mut new = Vec::new();
    for (i, finding) in body.findings.into_iter().enumerate() {
        match (finding.case_id, finding.problem) {
            (Some(id), None) => {
                let row = state
                    .store
                    .case_row(&id)
                    .await?
                    .filter(|row| row.grid.as_deref().is_some_and(|g| g.starts_with(&area)));
                let Some(row) = row else {
                    return Err(bad_request(
                        "invalid_spot_check",
                        format!("findings[{i}]: no case {id:?} in {area}"),
                    ));
                };
                if row.reported_at.is_none_or(|at| at > checked_at) {
                    return Err(bad_request(
                        "invalid_spot_check",
                        format!("findings[{i}]: case {id:?} was reported after the check"),
                    ));
                }
                known.push(id);
            }
            (None, Some(problem)) => {
                if problem.grid().is_some_and(|g| !g.starts_with(&area)) {
                    return Err(bad_request(
                        "invalid_spot_check",
                        format!("findings[{i}]: its grid is outside {area}"),
                    ));
                }
                new.push(problem.into_intake(Source::SpotCheck, Contact::default())?);
            }
            _ => {
                return Err(bad_request(
                    "invalid_spot_check",
                    format!(
                        "findings[{i}]: give case_id (reported already) or problem (missed), one of them"
                    ),
                ));
            }
        }
    }
    let id = uuid::Uuid::now_v7().to_string();
    let actor = user.actor(&claims.act);
    let mut findings: Vec<FindingRow> = known
        .into_iter()
        .map(|case_id| FindingRow {
            spot_check_id: id.clone(),
            case_id,
            already_reported: true,
        })
        .collect();
    let check = SpotCheckRow {
        id: id.clone(),
        area,
        checked_at,
        checker: user.id.clone(),
        note: body.note,
        created_at: now,
    };
    // A missed problem is taken in like a call (it may still be refused: outside the
    // grids, an unknown category). The cases taken in before a refusal are real
    // problems and stay; the spot check is then recorded with them and the error says so.
    let mut refused = None;
    for (i, intake) in new.into_iter().enumerate() {
        match state.intake(Reporter::User(&actor), intake).await {
            Ok(created) => findings.push(FindingRow {
                spot_check_id: id.clone(),
                case_id: created.id,
                already_reported: false,
            }),
            Err(error) => {
                refused = Some((i, ApiError::from(error)));
                break;
            }
        }
    }
    let taken = findings.iter().filter(|f| !f.already_reported).count();
    if let Some((i, error)) = refused {
        if taken == 0 {
            return Err(error);
        }
        state.store.spot_check_insert(&check, &findings).await?;
        return Err(error.with_message_suffix(&format!(
            " (problem {i} of the missed ones; spot check {id} was recorded with the {taken} before it)"
        )));
    }
    state.store.spot_check_insert(&check, &findings).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id,
            "area": check.area,
            "checked_at": check.checked_at,
            "checker": check.checker,
            "findings": findings,
        })),
    ))
}
