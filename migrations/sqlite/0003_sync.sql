-- Documents and the sync protocol's state (sync-core's `sync` module: ServerStorage).
-- Heads are stored as the concatenation of their 32-byte change hashes, sorted.

-- Each document once, at its latest position in the change catalogue (`seq`, unique
-- and increasing): a device asks for `seq > cursor`. `grids`, `owner` and
-- `assignees` are the document's DocMeta, what scope is decided on.
CREATE TABLE documents (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    seq        BIGINT NOT NULL UNIQUE,
    heads      BLOB NOT NULL,
    grids      TEXT NOT NULL,
    owner      TEXT,
    assignees  TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A document's bytes: a compacted save and the incremental changes appended since,
-- loaded in order (`n`).
CREATE TABLE document_chunks (
    doc_id TEXT NOT NULL REFERENCES documents (id),
    n      BIGINT NOT NULL,
    bytes  BLOB NOT NULL,
    PRIMARY KEY (doc_id, n)
);

-- The catalogue's counter, one row. Taking the next value locks the row until the
-- transaction ends, so positions become visible in the order they were taken and a
-- device reading `seq > cursor` never skips one that commits late.
CREATE TABLE catalogue (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO catalogue (id, seq) VALUES (1, 0);

-- Per device (keyed by its Automerge actor id): the serial of the last reply issued.
CREATE TABLE sync_devices (
    device        TEXT PRIMARY KEY,
    issued_serial BIGINT NOT NULL
);

-- What a device holds of a document: heads it has confirmed, and what the last reply
-- sent (pending until the device's next cursor acknowledges that reply's serial).
CREATE TABLE sync_peers (
    device         TEXT NOT NULL,
    doc_id         TEXT NOT NULL REFERENCES documents (id),
    confirmed      BLOB,
    pending_serial BIGINT,
    pending_heads  BLOB,
    pending_evict  BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (device, doc_id)
);
