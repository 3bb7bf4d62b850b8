#!/usr/bin/env bash
# Settling a sync round (the two `sync_peers` statements of `sync_commit`) for the phone
# that holds the most documents, before and after migration 0008 (docs/BENCHMARKS.md, "At
# 1,000,000 cases"): on a database `wangge-bench memory` seeded and ran (its district
# supervisor's phone holds every case), 700 of its records are marked pending as a reply
# would, then each statement is timed on the primary key (`INDEXED BY` the plan before
# 0008) and on 0008's partial index, in a transaction rolled back: nothing changes.
# Usage: bench/settle-query.sh /var/tmp/mem1m.db
set -euo pipefail
db="${1:?usage: $0 SQLITE_FILE (run by wangge-bench memory, migrated to 0008)}"
device="$(sqlite3 -readonly "$db" "SELECT device FROM sync_peers GROUP BY device ORDER BY COUNT(*) DESC LIMIT 1")"
echo "device $device holds $(sqlite3 -readonly "$db" "SELECT COUNT(*) FROM sync_peers WHERE device = '$device'") documents"
for index in sqlite_autoindex_sync_peers_1 sync_peers_pending; do
  echo "--- on $index"
  sqlite3 "$db" <<SQL
.timer on
BEGIN;
UPDATE sync_peers SET pending_serial = 7, pending_heads = confirmed
WHERE device = '$device' AND doc_id IN (SELECT doc_id FROM sync_peers WHERE device = '$device' LIMIT 700);
DELETE FROM sync_peers INDEXED BY $index
WHERE device = '$device' AND pending_serial = 6 AND pending_evict;
UPDATE sync_peers INDEXED BY $index SET
  confirmed = CASE WHEN pending_serial = 7 THEN pending_heads ELSE confirmed END,
  pending_serial = NULL, pending_heads = NULL, pending_evict = FALSE
WHERE device = '$device' AND pending_serial IS NOT NULL;
ROLLBACK;
SQL
done
