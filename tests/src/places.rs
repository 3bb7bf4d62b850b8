//! Real places for end-to-end tests: the unit grids of 金水区 generated from the real
//! boundary, and points inside them as a phone's GPS gives them.

use std::path::PathBuf;
use std::sync::OnceLock;

use wangge_sync_core::case::Position;
use wangge_sync_core::geo::{Crs, LonLat, gcj02_to_wgs84};
use wangge_sync_core::grid::geojson::read_grids;
use wangge_sync_core::grid::{GridCode, GridIndex};

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
