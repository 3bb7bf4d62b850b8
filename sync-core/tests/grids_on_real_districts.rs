//! Generation, indexing and GeoJSON round trips on the real Zhengzhou district boundaries.

use std::sync::LazyLock;

use geo::{Area, BoundingRect, Centroid, Contains, Point};
use wangge_sync_core::geo::{Crs, LonLat};
use wangge_sync_core::grid::generate::{GenerateError, GenerateOptions, Lattice, generate};
use wangge_sync_core::grid::geojson::{DistrictBoundary, read_districts, read_grids, write_grids};
use wangge_sync_core::grid::{DistrictCode, GridIndex, GridSet, StreetKind};

static DISTRICTS: LazyLock<Vec<DistrictBoundary>> = LazyLock::new(|| {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/zhengzhou-districts.geojson"
    );
    read_districts(&std::fs::read(path).expect("districts file")).expect("valid districts")
});

/// 上街区: the smallest district (~58 km²), quick to cut.
const SHANGJIE: u32 = 410106;
/// 中牟县: a large county (~1400 km²) with 街道, 镇 and 乡.
const ZHONGMOU: u32 = 410122;

fn district(adcode: u32) -> &'static DistrictBoundary {
    DISTRICTS
        .iter()
        .find(|d| d.code.value() == adcode)
        .expect("district in file")
}

fn generate_only(adcodes: &[u32]) -> GridSet {
    let codes: Vec<DistrictCode> = adcodes
        .iter()
        .map(|a| DistrictCode::new(*a).expect("adcode"))
        .collect();
    generate(
        &DISTRICTS,
        Some(&codes),
        GenerateOptions::default(),
        &mut |_| {},
    )
    .expect("generate")
}

static SHANGJIE_GRIDS: LazyLock<GridSet> = LazyLock::new(|| generate_only(&[SHANGJIE]));

/// A grid that is one whole lattice cell (not clipped, not grown by a sliver).
fn whole_cell(grid: &wangge_sync_core::grid::UnitGrid) -> Option<geo::Rect<f64>> {
    static LATTICE: LazyLock<Lattice> =
        LazyLock::new(|| Lattice::covering(&DISTRICTS, 100.0).expect("lattice"));
    let lattice = &*LATTICE;
    let [polygon] = grid.geometry.0.as_slice() else {
        return None;
    };
    let rect = polygon.bounding_rect()?;
    let is_cell = polygon.exterior().0.len() == 5
        && polygon.interiors().is_empty()
        && (rect.width() - lattice.step_lon).abs() < 1e-12
        && (rect.height() - lattice.step_lat).abs() < 1e-12
        && (polygon.unsigned_area() - rect.to_polygon().unsigned_area()).abs() < 1e-15;
    is_cell.then_some(rect)
}

/// A small deterministic generator (splitmix64), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn the_whole_district_is_covered_once() {
    let set = &*SHANGJIE_GRIDS;
    let boundary = district(SHANGJIE);
    let grid_area: f64 = set.grids().iter().map(|g| g.geometry.unsigned_area()).sum();
    let district_area = boundary.geometry.unsigned_area();
    let relative = (grid_area - district_area).abs() / district_area;
    assert!(
        relative < 1e-6,
        "grids cover {grid_area}, district {district_area}"
    );
    // ~100 m cells over ~58 km².
    assert!(
        (5_000..7_000).contains(&set.grids().len()),
        "{}",
        set.grids().len()
    );

    let index = GridIndex::build(set.clone()).expect("index");
    let bounds = boundary.geometry.bounding_rect().expect("bounds");
    let mut rng = Rng(7);
    let (mut inside, mut outside) = (0, 0);
    for _ in 0..20_000 {
        let lon = bounds.min().x + rng.next_f64() * bounds.width();
        let lat = bounds.min().y + rng.next_f64() * bounds.height();
        let owners = index.containing_gcj02(LonLat { lon, lat });
        if boundary.geometry.contains(&Point::new(lon, lat)) {
            assert_eq!(
                owners.len(),
                1,
                "({lon}, {lat}) inside the district has owners {owners:?}"
            );
            assert_eq!(owners[0].district(), boundary.code);
            inside += 1;
        } else {
            assert!(
                owners.is_empty(),
                "({lon}, {lat}) outside the district has owners {owners:?}"
            );
            outside += 1;
        }
    }
    assert!(
        inside > 5_000 && outside > 1_000,
        "{inside} inside, {outside} outside"
    );
}

#[test]
fn shared_edges_and_corners_have_exactly_one_owner() {
    let set = &*SHANGJIE_GRIDS;
    let index = GridIndex::build(set.clone()).expect("index");
    let mut checked = 0;
    for grid in set.grids() {
        let Some(rect) = whole_cell(grid) else {
            continue;
        };
        let (west, south, north) = (rect.min().x, rect.min().y, rect.max().y);
        // A grid owns its south-west corner and its west edge (shared with its neighbours).
        for p in [
            LonLat {
                lon: west,
                lat: south,
            },
            LonLat {
                lon: west,
                lat: (south + north) / 2.0,
            },
            LonLat {
                lon: (west + rect.max().x) / 2.0,
                lat: south,
            },
        ] {
            assert_eq!(index.containing_gcj02(p), vec![grid.code], "{p:?}");
        }
        checked += 1;
    }
    assert!(checked > 4_000, "only {checked} whole cells");
}

#[test]
fn sequences_run_west_to_east_then_north_to_south() {
    let set = &*SHANGJIE_GRIDS;
    let whole = |g| whole_cell(g).map(|r| Point::from(r.center()));
    let mut pairs = 0;
    for window in set.grids().windows(2) {
        let (a, b) = (&window[0], &window[1]);
        if a.code.community() != b.code.community() {
            continue;
        }
        assert_eq!(b.code.sequence(), a.code.sequence() + 1);
        if let (Some(ca), Some(cb)) = (whole(a), whole(b)) {
            let same_row = (ca.y() - cb.y()).abs() < 1e-7;
            assert!(
                (same_row && ca.x() < cb.x()) || ca.y() > cb.y(),
                "{} at {ca:?} precedes {} at {cb:?}",
                a.code,
                b.code
            );
            pairs += 1;
        }
    }
    assert!(pairs > 3_000, "{pairs}");
    // Every grid's level-3 group is in its community, and the hierarchy is named.
    for g in set.grids() {
        let d = set.describe(g.code).expect("described");
        assert_eq!(d.level3.community(), g.code.community());
        assert_eq!(d.district_name, "上街区");
    }
}

#[test]
fn a_county_has_subdistricts_towns_and_townships() {
    let set = generate_only(&[ZHONGMOU]);
    let streets = &set.hierarchy().streets;
    assert!(streets.len() <= 399, "{}", streets.len());
    for kind in [
        StreetKind::Subdistrict,
        StreetKind::Town,
        StreetKind::Township,
    ] {
        assert!(streets.keys().any(|s| s.kind() == kind), "no {kind:?}");
    }
    // The county seat (its 街道) lies nearer the centre than its 乡.
    let centre = district(ZHONGMOU).geometry.centroid().expect("centre");
    let mean_distance = |kind: StreetKind| {
        let (sum, n) = set
            .grids()
            .iter()
            .filter(|g| g.code.street().kind() == kind)
            .filter_map(|g| g.geometry.centroid())
            .fold((0.0, 0), |(s, n), c| {
                (s + (c.x() - centre.x()).hypot(c.y() - centre.y()), n + 1)
            });
        sum / n as f64
    };
    assert!(mean_distance(StreetKind::Subdistrict) < mean_distance(StreetKind::Township));
}

#[test]
fn a_district_cut_alone_matches_the_same_district_cut_with_others() {
    let alone = &*SHANGJIE_GRIDS;
    let with_neighbour = generate_only(&[SHANGJIE, 410102, SHANGJIE]);
    let same: Vec<_> = with_neighbour
        .grids()
        .iter()
        .filter(|g| g.code.district().value() == SHANGJIE)
        .cloned()
        .collect();
    assert_eq!(same.as_slice(), alone.grids());
}

#[test]
fn geojson_to_index_to_geojson_round_trips_exactly() {
    let mut first = Vec::new();
    write_grids(&SHANGJIE_GRIDS, &mut first).expect("write");
    let read = read_grids(&first).expect("read back");
    assert_eq!(&read, &*SHANGJIE_GRIDS);
    let index = GridIndex::build(read).expect("index");
    let mut second = Vec::new();
    write_grids(&index.to_grid_set(), &mut second).expect("write again");
    assert!(
        first == second,
        "GeoJSON → index → GeoJSON changed the bytes"
    );
}

#[test]
fn a_gps_fix_is_located_in_the_grid_under_its_map_position() {
    let set = &*SHANGJIE_GRIDS;
    let index = GridIndex::build(set.clone()).expect("index");
    let grid = &set.grids()[set.grids().len() / 2];
    let centre = grid.geometry.centroid().expect("centre");
    let on_map = LonLat {
        lon: centre.x(),
        lat: centre.y(),
    };
    let gps = wangge_sync_core::geo::gcj02_to_wgs84(on_map);
    assert_eq!(index.locate(gps, Crs::Wgs84), Some(grid.code));
    assert_ne!(
        index.locate(gps, Crs::Gcj02),
        Some(grid.code),
        "the offset spans several grids"
    );
}

#[test]
fn a_mistyped_cell_size_is_refused_before_any_work() {
    let options = |cell_metres| GenerateOptions {
        cell_metres,
        ..GenerateOptions::default()
    };
    let err = generate(&DISTRICTS, None, options(20.0), &mut |_| {}).expect_err("19M grids");
    assert!(matches!(err, GenerateError::TooManyGrids { estimated } if estimated > 10_000_000));
    let err = generate(&DISTRICTS, None, options(0.0), &mut |_| {}).expect_err("zero");
    assert_eq!(err, GenerateError::BadCellSize(0.0));
    let err = generate(&DISTRICTS, None, options(f64::NAN), &mut |_| {}).expect_err("NaN");
    assert!(matches!(err, GenerateError::BadCellSize(_)));
    let err = generate(&[], None, GenerateOptions::default(), &mut |_| {}).expect_err("empty");
    assert_eq!(err, GenerateError::NoDistricts);
}
