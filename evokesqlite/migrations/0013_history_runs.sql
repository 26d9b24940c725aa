-- 0013: a history row may hold a run of one instance's steps written
-- together (a saga's chained steps): its record is then an array of the
-- records' arrays, each followed by its position and ID (see
-- parseHistoryRow). Nothing in the schema changes, but a binary from before
-- cannot read such rows: the version moves so that it refuses the file
-- (ErrSchemaTooNew) instead of failing on the first history it reads. A
-- command run with its step has no outcome row any more (its events are its
-- record), which an older binary would show as pending.
SELECT 1;
