-- Assessment of supervisors and dispatchers (issue 23): who accepted (核实), checked
-- (核查) and first dispatched (派遣) each case, and the flags their rates sum
-- (docs/assessment.md). Each person grouping reads its own covering index.
ALTER TABLE case_facts ADD COLUMN accepter TEXT;
ALTER TABLE case_facts ADD COLUMN checker TEXT;
ALTER TABLE case_facts ADD COLUMN dispatcher TEXT;
ALTER TABLE case_facts ADD COLUMN accepted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE case_facts ADD COLUMN accepted_on_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE case_facts ADD COLUMN checked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE case_facts ADD COLUMN checked_on_time INTEGER NOT NULL DEFAULT 0;
ALTER TABLE case_facts ADD COLUMN dispatch_returned INTEGER NOT NULL DEFAULT 0;
CREATE INDEX case_facts_accepter ON case_facts (month, accepter, district, street,
    community, level, accepted, accepted_on_time);
CREATE INDEX case_facts_checker ON case_facts (month, checker, district, street,
    community, level, checked, checked_on_time);
CREATE INDEX case_facts_dispatcher ON case_facts (month, dispatcher, district, street,
    community, level, dispatched, dispatched_on_time, dispatch_returned);
-- The rows written before this have none of it: they are folded again at the next
-- start (`backfill_facts` writes every case that has no row), once each.
DELETE FROM case_facts;
