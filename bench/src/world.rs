//! The place the simulated phones work in: a real district's unit grids (cut by
//! `wangge grid generate`, the same file the server imports), grouped by community,
//! with a point inside each of a few unit grids per community (WGS-84, as a phone's
//! GPS gives it), checked with the same grid index the server uses.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use wangge_sync_core::case::Position;
use wangge_sync_core::geo::{Crs, LonLat, gcj02_to_wgs84};
use wangge_sync_core::grid::geojson::read_grids;
use wangge_sync_core::grid::{CommunityCode, GridCode, GridIndex};

/// A point a phone reports a case at, and the unit grid it is in.
#[derive(Debug, Clone, Copy)]
pub struct Spot {
    /// The unit grid.
    pub grid: GridCode,
    /// WGS-84.
    pub position: Position,
}

/// A community (社区) and spots in it.
#[derive(Debug, Clone)]
pub struct Community {
    /// Its 12-digit code.
    pub code: CommunityCode,
    /// Its name.
    pub name: String,
    /// Points in distinct unit grids of it.
    pub spots: Vec<Spot>,
}

/// The spots kept per community.
const SPOTS_PER_COMMUNITY: usize = 16;

/// The communities of a grid file that have at least four spots, in code order.
pub fn communities(grid_file: &Path) -> anyhow::Result<Vec<Community>> {
    communities_with(grid_file, SPOTS_PER_COMMUNITY)
}

/// The communities of a grid file that have at least four spots (at most
/// `spots_per_community`, in distinct unit grids), in code order.
pub fn communities_with(
    grid_file: &Path,
    spots_per_community: usize,
) -> anyhow::Result<Vec<Community>> {
    let bytes = std::fs::read(grid_file)
        .with_context(|| format!("reading the grids {}", grid_file.display()))?;
    let set = read_grids(&bytes).with_context(|| format!("parsing {}", grid_file.display()))?;
    let names = set.hierarchy().communities.clone();
    // The middle of each grid's bounding box (GCJ-02): inside for lattice cells; the
    // index below drops the clipped ones where it is not.
    let mut candidates: BTreeMap<CommunityCode, Vec<(GridCode, LonLat)>> = BTreeMap::new();
    for grid in set.grids() {
        let list = candidates.entry(grid.code.community()).or_default();
        if list.len() >= spots_per_community * 2 {
            continue;
        }
        let (mut min, mut max) = ([f64::MAX; 2], [f64::MIN; 2]);
        for polygon in &grid.geometry.0 {
            for c in polygon.exterior().coords() {
                min = [min[0].min(c.x), min[1].min(c.y)];
                max = [max[0].max(c.x), max[1].max(c.y)];
            }
        }
        let middle = LonLat {
            lon: (min[0] + max[0]) / 2.0,
            lat: (min[1] + max[1]) / 2.0,
        };
        list.push((grid.code, middle));
    }
    let index = GridIndex::build(set).context("indexing the grids")?;
    let mut out = Vec::new();
    for (code, list) in candidates {
        let spots: Vec<Spot> = list
            .into_iter()
            .filter_map(|(grid, middle)| {
                let wgs = gcj02_to_wgs84(middle);
                (index.locate(wgs, Crs::Wgs84) == Some(grid)).then_some(Spot {
                    grid,
                    position: Position {
                        lon: wgs.lon,
                        lat: wgs.lat,
                        accuracy_m: Some(8.0),
                    },
                })
            })
            .take(spots_per_community)
            .collect();
        if spots.len() >= 4 {
            out.push(Community {
                code,
                name: names.get(&code).cloned().unwrap_or_default(),
                spots,
            });
        }
    }
    if out.is_empty() {
        bail!("{}: no community with unit grids", grid_file.display());
    }
    Ok(out)
}

/// `count` communities spread evenly over `all` (so neighbours are not all taken
/// from one street).
pub fn spread(all: &[Community], count: usize) -> anyhow::Result<Vec<Community>> {
    if count == 0 || count > all.len() {
        bail!(
            "asked for {count} communities; the district has {} usable ones",
            all.len()
        );
    }
    Ok((0..count)
        .map(|i| all[i * all.len() / count].clone())
        .collect())
}

/// A small deterministic generator (splitmix64), so runs are comparable.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// 64 lowercase hex digits (a photo's SHA-256, as the phone would upload it).
    pub fn hex64(&mut self) -> String {
        (0..4)
            .map(|_| format!("{:016x}", self.next_u64()))
            .collect()
    }
}
