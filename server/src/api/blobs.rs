//! `/v1/blobs`: photos. The resumable upload — `HEAD` (how much the server has),
//! `PATCH` (one chunk: `Content-Type: application/offset+octet-stream`,
//! `Upload-Offset`, `Upload-Length`), `DELETE` (abandon) — and the two derivatives a
//! user who may see a case referencing the photo may fetch. The rules are in
//! [`crate::blobs`]; this module is headers and statuses.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use wangge_sync_core::photo::PhotoError;
use wangge_sync_core::sync::{DocKind, Scope as _};

use super::{ApiError, AppState, Caller, ErrorCode, current_user, now_ms};
use crate::blobs::{BlobError, ChunkOutcome, RangeAnswer, UploadStatus, Uploader, VARIANTS};
use crate::store::blobs::BlobRow;

const UPLOAD_OFFSET: &str = "upload-offset";
const UPLOAD_LENGTH: &str = "upload-length";
const UPLOAD_COMPLETE: &str = "upload-complete";
const UPLOAD_EXPIRES: &str = "upload-expires";
/// The chunk body's media type (tus and the IETF resumable upload draft).
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
/// Marks a `PATCH` answer that found the photo stored already (for metrics).
#[derive(Debug, Clone, Copy)]
struct Deduplicated;

/// The most cases looked at to decide whether a caller may see a photo (a photo is
/// normally in one case; a few share one).
const MAX_CASES_PER_PHOTO: usize = 100;

impl From<BlobError> for ApiError {
    fn from(error: BlobError) -> ApiError {
        let message = error.to_string();
        let (status, code) = match &error {
            BlobError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "blob_too_large"),
            BlobError::ChunkTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "chunk_too_large"),
            BlobError::PastEnd { .. } => (StatusCode::BAD_REQUEST, "chunk_past_end"),
            BlobError::LengthMismatch { .. } => (StatusCode::CONFLICT, "upload_length_mismatch"),
            BlobError::NotFound => (StatusCode::NOT_FOUND, "upload_not_found"),
            BlobError::Expired => (StatusCode::GONE, "upload_expired"),
            BlobError::OffsetMismatch { .. } => (StatusCode::CONFLICT, "offset_mismatch"),
            BlobError::TooMany { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads"),
            BlobError::HashMismatch { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "hash_mismatch"),
            BlobError::Photo(photo) => match photo {
                PhotoError::Empty => (StatusCode::UNPROCESSABLE_ENTITY, "photo_empty"),
                PhotoError::UnsupportedFormat => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "photo_unsupported_format")
                }
                PhotoError::HeifUnsupported => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "photo_heif_unsupported")
                }
                PhotoError::TooLarge { .. } => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "photo_too_large")
                }
                PhotoError::Corrupt(_) => (StatusCode::UNPROCESSABLE_ENTITY, "photo_corrupt"),
                PhotoError::Exif(_) => (StatusCode::UNPROCESSABLE_ENTITY, "photo_exif_malformed"),
                PhotoError::Internal(_) => {
                    tracing::error!(%message, "photo processing failed");
                    return ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "internal error",
                    );
                }
            },
            BlobError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "photo_busy"),
            BlobError::Store(inner) => {
                tracing::error!(error = %inner, "storage failed");
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the database is not available",
                );
            }
        };
        ApiError::new(status, code, message)
    }
}

/// An error answer with the headers a resuming client needs.
fn blob_error(error: BlobError) -> Response {
    let received = match &error {
        BlobError::OffsetMismatch { received } => Some(*received),
        _ => None,
    };
    let busy = matches!(error, BlobError::Busy);
    let max = match &error {
        BlobError::TooLarge { max, .. } => Some(("upload-max-size", *max)),
        BlobError::ChunkTooLarge { max, .. } => Some(("upload-max-chunk", *max)),
        _ => None,
    };
    let mut response = ApiError::from(error).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(received) = received {
        headers.insert(UPLOAD_OFFSET, HeaderValue::from(received));
    }
    if busy {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    if let Some((name, max)) = max {
        headers.insert(name, HeaderValue::from(max));
    }
    response
}

fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn check_name(sha256: &str) -> Result<(), ApiError> {
    if crate::blobs::is_sha256(sha256) {
        Ok(())
    } else {
        Err(invalid(
            "invalid_hash",
            "a photo is named by the SHA-256 of its bytes: 64 lowercase hex digits",
        ))
    }
}

/// The uploader, from the token; a disabled account is refused here.
async fn uploader(state: &AppState, claims: &crate::auth::Claims) -> Result<Uploader, ApiError> {
    let user = current_user(state, claims).await?;
    Ok(Uploader {
        user: user.id,
        device: claims.dev.clone(),
    })
}

/// An HTTP date (RFC 9110 §5.6.7) for `ms`.
fn http_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn header_number(headers: &HeaderMap, name: &str) -> Result<Option<u64>, ApiError> {
    headers
        .get(name)
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    invalid(
                        "invalid_upload_header",
                        format!("{name} must be a non-negative integer"),
                    )
                })
        })
        .transpose()
}

fn complete_headers(blob: &BlobRow) -> [(&'static str, HeaderValue); 4] {
    [
        (UPLOAD_OFFSET, HeaderValue::from(blob.size)),
        (UPLOAD_LENGTH, HeaderValue::from(blob.size)),
        (UPLOAD_COMPLETE, HeaderValue::from_static("?1")),
        ("cache-control", HeaderValue::from_static("no-store")),
    ]
}

/// `HEAD /v1/blobs/{sha256}`: 200 with `Upload-Complete: ?1` when the photo is stored,
/// 200 with `Upload-Offset` for this device's half upload, 404 when there is neither,
/// 410 once for an expired half upload.
pub(super) async fn head_blob(
    State(state): State<AppState>,
    Caller(claims): Caller,
    Path(sha256): Path<String>,
) -> Response {
    let answer = async {
        check_name(&sha256)?;
        let who = uploader(&state, &claims).await?;
        Ok::<_, ApiError>(state.blobs.status(&sha256, &who.device, now_ms()).await)
    };
    match answer.await {
        Err(error) => error.into_response(),
        Ok(Err(error)) => blob_error(error),
        Ok(Ok(UploadStatus::Complete(blob))) => {
            (StatusCode::OK, complete_headers(&blob)).into_response()
        }
        Ok(Ok(UploadStatus::Partial(upload))) => (
            StatusCode::OK,
            [
                (UPLOAD_OFFSET, HeaderValue::from(upload.received)),
                (UPLOAD_LENGTH, HeaderValue::from(upload.length)),
                (UPLOAD_COMPLETE, HeaderValue::from_static("?0")),
                (
                    UPLOAD_EXPIRES,
                    HeaderValue::from_str(&http_date(upload.expires_at))
                        .unwrap_or(HeaderValue::from_static("")),
                ),
                ("cache-control", HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
    }
}

/// `PATCH /v1/blobs/{sha256}`: one chunk. The headers are checked before the body is
/// read, so a refusal, or a photo already stored, costs no upload bytes.
pub(super) async fn patch_blob(
    State(state): State<AppState>,
    Caller(claims): Caller,
    Path(sha256): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let response = match patch(&state, &claims, &sha256, &headers, body).await {
        Ok(response) => response,
        Err(response) => response,
    };
    let outcome = match response.status() {
        StatusCode::NO_CONTENT => "stored",
        StatusCode::OK => match response.extensions().get::<Deduplicated>() {
            Some(_) => "deduplicated",
            None => "complete",
        },
        _ => response
            .extensions()
            .get::<ErrorCode>()
            .map_or("error", |code| code.0),
    };
    crate::metrics::Metrics::blob(&state.metrics.blob_patches, outcome);
    response
}

async fn patch(
    state: &AppState,
    claims: &crate::auth::Claims,
    sha256: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    let api = |error: ApiError| error.into_response();
    check_name(sha256).map_err(api)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with(OFFSET_OCTET_STREAM) {
        return Err(api(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected_offset_octet_stream",
            format!("a chunk is sent as Content-Type: {OFFSET_OCTET_STREAM}"),
        )));
    }
    let offset = header_number(headers, UPLOAD_OFFSET)
        .map_err(api)?
        .ok_or_else(|| {
            api(invalid(
                "invalid_upload_header",
                "Upload-Offset is required",
            ))
        })?;
    let length = header_number(headers, UPLOAD_LENGTH)
        .map_err(api)?
        .ok_or_else(|| {
            api(invalid(
                "invalid_upload_header",
                "Upload-Length is required",
            ))
        })?;
    let chunk_length = header_number(headers, header::CONTENT_LENGTH.as_str())
        .map_err(api)?
        .ok_or_else(|| {
            api(ApiError::new(
                StatusCode::LENGTH_REQUIRED,
                "length_required",
                "send each chunk with a Content-Length",
            ))
        })?;
    let who = uploader(state, claims).await.map_err(api)?;
    let span = tracing::info_span!("blob", sha = crate::blobs::short(sha256), user = %who.user, device = %who.device);
    let _entered = span.enter();
    let blobs = &state.blobs;
    let checked = blobs
        .check_chunk(sha256, &who, offset, length, chunk_length)
        .await
        .map_err(blob_error)?;
    let outcome = match checked {
        Some(done) => done,
        None => {
            let limit = usize::try_from(blobs.settings.max_chunk).unwrap_or(usize::MAX);
            // A cut connection ends here: nothing of this chunk is stored.
            let chunk = axum::body::to_bytes(body, limit).await.map_err(|error| {
                tracing::debug!(%error, "chunk body not received");
                api(invalid(
                    "chunk_incomplete",
                    "the chunk's body did not arrive whole",
                ))
            })?;
            blobs
                .put_chunk(sha256, &who, offset, length, &chunk, now_ms())
                .await
                .map_err(blob_error)?
        }
    };
    Ok(match outcome {
        ChunkOutcome::Partial {
            received,
            expires_at,
        } => {
            tracing::debug!(received, "chunk stored");
            (
                StatusCode::NO_CONTENT,
                [
                    (UPLOAD_OFFSET, HeaderValue::from(received)),
                    (UPLOAD_COMPLETE, HeaderValue::from_static("?0")),
                    (
                        UPLOAD_EXPIRES,
                        HeaderValue::from_str(&http_date(expires_at))
                            .unwrap_or(HeaderValue::from_static("")),
                    ),
                ],
            )
                .into_response()
        }
        ChunkOutcome::Complete { blob, deduplicated } => {
            let body = json!({
                "sha256": blob.sha256,
                "size": blob.size,
                "format": blob.format,
                "width": blob.width,
                "height": blob.height,
                "deduplicated": deduplicated,
            });
            let mut response =
                (StatusCode::OK, complete_headers(&blob), axum::Json(body)).into_response();
            if deduplicated {
                response.extensions_mut().insert(Deduplicated);
            }
            response
        }
    })
}

/// `DELETE /v1/blobs/{sha256}`: abandons this device's half upload (never a stored
/// photo: removing those is garbage collection's job).
pub(super) async fn delete_upload(
    State(state): State<AppState>,
    Caller(claims): Caller,
    Path(sha256): Path<String>,
) -> Result<StatusCode, ApiError> {
    check_name(&sha256)?;
    let who = uploader(&state, &claims).await?;
    if state.blobs.abandon(&sha256, &who.device).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(BlobError::NotFound.into())
    }
}

/// `GET /v1/blobs/{sha256}/{variant}` (`display` or `thumb`): the derivative, only for a
/// user who may see a case referencing the photo. A photo out of scope is not told
/// apart from one that does not exist (404), like a case.
pub(super) async fn get_derivative(
    State(state): State<AppState>,
    Caller(claims): Caller,
    Path((sha256, variant)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let response = derivative(&state, &claims, &sha256, &variant, &headers)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    let outcome = match response.status() {
        StatusCode::OK => "served",
        StatusCode::PARTIAL_CONTENT => "partial",
        StatusCode::NOT_MODIFIED => "not_modified",
        StatusCode::RANGE_NOT_SATISFIABLE => "range_not_satisfiable",
        _ => response
            .extensions()
            .get::<ErrorCode>()
            .map_or("error", |code| code.0),
    };
    crate::metrics::Metrics::blob(&state.metrics.blob_fetches, outcome);
    response
}

async fn derivative(
    state: &AppState,
    claims: &crate::auth::Claims,
    sha256: &str,
    variant: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let user = current_user(state, claims).await?;
    if !VARIANTS.contains(&variant) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no variant {variant:?}: display or thumb"),
        ));
    }
    check_name(sha256)?;
    let scope = user.sync_scope();
    let mut visible = false;
    for id in state
        .store
        .cases_with_photo(sha256)
        .await?
        .iter()
        .take(MAX_CASES_PER_PHOTO)
    {
        if let Some(row) = state.store.case_row(id).await?
            && scope.may_receive(DocKind::Case, &super::cases::meta_of(&row))
        {
            visible = true;
            break;
        }
    }
    if !visible {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "photo_not_found",
            "no photo by this name in a case you may see",
        ));
    }
    let derivative = state
        .store
        .derivative(sha256, variant)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "photo_not_uploaded",
                "the case names this photo, but it has not been uploaded (or was refused)",
            )
        })?;
    let etag = format!("\"{}\"", derivative.etag);
    let common = [
        (header::ETAG, etag.clone()),
        // `private`: the answer depends on who asks. The bytes of a name never change.
        (
            header::CACHE_CONTROL,
            "private, max-age=31536000, immutable".to_owned(),
        ),
        (header::ACCEPT_RANGES, "bytes".to_owned()),
    ];
    let header_text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(tags) = header_text(header::IF_NONE_MATCH)
        && tags
            .split(',')
            .any(|t| t.trim() == "*" || t.trim().trim_start_matches("W/") == etag)
    {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    let len = derivative.bytes.len() as u64;
    let range = match header_text(header::IF_RANGE) {
        Some(tag) if tag.trim() != etag => RangeAnswer::Full,
        _ => crate::blobs::byte_range(header_text(header::RANGE), len),
    };
    let fixed = [
        (header::CONTENT_TYPE, "image/jpeg".to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{}-{variant}.jpg\"", &sha256[..12]),
        ),
    ];
    Ok(match range {
        RangeAnswer::Full => (StatusCode::OK, common, fixed, derivative.bytes).into_response(),
        RangeAnswer::Partial { start, end } => {
            let slice = derivative.bytes
                [usize::try_from(start).unwrap_or(0)..=usize::try_from(end).unwrap_or(0)]
                .to_vec();
            (
                StatusCode::PARTIAL_CONTENT,
                common,
                fixed,
                [(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))],
                slice,
            )
                .into_response()
        }
        RangeAnswer::Unsatisfiable => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            common,
            [(header::CONTENT_RANGE, format!("bytes */{len}"))],
        )
            .into_response(),
    })
}
