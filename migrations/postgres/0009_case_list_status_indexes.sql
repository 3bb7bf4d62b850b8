-- `GET /v1/cases` with a status filter reads one branch per status (see `cases_list`),
-- each newest first on an index that starts with the scope column and the status. With
-- only `(district, reported_at)` a district supervisor's page of closed cases walked
-- past every newer case of the other statuses first: 4.7–8.5 s with 1,000,000 cases
-- (about 300,000 open ones newer than the first closed one), 30 ms on these indexes.
-- The unit-grid, reporter and assignee branches stay on their own indexes: those sets
-- are small. No `(status, reported_at)`: without statistics SQLite took it for the
-- reporter branch too and walked every closed case of the city (8 s a page).
CREATE INDEX cases_district_status ON cases (district, status, reported_at);
CREATE INDEX cases_street_status ON cases (street, status, reported_at);
CREATE INDEX cases_community_status ON cases (community, status, reported_at);
