-- The photos each stored case references now (the SHA-256 of each photo entry), written
-- in the transaction that stores the case, like its `cases` row: who may see a photo
-- (a user who may see a case referencing it) and which photos nothing references any
-- more (garbage collection) are answered from here. No foreign keys, as in
-- `catalogue_keys`: a case may reference a photo before it is uploaded.
-- Cases stored before this migration get their rows when next written; until a
-- backfill has run, nothing may be deleted for being unreferenced.
CREATE TABLE case_photos (
    sha256  TEXT NOT NULL,
    case_id TEXT NOT NULL,
    PRIMARY KEY (sha256, case_id)
);
CREATE INDEX case_photos_case ON case_photos (case_id);
