-- 0007: one index on history instead of two. Records are read and purged by
-- instance, and a step is recorded once per event: history_instance served
-- the first, history_step_once the second, and every record paid an insert
-- into both. This one serves both: unique on the instance and position, with
-- the record's own ID as a tiebreak for every kind but steps (IDs start at
-- 1, so a step's 0 never meets one), so that a second step on an event is
-- refused and any number of failures or operator actions at one position
-- are not. Reads by instance sort their few rows by ID.
CREATE UNIQUE INDEX history_by_instance ON history (process_manager, instance_id, position, (CASE WHEN kind = 'step' THEN 0 ELSE id END));
DROP INDEX history_step_once;
DROP INDEX history_instance;
