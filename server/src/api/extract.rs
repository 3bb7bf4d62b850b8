//! The extractors every handler takes: a JSON body and query parameters whose
//! rejections are our errors, the caller from the bearer token (or the console's
//! session cookie), and the caller's
//! account as it is now.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::{ApiError, AppState};
use crate::auth::Claims;

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

/// The caller, from a valid `Authorization: Bearer` access token, or — where no
/// `Authorization` header is sent — from the console's session cookie, which passes
/// the console's CSRF and origin checks first (`api/console.rs`).
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = match parts.headers.get(axum::http::header::AUTHORIZATION) {
            Some(header) => header
                .to_str()
                .ok()
                .and_then(|h| h.strip_prefix("Bearer "))
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthenticated",
                        "expected a Bearer token",
                    )
                })?,
            None => {
                let cookie = super::console::cookie(&parts.headers, super::console::SESSION_COOKIE)
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            "unauthenticated",
                            "missing Authorization: Bearer token",
                        )
                    })?;
                super::console::check_cookie_request(&parts.method, &parts.uri, &parts.headers)?;
                cookie
            }
        };
        let claims = state
            .auth
            .verify(token.trim(), crate::writes::now_ms())
            .await?;
        Ok(Caller(claims))
    }
}

/// The caller's account as it is now (not as the token says): its posting may have
/// changed since the token was issued; a disabled account gets 403.
pub(crate) async fn current_user(
    state: &AppState,
    claims: &Claims,
) -> Result<crate::store::User, ApiError> {
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
