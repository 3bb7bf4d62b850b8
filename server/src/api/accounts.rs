//! Accounts: `POST /v1/auth/login`, `POST /v1/auth/refresh`, `GET /v1/me`,
//! `GET /v1/users`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, AppState, Caller, JsonBody, current_user};
use crate::auth::{Claims, Session};
use crate::writes::now_ms;

/// `POST /v1/auth/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginRequest {
    user: String,
    password: String,
    device: DeviceRequest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeviceRequest {
    /// A device registered before (its id), or none to register this one.
    #[serde(default)]
    id: Option<String>,
    /// The device's name (model, label), for a new registration.
    #[serde(default)]
    name: String,
}

/// The answer to login and refresh.
#[derive(Debug, Serialize)]
pub(super) struct SessionResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
    user: UserResponse,
    device: DeviceResponse,
}

#[derive(Debug, Serialize)]
pub(super) struct UserResponse {
    id: String,
    display_name: String,
    role: String,
    team: Option<String>,
    scope: String,
}

#[derive(Debug, Serialize)]
pub(super) struct DeviceResponse {
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

pub(super) async fn login(
    State(state): State<AppState>,
    client: Option<axum::Extension<crate::client_addr::ClientAddr>>,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Json<SessionResponse>, ApiError> {
    let session = state
        .auth
        .login(
            &request.user,
            &request.password,
            request.device.id.as_deref(),
            &request.device.name,
            client.map(|axum::Extension(client)| client.0),
            now_ms(),
        )
        .await?;
    Ok(Json(session.into()))
}

/// `POST /v1/auth/refresh`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RefreshRequest {
    refresh_token: String,
}

pub(super) async fn refresh(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<RefreshRequest>,
) -> Result<Json<SessionResponse>, ApiError> {
    let session = state.auth.refresh(&request.refresh_token, now_ms()).await?;
    Ok(Json(session.into()))
}

/// `GET /v1/me`: who the token says the caller is.
pub(super) async fn me(Caller(claims): Caller) -> Json<Claims> {
    Json(claims)
}

/// `GET /v1/users`: the users whose grids overlap the caller's. The command centre,
/// grid leaders and supervisors may list; the city level and admins see everyone;
/// field workers, departments and the hotline may not.
pub(super) async fn users(
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

/// `POST /v1/auth/logout`: the phone logs out: its device is revoked (its tokens stop
/// working at once, on every node; a later login registers a new device), audited.
pub(super) async fn logout(
    State(state): State<AppState>,
    Caller(claims): Caller,
) -> Result<StatusCode, ApiError> {
    revoke_own_device(&state, &claims, "auth.logout").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Logs the caller's device out (a phone's logout, the console's): revoked, so its
/// tokens stop working at once on every node, and audited as `what`.
pub(super) async fn revoke_own_device(
    state: &AppState,
    claims: &Claims,
    what: &str,
) -> Result<(), ApiError> {
    let now = now_ms();
    state.store.revoke_device(&claims.dev, now).await?;
    state
        .store
        .audit(now, &claims.sub, what, &claims.dev)
        .await?;
    Ok(())
}
