package backend_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evokestore/backend"
)

// fakeRows is a result of rows of column values, scanned as a driver
// would: each value into the target of its column.
type fakeRows struct {
	rows [][]any
	i    int
}

func (r *fakeRows) Next() bool { r.i++; return r.i <= len(r.rows) }
func (r *fakeRows) Err() error { return nil }

func (r *fakeRows) Scan(dest ...any) error {
	row := r.rows[r.i-1]
	if len(row) != len(dest) {
		return fmt.Errorf("%d columns scanned into %d targets", len(row), len(dest))
	}
	for i, v := range row {
		switch d := dest[i].(type) {
		case *int64:
			*d = v.(int64)
		case *int:
			*d = int(v.(int64))
		case *string:
			*d = v.(string)
		case *[]byte:
			*d = v.([]byte)
		default:
			return fmt.Errorf("column %d: target %T", i, d)
		}
	}
	return nil
}

func rowsOf(rows ...[]any) *fakeRows { return &fakeRows{rows: rows} }

var (
	t1 = time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	t2 = t1.Add(time.Hour)
)

func TestNanos(t *testing.T) {
	if backend.Nanos(time.Time{}) != 0 || !backend.FromNanos(0).IsZero() {
		t.Fatal("the zero time is not 0")
	}
	local := t1.In(time.FixedZone("x", 3600))
	if got := backend.FromNanos(backend.Nanos(local)); got != t1 {
		t.Fatalf("round trip: %v, want %v", got, t1)
	}
}

func TestScanEvents(t *testing.T) {
	rows := rowsOf(
		[]any{int64(1), "e1", "s1", int64(1), "A", []byte("d1"), "c1", "k1", []byte("v1"), t1.UnixNano()},
		[]any{int64(2), "e2", "s2", int64(3), "B", []byte("d2"), "c2", "k2", []byte(nil), int64(0)},
	)
	got, err := backend.ScanEvents(rows, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []evokestore.Event{
		{Position: 1, ID: "e1", StreamID: "s1", StreamVersion: 1, Type: "A", Data: []byte("d1"), CorrelationID: "c1", CausationID: "k1", Values: []byte("v1"), RecordedAt: t1},
		{Position: 2, ID: "e2", StreamID: "s2", StreamVersion: 3, Type: "B", Data: []byte("d2"), CorrelationID: "c2", CausationID: "k2"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestScanInstances(t *testing.T) {
	rows := rowsOf([]any{"pm", "i1", int64(7), []byte("{}"), int64(4), "failing", "ph", int64(9), int64(2),
		t2.UnixNano(), "boom", t1.UnixNano(), t2.UnixNano(), int64(0), "rejected"})
	got, err := backend.ScanInstances(rows, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := evokestore.Instance{ProcessManager: "pm", ID: "i1", Partition: 7, State: []byte("{}"), Version: 4,
		Status: evokestore.StatusFailing, Phase: "ph", LastPosition: 9, Attempts: 2, NextAttemptAt: t2, LastError: "boom",
		CreatedAt: t1, UpdatedAt: t2, Outcome: "rejected"}
	if len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestScanOutbox(t *testing.T) {
	rows := rowsOf([]any{int64(5), "c1", "pm", "i1", int64(3), "Ship", "order", "o1", []byte("p"), "corr", "cause", []byte("v"), t1.UnixNano()})
	got, err := backend.ScanOutbox(rows, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := evokestore.OutboxCommand{Seq: 5, ID: "c1", ProcessManager: "pm", InstanceID: "i1", Partition: 3, Type: "Ship",
		AggregateType: "order", AggregateID: "o1", Payload: []byte("p"), CorrelationID: "corr", CausationID: "cause", Values: []byte("v"), CreatedAt: t1}
	if len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestScanHeldAndDeadlines(t *testing.T) {
	held, err := backend.ScanHeld(rowsOf([]any{"pm", "i1", int64(8), "bad"}), nil)
	if err != nil || len(held) != 1 || held[0] != (evokestore.HeldEvent{ProcessManager: "pm", InstanceID: "i1", Position: 8, Error: "bad"}) {
		t.Fatalf("held: %v, %v", held, err)
	}
	row := []any{"pm", "i1", "remind", t1.UnixNano(), int64(2)}
	want := evokestore.Deadline{ProcessManager: "pm", InstanceID: "i1", Name: "remind", DueAt: t1, Version: 2}
	ds, err := backend.ScanDeadlines(rowsOf(row), nil)
	if err != nil || len(ds) != 1 || ds[0] != want {
		t.Fatalf("deadlines: %v, %v", ds, err)
	}
	r := rowsOf(row)
	r.Next()
	if d, err := backend.ScanDeadline(r); err != nil || d != want {
		t.Fatalf("deadline: %v, %v", d, err)
	}
}

func TestScanCounts(t *testing.T) {
	counts := map[string]map[evokestore.InstanceOutcome]int64{"pm": {"done": 1}}
	rows := rowsOf([]any{"pm", "done", int64(2)}, []any{"pm", "rejected", int64(3)}, []any{"other", "done", int64(4)})
	if err := backend.ScanOutcomeCounts(rows, counts); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(counts) != "map[other:map[done:4] pm:map[done:3 rejected:3]]" {
		t.Fatalf("outcome counts: %v", counts)
	}
	ended := map[string][]int64{}
	rows = rowsOf([]any{"pm", int64(0), int64(2)}, []any{"pm", int64(2), int64(5)}, []any{"pm", int64(3), int64(9)}, []any{"other", int64(-1), int64(1)})
	if err := backend.ScanEnded(rows, ended, 3); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ended) != "map[other:[0 0 0] pm:[2 0 5]]" {
		t.Fatalf("ended: %v", ended)
	}
}

func TestScanError(t *testing.T) {
	rows := rowsOf([]any{"too few"})
	if got, err := backend.ScanHeld(rows, nil); err == nil || got != nil {
		t.Fatalf("got %v, %v; want an error", got, err)
	}
	rows = rowsOf([]any{"pm"})
	rows.Next()
	if _, err := backend.ScanDeadline(rows); err == nil {
		t.Fatal("no error from a short row")
	}
}

// TestScanAllocations checks that a scan allocates per result, not per row.
func TestScanAllocations(t *testing.T) {
	row := []any{int64(1), "e1", "s1", int64(1), "A", []byte("d1"), "c1", "k1", []byte("v1"), t1.UnixNano()}
	allocs := func(n int) float64 {
		rows := &fakeRows{rows: make([][]any, n)}
		for i := range rows.rows {
			rows.rows[i] = row
		}
		out := make([]evokestore.Event, 0, n)
		return testing.AllocsPerRun(20, func() {
			rows.i = 0
			if _, err := backend.ScanEvents(rows, out[:0]); err != nil {
				t.Fatal(err)
			}
		})
	}
	if one, many := allocs(1), allocs(100); many != one {
		t.Fatalf("%v allocations for 100 rows, %v for one", many, one)
	}
}
