#!/usr/bin/env bash
# The case list with a status filter before and after migration 0009 (docs/BENCHMARKS.md,
# "Also found, and fixed after these runs"), on a database seeded by `wangge-bench
# memory` and migrated to 0008 (not 0009: this script adds 0009's indexes itself for
# the "after" runs and drops them at the end). SQLite through the `sqlite3` CLI, the
# page of 500 a district supervisor (`mem-supervisor`) asks for, as `cases_list` builds
# it: before, `status IN (…)` in each scope branch; after, one branch per status.
# Best and worst of 3.
# Usage: bench/case-list-status-query.sh /var/tmp/mem1m.db
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
db="${1:?usage: $0 SQLITE_FILE (seeded by wangge-bench memory, migrated to 0008)}"
if [[ -n "$(sqlite3 "$db" "SELECT name FROM sqlite_master WHERE name = 'cases_district_status'")" ]]; then
  echo "$db already has migration 0009's indexes: the 'before' plan cannot be measured on it" >&2
  exit 1
fi
district="$(sqlite3 -readonly "$db" "SELECT district FROM cases GROUP BY district ORDER BY COUNT(*) DESC LIMIT 1")"
street="$(sqlite3 -readonly "$db" "SELECT street FROM cases GROUP BY street ORDER BY COUNT(*) DESC LIMIT 1")"

branch() { # $1 before|after, $2 scope condition, $3 quoted statuses, comma-separated
  if [[ $1 == before ]]; then
    echo "SELECT id FROM (SELECT id FROM cases WHERE $2 AND status IN ($3) ORDER BY reported_at DESC, id LIMIT 500)"
    return
  fi
  local out="" n=0 statuses
  IFS=',' read -ra statuses <<<"$3"
  for status in "${statuses[@]}"; do
    [[ $n -gt 0 ]] && out+=" UNION "
    out+="SELECT id FROM (SELECT id FROM cases WHERE $2 AND status = $status ORDER BY reported_at DESC, id LIMIT 500)"
    n=$((n + 1))
  done
  echo "$out"
}
page() { # $1 before|after, $2 label, $3 scope condition, $4 statuses
  local sql best=999999 worst=0 start end ms
  sql="SELECT COUNT(*) FROM (SELECT * FROM cases WHERE id IN (
    $(branch "$1" "reporter = 'mem-supervisor'" "$4") UNION
    $(branch "$1" "assignee = 'mem-supervisor'" "$4") UNION
    $(branch "$1" "$3" "$4")) ORDER BY reported_at DESC, id LIMIT 500)"
  for _ in 1 2 3; do
    start=$(date +%s%N)
    sqlite3 -readonly "$db" "$sql" >/dev/null
    end=$(date +%s%N)
    ms=$(((end - start) / 1000000))
    ((ms < best)) && best=$ms
    ((ms > worst)) && worst=$ms
  done
  printf '%-7s %-34s %7d – %7d ms\n' "$1" "$2" "$best" "$worst"
}
run() {
  page "$1" "district, closed" "district = '$district'" "'closed'"
  page "$1" "district, voided" "district = '$district'" "'voided'"
  page "$1" "district, closed + voided" "district = '$district'" "'closed','voided'"
  page "$1" "district, dispatched + handled" "district = '$district'" "'dispatched','handled'"
  page "$1" "street, closed" "street = '$street'" "'closed'"
  page "$1" "whole city, closed" "TRUE" "'closed'"
}
echo "district $district, street $street"
run before
trap 'sqlite3 "$db" "DROP INDEX IF EXISTS cases_district_status; DROP INDEX IF EXISTS cases_street_status; DROP INDEX IF EXISTS cases_community_status"' EXIT
sqlite3 "$db" <"$root/migrations/sqlite/0009_case_list_status_indexes.sql"
run after
