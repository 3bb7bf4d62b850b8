#!/usr/bin/env bash
# Peer benchmark: PostGIS answering "which unit grid contains this point" for a
# batch of points (ST_Contains + GiST index), to compare with our Rust grid index.
#
# Runs as root on Debian 12 with PostgreSQL 15 on 127.0.0.1:5432 (trust auth, user
# postgres). Uses (drops and recreates) the database wangge_bench.
#
# Inputs (relative to the repo root, overridable by env vars):
#   OUT     folder for inputs and outputs                             [target/bench-data/city]
#   GRIDS   GeoJSON FeatureCollection of unit grids, properties.code  [$OUT/grids.geojson]
#   POINTS  CSV "lat,lon" lines, no header                            [$OUT/points-gcj02.csv]
#   GIST_BUFFERING  GiST build option, on|auto (see below)              [on]
# Coordinates are taken as plain lon/lat (SRID 4326, planar containment, no datum
# conversion: grids and points are both GCJ-02).
# Outputs:
#   $OUT/postgis-result.json  one-line JSON summary
#   $OUT/postgis-codes.csv    "id,code" per point, no header, ordered by id;
#                                          id = 1-based line number in POINTS, code empty if
#                                          no grid contains the point (ST_Contains excludes
#                                          boundaries; the smallest code wins on overlaps)
#   $OUT/postgis-plan.txt     EXPLAIN ANALYZE of the warm-up run
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-target/bench-data/city}
GRIDS=${GRIDS:-$OUT/grids.geojson}
POINTS=${POINTS:-$OUT/points-gcj02.csv}
DB=wangge_bench
RUNS=3
# GiST build mode: "on" = classic split-based build (slower to build, but here ~30%
# faster lookups than the Hilbert-sorted build that "auto" picks on PG15/PostGIS 3).
GIST_BUFFERING=${GIST_BUFFERING:-on}
t_start=$(date +%s.%N)

die() { echo "bench-postgis: $*" >&2; exit 1; }
[ -s "$GRIDS" ] || die "grids file '$GRIDS' is missing or empty (set GRIDS=...)"
[ -s "$POINTS" ] || die "points file '$POINTS' is missing or empty (set POINTS=...)"
mkdir -p "$OUT"
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# 1. PostGIS (the running server picks the extension up without a restart).
if ! dpkg -s postgresql-15-postgis-3 >/dev/null 2>&1; then
    echo "== installing postgresql-15-postgis-3"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql-15-postgis-3
fi

PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -U "${PGUSER:-postgres}")

# 2. Fresh database.
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
PSQL+=(-d "$DB")
"${PSQL[@]}" -c "CREATE EXTENSION postgis"

# 3. Load grids and points (timed separately, not part of the measure).
echo "== loading $GRIDS and $POINTS"
t_load=$(now)
"${PSQL[@]}" -c "CREATE UNLOGGED TABLE staging (code text, geom text)" \
    -c "CREATE UNLOGGED TABLE points_staging (id serial, lat float8, lon float8)"
python3 scripts/geojson_to_tsv.py "$GRIDS" | "${PSQL[@]}" -c "\copy staging FROM pstdin"
"${PSQL[@]}" -c "\copy points_staging (lat, lon) FROM pstdin WITH (FORMAT csv)" < "$POINTS"
"${PSQL[@]}" -v buffering="$GIST_BUFFERING" <<'SQL'
SET maintenance_work_mem = '1GB';
CREATE TABLE grids AS
    SELECT code, ST_SetSRID(ST_GeomFromGeoJSON(geom), 4326) AS geom FROM staging;
CREATE INDEX grids_geom_idx ON grids USING gist (geom) WITH (buffering = :buffering);
-- points.id is the 1-based line number of the CSV (serial assigned in COPY order).
CREATE TABLE points (id serial PRIMARY KEY, geom geometry(Point, 4326));
INSERT INTO points (id, geom)
    SELECT id, ST_SetSRID(ST_MakePoint(lon, lat), 4326) FROM points_staging ORDER BY id;
DROP TABLE staging, points_staging;
VACUUM ANALYZE grids;
VACUUM ANALYZE points;
SQL
load_s=$(elapsed "$t_load")
echo "   load took ${load_s} s"

# 4. Measure. One backend, no parallel workers, no JIT (compile time is noise here).
# The correlated subquery runs one GiST index scan per point.
# (Kept on one line: psql's \copy needs it so.)
QUERY="SELECT p.id, (SELECT g.code FROM grids g WHERE ST_Contains(g.geom, p.geom)"
QUERY+=" ORDER BY g.code LIMIT 1) AS code FROM points p"
# Backend CPU time (utime + stime, in clock ticks) read by the backend itself from
# /proc/self/stat (fields 14 and 15; the split after ") " skips pid and comm).
TICKS="SELECT split_part(s, ' ', 12)::bigint + split_part(s, ' ', 13)::bigint"
TICKS+=" FROM split_part(pg_read_file('/proc/self/stat'), ') ', 2) AS s"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
    echo "SET max_parallel_workers_per_gather = 0;"
    echo "SET jit = off;"
    # Warm-up run with per-node timing: its plan is shown and checked for the index.
    echo "EXPLAIN (ANALYZE, BUFFERS) $QUERY \g $OUT/postgis-plan.txt"
    for i in $(seq "$RUNS"); do
        # Measured runs: TIMING OFF avoids per-node clock overhead (total time is kept).
        echo "$TICKS \g $tmp/ticks0-$i"
        echo "EXPLAIN (ANALYZE, TIMING OFF, BUFFERS, FORMAT JSON) $QUERY \g $tmp/plan-$i.json"
        echo "$TICKS \g $tmp/ticks1-$i"
    done
} > "$tmp/bench.sql"
echo "== warm-up + $RUNS measured runs"
"${PSQL[@]}" -At -f "$tmp/bench.sql"
# Either a plain or a bitmap index scan on the GiST index, per point (SubPlan loops).
grep -Eq "Index Scan (using|on) grids_geom_idx" "$OUT/postgis-plan.txt" \
    || die "the plan does not use the GiST index, see $OUT/postgis-plan.txt"

# 5. The answers themselves, for cross-checking with the Rust side (not timed).
"${PSQL[@]}" -c "\copy (SELECT id, code FROM ($QUERY) q ORDER BY id) TO pstdout WITH (FORMAT csv)" \
    > "$OUT/postgis-codes.csv"

# Summary.
ngrids=$("${PSQL[@]}" -At -c "SELECT count(*) FROM grids")
pg_version=$("${PSQL[@]}" -At -c "SHOW server_version")
postgis_version=$("${PSQL[@]}" -At -c "SELECT postgis_lib_version()")
echo "== plan of the warm-up run"
sed 's/^/   /' "$OUT/postgis-plan.txt"
python3 - "$tmp" "$RUNS" "$(getconf CLK_TCK)" "$ngrids" "$OUT" "$pg_version" "$postgis_version" <<'PY'
import csv, datetime, json, sys
tmp, runs, hz, ngrids, out, pgv, gisv = sys.argv[1:]
execs, cpus = [], []
for i in range(1, int(runs) + 1):
    plan = json.load(open(f"{tmp}/plan-{i}.json"))[0]
    t0, t1 = (int(open(f"{tmp}/ticks{k}-{i}").read()) for k in (0, 1))
    execs.append(plan["Execution Time"])
    cpus.append((t1 - t0) * 1000.0 / int(hz))
    top = plan["Plan"]
    print(f"   run {i}: exec {execs[-1]:.1f} ms, backend cpu {cpus[-1]:.0f} ms, "
          f"buffers hit {top.get('Shared Hit Blocks')} read {top.get('Shared Read Blocks')}")
with open(f"{out}/postgis-codes.csv") as f:
    rows = list(csv.reader(f))
points, matched = len(rows), sum(1 for r in rows if r[1])
res = {
    "grids": int(ngrids), "points": points, "matched": matched,
    "exec_ms_best": round(min(execs), 3), "cpu_ms_best": round(min(cpus), 3),
    "us_per_point_exec": round(min(execs) * 1000 / points, 3),
    "us_per_point_cpu": round(min(cpus) * 1000 / points, 3),
    "postgis_version": gisv, "postgres_version": pgv,
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
}
with open(f"{out}/postgis-result.json", "w") as f:
    f.write(json.dumps(res) + "\n")
print(f"""== result (PostgreSQL {pgv}, PostGIS {gisv}, 1 backend, best of {runs})
   grids:            {res['grids']}
   points:           {points}
   matched:          {matched}
   exec time (best): {res['exec_ms_best']:.1f} ms  = {res['us_per_point_exec']:.2f} us/point  (EXPLAIN ANALYZE)
   cpu time (best):  {res['cpu_ms_best']:.0f} ms  = {res['us_per_point_cpu']:.2f} us/point  (backend utime+stime, {1000/int(hz):.0f} ms ticks)
   written: {out}/postgis-result.json, {out}/postgis-codes.csv""")
PY
echo "   load: ${load_s} s; whole script: $(elapsed "$t_start") s"
