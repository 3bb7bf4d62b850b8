#!/usr/bin/env bash
# Sizes of the phone library (docs/BENCHMARKS.md, "Library size"): the release and
# `mobile` builds for this machine, and for aarch64 Linux when Debian's cross gcc is
# installed (apt-get install gcc-aarch64-linux-gnu; rustup target add
# aarch64-unknown-linux-gnu), plus the biggest crates by symbol size.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-target}
lib=libwangge_mobile_ffi.so

cargo build --locked --release -p wangge-mobile-ffi --lib
cargo build --locked --profile mobile -p wangge-mobile-ffi --lib
stripped=$(mktemp)
cp "$T/release/$lib" "$stripped" && strip "$stripped"
printf '%-40s %12s %12s\n' build bytes gzip-9
printf '%-40s %12s %12s\n' "x86_64 release" "$(stat -c %s "$T/release/$lib")" -
printf '%-40s %12s %12s\n' "x86_64 release, stripped" "$(stat -c %s "$stripped")" "$(gzip -9 -c "$stripped" | wc -c)"
printf '%-40s %12s %12s\n' "x86_64 mobile" "$(stat -c %s "$T/mobile/$lib")" "$(gzip -9 -c "$T/mobile/$lib" | wc -c)"
rm -f "$stripped"

if command -v aarch64-linux-gnu-gcc >/dev/null \
  && rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu; then
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
    cargo build --locked --profile mobile --target aarch64-unknown-linux-gnu -p wangge-mobile-ffi --lib
  a="$T/aarch64-unknown-linux-gnu/mobile/$lib"
  printf '%-40s %12s %12s\n' "aarch64 linux mobile" "$(stat -c %s "$a")" "$(gzip -9 -c "$a" | wc -c)"
else
  echo "aarch64: skipped (no aarch64-linux-gnu-gcc or rust target)"
fi

echo
echo "largest crates by symbol size (x86_64 release):"
nm -S --size-sort -C "$T/release/$lib" 2>/dev/null | awk '
  { size = strtonum("0x" $2); $1 = $2 = $3 = ""; name = $0; gsub(/^ +/, "", name); sub(/^</, "", name)
    split(name, parts, "::"); crate = parts[1]
    if (crate ~ /^[a-z_0-9]+$/) total[crate] += size; else total["(other)"] += size }
  END { for (c in total) printf "%10d %s\n", total[c], c }' | sort -rn | head -12
