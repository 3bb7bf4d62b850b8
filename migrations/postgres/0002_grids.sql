-- Unit grids (万米单元网格): imported by `wangge grid import` or `wangge demo`, loaded into
-- the in-memory grid index at start. The code's prefixes are the street (9 digits),
-- community (12) and district (6), so scope queries are prefix matches on the key.

CREATE TABLE grids (
    code    TEXT PRIMARY KEY,
    -- The GeoJSON Feature (GCJ-02) with its GridDescription properties, as written by
    -- `wangge grid generate`.
    feature TEXT NOT NULL
);
