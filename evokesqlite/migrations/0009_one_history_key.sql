-- 0009: history in one B-tree. It was keyed by (instance, id) with a second,
-- unique index on (instance, position) for steps, so that an instance never
-- steps twice on one event: two B-tree writes per record. Now the key is
-- (instance, position, step_key), step_key being 0 for a step and the
-- record's own ID for every other kind: a second step on one event is
-- refused by the key itself, and any number of failures or operator actions
-- at one position are not. Records are still read by instance in ID order
-- (a sort of the instance's few rows). IDs are never 0 (see
-- Store.historyID).
CREATE TABLE history_by_position (
	process_manager TEXT    NOT NULL,
	instance_id     TEXT    NOT NULL,
	position        INTEGER NOT NULL,
	step_key        INTEGER NOT NULL,
	id              INTEGER NOT NULL,
	kind            TEXT    NOT NULL,
	version         INTEGER NOT NULL,
	event_id        TEXT    NOT NULL DEFAULT '',
	event_type      TEXT    NOT NULL DEFAULT '',
	phase_before    TEXT    NOT NULL DEFAULT '',
	phase_after     TEXT    NOT NULL DEFAULT '',
	commands        BLOB,
	error           TEXT    NOT NULL DEFAULT '',
	recorded_at     INTEGER NOT NULL,
	node            TEXT    NOT NULL DEFAULT '',
	lease_token     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (process_manager, instance_id, position, step_key)
) WITHOUT ROWID;
INSERT INTO history_by_position (process_manager, instance_id, position, step_key, id, kind, version, event_id, event_type, phase_before, phase_after, commands, error, recorded_at, node, lease_token)
	SELECT process_manager, instance_id, position, CASE WHEN kind = 'step' THEN 0 ELSE id END, id, kind, version, event_id, event_type, phase_before, phase_after, commands, error, recorded_at, node, lease_token FROM history;
DROP TABLE history;
ALTER TABLE history_by_position RENAME TO history;
