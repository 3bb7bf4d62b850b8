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
-- documents are never deleted, and a reference would lock the document row for every
-- key written.
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
INSERT INTO catalogue_keys (scope_key, doc_id, seq)
SELECT DISTINCT 'user:' || u.item, d.id, d.seq
FROM documents d,
     unnest(array_remove(string_to_array(coalesce(d.owner, '') || ',' || d.assignees, ','), '')) AS u (item)
ON CONFLICT DO NOTHING;

INSERT INTO catalogue_keys (scope_key, doc_id, seq)
SELECT 'nogrid', id, seq FROM documents WHERE grids = ''
ON CONFLICT DO NOTHING;

INSERT INTO catalogue_keys (scope_key, doc_id, seq)
SELECT DISTINCT CASE d.kind WHEN 'case' THEN 'case:' ELSE 'patrol:' END || substr(g.item, 1, l.len),
       d.id, d.seq
FROM documents d,
     unnest(array_remove(string_to_array(d.grids, ','), '')) AS g (item),
     (VALUES (6), (9), (12), (15)) AS l (len)
WHERE length(g.item) >= l.len
ON CONFLICT DO NOTHING;

INSERT INTO catalogue_keys (scope_key, doc_id, seq)
SELECT DISTINCT 'user:' || v.user_id, d.id, d.seq
FROM sync_peers p JOIN devices v ON v.actor_id = p.device JOIN documents d ON d.id = p.doc_id
ON CONFLICT DO NOTHING;
