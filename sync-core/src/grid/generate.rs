//! Generation of unit grids and a synthetic hierarchy under real district boundaries.
//!
//! Real street and community boundaries of Zhengzhou are not available, so they are
//! made up here, deterministically:
//! 1. A **lattice** of cells about `cell_metres` square (in GCJ-02 degrees, sized at the
//!    input's mean latitude) is anchored on the whole districts file, so cutting one
//!    district gives exactly the cells it has in the whole city.
//! 2. Each district is cut row by row: the row strip is intersected with the boundary
//!    (`geo`'s boolean operations), cells that no boundary edge touches are kept whole
//!    (exact lattice corners), and only the cells on the boundary are clipped; clipped
//!    vertices within 1e-9° of a lattice line are snapped onto it, so every edge shared
//!    by two cells is bit-identical on both sides.
//! 3. **Slivers** (clipped cells under `sliver_fraction` of a full cell) are merged into
//!    the largest edge-adjacent cell; a part that touches none stays a grid of its own.
//! 4. **Grouping**: 4 × 4 cells make a level-3 grid (楼院/街区/路段, ~0.16 km²), 2 × 2
//!    level-3 grids a community (~0.64 km²), 3 × 2 communities a street (~3.8 km²),
//!    enlarged for a district that would need more than 399 street numbers.
//! 5. **Codes** by the standard's rule: within a district, streets of a 市辖区 (county
//!    part 01–20) are 街道 001–099 first, then 镇 100–199 and 乡 200–399; in a county or
//!    county-level city the streets nearest the district's centre are its 街道 (the
//!    county seat), the next 镇, the outermost 乡. Every numbering (streets within a
//!    kind, communities, level-3 grids, unit grid sequences) runs north → south in rows,
//!    west → east within a row.

use std::collections::{BTreeMap, BTreeSet};

use ::geo::{
    Area, BooleanOps, BoundingRect, Centroid, Coord, LineString, MultiPolygon, Polygon, Rect,
    RemoveRepeatedPoints,
};

use super::geojson::DistrictBoundary;
use super::{
    CodeError, CommunityCode, DistrictCode, GridSet, GridSetError, Hierarchy, StreetKind, UnitGrid,
};

/// Vertices closer than this (degrees, ~0.1 mm) to a lattice line are put on it.
const SNAP_DEG: f64 = 1e-9;
/// Clipped pieces smaller than this fraction of a cell are numerical dust, not land.
const DUST_FRACTION: f64 = 1e-6;
const CELLS_PER_LEVEL3: i64 = 4;
const LEVEL3_PER_COMMUNITY: i64 = 2;
const CELLS_PER_COMMUNITY: i64 = CELLS_PER_LEVEL3 * LEVEL3_PER_COMMUNITY;
const MAX_STREETS: usize = 399;
/// More unit grids than this in one run (about 1 GB of polygons) is almost surely a
/// mistyped `cell_metres`; cut fewer districts at a time instead.
pub const MAX_GRIDS_PER_RUN: u64 = 5_000_000;

/// How to cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerateOptions {
    /// Side of a unit grid in metres (the standard's 万米单元网格 is 100 m).
    pub cell_metres: f64,
    /// A clipped cell smaller than this fraction of a full cell is merged into a neighbour.
    pub sliver_fraction: f64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            cell_metres: 100.0,
            sliver_fraction: 0.25,
        }
    }
}

/// Why generation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GenerateError {
    #[error("cell size must be between 10 and 10000 metres, not {0}")]
    BadCellSize(f64),
    #[error("sliver fraction must be in [0, 1), not {0}")]
    BadSliverFraction(f64),
    #[error(
        "about {estimated} unit grids would be made, more than {MAX_GRIDS_PER_RUN}: use larger cells or fewer districts"
    )]
    TooManyGrids { estimated: u64 },
    #[error("no district boundaries to cut")]
    NoDistricts,
    #[error("district {0} is not in the districts file")]
    UnknownDistrict(DistrictCode),
    #[error("district {district}: {source}")]
    Code {
        district: DistrictCode,
        source: CodeError,
    },
    #[error("district {district}: community {community} would hold more than 999 unit grids")]
    CommunityTooLarge {
        district: DistrictCode,
        community: CommunityCode,
    },
    #[error(transparent)]
    Set(#[from] GridSetError),
}

/// The cell lattice: cell `(i, j)` spans `[x(i), x(i+1)] × [y(j), y(j+1)]`, `j` growing north.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lattice {
    pub origin_lon: f64,
    pub origin_lat: f64,
    pub step_lon: f64,
    pub step_lat: f64,
}

impl Lattice {
    /// A lattice anchored south-west of all `boundaries` (rounded to 0.01°), with cells of
    /// `cell_metres` at their mean latitude.
    pub fn covering(
        boundaries: &[DistrictBoundary],
        cell_metres: f64,
    ) -> Result<Self, GenerateError> {
        if !(10.0..=10_000.0).contains(&cell_metres) {
            return Err(GenerateError::BadCellSize(cell_metres));
        }
        let mut rects = boundaries.iter().filter_map(|b| b.geometry.bounding_rect());
        let first = rects.next().ok_or(GenerateError::NoDistricts)?;
        let bounds = rects.fold(first, |acc, r| {
            Rect::new(
                Coord {
                    x: acc.min().x.min(r.min().x),
                    y: acc.min().y.min(r.min().y),
                },
                Coord {
                    x: acc.max().x.max(r.max().x),
                    y: acc.max().y.max(r.max().y),
                },
            )
        });
        let mean_lat = ((bounds.min().y + bounds.max().y) / 2.0).to_radians();
        // Metres per degree on the ellipsoid at the mean latitude (standard series).
        let metres_per_deg_lat =
            111_132.954 - 559.822 * (2.0 * mean_lat).cos() + 1.175 * (4.0 * mean_lat).cos();
        let metres_per_deg_lon = 111_412.84 * mean_lat.cos() - 93.5 * (3.0 * mean_lat).cos();
        Ok(Lattice {
            origin_lon: (bounds.min().x * 100.0).floor() / 100.0,
            origin_lat: (bounds.min().y * 100.0).floor() / 100.0,
            step_lon: cell_metres / metres_per_deg_lon,
            step_lat: cell_metres / metres_per_deg_lat,
        })
    }

    pub fn x(&self, i: i64) -> f64 {
        self.origin_lon + i as f64 * self.step_lon
    }

    pub fn y(&self, j: i64) -> f64 {
        self.origin_lat + j as f64 * self.step_lat
    }

    pub fn column(&self, lon: f64) -> i64 {
        ((lon - self.origin_lon) / self.step_lon).floor() as i64
    }

    pub fn row(&self, lat: f64) -> i64 {
        ((lat - self.origin_lat) / self.step_lat).floor() as i64
    }

    fn cell(&self, i: i64, j: i64) -> Polygon<f64> {
        Rect::new(
            Coord {
                x: self.x(i),
                y: self.y(j),
            },
            Coord {
                x: self.x(i + 1),
                y: self.y(j + 1),
            },
        )
        .to_polygon()
    }

    fn cell_area(&self) -> f64 {
        self.step_lon * self.step_lat
    }

    /// Puts a vertex that lies within [`SNAP_DEG`] of a lattice line exactly on it.
    fn snap(&self, c: Coord<f64>) -> Coord<f64> {
        let snap1 = |v: f64, line: &dyn Fn(i64) -> f64, origin: f64, step: f64| {
            let k = ((v - origin) / step).round() as i64;
            let on_line = line(k);
            if (v - on_line).abs() < SNAP_DEG {
                on_line
            } else {
                v
            }
        };
        Coord {
            x: snap1(c.x, &|i| self.x(i), self.origin_lon, self.step_lon),
            y: snap1(c.y, &|j| self.y(j), self.origin_lat, self.step_lat),
        }
    }

    fn snap_all(&self, shape: MultiPolygon<f64>) -> MultiPolygon<f64> {
        let snap_ring = |ring: &LineString<f64>| {
            LineString(ring.0.iter().map(|&c| self.snap(c)).collect()).remove_repeated_points()
        };
        MultiPolygon(
            shape
                .iter()
                .filter_map(|p| {
                    let exterior = snap_ring(p.exterior());
                    if exterior.0.len() < 4 {
                        return None;
                    }
                    let holes = p
                        .interiors()
                        .iter()
                        .map(snap_ring)
                        .filter(|r| r.0.len() >= 4)
                        .collect();
                    Some(Polygon::new(exterior, holes))
                })
                .filter(|p| p.unsigned_area() > 0.0)
                .collect(),
        )
    }
}

/// A unit grid before coding: the lattice cell it is anchored on, and its area.
#[derive(Debug, Clone)]
struct Cell {
    geometry: MultiPolygon<f64>,
    /// Area as a fraction of a full cell.
    fraction: f64,
}

/// Progress: rows of cells cut so far and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub rows_done: u64,
    pub rows_total: u64,
}

/// Cuts the selected districts (all of `boundaries` when `selected` is `None`) into unit
/// grids with a synthetic hierarchy. The lattice always covers all of `boundaries`.
pub fn generate(
    boundaries: &[DistrictBoundary],
    selected: Option<&[DistrictCode]>,
    options: GenerateOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<GridSet, GenerateError> {
    if !(0.0..1.0).contains(&options.sliver_fraction) {
        return Err(GenerateError::BadSliverFraction(options.sliver_fraction));
    }
    let lattice = Lattice::covering(boundaries, options.cell_metres)?;
    let chosen: Vec<&DistrictBoundary> = match selected {
        None => boundaries.iter().collect(),
        // A district named twice is cut once.
        Some(codes) => BTreeSet::from_iter(codes)
            .into_iter()
            .map(|code| {
                boundaries
                    .iter()
                    .find(|b| b.code == *code)
                    .ok_or(GenerateError::UnknownDistrict(*code))
            })
            .collect::<Result<_, _>>()?,
    };
    if chosen.is_empty() {
        return Err(GenerateError::NoDistricts);
    }
    let estimated = (chosen
        .iter()
        .map(|d| d.geometry.unsigned_area())
        .sum::<f64>()
        / lattice.cell_area()) as u64;
    if estimated > MAX_GRIDS_PER_RUN {
        return Err(GenerateError::TooManyGrids { estimated });
    }
    let rows_total = chosen
        .iter()
        .filter_map(|d| d.geometry.bounding_rect())
        .map(|r| (lattice.row(r.max().y) - lattice.row(r.min().y) + 1) as u64)
        .sum();
    let mut done = Progress {
        rows_done: 0,
        rows_total,
    };
    let mut hierarchy = Hierarchy::default();
    let mut grids = Vec::new();
    for district in chosen {
        let cells = cut_district(&lattice, district, &mut |rows| {
            done.rows_done += rows;
            progress(done);
        });
        let cells = merge_slivers(&lattice, cells, options.sliver_fraction);
        code_district(&lattice, district, cells, &mut hierarchy, &mut grids)?;
    }
    Ok(GridSet::new(hierarchy, grids)?)
}

/// Cuts one district into cells keyed by lattice position `(i, j)`.
fn cut_district(
    lattice: &Lattice,
    district: &DistrictBoundary,
    rows_done: &mut dyn FnMut(u64),
) -> BTreeMap<(i64, i64), Cell> {
    let mut cells = BTreeMap::new();
    let Some(bounds) = district.geometry.bounding_rect() else {
        return cells;
    };
    let (i_lo, i_hi) = (
        lattice.column(bounds.min().x),
        lattice.column(bounds.max().x),
    );
    let (j_lo, j_hi) = (lattice.row(bounds.min().y), lattice.row(bounds.max().y));
    let width = (i_hi - i_lo + 1) as usize;
    for j in j_lo..=j_hi {
        let strip = Rect::new(
            Coord {
                x: lattice.x(i_lo),
                y: lattice.y(j),
            },
            Coord {
                x: lattice.x(i_hi + 1),
                y: lattice.y(j + 1),
            },
        )
        .to_polygon();
        let piece = district.geometry.intersection(&strip);
        if !piece.0.is_empty() {
            cut_row(lattice, &piece, j, i_lo, width, &mut cells);
        }
        rows_done(1);
    }
    cells
}

/// Cuts one row strip (`piece`, already clipped to the row) into cells.
fn cut_row(
    lattice: &Lattice,
    piece: &MultiPolygon<f64>,
    j: i64,
    i_lo: i64,
    width: usize,
    cells: &mut BTreeMap<(i64, i64), Cell>,
) {
    let (bottom, top) = (lattice.y(j), lattice.y(j + 1));
    let on_strip_edge = |a: Coord<f64>, b: Coord<f64>| {
        ((a.y - bottom).abs() < SNAP_DEG && (b.y - bottom).abs() < SNAP_DEG)
            || ((a.y - top).abs() < SNAP_DEG && (b.y - top).abs() < SNAP_DEG)
    };
    let column = |x: f64| (lattice.column(x) - i_lo).clamp(0, width as i64 - 1) as usize;
    let middle = (bottom + top) / 2.0;
    let mut touched = vec![false; width];
    let mut crossings = Vec::new();
    for ring in piece
        .iter()
        .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
    {
        for line in ring.lines() {
            let (a, b) = (line.start, line.end);
            if !on_strip_edge(a, b) {
                let (lo, hi) = (a.x.min(b.x) - SNAP_DEG, a.x.max(b.x) + SNAP_DEG);
                touched[column(lo)..=column(hi)].fill(true);
            }
            if (a.y > middle) != (b.y > middle) {
                crossings.push(a.x + (middle - a.y) * (b.x - a.x) / (b.y - a.y));
            }
        }
    }
    crossings.sort_by(f64::total_cmp);
    // Untouched cells lie wholly inside or wholly outside: inside when their centre
    // line's midpoint falls between a pair of crossings.
    for pair in crossings.chunks_exact(2) {
        for (offset, touched) in touched
            .iter()
            .enumerate()
            .take(column(pair[1]) + 1)
            .skip(column(pair[0]))
        {
            let i = i_lo + offset as i64;
            let centre = (lattice.x(i) + lattice.x(i + 1)) / 2.0;
            if !touched && pair[0] < centre && centre < pair[1] {
                let geometry = MultiPolygon(vec![lattice.cell(i, j)]);
                cells.insert(
                    (i, j),
                    Cell {
                        geometry,
                        fraction: 1.0,
                    },
                );
            }
        }
    }
    for (offset, _) in touched.iter().enumerate().filter(|(_, t)| **t) {
        let i = i_lo + offset as i64;
        let clipped = lattice.snap_all(piece.intersection(&lattice.cell(i, j)));
        let fraction = clipped.unsigned_area() / lattice.cell_area();
        if fraction > DUST_FRACTION {
            cells.insert(
                (i, j),
                Cell {
                    geometry: clipped,
                    fraction,
                },
            );
        }
    }
}

/// Merges each part of each sliver into the largest edge-adjacent non-sliver cell whose
/// union with it is one polygon; parts that touch none stay where they are.
fn merge_slivers(
    lattice: &Lattice,
    mut cells: BTreeMap<(i64, i64), Cell>,
    sliver_fraction: f64,
) -> BTreeMap<(i64, i64), Cell> {
    let slivers: Vec<(i64, i64)> = cells
        .iter()
        .filter(|(_, c)| c.fraction < sliver_fraction)
        .map(|(k, _)| *k)
        .collect();
    let sliver_set: BTreeSet<(i64, i64)> = slivers.iter().copied().collect();
    for key in slivers {
        let Some(sliver) = cells.remove(&key) else {
            continue;
        };
        let (i, j) = key;
        let mut neighbours: Vec<(i64, i64)> = [(i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)]
            .into_iter()
            .filter(|k| cells.contains_key(k) && !sliver_set.contains(k))
            .collect();
        // Largest first; ties by position, so the result never depends on map order.
        neighbours.sort_by(|a, b| {
            let (fa, fb) = (cells[a].fraction, cells[b].fraction);
            fb.total_cmp(&fa).then(a.cmp(b))
        });
        let mut kept = Vec::new();
        for part in sliver.geometry {
            let part_fraction = part.unsigned_area() / lattice.cell_area();
            let merged = neighbours.iter().find_map(|n| {
                let union = cells[n].geometry.union(&MultiPolygon(vec![part.clone()]));
                let union = lattice.snap_all(union);
                (union.0.len() == 1).then_some((*n, union))
            });
            match merged {
                Some((n, union)) => {
                    if let Some(target) = cells.get_mut(&n) {
                        target.geometry = union;
                        target.fraction += part_fraction;
                    }
                }
                None => kept.push(part),
            }
        }
        if !kept.is_empty() {
            let geometry = MultiPolygon(kept);
            let fraction = geometry.unsigned_area() / lattice.cell_area();
            cells.insert(key, Cell { geometry, fraction });
        }
    }
    cells
}

/// Reading order of a block or cell: north → south rows, west → east within a row.
fn reading_order((i, j): (i64, i64)) -> (i64, i64) {
    (-j, i)
}

/// Groups a district's cells into level-3 grids, communities and streets, and codes them.
fn code_district(
    lattice: &Lattice,
    district: &DistrictBoundary,
    mut cells: BTreeMap<(i64, i64), Cell>,
    hierarchy: &mut Hierarchy,
    grids: &mut Vec<UnitGrid>,
) -> Result<(), GenerateError> {
    let code_err = |source| GenerateError::Code {
        district: district.code,
        source,
    };
    // Street block size in communities (wide, tall), grown until the numbers suffice.
    let mut street_blocks;
    let mut size = (3, 2);
    loop {
        let cells_wide = size.0 * CELLS_PER_COMMUNITY;
        let cells_tall = size.1 * CELLS_PER_COMMUNITY;
        street_blocks = BTreeMap::<(i64, i64), Vec<(i64, i64)>>::new();
        for &(i, j) in cells.keys() {
            let block = (i.div_euclid(cells_wide), j.div_euclid(cells_tall));
            street_blocks.entry(block).or_default().push((i, j));
        }
        if street_blocks.len() <= MAX_STREETS {
            break;
        }
        size = if size.0 == size.1 {
            (size.0 + 1, size.1)
        } else {
            (size.0, size.1 + 1)
        };
    }
    let street_numbers = number_streets(lattice, district, size, &street_blocks);
    hierarchy
        .districts
        .insert(district.code, district.name.clone());
    for (block, block_cells) in street_blocks {
        let number = street_numbers[&block];
        let street = district.code.street(number).map_err(code_err)?;
        let kind = street.kind();
        let (first, _) = kind.number_range();
        hierarchy.streets.insert(
            street,
            format!("第{}{}", number - first + 1, kind.name_zh()),
        );
        let community_word = if kind == StreetKind::Subdistrict {
            "社区"
        } else {
            "村"
        };
        let mut communities = BTreeMap::<(i64, i64), Vec<(i64, i64)>>::new();
        for &(i, j) in &block_cells {
            let key = (
                i.div_euclid(CELLS_PER_COMMUNITY),
                j.div_euclid(CELLS_PER_COMMUNITY),
            );
            communities.entry(key).or_default().push((i, j));
        }
        let mut community_keys: Vec<_> = communities.keys().copied().collect();
        community_keys.sort_by_key(|k| reading_order(*k));
        for (c_index, c_key) in community_keys.into_iter().enumerate() {
            let community = street.community(c_index as u16 + 1).map_err(code_err)?;
            hierarchy
                .communities
                .insert(community, format!("第{}{community_word}", c_index + 1));
            let mut members = communities.remove(&c_key).unwrap_or_default();
            if members.len() > 999 {
                return Err(GenerateError::CommunityTooLarge {
                    district: district.code,
                    community,
                });
            }
            members.sort_by_key(|k| reading_order(*k));
            let mut level3_keys: Vec<(i64, i64)> = members
                .iter()
                .map(|(i, j)| {
                    (
                        i.div_euclid(CELLS_PER_LEVEL3),
                        j.div_euclid(CELLS_PER_LEVEL3),
                    )
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            level3_keys.sort_by_key(|k| reading_order(*k));
            for (l_index, _) in level3_keys.iter().enumerate() {
                let level3 = community.level3(l_index as u8 + 1).map_err(code_err)?;
                hierarchy
                    .level3
                    .insert(level3, format!("第{}网格", l_index + 1));
            }
            for (sequence, key) in members.iter().enumerate() {
                let l3_key = (
                    key.0.div_euclid(CELLS_PER_LEVEL3),
                    key.1.div_euclid(CELLS_PER_LEVEL3),
                );
                let l_index = level3_keys.iter().position(|k| *k == l3_key).unwrap_or(0);
                let code = community.grid(sequence as u16 + 1).map_err(code_err)?;
                let level3 = community.level3(l_index as u8 + 1).map_err(code_err)?;
                let geometry = cells
                    .remove(key)
                    .map_or_else(|| MultiPolygon(Vec::new()), |c| c.geometry);
                grids.push(UnitGrid {
                    code,
                    level3,
                    geometry,
                });
            }
        }
    }
    Ok(())
}

/// Street numbers for a district's street blocks (see the module docs for the rule).
fn number_streets(
    lattice: &Lattice,
    district: &DistrictBoundary,
    size: (i64, i64),
    blocks: &BTreeMap<(i64, i64), Vec<(i64, i64)>>,
) -> BTreeMap<(i64, i64), u16> {
    let n = blocks.len();
    let mut by_rank: Vec<(i64, i64)> = blocks.keys().copied().collect();
    let is_city_district = district.code.value() % 100 <= 20;
    let subdistricts = if is_city_district {
        n.min(99)
    } else {
        // The county seat: the nearest tenth, and enough that 镇 and 乡 numbers suffice.
        n.div_ceil(10).max(n.saturating_sub(300)).min(99).min(n)
    };
    if is_city_district {
        by_rank.sort_by_key(|k| reading_order(*k));
    } else {
        let centre = district
            .geometry
            .centroid()
            .map(|p| (p.x(), p.y()))
            .unwrap_or((lattice.origin_lon, lattice.origin_lat));
        let (w, h) = (size.0 * CELLS_PER_COMMUNITY, size.1 * CELLS_PER_COMMUNITY);
        let distance = |&(bx, by): &(i64, i64)| {
            let x = (lattice.x(bx * w) + lattice.x((bx + 1) * w)) / 2.0 - centre.0;
            let y = (lattice.y(by * h) + lattice.y((by + 1) * h)) / 2.0 - centre.1;
            x * x + y * y
        };
        by_rank.sort_by(|a, b| distance(a).total_cmp(&distance(b)).then(a.cmp(b)));
    }
    let towns = (n - subdistricts).min(100);
    let mut numbers = BTreeMap::new();
    let kinds = [
        (StreetKind::Subdistrict, &by_rank[..subdistricts]),
        (
            StreetKind::Town,
            &by_rank[subdistricts..subdistricts + towns],
        ),
        (StreetKind::Township, &by_rank[subdistricts + towns..]),
    ];
    for (kind, members) in kinds {
        let mut members = members.to_vec();
        members.sort_by_key(|k| reading_order(*k));
        let (first, _) = kind.number_range();
        for (offset, block) in members.into_iter().enumerate() {
            numbers.insert(block, first + offset as u16);
        }
    }
    numbers
}
