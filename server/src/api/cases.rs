//! `/v1/cases`: the materialized cases in the caller's scope (filters, the dispatcher's
//! queue, overdue), one case folded with its timeline, and actions taken through the
//! API (a supervisor verifying and closing from the command centre).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use wangge_sync_core::case::{
    Action, ActionFields, ActionName, CaseDocument, CaseError, EntryError, Source, Status,
};
use wangge_sync_core::catalog::{Step, TeamId};
use wangge_sync_core::role::Actor;
use wangge_sync_core::sync::{DocKind, DocMeta, Scope, UserScope};

use super::{ApiError, AppState, Caller, JsonBody, QueryParams, bad_request, current_user, now_ms};
use crate::cases::view_json;
use crate::store::cases::{CaseFilter, CaseRow};

/// Now, as a time (the server's clock; chrono's clock feature is not built).
fn utc_now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(now_ms()).unwrap_or_default()
}

/// The most rows one `GET /v1/cases` returns.
pub const MAX_CASES_PER_PAGE: u32 = 500;

/// `GET /v1/cases` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CasesQuery {
    /// A grid code prefix: district (6 digits), street (9), community (12), grid (15).
    grid: Option<String>,
    /// Statuses, comma-separated (`registered` is the dispatcher's queue).
    status: Option<String>,
    /// A category (`C0101`), major class (`C01`) or kind (`C`, `E`).
    category: Option<String>,
    source: Option<String>,
    /// `true`: only cases whose running step is past its due time.
    #[serde(default)]
    overdue: bool,
    /// The running step (`reply`: the closed calls owed an answer).
    step: Option<String>,
    /// Reported at or after (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Reported before (RFC 3339).
    to: Option<DateTime<Utc>>,
    team: Option<String>,
    assignee: Option<String>,
    limit: Option<u32>,
    #[serde(default)]
    offset: u32,
}

/// `GET /v1/cases`: newest first, limited to the caller's scope (their grids, their
/// reports, what is dispatched to them).
pub(super) async fn list(
    State(state): State<AppState>,
    Caller(claims): Caller,
    QueryParams(query): QueryParams<CasesQuery>,
) -> Result<Json<Value>, ApiError> {
    let user = current_user(&state, &claims).await?;
    if let Some(grid) = &query.grid
        && (!matches!(grid.len(), 6 | 9 | 12 | 15) || !grid.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad_request(
            "invalid_query",
            format!(
                "grid {grid:?}: a district (6 digits), street (9), community (12) or unit grid (15) code"
            ),
        ));
    }
    let statuses: Vec<String> = query
        .status
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(bad) = statuses.iter().find(|s| Status::parse(s).is_none()) {
        return Err(bad_request(
            "invalid_query",
            format!(
                "status {bad:?}: one of {}",
                Status::ALL.map(Status::as_str).join(", ")
            ),
        ));
    }
    if let Some(source) = &query.source
        && Source::parse(source).is_none()
    {
        return Err(bad_request(
            "invalid_query",
            format!(
                "source {source:?}: one of {}",
                Source::ALL.map(Source::as_str).join(", ")
            ),
        ));
    }
    if let Some(step) = &query.step
        && !Step::ALL.iter().any(|s| s.as_str() == step)
    {
        return Err(bad_request(
            "invalid_query",
            format!(
                "step {step:?}: one of {}",
                Step::ALL.map(Step::as_str).join(", ")
            ),
        ));
    }
    if let Some(category) = &query.category {
        let valid = matches!(category.len(), 1 | 3 | 5)
            && category.starts_with(['C', 'E'])
            && category[1..].bytes().all(|b| b.is_ascii_digit());
        if !valid {
            return Err(bad_request(
                "invalid_query",
                format!(
                    "category {category:?}: a category (C0101), major class (C01) or kind (C, E)"
                ),
            ));
        }
    }
    if let Some(team) = &query.team
        && let Err(e) = TeamId::new(team.as_str())
    {
        return Err(bad_request("invalid_query", format!("team: {e}")));
    }
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_CASES_PER_PAGE {
        return Err(bad_request(
            "invalid_query",
            format!("limit must be 1..={MAX_CASES_PER_PAGE}"),
        ));
    }
    let now = now_ms();
    let filter = CaseFilter {
        scope: user.scope.prefixes().to_vec(),
        user: user.id.clone(),
        area: query.grid,
        statuses,
        category: query.category,
        source: query.source,
        overdue_at: query.overdue.then_some(now),
        step: query.step,
        from: query.from.map(|t| t.timestamp_millis()),
        to: query.to.map(|t| t.timestamp_millis()),
        team: query.team,
        assignee: query.assignee,
        limit,
        offset: query.offset,
    };
    let rows = state.store.cases_list(&filter).await?;
    let cases: Vec<Value> = rows.iter().map(|row| row_json(row, now)).collect();
    Ok(Json(json!({
        "cases": cases,
        "limit": limit,
        "offset": query.offset,
    })))
}

fn row_json(row: &CaseRow, now: i64) -> Value {
    let mut value = serde_json::to_value(row).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("steps");
        map.insert(
            "overdue".into(),
            Value::Bool(row.due_at.is_some_and(|due| due < now)),
        );
        map.insert("gcj02".into(), gcj02_of(row));
    }
    value
}

/// The case's position in GCJ-02 (`[lon, lat]`, or `null`), for a map over the grids:
/// the row keeps the phone's WGS-84, and only sync-core's `geo` converts datums.
pub(super) fn gcj02_of(row: &CaseRow) -> Value {
    match (row.lon, row.lat) {
        (Some(lon), Some(lat)) => match wangge_sync_core::geo::LonLat::new(lon, lat) {
            Ok(p) => {
                let g = wangge_sync_core::geo::wgs84_to_gcj02(p);
                json!([g.lon, g.lat])
            }
            Err(_) => Value::Null,
        },
        _ => Value::Null,
    }
}

pub(super) fn meta_of(row: &CaseRow) -> DocMeta {
    DocMeta {
        grids: row
            .grid
            .as_deref()
            .and_then(|g| g.parse().ok())
            .into_iter()
            .collect(),
        owner: row.reporter.clone(),
        assignees: row.assignee.clone().into_iter().collect(),
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "case_not_found",
        format!("no case {id:?} in your scope"),
    )
}

/// The case's row and document, if the caller may see it (404 otherwise: a case out
/// of scope is not told apart from one that does not exist).
async fn load_in_scope(
    state: &AppState,
    scope: &UserScope,
    id: &str,
) -> Result<(CaseRow, CaseDocument), ApiError> {
    let row = state
        .store
        .case_row(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if !scope.may_receive(DocKind::Case, &meta_of(&row)) {
        return Err(not_found(id));
    }
    let doc = crate::writes::load_stored(state.store.as_ref(), id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok((row, CaseDocument::from_automerge(doc)))
}

/// What the caller may see (their posting as it is now) and who their entries claim
/// to be (that posting, written by the token's device actor).
fn acting_as(user: crate::store::User, claims: &crate::auth::Claims) -> (UserScope, Actor) {
    (user.sync_scope(), user.actor(&claims.act))
}

/// `GET /v1/cases/{id}`: the folded case with its steps and timeline.
pub(super) async fn show(
    State(state): State<AppState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user = current_user(&state, &claims).await?;
    let (scope, actor) = acting_as(user, &claims);
    let role = scope.role;
    let (row, doc) = load_in_scope(&state, &scope, &id).await?;
    let context = state.sync.rules.context();
    let view = doc.fold(&context);
    let now = utc_now();
    let mut json = view_json(&view, &row, now);
    // What the caller may do now, by the check every replica's fold makes (what the
    // console offers as buttons; `POST …/actions` checks again).
    let allowed: Vec<&str> = view
        .allowed_actions(&actor, &context, now)
        .into_iter()
        .map(|a| a.as_str())
        .collect();
    if let Value::Object(map) = &mut json {
        map.insert("allowed_actions".into(), json!(allowed));
        map.insert("gcj02".into(), gcj02_of(&row));
        map.extend(super::intake::case_extras(&state, role, &row).await?);
    }
    Ok(Json(json))
}

/// `POST /v1/cases/{id}/actions` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ActionBody {
    /// `accept`, `register`, `dispatch`, `verify`, `rework`, `close`, `comment`, …
    action: String,
    note: Option<String>,
    /// For `dispatch`.
    team: Option<String>,
    /// For `dispatch`: one person of the team.
    assignee: Option<String>,
    /// For `request_extension`: e.g. `2 working_days`.
    extra: Option<String>,
    /// For `decide_extension` / `decide_defer`.
    approved: Option<bool>,
    /// For `reply`: how the caller was told (`phone`, `sms`, `open311`, `in_person`).
    channel: Option<String>,
    /// For `reply`: whether the caller is satisfied.
    satisfied: Option<bool>,
    /// For `void`: the case this one repeats (作废, 重复); its reply tells this
    /// case's caller too.
    duplicate_of: Option<String>,
}

fn action_of(body: &ActionBody) -> Result<Action, ApiError> {
    let invalid = |message: String| bad_request("invalid_action", message);
    let name: ActionName = body
        .action
        .parse()
        .map_err(|e| invalid(format!("action: {e}")))?;
    if name == ActionName::Report {
        return Err(invalid(
            "a case is reported by creating it, not by an action".into(),
        ));
    }
    let fields = ActionFields {
        team: body.team.as_deref(),
        assignee: body.assignee.as_deref(),
        extra: body.extra.as_deref(),
        approved: body.approved,
        channel: body.channel.as_deref(),
        satisfied: body.satisfied,
    };
    // The checks are sync-core's, the same a phone's entry goes through.
    Action::from_fields(name, &fields).map_err(|e| match e {
        EntryError::Missing(key) => invalid(format!("{} needs {key:?}", name.as_str())),
        other => invalid(other.to_string()),
    })
}

/// `POST /v1/cases/{id}/actions`: an action by the caller, checked by the same
/// workflow the phones fold with, written into the case document by the caller's
/// device (so it syncs to every phone like any other entry), pushed to whoever it
/// concerns. Refused (409 `action_refused`, with the reason) when the workflow says no.
pub(super) async fn act(
    State(state): State<AppState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ActionBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let action = action_of(&body)?;
    if body.duplicate_of.is_some() && action != Action::Void {
        return Err(bad_request(
            "invalid_action",
            "\"duplicate_of\" goes with the void action only",
        ));
    }
    let has_note = body.note.as_deref().is_some_and(|n| !n.trim().is_empty());
    if matches!(action, Action::Reply { .. }) && !has_note {
        return Err(bad_request(
            "invalid_action",
            "reply needs a \"note\": what the caller was told",
        ));
    }
    let user = current_user(&state, &claims).await?;
    let (scope, actor) = acting_as(user, &claims);
    let (row, mut doc) = load_in_scope(&state, &scope, &id).await?;
    let mut note = body.note.clone();
    if let Some(other) = &body.duplicate_of {
        if *other == id {
            return Err(bad_request(
                "invalid_action",
                "a case cannot be a duplicate of itself",
            ));
        }
        // The survivor must be a case the caller may see, still standing.
        let (other_row, _) = load_in_scope(&state, &scope, other).await?;
        if matches!(other_row.status.as_deref(), Some("voided") | None) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "action_refused",
                format!(
                    "case {other} is voided: void this one as a duplicate of the one that stands"
                ),
            ));
        }
        note = Some(match note {
            Some(text) if !text.trim().is_empty() => format!("重复 duplicate of {other}: {text}"),
            _ => format!("重复 duplicate of {other}"),
        });
    }
    let context = state.sync.rules.context();
    let before = doc.automerge().get_heads();
    let now = utc_now();
    let entry_id = uuid::Uuid::now_v7().to_string();
    doc.act(&context, &actor, &entry_id, action, now, note)
        .map_err(|error| match error {
            CaseError::Refused { .. } => {
                ApiError::new(StatusCode::CONFLICT, "action_refused", error.to_string())
            }
            CaseError::NewerSchema { .. } => {
                ApiError::new(StatusCode::CONFLICT, "newer_schema", error.to_string())
            }
            other => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_action",
                other.to_string(),
            ),
        })?;
    let view = doc.fold(&context);
    let edit = crate::writes::ServerEdit {
        id: id.clone(),
        kind: DocKind::Case,
        before,
        meta: DocMeta::of_case(&view),
        previous: meta_of(&row),
        doc: doc.into_automerge(),
    };
    state
        .store_edit(&claims.act, edit, now.timestamp_millis())
        .await?;
    if let Some(other) = &body.duplicate_of {
        let link = crate::store::intake::DuplicateRow {
            case_id: id.clone(),
            duplicate_of: other.clone(),
            marked_by: actor.user.clone(),
            marked_at: now.timestamp_millis(),
        };
        state.store.duplicate_record(&link).await?;
    }
    state.metrics.case_actions.inc();
    tracing::info!(case = %id, user = %actor.user, action = %body.action, "case action through the API");
    let row = state
        .store
        .case_row(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok((StatusCode::OK, Json(view_json(&view, &row, now))))
}
