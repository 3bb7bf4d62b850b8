-- Double reports (双报告, issue 8): a problem a field worker reported beyond their own
-- authority (routed to another team) is told to the grid's leader (网格长) and its
-- 下沉 official as well. One row per case and recipient, written once when the server
-- first stores the case, so a recipient who was offline still finds it.
CREATE TABLE double_reports (
    case_id       TEXT NOT NULL,
    recipient     TEXT NOT NULL,
    -- 'grid_leader' or 'official'
    recipient_as  TEXT NOT NULL,
    reporter      TEXT NOT NULL,
    reporter_team TEXT,
    routed_team   TEXT NOT NULL,
    grid          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (case_id, recipient)
);
CREATE INDEX double_reports_recipient ON double_reports (recipient, created_at);
