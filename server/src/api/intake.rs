//! `POST /v1/cases`: a case taken in for a caller (12319 hotline, the command centre's
//! acceptor), through `crate::intake`; and what the case page adds for the roles that
//! reply to callers (the callers, the duplicates suggested).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use wangge_sync_core::case::Source;
use wangge_sync_core::case::duplicates;
use wangge_sync_core::geo::Crs;

use super::{ApiError, AppState, Caller, JsonBody, bad_request, current_user};
use crate::intake::{Contact, Created, Intake, IntakeError, Point, Reporter};
use crate::store::cases::CaseRow;
use crate::store::intake::ContactRow;

/// `POST /v1/cases` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewCaseBody {
    /// `hotline` (default), `citizen` (a walk-in or letter) or `handover`.
    source: Option<String>,
    category: String,
    description: String,
    #[serde(default)]
    address: String,
    location: Option<PointBody>,
    /// A unit-grid code (15 digits).
    grid: Option<String>,
    #[serde(default)]
    photos: Vec<String>,
    caller: Option<CallerBody>,
    /// The hotline ticket number (工单号).
    ticket: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PointBody {
    lon: f64,
    lat: f64,
    /// `wgs84` (default), `gcj02` or `bd09`.
    crs: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallerBody {
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    #[serde(default = "yes")]
    wants_reply: bool,
}

/// A problem as a JSON body describes it: a spot check's finding that the grid's
/// staff had missed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewProblemBody {
    category: String,
    description: String,
    #[serde(default)]
    address: String,
    location: Option<PointBody>,
    /// A unit-grid code (15 digits).
    grid: Option<String>,
    #[serde(default)]
    photos: Vec<String>,
}

impl NewProblemBody {
    /// The problem as taken in from `source`.
    pub(super) fn into_intake(self, source: Source, contact: Contact) -> Result<Intake, ApiError> {
        Ok(Intake {
            source,
            category: self.category,
            description: self.description,
            address: self.address,
            point: point_of(self.location)?,
            grid: self.grid,
            photos: self.photos,
            contact,
            source_ref: None,
        })
    }

    /// The unit grid named, if any.
    pub(super) fn grid(&self) -> Option<&str> {
        self.grid.as_deref()
    }
}

fn point_of(location: Option<PointBody>) -> Result<Option<Point>, ApiError> {
    let Some(p) = location else {
        return Ok(None);
    };
    let crs = match p.crs.as_deref() {
        None => Crs::Wgs84,
        Some(text) => text
            .parse::<Crs>()
            .map_err(|e| bad_request("invalid_case", format!("location: {e}")))?,
    };
    Ok(Some(Point {
        lon: p.lon,
        lat: p.lat,
        crs,
    }))
}

const fn yes() -> bool {
    true
}

impl From<IntakeError> for ApiError {
    fn from(error: IntakeError) -> ApiError {
        if let IntakeError::Store(store) = error {
            return ApiError::from(store);
        }
        let (status, code) = match &error {
            IntakeError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            IntakeError::UnknownCategory(_) => (StatusCode::BAD_REQUEST, "unknown_category"),
            IntakeError::NoLocation => (StatusCode::BAD_REQUEST, "no_location"),
            IntakeError::OutsideGrids { .. } => (StatusCode::BAD_REQUEST, "outside_grids"),
            IntakeError::UnknownGrid(_) => (StatusCode::BAD_REQUEST, "unknown_grid"),
            IntakeError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_case"),
            IntakeError::PhotoNotUploaded(_) => (StatusCode::BAD_REQUEST, "photo_not_uploaded"),
            IntakeError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
        };
        ApiError::new(status, code, error.to_string())
    }
}

/// `POST /v1/cases`: a case taken in for a caller. 201 with the case, the duplicates
/// suggested and the caller as recorded.
pub(super) async fn create(
    State(state): State<AppState>,
    Caller(claims): Caller,
    JsonBody(body): JsonBody<NewCaseBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = current_user(&state, &claims).await?;
    let source = match body.source.as_deref() {
        None => Source::Hotline,
        Some(text) => match Source::parse(text) {
            Some(source @ (Source::Hotline | Source::Citizen | Source::Handover)) => source,
            _ => {
                return Err(bad_request(
                    "invalid_case",
                    format!("source {text:?}: one of hotline, citizen, handover"),
                ));
            }
        },
    };
    let point = point_of(body.location)?;
    let contact = body
        .caller
        .map(|c| Contact {
            name: c.name,
            phone: c.phone,
            email: c.email,
            wants_reply: c.wants_reply,
        })
        .unwrap_or_default();
    let intake = Intake {
        source,
        category: body.category,
        description: body.description,
        address: body.address,
        point,
        grid: body.grid,
        photos: body.photos,
        contact,
        source_ref: body.ticket,
    };
    let actor = user.actor(&claims.act);
    let Created {
        id,
        row,
        duplicates,
    } = state.intake(Reporter::User(&actor), intake).await?;
    state.metrics.case_actions.inc();
    let contacts = state.store.contacts_of(std::slice::from_ref(&id)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id,
            "case": row,
            "possible_duplicates": duplicates,
            "callers": contacts.iter().map(contact_json).collect::<Vec<_>>(),
        })),
    ))
}

fn contact_json(row: &ContactRow) -> Value {
    json!({
        "case": row.case_id,
        "source": row.source,
        "name": row.name,
        "phone": row.phone,
        "email": row.email,
        "wants_reply": row.wants_reply,
        "ticket": row.ticket,
        "taken_by": row.taken_by,
        "taken_at": row.created_at,
    })
}

/// What `GET /v1/cases/{id}` adds about intake: for every role, the case it was
/// voided as a duplicate of and the cases voided as its duplicates; for the roles
/// that reply to callers (never the field roles), the callers — its own and its
/// duplicates', all told by its reply — and, while it waits to be accepted, the open
/// cases of its category nearby.
pub(super) async fn case_extras(
    state: &AppState,
    role: wangge_sync_core::role::Role,
    row: &CaseRow,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    let mut extras = serde_json::Map::new();
    let link = state.store.duplicate_link(&row.id).await?;
    extras.insert(
        "duplicate_of".into(),
        link.map_or(Value::Null, |l| Value::String(l.duplicate_of)),
    );
    let merged = state.store.duplicates_of(&row.id).await?;
    extras.insert(
        "duplicates".into(),
        Value::Array(
            merged
                .iter()
                .map(|d| Value::String(d.case_id.clone()))
                .collect(),
        ),
    );
    if !role.answers_callers() {
        return Ok(extras);
    }
    let mut ids = vec![row.id.clone()];
    ids.extend(merged.into_iter().map(|d| d.case_id));
    let callers = state.store.contacts_of(&ids).await?;
    extras.insert(
        "callers".into(),
        Value::Array(callers.iter().map(contact_json).collect()),
    );
    let waiting = row
        .status
        .as_deref()
        .and_then(wangge_sync_core::case::Status::parse)
        .is_some_and(|s| {
            duplicates::is_open(s)
                && matches!(
                    s,
                    wangge_sync_core::case::Status::Reported
                        | wangge_sync_core::case::Status::Accepted
                )
        });
    if waiting {
        let suggested =
            crate::intake::possible_duplicates(state.store.as_ref(), &state.sync.rules, row)
                .await?;
        extras.insert("possible_duplicates".into(), json!(suggested));
    }
    Ok(extras)
}
