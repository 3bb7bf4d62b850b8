#!/usr/bin/env bash
# The case list query before and after migration 0006 (docs/BENCHMARKS.md, "(1) fixed"):
# 250,000 synthetic `cases` rows (17 streets, 1,000 reporters) in SQLite (the `sqlite3`
# CLI) and in PostgreSQL (`psql`, a scratch schema dropped at the end), a 50-row page
# of a district supervisor and of a street worker with a status filter, timed with the
# old `OR` query on the 0001–0005 indexes and with the `UNION` query `cases_list` now
# builds on the 0006 indexes.
# Usage: bench/case-list-query.sh [postgres://postgres@127.0.0.1:5432/test]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pg="${1:-postgres://postgres@127.0.0.1:5432/test}"
work="$(mktemp -d)"
trap 'rm -rf "$work"; psql -q "$pg" -c "DROP SCHEMA IF EXISTS case_list_bench CASCADE" 2>/dev/null || true' EXIT

rows() { # $1: sqlite | postgres
  local pad3 pad7 id
  if [[ $1 == sqlite ]]; then
    pad3() { echo "printf('%03d', $1)"; }
    id="printf('case-%07d', i)"; local from="n"
    echo "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < 249999)"
  else
    pad3() { echo "lpad(($1)::text, 3, '0')"; }
    id="'case-' || lpad(i::text, 7, '0')"; local from="generate_series(0, 249999) AS i"
  fi
  cat <<SQL
INSERT INTO cases (id, status, kind, category, source, district, street, community, grid,
  lon, lat, address, summary, reporter, team, assignee, level, reported_at, step,
  step_started_at, due_at, closed_at, dispatches, reworks, returns, escalations, ignored,
  steps, updated_at)
SELECT $id, CASE i % 5 WHEN 0 THEN 'dispatched' WHEN 1 THEN 'reported' ELSE 'closed' END,
  'event', 'E0102', 'patrol', '410105', '410105' || $(pad3 "i % 17"),
  '410105' || $(pad3 "i % 17") || $(pad3 "i % 13"),
  '410105' || $(pad3 "i % 17") || $(pad3 "i % 13") || $(pad3 "i % 64"),
  113.6, 34.7, '', '', 'u' || (i % 1000), 'sanitation', 'u' || ((i * 7) % 1000), 'street',
  1700000000000 + i * 1000, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, '[]', 0 FROM $from;
SQL
}

branch() { # $1: condition
  echo "SELECT id FROM (SELECT id FROM cases WHERE $1 ORDER BY reported_at DESC, id LIMIT 50)"
}
old_district="SELECT count(*) FROM (SELECT * FROM cases WHERE (reporter = 'u5' OR assignee = 'u5' OR district = '410105') ORDER BY reported_at DESC, id LIMIT 50 OFFSET 0) AS page;"
old_street="SELECT count(*) FROM (SELECT * FROM cases WHERE (reporter = 'u5' OR assignee = 'u5' OR street = '410105003') AND status IN ('dispatched') ORDER BY reported_at DESC, id LIMIT 50 OFFSET 0) AS page;"
union() { # $1: scope condition, $2: extra condition
  echo "SELECT count(*) FROM (SELECT * FROM cases WHERE id IN ($(branch "reporter = 'u5'$2") AS b0 UNION $(branch "assignee = 'u5'$2") AS b1 UNION $(branch "$1$2") AS b2) ORDER BY reported_at DESC, id LIMIT 50 OFFSET 0) AS page;"
}
new_district="$(union "district = '410105'" "")"
new_street="$(union "street = '410105003'" " AND status IN ('dispatched')")"

echo "== SQLite ($(sqlite3 --version | cut -d' ' -f1))"
db="$work/cases.db"
for f in "$root"/migrations/sqlite/000[1-5]_*.sql; do sqlite3 "$db" < "$f" > /dev/null; done
rows sqlite | sqlite3 "$db"
printf '.timer on\n%s\n%s\n' "$old_district" "$old_street" | sqlite3 "$db" | sed 's/^/before: /'
sqlite3 "$db" < "$root/migrations/sqlite/0006_case_list_indexes.sql"
printf '.timer on\n%s\n%s\n' "$new_district" "$new_street" | sqlite3 "$db" | sed 's/^/after:  /'

echo "== PostgreSQL"
psql -q "$pg" -c "DROP SCHEMA IF EXISTS case_list_bench CASCADE; CREATE SCHEMA case_list_bench;"
{
  echo "SET search_path = case_list_bench; SET session_replication_role = replica;"
  cat "$root"/migrations/postgres/000[1-5]_*.sql
  rows postgres
  echo "ANALYZE cases;"
} | psql -q "$pg" > /dev/null
printf 'SET search_path = case_list_bench;\n\\timing on\n%s\n%s\n' "$old_district" "$old_street" \
  | psql -q "$pg" | grep Time | sed 's/^/before: /'
{ echo "SET search_path = case_list_bench;"; cat "$root/migrations/postgres/0006_case_list_indexes.sql"; echo "ANALYZE cases;"; } \
  | psql -q "$pg" > /dev/null
printf 'SET search_path = case_list_bench;\n\\timing on\n%s\n%s\n' "$new_district" "$new_street" \
  | psql -q "$pg" | grep Time | sed 's/^/after:  /'
