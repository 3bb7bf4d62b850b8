//! The service's own endpoints: `/healthz`, `/metrics`, `/openapi.json`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ApiError, AppState};

pub(super) async fn healthz(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    // Reading the keys is a real round trip to the database.
    state.store.signing_keys().await?;
    Ok(Json(json!({ "status": "ok" })))
}

/// The API's description, maintained by hand beside the code (`server/api/openapi.json`);
/// `tests/tests/openapi.rs` checks that every path it documents is served.
pub const OPENAPI: &str = include_str!("../../api/openapi.json");

pub(super) async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// `GET /metrics`: Prometheus text (see [`crate::metrics`]).
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
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
