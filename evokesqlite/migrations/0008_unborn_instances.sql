-- 0008: fenced instance updates are written as upserts (see Tx.PutInstances):
-- a row that would be inserted instead of updated (its instance does not
-- exist) carries a negative created_at, and this index, empty at rest, finds
-- such rows at once so that the write fails as fenced. No update assigns
-- created_at, so the index costs nothing on the hot path.
CREATE INDEX instances_unborn ON instances (created_at) WHERE created_at < 0;
