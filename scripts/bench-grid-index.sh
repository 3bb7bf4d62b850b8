#!/usr/bin/env bash
# Reproduces the grid index numbers of docs/BENCHMARKS.md: our index (criterion,
# sync-core/benches/grid_index.rs) and the PostGIS peer (scripts/bench-postgis.sh) on the
# same ~760k city grids and the same 100k random points, then prints the ratio.
# Needs PostgreSQL on 127.0.0.1:5432 (CI's); installs PostGIS from Debian if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=target/bench-data

echo "== 1/4 generate the city grids and the points (criterion test mode)"
cargo bench -p wangge-sync-core --bench grid_index -- --test >/dev/null
echo "== 2/4 PostGIS on the same grids and points"
scripts/bench-postgis.sh
echo "== 3/4 our index, measured (also cross-checks every answer with PostGIS)"
cargo bench -p wangge-sync-core --bench grid_index
echo "== 4/4 summary"
python3 - "$DATA" <<'PY'
import json, sys, os
data = sys.argv[1]
ours = json.load(open(f"{data}/grid-index-report.json"))
peer = json.load(open(f"{data}/postgis-result.json"))
def median_ns(name):
    path = f"target/criterion/{name}/new/estimates.json"
    return json.load(open(path))["median"]["point_estimate"]
one = median_ns("grid_index_city_locate/locate_one_gcj02")
one_wgs = median_ns("grid_index_city_locate/locate_one_wgs84")
batch = median_ns("grid_index_city_locate/locate_batch_100k_gcj02") / ours["points"]
build = median_ns("grid_index_city/build") / 1e9
print(f"machine: {os.cpu_count()} cores")
print(f"grids {ours['grids']}, parse {ours['parse_s']:.2f} s, build {build:.3f} s (median), index {ours['index_mib']:.1f} MiB")
print(f"locate one point: {one:.0f} ns (GCJ-02 in), {one_wgs:.0f} ns (WGS-84 in, incl. conversion)")
print(f"batch of {ours['points']} points: ours {batch/1000:.3f} us/point, PostGIS {peer['us_per_point_cpu']:.2f} us/point CPU "
      f"({peer['us_per_point_exec']:.2f} exec) -> {peer['us_per_point_cpu']*1000/batch:.1f}x ({peer['us_per_point_exec']*1000/batch:.1f}x by exec time)")
print(f"answers: {ours['points_in_a_grid']} in a grid (PostGIS {peer['matched']}); cross-check {ours['postgis_cross_check']}")
PY
