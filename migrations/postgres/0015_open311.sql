-- Open311 GeoReport v2 (issue 22): the client apps' API keys and the requests they
-- posted.
--
-- An API key is 32 random bytes (shown once, at `wangge apikey add`); only its SHA-256
-- is stored. A fast hash is enough here, unlike for passwords: a key has 256 bits of
-- entropy, so no dictionary or brute force over the hash can find it, and a lookup is
-- one probe of the unique index per request (argon2 would cost every request ~50 ms
-- and could not be indexed).
CREATE TABLE open311_api_keys (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    -- SHA-256 of the key, hex.
    key_hash        TEXT NOT NULL UNIQUE,
    -- POST requests per minute this key may make; NULL: no limit.
    rate_per_minute INTEGER,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);

-- One row per service request posted through Open311: the token given to the client
-- (`GET tokens/{token}`), the case it became, the key that posted it, and the photo
-- URL the client sent (never fetched; shown back as `media_url`).
CREATE TABLE open311_requests (
    token       TEXT PRIMARY KEY,
    case_id     TEXT NOT NULL UNIQUE,
    api_key_id  TEXT NOT NULL REFERENCES open311_api_keys (id),
    media_url   TEXT,
    created_at  BIGINT NOT NULL
);
