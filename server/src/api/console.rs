//! The command centre's web console over HTTP (docs/console.md): `GET /` and
//! `GET /console/{*file}` (the files embedded by `crate::console`, under a strict
//! Content-Security-Policy), and the browser's session at `/v1/console/session`.
//!
//! A browser holds its session in cookies no script can read (`HttpOnly`,
//! `SameSite=Strict`): the same JWT access token a phone gets (`wangge_session`), the
//! refresh token (`wangge_refresh`, sent to the session path only), the registered
//! device (`wangge_device`, so that logging in again reuses it) and a CSRF token
//! (`wangge_csrf`). The API's `Caller` takes the session cookie where no
//! `Authorization` header is sent; then every unsafe request must carry the CSRF
//! token in `X-Wangge-Csrf` (the console gets it from `GET /v1/console/session`, a
//! same-origin answer another site cannot read), and a request whose `Origin` names
//! another site is refused. The server stays the judge of everything else: the console
//! only calls the API.

use std::sync::LazyLock;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{ApiError, AppState, Caller, JsonBody, current_user};
use crate::auth::{AuthError, Session};
use crate::console::{ASSETS, Asset, asset};
use crate::writes::now_ms;

/// The access token (the API's JWT).
pub(crate) const SESSION_COOKIE: &str = "wangge_session";
/// The refresh token; sent to [`SESSION_PATH`] only.
const REFRESH_COOKIE: &str = "wangge_refresh";
/// The browser's registered device; sent to [`SESSION_PATH`] only.
const DEVICE_COOKIE: &str = "wangge_device";
/// The CSRF token the unsafe requests repeat in [`CSRF_HEADER`].
pub(crate) const CSRF_COOKIE: &str = "wangge_csrf";
/// The header carrying the CSRF token.
pub(crate) const CSRF_HEADER: &str = "x-wangge-csrf";
/// Where the session is opened, refreshed and closed.
const SESSION_PATH: &str = "/v1/console/session";
/// How long the browser keeps its device id (a year): logging in again on the same
/// browser reuses the device instead of registering one per login.
const DEVICE_COOKIE_SECONDS: i64 = 365 * 24 * 3600;

/// The value of cookie `name`, if the request carries it.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

fn csrf_failed(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "csrf_failed", message)
}

/// A request authenticated by the session cookie may come from this site only: an
/// `Origin` naming another host is refused (this covers the push WebSocket, whose
/// handshake is a GET), and an unsafe method must repeat the CSRF cookie in
/// `X-Wangge-Csrf`. `SameSite=Strict` already keeps other sites' requests from
/// carrying the cookie; this holds where a browser does not honour it.
pub(crate) fn check_cookie_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    same_origin(uri, headers)?;
    if method.is_safe() {
        return Ok(());
    }
    let expected = cookie(headers, CSRF_COOKIE)
        .ok_or_else(|| csrf_failed("the session has no CSRF token: log in again"))?;
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            csrf_failed("a request with the session cookie must send its X-Wangge-Csrf header")
        })?;
    if !same_secret(expected.as_bytes(), sent.as_bytes()) {
        return Err(csrf_failed(
            "X-Wangge-Csrf does not match the session's CSRF token",
        ));
    }
    Ok(())
}

/// `Origin`, when the browser sends it, must be this server (the `Host` it was asked
/// for, or the URI's authority on HTTP/2).
fn same_origin(uri: &Uri, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, host)| host.trim_end_matches('/'));
    match (origin_host, host) {
        (Some(from), Some(to)) if from.eq_ignore_ascii_case(to) => Ok(()),
        _ => Err(csrf_failed(format!(
            "the request comes from another site ({})",
            String::from_utf8_lossy(origin.as_bytes())
        ))),
    }
}

/// Equal, in time that does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `Set-Cookie` for `name`: never readable by script, never sent by another site.
/// `max_age` `None` is a browser-session cookie (closing the browser logs out);
/// `Some(0)` deletes it.
fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<i64>,
    secure: bool,
) -> HeaderValue {
    let mut text = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(seconds) = max_age {
        text.push_str(&format!("; Max-Age={seconds}"));
    }
    if secure {
        text.push_str("; Secure");
    }
    // Tokens are base64url, JWTs and UUIDs: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether cookies get `Secure`: the server speaks HTTPS, or a proxy in front says the
/// browser did (adding `Secure` only ever narrows where a cookie goes).
fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.console.https
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Each asset's ETag (its SHA-256), computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let digest = Sha256::digest(a.bytes);
            format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..16]))
        })
        .collect()
});

fn serve_asset(state: &AppState, headers: &HeaderMap, file: &'static Asset) -> Response {
    let index = ASSETS
        .iter()
        .position(|a| std::ptr::eq(a, file))
        .unwrap_or(0);
    let etag = ETAGS.get(index).cloned().unwrap_or_default();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, file.content_type)], file.bytes).into_response()
    };
    let h = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, etag);
    }
    // Revalidated each time: a new binary serves new files at the same paths.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(policy) = HeaderValue::from_str(&state.console.content_security_policy()) {
        h.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /`: the console's page.
pub(super) async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match asset("index.html") {
        Some(file) => serve_asset(&state, &headers, file),
        None => not_embedded("index.html"),
    }
}

/// `GET /console/{*file}`: the console's scripts, styles and Leaflet.
pub(super) async fn file(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    match asset(&path) {
        Some(file) => serve_asset(&state, &headers, file),
        None => not_embedded(&path),
    }
}

fn not_embedded(path: &str) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("the console has no file {path:?}"),
    )
    .into_response()
}

/// `POST /v1/console/session` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginBody {
    user: String,
    password: String,
}

/// `POST /v1/console/session`: logs in with the same accounts as the phones (the same
/// throttle, device maximum and audit), registering the browser as a device (or
/// reusing the one its device cookie names), and sets the session cookies.
pub(super) async fn login(
    State(state): State<AppState>,
    client: Option<axum::Extension<crate::client_addr::ClientAddr>>,
    headers: HeaderMap,
    uri: Uri,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    // No CSRF token exists before a login; another site's form cannot send JSON
    // without a CORS preflight this server never grants, and its Origin is refused.
    same_origin(&uri, &headers)?;
    let peer = client.map(|axum::Extension(client)| client.0);
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("browser");
    let name: String = format!("控制台 console: {agent}")
        .chars()
        .take(30)
        .collect();
    let known = cookie(&headers, DEVICE_COOKIE);
    let now = now_ms();
    let session = match state
        .auth
        .login(&body.user, &body.password, known, &name, peer, now)
        .await
    {
        // The browser's device is another user's, revoked (logged out) or gone:
        // register a new one.
        Err(AuthError::DeviceNotYours | AuthError::DeviceRevoked | AuthError::Invalid(_))
            if known.is_some() =>
        {
            state
                .auth
                .login(&body.user, &body.password, None, &name, peer, now)
                .await?
        }
        other => other?,
    };
    let csrf = random_token();
    let body = session_json(&state, &session.user, Some(&csrf), session.expires_in);
    let secure = secure(&state, &headers);
    let mut response = Json(body).into_response();
    set_session_cookies(&mut response, &session, Some(&csrf), secure);
    Ok(response)
}

fn set_session_cookies(
    response: &mut Response,
    session: &Session,
    csrf: Option<&str>,
    secure: bool,
) {
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &session.access_token, "/", None, secure),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(
            REFRESH_COOKIE,
            &session.refresh_token,
            SESSION_PATH,
            None,
            secure,
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(
            DEVICE_COOKIE,
            &session.device.id,
            SESSION_PATH,
            Some(DEVICE_COOKIE_SECONDS),
            secure,
        ),
    );
    if let Some(csrf) = csrf {
        h.append(
            header::SET_COOKIE,
            set_cookie(CSRF_COOKIE, csrf, "/", None, secure),
        );
    }
}

/// What the console shows and offers: the account as it is now, what its role may do
/// (the server refuses the rest anyway), the CSRF token, the map's tiles.
fn session_json(
    state: &AppState,
    user: &crate::store::User,
    csrf: Option<&str>,
    expires_in: i64,
) -> Value {
    json!({
        "user": {
            "id": user.id,
            "display_name": user.display_name,
            "role": user.role.as_str(),
            "role_zh": user.role.name_zh(),
            "team": user.team.as_ref().map(ToString::to_string),
            "scope": user.scope.to_string(),
        },
        "may": {
            "review_patrol": wangge_sync_core::patrol::reviews(user.role),
            "own_patrol": user.role.is_field_worker(),
            "take_calls": user.role.answers_callers(),
            "assess": super::assessment::may_assess(user.role),
        },
        "csrf_token": csrf,
        "expires_in": expires_in,
        "tiles": state.console.tiles,
        "home": home(state, &user.scope),
    })
}

/// Where the console's map starts: the GCJ-02 box `[minLon, minLat, maxLon, maxLat]`
/// of the caller's grids (`null` if none is loaded). A city has fewer than a million
/// grids: one pass over their vertices per page load.
fn home(state: &AppState, scope: &wangge_sync_core::role::GridScope) -> Value {
    let Some(index) = state.grids.as_deref() else {
        return Value::Null;
    };
    let boxes: Vec<_> = scope
        .prefixes()
        .iter()
        .filter_map(|p| index.bounds_under(p))
        .collect();
    let Some(first) = boxes.first() else {
        return Value::Null;
    };
    let (mut min, mut max) = ([first.0.lon, first.0.lat], [first.1.lon, first.1.lat]);
    for (low, high) in &boxes {
        min = [min[0].min(low.lon), min[1].min(low.lat)];
        max = [max[0].max(high.lon), max[1].max(high.lat)];
    }
    json!([min[0], min[1], max[0], max[1]])
}

/// `GET /v1/console/session`: who is logged in (the cookie or a bearer token), and the
/// CSRF token the console repeats on unsafe requests.
pub(super) async fn show(
    State(state): State<AppState>,
    Caller(claims): Caller,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let user = current_user(&state, &claims).await?;
    let expires_in = (claims.exp - now_ms() / 1000).max(0);
    Ok(Json(session_json(
        &state,
        &user,
        cookie(&headers, CSRF_COOKIE),
        expires_in,
    )))
}

/// `POST /v1/console/session/refresh`: a fresh access token for the browser from its
/// refresh cookie (rotated, as for a phone: a replayed one revokes the login).
pub(super) async fn refresh(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_cookie_request(&method, &uri, &headers)?;
    let token = cookie(&headers, REFRESH_COOKIE).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "refresh_token_invalid",
            "no console session to refresh: log in",
        )
    })?;
    let session = state.auth.refresh(token, now_ms()).await?;
    let mut response = Json(json!({ "expires_in": session.expires_in })).into_response();
    set_session_cookies(&mut response, &session, None, secure(&state, &headers));
    Ok(response)
}

/// `DELETE /v1/console/session`: logs out: the browser's device is revoked (its
/// tokens stop working at once, on every node) and the cookies are deleted.
pub(super) async fn logout(
    State(state): State<AppState>,
    Caller(claims): Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    super::accounts::revoke_own_device(&state, &claims, "console.logout").await?;
    let secure = secure(&state, &headers);
    let mut response = StatusCode::NO_CONTENT.into_response();
    for (name, path) in [
        (SESSION_COOKIE, "/"),
        (CSRF_COOKIE, "/"),
        (REFRESH_COOKIE, SESSION_PATH),
        (DEVICE_COOKIE, SESSION_PATH),
    ] {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(name, "", path, Some(0), secure),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("value"));
        }
        map
    }

    #[test]
    fn cookies_are_read_by_name() {
        let h = headers(&[
            ("cookie", "a=1; wangge_session=tok.en.x"),
            ("cookie", "wangge_csrf=abc"),
        ]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok.en.x"));
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn unsafe_cookie_requests_need_the_csrf_header_and_this_origin() {
        let uri: Uri = "/v1/cases/x/actions".parse().expect("uri");
        let base = [("host", "127.0.0.1:8080"), ("cookie", "wangge_csrf=secret")];
        let get = headers(&base);
        assert!(check_cookie_request(&Method::GET, &uri, &get).is_ok());
        assert!(check_cookie_request(&Method::POST, &uri, &get).is_err());
        let mut good = base.to_vec();
        good.push((CSRF_HEADER, "secret"));
        good.push(("origin", "http://127.0.0.1:8080"));
        assert!(check_cookie_request(&Method::POST, &uri, &headers(&good)).is_ok());
        let mut wrong = base.to_vec();
        wrong.push((CSRF_HEADER, "secreT"));
        assert!(check_cookie_request(&Method::POST, &uri, &headers(&wrong)).is_err());
        let mut elsewhere = good.clone();
        elsewhere.pop();
        elsewhere.push(("origin", "https://evil.example"));
        assert!(check_cookie_request(&Method::GET, &uri, &headers(&elsewhere)).is_err());
        let set = set_cookie(SESSION_COOKIE, "t", "/", None, true);
        assert_eq!(
            set.to_str().expect("text"),
            "wangge_session=t; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
    }
}
