//! Real places for end-to-end tests: the unit grids of 金水区 generated from the real
//! boundary, and points inside them as a phone's GPS gives them.

use std::path::PathBuf;
use std::sync::OnceLock;

use wangge_sync_core::case::Position;
use wangge_sync_core::geo::{Crs, LonLat, gcj02_to_wgs84};
use wangge_sync_core::grid::geojson::read_grids;
use wangge_sync_core::grid::{GridCode, GridIndex, Level3Code};

use crate::{districts_file, wangge_ok};

/// 金水区's adcode.
pub const JINSHUI: &str = "410105";

/// The unit grids of 金水区, generated once per run from the real boundary.
pub fn grids_file() -> &'static PathBuf {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &FILE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temporary directory");
            let file = dir.path().join("jinshui.geojson");
            wangge_ok(
                &[
                    "grid",
                    "generate",
                    "--districts",
                    &districts_file().display().to_string(),
                    "--adcodes",
                    JINSHUI,
                    "--out",
                    &file.display().to_string(),
                ],
                "",
            );
            (dir, file)
        })
        .1
}

/// Imports the 金水区 grids into the database at `url`.
pub fn import_grids(url: &str) {
    let grids = grids_file().display().to_string();
    wangge_ok(
        &["grid", "import", "--grids", &grids, "--database", url],
        "",
    );
}

/// Two unit grids of different communities, each with a WGS-84 point inside it (as
/// a phone's GPS would give).
pub fn two_places() -> [(GridCode, Position); 2] {
    let bytes = std::fs::read(grids_file()).expect("grids file");
    let set = read_grids(&bytes).expect("grids");
    let index = GridIndex::build(set.clone()).expect("index");
    let mut found: Vec<(GridCode, Position)> = Vec::new();
    for grid in set.grids() {
        if found
            .iter()
            .any(|(code, _)| code.community() == grid.code.community())
        {
            continue;
        }
        use geo::BoundingRect as _;
        let Some(rect) = grid.geometry.bounding_rect() else {
            continue;
        };
        let centre = LonLat::new(rect.center().x, rect.center().y).expect("centre");
        if index.locate(centre, Crs::Gcj02) != Some(grid.code) {
            continue; // a clipped cell whose box centre falls outside it
        }
        let wgs84 = gcj02_to_wgs84(centre);
        found.push((
            grid.code,
            Position {
                lon: wgs84.lon,
                lat: wgs84.lat,
                accuracy_m: Some(5.0),
            },
        ));
        if found.len() == 2 {
            break;
        }
    }
    [found[0], found[1]]
}

/// A level-3 grid (三级网格) of 金水区 as a patrol walks it: its unit grids (a posting
/// names them) and a WGS-84 point well inside one of them (where a worker checks in).
#[derive(Debug, Clone)]
pub struct Level3Place {
    /// The level-3 grid.
    pub code: Level3Code,
    /// Its unit grids.
    pub grids: Vec<GridCode>,
    /// A unit grid whose box centre is inside it, and that centre as a phone's GPS
    /// gives it (WGS-84).
    pub check_in: (GridCode, Position),
}

/// Two communities of two different streets, each with at least four level-3 grids
/// that have a unit grid a worker can check in at: the places of a patrol day.
pub fn two_streets() -> [Vec<Level3Place>; 2] {
    use std::collections::BTreeMap;
    let bytes = std::fs::read(grids_file()).expect("grids file");
    let set = read_grids(&bytes).expect("grids");
    let index = GridIndex::build(set.clone()).expect("index");
    let mut by_level3: BTreeMap<Level3Code, Level3Place> = BTreeMap::new();
    for grid in set.grids() {
        use geo::BoundingRect as _;
        let place = by_level3.entry(grid.level3).or_insert_with(|| Level3Place {
            code: grid.level3,
            grids: Vec::new(),
            check_in: (
                grid.code,
                Position {
                    lon: 0.0,
                    lat: 0.0,
                    accuracy_m: None,
                },
            ),
        });
        place.grids.push(grid.code);
        if place.check_in.1.accuracy_m.is_some() {
            continue;
        }
        let Some(rect) = grid.geometry.bounding_rect() else {
            continue;
        };
        // A whole cell (not clipped by the boundary): its centre is 50 m from every edge.
        use geo::Area as _;
        let whole = grid.geometry.unsigned_area() > 0.99 * rect.width() * rect.height();
        let centre = LonLat::new(rect.center().x, rect.center().y).expect("centre");
        if !whole || index.locate(centre, Crs::Gcj02) != Some(grid.code) {
            continue;
        }
        let wgs84 = gcj02_to_wgs84(centre);
        place.check_in = (
            grid.code,
            Position {
                lon: wgs84.lon,
                lat: wgs84.lat,
                accuracy_m: Some(8.0),
            },
        );
    }
    let mut communities: BTreeMap<_, Vec<Level3Place>> = BTreeMap::new();
    for place in by_level3.into_values() {
        if place.check_in.1.accuracy_m.is_some() {
            communities
                .entry(place.code.community())
                .or_default()
                .push(place);
        }
    }
    let mut chosen: Vec<Vec<Level3Place>> = Vec::new();
    for (community, places) in communities {
        if places.len() >= 4
            && chosen
                .iter()
                .all(|c| c[0].code.community().street() != community.street())
        {
            chosen.push(places);
            if chosen.len() == 2 {
                break;
            }
        }
    }
    let second = chosen.pop().expect("a second street with a full community");
    let first = chosen.pop().expect("a street with a full community");
    [first, second]
}
