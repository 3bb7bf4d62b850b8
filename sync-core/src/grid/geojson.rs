//! GeoJSON import and export of grids (RFC 7946 FeatureCollection, GCJ-02 lon/lat).
//!
//! Each unit grid is one Feature whose geometry is a Polygon or MultiPolygon and whose
//! properties are a [`GridDescription`]: `code`, `district`, `district_name`, `street`,
//! `street_name`, `street_kind`, `community`, `community_name`, `level3`, `level3_name`.
//! District boundaries (the input of [`super::generate`]) are Features with `adcode`
//! and `name`. Import checks everything and names the feature (its index in
//! `features`, and its code when readable) in every error; nothing panics on input.
//! Coordinates are written with the shortest text that reads back to the same `f64`,
//! so export → import reproduces every vertex exactly (shared edges stay shared).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::io::Write;

use ::geo::{Area, Coord, LineString, MultiPolygon, Polygon, Validation};
use ::geojson::{Feature, FeatureWriter, Geometry, GeometryValue, JsonObject};

use super::{
    CodeError, DistrictCode, GridCode, GridDescription, GridIndex, GridSet, GridSetError,
    Hierarchy, UnitGrid,
};

/// Why a GeoJSON document was refused.
#[derive(Debug, thiserror::Error)]
pub enum GeoJsonError {
    #[error("malformed GeoJSON: {0}")]
    Malformed(String),
    #[error("feature #{index}{}: {problem}", code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Feature {
        index: usize,
        code: Option<String>,
        problem: Box<FeatureProblem>,
    },
    #[error(transparent)]
    Inconsistent(#[from] GridSetError),
    #[error("writing GeoJSON: {0}")]
    Write(String),
}

/// What is wrong with one feature.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureProblem {
    #[error("properties: {0}")]
    Properties(String),
    #[error(transparent)]
    Code(#[from] CodeError),
    #[error("property {property} is {found}, but the code says {expected}")]
    CodeMismatch {
        property: &'static str,
        found: String,
        expected: String,
    },
    #[error("has no geometry")]
    NoGeometry,
    #[error("geometry must be a Polygon or MultiPolygon, not a {0}")]
    NotAPolygon(&'static str),
    #[error("geometry is empty")]
    Empty,
    #[error("polygon {polygon} has no area (its vertices are collinear)")]
    NoArea { polygon: usize },
    #[error("ring {ring} position {position}: {reason}")]
    BadPosition {
        ring: usize,
        position: usize,
        reason: String,
    },
    #[error("ring {ring} is not closed (its last position must repeat its first)")]
    RingNotClosed { ring: usize },
    #[error("ring {ring} has {count} positions, a ring needs at least 4")]
    RingTooShort { ring: usize, count: usize },
    #[error("invalid polygon: {0}")]
    Invalid(String),
    #[error("{level} {code} is named {name:?} here but {first_name:?} in feature #{first_index}")]
    NameConflict {
        level: &'static str,
        code: String,
        name: String,
        first_name: String,
        first_index: usize,
    },
    #[error("code already used by feature #{first_index}")]
    Duplicate { first_index: usize },
}

/// A county-level boundary from the districts file (`adcode`, `name`, GCJ-02 geometry).
#[derive(Debug, Clone, PartialEq)]
pub struct DistrictBoundary {
    pub code: DistrictCode,
    pub name: String,
    pub geometry: MultiPolygon<f64>,
}

#[derive(serde::Deserialize)]
struct Collection {
    #[serde(rename = "type")]
    kind: String,
    features: Vec<Feature>,
}

fn parse_collection(bytes: &[u8]) -> Result<Vec<Feature>, GeoJsonError> {
    let collection: Collection =
        serde_json::from_slice(bytes).map_err(|e| GeoJsonError::Malformed(e.to_string()))?;
    if collection.kind != "FeatureCollection" {
        return Err(GeoJsonError::Malformed(format!(
            "expected a FeatureCollection, found type {:?}",
            collection.kind
        )));
    }
    Ok(collection.features)
}

/// Reads a grid FeatureCollection (as written by [`write_grids`]) into a checked set.
pub fn read_grids(bytes: &[u8]) -> Result<GridSet, GeoJsonError> {
    let mut reader = GridSetReader::default();
    for feature in parse_collection(bytes)? {
        reader.push(feature)?;
    }
    reader.finish()
}

/// Builds a checked grid set one Feature at a time, so that a caller holding the
/// Features elsewhere (a database, in pages) never has them all in memory at once.
/// Checks exactly what [`read_grids`] checks; errors count features from 0 in the order
/// they were given.
#[derive(Debug, Default)]
pub struct GridSetReader {
    hierarchy: Hierarchy,
    names: NameRegistry,
    first_index_of_code: BTreeMap<GridCode, usize>,
    grids: Vec<UnitGrid>,
}

impl GridSetReader {
    /// Adds one Feature given as JSON text.
    pub fn push_json(&mut self, json: &[u8]) -> Result<(), GeoJsonError> {
        let feature: Feature = serde_json::from_slice(json).map_err(|e| GeoJsonError::Feature {
            index: self.grids.len(),
            code: None,
            problem: Box::new(FeatureProblem::Properties(format!(
                "not a GeoJSON Feature: {e}"
            ))),
        })?;
        self.push(feature)
    }

    /// Adds one Feature.
    pub fn push(&mut self, feature: Feature) -> Result<(), GeoJsonError> {
        let index = self.grids.len();
        let code_hint = feature
            .properties
            .as_ref()
            .and_then(|p| p.get("code"))
            .and_then(|c| c.as_str())
            .map(str::to_owned);
        let fail = |problem: FeatureProblem| GeoJsonError::Feature {
            index,
            code: code_hint.clone(),
            problem: Box::new(problem),
        };
        let description = read_description(feature.properties).map_err(fail)?;
        if let Some(&first_index) = self.first_index_of_code.get(&description.code) {
            return Err(fail(FeatureProblem::Duplicate { first_index }));
        }
        self.first_index_of_code.insert(description.code, index);
        let geometry = read_polygons(feature.geometry.as_ref()).map_err(fail)?;
        self.names
            .record(index, &description, &mut self.hierarchy)
            .map_err(fail)?;
        self.grids.push(UnitGrid {
            code: description.code,
            level3: description.level3,
            geometry,
        });
        Ok(())
    }

    /// How many grids were added.
    pub fn len(&self) -> usize {
        self.grids.len()
    }

    /// Whether none were added.
    pub fn is_empty(&self) -> bool {
        self.grids.is_empty()
    }

    /// The checked set.
    pub fn finish(self) -> Result<GridSet, GeoJsonError> {
        Ok(GridSet::new(self.hierarchy, self.grids)?)
    }
}

/// Reads the districts file (`adcode`, `name` per feature) whose boundaries are cut into grids.
pub fn read_districts(bytes: &[u8]) -> Result<Vec<DistrictBoundary>, GeoJsonError> {
    #[derive(serde::Deserialize)]
    struct Properties {
        adcode: serde_json::Value,
        name: String,
    }
    let features = parse_collection(bytes)?;
    let mut seen = BTreeMap::new();
    let mut out = Vec::with_capacity(features.len());
    for (index, feature) in features.into_iter().enumerate() {
        let fail = |code: Option<String>, problem| GeoJsonError::Feature {
            index,
            code,
            problem: Box::new(problem),
        };
        let props: Properties = serde_json::from_value(serde_json::Value::Object(
            feature.properties.unwrap_or_default(),
        ))
        .map_err(|e| fail(None, FeatureProblem::Properties(e.to_string())))?;
        // cnmaps writes the adcode as a string; other sources use a number.
        let adcode = match &props.adcode {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let code: DistrictCode = adcode
            .parse()
            .map_err(|e: CodeError| fail(Some(adcode.clone()), e.into()))?;
        if props.name.trim().is_empty() {
            return Err(fail(
                Some(adcode),
                FeatureProblem::Properties("name is empty".into()),
            ));
        }
        if let Some(&first_index) = seen.get(&code) {
            return Err(fail(
                Some(adcode),
                FeatureProblem::Duplicate { first_index },
            ));
        }
        seen.insert(code, index);
        let geometry =
            read_polygons(feature.geometry.as_ref()).map_err(|p| fail(Some(adcode.clone()), p))?;
        out.push(DistrictBoundary {
            code,
            name: props.name,
            geometry,
        });
    }
    Ok(out)
}

/// Writes the set as a FeatureCollection, one Feature per unit grid, in code order.
pub fn write_grids<W: Write>(set: &GridSet, out: W) -> Result<(), GeoJsonError> {
    let write_err = |e: ::geojson::Error| GeoJsonError::Write(e.to_string());
    let mut writer = FeatureWriter::from_writer(out);
    for grid in set.grids() {
        writer
            .write_feature(&grid_feature(set, grid)?)
            .map_err(write_err)?;
    }
    writer.finish().map_err(write_err)?;
    writer.flush().map_err(write_err)
}

/// The Feature of one unit grid: its geometry and [`GridDescription`] properties.
pub fn grid_feature(set: &GridSet, grid: &UnitGrid) -> Result<Feature, GeoJsonError> {
    let description = set
        .describe(grid.code)
        .ok_or_else(|| GeoJsonError::Write(format!("unit grid {} is not in its set", grid.code)))?;
    feature(description, &grid.geometry)
}

/// The Feature of unit grid `code` of an index (what a map shows for a bounding box),
/// or `None` if the index has no such grid.
pub fn index_feature(index: &GridIndex, code: GridCode) -> Result<Option<Feature>, GeoJsonError> {
    match (index.describe(code), index.geometry(code)) {
        (Some(description), Some(geometry)) => feature(description, &geometry).map(Some),
        _ => Ok(None),
    }
}

fn feature(
    description: GridDescription,
    geometry: &MultiPolygon<f64>,
) -> Result<Feature, GeoJsonError> {
    let code = description.code;
    let properties = match serde_json::to_value(description) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) | Err(_) => {
            return Err(GeoJsonError::Write(format!(
                "unit grid {code}: properties are not an object"
            )));
        }
    };
    let value = match geometry.0.as_slice() {
        [single] => GeometryValue::from(single),
        _ => GeometryValue::from(geometry),
    };
    Ok(Feature {
        bbox: None,
        geometry: Some(Geometry::new(value)),
        id: None,
        properties: Some(properties),
        foreign_members: None,
    })
}

fn read_description(properties: Option<JsonObject>) -> Result<GridDescription, FeatureProblem> {
    let properties =
        properties.ok_or_else(|| FeatureProblem::Properties("missing properties".into()))?;
    let d: GridDescription = serde_json::from_value(serde_json::Value::Object(properties))
        .map_err(|e| FeatureProblem::Properties(e.to_string()))?;
    let mismatch = |property, found: String, expected: String| {
        if found == expected {
            Ok(())
        } else {
            Err(FeatureProblem::CodeMismatch {
                property,
                found,
                expected,
            })
        }
    };
    mismatch(
        "district",
        d.district.to_string(),
        d.code.district().to_string(),
    )?;
    mismatch("street", d.street.to_string(), d.code.street().to_string())?;
    mismatch(
        "community",
        d.community.to_string(),
        d.code.community().to_string(),
    )?;
    mismatch(
        "level3",
        d.level3.community().to_string(),
        d.code.community().to_string(),
    )?;
    let expected_kind = format!("{:?}", d.code.street().kind());
    mismatch("street_kind", format!("{:?}", d.street_kind), expected_kind)?;
    Ok(d)
}

/// The first name seen for each code, and where, so a conflicting later name is named.
#[derive(Debug, Default)]
struct NameRegistry {
    first_index: BTreeMap<String, usize>,
}

impl NameRegistry {
    fn record(
        &mut self,
        index: usize,
        d: &GridDescription,
        h: &mut Hierarchy,
    ) -> Result<(), FeatureProblem> {
        self.one(
            index,
            "district",
            d.district,
            &d.district_name,
            &mut h.districts,
        )?;
        self.one(index, "street", d.street, &d.street_name, &mut h.streets)?;
        self.one(
            index,
            "community",
            d.community,
            &d.community_name,
            &mut h.communities,
        )?;
        self.one(
            index,
            "level-3 grid",
            d.level3,
            &d.level3_name,
            &mut h.level3,
        )
    }

    fn one<K: Ord + Copy + ToString>(
        &mut self,
        index: usize,
        level: &'static str,
        code: K,
        name: &str,
        names: &mut BTreeMap<K, String>,
    ) -> Result<(), FeatureProblem> {
        match names.entry(code) {
            Entry::Vacant(slot) => {
                if name.trim().is_empty() {
                    return Err(FeatureProblem::Properties(format!(
                        "{level} {} has an empty name",
                        code.to_string()
                    )));
                }
                slot.insert(name.to_owned());
                self.first_index
                    .insert(format!("{level}:{}", code.to_string()), index);
                Ok(())
            }
            Entry::Occupied(slot) if slot.get() == name => Ok(()),
            Entry::Occupied(slot) => Err(FeatureProblem::NameConflict {
                level,
                code: code.to_string(),
                name: name.to_owned(),
                first_name: slot.get().clone(),
                first_index: self
                    .first_index
                    .get(&format!("{level}:{}", code.to_string()))
                    .copied()
                    .unwrap_or(0),
            }),
        }
    }
}

/// Converts and checks a Polygon or MultiPolygon: finite lon/lat in range, closed rings
/// of at least 4 positions, and a valid polygon (no self-intersection, holes inside).
fn read_polygons(geometry: Option<&Geometry>) -> Result<MultiPolygon<f64>, FeatureProblem> {
    let geometry = geometry.ok_or(FeatureProblem::NoGeometry)?;
    let polygons: Vec<&Vec<Vec<::geojson::Position>>> = match &geometry.value {
        GeometryValue::Polygon { coordinates } => vec![coordinates],
        GeometryValue::MultiPolygon { coordinates } => coordinates.iter().collect(),
        other => return Err(FeatureProblem::NotAPolygon(other.type_name())),
    };
    let mut ring_number = 0;
    let mut out = Vec::with_capacity(polygons.len());
    for rings in polygons {
        let mut converted = Vec::with_capacity(rings.len());
        for ring in rings {
            converted.push(read_ring(ring_number, ring)?);
            ring_number += 1;
        }
        let mut converted = converted.into_iter();
        let Some(exterior) = converted.next() else {
            return Err(FeatureProblem::Empty);
        };
        out.push(Polygon::new(exterior, converted.collect()));
    }
    if out.is_empty() {
        return Err(FeatureProblem::Empty);
    }
    let multi = MultiPolygon(out);
    if let Err(invalid) = multi.check_validation() {
        return Err(FeatureProblem::Invalid(invalid.to_string()));
    }
    // geo accepts a ring that folds back on itself; a grid must cover some ground.
    if let Some(polygon) = multi.iter().position(|p| p.unsigned_area() <= 0.0) {
        return Err(FeatureProblem::NoArea { polygon });
    }
    Ok(multi)
}

fn read_ring(
    ring: usize,
    positions: &[::geojson::Position],
) -> Result<LineString<f64>, FeatureProblem> {
    if positions.len() < 4 {
        return Err(FeatureProblem::RingTooShort {
            ring,
            count: positions.len(),
        });
    }
    let mut coords = Vec::with_capacity(positions.len());
    for (position, p) in positions.iter().enumerate() {
        let bad = |reason: String| FeatureProblem::BadPosition {
            ring,
            position,
            reason,
        };
        let (lon, lat) = match p.as_slice() {
            [lon, lat] | [lon, lat, _] => (*lon, *lat),
            other => return Err(bad(format!("has {} numbers, expected 2", other.len()))),
        };
        crate::geo::LonLat::new(lon, lat).map_err(|e| bad(e.to_string()))?;
        coords.push(Coord { x: lon, y: lat });
    }
    if coords.first() != coords.last() {
        return Err(FeatureProblem::RingNotClosed { ring });
    }
    Ok(LineString(coords))
}

#[cfg(test)]
mod tests;
