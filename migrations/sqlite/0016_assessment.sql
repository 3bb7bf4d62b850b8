-- Assessment (考核评价, issue 23).
--
-- Each case's contribution (sync-core's `assessment::CaseFacts`): 0/1 flags whose sums
-- are the numerators and denominators of the rates in docs/assessment.md. Written in
-- the transaction that writes the case's `cases` row, so a period's figures are sums
-- over narrow rows of one period, never a fold of documents. No row while the case
-- has no valid report. `month` is the month it was reported in, Zhengzhou time.
CREATE TABLE case_facts (
    case_id                 TEXT PRIMARY KEY REFERENCES documents (id),
    month                   TEXT NOT NULL,
    -- The level that had to deal with it in the end: street, district or city.
    level                   TEXT NOT NULL,
    district                TEXT,
    street                  TEXT,
    community               TEXT,
    team                    TEXT,
    handler                 TEXT,
    reporter                TEXT,
    reports                 INTEGER NOT NULL,
    problems                INTEGER NOT NULL,
    own_found               INTEGER NOT NULL,
    registered              INTEGER NOT NULL,
    dispatched              INTEGER NOT NULL,
    dispatched_on_time      INTEGER NOT NULL,
    handled                 INTEGER NOT NULL,
    handled_on_time         INTEGER NOT NULL,
    reworked                INTEGER NOT NULL,
    closed                  INTEGER NOT NULL,
    closed_on_time          INTEGER NOT NULL,
    reported_up_by_street   INTEGER NOT NULL,
    reported_up_by_district INTEGER NOT NULL,
    reply_due               INTEGER NOT NULL,
    replied                 INTEGER NOT NULL,
    satisfied               INTEGER NOT NULL
);
-- Covering: a month's regions and teams, its handlers and its reporters are each an
-- index-only scan in one of these orders, summed as it goes (no table lookups, no sort).
CREATE INDEX case_facts_sums ON case_facts (month, district, street, community, level,
    team, reports, problems, own_found, registered, dispatched, dispatched_on_time,
    handled, handled_on_time, reworked, closed, closed_on_time, reported_up_by_street,
    reported_up_by_district, reply_due, replied, satisfied);
CREATE INDEX case_facts_handler ON case_facts (month, handler, district, street,
    community, level, reports, problems, own_found, registered, dispatched, dispatched_on_time,
    handled, handled_on_time, reworked, closed, closed_on_time, reported_up_by_street,
    reported_up_by_district, reply_due, replied, satisfied);
CREATE INDEX case_facts_reporter ON case_facts (month, reporter, district, street,
    community, level, reports, problems, own_found, registered, dispatched, dispatched_on_time,
    handled, handled_on_time, reworked, closed, closed_on_time, reported_up_by_street,
    reported_up_by_district, reply_due, replied, satisfied);

-- A published month or quarter (发布): the figures and ranking as they stood, never
-- recomputed. `unit` is '' for the city's report, else the district's code.
CREATE TABLE assessment_reports (
    period       TEXT NOT NULL,
    unit         TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    published_by TEXT NOT NULL,
    body         TEXT NOT NULL,
    PRIMARY KEY (period, unit)
);

-- Spot checks (抽查): a supervisor checked an area; each problem found is a case,
-- either one the grid's staff had reported already or a new one (source spot_check)
-- that they had missed.
CREATE TABLE spot_checks (
    id         TEXT PRIMARY KEY,
    area       TEXT NOT NULL,
    checked_at BIGINT NOT NULL,
    checker    TEXT NOT NULL,
    note       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX spot_checks_area ON spot_checks (area, checked_at);
CREATE TABLE spot_check_findings (
    spot_check_id    TEXT NOT NULL REFERENCES spot_checks (id),
    case_id          TEXT NOT NULL,
    already_reported BOOLEAN NOT NULL,
    PRIMARY KEY (spot_check_id, case_id)
);
