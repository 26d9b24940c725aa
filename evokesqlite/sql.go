package evokesqlite

import "strings"

// stmtID indexes the statements a Store prepares once. The read statements
// come first: they are prepared on both pools.
type stmtID int

const (
	sReadLog stmtID = iota
	sReadLogTypes
	sReadStream
	sReadStreams
	sReadEvents
	sHead
	sInstances
	sListInstances
	sListInstancesStopped
	sCheckpoint
	sOutbox
	sOutboxParts
	sOutboxInstances
	sCommandOutcomes
	sHeld
	sHistory
	sDueDeadlines
	sNextDeadline
	sInstanceDeadlines
	sStatsEvents
	sStatsOutbox
	sStatsCommands
	sTallyCommands
	sTallyOutcomes
	sEnded
	sStatsInstances

	// The write statements, prepared on the write pool only.
	sDeleteOutbox
	sPutCheckpoint
	sRelease
	sDeleteDeadlines
	sDeleteDeadlinesOf
	sDeleteInstance
	sDeleteHeldAll
	sDeleteHistory
	sDeleteDeadline
	sUnborn
	sDeleteUnborn
	numStmts
)

// numReadStmts counts the read statements, which come first.
const numReadStmts = sDeleteOutbox

const eventCols = `position, id, stream_id, stream_version, type, data, correlation_id, causation_id, meta_values, recorded_at`

// listFilters are ListInstances' optional filters: outcome (?6; a done
// instance stored without one ended as its status says), ID
// prefix (?7), created before (?8) and after (?9), in nanoseconds (0: none).
const listFilters = ` AND (?6 = '' OR (status IN ('completed', 'cancelled') AND (CASE WHEN outcome = '' THEN status ELSE outcome END) = ?6)) AND (?7 = '' OR substr(id, 1, length(?7)) = ?7) AND (?8 = 0 OR created_at < ?8) AND (?9 = 0 OR created_at > ?9)`

const instanceCols = `process_manager, id, partition, state, version, status, phase, last_position, attempts, next_attempt_at, last_error, created_at, updated_at, completed_at, outcome`

const outboxCols = `seq, command_id, process_manager, instance_id, partition, type, aggregate_type, aggregate_id, payload, correlation_id, causation_id, meta_values, created_at`

// outcomeCols are command_outcomes' columns; record is the rest (migration
// 0012, AppendOutcomeRecord).
const outcomeCols = `command_id, recorded_at, rejected, record`

// historyCols are history's columns; record is the rest (migration 0011,
// AppendHistoryRecord).
const historyCols = `id, process_manager, instance_id, position, record`

const deadlineCols = `process_manager, instance_id, name, due_at, version`

var stmtSQL = [numStmts]string{
	sReadLog: `SELECT ` + eventCols + ` FROM events WHERE position > ? AND position <= ? ORDER BY position LIMIT ?`,
	// +type: scan the primary key's position range and filter, never an
	// index on type (which would sort the whole backlog for each batch).
	sReadLogTypes:  `SELECT ` + eventCols + ` FROM events WHERE position > ? AND position <= ? AND +type IN (SELECT value FROM json_each(?)) ORDER BY position LIMIT ?`,
	sReadStream:    `SELECT ` + eventCols + ` FROM events WHERE stream_id = ? AND stream_version > ? ORDER BY stream_version`,
	sReadStreams:   `SELECT ` + eventCols + ` FROM events WHERE stream_id IN (SELECT value FROM json_each(?)) ORDER BY stream_id, stream_version`,
	sReadEvents:    `SELECT ` + eventCols + ` FROM events WHERE id IN (SELECT value FROM json_each(?)) ORDER BY position`,
	sHead:          `SELECT COALESCE(MAX(position), 0) FROM events`,
	sInstances:     `SELECT ` + instanceCols + ` FROM instances WHERE process_manager = ? AND id IN (SELECT value FROM json_each(?)) ORDER BY id`,
	sListInstances: `SELECT ` + instanceCols + ` FROM instances WHERE (?1 = '' OR process_manager = ?1) AND (?2 = '' OR status = ?2) AND (process_manager > ?3 OR (process_manager = ?3 AND id > ?4))` + listFilters + ` ORDER BY process_manager, id LIMIT ?5`,
	// By a status other than running, on the (partial) status index.
	sListInstancesStopped: `SELECT ` + instanceCols + ` FROM instances WHERE status = ?2 AND status <> 'running' AND (?1 = '' OR process_manager = ?1) AND (process_manager > ?3 OR (process_manager = ?3 AND id > ?4))` + listFilters + ` ORDER BY process_manager, id LIMIT ?5`,
	sCheckpoint:           `SELECT position, catchup_until FROM checkpoints WHERE process_manager = ? AND partition = ?`,
	sOutbox:               `SELECT ` + outboxCols + ` FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?`,
	sOutboxParts:          `SELECT ` + outboxCols + ` FROM outbox WHERE seq > ? AND partition IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?`,
	sOutboxInstances:      `SELECT ` + outboxCols + ` FROM outbox WHERE process_manager = ? AND instance_id IN (SELECT value FROM json_each(?)) AND seq > ? ORDER BY seq LIMIT ?`,
	sCommandOutcomes:      `SELECT command_id, recorded_at, record FROM command_outcomes WHERE command_id IN (SELECT value FROM json_each(?)) ORDER BY command_id`,
	sHeld:                 `SELECT process_manager, instance_id, position, error FROM held_events WHERE process_manager = ? AND instance_id = ? ORDER BY position`,
	sHistory:              `SELECT ` + historyCols + ` FROM history WHERE process_manager = ? AND instance_id = ? ORDER BY id`,
	sDueDeadlines:         `SELECT ` + deadlineCols + ` FROM deadlines WHERE due_at <= ? ORDER BY due_at, process_manager, instance_id, name LIMIT ?`,
	sNextDeadline:         `SELECT ` + deadlineCols + ` FROM deadlines ORDER BY due_at, process_manager, instance_id, name LIMIT 1`,
	sInstanceDeadlines:    `SELECT ` + deadlineCols + ` FROM deadlines WHERE process_manager = ? AND instance_id IN (SELECT value FROM json_each(?)) ORDER BY instance_id, due_at, name`,
	sStatsEvents:          `SELECT COUNT(*), COALESCE(MAX(position), 0) FROM events`,
	sStatsOutbox:          `SELECT COUNT(*) FROM outbox`,
	sStatsCommands:        `SELECT COUNT(*), COALESCE(SUM(rejected), 0) FROM command_outcomes`,
	// Commands executed: recorded, and, among the events after ?1, those
	// that derive their ID from a command without a record (the ID's first
	// 48 bits and version 8, see engine.EventID); rejected: recorded
	// without a process manager, and the $evoke.CommandRejected events
	// after ?1. The log up to its head, returned.
	sTallyCommands: `WITH h AS (SELECT COALESCE(MAX(position), 0) AS until FROM events)
SELECT (SELECT COUNT(*) FROM command_outcomes),
	(SELECT COUNT(*) FROM command_outcomes WHERE rejected = 1 AND CAST(record AS TEXT) ->> 3 = ''),
	h.until,
	(SELECT COUNT(DISTINCT e.causation_id) FROM events e WHERE e.position > ?1 AND e.position <= h.until
		AND substr(e.id, 15, 1) = '8' AND substr(e.id, 1, 13) = substr(e.causation_id, 1, 13)
		AND NOT EXISTS (SELECT 1 FROM command_outcomes o WHERE o.command_id = e.causation_id)),
	(SELECT COUNT(*) FROM events WHERE type = '$evoke.CommandRejected' AND position > ?1 AND position <= h.until)
FROM h`,
	// On instances_completed: completed_at > 0 lets SQLite use the
	// partial index.
	sEnded: `SELECT process_manager, (completed_at - ?1) / ?2, COUNT(*) FROM instances
		WHERE completed_at > 0 AND completed_at >= ?1 AND completed_at < ?1 + ?2 * ?3 GROUP BY 1, 2`,
	sTallyOutcomes: `SELECT process_manager, CASE WHEN outcome = '' THEN status ELSE outcome END, COUNT(*) FROM instances WHERE status IN ('completed', 'cancelled') GROUP BY 1, 2`,
	// The instances of each process manager (status '') and those not
	// running, by status: the status index leaves running ones out.
	sStatsInstances: `SELECT process_manager, '', COUNT(*) FROM instances GROUP BY process_manager
		UNION ALL SELECT process_manager, status, COUNT(*) FROM instances WHERE status <> 'running' GROUP BY process_manager, status`,

	sDeleteOutbox: `DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))`,
	sPutCheckpoint: `INSERT INTO checkpoints (process_manager, partition, position, catchup_until) VALUES (?, ?, ?, ?)
ON CONFLICT (process_manager, partition) DO UPDATE SET position = excluded.position, catchup_until = excluded.catchup_until`,
	sRelease:           `DELETE FROM held_events WHERE process_manager = ? AND instance_id = ? AND position IN (SELECT value FROM json_each(?))`,
	sDeleteDeadlines:   `DELETE FROM deadlines WHERE process_manager = ? AND instance_id = ?`,
	sDeleteDeadlinesOf: `DELETE FROM deadlines WHERE process_manager = ? AND instance_id IN (SELECT value FROM json_each(?))`,
	sDeleteInstance:    `DELETE FROM instances WHERE process_manager = ? AND id = ?`,
	sDeleteHeldAll:     `DELETE FROM held_events WHERE process_manager = ? AND instance_id = ?`,
	sDeleteHistory:     `DELETE FROM history WHERE process_manager = ? AND instance_id = ?`,
	sDeleteDeadline:    `DELETE FROM deadlines WHERE process_manager = ? AND instance_id = ? AND name = ? AND version = ?`,
	sUnborn:            `SELECT EXISTS (SELECT 1 FROM instances WHERE created_at < 0)`,
	sDeleteUnborn:      `DELETE FROM instances WHERE created_at < 0`,
}

// bulkKind is a multi-row INSERT, prepared for each of bulkSizes rows.
type bulkKind struct {
	prefix string // up to VALUES
	cols   int
	suffix string
}

func (k bulkKind) sql(rows int) string {
	var b strings.Builder
	b.WriteString(k.prefix)
	row := "(" + strings.Repeat("?, ", k.cols-1) + "?)"
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	b.WriteString(k.suffix)
	return b.String()
}

// bulkSizes are the row counts multi-row INSERTs are prepared for, largest
// first: n rows are written as n/128 statements of 128 rows and then one
// statement per set bit of the remainder.
var bulkSizes = [...]int{128, 64, 32, 16, 8, 4, 2, 1}

const (
	bEvents = iota
	bInstances
	bUpdateInstances
	bOutbox
	bOutcomes
	bHistory
	bHold
	bDeadlines
	bCheckpoints
	numBulk
)

var bulkKinds = [numBulk]bulkKind{
	bEvents:    {prefix: `INSERT INTO events (id, stream_id, stream_version, type, data, correlation_id, causation_id, meta_values, recorded_at) VALUES `, cols: 9},
	bInstances: {prefix: `INSERT INTO instances (` + instanceCols + `) VALUES `, cols: 15},
	// Fenced updates of many instances in one statement, as an upsert: for
	// each row SQLite finds the stored instance by its key (the conflict)
	// and updates it if its version is the one the row expects, which the
	// row carries negated in created_at: -(PrevVersion+1), never assigned by
	// the update. A row whose instance is missing is inserted instead, with
	// that negative created_at; Tx.PutInstances finds it (instances_unborn)
	// and fails the write as fenced. Rows changed = rows given, then, unless
	// one was fenced. (About a fifth cheaper per row in SQLite than an
	// UPDATE ... FROM (VALUES ...), which materialises the join first.)
	bUpdateInstances: {prefix: `INSERT INTO instances (process_manager, id, partition, state, version, status, phase, last_position, attempts, next_attempt_at, last_error, updated_at, completed_at, outcome, created_at) VALUES `, cols: 15,
		suffix: ` ON CONFLICT (process_manager, id) DO UPDATE SET partition = excluded.partition, state = excluded.state, version = excluded.version, status = excluded.status, phase = excluded.phase, last_position = excluded.last_position, attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error, updated_at = excluded.updated_at, completed_at = excluded.completed_at, outcome = excluded.outcome WHERE instances.version = -excluded.created_at - 1`},
	bOutbox:    {prefix: `INSERT OR IGNORE INTO outbox (command_id, process_manager, instance_id, partition, type, aggregate_type, aggregate_id, payload, correlation_id, causation_id, meta_values, created_at) VALUES `, cols: 12},
	bOutcomes:  {prefix: `INSERT INTO command_outcomes (` + outcomeCols + `) VALUES `, cols: 4},
	bHistory:   {prefix: `INSERT INTO history (process_manager, instance_id, position, step_key, id, record) VALUES `, cols: 6},
	bHold:      {prefix: `INSERT INTO held_events (process_manager, instance_id, position, error) VALUES `, cols: 4, suffix: ` ON CONFLICT (process_manager, instance_id, position) DO UPDATE SET error = excluded.error`},
	bDeadlines: {prefix: `INSERT INTO deadlines (` + deadlineCols + `) VALUES `, cols: 5},
	bCheckpoints: {prefix: `INSERT INTO checkpoints (process_manager, partition, position, catchup_until) VALUES `, cols: 4,
		suffix: ` ON CONFLICT (process_manager, partition) DO UPDATE SET position = excluded.position, catchup_until = excluded.catchup_until`},
}
