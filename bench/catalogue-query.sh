#!/usr/bin/env bash
# A sync round's catalogue query before and after migration 0007 (docs/BENCHMARKS.md,
# "Catalogue by scope key"), on a database seeded by `wangge-bench memory` (real case
# documents; SQLite through the `sqlite3` CLI, 3 runs each): the old query (every
# document written since the cursor, tested with an `EXISTS` into `sync_peers` and
# grid-code `LIKE`s) against the `UNION` of `(scope_key, seq)` ranges the server now
# builds, for a phone of a busy community, a phone of a community without cases, and
# a district supervisor, each from cursor 0 (a first page of 512) and from near the
# end of the catalogue (a round after a short time offline). Read-only.
# Usage: bench/catalogue-query.sh /var/tmp/mem1m.db
set -euo pipefail
db="${1:?usage: $0 SQLITE_FILE (seeded by wangge-bench memory, migrated to 0007)}"
q() { sqlite3 -readonly "$db" "$1"; }
[[ "$(q "SELECT COUNT(*) FROM sqlite_master WHERE name = 'catalogue_keys'")" == 1 ]] ||
  { echo "$db has no catalogue_keys: run \`wangge migrate --database sqlite://$db\`" >&2; exit 1; }

latest="$(q "SELECT MAX(seq) FROM documents")"
busy="$(q "SELECT community FROM cases GROUP BY community ORDER BY COUNT(*) DESC LIMIT 1")"
user="$(q "SELECT reporter FROM cases WHERE community = '$busy' AND reporter IS NOT NULL LIMIT 1")"
district="${busy:0:6}"
# A community of the district's grids with no case (the memory bench keeps some empty).
quiet="$(q "SELECT substr(code, 1, 12) FROM grids WHERE code LIKE '$district%'
  AND substr(code, 1, 12) NOT IN (SELECT community FROM cases WHERE community IS NOT NULL)
  LIMIT 1")"
[[ -n "$quiet" ]] || quiet="${district}999999"
echo "$(q "SELECT COUNT(*) FROM documents") documents, $(q "SELECT COUNT(*) FROM catalogue_keys") keys; latest position $latest"
echo "busy community $busy (user $user), quiet community $quiet, district $district"

old() { # $1 after, $2 user ('' for none), $3 grid prefix
  local user_part=""
  [[ -n "$2" ]] && user_part="OR owner = '$2' OR (',' || assignees || ',') LIKE '%,$2,%'"
  echo "SELECT COUNT(*), MAX(seq) FROM (SELECT seq FROM documents WHERE seq > $1 AND (
    EXISTS (SELECT 1 FROM sync_peers p WHERE p.device = 'bench-device' AND p.doc_id = documents.id)
    $user_part OR (kind = 'case' AND (grids LIKE '$3%' OR grids LIKE '%,$3%')))
    ORDER BY seq LIMIT 512)"
}
new() { # $1 after, $2.. keys
  local after="$1" sql="" n=0
  shift
  for key in "$@"; do
    [[ $n -gt 0 ]] && sql+=" UNION "
    sql+="SELECT doc_id FROM (SELECT doc_id FROM catalogue_keys WHERE scope_key = '$key'
      AND seq > $after ORDER BY seq LIMIT 512)"
    n=$((n + 1))
  done
  echo "SELECT COUNT(*), MAX(seq) FROM (SELECT seq FROM documents WHERE id IN ($sql)
    ORDER BY seq LIMIT 512)"
}
timed() { # $1 label, $2 sql: rows and the best and worst of 3 runs
  local times=() out=""
  for _ in 1 2 3; do
    local start end
    start=$(date +%s%N)
    out="$(q "$2")"
    end=$(date +%s%N)
    times+=("$(( (end - start) / 1000 ))")
  done
  IFS=$'\n' sorted=($(sort -n <<<"${times[*]}")); unset IFS
  awk -v l="$1" -v o="$out" -v lo="${sorted[0]}" -v hi="${sorted[2]}" \
    'BEGIN { printf "%-40s %-18s %9.1f – %9.1f ms\n", l, o, lo / 1000, hi / 1000 }'
}

recent=$((latest - 2000))
for after in 0 "$recent"; do
  echo "--- from position $after (rows, last position; best – worst of 3)"
  timed "old: phone of the busy community" "$(old "$after" "$user" "$busy")"
  timed "new: phone of the busy community" "$(new "$after" "case:$busy" "user:$user")"
  timed "old: phone of the quiet community" "$(old "$after" "bench-nobody" "$quiet")"
  timed "new: phone of the quiet community" "$(new "$after" "case:$quiet" "user:bench-nobody")"
  timed "old: district supervisor" "$(old "$after" "" "$district")"
  timed "new: district supervisor" "$(new "$after" "case:$district")"
done
