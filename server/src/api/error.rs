//! The API's one error type: a status, a stable code (the enum of the `Error` schema
//! in `/openapi.json`, checked by `tests/tests/openapi.rs`) and a message, as JSON
//! `{"error": {"code", "message"}}`; the domain errors' mappings to it.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;
use crate::store::StoreError;
use crate::writes::WriteError;

/// An error response: a status and a stable code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    pub(super) code: &'static str,
    message: String,
    /// Seconds for a `Retry-After` header.
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error with more said at the end of its message.
    pub(crate) fn with_message_suffix(mut self, more: &str) -> ApiError {
        self.message.push_str(more);
        self
    }

    pub(crate) fn retry_after(mut self, seconds: u64) -> ApiError {
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
            AuthError::Store(_) => {
                // The database is busy or down (a pool timeout under load): the
                // client retries, as for any other storage failure.
                tracing::error!(%error, "auth failed: storage");
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the database is not available",
                );
            }
            AuthError::Internal(_) => {
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

impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> ApiError {
        match error {
            WriteError::Store(error) => error.into(),
            WriteError::Corrupt { id } => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "corrupt_document",
                format!("the stored document {id} does not load"),
            ),
        }
    }
}

pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

pub(super) async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this endpoint does not take {method}: see /openapi.json"),
    )
}

pub(super) fn sync_error(error: wangge_sync_core::sync::server::SyncError) -> ApiError {
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
