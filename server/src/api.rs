//! The HTTP API. Every error is JSON `{"error": {"code", "message"}}` with the right
//! status; handlers take typed extractors and never unwrap what a client sent.

mod assignments;
mod blobs;
mod cases;
mod patrol;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, head, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use wangge_sync_core::catalog::CategoryCode;
use wangge_sync_core::geo::{Crs, LonLat};
use wangge_sync_core::grid::geojson::index_feature;
use wangge_sync_core::grid::{GridCode, GridIndex};
use wangge_sync_core::ownership::{Decision, DispatchMode, Ownership, responsible};

use crate::auth::{Auth, AuthError, Claims, Session};
use crate::store::{Store, StoreError};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Authentication.
    pub auth: Arc<Auth>,
    /// The unit grids, if any are imported (loaded at start).
    pub grids: Option<Arc<GridIndex>>,
    /// Which team handles what, where.
    pub ownership: Arc<Ownership>,
    /// The sync protocol's engine.
    pub sync: Arc<crate::sync::SyncEngine>,
    /// The online devices' push sockets.
    pub push: Arc<crate::push::PushHub>,
    /// What `/metrics` reports.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Photo uploads and their limits.
    pub blobs: Arc<crate::blobs::Blobs>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

/// The whole API surface.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/me", get(me))
        .route("/v1/users", get(users))
        .route("/v1/users/{id}/posting", put(assignments::set_posting))
        .route("/v1/assignments", get(assignments::list))
        .route("/v1/ownership-rules", get(assignments::ownership_rules))
        .route("/v1/grids", get(grids_in_bbox))
        .route("/v1/grids/locate", get(locate))
        .route("/v1/grids/mine", get(grids_mine))
        .route("/v1/routing", get(routing))
        .route("/v1/cases", get(cases::list))
        .route("/v1/cases/{id}", get(cases::show))
        .route("/v1/cases/{id}/actions", post(cases::act))
        .route("/v1/patrol/logs", get(patrol::list))
        .route("/v1/patrol/logs/{id}", get(patrol::show))
        .route("/v1/patrol/logs/{id}/track", get(patrol::track))
        .route("/v1/patrol/logs/{id}/reviews", post(patrol::review))
        .route("/v1/patrol/coverage", get(patrol::coverage))
        .route("/v1/patrol/anomalies", get(patrol::anomalies))
        .route("/v1/patrol/summary", get(patrol::summary))
        .route("/v1/double-reports", get(patrol::double_reports))
        .route(
            "/v1/sync",
            // The protocol bounds requests itself (`Limits::max_request`, refused with
            // a typed error); the body limit only stops what is far beyond it.
            post(sync).layer(axum::extract::DefaultBodyLimit::max(
                state.sync.limits.max_request.saturating_add(1),
            )),
        )
        .route("/v1/push", get(push))
        .route(
            "/v1/blobs/{sha256}",
            head(blobs::head_blob)
                .patch(blobs::patch_blob)
                .delete(blobs::delete_upload)
                // The chunk limit is checked from Content-Length before the body is
                // read; this only stops a body that lies about its length.
                .layer(axum::extract::DefaultBodyLimit::max(
                    usize::try_from(state.blobs.settings.max_chunk)
                        .unwrap_or(usize::MAX)
                        .saturating_add(1),
                )),
        )
        .route("/v1/blobs/{sha256}/{variant}", get(blobs::get_derivative))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An error response: a status and a stable code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds for a `Retry-After` header.
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }
}

/// An error response's code, kept in the response's extensions for metrics.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 § 3: a 401 names the scheme it wants; a token that was sent
            // and refused is `invalid_token`.
            let challenge = match self.code {
                "unauthenticated" | "bad_credentials" => r#"Bearer realm="wangge""#,
                _ => r#"Bearer realm="wangge", error="invalid_token""#,
            };
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(challenge),
            );
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        let (status, code) = match &error {
            AuthError::BadCredentials => (StatusCode::UNAUTHORIZED, "bad_credentials"),
            AuthError::Disabled => (StatusCode::FORBIDDEN, "account_disabled"),
            AuthError::DeviceRevoked => (StatusCode::UNAUTHORIZED, "device_revoked"),
            AuthError::DeviceNotYours => (StatusCode::FORBIDDEN, "device_not_yours"),
            AuthError::TokenExpired => (StatusCode::UNAUTHORIZED, "token_expired"),
            AuthError::TokenInvalid(detail) => {
                // The library's reason (a header it could not parse, the algorithms it
                // knows) is for the log, not for whoever sent the token.
                tracing::debug!(%detail, "token refused");
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "token_invalid",
                    "the access token is not valid: log in or refresh it",
                );
            }
            AuthError::RefreshReused => (StatusCode::UNAUTHORIZED, "refresh_token_reused"),
            AuthError::RefreshInvalid => (StatusCode::UNAUTHORIZED, "refresh_token_invalid"),
            AuthError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            AuthError::Throttled { retry_after_s, .. } => {
                return ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    error.to_string(),
                )
                .retry_after(*retry_after_s);
            }
            AuthError::TooManyDevices { .. } => (StatusCode::CONFLICT, "too_many_devices"),
            AuthError::Store(_) | AuthError::Internal(_) => {
                tracing::error!(%error, "auth failed");
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                );
            }
        };
        ApiError::new(status, code, error.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        tracing::error!(%error, "storage failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the database is not available",
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        use std::error::Error as _;
        match &rejection {
            // Fields missing, of the wrong type or unknown: serde's own words name the
            // field (they describe our schema, nothing of the server's insides).
            JsonRejection::JsonDataError(error) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!(
                    "the JSON body does not fit: {}",
                    error
                        .source()
                        .map_or_else(|| error.body_text(), |e| e.to_string())
                ),
            ),
            JsonRejection::JsonSyntaxError(error) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!(
                    "the body is not JSON: {}",
                    error
                        .source()
                        .map_or_else(|| error.body_text(), |e| e.to_string())
                ),
            ),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected_json",
                "the body is JSON: Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(bytes) => body_unread(bytes.status(), bytes),
            _ => body_unread(rejection.status(), &rejection),
        }
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
        body_unread(rejection.status(), &rejection)
    }
}

/// A body that could not be read whole: over the limit, past its deadline (the
/// router's `RequestBodyTimeoutLayer`), or cut off.
fn body_unread(status: StatusCode, error: &(dyn std::error::Error + 'static)) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the body did not arrive in time",
            );
        }
        cause = e.source();
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the body is larger than this endpoint takes",
        );
    }
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_body",
        "the body could not be read",
    )
}

/// JSON body whose rejection is one of our errors.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(JsonBody(value))
    }
}

/// Query parameters whose rejection is one of our errors.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state)
                .await
                .map_err(|rejection| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_query",
                        rejection.body_text(),
                    )
                })?;
        Ok(QueryParams(value))
    }
}

/// The caller, from a valid `Authorization: Bearer` access token.
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "missing Authorization: Bearer token",
                )
            })?;
        let token = header.strip_prefix("Bearer ").ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "expected a Bearer token",
            )
        })?;
        let claims = state.auth.verify(token.trim(), now_ms()).await?;
        Ok(Caller(claims))
    }
}

async fn healthz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    // Reading the keys is a real round trip to the database.
    state.store.signing_keys().await?;
    Ok(Json(json!({ "status": "ok" })))
}

/// The API's description, maintained by hand beside the code (`server/api/openapi.json`);
/// `tests/tests/openapi.rs` checks that every path it documents is served.
pub const OPENAPI: &str = include_str!("../api/openapi.json");

async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this endpoint does not take {method}: see /openapi.json"),
    )
}

/// `POST /v1/auth/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    user: String,
    password: String,
    device: DeviceRequest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceRequest {
    /// A device registered before (its id), or none to register this one.
    #[serde(default)]
    id: Option<String>,
    /// The device's name (model, label), for a new registration.
    #[serde(default)]
    name: String,
}

/// The answer to login and refresh.
#[derive(Debug, Serialize)]
struct SessionResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
    user: UserResponse,
    device: DeviceResponse,
}

#[derive(Debug, Serialize)]
struct UserResponse {
    id: String,
    display_name: String,
    role: String,
    team: Option<String>,
    scope: String,
}

#[derive(Debug, Serialize)]
struct DeviceResponse {
    id: String,
    name: String,
    /// The Automerge actor id this device must write with.
    actor_id: String,
}

impl From<Session> for SessionResponse {
    fn from(session: Session) -> SessionResponse {
        SessionResponse {
            access_token: session.access_token,
            token_type: "Bearer",
            expires_in: session.expires_in,
            refresh_token: session.refresh_token,
            user: UserResponse {
                id: session.user.id,
                display_name: session.user.display_name,
                role: session.user.role.as_str().to_owned(),
                team: session.user.team.map(|t| t.to_string()),
                scope: session.user.scope.to_string(),
            },
            device: DeviceResponse {
                id: session.device.id,
                name: session.device.name,
                actor_id: session.device.actor_id,
            },
        }
    }
}

async fn login(
    State(state): State<AppState>,
    peer: Option<axum::Extension<crate::listener::Peer>>,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Json<SessionResponse>, ApiError> {
    let session = state
        .auth
        .login(
            &request.user,
            &request.password,
            request.device.id.as_deref(),
            &request.device.name,
            peer.map(|axum::Extension(peer)| peer.0.ip()),
            now_ms(),
        )
        .await?;
    Ok(Json(session.into()))
}

/// `POST /v1/auth/refresh`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

async fn refresh(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<RefreshRequest>,
) -> Result<Json<SessionResponse>, ApiError> {
    let session = state.auth.refresh(&request.refresh_token, now_ms()).await?;
    Ok(Json(session.into()))
}

/// `GET /v1/me`: who the token says the caller is.
async fn me(Caller(claims): Caller) -> Json<Claims> {
    Json(claims)
}

/// The most unit grids one map request returns (about 4 km² of the city).
pub const MAX_GRIDS_PER_REQUEST: usize = 2_000;

fn grid_index(state: &AppState) -> Result<&GridIndex, ApiError> {
    state.grids.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_grids",
            "no unit grids are loaded: import them with `wangge grid import` and restart",
        )
    })
}

fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// `GET /v1/grids/locate?lon=&lat=&crs=`.
#[derive(Debug, Deserialize)]
struct LocateQuery {
    lon: f64,
    lat: f64,
    /// `wgs84` (a phone's GPS, the default), `gcj02` or `bd09`.
    #[serde(default)]
    crs: Option<String>,
}

async fn locate(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(query): QueryParams<LocateQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let index = grid_index(&state)?;
    let crs = parse_crs(query.crs.as_deref())?;
    let point = LonLat::new(query.lon, query.lat)
        .map_err(|e| bad_request("invalid_query", e.to_string()))?;
    let described = index
        .locate(point, crs)
        .and_then(|code| index.describe(code));
    match described {
        Some(description) => Ok(Json(json!({ "grid": description }))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "outside_grids",
            format!("({}, {}) is outside every unit grid", query.lon, query.lat),
        )),
    }
}

/// `GET /v1/grids?bbox=minLon,minLat,maxLon,maxLat` (GCJ-02, like the grids).
#[derive(Debug, Deserialize)]
struct BboxQuery {
    bbox: String,
}

async fn grids_in_bbox(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(query): QueryParams<BboxQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let index = grid_index(&state)?;
    let numbers: Vec<f64> = query
        .bbox
        .split(',')
        .map(|part| part.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad_request("invalid_query", "bbox must be four numbers"))?;
    let [min_lon, min_lat, max_lon, max_lat] = numbers[..] else {
        return Err(bad_request(
            "invalid_query",
            "bbox must be minLon,minLat,maxLon,maxLat",
        ));
    };
    let corner = |lon, lat| {
        LonLat::new(lon, lat).map_err(|e| bad_request("invalid_query", format!("bbox: {e}")))
    };
    let (min, max) = (corner(min_lon, min_lat)?, corner(max_lon, max_lat)?);
    if !(min_lon <= max_lon && min_lat <= max_lat) {
        return Err(bad_request(
            "invalid_query",
            "bbox minimums must not exceed its maximums",
        ));
    }
    let codes = index.codes_in_bbox(min, max);
    if codes.len() > MAX_GRIDS_PER_REQUEST {
        return Err(bad_request(
            "bbox_too_large",
            format!(
                "{} unit grids in this bbox; ask for at most {MAX_GRIDS_PER_REQUEST}",
                codes.len()
            ),
        ));
    }
    feature_collection(index, codes)
}

/// The unit grids `codes` as a GeoJSON FeatureCollection.
fn feature_collection(
    index: &GridIndex,
    codes: Vec<GridCode>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut features = Vec::with_capacity(codes.len());
    for code in codes {
        if let Some(feature) = index_feature(index, code).map_err(|e| {
            tracing::error!(%e, "grid feature");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        })? {
            features.push(feature);
        }
    }
    Ok(Json(
        json!({ "type": "FeatureCollection", "features": features }),
    ))
}

/// `GET /v1/grids/mine`: the unit grids of the caller's scope, as GeoJSON (GCJ-02),
/// for the phone to cache and locate offline. A scope of more than
/// [`MAX_GRIDS_PER_REQUEST`] grids (a district or the city) is refused: such users
/// browse by bbox, and the server locates their reports anyway.
async fn grids_mine(
    State(state): State<AppState>,
    Caller(claims): Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let index = grid_index(&state)?;
    let user = current_user(&state, &claims).await?;
    let whole =
        |lon, lat| LonLat::new(lon, lat).map_err(|e| bad_request("invalid_query", e.to_string()));
    let codes: Vec<GridCode> = index
        .codes_in_bbox(whole(-180.0, -90.0)?, whole(180.0, 90.0)?)
        .into_iter()
        .filter(|code| user.scope.covers(Some(code)))
        .collect();
    if codes.len() > MAX_GRIDS_PER_REQUEST {
        return Err(bad_request(
            "scope_too_large",
            format!(
                "{} unit grids in your scope; ask by bbox (at most {MAX_GRIDS_PER_REQUEST})",
                codes.len()
            ),
        ));
    }
    feature_collection(index, codes)
}

fn parse_crs(crs: Option<&str>) -> Result<Crs, ApiError> {
    match crs.unwrap_or("wgs84") {
        "wgs84" => Ok(Crs::Wgs84),
        "gcj02" => Ok(Crs::Gcj02),
        "bd09" => Ok(Crs::Bd09),
        other => Err(bad_request(
            "invalid_query",
            format!("unknown crs {other:?}: use wgs84, gcj02 or bd09"),
        )),
    }
}

/// `GET /v1/routing?category=&lon=&lat=&crs=`: where a case of this category at this
/// point would go — the grid, the team, automatic or queued dispatch, why, and the
/// responsible people. What the server will apply to every new case.
#[derive(Debug, Deserialize)]
struct RoutingQuery {
    category: String,
    lon: f64,
    lat: f64,
    #[serde(default)]
    crs: Option<String>,
}

async fn routing(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(query): QueryParams<RoutingQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let index = grid_index(&state)?;
    let category: CategoryCode = query
        .category
        .parse()
        .map_err(|e| bad_request("invalid_query", format!("category: {e}")))?;
    let crs = parse_crs(query.crs.as_deref())?;
    let point = LonLat::new(query.lon, query.lat)
        .map_err(|e| bad_request("invalid_query", e.to_string()))?;
    let gcj02 = point.to_gcj02(crs);
    let grid = index.locate_gcj02(gcj02);
    let catalog = state.sync.rules.catalog;
    let routing = state
        .ownership
        .route(catalog, category, grid, Some(gcj02))
        .map_err(|e| bad_request("unknown_category", e.to_string()))?;
    let people = match grid {
        Some(g) => {
            let postings = crate::cases::postings_of(state.store.users_covering(&g).await?);
            Some(responsible(&postings, &routing.team, g))
        }
        None => None,
    };
    let team_name = catalog
        .team(routing.team.as_str())
        .map(|t| t.name_zh.clone());
    Ok(Json(json!({
        "grid": grid.and_then(|g| index.describe(g)),
        "team": routing.team.as_str(),
        "team_name_zh": team_name,
        "dispatch": match routing.dispatch {
            DispatchMode::Auto => "auto",
            DispatchMode::Queue => "queue",
        },
        "decided_by": match &routing.decided_by {
            Decision::Override(name) => json!({ "override": name }),
            Decision::Rule(index) => json!({ "rule": index + 1 }),
            Decision::CatalogDefault => json!("catalog_default"),
        },
        "responsible": people.map(|p| json!({
            "handlers": p.handlers,
            "grid_leaders": p.grid_leaders,
            "supervisors": p.supervisors,
        })),
    })))
}

/// `GET /v1/users`: the users whose grids overlap the caller's. The command centre,
/// grid leaders and supervisors may list; the city level and admins see everyone;
/// field workers, departments and the hotline may not.
async fn users(
    State(state): State<AppState>,
    Caller(claims): Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    // The caller's posting as it is now, not as the token says: a demoted supervisor
    // lists nothing more from the moment the posting changes.
    let me = current_user(&state, &claims).await?;
    let Some(everyone) = me.role.lists_users() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("a {} may not list users", me.role.as_str()),
        ));
    };
    let scope = me.scope;
    let users: Vec<serde_json::Value> = state
        .store
        .users()
        .await?
        .into_iter()
        .filter(|u| everyone || u.scope.overlaps(&scope))
        .map(|u| {
            json!({
                "id": u.id,
                "display_name": u.display_name,
                "role": u.role.as_str(),
                "role_name_zh": u.role.name_zh(),
                "team": u.team.map(|t| t.to_string()),
                "scope": u.scope.to_string(),
                "disabled": u.disabled,
            })
        })
        .collect();
    Ok(Json(json!({ "users": users })))
}

/// `POST /v1/sync`: one round of the sync protocol (`wangge_sync_core::sync`). The body
/// and the reply are CBOR (`application/cbor`). A refused batch is a normal reply
/// (the device reads the refusals from it); only a request that is not a valid
/// message gets an error status.
async fn sync(
    State(state): State<AppState>,
    Caller(claims): Caller,
    headers: axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let cbor = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/cbor"));
    if !cbor {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected_cbor",
            "the sync body is CBOR: Content-Type: application/cbor",
        ));
    }
    let body = body?;
    // The posting as it is now, not as it was when the token was issued: a worker
    // moved to other grids receives the new ones (and loses the old) at once.
    let user = current_user(&state, &claims).await?;
    let writer_device = claims.act.clone();
    let writer = wangge_sync_core::role::Actor {
        user: user.id,
        role: user.role,
        team: user.team,
        scope: user.scope,
        device: claims.act.clone(),
    };
    let span = tracing::info_span!("sync", user = %writer.user, device = %claims.dev);
    let _entered = span.enter();
    let started = std::time::Instant::now();
    // The time the phone stamps entries with (its clock corrected by the offset it
    // measured), so a clock hours off is flagged on its patrol check-ins.
    let phone_clock_ms = headers
        .get("x-wangge-clock")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let result = state
        .sync
        .round(
            state.store.clone(),
            writer,
            body.to_vec(),
            now_ms(),
            phone_clock_ms,
        )
        .await;
    match result {
        Ok((reply, stats)) => {
            let metrics = &state.metrics;
            metrics.round(if stats.refused > 0 {
                "refused"
            } else {
                "stored"
            });
            metrics.sync_changes.inc_by(stats.stored_changes as u64);
            metrics
                .automatic_changes
                .inc_by(stats.automatic_changes as u64);
            metrics
                .sync_seconds
                .observe(started.elapsed().as_secs_f64());
            announce(&state, &writer_device, &stats.written).await;
            patrol::after_round(&state, &stats.written).await;
            tell_double_reports(&state, &stats.written).await;
            tracing::info!(
                stored_docs = stats.stored_docs,
                stored_changes = stats.stored_changes,
                sent_docs = stats.sent_docs,
                evicted = stats.evicted,
                refused = stats.refused,
                reply_bytes = stats.reply_bytes,
                ms = started.elapsed().as_millis() as u64,
                "sync round"
            );
            Ok((
                [(axum::http::header::CONTENT_TYPE, "application/cbor")],
                reply,
            )
                .into_response())
        }
        Err(error) => {
            let error = sync_error(error);
            state.metrics.round(error.code);
            Err(error)
        }
    }
}

/// `GET /metrics`: Prometheus text (see [`crate::metrics`]).
async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state
            .metrics
            .render(state.push.online(), state.sync.documents.numbers()),
    )
        .into_response()
}

/// Tells the online devices what `writer` wrote: this node's sockets at once, the
/// other nodes' through the store's fan-out (PostgreSQL only).
pub async fn announce(
    state: &AppState,
    writer: &str,
    written: &[wangge_sync_core::sync::server::Written],
) {
    if written.is_empty() {
        return;
    }
    state.push.written(writer, written);
    if state.store.backend() == crate::store::Backend::Postgres {
        for message in state.push.to_other_nodes(writer, written) {
            if let Err(error) = state.store.publish(&message).await {
                // The other nodes' phones get the data on their next sync.
                tracing::warn!(%error, "fan-out to the other nodes failed");
            }
        }
    }
}

/// The stored document `id` loaded, `None` when there is none; a stored document that
/// does not load is a 500 `corrupt_document` (logged), never a panic.
pub(crate) async fn load_stored(
    state: &AppState,
    id: &str,
) -> Result<Option<automerge::Automerge>, ApiError> {
    let Some(stored) = state.store.sync_document(id).await? else {
        return Ok(None);
    };
    wangge_sync_core::sync::load_chunks(&stored.chunks)
        .map(Some)
        .map_err(|error| {
            tracing::error!(document = id, %error, "stored document does not load");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "corrupt_document",
                format!("the stored document {id} does not load"),
            )
        })
}

/// An edit the API made to a loaded document, to store like a device's.
pub(crate) struct ApiEdit {
    pub id: String,
    pub kind: wangge_sync_core::sync::DocKind,
    /// The heads the document was loaded at.
    pub before: Vec<automerge::ChangeHash>,
    /// The document with the edit.
    pub doc: automerge::Automerge,
    /// Its meta after the edit.
    pub meta: wangge_sync_core::sync::DocMeta,
    /// Its meta as loaded.
    pub previous: wangge_sync_core::sync::DocMeta,
}

/// Stores an API edit like a device's: only its new changes, merged with whatever
/// came meanwhile (no heads condition), the derived rows in the same transaction,
/// then announced to the other devices as written by `writer_device`.
pub(crate) async fn store_edit(
    state: &AppState,
    writer_device: &str,
    edit: ApiEdit,
    now_ms: i64,
) -> Result<(), ApiError> {
    use wangge_sync_core::sync::server::{DocWrite, Merged, Written};
    let ApiEdit {
        id,
        kind,
        before,
        doc,
        meta,
        previous,
    } = edit;
    let changes: Vec<Vec<u8>> = doc
        .get_changes(&before)
        .iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect();
    let write = DocWrite {
        id: id.clone(),
        kind,
        changes,
        meta: meta.clone(),
        heads: doc.get_heads(),
        merged: Some(Merged::new(before, doc)),
    };
    let derive = crate::cases::Materializer {
        rules: &state.sync.rules,
        now: now_ms,
        clock_skew_ms: None,
    };
    state
        .store
        .document_write(&write, None, &derive, now_ms)
        .await?;
    let written = [Written {
        id,
        kind,
        meta,
        previous: Some(previous),
    }];
    announce(state, writer_device, &written).await;
    Ok(())
}

/// After a round: the double reports (双报告) of the cases it stored first, pushed to
/// the users newly told, on this node and the others.
async fn tell_double_reports(
    state: &AppState,
    written: &[wangge_sync_core::sync::server::Written],
) {
    for told in crate::double_report::after_round(state.store.as_ref(), written, now_ms()).await {
        state.push.tell(
            &told.users,
            &crate::push::Notice::DoubleReport {
                case: told.case.clone(),
            },
        );
        if state.store.backend() == crate::store::Backend::Postgres {
            let message = state.push.tell_other_nodes(&told.users, &told.case);
            if let Err(error) = state.store.publish(&message).await {
                tracing::warn!(%error, "fan-out of a double report failed");
            }
        }
    }
}

fn sync_error(error: wangge_sync_core::sync::server::SyncError) -> ApiError {
    use wangge_sync_core::sync::message::DecodeError;
    use wangge_sync_core::sync::server::SyncError;
    let message = error.to_string();
    match error {
        SyncError::Decode(DecodeError::TooLarge { .. }) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "sync_too_large", message)
        }
        SyncError::Decode(DecodeError::Version(_)) => {
            ApiError::new(StatusCode::BAD_REQUEST, "sync_version", message)
        }
        SyncError::Decode(_) => ApiError::new(StatusCode::BAD_REQUEST, "sync_malformed", message),
        SyncError::CursorFromFuture { .. } => {
            ApiError::new(StatusCode::CONFLICT, "sync_cursor_ahead", message)
        }
        SyncError::CorruptDocument { .. } => {
            tracing::error!(%message, "stored document does not load");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        }
        SyncError::Storage(inner)
            if matches!(
                inner.downcast_ref::<StoreError>(),
                Some(StoreError::Conflict { .. })
            ) =>
        {
            ApiError::new(
                StatusCode::CONFLICT,
                "sync_round_conflict",
                "another sync round of this device ran at the same time: sync again",
            )
        }
        SyncError::Storage(_) => {
            tracing::error!(%message, "sync storage failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the database is not available",
            )
        }
    }
}

/// The caller's account as it is now (not as the token says): its posting may have
/// changed since the token was issued; a disabled account gets 403.
async fn current_user(state: &AppState, claims: &Claims) -> Result<crate::store::User, ApiError> {
    state
        .store
        .user(&claims.sub)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "account_disabled",
                "the account is disabled",
            )
        })
}

/// A push socket's read buffer.
const PUSH_BUFFER_BYTES: usize = 4 * 1024;
/// The largest message a phone may send on its push socket.
const PUSH_MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// `GET /v1/push`: the device's push WebSocket (see [`crate::push`]).
async fn push(
    State(state): State<AppState>,
    Caller(claims): Caller,
    upgrade: Result<
        axum::extract::ws::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            "websocket_required",
            "/v1/push is a WebSocket: send a GET with Upgrade: websocket",
        )
    })?;
    let user = current_user(&state, &claims).await?;
    let scope = wangge_sync_core::sync::UserScope {
        user: user.id,
        role: user.role,
        grids: user.scope,
    };
    // An idle socket is most of what a node holds: tungstenite's default 128 KiB read
    // buffer, allocated up front, was 112 KiB per idle connection (docs/BENCHMARKS.md).
    // Notices are a few hundred bytes and the phone sends nothing but control frames.
    let upgrade = upgrade
        .read_buffer_size(PUSH_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_message_size(PUSH_MAX_MESSAGE_BYTES)
        .max_frame_size(PUSH_MAX_MESSAGE_BYTES);
    Ok(upgrade.on_upgrade(move |socket| push_socket(state, claims, scope, socket)))
}

async fn push_socket(
    state: AppState,
    claims: Claims,
    scope: wangge_sync_core::sync::UserScope,
    mut socket: axum::extract::ws::WebSocket,
) {
    use crate::push::Notice;
    use axum::extract::ws::{CloseFrame, Message};
    let send =
        |notice: &Notice| Message::Text(serde_json::to_string(notice).unwrap_or_default().into());
    let (id, mut notices) = state.push.register(&claims.act, scope);
    let hello = Notice::Hello {
        device: claims.dev.clone(),
    };
    let mut check = tokio::time::interval(state.push.check_every);
    if socket.send(send(&hello)).await.is_ok() {
        loop {
            tokio::select! {
                notice = notices.recv() => {
                    let Some(notice) = notice else { break };
                    if socket.send(send(&notice)).await.is_err() {
                        break;
                    }
                }
                incoming = socket.recv() => match incoming {
                    // Pings are answered by the WebSocket layer; the phone sends nothing else.
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                _ = check.tick() => {
                    let revoked = match state.store.device(&claims.dev).await {
                        Ok(device) => device.is_none_or(|d| d.revoked_at.is_some()),
                        // The database is away: keep the socket, check again later.
                        Err(_) => false,
                    };
                    if revoked {
                        let _ = socket.send(send(&Notice::Revoked)).await;
                        let _ = socket
                            .send(Message::Close(Some(CloseFrame {
                                code: 4001,
                                reason: "device revoked".into(),
                            })))
                            .await;
                        break;
                    }
                }
            }
        }
    }
    state.push.unregister(id);
}
