-- Cases as folded (sync-core's `case::fold`): written in the same transaction as the
-- document change they come from, so a query or an assessment never reads a fold
-- older than the document. Times are milliseconds since the Unix epoch, UTC.
CREATE TABLE cases (
    id              TEXT PRIMARY KEY REFERENCES documents (id),
    -- NULL while the document has no valid report.
    status          TEXT,
    kind            TEXT,
    category        TEXT,
    source          TEXT,
    -- The unit grid and its parents (NULL outside every grid).
    district        TEXT,
    street          TEXT,
    community       TEXT,
    grid            TEXT,
    lon             DOUBLE PRECISION,
    lat             DOUBLE PRECISION,
    address         TEXT NOT NULL,
    summary         TEXT NOT NULL,
    reporter        TEXT,
    -- Who it is dispatched to, while dispatched, handled or deferred.
    team            TEXT,
    assignee        TEXT,
    level           TEXT NOT NULL,
    reported_at     BIGINT,
    -- The running step, when it started and when it is due (overdue: due_at < now).
    step            TEXT,
    step_started_at BIGINT,
    due_at          BIGINT,
    closed_at       BIGINT,
    dispatches      INTEGER NOT NULL,
    reworks         INTEGER NOT NULL,
    returns         INTEGER NOT NULL,
    escalations     INTEGER NOT NULL,
    ignored         INTEGER NOT NULL,
    -- Every step run, as JSON: [{step, started_at, due_at, finished_at, by, on_time}].
    steps           TEXT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX cases_district ON cases (district, reported_at);
CREATE INDEX cases_street ON cases (street, reported_at);
CREATE INDEX cases_community ON cases (community, reported_at);
CREATE INDEX cases_grid ON cases (grid);
CREATE INDEX cases_status ON cases (status, due_at);
CREATE INDEX cases_assignee ON cases (assignee);
CREATE INDEX cases_reporter ON cases (reporter);
