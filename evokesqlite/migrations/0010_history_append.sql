-- 0010: history rows in write order, with one narrow unique index for the
-- per-instance key. Since 0009 the rows themselves were keyed by (instance,
-- position, step_key): a batch's records landed all over the table, and a
-- commit wrote (and checkpointed) every page holding one of them, whole
-- rows of ~300 bytes. Now the rows go to the end of a rowid table, a few
-- pages per commit, and only the key (~50 bytes) goes where the instance
-- is: the index keeps the step-once rule (a second step of an instance on
-- one event is refused) and serves the reads by instance.
CREATE TABLE history_log (
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
	lease_token     INTEGER NOT NULL DEFAULT 0
);
INSERT INTO history_log (process_manager, instance_id, position, step_key, id, kind, version, event_id, event_type, phase_before, phase_after, commands, error, recorded_at, node, lease_token)
	SELECT process_manager, instance_id, position, step_key, id, kind, version, event_id, event_type, phase_before, phase_after, commands, error, recorded_at, node, lease_token FROM history ORDER BY id;
DROP TABLE history;
ALTER TABLE history_log RENAME TO history;
CREATE UNIQUE INDEX history_key ON history (process_manager, instance_id, position, step_key);
