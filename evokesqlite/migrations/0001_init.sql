-- 0001_init: the initial evoke schema. Times are INTEGER unix nanoseconds
-- (UTC, 0 for "not set"); JSON documents are BLOBs.

CREATE TABLE events (
	position       INTEGER PRIMARY KEY AUTOINCREMENT,
	id             TEXT    NOT NULL UNIQUE,
	stream_id      TEXT    NOT NULL,
	stream_version INTEGER NOT NULL,
	type           TEXT    NOT NULL,
	data           BLOB,
	correlation_id TEXT    NOT NULL DEFAULT '',
	causation_id   TEXT    NOT NULL DEFAULT '',
	meta_values    BLOB,
	recorded_at    INTEGER NOT NULL,
	UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_type_position ON events (type, position);

CREATE TABLE instances (
	process_manager TEXT    NOT NULL,
	id              TEXT    NOT NULL,
	partition       INTEGER NOT NULL,
	state           BLOB,
	version         INTEGER NOT NULL,
	status          TEXT    NOT NULL,
	phase           TEXT    NOT NULL DEFAULT '',
	last_position   INTEGER NOT NULL DEFAULT 0,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT    NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL DEFAULT 0,
	updated_at      INTEGER NOT NULL DEFAULT 0,
	completed_at    INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (process_manager, id)
) WITHOUT ROWID;
CREATE INDEX instances_status ON instances (status, process_manager, id);

CREATE TABLE outbox (
	seq             INTEGER PRIMARY KEY AUTOINCREMENT,
	command_id      TEXT    NOT NULL UNIQUE,
	process_manager TEXT    NOT NULL,
	instance_id     TEXT    NOT NULL,
	partition       INTEGER NOT NULL,
	type            TEXT    NOT NULL,
	aggregate_type  TEXT    NOT NULL,
	aggregate_id    TEXT    NOT NULL,
	payload         BLOB,
	correlation_id  TEXT    NOT NULL DEFAULT '',
	causation_id    TEXT    NOT NULL DEFAULT '',
	meta_values     BLOB,
	created_at      INTEGER NOT NULL
);

CREATE TABLE command_outcomes (
	command_id      TEXT    PRIMARY KEY,
	type            TEXT    NOT NULL,
	aggregate_type  TEXT    NOT NULL,
	aggregate_id    TEXT    NOT NULL,
	process_manager TEXT    NOT NULL,
	instance_id     TEXT    NOT NULL,
	status          TEXT    NOT NULL,
	error           TEXT    NOT NULL DEFAULT '',
	events          INTEGER NOT NULL DEFAULT 0,
	recorded_at     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX command_outcomes_status ON command_outcomes (status);

CREATE TABLE history (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	process_manager TEXT    NOT NULL,
	instance_id     TEXT    NOT NULL,
	kind            TEXT    NOT NULL,
	version         INTEGER NOT NULL,
	position        INTEGER NOT NULL,
	event_id        TEXT    NOT NULL DEFAULT '',
	event_type      TEXT    NOT NULL DEFAULT '',
	phase_before    TEXT    NOT NULL DEFAULT '',
	phase_after     TEXT    NOT NULL DEFAULT '',
	commands        BLOB,
	error           TEXT    NOT NULL DEFAULT '',
	recorded_at     INTEGER NOT NULL
);
-- An instance never steps twice on one event.
CREATE UNIQUE INDEX history_step_once ON history (process_manager, instance_id, position) WHERE kind = 'step';
CREATE INDEX history_instance ON history (process_manager, instance_id, id);

CREATE TABLE checkpoints (
	process_manager TEXT    NOT NULL,
	partition       INTEGER NOT NULL,
	position        INTEGER NOT NULL,
	catchup_until   INTEGER NOT NULL,
	PRIMARY KEY (process_manager, partition)
) WITHOUT ROWID;

CREATE TABLE held_events (
	process_manager TEXT    NOT NULL,
	instance_id     TEXT    NOT NULL,
	position        INTEGER NOT NULL,
	error           TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (process_manager, instance_id, position)
) WITHOUT ROWID;

CREATE TABLE deadlines (
	process_manager TEXT    NOT NULL,
	instance_id     TEXT    NOT NULL,
	name            TEXT    NOT NULL,
	due_at          INTEGER NOT NULL,
	version         INTEGER NOT NULL,
	PRIMARY KEY (process_manager, instance_id, name)
) WITHOUT ROWID;
CREATE INDEX deadlines_due ON deadlines (due_at);
