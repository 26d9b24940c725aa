package backend

import (
	"time"

	"github.com/evoke-go/evoke/evokestore"
)

// Row is a row to scan: *sql.Row, *sql.Rows, pgx.Row and pgx.Rows have its
// method.
type Row interface {
	Scan(dest ...any) error
}

// Rows is what *sql.Rows and pgx.Rows share for reading a result. The
// Scan functions read it to the end but do not close it: the caller does.
type Rows interface {
	Row
	Next() bool
	Err() error
}

// Nanos returns t as Unix nanoseconds, the way the stores keep times; the
// zero time is 0.
func Nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromNanos returns the UTC time of n Unix nanoseconds; 0 is the zero time.
func FromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// ScanEvents appends the events of rows to out. Its columns are position,
// id, stream_id, stream_version, type, data, correlation_id, causation_id,
// meta_values and recorded_at (Unix nanoseconds).
func ScanEvents(rows Rows, out []evokestore.Event) ([]evokestore.Event, error) {
	return scanAll(rows, out, &eventRow{})
}

// ScanInstances appends the instances of rows to out. Its columns are
// process_manager, id, partition, state, version, status, phase,
// last_position, attempts, next_attempt_at, last_error, created_at,
// updated_at, completed_at and outcome, times in Unix nanoseconds.
func ScanInstances(rows Rows, out []evokestore.Instance) ([]evokestore.Instance, error) {
	return scanAll(rows, out, &instanceRow{})
}

// ScanOutbox appends the outbox commands of rows to out. Its columns are
// seq, command_id, process_manager, instance_id, partition, type,
// aggregate_type, aggregate_id, payload, correlation_id, causation_id,
// meta_values and created_at (Unix nanoseconds).
func ScanOutbox(rows Rows, out []evokestore.OutboxCommand) ([]evokestore.OutboxCommand, error) {
	return scanAll(rows, out, &outboxRow{})
}

// ScanHeld appends the held events of rows to out. Its columns are
// process_manager, instance_id, position and error.
func ScanHeld(rows Rows, out []evokestore.HeldEvent) ([]evokestore.HeldEvent, error) {
	return scanAll(rows, out, &heldRow{})
}

// ScanDeadlines appends the deadlines of rows to out. Its columns are
// process_manager, instance_id, name, due_at (Unix nanoseconds) and
// version.
func ScanDeadlines(rows Rows, out []evokestore.Deadline) ([]evokestore.Deadline, error) {
	return scanAll(rows, out, &deadlineRow{})
}

// ScanDeadline scans one deadline row, with the columns of ScanDeadlines.
func ScanDeadline(row Row) (evokestore.Deadline, error) {
	var r deadlineRow
	err := row.Scan(r.dest()...)
	return r.value(), err
}

// ScanOutcomeCounts adds the rows of rows to counts, by process manager and
// outcome. Its columns are process_manager, outcome and a count.
func ScanOutcomeCounts(rows Rows, counts map[string]map[evokestore.InstanceOutcome]int64) error {
	var pm, outcome string
	var n int64
	dest := []any{&pm, &outcome, &n}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		m := counts[pm]
		if m == nil {
			m = map[evokestore.InstanceOutcome]int64{}
			counts[pm] = m
		}
		m[evokestore.InstanceOutcome(outcome)] += n
	}
	return rows.Err()
}

// ScanEnded adds the rows of rows to ended, by process manager: n counts
// each, one an interval. Its columns are process_manager, the index of an
// interval and a count of instances that ended in it; an index outside the
// n intervals is dropped.
func ScanEnded(rows Rows, ended map[string][]int64, n int) error {
	var pm string
	var i, c int64
	dest := []any{&pm, &i, &c}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if ended[pm] == nil {
			ended[pm] = make([]int64, n)
		}
		if i >= 0 && i < int64(n) {
			ended[pm][i] += c
		}
	}
	return rows.Err()
}

// scanned is one kind of row as scanned: the targets of its columns (dest)
// and the value they make (value). Every scan sets every target, so one
// serves all the rows of a result.
type scanned[T any] interface {
	dest() []any
	value() T
}

// scanAll appends the values of rows to out, scanning each into r.
func scanAll[T any](rows Rows, out []T, r scanned[T]) ([]T, error) {
	dest := r.dest()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, r.value())
	}
	return out, rows.Err()
}

type eventRow struct {
	e  evokestore.Event
	at int64
}

func (r *eventRow) dest() []any {
	e := &r.e
	return []any{&e.Position, &e.ID, &e.StreamID, &e.StreamVersion, &e.Type, &e.Data, &e.CorrelationID, &e.CausationID, &e.Values, &r.at}
}

func (r *eventRow) value() evokestore.Event {
	e := r.e
	e.RecordedAt = FromNanos(r.at)
	return e
}

type instanceRow struct {
	in                               evokestore.Instance
	status, outcome                  string
	next, created, updated, complete int64
}

func (r *instanceRow) dest() []any {
	in := &r.in
	return []any{&in.ProcessManager, &in.ID, &in.Partition, &in.State, &in.Version, &r.status, &in.Phase,
		&in.LastPosition, &in.Attempts, &r.next, &in.LastError, &r.created, &r.updated, &r.complete, &r.outcome}
}

func (r *instanceRow) value() evokestore.Instance {
	in := r.in
	in.Status = evokestore.InstanceStatus(r.status)
	in.Outcome = evokestore.InstanceOutcome(r.outcome)
	in.NextAttemptAt = FromNanos(r.next)
	in.CreatedAt = FromNanos(r.created)
	in.UpdatedAt = FromNanos(r.updated)
	in.CompletedAt = FromNanos(r.complete)
	return in
}

type outboxRow struct {
	c       evokestore.OutboxCommand
	created int64
}

func (r *outboxRow) dest() []any {
	c := &r.c
	return []any{&c.Seq, &c.ID, &c.ProcessManager, &c.InstanceID, &c.Partition, &c.Type, &c.AggregateType,
		&c.AggregateID, &c.Payload, &c.CorrelationID, &c.CausationID, &c.Values, &r.created}
}

func (r *outboxRow) value() evokestore.OutboxCommand {
	c := r.c
	c.CreatedAt = FromNanos(r.created)
	return c
}

type heldRow struct{ h evokestore.HeldEvent }

func (r *heldRow) dest() []any {
	return []any{&r.h.ProcessManager, &r.h.InstanceID, &r.h.Position, &r.h.Error}
}

func (r *heldRow) value() evokestore.HeldEvent { return r.h }

type deadlineRow struct {
	d   evokestore.Deadline
	due int64
}

func (r *deadlineRow) dest() []any {
	return []any{&r.d.ProcessManager, &r.d.InstanceID, &r.d.Name, &r.due, &r.d.Version}
}

func (r *deadlineRow) value() evokestore.Deadline {
	d := r.d
	d.DueAt = FromNanos(r.due)
	return d
}
