-- PostgreSQL's 0005 turns `documents.seq` from a unique key into a plain index, so
-- rewriting a position no longer conflicts with the key-share locks of rows that
-- reference the document. SQLite locks the whole database for a writer, so that
-- conflict cannot arise here, and dropping a UNIQUE constraint would mean rebuilding
-- a table that others reference: the schema keeps its unique index, which the
-- placeholders a transaction writes (negative, distinct within it) satisfy.
SELECT 1;
