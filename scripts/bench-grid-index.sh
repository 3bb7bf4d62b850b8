#!/usr/bin/env bash
# Reproduces the grid index numbers of docs/BENCHMARKS.md: our index (criterion,
# sync-core/benches/grid_index.rs) and the PostGIS peer (scripts/bench-postgis.sh) on the
# same grids and the same 100k random points, then prints the ratio.
#   scripts/bench-grid-index.sh [city|urban ...]   (default: city, then urban)
# Needs PostgreSQL on 127.0.0.1:5432 (CI's); installs PostGIS from Debian if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(city urban)

for set in "${sets[@]}"; do
  data=target/bench-data/$set
  echo "==== $set: 1/4 generate the grids and the points (criterion test mode)"
  WANGGE_BENCH_SET=$set cargo bench -p wangge-sync-core --bench grid_index -- --test >/dev/null
  echo "==== $set: 2/4 PostGIS on the same grids and points"
  OUT=$data scripts/bench-postgis.sh
  echo "==== $set: 3/4 our index, measured (also cross-checks every answer with PostGIS)"
  WANGGE_BENCH_SET=$set cargo bench -p wangge-sync-core --bench grid_index
  echo "==== $set: 4/4 summary"
  python3 - "$set" "$data" <<'PY'
import json, os, sys
name, data = sys.argv[1], sys.argv[2]
ours = json.load(open(f"{data}/grid-index-report.json"))
peer = json.load(open(f"{data}/postgis-result.json"))
def median_ns(bench):
    return json.load(open(f"target/criterion/{bench}/new/estimates.json"))["median"]["point_estimate"]
one = median_ns(f"grid_index_{name}_locate/locate_one_gcj02")
one_wgs = median_ns(f"grid_index_{name}_locate/locate_one_wgs84")
batch = median_ns(f"grid_index_{name}_locate/locate_batch_100k_gcj02") / ours["points"]
build = median_ns(f"grid_index_{name}/build") / 1e9
print(f"[{name}] machine: {os.cpu_count()} cores")
print(f"[{name}] grids {ours['grids']}, parse {ours['parse_s']:.2f} s, build {build:.3f} s (median), index {ours['index_mib']:.1f} MiB")
print(f"[{name}] locate one point: {one:.0f} ns (GCJ-02 in), {one_wgs:.0f} ns (WGS-84 in, incl. conversion)")
print(f"[{name}] batch of {ours['points']} points: ours {batch/1000:.3f} us/point, PostGIS {peer['us_per_point_cpu']:.2f} us/point CPU "
      f"({peer['us_per_point_exec']:.2f} exec) -> {peer['us_per_point_cpu']*1000/batch:.1f}x ({peer['us_per_point_exec']*1000/batch:.1f}x by exec time)")
print(f"[{name}] answers: {ours['points_in_a_grid']} in a grid (PostGIS {peer['matched']}); cross-check {ours['postgis_cross_check']}")
PY
done
