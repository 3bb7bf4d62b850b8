//! `wangge grid generate` and `wangge grid locate`, run as a user would, on the real
//! district boundaries.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use geo::{Centroid, InteriorPoint};
use wangge_sync_core::geo::{LonLat, gcj02_to_wgs84};
use wangge_sync_core::grid::geojson::read_grids;
use wangge_tests::{districts_file, wangge};

struct Generated {
    _dir: tempfile::TempDir,
    grids: PathBuf,
}

/// 上街区 (410106) cut once for every test here.
fn shangjie() -> &'static Generated {
    static GENERATED: OnceLock<Generated> = OnceLock::new();
    GENERATED.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let grids = dir.path().join("shangjie.geojson");
        let out = generate("410106", &grids);
        assert!(out.status.success(), "generate failed: {}", stderr(&out));
        assert!(
            stderr(&out).contains("unit grids in 1 districts"),
            "{}",
            stderr(&out)
        );
        Generated { _dir: dir, grids }
    })
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn run(args: &[&str]) -> Output {
    wangge().args(args).output().expect("running wangge")
}

/// `wangge grid generate --districts <the real file> --adcodes ADCODES --out OUT`.
fn generate(adcodes: &str, out: &Path) -> Output {
    run(&[
        "grid",
        "generate",
        "--districts",
        path(&districts_file()),
        "--adcodes",
        adcodes,
        "--out",
        path(out),
    ])
}

/// `wangge grid locate --grids GRIDS --lat LAT --lon LON [extra…]`.
fn locate(grids: &Path, lat: &str, lon: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "grid",
        "locate",
        "--grids",
        path(grids),
        "--lat",
        lat,
        "--lon",
        lon,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A point well inside some grid of the file, in GCJ-02, and that grid's code.
fn a_grid_interior(grids: &Path, nth: usize) -> (LonLat, String) {
    let set = read_grids(&std::fs::read(grids).expect("grids")).expect("valid grids");
    let grid = &set.grids()[nth % set.grids().len()];
    let p = grid
        .geometry
        .interior_point()
        .or_else(|| grid.geometry.centroid())
        .expect("point");
    (
        LonLat {
            lon: p.x(),
            lat: p.y(),
        },
        grid.code.to_string(),
    )
}

#[test]
fn generate_writes_a_complete_grid_file() {
    let g = shangjie();
    let set = read_grids(&std::fs::read(&g.grids).expect("grids")).expect("valid grids");
    assert!(set.grids().len() > 5_000);
    assert!(
        set.grids()
            .iter()
            .all(|grid| grid.code.district().value() == 410106)
    );
    assert!(!g.grids.with_extension("geojson.partial").exists());
}

#[test]
fn locate_prints_the_grid_and_all_its_levels() {
    let g = shangjie();
    let (p, code) = a_grid_interior(&g.grids, 1234);
    let out = locate(
        &g.grids,
        &p.lat.to_string(),
        &p.lon.to_string(),
        &["--crs", "gcj02"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON output");
    assert_eq!(json["code"], code.as_str());
    assert_eq!(json["district"], "410106");
    assert_eq!(json["district_name"], "上街区");
    assert_eq!(json["street"], &code[..9]);
    assert_eq!(json["community"], &code[..12]);
    assert!(
        json["street_name"]
            .as_str()
            .is_some_and(|n| n.ends_with("街道"))
    );
    assert!(
        json["level3"]
            .as_str()
            .is_some_and(|l| l.starts_with(&code[..12]))
    );

    // The same place as a phone reports it (WGS-84, the default datum).
    let gps = gcj02_to_wgs84(p);
    let out = locate(&g.grids, &gps.lat.to_string(), &gps.lon.to_string(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON output");
    assert_eq!(json["code"], code.as_str());
}

#[test]
fn a_point_outside_every_grid_exits_with_1() {
    let g = shangjie();
    let out = locate(&g.grids, "39.915", "116.404", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("outside every grid"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn locate_a_csv_of_points() {
    let g = shangjie();
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("points.csv");
    let (a, code_a) = a_grid_interior(&g.grids, 10);
    let (b, code_b) = a_grid_interior(&g.grids, 4000);
    let (wa, wb) = (gcj02_to_wgs84(a), gcj02_to_wgs84(b));
    std::fs::write(
        &csv,
        format!(
            "lat,lon\n{},{}\n39.915,116.404\n{},{}\n",
            wa.lat, wa.lon, wb.lat, wb.lon
        ),
    )
    .expect("write csv");
    let out = run(&[
        "grid",
        "locate",
        "--grids",
        path(&g.grids),
        "--points",
        path(&csv),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        vec![
            "lat,lon,code".to_owned(),
            format!("{},{},{code_a}", wa.lat, wa.lon),
            "39.915,116.404,".to_owned(),
            format!("{},{},{code_b}", wb.lat, wb.lon),
        ]
    );
}

#[test]
fn bad_csv_lines_are_named() {
    let g = shangjie();
    let dir = tempfile::tempdir().expect("temp dir");
    for (content, line, what) in [
        ("34.8,113.3\n\n34.8,113.3\n", 2, "empty line"),
        ("34.8,113.3\nabc,113.3\n", 2, "latitude is not a number"),
        ("34.8;113.3\n", 1, "expected lat,lon"),
        ("95.0,113.3\n", 1, "latitude 95"),
        ("34.8,NaN\n", 1, "longitude NaN"),
    ] {
        let csv = dir.path().join("bad.csv");
        std::fs::write(&csv, content).expect("write csv");
        let out = run(&[
            "grid",
            "locate",
            "--grids",
            path(&g.grids),
            "--points",
            path(&csv),
        ]);
        assert_eq!(out.status.code(), Some(2), "{content:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("bad.csv:{line}")),
            "{content:?}: {err}"
        );
        assert!(err.contains(what), "{content:?}: {err}");
    }
}

#[test]
fn bad_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("broken.geojson");
    std::fs::write(&broken, "{\"type\":\"FeatureCollection\",\"features\":[").expect("write");
    let out = locate(&broken, "34.8", "113.3", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("malformed GeoJSON"),
        "{}",
        stderr(&out)
    );

    let out = locate(&dir.path().join("missing.geojson"), "1", "1", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.geojson"), "{}", stderr(&out));

    let out = generate("410199", &dir.path().join("x.geojson"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("410199 is not in the districts file"),
        "{}",
        stderr(&out)
    );

    let out = generate("41010", &dir.path().join("x.geojson"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("41010"), "{}", stderr(&out));
    assert!(!dir.path().join("x.geojson").exists());

    let g = shangjie();
    let out = locate(&g.grids, "NaN", "113.3", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("latitude"), "{}", stderr(&out));
}
