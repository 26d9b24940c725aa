-- 0004: history records which node wrote them under which partition lease.
ALTER TABLE history ADD COLUMN node TEXT NOT NULL DEFAULT '';
ALTER TABLE history ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
