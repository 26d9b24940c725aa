package evokesqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/payload"
)

// defaultLimit is the limit of queries whose Limit is 0.
const defaultLimit = 1000

// queries implements evokestore.Querier on the read pool (t == nil) or
// inside a Tx.
type queries struct {
	s *Store
	t *txn
}

func (q queries) stmt(ctx context.Context, id stmtID) *sql.Stmt {
	if q.t != nil {
		return q.t.stmt(ctx, id)
	}
	return q.s.rs[id]
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func limitOr(n int) int {
	if n <= 0 {
		return defaultLimit
	}
	return n
}

func jsonStrings(ss []string) string {
	b, _ := json.Marshal(ss) // cannot fail for strings
	return string(b)
}

func jsonInts(ns []int64) string {
	b := make([]byte, 0, 2+len(ns)*8)
	b = append(b, '[')
	for i, n := range ns {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, n, 10)
	}
	return string(append(b, ']'))
}

func scanEvents(rows *sql.Rows, err error, hint int) ([]evokestore.Event, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]evokestore.Event, 0, hint)
	for rows.Next() {
		var e evokestore.Event
		var at int64
		if err := rows.Scan(&e.Position, &e.ID, &e.StreamID, &e.StreamVersion, &e.Type, &e.Data, &e.CorrelationID, &e.CausationID, &e.Values, &at); err != nil {
			return nil, err
		}
		e.RecordedAt = fromNanos(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// ReadLog returns events after q.After in position order, at most q.Limit
// (default 1000), restricted to q.Types if not empty.
func (q queries) ReadLog(ctx context.Context, lq evokestore.LogQuery) ([]evokestore.Event, error) {
	limit := limitOr(lq.Limit)
	hint := min(limit, 256)
	var (
		evs []evokestore.Event
		err error
	)
	if len(lq.Types) == 0 {
		rows, qerr := q.stmt(ctx, sReadLog).QueryContext(ctx, lq.After, until(lq.Until), limit)
		evs, err = scanEvents(rows, qerr, hint)
	} else {
		rows, qerr := q.stmt(ctx, sReadLogTypes).QueryContext(ctx, lq.After, until(lq.Until), jsonStrings(lq.Types), limit)
		evs, err = scanEvents(rows, qerr, hint)
	}
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: read log: %w", err)
	}
	return evs, nil
}

// until returns a log query's upper position bound (none: the largest).
func until(u int64) int64 {
	if u <= 0 {
		return math.MaxInt64
	}
	return u
}

// ReadStream returns one stream's events with version > afterVersion, in
// version order.
func (q queries) ReadStream(ctx context.Context, streamID string, afterVersion int64) ([]evokestore.Event, error) {
	rows, err := q.stmt(ctx, sReadStream).QueryContext(ctx, streamID, afterVersion)
	evs, err := scanEvents(rows, err, 8)
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: read stream %q: %w", streamID, err)
	}
	return evs, nil
}

// ReadStreams returns the events of several streams in one query, ordered by
// stream then version (evokestore.StreamsReader).
func (q queries) ReadStreams(ctx context.Context, streamIDs []string) ([]evokestore.Event, error) {
	rows, err := q.stmt(ctx, sReadStreams).QueryContext(ctx, jsonStrings(streamIDs))
	evs, err := scanEvents(rows, err, len(streamIDs))
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: read %d streams: %w", len(streamIDs), err)
	}
	return evs, nil
}

// ReadEvents returns the events with the given IDs, in log order
// (evokestore.EventsReader).
func (q queries) ReadEvents(ctx context.Context, ids []string) ([]evokestore.Event, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := q.stmt(ctx, sReadEvents).QueryContext(ctx, jsonStrings(ids))
	evs, err := scanEvents(rows, err, len(ids))
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: read %d events: %w", len(ids), err)
	}
	return evs, nil
}

// Head returns the highest committed position (0 for an empty log); inside
// a Tx, its own appends count.
func (q queries) Head(ctx context.Context) (int64, error) {
	var h int64
	if err := q.stmt(ctx, sHead).QueryRowContext(ctx).Scan(&h); err != nil {
		return 0, fmt.Errorf("evokesqlite: head: %w", err)
	}
	return h, nil
}

func scanInstances(rows *sql.Rows, err error, hint int) ([]evokestore.Instance, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]evokestore.Instance, 0, hint)
	for rows.Next() {
		var in evokestore.Instance
		var status, outcome string
		var next, created, updated, completed int64
		if err := rows.Scan(&in.ProcessManager, &in.ID, &in.Partition, &in.State, &in.Version, &status, &in.Phase,
			&in.LastPosition, &in.Attempts, &next, &in.LastError, &created, &updated, &completed, &outcome); err != nil {
			return nil, err
		}
		in.Status = evokestore.InstanceStatus(status)
		in.Outcome = evokestore.InstanceOutcome(outcome)
		in.NextAttemptAt = fromNanos(next)
		in.CreatedAt = fromNanos(created)
		in.UpdatedAt = fromNanos(updated)
		in.CompletedAt = fromNanos(completed)
		out = append(out, in)
	}
	return out, rows.Err()
}

// Instances loads the named instances of one process manager, ordered by
// ID; missing ones are absent. Any number of IDs is passed as one JSON array
// parameter, so there is no limit on len(ids).
func (q queries) Instances(ctx context.Context, processManager string, ids []string) ([]evokestore.Instance, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := q.stmt(ctx, sInstances).QueryContext(ctx, processManager, jsonStrings(ids))
	ins, err := scanInstances(rows, err, len(ids))
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: load instances: %w", err)
	}
	return ins, nil
}

// ListInstances lists instances ordered by (process manager, id), after
// (AfterProcessManager, AfterID), at most Limit (default 1000).
func (q queries) ListInstances(ctx context.Context, iq evokestore.InstanceQuery) ([]evokestore.Instance, error) {
	limit := limitOr(iq.Limit)
	id := sListInstances
	if iq.Status != "" && iq.Status != evokestore.StatusRunning {
		id = sListInstancesStopped
	}
	rows, err := q.stmt(ctx, id).QueryContext(ctx, iq.ProcessManager, string(iq.Status), iq.AfterProcessManager, iq.AfterID, limit,
		string(iq.Outcome), iq.IDPrefix, nanos(iq.CreatedBefore), nanos(iq.CreatedAfter))
	ins, err := scanInstances(rows, err, min(limit, 64))
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: list instances: %w", err)
	}
	return ins, nil
}

// Checkpoint returns a subscription checkpoint; ok is false if none.
func (q queries) Checkpoint(ctx context.Context, processManager string, partition int) (evokestore.Checkpoint, bool, error) {
	cp := evokestore.Checkpoint{ProcessManager: processManager, Partition: partition}
	err := q.stmt(ctx, sCheckpoint).QueryRowContext(ctx, processManager, partition).Scan(&cp.Position, &cp.CatchupUntil)
	if err == sql.ErrNoRows {
		return evokestore.Checkpoint{}, false, nil
	}
	if err != nil {
		return evokestore.Checkpoint{}, false, fmt.Errorf("evokesqlite: checkpoint: %w", err)
	}
	return cp, true, nil
}

// Outbox returns pending commands after oq.After in sequence order, at most
// oq.Limit (default 1000).
func (q queries) Outbox(ctx context.Context, oq evokestore.OutboxQuery) ([]evokestore.OutboxCommand, error) {
	limit := limitOr(oq.Limit)
	var rows *sql.Rows
	var err error
	switch {
	case oq.Instances != nil && oq.Partitions != nil:
		return nil, errors.New("evokesqlite: outbox: Partitions and Instances do not combine")
	case oq.Instances != nil:
		if len(oq.Instances) == 0 {
			return nil, nil
		}
		rows, err = q.stmt(ctx, sOutboxInstances).QueryContext(ctx, oq.ProcessManager, jsonStrings(oq.Instances), oq.After, limit)
	case oq.Partitions != nil:
		rows, err = q.stmt(ctx, sOutboxParts).QueryContext(ctx, oq.After, jsonInts(intsToInt64(oq.Partitions)), limit)
	default:
		rows, err = q.stmt(ctx, sOutbox).QueryContext(ctx, oq.After, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: outbox: %w", err)
	}
	defer rows.Close()
	out := make([]evokestore.OutboxCommand, 0, min(limit, 64))
	for rows.Next() {
		var c evokestore.OutboxCommand
		var created int64
		if err := rows.Scan(&c.Seq, &c.ID, &c.ProcessManager, &c.InstanceID, &c.Partition, &c.Type, &c.AggregateType,
			&c.AggregateID, &c.Payload, &c.CorrelationID, &c.CausationID, &c.Values, &created); err != nil {
			return nil, fmt.Errorf("evokesqlite: outbox: %w", err)
		}
		c.CreatedAt = fromNanos(created)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evokesqlite: outbox: %w", err)
	}
	return out, nil
}

// CommandOutcomes returns the recorded outcomes of the given command IDs,
// ordered by command ID.
func (q queries) CommandOutcomes(ctx context.Context, ids []string) ([]evokestore.CommandOutcome, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := q.stmt(ctx, sCommandOutcomes).QueryContext(ctx, jsonStrings(ids))
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: command outcomes: %w", err)
	}
	defer rows.Close()
	out := make([]evokestore.CommandOutcome, 0, len(ids))
	for rows.Next() {
		var o evokestore.CommandOutcome
		var at int64
		var record []byte
		if err := rows.Scan(&o.CommandID, &at, &record); err != nil {
			return nil, fmt.Errorf("evokesqlite: command outcomes: %w", err)
		}
		if err := payload.ParseOutcomeRecord(record, &o); err != nil {
			return nil, fmt.Errorf("evokesqlite: command outcome %s: %w", o.CommandID, err)
		}
		o.RecordedAt = fromNanos(at)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evokesqlite: command outcomes: %w", err)
	}
	return out, nil
}

// Held returns the events held for one instance, in position order.
func (q queries) Held(ctx context.Context, processManager, instanceID string) ([]evokestore.HeldEvent, error) {
	rows, err := q.stmt(ctx, sHeld).QueryContext(ctx, processManager, instanceID)
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: held: %w", err)
	}
	defer rows.Close()
	var out []evokestore.HeldEvent
	for rows.Next() {
		var h evokestore.HeldEvent
		if err := rows.Scan(&h.ProcessManager, &h.InstanceID, &h.Position, &h.Error); err != nil {
			return nil, fmt.Errorf("evokesqlite: held: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evokesqlite: held: %w", err)
	}
	return out, nil
}

// History returns one instance's history in insertion order.
func (q queries) History(ctx context.Context, processManager, instanceID string) ([]evokestore.HistoryRecord, error) {
	rows, err := q.stmt(ctx, sHistory).QueryContext(ctx, processManager, instanceID)
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: history: %w", err)
	}
	defer rows.Close()
	var out []evokestore.HistoryRecord
	for rows.Next() {
		var h evokestore.HistoryRecord
		var record []byte
		if err := rows.Scan(&h.ID, &h.ProcessManager, &h.InstanceID, &h.Position, &record); err != nil {
			return nil, fmt.Errorf("evokesqlite: history: %w", err)
		}
		if out, err = payload.ParseHistoryRow(out, h, record); err != nil {
			return nil, fmt.Errorf("evokesqlite: history of %s %s, record %d: %w", processManager, instanceID, h.ID, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evokesqlite: history: %w", err)
	}
	return out, nil
}

// scanDeadlines reads deadline rows (and closes them); err is the query's.
func scanDeadlines(rows *sql.Rows, err error) ([]evokestore.Deadline, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []evokestore.Deadline
	for rows.Next() {
		d, err := scanDeadline(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func scanDeadline(sc interface{ Scan(...any) error }) (evokestore.Deadline, error) {
	var d evokestore.Deadline
	var due int64
	err := sc.Scan(&d.ProcessManager, &d.InstanceID, &d.Name, &due, &d.Version)
	d.DueAt = fromNanos(due)
	return d, err
}

// DueDeadlines returns deadlines due at or before now, earliest first, at
// most limit (default 1000).
func (q queries) DueDeadlines(ctx context.Context, now time.Time, limit int) ([]evokestore.Deadline, error) {
	rows, err := q.stmt(ctx, sDueDeadlines).QueryContext(ctx, now.UnixNano(), limitOr(limit))
	out, err := scanDeadlines(rows, err)
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: due deadlines: %w", err)
	}
	return out, nil
}

// InstanceDeadlines returns the deadlines of some instances of one process
// manager, by instance ID and due time (evokestore.DeadlinesReader).
func (q queries) InstanceDeadlines(ctx context.Context, pm string, ids []string) ([]evokestore.Deadline, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := q.stmt(ctx, sInstanceDeadlines).QueryContext(ctx, pm, jsonStrings(ids))
	out, err := scanDeadlines(rows, err)
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: instance deadlines: %w", err)
	}
	return out, nil
}

// NextDeadline returns the earliest deadline; ok is false if none.
func (q queries) NextDeadline(ctx context.Context) (evokestore.Deadline, bool, error) {
	d, err := scanDeadline(q.stmt(ctx, sNextDeadline).QueryRowContext(ctx))
	if err == sql.ErrNoRows {
		return evokestore.Deadline{}, false, nil
	}
	if err != nil {
		return evokestore.Deadline{}, false, fmt.Errorf("evokesqlite: next deadline: %w", err)
	}
	return d, true, nil
}

// Stats counts what the store holds.
func (q queries) Stats(ctx context.Context) (evokestore.Stats, error) {
	var st evokestore.Stats
	wrap := func(err error) error { return fmt.Errorf("evokesqlite: stats: %w", err) }
	if err := q.stmt(ctx, sStatsEvents).QueryRowContext(ctx).Scan(&st.Events, &st.Head); err != nil {
		return st, wrap(err)
	}
	if err := q.stmt(ctx, sStatsOutbox).QueryRowContext(ctx).Scan(&st.Outbox); err != nil {
		return st, wrap(err)
	}
	if err := q.stmt(ctx, sStatsCommands).QueryRowContext(ctx).Scan(&st.Commands, &st.Rejected); err != nil {
		return st, wrap(err)
	}
	rows, err := q.stmt(ctx, sStatsInstances).QueryContext(ctx)
	if err != nil {
		return st, wrap(err)
	}
	defer rows.Close()
	st.Instances = make(map[string]map[evokestore.InstanceStatus]int64)
	set := func(pm string, status evokestore.InstanceStatus, n int64) {
		m := st.Instances[pm]
		if m == nil {
			m = make(map[evokestore.InstanceStatus]int64)
			st.Instances[pm] = m
		}
		m[status] = n
	}
	running := map[string]int64{} // all of a process manager's, less those not running
	for rows.Next() {
		var pm, status string
		var n int64
		if err := rows.Scan(&pm, &status, &n); err != nil {
			return st, wrap(err)
		}
		if status == "" {
			running[pm] += n
			continue
		}
		running[pm] -= n
		set(pm, evokestore.InstanceStatus(status), n)
	}
	if err := rows.Err(); err != nil {
		return st, wrap(err)
	}
	for pm, n := range running {
		if n > 0 {
			set(pm, evokestore.StatusRunning, n)
		}
	}
	return st, nil
}

// Tally counts executed commands and how done instances ended
// (evokestore.TallyReader).
func (q queries) Tally(ctx context.Context, since *evokestore.Tally) (evokestore.Tally, error) {
	t := evokestore.Tally{Outcomes: map[string]map[evokestore.InstanceOutcome]int64{}}
	wrap := func(err error) error { return fmt.Errorf("evokesqlite: tally: %w", err) }
	var prev evokestore.Tally
	if since != nil {
		prev = *since
	}
	var recorded, recordedRejected int64
	if err := q.stmt(ctx, sTallyCommands).QueryRowContext(ctx, prev.Until).Scan(&recorded, &recordedRejected, &t.Until, &t.ByEvents, &t.RejectedByEvents); err != nil {
		return t, wrap(err)
	}
	if t.Until < prev.Until { // a log shorter than since's: not the same
		return q.Tally(ctx, nil)
	}
	t.ByEvents, t.RejectedByEvents = t.ByEvents+prev.ByEvents, t.RejectedByEvents+prev.RejectedByEvents
	t.Executed, t.Rejected = recorded+t.ByEvents, recordedRejected+t.RejectedByEvents
	rows, err := q.stmt(ctx, sTallyOutcomes).QueryContext(ctx)
	if err != nil {
		return t, wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		var pm, outcome string
		var n int64
		if err := rows.Scan(&pm, &outcome, &n); err != nil {
			return t, wrap(err)
		}
		addOutcome(t.Outcomes, pm, evokestore.InstanceOutcome(outcome), n)
	}
	if err := rows.Err(); err != nil {
		return t, wrap(err)
	}
	return t, nil
}

// Ended counts the instances that ended in each interval, per process
// manager (evokestore.TallyReader).
func (q queries) Ended(ctx context.Context, since time.Time, every time.Duration, n int) (map[string][]int64, error) {
	out := map[string][]int64{}
	if every <= 0 || n <= 0 {
		return out, nil
	}
	rows, err := q.stmt(ctx, sEnded).QueryContext(ctx, since.UnixNano(), int64(every), n)
	if err != nil {
		return nil, fmt.Errorf("evokesqlite: ended: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var pm string
		var i, c int64
		if err := rows.Scan(&pm, &i, &c); err != nil {
			return nil, fmt.Errorf("evokesqlite: ended: %w", err)
		}
		if out[pm] == nil {
			out[pm] = make([]int64, n)
		}
		if i >= 0 && i < int64(n) {
			out[pm][i] += c
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evokesqlite: ended: %w", err)
	}
	return out, nil
}

// addOutcome counts n instances of pm that ended with outcome.
func addOutcome(m map[string]map[evokestore.InstanceOutcome]int64, pm string, outcome evokestore.InstanceOutcome, n int64) {
	if m[pm] == nil {
		m[pm] = map[evokestore.InstanceOutcome]int64{}
	}
	m[pm][outcome] += n
}

func intsToInt64(ns []int) []int64 {
	out := make([]int64, len(ns))
	for i, n := range ns {
		out[i] = int64(n)
	}
	return out
}
