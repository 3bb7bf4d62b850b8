//! The grid index: "which unit grid contains this point?" for WGS-84, GCJ-02 or BD-09
//! input, answered by an R-tree of bounding boxes (`rstar`, the georust R-tree that `geo`
//! itself uses) and an exact point-in-polygon test.
//!
//! **Boundary rule.** A point belongs to a polygon when a ray from it towards +x (east)
//! crosses the polygon's boundary an odd number of times, where an edge counts if it
//! spans the point's latitude half-open (`min_y <= y < max_y`) and the point lies
//! *strictly* left of it, decided by Shewchuk's exact `orient2d` (crate `robust`). Two
//! grids that share an edge (bit-identical vertices, as generation and GeoJSON round
//! trips preserve) therefore never both claim a point on it: a point on a shared
//! north–south edge belongs to the grid to its east, a point on a shared east–west edge
//! to the grid to its north, and a vertex shared by four grids to the north-east one.
//! Where input polygons overlap anyway, the smallest code wins, so every replica answers
//! the same.
//!
//! Polygons are stored flat (one coordinate array, ring and grid offsets) to keep the
//! whole city's 760k grids well under 200 MB, and a grid that is a whole lattice cell
//! is answered from its R-tree box alone (see `Leaf::is_rectangle`).

use ::geo::{BoundingRect, Coord, LineString, MultiPolygon, Polygon};
use std::ops::ControlFlow;

use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RStarInsertionStrategy, RTree, RTreeParams};

use super::{GridDescription, GridSet, Hierarchy, Level3Code, UnitGrid};
use crate::geo::{Crs, LonLat};
use crate::grid::GridCode;

/// What a leaf of the R-tree carries: enough to test the polygon and answer without
/// touching the per-grid tables (each avoided lookup is a cache miss on 760k grids).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Leaf {
    code: GridCode,
    first_ring: u32,
    ring_count: u16,
    /// The grid is exactly its axis-aligned bounding box (a whole lattice cell, the vast
    /// majority): the crossing rule then reduces to `min <= p < max` on both axes, with
    /// no vertex to read.
    is_rectangle: bool,
}

type Entry = GeomWithData<Rectangle<[f64; 2]>, Leaf>;

/// Wider nodes than rstar's default (6): a shallower tree, so fewer dependent memory
/// reads per point; measured in `benches/grid_index.rs`.
#[derive(Debug)]
struct GridTreeParams;

impl RTreeParams for GridTreeParams {
    const MIN_SIZE: usize = 12;
    const MAX_SIZE: usize = 32;
    const REINSERTION_COUNT: usize = 10;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

/// An area's outline (GCJ-02): what [`GridIndex::outline_under`] gives.
pub type Outline = MultiPolygon<f64>;

/// An immutable index over a [`GridSet`]; see the module docs for the boundary rule.
#[derive(Debug)]
pub struct GridIndex {
    tree: RTree<Entry, GridTreeParams>,
    hierarchy: Hierarchy,
    codes: Vec<GridCode>,
    level3_numbers: Vec<u8>,
    /// Grid `i`'s rings are `ring_starts[grid_rings[i]..grid_rings[i + 1]]`.
    grid_rings: Vec<u32>,
    /// Ring `r`'s vertices are `coords[ring_starts[r]..ring_starts[r + 1]]`, not closed.
    ring_starts: Vec<u32>,
    /// Marks the first ring of each polygon, so geometry can be rebuilt exactly.
    polygon_first_ring: Vec<bool>,
    coords: Vec<[f64; 2]>,
}

/// Why an index could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("unit grid {0} has no area to index")]
    EmptyGeometry(GridCode),
    #[error("unit grid {0} has more than 65535 rings")]
    TooManyRings(GridCode),
    #[error("too many vertices for one index ({0}); split the area")]
    TooLarge(usize),
}

impl GridIndex {
    /// Builds the index from a checked set (its polygons are flattened, the R-tree is
    /// bulk-loaded).
    pub fn build(set: GridSet) -> Result<Self, IndexError> {
        let GridSet { hierarchy, grids } = set;
        let vertex_count: usize = grids
            .iter()
            .flat_map(|g| g.geometry.iter())
            .map(|p| p.exterior().0.len() + p.interiors().iter().map(|r| r.0.len()).sum::<usize>())
            .sum();
        if vertex_count >= u32::MAX as usize || grids.len() >= u32::MAX as usize {
            return Err(IndexError::TooLarge(vertex_count));
        }
        let mut index = GridIndex {
            tree: RTree::new_with_params(),
            hierarchy,
            codes: Vec::with_capacity(grids.len()),
            level3_numbers: Vec::with_capacity(grids.len()),
            grid_rings: Vec::with_capacity(grids.len() + 1),
            ring_starts: Vec::with_capacity(grids.len() + 1),
            polygon_first_ring: Vec::with_capacity(grids.len()),
            coords: Vec::with_capacity(vertex_count),
        };
        let mut entries = Vec::with_capacity(grids.len());
        index.grid_rings.push(0);
        for grid in grids {
            let rect = grid
                .geometry
                .bounding_rect()
                .ok_or(IndexError::EmptyGeometry(grid.code))?;
            let first_ring = index.polygon_first_ring.len() as u32;
            let is_rectangle = is_axis_aligned_rectangle(&grid.geometry);
            index.codes.push(grid.code);
            index.level3_numbers.push(grid.level3.number());
            for polygon in grid.geometry.iter() {
                index.push_ring(polygon.exterior(), true);
                for hole in polygon.interiors() {
                    index.push_ring(hole, false);
                }
            }
            let end_ring = index.polygon_first_ring.len() as u32;
            index.grid_rings.push(end_ring);
            let ring_count = u16::try_from(end_ring - first_ring)
                .map_err(|_| IndexError::TooManyRings(grid.code))?;
            entries.push(Entry::new(
                Rectangle::from_corners([rect.min().x, rect.min().y], [rect.max().x, rect.max().y]),
                Leaf {
                    code: grid.code,
                    first_ring,
                    ring_count,
                    is_rectangle,
                },
            ));
        }
        index.ring_starts.push(index.coords.len() as u32);
        index.tree = RTree::bulk_load_with_params(entries);
        Ok(index)
    }

    fn push_ring(&mut self, ring: &LineString<f64>, first_of_polygon: bool) {
        self.ring_starts.push(self.coords.len() as u32);
        self.polygon_first_ring.push(first_of_polygon);
        let open = match ring.0.as_slice() {
            [rest @ .., last] if Some(last) == ring.0.first() => rest,
            all => all,
        };
        self.coords.extend(open.iter().map(|c| [c.x, c.y]));
    }

    /// The unit grid containing `point`, given in `crs`; `None` outside every grid.
    pub fn locate(&self, point: LonLat, crs: Crs) -> Option<GridCode> {
        self.locate_gcj02(point.to_gcj02(crs))
    }

    /// Every unit grid whose polygon contains a GCJ-02 point, in code order: one at most
    /// for a proper tiling, more where input polygons overlap (a data error to report).
    pub fn containing_gcj02(&self, point: LonLat) -> Vec<GridCode> {
        let p = [point.lon, point.lat];
        let mut codes = Vec::new();
        let _ = self.tree.locate_all_at_point_int(&p, |entry| {
            if self.leaf_contains(entry, p) {
                codes.push(entry.data.code);
            }
            ControlFlow::<()>::Continue(())
        });
        codes.sort();
        codes
    }

    /// The unit grid containing a GCJ-02 point; `None` outside every grid.
    pub fn locate_gcj02(&self, point: LonLat) -> Option<GridCode> {
        let p = [point.lon, point.lat];
        let mut found: Option<GridCode> = None;
        let _ = self.tree.locate_all_at_point_int(&p, |entry| {
            let code = entry.data.code;
            if found.is_none_or(|best| code < best) && self.leaf_contains(entry, p) {
                found = Some(code);
            }
            ControlFlow::<()>::Continue(())
        });
        found
    }

    /// Even–odd crossing test over every ring of the grid (holes and parts included).
    fn leaf_contains(&self, entry: &Entry, p: [f64; 2]) -> bool {
        let leaf = &entry.data;
        if leaf.is_rectangle {
            let (min, max) = (entry.geom().lower(), entry.geom().upper());
            return min[0] <= p[0] && p[0] < max[0] && min[1] <= p[1] && p[1] < max[1];
        }
        let mut inside = false;
        let first = leaf.first_ring as usize;
        for ring in first..first + leaf.ring_count as usize {
            inside ^= ring_crossings_odd(self.ring(ring), p);
        }
        inside
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// The codes and names of every level of a unit grid in this index.
    pub fn describe(&self, code: GridCode) -> Option<GridDescription> {
        let slot = self.codes.binary_search(&code).ok()?;
        self.hierarchy.describe(code, self.level3_of(slot)?)
    }

    fn level3_of(&self, slot: usize) -> Option<Level3Code> {
        self.codes[slot]
            .community()
            .level3(self.level3_numbers[slot])
            .ok()
    }

    /// Rebuilds the exact polygons of a unit grid.
    pub fn geometry(&self, code: GridCode) -> Option<MultiPolygon<f64>> {
        let slot = self.codes.binary_search(&code).ok()?;
        Some(self.geometry_of(slot))
    }

    /// A point inside the unit grid (GCJ-02), for a case located by its grid code
    /// alone (a hotline call that names the grid): `geo`'s interior point, which lies
    /// inside the polygon even when it is concave.
    pub fn interior_point(&self, code: GridCode) -> Option<LonLat> {
        use geo::InteriorPoint;
        let point = self.geometry(code)?.interior_point()?;
        LonLat::new(point.x(), point.y()).ok()
    }

    fn geometry_of(&self, slot: usize) -> MultiPolygon<f64> {
        let mut polygons: Vec<Polygon<f64>> = Vec::new();
        let mut rings: Vec<LineString<f64>> = Vec::new();
        let flush = |rings: &mut Vec<LineString<f64>>, polygons: &mut Vec<Polygon<f64>>| {
            let mut drained = rings.drain(..);
            if let Some(exterior) = drained.next() {
                polygons.push(Polygon::new(exterior, drained.collect()));
            }
        };
        for ring in self.grid_rings[slot] as usize..self.grid_rings[slot + 1] as usize {
            if self.polygon_first_ring[ring] {
                flush(&mut rings, &mut polygons);
            }
            let vertices =
                &self.coords[self.ring_starts[ring] as usize..self.ring_starts[ring + 1] as usize];
            // Polygon::new closes the ring again.
            rings.push(LineString(
                vertices.iter().map(|&[x, y]| Coord { x, y }).collect(),
            ));
        }
        flush(&mut rings, &mut polygons);
        MultiPolygon(polygons)
    }

    /// The grid set this index was built from, for export.
    pub fn to_grid_set(&self) -> GridSet {
        let grids = (0..self.codes.len())
            .filter_map(|slot| {
                Some(UnitGrid {
                    code: self.codes[slot],
                    level3: self.level3_of(slot)?,
                    geometry: self.geometry_of(slot),
                })
            })
            .collect();
        GridSet {
            hierarchy: self.hierarchy.clone(),
            grids,
        }
    }

    /// Every unit grid within `radius_m` metres of a GCJ-02 point, nearest first (ties
    /// by code), with its distance: 0 inside, else to the nearest edge. Distances are
    /// measured in a local equirectangular projection (under 0.1 % off within a few
    /// kilometres), which is what a GPS accuracy radius can be compared with.
    pub fn near_gcj02(&self, point: LonLat, radius_m: f64) -> Vec<(GridCode, f64)> {
        if !(radius_m.is_finite() && radius_m >= 0.0) {
            return Vec::new();
        }
        let (kx, ky) = metres_per_degree(point.lat);
        let (d_lon, d_lat) = (radius_m / kx, radius_m / ky);
        let envelope = AABB::from_corners(
            [point.lon - d_lon, point.lat - d_lat],
            [point.lon + d_lon, point.lat + d_lat],
        );
        let p = [point.lon, point.lat];
        let mut found: Vec<(GridCode, f64)> = self
            .tree
            .locate_in_envelope_intersecting(&envelope)
            .filter_map(|entry| {
                let leaf = &entry.data;
                let distance = if self.leaf_contains(entry, p) {
                    0.0
                } else {
                    self.rings_distance_m(leaf.first_ring as usize, leaf.ring_count as usize, p)
                };
                (distance <= radius_m).then_some((leaf.code, distance))
            })
            .collect();
        found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        found
    }

    /// How far a GCJ-02 point is from unit grid `code`, metres (0 inside, as
    /// [`GridIndex::near_gcj02`] measures); `None` for a grid not in this index.
    pub fn distance_gcj02(&self, code: GridCode, point: LonLat) -> Option<f64> {
        let slot = self.codes.binary_search(&code).ok()?;
        let (first, end) = (
            self.grid_rings[slot] as usize,
            self.grid_rings[slot + 1] as usize,
        );
        let p = [point.lon, point.lat];
        let inside = (first..end).fold(false, |inside, ring| {
            inside ^ ring_crossings_odd(self.ring(ring), p)
        });
        Some(if inside {
            0.0
        } else {
            self.rings_distance_m(first, end - first, p)
        })
    }

    fn ring(&self, ring: usize) -> &[[f64; 2]] {
        &self.coords[self.ring_starts[ring] as usize..self.ring_starts[ring + 1] as usize]
    }

    /// The smallest distance from `p` to an edge of rings `first..first + count`, metres.
    fn rings_distance_m(&self, first: usize, count: usize, p: [f64; 2]) -> f64 {
        let (kx, ky) = metres_per_degree(p[1]);
        let local = |c: [f64; 2]| ((c[0] - p[0]) * kx, (c[1] - p[1]) * ky);
        let mut nearest = f64::INFINITY;
        for ring in first..first + count {
            let vertices = self.ring(ring);
            let Some(&last) = vertices.last() else {
                continue;
            };
            let mut a = local(last);
            for &vertex in vertices {
                let b = local(vertex);
                nearest = nearest.min(origin_to_segment(a, b));
                a = b;
            }
        }
        nearest
    }

    /// The level-3 grid (三级网格) a unit grid belongs to.
    pub fn level3_of_grid(&self, code: GridCode) -> Option<Level3Code> {
        let slot = self.codes.binary_search(&code).ok()?;
        self.level3_of(slot)
    }

    /// The level-3 grids with a unit grid under a code prefix (a district, street,
    /// community or unit grid code; `""` is the whole city), in order.
    pub fn level3_under(&self, prefix: &str) -> Vec<Level3Code> {
        let mut level3s: Vec<Level3Code> = self
            .slots_under(prefix)
            .filter_map(|slot| self.level3_of(slot))
            .collect();
        level3s.sort();
        level3s.dedup();
        level3s
    }

    /// The GCJ-02 bounding box (south-west, north-east corners) of the unit grids under
    /// a code prefix (`""`: every grid), or `None` if none is: where a map of a
    /// posting starts.
    pub fn bounds_under(&self, prefix: &str) -> Option<(LonLat, LonLat)> {
        let slots = self.slots_under(prefix);
        if slots.is_empty() {
            return None;
        }
        // The grids under a prefix are adjacent slots, so their vertices are one run.
        let ring = |slot: usize| self.grid_rings.get(slot).map(|r| *r as usize);
        let vertex = |ring: usize| self.ring_starts.get(ring).map(|v| *v as usize);
        let from = vertex(ring(slots.start)?)?;
        let to = vertex(ring(slots.end)?)?;
        let coords = self.coords.get(from..to)?;
        let mut min = [f64::INFINITY; 2];
        let mut max = [f64::NEG_INFINITY; 2];
        for [lon, lat] in coords {
            min = [min[0].min(*lon), min[1].min(*lat)];
            max = [max[0].max(*lon), max[1].max(*lat)];
        }
        Some((
            LonLat::new(min[0], min[1]).ok()?,
            LonLat::new(max[0], max[1]).ok()?,
        ))
    }

    /// The outline of the unit grids under a code prefix — a district's, street's or
    /// community's area, which the grid set does not store — as the union of their
    /// polygons (`geo`'s boolean operations), or `None` if no grid is under it. Grids
    /// share their edges exactly, so the union has no slivers between them. Costs a
    /// union of every grid under it: a caller keeps what it computed.
    pub fn outline_under(&self, prefix: &str) -> Option<Outline> {
        let slots = self.slots_under(prefix);
        if slots.is_empty() {
            return None;
        }
        let polygons: Vec<Polygon<f64>> = slots.flat_map(|slot| self.geometry_of(slot).0).collect();
        Some(::geo::unary_union(&polygons))
    }

    /// The codes of the unit grids under a code prefix, in order.
    pub fn codes_under(&self, prefix: &str) -> &[GridCode] {
        &self.codes[self.slots_under(prefix)]
    }

    /// The outline of several areas together (a street's from its communities'), the
    /// union of theirs: cheaper than [`GridIndex::outline_under`] over all their grids
    /// when the parts are known.
    pub fn union_of(parts: &[&Outline]) -> Outline {
        let polygons: Vec<Polygon<f64>> = parts.iter().flat_map(|p| p.0.iter().cloned()).collect();
        ::geo::unary_union(&polygons)
    }

    /// The slots of the unit grids under a code prefix (empty for a prefix that is not
    /// one).
    fn slots_under(&self, prefix: &str) -> std::ops::Range<usize> {
        const WIDTH: usize = 15;
        if prefix.len() > WIDTH || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return 0..0;
        }
        let span = 10u64.pow((WIDTH - prefix.len()) as u32);
        let low = if prefix.is_empty() {
            0
        } else {
            prefix.parse::<u64>().unwrap_or(0) * span
        };
        let high = low.saturating_add(span);
        let from = self.codes.partition_point(|c| c.value() < low);
        let to = self.codes.partition_point(|c| c.value() < high);
        from..to
    }

    /// Unit grids whose bounding box meets the given GCJ-02 box (for map tiles, scope).
    pub fn codes_in_bbox(&self, min: LonLat, max: LonLat) -> Vec<GridCode> {
        let envelope = AABB::from_corners([min.lon, min.lat], [max.lon, max.lat]);
        let mut codes: Vec<GridCode> = self
            .tree
            .locate_in_envelope_intersecting(&envelope)
            .map(|e| e.data.code)
            .collect();
        codes.sort();
        codes
    }
}

/// Metres per degree of longitude and of latitude near latitude `lat` (the spherical
/// equirectangular approximation).
fn metres_per_degree(lat: f64) -> (f64, f64) {
    const PER_DEGREE_LAT: f64 = 110_574.0;
    const PER_DEGREE_LON_AT_EQUATOR: f64 = 111_320.0;
    (
        PER_DEGREE_LON_AT_EQUATOR * lat.to_radians().cos().max(1e-6),
        PER_DEGREE_LAT,
    )
}

/// The distance from the origin to segment `a`–`b` in a plane.
fn origin_to_segment(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let length2 = dx * dx + dy * dy;
    let t = if length2 > 0.0 {
        (-(a.0 * dx + a.1 * dy) / length2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (a.0 + t * dx).hypot(a.1 + t * dy)
}

/// One polygon without holes whose ring is its bounding box's four corners, each edge
/// parallel to an axis.
fn is_axis_aligned_rectangle(shape: &MultiPolygon<f64>) -> bool {
    let [polygon] = shape.0.as_slice() else {
        return false;
    };
    let ring = &polygon.exterior().0;
    if !polygon.interiors().is_empty() || ring.len() != 5 || ring[0] != ring[4] {
        return false;
    }
    let axis_aligned = ring.windows(2).all(|w| {
        let (a, b) = (w[0], w[1]);
        (a.x == b.x) != (a.y == b.y)
    });
    let xs = ring[..4].iter().map(|c| c.x);
    let ys = ring[..4].iter().map(|c| c.y);
    let distinct = |v: &mut dyn Iterator<Item = f64>| {
        let mut values: Vec<f64> = v.collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        values.len()
    };
    axis_aligned && distinct(&mut xs.clone()) == 2 && distinct(&mut ys.clone()) == 2
}

/// Whether the eastward ray from `p` crosses the closed ring `vertices` (given without
/// its closing vertex) an odd number of times, with the half-open rule of the module docs.
fn ring_crossings_odd(vertices: &[[f64; 2]], p: [f64; 2]) -> bool {
    let Some(&last) = vertices.last() else {
        return false;
    };
    let mut odd = false;
    let mut a = last;
    for &b in vertices {
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let (lo, hi) = if a[1] < b[1] { (a, b) } else { (b, a) };
            let turn = robust::orient2d(
                robust::Coord { x: lo[0], y: lo[1] },
                robust::Coord { x: hi[0], y: hi[1] },
                robust::Coord { x: p[0], y: p[1] },
            );
            if turn > 0.0 {
                odd = !odd;
            }
        }
        a = b;
    }
    odd
}

#[cfg(test)]
mod tests;
