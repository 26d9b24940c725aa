-- 0001_init: the initial evoke schema for PostgreSQL, the same shape as
-- evokesqlite's. Tables are created in the Store's schema (Open sets
-- search_path). Times are BIGINT unix nanoseconds (UTC, 0 for "not set"):
-- timestamptz would keep only microseconds. JSON documents are BYTEA, stored
-- and returned byte for byte. Key and ordering text columns use the "C"
-- collation, so ordering and paging are bytewise (as in SQLite) and
-- independent of the database's locale.

CREATE TABLE events (
	position       BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id             TEXT    COLLATE "C" NOT NULL,
	stream_id      TEXT    COLLATE "C" NOT NULL,
	stream_version BIGINT  NOT NULL,
	type           TEXT    COLLATE "C" NOT NULL,
	data           BYTEA,
	correlation_id TEXT    NOT NULL DEFAULT '',
	causation_id   TEXT    NOT NULL DEFAULT '',
	meta_values    BYTEA,
	recorded_at    BIGINT  NOT NULL,
	CONSTRAINT events_id_key UNIQUE (id),
	CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_type_position ON events (type, position);

CREATE TABLE instances (
	process_manager TEXT    COLLATE "C" NOT NULL,
	id              TEXT    COLLATE "C" NOT NULL,
	partition       INTEGER NOT NULL,
	state           BYTEA,
	version         BIGINT  NOT NULL,
	status          TEXT    COLLATE "C" NOT NULL,
	phase           TEXT    NOT NULL DEFAULT '',
	last_position   BIGINT  NOT NULL DEFAULT 0,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at BIGINT  NOT NULL DEFAULT 0,
	last_error      TEXT    NOT NULL DEFAULT '',
	created_at      BIGINT  NOT NULL DEFAULT 0,
	updated_at      BIGINT  NOT NULL DEFAULT 0,
	completed_at    BIGINT  NOT NULL DEFAULT 0,
	CONSTRAINT instances_pkey PRIMARY KEY (process_manager, id)
);
CREATE INDEX instances_status ON instances (status, process_manager, id);

CREATE TABLE outbox (
	seq             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	command_id      TEXT    COLLATE "C" NOT NULL,
	process_manager TEXT    NOT NULL,
	instance_id     TEXT    NOT NULL,
	partition       INTEGER NOT NULL,
	type            TEXT    NOT NULL,
	aggregate_type  TEXT    NOT NULL,
	aggregate_id    TEXT    NOT NULL,
	payload         BYTEA,
	correlation_id  TEXT    NOT NULL DEFAULT '',
	causation_id    TEXT    NOT NULL DEFAULT '',
	meta_values     BYTEA,
	created_at      BIGINT  NOT NULL,
	CONSTRAINT outbox_command_id_key UNIQUE (command_id)
);

CREATE TABLE command_outcomes (
	command_id      TEXT    COLLATE "C" NOT NULL,
	type            TEXT    NOT NULL,
	aggregate_type  TEXT    NOT NULL,
	aggregate_id    TEXT    NOT NULL,
	process_manager TEXT    NOT NULL,
	instance_id     TEXT    NOT NULL,
	status          TEXT    NOT NULL,
	error           TEXT    NOT NULL DEFAULT '',
	events          INTEGER NOT NULL DEFAULT 0,
	recorded_at     BIGINT  NOT NULL,
	CONSTRAINT command_outcomes_pkey PRIMARY KEY (command_id)
);
CREATE INDEX command_outcomes_status ON command_outcomes (status);

CREATE TABLE history (
	id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	process_manager TEXT    COLLATE "C" NOT NULL,
	instance_id     TEXT    COLLATE "C" NOT NULL,
	kind            TEXT    NOT NULL,
	version         BIGINT  NOT NULL,
	position        BIGINT  NOT NULL,
	event_id        TEXT    NOT NULL DEFAULT '',
	event_type      TEXT    NOT NULL DEFAULT '',
	phase_before    TEXT    NOT NULL DEFAULT '',
	phase_after     TEXT    NOT NULL DEFAULT '',
	commands        BYTEA,
	error           TEXT    NOT NULL DEFAULT '',
	recorded_at     BIGINT  NOT NULL
);
-- An instance never steps twice on one event.
CREATE UNIQUE INDEX history_step_once ON history (process_manager, instance_id, position) WHERE kind = 'step';
CREATE INDEX history_instance ON history (process_manager, instance_id, id);

CREATE TABLE checkpoints (
	process_manager TEXT    COLLATE "C" NOT NULL,
	partition       INTEGER NOT NULL,
	position        BIGINT  NOT NULL,
	catchup_until   BIGINT  NOT NULL,
	CONSTRAINT checkpoints_pkey PRIMARY KEY (process_manager, partition)
);

CREATE TABLE held_events (
	process_manager TEXT    COLLATE "C" NOT NULL,
	instance_id     TEXT    COLLATE "C" NOT NULL,
	position        BIGINT  NOT NULL,
	error           TEXT    NOT NULL DEFAULT '',
	CONSTRAINT held_events_pkey PRIMARY KEY (process_manager, instance_id, position)
);

CREATE TABLE deadlines (
	process_manager TEXT    COLLATE "C" NOT NULL,
	instance_id     TEXT    COLLATE "C" NOT NULL,
	name            TEXT    COLLATE "C" NOT NULL,
	due_at          BIGINT  NOT NULL,
	version         BIGINT  NOT NULL,
	CONSTRAINT deadlines_pkey PRIMARY KEY (process_manager, instance_id, name)
);
CREATE INDEX deadlines_due ON deadlines (due_at, process_manager, instance_id, name);
