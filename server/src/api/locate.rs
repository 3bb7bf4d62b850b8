//! Where things are: `GET /v1/grids/locate`, `GET /v1/grids` (a map's bounding box),
//! `GET /v1/grids/mine` (the phone's offline grids), `GET /v1/routing` (where a case
//! of a category at a point would go).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use wangge_sync_core::catalog::CategoryCode;
use wangge_sync_core::geo::{Crs, LonLat};
use wangge_sync_core::grid::geojson::index_feature;
use wangge_sync_core::grid::{GridCode, GridIndex};
use wangge_sync_core::ownership::{Decision, DispatchMode, responsible};

use super::{ApiError, AppState, Caller, QueryParams, bad_request, current_user};

/// The most unit grids one map request returns (about 4 km² of the city).
pub const MAX_GRIDS_PER_REQUEST: usize = 2_000;

fn grid_index(state: &AppState) -> Result<&GridIndex, ApiError> {
    state.grids.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_grids",
            "no unit grids are loaded: import them with `wangge grid import` and restart",
        )
    })
}

/// `GET /v1/grids/locate?lon=&lat=&crs=`.
#[derive(Debug, Deserialize)]
pub(super) struct LocateQuery {
    lon: f64,
    lat: f64,
    /// `wgs84` (a phone's GPS, the default), `gcj02` or `bd09`.
    #[serde(default)]
    crs: Option<String>,
}

pub(super) async fn locate(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(query): QueryParams<LocateQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let index = grid_index(&state)?;
    let crs = parse_crs(query.crs.as_deref())?;
    let point = LonLat::new(query.lon, query.lat)
        .map_err(|e| bad_request("invalid_query", e.to_string()))?;
    let described = index
        .locate(point, crs)
        .and_then(|code| index.describe(code));
    match described {
        Some(description) => Ok(Json(json!({ "grid": description }))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "outside_grids",
            format!("({}, {}) is outside every unit grid", query.lon, query.lat),
        )),
    }
}

/// `GET /v1/grids?bbox=minLon,minLat,maxLon,maxLat` (GCJ-02, like the grids).
#[derive(Debug, Deserialize)]
pub(super) struct BboxQuery {
    bbox: String,
}

pub(super) async fn grids_in_bbox(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(query): QueryParams<BboxQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let index = grid_index(&state)?;
    let (min, max) = parse_bbox(&query.bbox)?;
    let codes = index.codes_in_bbox(min, max);
    if codes.len() > MAX_GRIDS_PER_REQUEST {
        return Err(bad_request(
            "bbox_too_large",
            format!(
                "{} unit grids in this bbox; ask for at most {MAX_GRIDS_PER_REQUEST}",
                codes.len()
            ),
        ));
    }
    feature_collection(index, codes)
}

/// `minLon,minLat,maxLon,maxLat` (GCJ-02) as its two corners.
fn parse_bbox(text: &str) -> Result<(LonLat, LonLat), ApiError> {
    let numbers: Vec<f64> = text
        .split(',')
        .map(|part| part.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad_request("invalid_query", "bbox must be four numbers"))?;
    let [min_lon, min_lat, max_lon, max_lat] = numbers[..] else {
        return Err(bad_request(
            "invalid_query",
            "bbox must be minLon,minLat,maxLon,maxLat",
        ));
    };
    let corner = |lon, lat| {
        LonLat::new(lon, lat).map_err(|e| bad_request("invalid_query", format!("bbox: {e}")))
    };
    let (min, max) = (corner(min_lon, min_lat)?, corner(max_lon, max_lat)?);
    if !(min_lon <= max_lon && min_lat <= max_lat) {
        return Err(bad_request(
            "invalid_query",
            "bbox minimums must not exceed its maximums",
        ));
    }
    Ok((min, max))
}

/// The most areas one `GET /v1/grids/outlines` returns (a district's communities).
pub const MAX_AREAS_PER_REQUEST: usize = 600;

/// `GET /v1/grids/outlines?level=&bbox=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OutlinesQuery {
    /// `district`, `street` or `community`.
    level: String,
    bbox: String,
}

/// `GET /v1/grids/outlines`: the outlines of the districts, streets or communities
/// with a unit grid in the box (GCJ-02), for a map too far out to draw unit grids;
/// each the union of its grids (`crate::grids::Outlines`, computed once).
pub(super) async fn outlines(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(query): QueryParams<OutlinesQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let index = grid_index(&state)?;
    let digits = match query.level.as_str() {
        "district" => 6,
        "street" => 9,
        "community" => 12,
        other => {
            return Err(bad_request(
                "invalid_query",
                format!("level {other:?}: district, street or community"),
            ));
        }
    };
    let (min, max) = parse_bbox(&query.bbox)?;
    // One grid per area (codes are sorted, so an area's grids are adjacent): it names
    // the area.
    let mut areas: Vec<(String, GridCode)> = Vec::new();
    for code in index.codes_in_bbox(min, max) {
        let text = code.to_string();
        let area = &text[..digits];
        if areas.last().is_none_or(|(last, _)| last != area) {
            areas.push((area.to_owned(), code));
        }
    }
    if areas.len() > MAX_AREAS_PER_REQUEST {
        return Err(bad_request(
            "bbox_too_large",
            format!(
                "{} areas in this bbox; ask for at most {MAX_AREAS_PER_REQUEST}",
                areas.len()
            ),
        ));
    }
    let (Some(index), outlines) = (state.grids.clone(), std::sync::Arc::clone(&state.outlines))
    else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_grids",
            "no unit grids are loaded",
        ));
    };
    let level = query.level;
    // Unions are CPU work: off the async workers.
    let features = tokio::task::spawn_blocking(move || {
        areas
            .iter()
            .filter_map(|(area, grid)| {
                let geometry = outlines.get(&index, area)?;
                let d = index.describe(*grid)?;
                let name = match digits {
                    6 => d.district_name,
                    9 => d.street_name,
                    _ => d.community_name,
                };
                Some(json!({
                    "type": "Feature",
                    "geometry": &*geometry,
                    "properties": { "code": area, "name": name, "level": level },
                }))
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| {
        tracing::error!(%e, "outlines");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    })?;
    Ok(Json(
        json!({ "type": "FeatureCollection", "features": features }),
    ))
}

/// The unit grids `codes` as a GeoJSON FeatureCollection.
fn feature_collection(
    index: &GridIndex,
    codes: Vec<GridCode>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut features = Vec::with_capacity(codes.len());
    for code in codes {
        if let Some(feature) = index_feature(index, code).map_err(|e| {
            tracing::error!(%e, "grid feature");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        })? {
            features.push(feature);
        }
    }
    Ok(Json(
        json!({ "type": "FeatureCollection", "features": features }),
    ))
}

/// `GET /v1/grids/mine`: the unit grids of the caller's scope, as GeoJSON (GCJ-02),
/// for the phone to cache and locate offline. A scope of more than
/// [`MAX_GRIDS_PER_REQUEST`] grids (a district or the city) is refused: such users
/// browse by bbox, and the server locates their reports anyway.
pub(super) async fn grids_mine(
    State(state): State<AppState>,
    Caller(claims): Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let index = grid_index(&state)?;
    let user = current_user(&state, &claims).await?;
    let whole =
        |lon, lat| LonLat::new(lon, lat).map_err(|e| bad_request("invalid_query", e.to_string()));
    let codes: Vec<GridCode> = index
        .codes_in_bbox(whole(-180.0, -90.0)?, whole(180.0, 90.0)?)
        .into_iter()
        .filter(|code| user.scope.covers(Some(code)))
        .collect();
    if codes.len() > MAX_GRIDS_PER_REQUEST {
        return Err(bad_request(
            "scope_too_large",
            format!(
                "{} unit grids in your scope; ask by bbox (at most {MAX_GRIDS_PER_REQUEST})",
                codes.len()
            ),
        ));
    }
    feature_collection(index, codes)
}

fn parse_crs(crs: Option<&str>) -> Result<Crs, ApiError> {
    match crs.unwrap_or("wgs84") {
        "wgs84" => Ok(Crs::Wgs84),
        "gcj02" => Ok(Crs::Gcj02),
        "bd09" => Ok(Crs::Bd09),
        other => Err(bad_request(
            "invalid_query",
            format!("unknown crs {other:?}: use wgs84, gcj02 or bd09"),
        )),
    }
}

/// `GET /v1/routing?category=&lon=&lat=&crs=`: where a case of this category at this
/// point would go — the grid, the team, automatic or queued dispatch, why, and the
/// responsible people. What the server will apply to every new case.
#[derive(Debug, Deserialize)]
pub(super) struct RoutingQuery {
    category: String,
    lon: f64,
    lat: f64,
    #[serde(default)]
    crs: Option<String>,
}

pub(super) async fn routing(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(query): QueryParams<RoutingQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let index = grid_index(&state)?;
    let category: CategoryCode = query
        .category
        .parse()
        .map_err(|e| bad_request("invalid_query", format!("category: {e}")))?;
    let crs = parse_crs(query.crs.as_deref())?;
    let point = LonLat::new(query.lon, query.lat)
        .map_err(|e| bad_request("invalid_query", e.to_string()))?;
    let gcj02 = point.to_gcj02(crs);
    let grid = index.locate_gcj02(gcj02);
    let catalog = state.sync.rules.catalog;
    let routing = state
        .ownership
        .route(catalog, category, grid, Some(gcj02))
        .map_err(|e| bad_request("unknown_category", e.to_string()))?;
    let people = match grid {
        Some(g) => {
            let postings = crate::cases::postings_of(state.store.users_covering(&g).await?);
            Some(responsible(&postings, &routing.team, g))
        }
        None => None,
    };
    let team_name = catalog
        .team(routing.team.as_str())
        .map(|t| t.name_zh.clone());
    Ok(Json(json!({
        "grid": grid.and_then(|g| index.describe(g)),
        "team": routing.team.as_str(),
        "team_name_zh": team_name,
        "dispatch": match routing.dispatch {
            DispatchMode::Auto => "auto",
            DispatchMode::Queue => "queue",
        },
        "decided_by": match &routing.decided_by {
            Decision::Override(name) => json!({ "override": name }),
            Decision::Rule(index) => json!({ "rule": index + 1 }),
            Decision::CatalogDefault => json!("catalog_default"),
        },
        "responsible": people.map(|p| json!({
            "handlers": p.handlers,
            "grid_leaders": p.grid_leaders,
            "supervisors": p.supervisors,
        })),
    })))
}
