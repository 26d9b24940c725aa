-- 0006: history is read and purged one instance at a time, so it is keyed
-- by instance: one B-tree write per record instead of three (the table, the
-- per-instance index, and the step-once index, whose guarantee the instance
-- version already gives: a step commits only if the version it read is
-- still stored). The store assigns id, increasing in commit order (see
-- Tx.InsertHistory); the records kept from before keep theirs, which are
-- smaller.
CREATE TABLE history_by_instance (
	process_manager TEXT    NOT NULL,
	instance_id     TEXT    NOT NULL,
	id              INTEGER NOT NULL,
	kind            TEXT    NOT NULL,
	version         INTEGER NOT NULL,
	position        INTEGER NOT NULL,
	event_id        TEXT    NOT NULL DEFAULT '',
	event_type      TEXT    NOT NULL DEFAULT '',
	phase_before    TEXT    NOT NULL DEFAULT '',
	phase_after     TEXT    NOT NULL DEFAULT '',
	commands        BLOB,
	error           TEXT    NOT NULL DEFAULT '',
	recorded_at     INTEGER NOT NULL,
	node            TEXT    NOT NULL DEFAULT '',
	lease_token     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (process_manager, instance_id, id)
) WITHOUT ROWID;
INSERT INTO history_by_instance (process_manager, instance_id, id, kind, version, position, event_id, event_type, phase_before, phase_after, commands, error, recorded_at, node, lease_token)
	SELECT process_manager, instance_id, id, kind, version, position, event_id, event_type, phase_before, phase_after, commands, error, recorded_at, node, lease_token FROM history;
DROP TABLE history;
ALTER TABLE history_by_instance RENAME TO history;
-- An instance never steps twice on one event.
CREATE UNIQUE INDEX history_step_once ON history (process_manager, instance_id, position) WHERE kind = 'step';
