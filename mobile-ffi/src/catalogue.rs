//! The operator's catalogue on the phone: `GET /v1/catalogue` (the categories, teams
//! and time limits the server routes and folds with, which categories its ownership
//! rules dispatch at once, and a version), cached in the store. Every sync reply
//! names the server's version (`X-Wangge-Catalogue`); a phone holding another
//! fetches it again after that sync, so an operator's change reaches each phone at
//! its next sync. Until the first fetch the phone uses the built-in catalogue, the
//! one a server without `WANGGE_CATALOG` serves.

use std::collections::BTreeSet;

use wangge_sync_core::catalog::Catalog;
use wangge_sync_core::ownership::{DispatchMode, Ownership};

/// A catalogue as the phone holds it.
#[derive(Debug, Clone)]
pub struct Served {
    /// The server's version; `None` for the built-in catalogue before any fetch.
    pub version: Option<String>,
    /// The categories, teams and limits.
    pub catalog: Catalog,
    /// The categories dispatched at once (`C0102`, …).
    pub urgent: BTreeSet<String>,
}

impl Served {
    /// The built-in catalogue with the built-in ownership rules' urgent categories.
    pub fn builtin() -> Served {
        let catalog = Catalog::builtin().clone();
        let urgent = Ownership::builtin(&catalog)
            .map(|ownership| {
                catalog
                    .categories()
                    .filter(|c| {
                        ownership
                            .route(&catalog, c.code, None, None)
                            .is_ok_and(|r| r.dispatch == DispatchMode::Auto)
                    })
                    .map(|c| c.code.to_string())
                    .collect()
            })
            .unwrap_or_default();
        Served {
            version: None,
            catalog,
            urgent,
        }
    }
}

/// Reads the body of `GET /v1/catalogue`, checked exactly as the server checks an
/// operator's file (`Catalog`'s deserializer validates).
pub fn parse(body: &[u8]) -> Result<Served, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let version = value["version"]
        .as_str()
        .filter(|v| !v.is_empty())
        .ok_or("no version")?
        .to_owned();
    let catalog: Catalog = serde_json::from_value(value["catalogue"].clone())
        .map_err(|e| format!("the catalogue is invalid: {e}"))?;
    let urgent = value["urgent"]
        .as_array()
        .ok_or("no urgent list")?
        .iter()
        .map(|code| {
            code.as_str()
                .map(str::to_owned)
                .ok_or("an urgent code is not text")
        })
        .collect::<Result<BTreeSet<String>, _>>()?;
    Ok(Served {
        version: Some(version),
        catalog,
        urgent,
    })
}
