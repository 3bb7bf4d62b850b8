//! The unit grids the server knows: stored as GeoJSON Features in the database, held
//! in memory as a [`GridIndex`] for locating points and answering map requests.

use wangge_sync_core::grid::geojson::{GeoJsonError, GridSetReader, grid_feature};
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

/// How many stored grids are read per page when loading.
const PAGE: u32 = 10_000;

/// Loads the stored grids into an index; `None` when none are stored. Reads them a
/// page at a time, parsing each Feature as it comes, so the peak is one page of text.
pub async fn load(store: &dyn Store) -> Result<Option<GridIndex>, GridsError> {
    let mut reader = GridSetReader::default();
    let mut after: Option<String> = None;
    loop {
        let page = store.grids_page(after.as_deref(), PAGE).await?;
        for grid in &page {
            reader.push_json(grid.feature.as_bytes())?;
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(last.code.clone()),
            _ => break,
        }
    }
    if reader.is_empty() {
        return Ok(None);
    }
    let index = GridIndex::build(reader.finish()?).map_err(|e| GridsError::Index(e.to_string()))?;
    Ok(Some(index))
}
