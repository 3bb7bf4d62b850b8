use ::geo::{LineString, MultiPolygon, Polygon, Rect, coord};

use super::*;
use crate::geo::{gcj02_to_wgs84, wgs84_to_gcj02};
use crate::grid::{Hierarchy, UnitGrid};

/// A set whose parents are named after their codes.
pub(crate) fn set_of(grids: Vec<(&str, MultiPolygon<f64>)>) -> GridSet {
    let mut h = Hierarchy::default();
    let grids = grids
        .into_iter()
        .map(|(code, geometry)| {
            let code: GridCode = code.parse().expect("test code");
            let level3 = code.community().level3(1).expect("level 3");
            h.districts.insert(code.district(), "区".into());
            h.streets.insert(code.street(), "街道".into());
            h.communities.insert(code.community(), "社区".into());
            h.level3.insert(level3, "网格".into());
            UnitGrid {
                code,
                level3,
                geometry,
            }
        })
        .collect();
    GridSet::new(h, grids).expect("consistent test set")
}

fn square(x: f64, y: f64, side: f64) -> MultiPolygon<f64> {
    MultiPolygon(vec![
        Rect::new(coord! { x: x, y: y }, coord! { x: x + side, y: y + side }).to_polygon(),
    ])
}

const S: f64 = 0.001;
const X0: f64 = 113.6;
const Y0: f64 = 34.7;

/// Four unit squares: 001 NW, 002 NE, 003 SW, 004 SE, meeting at (X0 + S, Y0 + S).
fn two_by_two() -> GridIndex {
    GridIndex::build(set_of(vec![
        ("410105001001001", square(X0, Y0 + S, S)),
        ("410105001001002", square(X0 + S, Y0 + S, S)),
        ("410105001001003", square(X0, Y0, S)),
        ("410105001001004", square(X0 + S, Y0, S)),
    ]))
    .expect("index")
}

fn at(index: &GridIndex, lon: f64, lat: f64) -> Option<String> {
    index
        .locate(LonLat { lon, lat }, Crs::Gcj02)
        .map(|c| c.sequence().to_string())
}

#[test]
fn interior_points_find_their_grid() {
    let index = two_by_two();
    assert_eq!(at(&index, X0 + 0.5 * S, Y0 + 1.5 * S).as_deref(), Some("1"));
    assert_eq!(at(&index, X0 + 1.5 * S, Y0 + 1.5 * S).as_deref(), Some("2"));
    assert_eq!(at(&index, X0 + 0.5 * S, Y0 + 0.5 * S).as_deref(), Some("3"));
    assert_eq!(at(&index, X0 + 1.5 * S, Y0 + 0.5 * S).as_deref(), Some("4"));
}

#[test]
fn a_point_on_a_shared_edge_belongs_to_exactly_one_grid() {
    let index = two_by_two();
    // North–south edge between 001 and 002: the eastern grid.
    let p = LonLat {
        lon: X0 + S,
        lat: Y0 + 1.5 * S,
    };
    assert_eq!(index.containing_gcj02(p).len(), 1);
    assert_eq!(at(&index, p.lon, p.lat).as_deref(), Some("2"));
    // East–west edge between 001 and 003: the northern grid.
    let p = LonLat {
        lon: X0 + 0.5 * S,
        lat: Y0 + S,
    };
    assert_eq!(index.containing_gcj02(p).len(), 1);
    assert_eq!(at(&index, p.lon, p.lat).as_deref(), Some("1"));
}

#[test]
fn a_vertex_shared_by_four_grids_belongs_to_the_north_eastern_one() {
    let index = two_by_two();
    let p = LonLat {
        lon: X0 + S,
        lat: Y0 + S,
    };
    assert_eq!(index.containing_gcj02(p).len(), 1);
    assert_eq!(at(&index, p.lon, p.lat).as_deref(), Some("2"));
}

#[test]
fn points_outside_every_grid_are_none() {
    let index = two_by_two();
    assert_eq!(at(&index, X0 - 0.5 * S, Y0 + 0.5 * S), None);
    assert_eq!(at(&index, X0 + 0.5 * S, Y0 + 2.5 * S), None);
    assert_eq!(at(&index, 0.0, 0.0), None);
    // The outer boundary follows the same half-open rule: west and south edges are in,
    // east and north edges out, so a neighbouring set would own the latter.
    assert_eq!(at(&index, X0, Y0 + 0.5 * S).as_deref(), Some("3"));
    assert_eq!(at(&index, X0 + S + S, Y0 + 0.5 * S), None);
    assert_eq!(at(&index, X0 + 0.5 * S, Y0 + S + S), None);
}

#[test]
fn a_grid_inside_the_hole_of_another() {
    let outer = Rect::new(
        coord! { x: X0, y: Y0 },
        coord! { x: X0 + 3.0 * S, y: Y0 + 3.0 * S },
    );
    let hole = Rect::new(
        coord! { x: X0 + S, y: Y0 + S },
        coord! { x: X0 + 2.0 * S, y: Y0 + 2.0 * S },
    );
    let ring = |r: Rect<f64>| LineString::from(r.to_polygon().exterior().0.clone());
    let ring_grid = MultiPolygon(vec![Polygon::new(ring(outer), vec![ring(hole)])]);
    let index = GridIndex::build(set_of(vec![
        ("410105001001001", ring_grid),
        ("410105001001002", MultiPolygon(vec![hole.to_polygon()])),
    ]))
    .expect("index");
    assert_eq!(at(&index, X0 + 1.5 * S, Y0 + 1.5 * S).as_deref(), Some("2"));
    assert_eq!(at(&index, X0 + 0.5 * S, Y0 + 1.5 * S).as_deref(), Some("1"));
    assert_eq!(at(&index, X0 + 2.5 * S, Y0 + 1.5 * S).as_deref(), Some("1"));
    // On the hole's edges: exactly one owner each, by the same east/north rule.
    for (lon, lat, owner) in [
        (X0 + S, Y0 + 1.5 * S, "2"), // hole's west edge: the hole grid is east
        (X0 + 2.0 * S, Y0 + 1.5 * S, "1"), // hole's east edge: the ring is east
        (X0 + 1.5 * S, Y0 + S, "2"), // hole's south edge: the hole grid is north
        (X0 + 1.5 * S, Y0 + 2.0 * S, "1"), // hole's north edge: the ring is north
    ] {
        let p = LonLat { lon, lat };
        assert_eq!(index.containing_gcj02(p).len(), 1, "{p:?}");
        assert_eq!(at(&index, lon, lat).as_deref(), Some(owner), "{p:?}");
    }
}

#[test]
fn gps_positions_are_converted_before_matching() {
    // A grid drawn in GCJ-02 around where a phone's WGS-84 fix lands on Chinese maps.
    let wgs = LonLat {
        lon: 113.6654,
        lat: 34.7579,
    };
    let gcj = wgs84_to_gcj02(wgs);
    let index = GridIndex::build(set_of(vec![(
        "410105001001001",
        square(gcj.lon - S / 2.0, gcj.lat - S / 2.0, S),
    )]))
    .expect("index");
    assert!(index.locate(wgs, Crs::Wgs84).is_some());
    assert!(index.locate(gcj, Crs::Gcj02).is_some());
    // Taken as GCJ-02, the raw GPS fix is ~570 m away: outside this grid.
    assert_eq!(index.locate(wgs, Crs::Gcj02), None);
    assert_eq!(
        index
            .locate(gcj02_to_wgs84(gcj), Crs::Wgs84)
            .map(|c| c.sequence()),
        Some(1)
    );
}

#[test]
fn overlapping_input_is_resolved_by_the_smallest_code() {
    let index = GridIndex::build(set_of(vec![
        ("410105001001002", square(X0, Y0, S)),
        ("410105001001001", square(X0 + S / 2.0, Y0, S)),
    ]))
    .expect("index");
    let p = LonLat {
        lon: X0 + 0.75 * S,
        lat: Y0 + 0.5 * S,
    };
    assert_eq!(index.containing_gcj02(p).len(), 2);
    assert_eq!(at(&index, p.lon, p.lat).as_deref(), Some("1"));
}

#[test]
fn the_index_gives_back_the_set_it_was_built_from() {
    let set = set_of(vec![
        ("410105001001001", square(X0, Y0 + S, S)),
        ("410105001001002", square(X0 + S, Y0 + S, S)),
    ]);
    let index = GridIndex::build(set.clone()).expect("index");
    assert_eq!(index.to_grid_set(), set);
    assert_eq!(index.len(), 2);
    let code: GridCode = "410105001001002".parse().expect("code");
    assert_eq!(index.geometry(code), Some(square(X0 + S, Y0 + S, S)));
    assert_eq!(
        index.describe(code).map(|d| d.street_name),
        Some("街道".into())
    );
    let bbox = index.codes_in_bbox(
        LonLat {
            lon: X0 + 1.5 * S,
            lat: Y0 + 1.5 * S,
        },
        LonLat {
            lon: X0 + 3.0 * S,
            lat: Y0 + 3.0 * S,
        },
    );
    assert_eq!(bbox, vec![code]);
}

#[test]
fn an_area_is_bounded_and_outlined_by_the_union_of_its_grids() {
    use ::geo::Area as _;
    let index = two_by_two();
    let (min, max) = index.bounds_under("410105001").expect("the street's box");
    assert_eq!((min.lon, min.lat), (X0, Y0));
    assert!((max.lon - (X0 + 2.0 * S)).abs() < 1e-12 && (max.lat - (Y0 + 2.0 * S)).abs() < 1e-12);
    assert_eq!(index.bounds_under(""), index.bounds_under("410105"));
    assert_eq!(index.bounds_under("410102"), None);
    assert_eq!(index.bounds_under("not a code"), None);
    // Four squares sharing their edges are one square, with no seam left inside.
    let outline = index.outline_under("410105001001").expect("the community");
    assert_eq!(outline.0.len(), 1);
    assert!(outline.0[0].interiors().is_empty());
    assert!((outline.unsigned_area() - 4.0 * S * S).abs() < 1e-12);
    assert_eq!(index.outline_under("410105002"), None);
    // A parent's outline from its parts' is the same area.
    let halves: Vec<Outline> = [
        "410105001001001",
        "410105001001002",
        "410105001001003",
        "410105001001004",
    ]
    .iter()
    .map(|c| index.outline_under(c).expect("a grid"))
    .collect();
    let joined = GridIndex::union_of(&halves.iter().collect::<Vec<_>>());
    assert!((joined.unsigned_area() - outline.unsigned_area()).abs() < 1e-12);
    assert_eq!(index.codes_under("410105001").len(), 4);
    assert!(index.codes_under("4101050019").is_empty());
}
