-- 0012: a command outcome's payload in one column, as history's since
-- 0011. Outcomes are looked up by command ID and purged by time; the rest
-- is a JSON array:
--   [type, aggregate_type, aggregate_id, process_manager, instance_id,
--    status, error, events]
-- readable in SQL as CAST(record AS TEXT) ->> 5 and so on; rejected (1 for
-- a rejected command) is a column of its own, for Stats, which counts them
-- over the whole table. Four bound values per outcome instead of ten, and
-- one string instead of eight.
CREATE TABLE command_outcomes_packed (
	command_id  TEXT    PRIMARY KEY,
	recorded_at INTEGER NOT NULL,
	rejected    INTEGER NOT NULL,
	record      BLOB    NOT NULL
) WITHOUT ROWID;
INSERT INTO command_outcomes_packed (command_id, recorded_at, rejected, record)
	SELECT command_id, recorded_at, status = 'rejected',
		CAST(json_array(type, aggregate_type, aggregate_id, process_manager, instance_id, status, error, events) AS BLOB)
	FROM command_outcomes;
DROP TABLE command_outcomes;
ALTER TABLE command_outcomes_packed RENAME TO command_outcomes;
CREATE INDEX command_outcomes_recorded ON command_outcomes (recorded_at);
