-- A document's catalogue position (`seq`) is no longer a unique key, only an index.
--
-- Why: PostgreSQL treats a column with a unique index as a key, and an UPDATE of a key
-- column locks the row FOR UPDATE, which conflicts with the FOR KEY SHARE lock every
-- INSERT into `sync_peers` or `document_chunks` takes on the document it references.
-- A round that rewrote a document's position while another round recorded that a
-- device holds it waited on it, and with the catalogue counter in between the two
-- deadlocked under load (51 `deadlock detected` in one benchmark run). Positions stay
-- unique because only the catalogue counter hands them out, under its row lock; a
-- transaction writes a placeholder (negative, never visible outside it) until its
-- last statements take the counter.
ALTER TABLE documents DROP CONSTRAINT IF EXISTS documents_seq_key;
CREATE INDEX documents_seq ON documents (seq);
