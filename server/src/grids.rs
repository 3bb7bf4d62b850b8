//! The unit grids the server knows: stored as GeoJSON Features in the database, held
//! in memory as a [`GridIndex`] for locating points and answering map requests.

use wangge_sync_core::grid::geojson::{GeoJsonError, grid_feature, read_grids};
use wangge_sync_core::grid::{GridIndex, GridSet};

use crate::store::{Store, StoreError, StoredGrid};

/// Why the grids could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum GridsError {
    /// Reading them from the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored features do not form a valid grid set.
    #[error("the stored grids are invalid: {0}")]
    Invalid(#[from] GeoJsonError),
    /// The index could not be built.
    #[error("building the grid index: {0}")]
    Index(String),
}

/// The rows to store for a grid set (one Feature per unit grid).
pub fn to_stored(set: &GridSet) -> Result<Vec<StoredGrid>, GeoJsonError> {
    set.grids()
        .iter()
        .map(|grid| {
            let feature = grid_feature(set, grid)?;
            Ok(StoredGrid {
                code: grid.code.to_string(),
                feature: serde_json::to_string(&feature)
                    .map_err(|e| GeoJsonError::Write(e.to_string()))?,
            })
        })
        .collect()
}

/// Loads the stored grids into an index; `None` when none are stored.
pub async fn load(store: &dyn Store) -> Result<Option<GridIndex>, GridsError> {
    let stored = store.grids().await?;
    if stored.is_empty() {
        return Ok(None);
    }
    // Reassembled into one FeatureCollection, read with the same validation as a file.
    let mut collection = String::from(r#"{"type":"FeatureCollection","features":["#);
    for (i, grid) in stored.iter().enumerate() {
        if i > 0 {
            collection.push(',');
        }
        collection.push_str(&grid.feature);
    }
    collection.push_str("]}");
    let set = read_grids(collection.as_bytes())?;
    let index = GridIndex::build(set).map_err(|e| GridsError::Index(e.to_string()))?;
    Ok(Some(index))
}
