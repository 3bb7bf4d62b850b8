#!/usr/bin/env bash
# Reproduces the photo numbers of docs/BENCHMARKS.md: our processing (criterion,
# server/benches/photos.rs) and the peer, ImageMagick's `convert` doing the same two
# resizes with -auto-orient -strip in one process, timed with /usr/bin/time -v, with and
# without shrink-on-load (-define jpeg:size=1280x1280), on the same 12 MP photo; then
# prints the ratios.
#   scripts/bench-photos.sh [runs]   (ImageMagick runs per variant, default 7; median)
# Installs Debian's imagemagick (and time) if missing; uses /usr/bin/convert explicitly.
# Wall time is measured around /usr/bin/time (which rounds to 10 ms), max RSS by it. Only this script needs them; the
# tests never do.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
target=${CARGO_TARGET_DIR:-target}
data=target/bench-data/photo
photo=$data/photo-4000x3000.jpg

# /usr/bin/convert, not whatever `convert` is first on PATH.
if [ ! -x /usr/bin/convert ] || [ ! -x /usr/bin/time ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq imagemagick time >/dev/null
fi

echo "==== 1/4 the photo (criterion test mode generates and caches it)"
cargo bench -p wangge-server --bench photos -- --test >/dev/null
ls -l "$photo"

echo "==== 2/4 ImageMagick, $runs runs per variant"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
magick() { # $1 = variant name, rest = extra leading options
  local name=$1; shift
  : >"$data/magick-$name.tsv"
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s%N)
    /usr/bin/time -v -o "$out/time.txt" /usr/bin/convert "$@" "$photo" -auto-orient -strip \
      \( +clone -resize '1280x1280>' -quality 82 -write "$out/display.jpg" +delete \) \
      -resize '320x320>' -quality 75 "$out/thumb.jpg"
    end=$(date +%s%N)
    python3 - "$out/time.txt" $(((end - start) / 1000)) >>"$data/magick-$name.tsv" <<'PY'
import sys
t = {}
for line in open(sys.argv[1]):
    key, _, value = line.strip().rpartition(": ")
    t[key] = value
# Wall time from the shell in microseconds (time -v rounds to 10 ms); RSS from time -v.
wall = int(sys.argv[2]) / 1e6
print(f"{wall:.3f}\t{int(t['Maximum resident set size (kbytes)']) / 1024:.1f}")
PY
  done
  /usr/bin/identify -format "$name: display %wx%h %b, " "$out/display.jpg"
  /usr/bin/identify -format "thumbnail %wx%h %b\n" "$out/thumb.jpg"
}
/usr/bin/convert -version | head -1
magick plain
magick shrink -define jpeg:size=1280x1280

echo "==== 3/4 ours (criterion)"
cargo bench -p wangge-server --bench photos

echo "==== 4/4 summary"
python3 - "$data" "$target" <<'PY'
import json, os, statistics, sys
data, target = sys.argv[1], sys.argv[2]
def median_s(bench):
    path = f"{target}/criterion/photos/{bench}/new/estimates.json"
    return json.load(open(path))["median"]["point_estimate"] / 1e9
def magick(name):
    rows = [tuple(map(float, line.split())) for line in open(f"{data}/magick-{name}.tsv")]
    return statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows), max(r[1] for r in rows)
ours = json.load(open(f"{data}/report.json"))
process, probe, phone = median_s("server_process_12mp"), median_s("server_probe_12mp"), median_s("phone_prepare_upload_12mp")
print(f"machine: {os.cpu_count()} cores; photo {ours['input_size']} {ours['input_bytes']} bytes")
print(f"ours: process {process*1000:.1f} ms (median), probe {probe*1e9:.0f} ns; heap peak {ours['server_heap_peak_mib']:.1f} MiB, "
      f"RSS high-water {ours['server_rss_hwm_mib']:.1f} MiB; display {ours['display_size']} {ours['display_bytes']} B, "
      f"thumbnail {ours['thumbnail_size']} {ours['thumbnail_bytes']} B")
for name in ("plain", "shrink"):
    wall, rss, rss_max = magick(name)
    print(f"ImageMagick {name}: {wall*1000:.0f} ms wall (median), max RSS {rss:.1f} MiB (median; {rss_max:.1f} max) "
          f"-> ours {wall/process:.2f}x faster, RSS ratio ours/IM {ours['server_rss_hwm_mib']/rss:.2f}")
print(f"phone: prepare_upload {phone*1000:.1f} ms (median), output {ours['phone_output_size']} {ours['phone_output_bytes']} B, "
      f"heap peak {ours['phone_heap_peak_mib']:.1f} MiB")
PY
