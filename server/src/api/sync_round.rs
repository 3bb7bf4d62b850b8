//! `POST /v1/sync`: one round of the sync protocol, CBOR both ways.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::error::sync_error;
use super::{ApiError, AppState, Caller, current_user};
use crate::writes::{announce, now_ms, tell_double_reports};

/// `POST /v1/sync`: one round of the sync protocol (`wangge_sync_core::sync`). The body
/// and the reply are CBOR (`application/cbor`). A refused batch is a normal reply
/// (the device reads the refusals from it); only a request that is not a valid
/// message gets an error status.
pub(super) async fn sync(
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
    let writer = user.actor(&claims.act);
    let span = tracing::info_span!("sync", user = %writer.user, device = %claims.dev);
    let _entered = span.enter();
    // The time the phone stamps entries with (its clock corrected by the offset it
    // measured), so a clock hours off is flagged on its patrol check-ins.
    let phone_clock_ms = headers
        .get("x-wangge-clock")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let reply = round_at(&state, writer, body.to_vec(), now_ms(), phone_clock_ms).await?;
    // The catalogue's version: a phone holding another fetches `/v1/catalogue` after
    // this sync.
    let catalogue = super::catalogue::served(state.sync.rules.catalog, &state.sync.rules.ownership);
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/cbor".to_owned(),
            ),
            (
                axum::http::HeaderName::from_static("x-wangge-catalogue"),
                catalogue.version.clone(),
            ),
        ],
        reply,
    )
        .into_response())
}

/// One sync round for `writer` (the user's posting now, written by their device's
/// actor) at server time `now`, and what follows it: the metrics, the announcements,
/// the patrol duties and the double reports of what it wrote. The encoded reply.
/// Everything `POST /v1/sync` does past HTTP; `wangge demo` seeds its week through it
/// with the week's times.
pub async fn round_at(
    state: &AppState,
    writer: wangge_sync_core::role::Actor,
    request: Vec<u8>,
    now: i64,
    phone_clock_ms: Option<i64>,
) -> Result<Vec<u8>, ApiError> {
    let writer_device = writer.device.clone();
    let started = std::time::Instant::now();
    let result = state
        .sync
        .round(state.store.clone(), writer, request, now, phone_clock_ms)
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
            announce(
                state.store.as_ref(),
                &state.push,
                &writer_device,
                &stats.written,
            )
            .await;
            super::patrol::after_round(state, &stats.written).await;
            tell_double_reports(state.store.as_ref(), &state.push, &stats.written, now).await;
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
            Ok(reply)
        }
        Err(error) => {
            let error = sync_error(error);
            state.metrics.round(error.code);
            Err(error)
        }
    }
}
