//! `GET /v1/catalogue`: the catalogue this server routes and folds with (the
//! operator's `WANGGE_CATALOG` or the built-in one) for phones to check and show
//! offline, with the categories the ownership rules dispatch at once (urgent) and a
//! version. Every sync reply names the version (`X-Wangge-Catalogue`), so a phone
//! holding another fetches it after that sync.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use wangge_sync_core::catalog::Catalog;
use wangge_sync_core::ownership::{DispatchMode, Ownership};

use super::{ApiError, AppState, Caller};

/// The catalogue as served, made once per (catalogue, ownership rules).
#[derive(Debug)]
pub(crate) struct Served {
    /// SHA-256 of what the body carries besides itself, hex: the same on every node
    /// and across restarts while the files are unchanged, different otherwise.
    pub version: String,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// Both are loaded once per process (`CaseRules`), so the served form is made
/// once: a sync round names its version without serializing the catalogue. Keyed
/// by address; the entry holds the ownership rules, so an address is never reused
/// while it is a key (the catalogue is `'static`).
type Made = (usize, Arc<Ownership>, Arc<Served>);
static MADE: Mutex<Vec<Made>> = Mutex::new(Vec::new());

/// The served catalogue of this server's rules.
pub(crate) fn served(catalog: &'static Catalog, ownership: &Arc<Ownership>) -> Arc<Served> {
    let key = std::ptr::from_ref(catalog) as usize;
    let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, _, served)) = made
        .iter()
        .find(|(k, o, _)| *k == key && Arc::ptr_eq(o, ownership))
    {
        return served.clone();
    }
    let urgent: Vec<String> = catalog
        .categories()
        .filter(|c| {
            // The city-wide rules (an area rule may still differ in its area).
            ownership
                .route(catalog, c.code, None, None)
                .is_ok_and(|r| r.dispatch == DispatchMode::Auto)
        })
        .map(|c| c.code.to_string())
        .collect();
    let content = json!({ "catalogue": catalog, "urgent": urgent });
    let version = hex(&Sha256::digest(content.to_string().as_bytes()));
    let body = json!({
        "version": version,
        "catalogue": content["catalogue"],
        "urgent": content["urgent"],
    })
    .to_string()
    .into_bytes();
    let served = Arc::new(Served { version, body });
    made.push((key, ownership.clone(), served.clone()));
    served
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /v1/catalogue`.
pub(super) async fn catalogue(
    State(state): State<AppState>,
    Caller(_claims): Caller,
) -> Result<Response, ApiError> {
    let served = served(state.sync.rules.catalog, &state.sync.rules.ownership);
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::ETAG, format!("\"{}\"", served.version)),
        ],
        served.body.clone(),
    )
        .into_response())
}
