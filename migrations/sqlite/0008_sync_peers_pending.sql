-- Settling a round (`sync_commit`: forget acknowledged evictions, confirm what the
-- acknowledged reply sent, clear the rest) touches only the device's records that are
-- pending, a reply's worth. On the primary key `(device, doc_id)` it read every record
-- of the device: a district supervisor's phone holding 1,000,000 cases spent ~0.45 s
-- of each round there (0.22 s for each of the two statements, measured on the
-- `wangge-bench memory` database; 1–1.1 s under load), most of its 556 s first sync.
-- Only pending records are in this index, so it stays a reply's size per device.
CREATE INDEX sync_peers_pending ON sync_peers (device, pending_serial)
    WHERE pending_serial IS NOT NULL;
