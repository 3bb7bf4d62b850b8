-- Photos (blobs), named by the SHA-256 of the uploaded bytes: resumable uploads, the
-- accepted photos with what their EXIF said, their served derivatives, and garbage
-- collection. Bytes live in the database (one consistency domain with the cases that
-- reference them; see docs/plans/issue6-blobs.md).

-- A half upload, one per (photo, device): two phones never write into each other's.
-- `received` moves only with a whole chunk (the chunk row is in the same transaction).
CREATE TABLE blob_uploads (
    sha256     TEXT NOT NULL,
    device     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    length     BIGINT NOT NULL,
    received   BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- updated_at + the configured time to live, renewed by every chunk.
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (sha256, device)
);
CREATE INDEX blob_uploads_expiry ON blob_uploads (expires_at);
CREATE INDEX blob_uploads_device ON blob_uploads (device);

CREATE TABLE blob_upload_chunks (
    sha256 TEXT NOT NULL,
    device TEXT NOT NULL,
    start  BIGINT NOT NULL,
    bytes  BYTEA NOT NULL,
    PRIMARY KEY (sha256, device, start),
    FOREIGN KEY (sha256, device) REFERENCES blob_uploads (sha256, device) ON DELETE CASCADE
);

-- An accepted photo. The time and position read from its EXIF are the case's evidence
-- and are never served with the image. `released_at`: since when no stored case
-- references it (NULL while one does); garbage collection deletes it a grace period
-- later, and only if still nothing references it at that moment.
CREATE TABLE blobs (
    sha256      TEXT PRIMARY KEY,
    size        BIGINT NOT NULL,
    format      TEXT NOT NULL,
    width       BIGINT NOT NULL,
    height      BIGINT NOT NULL,
    taken_at    BIGINT,
    lon         DOUBLE PRECISION,
    lat         DOUBLE PRECISION,
    accuracy    DOUBLE PRECISION,
    uploaded_by TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    released_at BIGINT
);
CREATE INDEX blobs_released ON blobs (released_at) WHERE released_at IS NOT NULL;

-- What is served: freshly encoded JPEGs without any metadata.
CREATE TABLE blob_derivatives (
    sha256  TEXT NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    variant TEXT NOT NULL,
    width   BIGINT NOT NULL,
    height  BIGINT NOT NULL,
    etag    TEXT NOT NULL,
    bytes   BYTEA NOT NULL,
    PRIMARY KEY (sha256, variant)
);

-- The uploaded bytes themselves, only with WANGGE_PHOTO_KEEP_ORIGINAL; never served.
CREATE TABLE blob_originals (
    sha256 TEXT PRIMARY KEY REFERENCES blobs (sha256) ON DELETE CASCADE,
    bytes  BYTEA NOT NULL
);

-- Garbage collection's state. `backfilled`: every stored case's photos are in
-- `case_photos` (true at once on a database without cases; otherwise after
-- `wangge blobs backfill`): until then nothing is deleted for being unreferenced.
CREATE TABLE blob_gc (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    last_pass_at BIGINT NOT NULL,
    backfilled   BOOLEAN NOT NULL
);
INSERT INTO blob_gc (id, last_pass_at, backfilled)
SELECT 1, 0, NOT EXISTS (SELECT 1 FROM documents WHERE kind = 'case');

-- JPEG bytes do not compress: keep PostgreSQL from trying (pglz) on every write.
ALTER TABLE blob_upload_chunks ALTER COLUMN bytes SET STORAGE EXTERNAL;
ALTER TABLE blob_derivatives ALTER COLUMN bytes SET STORAGE EXTERNAL;
ALTER TABLE blob_originals ALTER COLUMN bytes SET STORAGE EXTERNAL;
