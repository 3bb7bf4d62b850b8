//! Grids: the codes ([`code`]), the hierarchy of a city's grids ([`GridSet`]), the
//! point → unit grid index ([`index`]), GeoJSON import/export ([`geojson`]) and the
//! generation of synthetic grids under real district boundaries ([`generate`]).
//!
//! The hierarchy follows the plan: district (区县) → street/township (乡镇办, level 1) →
//! community (村组社区, level 2) → level-3 grid (楼院/街区/路段, a named group of unit
//! grids) → unit grid (万米单元网格, about 100 m × 100 m). All polygons are GCJ-02.

pub mod code;
pub mod generate;
pub mod geojson;
pub mod index;

use std::collections::BTreeMap;

use ::geo::MultiPolygon;

pub use code::{
    CodeError, CommunityCode, DistrictCode, GridCode, Level3Code, StreetCode, StreetKind,
};
pub use index::{GridIndex, Outline};

/// One unit grid: its code, the level-3 grid it belongs to, and its area (GCJ-02).
#[derive(Debug, Clone, PartialEq)]
pub struct UnitGrid {
    pub code: GridCode,
    pub level3: Level3Code,
    pub geometry: MultiPolygon<f64>,
}

/// The named units above the unit grids, each level keyed by its code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hierarchy {
    pub districts: BTreeMap<DistrictCode, String>,
    pub streets: BTreeMap<StreetCode, String>,
    pub communities: BTreeMap<CommunityCode, String>,
    pub level3: BTreeMap<Level3Code, String>,
}

/// A set of unit grids with their hierarchy, sorted by code and checked for
/// consistency: codes are unique, every parent is named, every level-3 grid lies in its
/// unit grid's community.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GridSet {
    hierarchy: Hierarchy,
    grids: Vec<UnitGrid>,
}

/// Why a set of grids was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GridSetError {
    #[error("unit grid {0} appears more than once")]
    DuplicateCode(GridCode),
    #[error("unit grid {grid}: its {level} {code} has no name")]
    MissingParent {
        grid: GridCode,
        level: &'static str,
        code: String,
    },
    #[error("unit grid {grid}: level-3 grid {level3} belongs to another community")]
    Level3OutsideCommunity { grid: GridCode, level3: Level3Code },
    #[error("{level} {code} has an empty name")]
    EmptyName { level: &'static str, code: String },
}

impl GridSet {
    /// Checks and builds a set; the grids are sorted by code.
    pub fn new(hierarchy: Hierarchy, mut grids: Vec<UnitGrid>) -> Result<Self, GridSetError> {
        grids.sort_by_key(|g| g.code);
        if let Some(pair) = grids.windows(2).find(|w| w[0].code == w[1].code) {
            return Err(GridSetError::DuplicateCode(pair[0].code));
        }
        check_names("district", &hierarchy.districts)?;
        check_names("street", &hierarchy.streets)?;
        check_names("community", &hierarchy.communities)?;
        check_names("level-3 grid", &hierarchy.level3)?;
        for g in &grids {
            let missing = |level: &'static str, code: String| GridSetError::MissingParent {
                grid: g.code,
                level,
                code,
            };
            if !hierarchy.districts.contains_key(&g.code.district()) {
                return Err(missing("district", g.code.district().to_string()));
            }
            if !hierarchy.streets.contains_key(&g.code.street()) {
                return Err(missing("street", g.code.street().to_string()));
            }
            if !hierarchy.communities.contains_key(&g.code.community()) {
                return Err(missing("community", g.code.community().to_string()));
            }
            if g.level3.community() != g.code.community() {
                return Err(GridSetError::Level3OutsideCommunity {
                    grid: g.code,
                    level3: g.level3,
                });
            }
            if !hierarchy.level3.contains_key(&g.level3) {
                return Err(missing("level-3 grid", g.level3.to_string()));
            }
        }
        Ok(GridSet { hierarchy, grids })
    }

    pub fn grids(&self) -> &[UnitGrid] {
        &self.grids
    }

    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// The unit grid with this code, by binary search.
    pub fn get(&self, code: GridCode) -> Option<&UnitGrid> {
        self.grids
            .binary_search_by_key(&code, |g| g.code)
            .ok()
            .map(|i| &self.grids[i])
    }

    /// The unit grid and the names of every level above it.
    pub fn describe(&self, code: GridCode) -> Option<GridDescription> {
        self.hierarchy.describe(code, self.get(code)?.level3)
    }
}

impl Hierarchy {
    /// A unit grid's codes and names at every level, if every level is named.
    pub fn describe(&self, code: GridCode, level3: Level3Code) -> Option<GridDescription> {
        Some(GridDescription {
            code,
            district: code.district(),
            district_name: self.districts.get(&code.district())?.clone(),
            street: code.street(),
            street_name: self.streets.get(&code.street())?.clone(),
            street_kind: code.street().kind(),
            community: code.community(),
            community_name: self.communities.get(&code.community())?.clone(),
            level3,
            level3_name: self.level3.get(&level3)?.clone(),
        })
    }
}

fn check_names<K: ToString>(
    level: &'static str,
    names: &BTreeMap<K, String>,
) -> Result<(), GridSetError> {
    match names.iter().find(|(_, name)| name.trim().is_empty()) {
        Some((code, _)) => Err(GridSetError::EmptyName {
            level,
            code: code.to_string(),
        }),
        None => Ok(()),
    }
}

/// A unit grid with the codes and names of all its levels: what "where is this?" answers,
/// and what every GeoJSON feature's properties carry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GridDescription {
    pub code: GridCode,
    pub district: DistrictCode,
    pub district_name: String,
    pub street: StreetCode,
    pub street_name: String,
    pub street_kind: StreetKind,
    pub community: CommunityCode,
    pub community_name: String,
    pub level3: Level3Code,
    pub level3_name: String,
}
