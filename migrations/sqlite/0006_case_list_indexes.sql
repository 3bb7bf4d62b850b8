-- `GET /v1/cases` lists a scope newest first as a union of branches (the caller's
-- reports, their dispatches, each grid prefix), each read from its own index in
-- `reported_at` order, so a page costs the page, not the scope. The district, street
-- and community indexes already end in `reported_at`; these give the other branches
-- (and the whole city) theirs.
DROP INDEX cases_grid;
CREATE INDEX cases_grid ON cases (grid, reported_at);
DROP INDEX cases_assignee;
CREATE INDEX cases_assignee ON cases (assignee, reported_at);
DROP INDEX cases_reporter;
CREATE INDEX cases_reporter ON cases (reporter, reported_at);
CREATE INDEX cases_reported ON cases (reported_at);
