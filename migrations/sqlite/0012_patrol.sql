-- The walk patrol (徒步巡查, issue 8), materialized from the patrol log documents in the
-- transaction that stores them (like `cases`), plus each worker's duties per day.
-- Days are China dates 'YYYY-MM-DD' (text order is date order); times are ms UTC.

-- One row per log (worker and day), replaced on every write of the document.
CREATE TABLE patrol_logs (
    id                TEXT PRIMARY KEY,
    worker            TEXT NOT NULL,
    day               TEXT NOT NULL,
    role              TEXT,
    team              TEXT,
    checkins          INTEGER NOT NULL,
    counted           INTEGER NOT NULL,
    first_at          BIGINT,
    last_at           BIGINT,
    points            INTEGER NOT NULL,
    distance_m        DOUBLE PRECISION NOT NULL,
    walking_ms        BIGINT NOT NULL,
    cases_found       INTEGER NOT NULL,
    reviews           INTEGER NOT NULL,
    verdict           TEXT,
    reviewed_at       BIGINT,
    reviewer          TEXT,
    problems          INTEGER NOT NULL,
    first_received_at BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX patrol_logs_worker ON patrol_logs (worker, day);

-- The units (district, street, community, unit grid) a log concerns on its day: where
-- its check-ins were located and where its worker had duties. Who may review a log is
-- decided here. Keys are only added, never removed (a supervisor keeps seeing a log
-- once it concerned their unit).
CREATE TABLE patrol_log_areas (
    area   TEXT NOT NULL,
    day    TEXT NOT NULL,
    log_id TEXT NOT NULL,
    PRIMARY KEY (area, day, log_id)
);

-- Check-ins, written once: the receive time and the flags are the first receipt's, so
-- a later sync of the same log never moves them.
CREATE TABLE patrol_checkins (
    log_id        TEXT NOT NULL,
    checkin_id    TEXT NOT NULL,
    worker        TEXT NOT NULL,
    day           TEXT NOT NULL,
    at            BIGINT NOT NULL,
    received_at   BIGINT NOT NULL,
    clock_skew_ms BIGINT,
    lon           DOUBLE PRECISION NOT NULL,
    lat           DOUBLE PRECISION NOT NULL,
    accuracy_m    DOUBLE PRECISION,
    claimed_grid  TEXT,
    grid          TEXT,
    level3s       TEXT NOT NULL,
    distance_m    DOUBLE PRECISION,
    counts        BOOLEAN NOT NULL,
    flags         TEXT NOT NULL,
    note          TEXT,
    PRIMARY KEY (log_id, checkin_id)
);

-- The level-3 grids a worker's counted check-ins reached on a day (replaced with the
-- log's row; none while the log stands rejected).
CREATE TABLE patrol_visits (
    day      TEXT NOT NULL,
    worker   TEXT NOT NULL,
    level3   TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    last_at  BIGINT NOT NULL,
    checkins INTEGER NOT NULL,
    PRIMARY KEY (day, worker, level3)
);

-- A worker's duties of a day: the level-3 grids the posting gave, snapshotted once per
-- day (the posting history coverage is judged against; past days are never rewritten).
CREATE TABLE patrol_worker_days (
    day        TEXT NOT NULL,
    worker     TEXT NOT NULL,
    role       TEXT NOT NULL,
    team       TEXT,
    scope      TEXT NOT NULL,
    problem    TEXT,
    duties_at  BIGINT NOT NULL,
    PRIMARY KEY (day, worker)
);
CREATE TABLE patrol_duties (
    day       TEXT NOT NULL,
    worker    TEXT NOT NULL,
    level3    TEXT NOT NULL,
    community TEXT NOT NULL,
    street    TEXT NOT NULL,
    district  TEXT NOT NULL,
    PRIMARY KEY (day, worker, level3)
);
CREATE INDEX patrol_duties_district ON patrol_duties (district, day);
CREATE INDEX patrol_duties_street ON patrol_duties (street, day);
CREATE INDEX patrol_duties_community ON patrol_duties (community, day);

-- Coverage (见巡率) per worker, day and community: duties and how many were walked,
-- recomputed from patrol_duties and patrol_visits by every transaction that changes
-- either for the worker-day, so a city's month is a scan of about one row per
-- worker-day instead of a join of every duty with its visit.
CREATE TABLE patrol_coverage (
    day       TEXT NOT NULL,
    worker    TEXT NOT NULL,
    community TEXT NOT NULL,
    street    TEXT NOT NULL,
    district  TEXT NOT NULL,
    assigned  INTEGER NOT NULL,
    covered   INTEGER NOT NULL,
    first_at  BIGINT,
    last_at   BIGINT,
    PRIMARY KEY (day, worker, community)
);
CREATE INDEX patrol_coverage_district ON patrol_coverage (district, day);
CREATE INDEX patrol_coverage_street ON patrol_coverage (street, day);
CREATE INDEX patrol_coverage_community ON patrol_coverage (community, day);
-- The worker-day's lock: every transaction that changes its duties or visits upserts
-- this row first. On PostgreSQL a second one waits there until the first commits, then
-- recomputes the rollup from what is committed, so no write is counted stale.
CREATE TABLE patrol_day_locks (
    day    TEXT NOT NULL,
    worker TEXT NOT NULL,
    writes BIGINT NOT NULL,
    PRIMARY KEY (day, worker)
);

-- What a supervisor is asked to look at. Never deleted; re-deriving a log never
-- duplicates one (ids are deterministic).
CREATE TABLE patrol_anomalies (
    log_id     TEXT NOT NULL,
    anomaly_id TEXT NOT NULL,
    worker     TEXT NOT NULL,
    day        TEXT NOT NULL,
    kind       TEXT NOT NULL,
    checkin_id TEXT,
    at         BIGINT,
    detail     TEXT NOT NULL,
    found_at   BIGINT NOT NULL,
    PRIMARY KEY (log_id, anomaly_id)
);
CREATE INDEX patrol_anomalies_day ON patrol_anomalies (day, kind);
