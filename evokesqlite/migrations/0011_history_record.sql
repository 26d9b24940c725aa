-- 0011: a history record's payload in one column. History is only ever
-- looked up by its key (an instance's records, in ID order; the step-once
-- rule), never by the other columns, and modernc.org/sqlite binds each
-- value of an INSERT separately (a string costs a malloc, a copy and an
-- unbind): sixteen values per record were a third of the writer's cost of
-- writing it. Now the record is the key, the ID, and a JSON array:
--   [kind, version, event_id, event_type, phase_before, phase_after,
--    commands (a JSON array, or null), error, recorded_at, node, lease_token]
-- readable in SQL as CAST(record AS TEXT) ->> 1 and so on. (A BLOB holding JSON text; the
-- records written before are converted here, commands that are not JSON
-- kept as a string.)
-- This rewrites the table (as 0012 does command_outcomes): on a database
-- with millions of records the first Open after the upgrade takes a while,
-- in one transaction.
CREATE TABLE history_packed (
	process_manager TEXT    NOT NULL,
	instance_id     TEXT    NOT NULL,
	position        INTEGER NOT NULL,
	step_key        INTEGER NOT NULL,
	id              INTEGER NOT NULL,
	record          BLOB    NOT NULL
);
INSERT INTO history_packed (process_manager, instance_id, position, step_key, id, record)
	SELECT process_manager, instance_id, position, step_key, id,
		CAST(json_array(kind, version, event_id, event_type, phase_before, phase_after,
			CASE WHEN json_valid(CAST(commands AS TEXT)) THEN json(CAST(commands AS TEXT)) ELSE CAST(commands AS TEXT) END,
			error, recorded_at, node, lease_token) AS BLOB)
	FROM history ORDER BY rowid;
DROP TABLE history;
ALTER TABLE history_packed RENAME TO history;
CREATE UNIQUE INDEX history_key ON history (process_manager, instance_id, position, step_key);
