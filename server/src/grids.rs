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

/// The outlines of districts, streets and communities as GeoJSON geometries, computed
/// once per area on first request: the grid set does not store them, a union costs
/// milliseconds to tenths of a second, and a map asks for the same areas again and
/// again. A community is the union of its unit grids (`GridIndex::outline_under`); a
/// street the union of its communities', a district of its streets' (a few dozen
/// polygons instead of tens of thousands of grids). Bounded by the number of areas of
/// the loaded grids (a city: some thousands).
#[derive(Debug, Default)]
pub struct Outlines {
    cache: std::sync::Mutex<std::collections::HashMap<String, Area>>,
}

/// One area's outline, as geometry (for its parent's union) and as GeoJSON.
#[derive(Debug, Clone)]
struct Area {
    outline: std::sync::Arc<wangge_sync_core::grid::Outline>,
    geojson: std::sync::Arc<serde_json::Value>,
}

impl Outlines {
    /// The outline of the area `code` (6, 9 or 12 digits) as a GeoJSON geometry, or
    /// `None` if no grid is under it. Runs the unions on the caller's thread: call it
    /// from a blocking task.
    pub fn get(&self, index: &GridIndex, code: &str) -> Option<std::sync::Arc<serde_json::Value>> {
        self.area(index, code).map(|a| a.geojson)
    }

    fn area(&self, index: &GridIndex, code: &str) -> Option<Area> {
        if let Some(found) = self.cache.lock().ok()?.get(code) {
            return Some(found.clone());
        }
        let outline = match code.len() {
            6 | 9 => {
                let child = if code.len() == 6 { 9 } else { 12 };
                let mut children: Vec<String> = index
                    .codes_under(code)
                    .iter()
                    .map(|c| c.to_string()[..child].to_owned())
                    .collect();
                children.dedup();
                let parts: Vec<Area> = children
                    .iter()
                    .filter_map(|c| self.area(index, c))
                    .collect();
                let parts: Vec<&wangge_sync_core::grid::Outline> =
                    parts.iter().map(|a| a.outline.as_ref()).collect();
                if parts.is_empty() {
                    return None;
                }
                GridIndex::union_of(&parts)
            }
            _ => index.outline_under(code)?,
        };
        let geometry = geojson::Geometry::new(geojson::GeometryValue::from(&outline));
        let area = Area {
            outline: std::sync::Arc::new(outline),
            geojson: std::sync::Arc::new(serde_json::to_value(geometry).ok()?),
        };
        // Two requests may compute the same area at once: the same answer, kept once.
        self.cache
            .lock()
            .ok()?
            .insert(code.to_owned(), area.clone());
        Some(area)
    }
}
