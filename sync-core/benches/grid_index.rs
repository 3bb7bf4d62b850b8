//! Grid index benchmarks: GeoJSON parse (reported once), index build, index memory
//! (counting allocator), and locating one point, on the whole city (~760k unit grids,
//! the default) or the six urban districts (`WANGGE_BENCH_SET=urban`, ~110k).
//!
//! Data lives in `target/bench-data/<set>/`: the grids (`grids.geojson`) are generated
//! from `data/` when missing, and the 100k random points that the PostGIS peer
//! (`scripts/bench-postgis.sh`) also answers are written to `points-gcj02.csv`. When
//! `postgis-codes.csv` from that script is present, every answer is cross-checked. Run
//! everything with `scripts/bench-grid-index.sh`.

#![allow(unsafe_code)] // the counting allocator below

use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use wangge_sync_core::geo::{Crs, LonLat, gcj02_to_wgs84};
use wangge_sync_core::grid::generate::{GenerateOptions, generate};
use wangge_sync_core::grid::geojson::{read_districts, read_grids, write_grids};
use wangge_sync_core::grid::{DistrictCode, GridIndex, GridSet};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{Counting, live_bytes};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const POINTS: usize = 100_000;

/// 中原, 二七, 管城, 金水, 上街, 惠济.
const URBAN_DISTRICTS: [u32; 6] = [410102, 410103, 410104, 410105, 410106, 410108];

/// `city` or `urban`, from `WANGGE_BENCH_SET`.
fn bench_set() -> String {
    std::env::var("WANGGE_BENCH_SET").unwrap_or_else(|_| "city".into())
}

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench-data")).join(bench_set())
}

/// splitmix64: deterministic points, the same on every run and for the PostGIS peer.
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

fn grids_geojson() -> Vec<u8> {
    let path = data_dir().join("grids.geojson");
    if let Ok(bytes) = std::fs::read(&path) {
        return bytes;
    }
    let districts = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/zhengzhou-districts.geojson"
    ))
    .expect("data/zhengzhou-districts.geojson");
    let districts = read_districts(&districts).expect("districts");
    let urban: Vec<DistrictCode> = URBAN_DISTRICTS
        .iter()
        .map(|a| DistrictCode::new(*a).expect("urban adcode"))
        .collect();
    let selected = match bench_set().as_str() {
        "city" => None,
        "urban" => Some(urban.as_slice()),
        other => panic!("WANGGE_BENCH_SET must be city or urban, not {other:?}"),
    };
    let set = generate(
        &districts,
        selected,
        GenerateOptions::default(),
        &mut |_| {},
    )
    .expect("generate");
    let mut bytes = Vec::new();
    write_grids(&set, &mut bytes).expect("write");
    std::fs::create_dir_all(data_dir()).expect("bench data dir");
    std::fs::write(&path, &bytes).expect("write grids.geojson");
    bytes
}

/// Uniform random GCJ-02 points over the bounding box of all grids.
fn random_points(set: &GridSet) -> Vec<LonLat> {
    let (mut min, mut max) = ([f64::MAX; 2], [f64::MIN; 2]);
    for grid in set.grids() {
        for polygon in grid.geometry.iter() {
            for c in polygon.exterior().0.iter() {
                min = [min[0].min(c.x), min[1].min(c.y)];
                max = [max[0].max(c.x), max[1].max(c.y)];
            }
        }
    }
    let mut rng = Rng(20_261_127);
    (0..POINTS)
        .map(|_| LonLat {
            lon: min[0] + rng.next_f64() * (max[0] - min[0]),
            lat: min[1] + rng.next_f64() * (max[1] - min[1]),
        })
        .collect()
}

fn write_points(points: &[LonLat]) {
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(data_dir().join("points-gcj02.csv")).expect("points file"),
    );
    for p in points {
        writeln!(out, "{},{}", p.lat, p.lon).expect("write point");
    }
}

/// Compares our answers with PostGIS's (`id,code` lines, id = 1-based point number).
fn cross_check(index: &GridIndex, points: &[LonLat]) -> Option<(usize, usize)> {
    let text = std::fs::read_to_string(data_dir().join("postgis-codes.csv")).ok()?;
    let theirs: Vec<&str> = text
        .lines()
        .map(|l| l.split_once(',').map_or("", |(_, c)| c))
        .collect();
    if theirs.len() != points.len() {
        return None;
    }
    let mismatches = points
        .iter()
        .zip(&theirs)
        .filter(|(p, code)| {
            index
                .locate_gcj02(**p)
                .map(|c| c.to_string())
                .unwrap_or_default()
                != **code
        })
        .count();
    Some((points.len(), mismatches))
}

fn benches(c: &mut Criterion) {
    let bytes = grids_geojson();
    let started = Instant::now();
    let set = read_grids(&bytes).expect("bench grids");
    let parse = started.elapsed();
    drop(bytes);

    let before = live_bytes();
    let input = set.clone();
    let input_bytes = live_bytes() - before;
    let started = Instant::now();
    let index = GridIndex::build(input).expect("index");
    let build_once = started.elapsed();
    let index_bytes = live_bytes() - before;

    let points = random_points(&set);
    write_points(&points);
    let inside = points
        .iter()
        .filter(|p| index.locate_gcj02(**p).is_some())
        .count();
    let report = format!(
        "{{\"grids\":{},\"parse_s\":{:.3},\"build_once_s\":{:.3},\"index_mib\":{:.1},\"grid_set_mib\":{:.1},\"points\":{},\"points_in_a_grid\":{inside},\"postgis_cross_check\":{}}}",
        index.len(),
        parse.as_secs_f64(),
        build_once.as_secs_f64(),
        index_bytes as f64 / (1 << 20) as f64,
        input_bytes as f64 / (1 << 20) as f64,
        points.len(),
        match cross_check(&index, &points) {
            Some((n, bad)) => format!("{{\"compared\":{n},\"mismatches\":{bad}}}"),
            None => "null".into(),
        }
    );
    eprintln!("grid index: {report}");
    std::fs::write(data_dir().join("grid-index-report.json"), &report).expect("report");

    let mut group = c.benchmark_group(format!("grid_index_{}", bench_set()));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("build", |b| {
        b.iter_batched(
            || set.clone(),
            |s| GridIndex::build(s).expect("index"),
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let wgs: Vec<LonLat> = points.iter().map(|p| gcj02_to_wgs84(*p)).collect();
    let mut group = c.benchmark_group(format!("grid_index_{}_locate", bench_set()));
    group.bench_function("locate_one_gcj02", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % points.len();
            black_box(index.locate_gcj02(black_box(points[i])))
        })
    });
    group.bench_function("locate_one_wgs84", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % wgs.len();
            black_box(index.locate(black_box(wgs[i]), Crs::Wgs84))
        })
    });
    group.throughput(Throughput::Elements(points.len() as u64));
    group.sample_size(20);
    group.bench_function("locate_batch_100k_gcj02", |b| {
        b.iter(|| {
            points
                .iter()
                .filter(|p| index.locate_gcj02(**p).is_some())
                .count()
        })
    });
    group.finish();
}

criterion_group!(grid_index, benches);
criterion_main!(grid_index);
