-- The catalogue by scope. A sync round reads the entries of its device's scope under
-- their keys (sync-core's `DocMeta::catalogue_keys`: `user:` owner, assignees and
-- writers; `case:`/`patrol:` each district, street, community and unit-grid prefix of
-- the document's grids; `nogrid`) from `(scope_key, seq)`, instead of testing every
-- document written in the city since its cursor (38 % of the server's CPU in the
-- ingest benchmark; 1–1.4 s rounds for a phone of a quiet community at 250,000 cases).
--
-- A document keeps every key it ever had, at its current position: a device that
-- holds a case which moved to another grid (or another assignee) still reads it, and
-- evicts it. `seq` is the document's, set in the same transaction. No foreign key:
-- documents are never deleted, and on PostgreSQL a reference would lock the document
-- row for every key written.
CREATE TABLE catalogue_keys (
    scope_key TEXT NOT NULL,
    doc_id    TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    PRIMARY KEY (scope_key, doc_id)
);
CREATE INDEX catalogue_keys_seq ON catalogue_keys (scope_key, seq);
CREATE INDEX catalogue_keys_doc ON catalogue_keys (doc_id);

-- The keys of the documents stored so far (what `DocMeta::catalogue_keys` gives, and
-- each holding device's user for the writers).
INSERT OR IGNORE INTO catalogue_keys (scope_key, doc_id, seq)
SELECT 'user:' || owner, id, seq FROM documents WHERE owner IS NOT NULL;

WITH RECURSIVE items (doc_id, seq, rest, item) AS (
    SELECT id, seq, assignees || ',', '' FROM documents WHERE assignees <> ''
    UNION ALL
    SELECT doc_id, seq, substr(rest, instr(rest, ',') + 1), substr(rest, 1, instr(rest, ',') - 1)
    FROM items WHERE rest <> ''
)
INSERT OR IGNORE INTO catalogue_keys (scope_key, doc_id, seq)
SELECT 'user:' || item, doc_id, seq FROM items WHERE item <> '';

INSERT OR IGNORE INTO catalogue_keys (scope_key, doc_id, seq)
SELECT 'nogrid', id, seq FROM documents WHERE grids = '';

WITH RECURSIVE items (doc_id, kind, seq, rest, item) AS (
    SELECT id, kind, seq, grids || ',', '' FROM documents WHERE grids <> ''
    UNION ALL
    SELECT doc_id, kind, seq, substr(rest, instr(rest, ',') + 1), substr(rest, 1, instr(rest, ',') - 1)
    FROM items WHERE rest <> ''
),
lengths (len) AS (VALUES (6), (9), (12), (15))
INSERT OR IGNORE INTO catalogue_keys (scope_key, doc_id, seq)
SELECT CASE kind WHEN 'case' THEN 'case:' ELSE 'patrol:' END || substr(item, 1, len), doc_id, seq
FROM items, lengths WHERE length(item) >= len;

INSERT OR IGNORE INTO catalogue_keys (scope_key, doc_id, seq)
SELECT 'user:' || v.user_id, d.id, d.seq
FROM sync_peers p JOIN devices v ON v.actor_id = p.device JOIN documents d ON d.id = p.doc_id;
