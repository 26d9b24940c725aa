-- 0012: a command outcome's payload in one column, as history's since
-- 0011. Outcomes are looked up by command ID and purged by time; the rest
-- is a JSON array:
--   [type, aggregate_type, aggregate_id, process_manager, instance_id,
--    status, error, events]
-- readable in SQL as CAST(record AS TEXT) ->> 5 and so on: three bound
-- values per outcome instead of ten.
CREATE TABLE command_outcomes_packed (
	command_id  TEXT    PRIMARY KEY,
	recorded_at INTEGER NOT NULL,
	record      BLOB    NOT NULL
) WITHOUT ROWID;
INSERT INTO command_outcomes_packed (command_id, recorded_at, record)
	SELECT command_id, recorded_at,
		CAST(json_array(type, aggregate_type, aggregate_id, process_manager, instance_id, status, error, events) AS BLOB)
	FROM command_outcomes;
DROP TABLE command_outcomes;
ALTER TABLE command_outcomes_packed RENAME TO command_outcomes;
CREATE INDEX command_outcomes_recorded ON command_outcomes (recorded_at);
