-- Intake (issue 22): the caller of a case taken in by the 12319 hotline or from a
-- citizen (Open311). Personal data stays here, on the server: the synced case
-- document never holds a name, a phone number or an e-mail address, so no field
-- phone ever does. One row per case, written before the case document.
CREATE TABLE case_contacts (
    case_id     TEXT PRIMARY KEY,
    -- 'hotline' or 'citizen' (the case's source)
    source      TEXT NOT NULL,
    name        TEXT,
    phone       TEXT,
    email       TEXT,
    wants_reply BOOLEAN NOT NULL,
    -- The hotline ticket number (工单号) or the Open311 request's token.
    ticket      TEXT,
    -- Who took the call: a user id, or 'open311:<key name>'.
    taken_by    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- A case voided as a duplicate (作废, 重复) of another: the survivor's reply goes to
-- the duplicate's caller too.
CREATE TABLE case_duplicates (
    case_id      TEXT PRIMARY KEY,
    duplicate_of TEXT NOT NULL,
    marked_by    TEXT NOT NULL,
    marked_at    BIGINT NOT NULL
);
CREATE INDEX case_duplicates_of ON case_duplicates (duplicate_of);

-- Possible duplicates: open cases of a category within a box around a point.
CREATE INDEX cases_category_lat ON cases (category, lat);
