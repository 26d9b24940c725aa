// Package evokestoretest is the conformance suite of evokestore backends.
// Every backend's tests call Run with a constructor of fresh, empty stores:
//
//	func TestConformance(t *testing.T) {
//		evokestoretest.Run(t, func(t *testing.T) evokestore.Store {
//			s, err := mybackend.Open(...)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		}, evokestoretest.StreamsReader, evokestoretest.Leaser) // what it implements
//	}
//
// Run checks the behaviour documented in package evokestore, including the
// sentinel errors, the input contract (every event outside it refused with
// ErrInvalid, the input at its edges read back byte for byte), fencing,
// atomicity of transactions, concurrent writers and commit notifications.
// It also checks the optional extensions the runtime discovers by type
// assertion (evokestore.StreamsReader, EventsReader, DeadlinesReader,
// AppendReader, Purger, TallyReader, LeaseReader, Leaser with
// LeaseChecker, and WriteDeferrer) that the store declares it implements:
// one declared but missing, or implemented but not declared, fails the
// suite, so that a backend that loses one does not pass by skipping its
// subtests.
// The lease subtests use a short ttl by the store's clock and so take about
// half a second of real time.
package evokestoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evoke-go/evoke/evokestore"
)

// Extension names an optional extension of evokestore that a backend
// implements; Run's implements lists them.
type Extension string

// The optional extensions the suite tests.
const (
	StreamsReader   Extension = "StreamsReader"   // on the Store and its Tx
	EventsReader    Extension = "EventsReader"    // on the Store and its Tx
	AppendReader    Extension = "AppendReader"    // on the Tx
	DeadlinesReader Extension = "DeadlinesReader" // on the Store
	Purger          Extension = "Purger"          // on the Tx
	TallyReader     Extension = "TallyReader"     // on the Store
	LeaseReader     Extension = "LeaseReader"     // on the Store
	Leaser          Extension = "Leaser"          // on the Store, with LeaseChecker on its Tx
	WriteDeferrer   Extension = "WriteDeferrer"   // on the Tx
)

// declared holds, by the name of Run's test, the extensions its store
// declares.
var declared sync.Map

// optional checks an extension's subtest against the declaration: a store
// that declares ext must implement it (the test fails), one that does not
// declare it must not implement it (so that a declaration cannot go stale),
// and the test of an extension neither declared nor implemented is skipped.
func optional(t *testing.T, s evokestore.Store, ext Extension, implemented bool) {
	t.Helper()
	want := false
	declared.Range(func(k, v any) bool {
		if strings.HasPrefix(t.Name(), k.(string)+"/") {
			want = slices.Contains(v.([]Extension), ext)
			return false
		}
		return true
	})
	switch {
	case want && !implemented:
		t.Fatalf("%s store declares %s but does not implement it", s.Backend(), ext)
	case !want && implemented:
		t.Fatalf("%s store implements %s but does not declare it: list it in evokestoretest.Run's implements", s.Backend(), ext)
	case !implemented:
		t.Skipf("%s store implements no %s (optional, not declared)", s.Backend(), ext)
	}
}

// Run runs the conformance suite as subtests of t. newStore must return a
// fresh, empty store for each call and arrange (with t.Cleanup) for it to be
// closed; subtests call it in parallel. implements lists the optional
// extensions the store implements: the suite fails when a declared one is
// missing (a backend that loses one does not pass by skipping its tests)
// and when one that is implemented is not declared.
func Run(t *testing.T, newStore func(t *testing.T) evokestore.Store, implements ...Extension) {
	declared.Store(t.Name(), implements)
	t.Cleanup(func() { declared.Delete(t.Name()) })
	tests := []struct {
		name string
		fn   func(t *testing.T, s evokestore.Store)
	}{
		{"AppendAndReadLog", testAppendAndReadLog},
		{"AppendEmpty", testAppendEmpty},
		{"VersionConflict", testVersionConflict},
		{"DuplicateEvent", testDuplicateEvent},
		{"ReadLogTypesAndLimit", testReadLogTypesAndLimit},
		{"ReadLogDefaultLimit", testReadLogDefaultLimit},
		{"ReadStream", testReadStream},
		{"Head", testHead},
		{"TxReadsOwnWrites", testTxReadsOwnWrites},
		{"Instances", testInstances},
		{"InstancesFencing", testInstancesFencing},
		{"InstancesMany", testInstancesMany},
		{"ListInstances", testListInstances},
		{"ListInstancesFiltered", testListInstancesFiltered},
		{"Outbox", testOutbox},
		{"CommandOutcomes", testCommandOutcomes},
		{"History", testHistory},
		{"HistoryRuns", testHistoryRuns},
		{"Checkpoints", testCheckpoints},
		{"HeldEvents", testHeldEvents},
		{"Deadlines", testDeadlines},
		{"ReplaceDeadlinesOfMany", testReplaceDeadlinesOfMany},
		{"DeleteDeadline", testDeleteDeadline},
		{"Stats", testStats},
		{"ConcurrentWriters", testConcurrentWriters},
		{"RollbackLeavesNothing", testRollbackLeavesNothing},
		{"AbandonedTx", testAbandonedTx},
		{"Subscribe", testSubscribe},
		{"ReadLogUntil", testReadLogUntil},
		{"PutCheckpoints", testPutCheckpoints},
		{"OutboxPartitions", testOutboxPartitions},
		{"OutboxInstances", testOutboxInstances},
		{"HistoryBulk", testHistoryBulk},
		{"CommandOutcomesBulk", testCommandOutcomesBulk},
		{"InstancesBulk", testInstancesBulk},
		{"AppendBulk", testAppendBulk},
		{"HistoryNodeAndLeaseToken", testHistoryNodeAndLeaseToken},
		{"InputRefused", testInputRefused},
		{"InputAccepted", testInputAccepted},
		// Optional extensions: these skip when the store neither
		// implements nor declares them.
		{"ReadStreams", testReadStreams},
		{"ReadEvents", testReadEvents},
		{"AppendReader", testAppendReader},
		{"InstanceDeadlines", testInstanceDeadlines},
		{"Purge", testPurge},
		{"Tally", testTally},
		{"PartitionLeases", testPartitionLeases},
		{"LeaseBalance", testLeaseBalance},
		{"CheckLeases", testCheckLeases},
		{"LeaseExpiry", testLeaseExpiry},
		{"DeferWrites", testDeferWrites},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// t0 is a fixed instant with nanoseconds, to check times round-trip.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

func begin(t *testing.T, s evokestore.Store) evokestore.Tx {
	t.Helper()
	tx, err := s.Begin(t.Context())
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	return tx
}

func commit(t *testing.T, tx evokestore.Tx) {
	t.Helper()
	if err := tx.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func rollback(t *testing.T, tx evokestore.Tx) {
	t.Helper()
	if err := tx.Rollback(); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
}

// inTx runs fn in a transaction and commits it.
func inTx(t *testing.T, s evokestore.Store, fn func(tx evokestore.Tx) error) {
	t.Helper()
	tx := begin(t, s)
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		t.Fatal(err)
	}
	commit(t, tx)
}

func newEvent(id, stream string, version int64, typ string) evokestore.NewEvent {
	return evokestore.NewEvent{
		ID: id, StreamID: stream, StreamVersion: version, Type: typ,
		Data:          []byte(`{"id":"` + id + `"}`),
		CorrelationID: "corr-" + id, CausationID: "cause-" + id,
		Values:     []byte(`{"k":"v"}`),
		RecordedAt: t0.Add(time.Duration(version) * time.Second),
	}
}

func appendEvents(t *testing.T, s evokestore.Store, evs ...evokestore.NewEvent) []evokestore.Event {
	t.Helper()
	var out []evokestore.Event
	inTx(t, s, func(tx evokestore.Tx) error {
		var err error
		out, err = tx.AppendEvents(t.Context(), evs)
		return err
	})
	return out
}

func readAll(t *testing.T, q evokestore.Querier) []evokestore.Event {
	t.Helper()
	var all []evokestore.Event
	after := int64(0)
	for {
		evs, err := q.ReadLog(t.Context(), evokestore.LogQuery{After: after, Limit: 100})
		if err != nil {
			t.Fatalf("ReadLog: %v", err)
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].Position
	}
}

func checkEvent(t *testing.T, got evokestore.Event, want evokestore.NewEvent) {
	t.Helper()
	if got.ID != want.ID || got.StreamID != want.StreamID || got.StreamVersion != want.StreamVersion ||
		got.Type != want.Type || !bytes.Equal(got.Data, want.Data) || got.CorrelationID != want.CorrelationID ||
		got.CausationID != want.CausationID || !bytes.Equal(got.Values, want.Values) {
		t.Errorf("event = %+v, want %+v", got, want)
	}
	if !want.RecordedAt.IsZero() && !got.RecordedAt.Equal(want.RecordedAt) {
		t.Errorf("event %s RecordedAt = %v, want %v", want.ID, got.RecordedAt, want.RecordedAt)
	}
	if got.RecordedAt.IsZero() {
		t.Errorf("event %s has zero RecordedAt", want.ID)
	}
}

func checkIncreasing(t *testing.T, evs []evokestore.Event) {
	t.Helper()
	for i := range evs {
		if evs[i].Position <= 0 {
			t.Fatalf("event %d has position %d", i, evs[i].Position)
		}
		if i > 0 && evs[i].Position <= evs[i-1].Position {
			t.Fatalf("positions not strictly increasing: %d then %d", evs[i-1].Position, evs[i].Position)
		}
	}
}

func testAppendAndReadLog(t *testing.T, s evokestore.Store) {
	first := []evokestore.NewEvent{newEvent("e1", "a", 1, "T1"), newEvent("e2", "b", 1, "T2"), newEvent("e3", "a", 2, "T1")}
	first[1].Values = nil
	first[1].CorrelationID, first[1].CausationID = "", ""
	got := appendEvents(t, s, first...)
	if len(got) != len(first) {
		t.Fatalf("AppendEvents returned %d events, want %d", len(got), len(first))
	}
	for i := range got {
		checkEvent(t, got[i], first[i])
	}
	checkIncreasing(t, got)

	before := time.Now().Add(-time.Minute)
	zero := newEvent("e4", "c", 1, "T3")
	zero.RecordedAt = time.Time{}
	got2 := appendEvents(t, s, zero, newEvent("e5", "a", 3, "T1"))
	if got2[0].Position <= got[2].Position {
		t.Fatalf("second append position %d not after %d", got2[0].Position, got[2].Position)
	}
	if got2[0].RecordedAt.Before(before) || got2[0].RecordedAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("zero RecordedAt became %v, want about now", got2[0].RecordedAt)
	}
	checkIncreasing(t, got2)

	all := readAll(t, s)
	want := append(append([]evokestore.Event(nil), got...), got2...)
	if len(all) != len(want) {
		t.Fatalf("ReadLog returned %d events, want %d", len(all), len(want))
	}
	for i := range all {
		if all[i].Position != want[i].Position || all[i].ID != want[i].ID || !all[i].RecordedAt.Equal(want[i].RecordedAt) {
			t.Errorf("ReadLog[%d] = %s@%d (%v), want %s@%d (%v)", i, all[i].ID, all[i].Position, all[i].RecordedAt, want[i].ID, want[i].Position, want[i].RecordedAt)
		}
	}
	for i := range first {
		checkEvent(t, all[i], first[i])
	}
	if all[1].Values != nil {
		t.Errorf("nil Values read back as %q", all[1].Values)
	}

	after, err := s.ReadLog(t.Context(), evokestore.LogQuery{After: got[1].Position})
	if err != nil {
		t.Fatal(err)
	}
	if ids := eventIDs(after); !slices.Equal(ids, []string{"e3", "e4", "e5"}) {
		t.Errorf("ReadLog after e2 = %v, want [e3 e4 e5]", ids)
	}
}

func eventIDs(evs []evokestore.Event) []string {
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}

func testAppendEmpty(t *testing.T, s evokestore.Store) {
	tx := begin(t, s)
	evs, err := tx.AppendEvents(t.Context(), nil)
	if err != nil || len(evs) != 0 {
		t.Fatalf("AppendEvents(nil) = %v, %v", evs, err)
	}
	commit(t, tx)
	if all := readAll(t, s); len(all) != 0 {
		t.Fatalf("log has %d events after empty append", len(all))
	}
}

func testVersionConflict(t *testing.T, s evokestore.Store) {
	appendEvents(t, s, newEvent("e1", "s", 1, "T"), newEvent("e2", "s", 2, "T"))

	tx := begin(t, s)
	_, err := tx.AppendEvents(t.Context(), []evokestore.NewEvent{newEvent("x1", "other", 1, "T"), newEvent("x2", "s", 2, "T")})
	if !errors.Is(err, evokestore.ErrVersionConflict) {
		t.Fatalf("append at taken version: err = %v, want ErrVersionConflict", err)
	}
	if errors.Is(err, evokestore.ErrDuplicateEvent) {
		t.Fatalf("version conflict also reported as duplicate event: %v", err)
	}
	rollback(t, tx)

	// Two events of one batch at the same version conflict too.
	tx = begin(t, s)
	_, err = tx.AppendEvents(t.Context(), []evokestore.NewEvent{newEvent("y1", "n", 1, "T"), newEvent("y2", "n", 1, "T")})
	if !errors.Is(err, evokestore.ErrVersionConflict) {
		t.Fatalf("batch with repeated version: err = %v, want ErrVersionConflict", err)
	}
	rollback(t, tx)

	if ids := eventIDs(readAll(t, s)); !slices.Equal(ids, []string{"e1", "e2"}) {
		t.Fatalf("log after conflicts = %v, want [e1 e2]", ids)
	}
	// The next version is still free.
	appendEvents(t, s, newEvent("e3", "s", 3, "T"))
}

func testDuplicateEvent(t *testing.T, s evokestore.Store) {
	appendEvents(t, s, newEvent("e1", "s", 1, "T"))
	tx := begin(t, s)
	_, err := tx.AppendEvents(t.Context(), []evokestore.NewEvent{newEvent("e1", "other", 1, "T")})
	if !errors.Is(err, evokestore.ErrDuplicateEvent) {
		t.Fatalf("append of existing id: err = %v, want ErrDuplicateEvent", err)
	}
	if errors.Is(err, evokestore.ErrVersionConflict) {
		t.Fatalf("duplicate event also reported as version conflict: %v", err)
	}
	rollback(t, tx)
	if ids := eventIDs(readAll(t, s)); !slices.Equal(ids, []string{"e1"}) {
		t.Fatalf("log = %v, want [e1]", ids)
	}
}

func testReadLogTypesAndLimit(t *testing.T, s evokestore.Store) {
	types := []string{"A", "B", "C"}
	var evs []evokestore.NewEvent
	for i := range 12 {
		evs = append(evs, newEvent(fmt.Sprintf("e%02d", i), "s", int64(i+1), types[i%3]))
	}
	appendEvents(t, s, evs...)
	ctx := t.Context()

	got, err := s.ReadLog(ctx, evokestore.LogQuery{Types: []string{"A"}})
	if err != nil {
		t.Fatal(err)
	}
	if ids := eventIDs(got); !slices.Equal(ids, []string{"e00", "e03", "e06", "e09"}) {
		t.Errorf("Types [A] = %v", ids)
	}
	got, err = s.ReadLog(ctx, evokestore.LogQuery{Types: []string{"C", "A"}, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if ids := eventIDs(got); !slices.Equal(ids, []string{"e00", "e02", "e03"}) {
		t.Errorf("Types [C A] limit 3 = %v", ids)
	}
	got, err = s.ReadLog(ctx, evokestore.LogQuery{After: got[2].Position, Types: []string{"C", "A"}, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if ids := eventIDs(got); !slices.Equal(ids, []string{"e05", "e06", "e08"}) {
		t.Errorf("Types [C A] page 2 = %v", ids)
	}
	got, err = s.ReadLog(ctx, evokestore.LogQuery{Types: []string{"nope"}})
	if err != nil || len(got) != 0 {
		t.Errorf("unknown type: %v, %v", eventIDs(got), err)
	}
	got, err = s.ReadLog(ctx, evokestore.LogQuery{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if ids := eventIDs(got); !slices.Equal(ids, []string{"e00", "e01", "e02", "e03", "e04"}) {
		t.Errorf("Limit 5 = %v", ids)
	}
}

func testReadLogDefaultLimit(t *testing.T, s evokestore.Store) {
	var evs []evokestore.NewEvent
	for i := range 1010 {
		evs = append(evs, newEvent(fmt.Sprintf("e%04d", i), fmt.Sprintf("s%d", i%7), int64(i/7+1), "T"))
	}
	appendEvents(t, s, evs...)
	got, err := s.ReadLog(t.Context(), evokestore.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1000 {
		t.Fatalf("ReadLog with Limit 0 returned %d events, want the default 1000", len(got))
	}
	checkIncreasing(t, got)
	if got[0].ID != "e0000" || got[999].ID != "e0999" {
		t.Fatalf("default page spans %s..%s", got[0].ID, got[999].ID)
	}
}

func testReadStream(t *testing.T, s evokestore.Store) {
	appendEvents(t, s, newEvent("a1", "a", 1, "T"), newEvent("b1", "b", 1, "T"), newEvent("a2", "a", 2, "T"))
	appendEvents(t, s, newEvent("a3", "a", 3, "T"))
	ctx := t.Context()
	got, err := s.ReadStream(ctx, "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if ids := eventIDs(got); !slices.Equal(ids, []string{"a1", "a2", "a3"}) {
		t.Errorf("ReadStream(a, 0) = %v", ids)
	}
	for i, e := range got {
		if e.StreamVersion != int64(i+1) || e.StreamID != "a" || e.Position == 0 {
			t.Errorf("ReadStream(a)[%d] = %+v", i, e)
		}
	}
	got, err = s.ReadStream(ctx, "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if ids := eventIDs(got); !slices.Equal(ids, []string{"a2", "a3"}) {
		t.Errorf("ReadStream(a, 1) = %v", ids)
	}
	got, err = s.ReadStream(ctx, "a", 3)
	if err != nil || len(got) != 0 {
		t.Errorf("ReadStream(a, 3) = %v, %v", eventIDs(got), err)
	}
	got, err = s.ReadStream(ctx, "missing", 0)
	if err != nil || len(got) != 0 {
		t.Errorf("ReadStream(missing) = %v, %v", eventIDs(got), err)
	}
}

func testHead(t *testing.T, s evokestore.Store) {
	h, err := s.Head(t.Context())
	if err != nil || h != 0 {
		t.Fatalf("Head of empty store = %d, %v; want 0", h, err)
	}
	evs := appendEvents(t, s, newEvent("e1", "s", 1, "T"), newEvent("e2", "s", 2, "T"))
	h, err = s.Head(t.Context())
	if err != nil || h != evs[1].Position {
		t.Fatalf("Head = %d, %v; want %d", h, err, evs[1].Position)
	}
	// An uncommitted append does not move the committed head.
	tx := begin(t, s)
	if _, err := tx.AppendEvents(t.Context(), []evokestore.NewEvent{newEvent("e3", "s", 3, "T")}); err != nil {
		t.Fatal(err)
	}
	h, err = s.Head(t.Context())
	if err != nil || h != evs[1].Position {
		t.Fatalf("Head during open tx = %d, %v; want %d", h, err, evs[1].Position)
	}
	commit(t, tx)
	h, err = s.Head(t.Context())
	if err != nil || h <= evs[1].Position {
		t.Fatalf("Head after commit = %d, %v; want > %d", h, err, evs[1].Position)
	}
}

func testTxReadsOwnWrites(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	tx := begin(t, s)
	defer tx.Rollback()
	evs, err := tx.AppendEvents(ctx, []evokestore.NewEvent{newEvent("e1", "s", 1, "T")})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: instance("pm", "i1", 1), PrevVersion: -1}}); err != nil {
		t.Fatal(err)
	}
	got, err := tx.ReadLog(ctx, evokestore.LogQuery{})
	if err != nil || len(got) != 1 || got[0].Position != evs[0].Position {
		t.Fatalf("ReadLog in tx = %v, %v; want its own event", eventIDs(got), err)
	}
	st, err := tx.ReadStream(ctx, "s", 0)
	if err != nil || len(st) != 1 {
		t.Fatalf("ReadStream in tx = %v, %v", eventIDs(st), err)
	}
	ins, err := tx.Instances(ctx, "pm", []string{"i1"})
	if err != nil || len(ins) != 1 {
		t.Fatalf("Instances in tx = %v, %v", ins, err)
	}
}

func instance(pm, id string, version int64) evokestore.Instance {
	return evokestore.Instance{
		ProcessManager: pm, ID: id, Partition: 3,
		State:   []byte(`{"n":` + fmt.Sprint(version) + `}`),
		Version: version, Status: evokestore.StatusRunning, Phase: "started",
		LastPosition: 10 * version, Attempts: 1,
		NextAttemptAt: t0.Add(time.Minute), LastError: "boom",
		CreatedAt: t0, UpdatedAt: t0.Add(time.Duration(version) * time.Second),
	}
}

func checkInstance(t *testing.T, got, want evokestore.Instance) {
	t.Helper()
	if got.ProcessManager != want.ProcessManager || got.ID != want.ID || got.Partition != want.Partition ||
		!bytes.Equal(got.State, want.State) || got.Version != want.Version || got.Status != want.Status ||
		got.Phase != want.Phase || got.LastPosition != want.LastPosition || got.Attempts != want.Attempts ||
		!got.NextAttemptAt.Equal(want.NextAttemptAt) || got.LastError != want.LastError ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) || !got.CompletedAt.Equal(want.CompletedAt) ||
		got.Outcome != want.Outcome {
		t.Errorf("instance = %+v\nwant       %+v", got, want)
	}
}

func loadOne(t *testing.T, q evokestore.Querier, pm, id string) (evokestore.Instance, bool) {
	t.Helper()
	ins, err := q.Instances(t.Context(), pm, []string{id})
	if err != nil {
		t.Fatalf("Instances: %v", err)
	}
	if len(ins) > 1 {
		t.Fatalf("Instances(%s) returned %d instances", id, len(ins))
	}
	if len(ins) == 0 {
		return evokestore.Instance{}, false
	}
	return ins[0], true
}

func testInstances(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	a, b := instance("pm", "a", 1), instance("pm", "b", 1)
	b.Status, b.CompletedAt, b.Outcome = evokestore.StatusCompleted, t0.Add(time.Hour), evokestore.EndTimedOut
	other := instance("pm2", "a", 1)
	inTx(t, s, func(tx evokestore.Tx) error {
		return tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: a, PrevVersion: -1}, {Instance: b, PrevVersion: -1}, {Instance: other, PrevVersion: -1}})
	})
	ins, err := s.Instances(ctx, "pm", []string{"b", "missing", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 2 {
		t.Fatalf("Instances returned %d instances, want 2", len(ins))
	}
	sort.Slice(ins, func(i, j int) bool { return ins[i].ID < ins[j].ID })
	checkInstance(t, ins[0], a)
	checkInstance(t, ins[1], b)
	if got, ok := loadOne(t, s, "pm2", "a"); !ok || !bytes.Equal(got.State, other.State) {
		t.Errorf("pm2/a = %+v, %v", got, ok)
	}
	if ins, err := s.Instances(ctx, "pm", nil); err != nil || len(ins) != 0 {
		t.Errorf("Instances(nil) = %v, %v", ins, err)
	}

	a2 := instance("pm", "a", 2)
	a2.Status, a2.Phase, a2.State = evokestore.StatusFailing, "waiting", []byte(`{"n":2,"x":true}`)
	a2.Attempts, a2.LastError, a2.Outcome = 3, "still failing", evokestore.EndCompensated
	inTx(t, s, func(tx evokestore.Tx) error {
		return tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: a2, PrevVersion: 1}})
	})
	got, ok := loadOne(t, s, "pm", "a")
	if !ok {
		t.Fatal("instance a vanished")
	}
	checkInstance(t, got, a2)
	if got, _ := loadOne(t, s, "pm2", "a"); got.Version != 1 {
		t.Errorf("update of pm/a changed pm2/a to version %d", got.Version)
	}
}

func testInstancesFencing(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	inTx(t, s, func(tx evokestore.Tx) error {
		return tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: instance("pm", "a", 1), PrevVersion: -1}})
	})
	inTx(t, s, func(tx evokestore.Tx) error {
		return tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: instance("pm", "a", 2), PrevVersion: 1}})
	})

	cases := []struct {
		name string
		w    evokestore.InstanceWrite
	}{
		{"insert existing", evokestore.InstanceWrite{Instance: instance("pm", "a", 1), PrevVersion: -1}},
		{"stale update", evokestore.InstanceWrite{Instance: instance("pm", "a", 2), PrevVersion: 1}},
		{"future update", evokestore.InstanceWrite{Instance: instance("pm", "a", 9), PrevVersion: 8}},
		{"update missing", evokestore.InstanceWrite{Instance: instance("pm", "nope", 2), PrevVersion: 1}},
	}
	for _, c := range cases {
		tx := begin(t, s)
		// Other writes of the same tx, which must vanish with it.
		if _, err := tx.AppendEvents(ctx, []evokestore.NewEvent{newEvent("e-"+c.name, "s-"+c.name, 1, "T")}); err != nil {
			t.Fatal(err)
		}
		if err := tx.InsertOutbox(ctx, []evokestore.OutboxCommand{command("c-"+c.name, "pm", "a")}); err != nil {
			t.Fatal(err)
		}
		err := tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: instance("pm", "fresh-"+c.name, 1), PrevVersion: -1}, c.w})
		if !errors.Is(err, evokestore.ErrFenced) {
			t.Errorf("%s: err = %v, want ErrFenced", c.name, err)
		}
		rollback(t, tx)
	}
	got, ok := loadOne(t, s, "pm", "a")
	if !ok || got.Version != 2 {
		t.Fatalf("after fenced writes pm/a = version %d (found %v), want 2", got.Version, ok)
	}
	ins, err := s.ListInstances(ctx, evokestore.InstanceQuery{})
	if err != nil || len(ins) != 1 {
		t.Fatalf("instances after fenced, rolled back txs = %d, %v; want 1", len(ins), err)
	}
	if evs := readAll(t, s); len(evs) != 0 {
		t.Fatalf("rolled back fenced txs left %d events", len(evs))
	}
	if cmds, err := s.Outbox(ctx, evokestore.OutboxQuery{}); err != nil || len(cmds) != 0 {
		t.Fatalf("rolled back fenced txs left %d outbox commands (%v)", len(cmds), err)
	}
}

func testInstancesMany(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	const n = 700
	var ws []evokestore.InstanceWrite
	var ids []string
	for i := range n {
		id := fmt.Sprintf("i%04d", i)
		ids = append(ids, id)
		ws = append(ws, evokestore.InstanceWrite{Instance: instance("pm", id, 1), PrevVersion: -1})
	}
	inTx(t, s, func(tx evokestore.Tx) error { return tx.PutInstances(ctx, ws) })
	ins, err := s.Instances(ctx, "pm", append(ids, "missing-1", "missing-2"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != n {
		t.Fatalf("Instances(%d ids) returned %d", n, len(ins))
	}
	seen := map[string]bool{}
	for _, in := range ins {
		if seen[in.ID] {
			t.Fatalf("instance %s returned twice", in.ID)
		}
		seen[in.ID] = true
	}
	// Update them all in one batch.
	for i := range ws {
		ws[i].Instance = instance("pm", ws[i].ID, 2)
		ws[i].PrevVersion = 1
	}
	inTx(t, s, func(tx evokestore.Tx) error { return tx.PutInstances(ctx, ws) })
	ins, err = s.Instances(ctx, "pm", ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		if in.Version != 2 {
			t.Fatalf("instance %s at version %d after batch update", in.ID, in.Version)
		}
	}
}

func testListInstances(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	var ws []evokestore.InstanceWrite
	for _, pm := range []string{"p1", "p2"} {
		for i := range 5 {
			in := instance(pm, fmt.Sprintf("i%d", i), 1)
			if i%2 == 1 {
				in.Status = evokestore.StatusParked
			}
			ws = append(ws, evokestore.InstanceWrite{Instance: in, PrevVersion: -1})
		}
	}
	inTx(t, s, func(tx evokestore.Tx) error { return tx.PutInstances(ctx, ws) })
	key := func(ins []evokestore.Instance) []string {
		var k []string
		for _, in := range ins {
			k = append(k, in.ProcessManager+"/"+in.ID)
		}
		return k
	}
	// Page through everything, 3 at a time.
	var all []string
	q := evokestore.InstanceQuery{Limit: 3}
	for range 10 {
		page, err := s.ListInstances(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 3 {
			t.Fatalf("page of %d instances exceeds Limit 3", len(page))
		}
		if len(page) == 0 {
			break
		}
		all = append(all, key(page)...)
		last := page[len(page)-1]
		q.AfterProcessManager, q.AfterID = last.ProcessManager, last.ID
	}
	want := []string{"p1/i0", "p1/i1", "p1/i2", "p1/i3", "p1/i4", "p2/i0", "p2/i1", "p2/i2", "p2/i3", "p2/i4"}
	if !slices.Equal(all, want) {
		t.Errorf("paged ListInstances = %v, want %v", all, want)
	}
	got, err := s.ListInstances(ctx, evokestore.InstanceQuery{ProcessManager: "p2", Status: evokestore.StatusParked})
	if err != nil {
		t.Fatal(err)
	}
	if k := key(got); !slices.Equal(k, []string{"p2/i1", "p2/i3"}) {
		t.Errorf("p2 parked = %v", k)
	}
	got, err = s.ListInstances(ctx, evokestore.InstanceQuery{Status: evokestore.StatusRunning, AfterProcessManager: "p1", AfterID: "i2"})
	if err != nil {
		t.Fatal(err)
	}
	if k := key(got); !slices.Equal(k, []string{"p1/i4", "p2/i0", "p2/i2", "p2/i4"}) {
		t.Errorf("running after p1/i2 = %v", k)
	}
}

// testListInstancesFiltered lists instances by outcome, ID prefix and
// age, and checks that every outcome round-trips.
func testListInstancesFiltered(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	var ws []evokestore.InstanceWrite
	add := func(id string, status evokestore.InstanceStatus, outcome evokestore.InstanceOutcome, created time.Time) {
		in := instance("pm", id, 1)
		in.Status, in.Outcome, in.CreatedAt = status, outcome, created
		if status.Done() {
			in.CompletedAt = created.Add(time.Minute)
		}
		ws = append(ws, evokestore.InstanceWrite{Instance: in, PrevVersion: -1})
	}
	add("order-1", evokestore.StatusCompleted, evokestore.EndCompleted, t0)
	add("order-2", evokestore.StatusCompleted, evokestore.EndCompensated, t0.Add(time.Hour))
	add("order-3", evokestore.StatusCompleted, evokestore.EndTimedOut, t0.Add(2*time.Hour))
	add("order-4", evokestore.StatusCancelled, evokestore.EndCancelled, t0.Add(3*time.Hour))
	add("order-5", evokestore.StatusRunning, evokestore.EndCompensated, t0.Add(4*time.Hour)) // compensated, not done yet
	add("refund-1", evokestore.StatusRunning, "", t0.Add(5*time.Hour))
	inTx(t, s, func(tx evokestore.Tx) error { return tx.PutInstances(ctx, ws) })
	for _, w := range ws {
		got, ok := loadOne(t, s, "pm", w.ID)
		if !ok {
			t.Fatalf("instance %s missing", w.ID)
		}
		checkInstance(t, got, w.Instance)
	}
	ids := func(q evokestore.InstanceQuery) []string {
		t.Helper()
		q.ProcessManager = "pm"
		got, err := s.ListInstances(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var k []string
		for _, in := range got {
			k = append(k, in.ID)
		}
		return k
	}
	for _, tc := range []struct {
		name string
		q    evokestore.InstanceQuery
		want []string
	}{
		{"completed", evokestore.InstanceQuery{Outcome: evokestore.EndCompleted}, []string{"order-1"}},
		{"compensated (done only)", evokestore.InstanceQuery{Outcome: evokestore.EndCompensated}, []string{"order-2"}},
		{"timed out", evokestore.InstanceQuery{Outcome: evokestore.EndTimedOut}, []string{"order-3"}},
		{"cancelled", evokestore.InstanceQuery{Outcome: evokestore.EndCancelled, Status: evokestore.StatusCancelled}, []string{"order-4"}},
		{"outcome and status", evokestore.InstanceQuery{Outcome: evokestore.EndTimedOut, Status: evokestore.StatusCancelled}, nil},
		{"prefix", evokestore.InstanceQuery{IDPrefix: "order-"}, []string{"order-1", "order-2", "order-3", "order-4", "order-5"}},
		{"prefix, whole ID", evokestore.InstanceQuery{IDPrefix: "refund-1"}, []string{"refund-1"}},
		{"prefix, none", evokestore.InstanceQuery{IDPrefix: "x"}, nil},
		{"created before", evokestore.InstanceQuery{CreatedBefore: t0.Add(time.Hour)}, []string{"order-1"}},
		{"created after", evokestore.InstanceQuery{CreatedAfter: t0.Add(4 * time.Hour)}, []string{"refund-1"}},
		{"created between, running", evokestore.InstanceQuery{CreatedAfter: t0, CreatedBefore: t0.Add(5 * time.Hour), Status: evokestore.StatusRunning}, []string{"order-5"}},
	} {
		if got := ids(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("%s: ListInstances = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func command(id, pm, instanceID string) evokestore.OutboxCommand {
	return evokestore.OutboxCommand{
		ID: id, ProcessManager: pm, InstanceID: instanceID, Partition: 2, Type: "Ship",
		AggregateType: "order", AggregateID: "o-" + id, Payload: []byte(`{"cmd":"` + id + `"}`),
		CorrelationID: "corr", CausationID: "cause", Values: []byte(`{"a":1}`), CreatedAt: t0,
	}
}

func testOutbox(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	inTx(t, s, func(tx evokestore.Tx) error {
		return tx.InsertOutbox(ctx, []evokestore.OutboxCommand{command("c1", "pm", "i"), command("c2", "pm", "i"), command("c3", "pm", "j")})
	})
	inTx(t, s, func(tx evokestore.Tx) error {
		// c2 is a duplicate and is ignored; c4 is new.
		return tx.InsertOutbox(ctx, []evokestore.OutboxCommand{command("c2", "pm", "other"), command("c4", "pm", "i")})
	})
	cmds, err := s.Outbox(ctx, evokestore.OutboxQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, c := range cmds {
		ids = append(ids, c.ID)
		if c.Seq <= 0 || (i > 0 && c.Seq <= cmds[i-1].Seq) {
			t.Errorf("outbox seqs not strictly increasing: %+v", cmds)
		}
	}
	if !slices.Equal(ids, []string{"c1", "c2", "c3", "c4"}) {
		t.Fatalf("outbox = %v, want [c1 c2 c3 c4]", ids)
	}
	want := command("c2", "pm", "i")
	got := cmds[1]
	if got.InstanceID != "i" {
		t.Errorf("duplicate insert overwrote c2: instance %q", got.InstanceID)
	}
	if got.ProcessManager != want.ProcessManager || got.Partition != want.Partition || got.Type != want.Type ||
		got.AggregateType != want.AggregateType || got.AggregateID != want.AggregateID || !bytes.Equal(got.Payload, want.Payload) ||
		got.CorrelationID != want.CorrelationID || got.CausationID != want.CausationID || !bytes.Equal(got.Values, want.Values) ||
		!got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("c2 = %+v, want %+v", got, want)
	}

	page, err := s.Outbox(ctx, evokestore.OutboxQuery{After: cmds[0].Seq, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].ID != "c2" || page[1].ID != "c3" {
		t.Errorf("outbox after c1 limit 2 = %+v", page)
	}

	inTx(t, s, func(tx evokestore.Tx) error { return tx.DeleteOutbox(ctx, []int64{cmds[0].Seq, cmds[2].Seq, 1 << 40}) })
	cmds, err = s.Outbox(ctx, evokestore.OutboxQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 2 || cmds[0].ID != "c2" || cmds[1].ID != "c4" {
		t.Fatalf("outbox after delete = %+v, want c2, c4", cmds)
	}
}

func testOutboxInstances(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	inTx(t, s, func(tx evokestore.Tx) error {
		return tx.InsertOutbox(ctx, []evokestore.OutboxCommand{
			command("c1", "pm", "i"), command("c2", "other", "i"), command("c3", "pm", "j"), command("c4", "pm", "k"), command("c5", "pm", "i"),
		})
	})
	ids := func(q evokestore.OutboxQuery) []string {
		t.Helper()
		cmds, err := s.Outbox(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cmds {
			out = append(out, c.ID)
		}
		return out
	}
	if got := ids(evokestore.OutboxQuery{ProcessManager: "pm", Instances: []string{"i", "k", "absent"}}); !slices.Equal(got, []string{"c1", "c4", "c5"}) {
		t.Errorf("outbox of pm/i, pm/k = %v, want [c1 c4 c5]", got)
	}
	if got := ids(evokestore.OutboxQuery{ProcessManager: "pm", Instances: []string{"i"}, Limit: 1}); !slices.Equal(got, []string{"c1"}) {
		t.Errorf("outbox of pm/i limit 1 = %v, want [c1]", got)
	}
	if got := ids(evokestore.OutboxQuery{ProcessManager: "pm", Instances: []string{}}); len(got) != 0 {
		t.Errorf("outbox of no instances = %v, want none", got)
	}
	if _, err := s.Outbox(ctx, evokestore.OutboxQuery{ProcessManager: "pm", Instances: []string{"i"}, Partitions: []int{2}}); err == nil {
		t.Error("Partitions with Instances: no error")
	}
}

func outcome(id, status string) evokestore.CommandOutcome {
	o := evokestore.CommandOutcome{
		CommandID: id, Type: "Ship", AggregateType: "order", AggregateID: "o1", ProcessManager: "pm", InstanceID: "i",
		Status: status, Events: 2, RecordedAt: t0,
	}
	if status == evokestore.OutcomeRejected {
		o.Error, o.Events = "out of stock", 0
	}
	return o
}

func testCommandOutcomes(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	a, r := outcome("c1", evokestore.OutcomeAccepted), outcome("c2", evokestore.OutcomeRejected)
	inTx(t, s, func(tx evokestore.Tx) error { return tx.PutCommandOutcomes(ctx, []evokestore.CommandOutcome{a, r}) })
	got, err := s.CommandOutcomes(ctx, []string{"c2", "c1", "c3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("CommandOutcomes returned %d, want 2", len(got))
	}
	sort.Slice(got, func(i, j int) bool { return got[i].CommandID < got[j].CommandID })
	for i, want := range []evokestore.CommandOutcome{a, r} {
		g := got[i]
		if g.CommandID != want.CommandID || g.Type != want.Type || g.AggregateType != want.AggregateType ||
			g.AggregateID != want.AggregateID || g.ProcessManager != want.ProcessManager || g.InstanceID != want.InstanceID ||
			g.Status != want.Status || g.Error != want.Error || g.Events != want.Events || !g.RecordedAt.Equal(want.RecordedAt) {
			t.Errorf("outcome = %+v, want %+v", g, want)
		}
	}

	tx := begin(t, s)
	err = tx.PutCommandOutcomes(ctx, []evokestore.CommandOutcome{outcome("c3", evokestore.OutcomeAccepted), outcome("c1", evokestore.OutcomeRejected)})
	if !errors.Is(err, evokestore.ErrDuplicateCommand) {
		t.Fatalf("duplicate outcome: err = %v, want ErrDuplicateCommand", err)
	}
	rollback(t, tx)
	got, err = s.CommandOutcomes(ctx, []string{"c1", "c3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Status != evokestore.OutcomeAccepted {
		t.Fatalf("after rejected duplicate: %+v", got)
	}
	if got, err := s.CommandOutcomes(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("CommandOutcomes(nil) = %v, %v", got, err)
	}
}

// testAppendBulk appends large batches in one call (backends may write
// those differently): the positions returned are the ones the log shows,
// increasing in slice order across calls, and a bulk with a taken ID or
// stream version fails with the right error and appends nothing.
func testAppendBulk(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	var all []evokestore.Event
	for round := range 3 {
		var news []evokestore.NewEvent
		for i := range 150 {
			news = append(news, newEvent(fmt.Sprintf("bulk-%d-%03d", round, i), fmt.Sprint("bs-", i%7), 0, "T"))
		}
		// Stream versions: consecutive per stream, each call after the last.
		next := map[string]int64{}
		for i := range news {
			next[news[i].StreamID]++
			news[i].StreamVersion = int64(round*1000) + next[news[i].StreamID]
		}
		all = append(all, appendEvents(t, s, news...)...)
	}
	checkIncreasing(t, all)
	logged, err := s.ReadLog(ctx, evokestore.LogQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(logged) != len(all) {
		t.Fatalf("the log holds %d events, %d were appended", len(logged), len(all))
	}
	for i := range all {
		if logged[i].ID != all[i].ID || logged[i].Position != all[i].Position || logged[i].StreamVersion != all[i].StreamVersion {
			t.Fatalf("event %d: appended %s at %d, the log has %s at %d", i, all[i].ID, all[i].Position, logged[i].ID, logged[i].Position)
		}
	}
	head, _ := s.Head(ctx)
	if head != all[len(all)-1].Position {
		t.Errorf("head %d, last appended %d", head, all[len(all)-1].Position)
	}
	bulk := func(mutate func([]evokestore.NewEvent)) error {
		var news []evokestore.NewEvent
		for i := range 100 {
			news = append(news, newEvent(fmt.Sprintf("late-%03d", i), fmt.Sprint("late-", i), 1, "T"))
		}
		mutate(news)
		tx := begin(t, s)
		defer rollback(t, tx)
		_, err := tx.AppendEvents(ctx, news)
		return err
	}
	if err := bulk(func(n []evokestore.NewEvent) { n[60].ID = all[5].ID }); !errors.Is(err, evokestore.ErrDuplicateEvent) {
		t.Errorf("bulk with a taken event ID: %v, want ErrDuplicateEvent", err)
	}
	if err := bulk(func(n []evokestore.NewEvent) {
		n[70].StreamID, n[70].StreamVersion = all[3].StreamID, all[3].StreamVersion
	}); !errors.Is(err, evokestore.ErrVersionConflict) {
		t.Errorf("bulk with a taken stream version: %v, want ErrVersionConflict", err)
	}
	if again, _ := s.Head(ctx); again != head {
		t.Errorf("head moved from %d to %d after refused bulks", head, again)
	}
}

// testInstancesBulk inserts and then updates a large batch of instances in
// one call each (backends may write those differently); an insert of an
// instance that exists fails with ErrFenced.
func testInstancesBulk(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	var ws []evokestore.InstanceWrite
	var ids []string
	for i := range 150 {
		id := fmt.Sprintf("bulk-%03d", i)
		in := evokestore.Instance{ProcessManager: "pm", ID: id, Partition: i % 4, State: []byte(fmt.Sprintf(`{"n":%d}`, i)), Version: 1,
			Status: evokestore.StatusRunning, Phase: "started", LastPosition: int64(i), CreatedAt: t0, UpdatedAt: t0}
		ws, ids = append(ws, evokestore.InstanceWrite{Instance: in, PrevVersion: -1}), append(ids, id)
	}
	inTx(t, s, func(tx evokestore.Tx) error { return tx.PutInstances(ctx, ws) })
	for i := range ws {
		ws[i].PrevVersion, ws[i].Version, ws[i].Phase = 1, 2, "next"
	}
	inTx(t, s, func(tx evokestore.Tx) error { return tx.PutInstances(ctx, ws) })
	got, err := s.Instances(ctx, "pm", ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ws) {
		t.Fatalf("%d instances read back, want %d", len(got), len(ws))
	}
	for i, g := range got {
		if w := ws[i].Instance; g.ID != w.ID || g.Version != 2 || g.Phase != "next" || string(g.State) != string(w.State) || g.Partition != w.Partition ||
			g.LastPosition != w.LastPosition || !g.CreatedAt.Equal(t0) {
			t.Fatalf("instance %d = %+v, want %+v", i, g, w)
		}
	}
	again := make([]evokestore.InstanceWrite, 100)
	for i := range again {
		in := ws[0].Instance
		in.ID, in.Version = fmt.Sprintf("new-%03d", i), 1
		again[i] = evokestore.InstanceWrite{Instance: in, PrevVersion: -1}
	}
	again[70].ID = ids[3] // exists
	tx := begin(t, s)
	if err := tx.PutInstances(ctx, again); !errors.Is(err, evokestore.ErrFenced) {
		t.Fatalf("bulk insert of an existing instance: err = %v, want ErrFenced", err)
	}
	rollback(t, tx)
}

// testCommandOutcomesBulk records a large batch of outcomes in one call
// (backends may write those differently): all read back, and a batch that
// repeats one fails with ErrDuplicateCommand and records nothing.
func testCommandOutcomesBulk(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	var outs []evokestore.CommandOutcome
	var ids []string
	for i := range 200 {
		status := evokestore.OutcomeAccepted
		if i%5 == 0 {
			status = evokestore.OutcomeRejected
		}
		o := outcome(fmt.Sprintf("bulk-%03d", i), status)
		outs, ids = append(outs, o), append(ids, o.CommandID)
	}
	inTx(t, s, func(tx evokestore.Tx) error { return tx.PutCommandOutcomes(ctx, outs) })
	got, err := s.CommandOutcomes(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(outs) {
		t.Fatalf("%d outcomes read back, want %d", len(got), len(outs))
	}
	sort.Slice(got, func(i, j int) bool { return got[i].CommandID < got[j].CommandID })
	for i, g := range got {
		if w := outs[i]; g.CommandID != w.CommandID || g.Status != w.Status || g.Error != w.Error || g.Events != w.Events || !g.RecordedAt.Equal(w.RecordedAt) {
			t.Fatalf("outcome %d = %+v, want %+v", i, g, w)
		}
	}
	again := append([]evokestore.CommandOutcome{outcome("bulk-new", evokestore.OutcomeAccepted)}, outs[100:]...)
	tx := begin(t, s)
	if err := tx.PutCommandOutcomes(ctx, again); !errors.Is(err, evokestore.ErrDuplicateCommand) {
		t.Fatalf("bulk with duplicates: err = %v, want ErrDuplicateCommand", err)
	}
	rollback(t, tx)
	if got, err := s.CommandOutcomes(ctx, []string{"bulk-new"}); err != nil || len(got) != 0 {
		t.Fatalf("after the refused bulk: %v, %v", got, err)
	}
}

func record(pm, instanceID, kind string, version, position int64) evokestore.HistoryRecord {
	return evokestore.HistoryRecord{
		ProcessManager: pm, InstanceID: instanceID, Kind: kind, Version: version, Position: position,
		EventID: fmt.Sprintf("e%d", position), EventType: "T", PhaseBefore: "a", PhaseAfter: "b",
		Commands: []byte(`[{"type":"Ship"}]`), RecordedAt: t0.Add(time.Duration(position)),
	}
}

// testHistoryBulk writes a large batch of history across instances in one
// call (backends may write those differently) and reads each instance's
// records back whole and in order.
func testHistoryBulk(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	const n = 300
	var recs []evokestore.HistoryRecord
	for i := range n {
		r := record("pm", fmt.Sprint("i", i%3), evokestore.KindStep, int64(i/3+1), int64(i+1))
		r.Node, r.LeaseToken, r.Error = "node-a", int64(i), fmt.Sprint("note ", i)
		if i%2 == 0 {
			r.Commands = nil
		}
		recs = append(recs, r)
	}
	inTx(t, s, func(tx evokestore.Tx) error { return tx.InsertHistory(ctx, recs) })
	for k := range 3 {
		got, err := s.History(ctx, "pm", fmt.Sprint("i", k))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n/3 {
			t.Fatalf("instance i%d: %d records, want %d", k, len(got), n/3)
		}
		for j, h := range got {
			w := recs[3*j+k]
			if h.Position != w.Position || h.Version != w.Version || h.EventID != w.EventID || h.Error != w.Error || h.Node != w.Node ||
				h.LeaseToken != w.LeaseToken || !bytes.Equal(h.Commands, w.Commands) || !h.RecordedAt.Equal(w.RecordedAt) || h.Kind != w.Kind {
				t.Fatalf("instance i%d record %d = %+v, want %+v", k, j, h, w)
			}
			if j > 0 && h.ID <= got[j-1].ID {
				t.Fatalf("instance i%d: IDs not increasing: %d then %d", k, got[j-1].ID, h.ID)
			}
		}
	}
	// A second step record for the same (pm, instance, position) still fails.
	tx := begin(t, s)
	if err := tx.InsertHistory(ctx, recs[:100]); err == nil {
		t.Error("a bulk of step records already stored was accepted")
	}
	rollback(t, tx)
}

// testHistoryRuns writes runs of one instance's steps in one call (a saga's
// chained steps, which a store may keep in one row) among other records,
// and reads every record back whole, in order, with increasing IDs; a
// second step on an event a run began with is refused.
func testHistoryRuns(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	rec := func(id, kind string, pos int64) evokestore.HistoryRecord {
		h := record("pm", id, kind, pos, pos)
		h.Commands = []byte(fmt.Sprintf(`[{"id":"c%d"}]`, pos))
		h.Node, h.LeaseToken, h.PhaseAfter = "n1", pos*3, fmt.Sprintf("p%d", pos)
		return h
	}
	in := []evokestore.HistoryRecord{
		rec("i", evokestore.KindStep, 10), rec("i", evokestore.KindStep, 12), rec("j", evokestore.KindStep, 11),
		rec("i", evokestore.KindFailed, 13), rec("i", evokestore.KindStep, 14), rec("i", evokestore.KindStep, 15), rec("i", evokestore.KindStep, 16),
	}
	in[2].Commands, in[3].Error = nil, "boom \"quoted\" é"
	// A run longer than a store's row holds, across another call's rows.
	var long []evokestore.HistoryRecord
	for p := int64(100); p < 300; p++ {
		long = append(long, rec("k", evokestore.KindStep, p))
	}
	inTx(t, s, func(tx evokestore.Tx) error { return tx.InsertHistory(ctx, in) })
	inTx(t, s, func(tx evokestore.Tx) error { return tx.InsertHistory(ctx, long[:150]) })
	inTx(t, s, func(tx evokestore.Tx) error { return tx.InsertHistory(ctx, long[150:]) })
	in = append(in, long...)
	for _, id := range []string{"i", "j", "k"} {
		got, err := s.History(ctx, "pm", id)
		if err != nil {
			t.Fatal(err)
		}
		var want []evokestore.HistoryRecord
		for _, h := range in {
			if h.InstanceID == id {
				want = append(want, h)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d records, want %d", id, len(got), len(want))
		}
		for k, g := range got {
			w := want[k]
			if g.ProcessManager != w.ProcessManager || g.InstanceID != w.InstanceID || g.Kind != w.Kind || g.Version != w.Version ||
				g.Position != w.Position || g.EventID != w.EventID || g.EventType != w.EventType || g.PhaseBefore != w.PhaseBefore ||
				g.PhaseAfter != w.PhaseAfter || !bytes.Equal(g.Commands, w.Commands) || g.Error != w.Error || !g.RecordedAt.Equal(w.RecordedAt) ||
				g.Node != w.Node || g.LeaseToken != w.LeaseToken {
				t.Errorf("%s record %d = %+v, want %+v", id, k, g, w)
			}
			if k > 0 && g.ID <= got[k-1].ID {
				t.Errorf("%s: IDs %d then %d", id, got[k-1].ID, g.ID)
			}
		}
	}
	tx := begin(t, s)
	if err := tx.InsertHistory(ctx, []evokestore.HistoryRecord{rec("i", evokestore.KindStep, 14)}); err == nil {
		t.Error("a second step on the first event of a run was accepted")
	}
	_ = tx.Rollback()
}

func testHistory(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	recs := []evokestore.HistoryRecord{
		record("pm", "i", evokestore.KindStep, 1, 5),
		record("pm", "i", evokestore.KindFailed, 1, 7),
		record("pm", "i", evokestore.KindFailed, 1, 7),
		record("pm", "other", evokestore.KindStep, 1, 5),
	}
	recs[1].Error, recs[1].Commands = "boom", nil
	inTx(t, s, func(tx evokestore.Tx) error { return tx.InsertHistory(ctx, recs[:2]) })
	inTx(t, s, func(tx evokestore.Tx) error {
		return tx.InsertHistory(ctx, append(recs[2:], record("pm", "i", evokestore.KindStep, 2, 7)))
	})
	got, err := s.History(ctx, "pm", "i")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("history has %d records, want 4", len(got))
	}
	wantKinds := []string{evokestore.KindStep, evokestore.KindFailed, evokestore.KindFailed, evokestore.KindStep}
	for i, h := range got {
		if h.Kind != wantKinds[i] {
			t.Errorf("history[%d].Kind = %s, want %s", i, h.Kind, wantKinds[i])
		}
		if i > 0 && h.ID <= got[i-1].ID {
			t.Errorf("history IDs not increasing: %d then %d", got[i-1].ID, h.ID)
		}
	}
	w := recs[0]
	if g := got[0]; g.ProcessManager != w.ProcessManager || g.InstanceID != w.InstanceID || g.Version != w.Version ||
		g.Position != w.Position || g.EventID != w.EventID || g.EventType != w.EventType || g.PhaseBefore != w.PhaseBefore ||
		g.PhaseAfter != w.PhaseAfter || !bytes.Equal(g.Commands, w.Commands) || g.Error != w.Error || !g.RecordedAt.Equal(w.RecordedAt) {
		t.Errorf("history[0] = %+v, want %+v", g, w)
	}
	if got[1].Error != "boom" {
		t.Errorf("history[1].Error = %q", got[1].Error)
	}

	// An instance never steps twice on one event.
	tx := begin(t, s)
	if err := tx.InsertHistory(ctx, []evokestore.HistoryRecord{record("pm", "i", evokestore.KindStep, 3, 5)}); err == nil {
		t.Error("a second step record for the same (pm, instance, position) was accepted")
	}
	rollback(t, tx)
	got, err = s.History(ctx, "pm", "i")
	if err != nil || len(got) != 4 {
		t.Fatalf("history after rejected step: %d records, %v", len(got), err)
	}
	if got, err := s.History(ctx, "pm", "none"); err != nil || len(got) != 0 {
		t.Errorf("History(none) = %v, %v", got, err)
	}
}

func testCheckpoints(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	if _, ok, err := s.Checkpoint(ctx, "pm", 0); err != nil || ok {
		t.Fatalf("Checkpoint of empty store: ok=%v err=%v", ok, err)
	}
	inTx(t, s, func(tx evokestore.Tx) error {
		if err := tx.PutCheckpoint(ctx, evokestore.Checkpoint{ProcessManager: "pm", Partition: 0, Position: 5, CatchupUntil: 9}); err != nil {
			return err
		}
		return tx.PutCheckpoint(ctx, evokestore.Checkpoint{ProcessManager: "pm", Partition: 1, Position: 7, CatchupUntil: 9})
	})
	inTx(t, s, func(tx evokestore.Tx) error {
		return tx.PutCheckpoint(ctx, evokestore.Checkpoint{ProcessManager: "pm", Partition: 0, Position: 12, CatchupUntil: 9})
	})
	cp, ok, err := s.Checkpoint(ctx, "pm", 0)
	if err != nil || !ok || cp != (evokestore.Checkpoint{ProcessManager: "pm", Partition: 0, Position: 12, CatchupUntil: 9}) {
		t.Errorf("Checkpoint(pm, 0) = %+v, %v, %v", cp, ok, err)
	}
	cp, ok, err = s.Checkpoint(ctx, "pm", 1)
	if err != nil || !ok || cp.Position != 7 {
		t.Errorf("Checkpoint(pm, 1) = %+v, %v, %v", cp, ok, err)
	}
	if _, ok, err := s.Checkpoint(ctx, "other", 0); err != nil || ok {
		t.Errorf("Checkpoint(other, 0): ok=%v err=%v", ok, err)
	}
}

func testHeldEvents(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	inTx(t, s, func(tx evokestore.Tx) error {
		return tx.Hold(ctx, []evokestore.HeldEvent{
			{ProcessManager: "pm", InstanceID: "i", Position: 9, Error: "busy"},
			{ProcessManager: "pm", InstanceID: "i", Position: 3},
			{ProcessManager: "pm", InstanceID: "i", Position: 5},
			{ProcessManager: "pm", InstanceID: "", Position: 4, Error: "no correlation"},
			{ProcessManager: "pm2", InstanceID: "i", Position: 1},
		})
	})
	positions := func(pm, id string) []int64 {
		h, err := s.Held(ctx, pm, id)
		if err != nil {
			t.Fatal(err)
		}
		var ps []int64
		for _, e := range h {
			if e.ProcessManager != pm || e.InstanceID != id {
				t.Errorf("Held(%s, %q) returned %+v", pm, id, e)
			}
			ps = append(ps, e.Position)
		}
		return ps
	}
	if ps := positions("pm", "i"); !slices.Equal(ps, []int64{3, 5, 9}) {
		t.Errorf("held = %v, want [3 5 9]", ps)
	}
	h, err := s.Held(ctx, "pm", "")
	if err != nil || len(h) != 1 || h[0].Position != 4 || h[0].Error != "no correlation" {
		t.Errorf("uncorrelated held = %+v, %v", h, err)
	}
	h, err = s.Held(ctx, "pm", "i")
	if err != nil || h[2].Error != "busy" {
		t.Errorf("held[2] = %+v, %v", h, err)
	}
	inTx(t, s, func(tx evokestore.Tx) error { return tx.Release(ctx, "pm", "i", []int64{3, 9, 100}) })
	if ps := positions("pm", "i"); !slices.Equal(ps, []int64{5}) {
		t.Errorf("held after release = %v, want [5]", ps)
	}
	if ps := positions("pm2", "i"); !slices.Equal(ps, []int64{1}) {
		t.Errorf("release touched another process manager: %v", ps)
	}
}

func testDeadlines(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	if _, ok, err := s.NextDeadline(ctx); err != nil || ok {
		t.Fatalf("NextDeadline of empty store: ok=%v err=%v", ok, err)
	}
	dl := func(pm, id, name string, due time.Duration, v int64) evokestore.Deadline {
		return evokestore.Deadline{ProcessManager: pm, InstanceID: id, Name: name, DueAt: t0.Add(due), Version: v}
	}
	inTx(t, s, func(tx evokestore.Tx) error {
		if err := tx.ReplaceDeadlines(ctx, "pm", []string{"a"}, []evokestore.Deadline{dl("pm", "a", "x", 3*time.Minute, 1), dl("pm", "a", "y", time.Minute, 1)}); err != nil {
			return err
		}
		return tx.ReplaceDeadlines(ctx, "pm", []string{"b"}, []evokestore.Deadline{dl("pm", "b", "x", 2*time.Minute, 4)})
	})
	names := func(ds []evokestore.Deadline) []string {
		var n []string
		for _, d := range ds {
			n = append(n, d.InstanceID+"."+d.Name)
		}
		return n
	}
	due, err := s.DueDeadlines(ctx, t0.Add(2*time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if n := names(due); !slices.Equal(n, []string{"a.y", "b.x"}) {
		t.Errorf("due at +2m (inclusive) = %v, want [a.y b.x]", n)
	}
	if !due[0].DueAt.Equal(t0.Add(time.Minute)) || due[0].Version != 1 || due[0].ProcessManager != "pm" || due[1].Version != 4 {
		t.Errorf("due deadlines = %+v", due)
	}
	due, err = s.DueDeadlines(ctx, t0.Add(time.Hour), 1)
	if err != nil || len(due) != 1 || due[0].Name != "y" {
		t.Errorf("due with limit 1 = %+v, %v", due, err)
	}
	if due, err := s.DueDeadlines(ctx, t0, 10); err != nil || len(due) != 0 {
		t.Errorf("due at t0 = %+v, %v", due, err)
	}
	next, ok, err := s.NextDeadline(ctx)
	if err != nil || !ok || next.Name != "y" || next.InstanceID != "a" || !next.DueAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("NextDeadline = %+v, %v, %v", next, ok, err)
	}

	// Replacing drops the instance's old deadlines.
	inTx(t, s, func(tx evokestore.Tx) error {
		return tx.ReplaceDeadlines(ctx, "pm", []string{"a"}, []evokestore.Deadline{dl("pm", "a", "z", 5*time.Minute, 2)})
	})
	due, err = s.DueDeadlines(ctx, t0.Add(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if n := names(due); !slices.Equal(n, []string{"b.x", "a.z"}) {
		t.Errorf("after replace = %v, want [b.x a.z]", n)
	}
	inTx(t, s, func(tx evokestore.Tx) error { return tx.ReplaceDeadlines(ctx, "pm", []string{"b"}, nil) })
	next, ok, err = s.NextDeadline(ctx)
	if err != nil || !ok || next.Name != "z" || next.Version != 2 {
		t.Errorf("NextDeadline after clearing b = %+v, %v, %v", next, ok, err)
	}
}

func testDeleteDeadline(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	d := evokestore.Deadline{ProcessManager: "pm", InstanceID: "a", Name: "x", DueAt: t0, Version: 3}
	inTx(t, s, func(tx evokestore.Tx) error {
		return tx.ReplaceDeadlines(ctx, "pm", []string{"a"}, []evokestore.Deadline{d})
	})

	del := func(d evokestore.Deadline) bool {
		t.Helper()
		var deleted bool
		inTx(t, s, func(tx evokestore.Tx) error {
			var err error
			deleted, err = tx.DeleteDeadline(ctx, d)
			return err
		})
		return deleted
	}
	stale := d
	stale.Version = 2
	if del(stale) {
		t.Error("DeleteDeadline with another version reported deleted")
	}
	other := d
	other.Name = "y"
	if del(other) {
		t.Error("DeleteDeadline of another name reported deleted")
	}
	if _, ok, _ := s.NextDeadline(ctx); !ok {
		t.Fatal("deadline vanished after non-matching deletes")
	}
	moved := d
	moved.DueAt = t0.Add(time.Hour) // DueAt is ignored
	if !del(moved) {
		t.Error("DeleteDeadline with matching name and version reported not deleted")
	}
	if del(d) {
		t.Error("second DeleteDeadline reported deleted: a deadline could fire twice")
	}
	if _, ok, err := s.NextDeadline(ctx); err != nil || ok {
		t.Errorf("deadline still stored after delete: ok=%v err=%v", ok, err)
	}
}

func testStats(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 0 || st.Head != 0 || st.Outbox != 0 || st.Commands != 0 || st.Rejected != 0 || len(st.Instances) != 0 {
		t.Fatalf("Stats of empty store = %+v", st)
	}
	var evs []evokestore.Event
	inTx(t, s, func(tx evokestore.Tx) error {
		var err error
		if evs, err = tx.AppendEvents(ctx, []evokestore.NewEvent{newEvent("e1", "s", 1, "T"), newEvent("e2", "s", 2, "T"), newEvent("e3", "t", 1, "T")}); err != nil {
			return err
		}
		done := instance("p1", "c", 1)
		done.Status = evokestore.StatusCompleted
		if err := tx.PutInstances(ctx, []evokestore.InstanceWrite{
			{Instance: instance("p1", "a", 1), PrevVersion: -1}, {Instance: instance("p1", "b", 1), PrevVersion: -1},
			{Instance: done, PrevVersion: -1}, {Instance: instance("p2", "a", 1), PrevVersion: -1},
		}); err != nil {
			return err
		}
		if err := tx.InsertOutbox(ctx, []evokestore.OutboxCommand{command("c1", "p1", "a"), command("c2", "p1", "b")}); err != nil {
			return err
		}
		return tx.PutCommandOutcomes(ctx, []evokestore.CommandOutcome{
			outcome("o1", evokestore.OutcomeAccepted), outcome("o2", evokestore.OutcomeRejected), outcome("o3", evokestore.OutcomeAccepted),
		})
	})
	st, err = s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 3 || st.Head != evs[2].Position || st.Outbox != 2 || st.Commands != 3 || st.Rejected != 1 {
		t.Errorf("Stats = %+v, want 3 events, head %d, 2 outbox, 3 commands, 1 rejected", st, evs[2].Position)
	}
	want := map[string]map[evokestore.InstanceStatus]int64{
		"p1": {evokestore.StatusRunning: 2, evokestore.StatusCompleted: 1},
		"p2": {evokestore.StatusRunning: 1},
	}
	if fmt.Sprint(st.Instances) != fmt.Sprint(want) {
		t.Errorf("Stats.Instances = %v, want %v", st.Instances, want)
	}

	// Statuses moved by updates: running to parked, running to running, and
	// a process manager left with no running instance.
	inTx(t, s, func(tx evokestore.Tx) error {
		parked, again, p2 := instance("p1", "a", 2), instance("p1", "b", 2), instance("p2", "a", 2)
		parked.Status, p2.Status = evokestore.StatusParked, evokestore.StatusFailing
		return tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: parked, PrevVersion: 1}, {Instance: again, PrevVersion: 1}, {Instance: p2, PrevVersion: 1}})
	})
	if st, err = s.Stats(ctx); err != nil {
		t.Fatal(err)
	}
	want = map[string]map[evokestore.InstanceStatus]int64{
		"p1": {evokestore.StatusRunning: 1, evokestore.StatusParked: 1, evokestore.StatusCompleted: 1},
		"p2": {evokestore.StatusFailing: 1},
	}
	if fmt.Sprint(st.Instances) != fmt.Sprint(want) {
		t.Errorf("after updates, Stats.Instances = %v, want %v", st.Instances, want)
	}
	for status, ids := range map[evokestore.InstanceStatus][]string{
		evokestore.StatusRunning: {"p1/b"}, evokestore.StatusParked: {"p1/a"}, evokestore.StatusFailing: {"p2/a"}, evokestore.StatusCompleted: {"p1/c"},
	} {
		got, err := s.ListInstances(ctx, evokestore.InstanceQuery{Status: status})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, in := range got {
			keys = append(keys, in.ProcessManager+"/"+in.ID)
		}
		if !slices.Equal(keys, ids) {
			t.Errorf("ListInstances(%s) = %v, want %v", status, keys, ids)
		}
	}
}

func testConcurrentWriters(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	const (
		writers   = 8
		perWriter = 50
		batch     = 5
		racers    = 4
		perRacer  = 10
	)
	var wg sync.WaitGroup
	errs := make(chan error, writers+racers)
	for w := range writers {
		wg.Go(func() {
			stream := fmt.Sprintf("own-%d", w)
			for b := 0; b < perWriter; b += batch {
				var evs []evokestore.NewEvent
				for i := b; i < b+batch; i++ {
					evs = append(evs, newEvent(fmt.Sprintf("%s-%d", stream, i+1), stream, int64(i+1), "T"))
				}
				tx, err := s.Begin(ctx)
				if err != nil {
					errs <- err
					return
				}
				if _, err := tx.AppendEvents(ctx, evs); err != nil {
					tx.Rollback()
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				if err := tx.Commit(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	conflicts := make(chan int, racers)
	for r := range racers {
		wg.Go(func() {
			n := 0
			for i := range perRacer {
				id := fmt.Sprintf("shared-r%d-%d", r, i)
				for attempt := 0; ; attempt++ {
					if attempt > 1000 {
						errs <- fmt.Errorf("racer %d: no progress", r)
						return
					}
					// Read the version outside the tx, as an optimistic
					// writer does; another racer may take it first.
					cur, err := s.ReadStream(ctx, "shared", 0)
					if err != nil {
						errs <- err
						return
					}
					tx, err := s.Begin(ctx)
					if err != nil {
						errs <- err
						return
					}
					_, err = tx.AppendEvents(ctx, []evokestore.NewEvent{newEvent(id, "shared", int64(len(cur)+1), "T")})
					if errors.Is(err, evokestore.ErrVersionConflict) {
						n++
						if err := tx.Rollback(); err != nil {
							errs <- err
							return
						}
						continue
					}
					if err != nil {
						tx.Rollback()
						errs <- fmt.Errorf("racer %d: %w", r, err)
						return
					}
					if err := tx.Commit(); err != nil {
						errs <- err
						return
					}
					break
				}
			}
			conflicts <- n
		})
	}
	wg.Wait()
	close(errs)
	close(conflicts)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for n := range conflicts {
		total += n
	}
	t.Logf("racers retried %d version conflicts", total)

	all := readAll(t, s)
	if want := writers*perWriter + racers*perRacer; len(all) != want {
		t.Fatalf("log holds %d events, want %d", len(all), want)
	}
	checkIncreasing(t, all)
	seen := map[string]bool{}
	versions := map[string][]int64{}
	for _, e := range all {
		if seen[e.ID] {
			t.Fatalf("event %s stored twice", e.ID)
		}
		seen[e.ID] = true
		versions[e.StreamID] = append(versions[e.StreamID], e.StreamVersion)
	}
	for stream, vs := range versions {
		slices.Sort(vs)
		for i, v := range vs {
			if v != int64(i+1) {
				t.Fatalf("stream %s versions %v are not 1..%d", stream, vs, len(vs))
			}
		}
		rs, err := s.ReadStream(ctx, stream, 0)
		if err != nil || len(rs) != len(vs) {
			t.Fatalf("ReadStream(%s) = %d events, %v; want %d", stream, len(rs), err, len(vs))
		}
	}
	if len(versions["shared"]) != racers*perRacer {
		t.Fatalf("shared stream has %d events, want %d", len(versions["shared"]), racers*perRacer)
	}
	h, err := s.Head(ctx)
	if err != nil || h != all[len(all)-1].Position {
		t.Fatalf("Head = %d, %v; want %d", h, err, all[len(all)-1].Position)
	}
}

// writeEverything makes one of each write in tx.
func writeEverything(t *testing.T, tx evokestore.Tx, tag string) {
	t.Helper()
	ctx := t.Context()
	if _, err := tx.AppendEvents(ctx, []evokestore.NewEvent{newEvent("e-"+tag, "s-"+tag, 1, "T")}); err != nil {
		t.Fatal(err)
	}
	if err := tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: instance("pm", tag, 1), PrevVersion: -1}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.InsertOutbox(ctx, []evokestore.OutboxCommand{command("c-"+tag, "pm", tag)}); err != nil {
		t.Fatal(err)
	}
	if err := tx.PutCommandOutcomes(ctx, []evokestore.CommandOutcome{outcome("o-"+tag, evokestore.OutcomeAccepted)}); err != nil {
		t.Fatal(err)
	}
	if err := tx.InsertHistory(ctx, []evokestore.HistoryRecord{record("pm", tag, evokestore.KindStep, 1, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := tx.PutCheckpoint(ctx, evokestore.Checkpoint{ProcessManager: "pm-" + tag, Position: 1}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Hold(ctx, []evokestore.HeldEvent{{ProcessManager: "pm", InstanceID: tag, Position: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.ReplaceDeadlines(ctx, "pm", []string{tag}, []evokestore.Deadline{{ProcessManager: "pm", InstanceID: tag, Name: "d", DueAt: t0, Version: 1}}); err != nil {
		t.Fatal(err)
	}
}

// checkNothing fails unless q shows none of writeEverything(tag)'s writes.
func checkNothing(t *testing.T, q evokestore.Querier, tag string) {
	t.Helper()
	ctx := t.Context()
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 0 || st.Head != 0 || st.Outbox != 0 || st.Commands != 0 || len(st.Instances) != 0 {
		t.Errorf("uncommitted writes visible in Stats: %+v", st)
	}
	if evs, err := q.ReadStream(ctx, "s-"+tag, 0); err != nil || len(evs) != 0 {
		t.Errorf("uncommitted events visible: %v, %v", eventIDs(evs), err)
	}
	if _, ok := loadOne(t, q, "pm", tag); ok {
		t.Error("uncommitted instance visible")
	}
	if h, err := q.History(ctx, "pm", tag); err != nil || len(h) != 0 {
		t.Errorf("uncommitted history visible: %v, %v", h, err)
	}
	if _, ok, err := q.Checkpoint(ctx, "pm-"+tag, 0); err != nil || ok {
		t.Errorf("uncommitted checkpoint visible (ok=%v, %v)", ok, err)
	}
	if h, err := q.Held(ctx, "pm", tag); err != nil || len(h) != 0 {
		t.Errorf("uncommitted held events visible: %v, %v", h, err)
	}
	if _, ok, err := q.NextDeadline(ctx); err != nil || ok {
		t.Errorf("uncommitted deadline visible (ok=%v, %v)", ok, err)
	}
	if o, err := q.CommandOutcomes(ctx, []string{"o-" + tag}); err != nil || len(o) != 0 {
		t.Errorf("uncommitted outcome visible: %v, %v", o, err)
	}
}

func testRollbackLeavesNothing(t *testing.T, s evokestore.Store) {
	tx := begin(t, s)
	writeEverything(t, tx, "x")
	// Readers outside the tx do not see its writes.
	checkNothing(t, s, "x")
	rollback(t, tx)
	checkNothing(t, s, "x")
	if err := tx.Commit(); err == nil {
		t.Error("Commit after Rollback succeeded")
	}
	// The store is usable afterwards and the same writes can commit.
	tx = begin(t, s)
	writeEverything(t, tx, "x")
	commit(t, tx)
	if _, ok := loadOne(t, s, "pm", "x"); !ok {
		t.Error("committed instance missing after an earlier rollback")
	}
}

func testAbandonedTx(t *testing.T, s evokestore.Store) {
	// A Tx that is never committed, only abandoned with its context
	// cancelled (a crashed worker), leaves nothing and frees the store.
	ctx, cancel := context.WithCancel(t.Context())
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writeEverything(t, tx, "x")
	checkNothing(t, s, "x")
	cancel()

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		tx2, err := s.Begin(ctx)
		if err == nil {
			err = tx2.Rollback()
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatalf("Begin after an abandoned tx: %v", err)
	}
	checkNothing(t, s, "x")
	if err := tx.Commit(); err == nil {
		t.Error("Commit of a tx whose context was cancelled succeeded")
	}
	checkNothing(t, s, "x")
	_ = tx.Rollback()
}

func testSubscribe(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	events, cancelEvents := s.Subscribe(evokestore.TopicEvents)
	outbox, cancelOutbox := s.Subscribe(evokestore.TopicOutbox)
	deadlines, cancelDeadlines := s.Subscribe(evokestore.TopicDeadlines)
	events2, cancelEvents2 := s.Subscribe(evokestore.TopicEvents)
	defer cancelOutbox()
	defer cancelDeadlines()
	defer cancelEvents2()

	woken := func(ch <-chan struct{}, within time.Duration) bool {
		select {
		case <-ch:
			return true
		case <-time.After(within):
			return false
		}
	}
	const quiet = 150 * time.Millisecond
	drain := func() {
		for _, ch := range []<-chan struct{}{events, outbox, deadlines, events2} {
			for woken(ch, quiet) {
			}
		}
	}

	// Rollback signals nothing.
	tx := begin(t, s)
	writeEverything(t, tx, "r")
	rollback(t, tx)
	for name, ch := range map[string]<-chan struct{}{"events": events, "outbox": outbox, "deadlines": deadlines} {
		if woken(ch, quiet) {
			t.Errorf("%s subscriber woken by a rolled back tx", name)
		}
	}

	// An uncommitted write signals nothing; its commit does.
	tx = begin(t, s)
	if _, err := tx.AppendEvents(ctx, []evokestore.NewEvent{newEvent("e1", "s", 1, "T")}); err != nil {
		t.Fatal(err)
	}
	if woken(events, quiet) {
		t.Error("events subscriber woken before commit")
	}
	commit(t, tx)
	if !woken(events, 5*time.Second) {
		t.Fatal("events subscriber not woken by a commit that appended events")
	}
	if !woken(events2, 5*time.Second) {
		t.Fatal("second events subscriber not woken")
	}
	if woken(outbox, quiet) || woken(deadlines, quiet) {
		t.Error("outbox or deadlines subscriber woken by a commit that only appended events")
	}

	// Wakes coalesce and never block the writer.
	for i := range 5 {
		appendEvents(t, s, newEvent(fmt.Sprintf("c%d", i), "c", int64(i+1), "T"))
	}
	if !woken(events, 5*time.Second) {
		t.Fatal("events subscriber not woken by later commits")
	}
	drain()

	inTx(t, s, func(tx evokestore.Tx) error {
		return tx.InsertOutbox(ctx, []evokestore.OutboxCommand{command("c1", "pm", "i")})
	})
	if !woken(outbox, 5*time.Second) {
		t.Error("outbox subscriber not woken by an outbox insert")
	}
	inTx(t, s, func(tx evokestore.Tx) error {
		return tx.ReplaceDeadlines(ctx, "pm", []string{"i"}, []evokestore.Deadline{{ProcessManager: "pm", InstanceID: "i", Name: "d", DueAt: t0, Version: 1}})
	})
	if !woken(deadlines, 5*time.Second) {
		t.Error("deadlines subscriber not woken by ReplaceDeadlines")
	}
	drain()

	// After cancel, no more wakes (the other subscriber still gets one).
	cancelEvents()
	cancelEvents() // idempotent
	appendEvents(t, s, newEvent("e2", "s", 2, "T"))
	if !woken(events2, 5*time.Second) {
		t.Fatal("remaining subscriber not woken")
	}
	if woken(events, quiet) {
		t.Error("cancelled subscriber woken")
	}
}

// testReplaceDeadlinesOfMany: one call replaces the deadlines of several
// instances (a batch of steps) and leaves the others alone.
func testReplaceDeadlinesOfMany(t *testing.T, s evokestore.Store) {
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0).UTC()
	d := func(id, name string, v int64) evokestore.Deadline {
		return evokestore.Deadline{ProcessManager: "pm", InstanceID: id, Name: name, DueAt: t0.Add(time.Duration(v) * time.Minute), Version: v}
	}
	inTx(t, s, func(tx evokestore.Tx) error {
		return tx.ReplaceDeadlines(ctx, "pm", []string{"a", "b", "c"}, []evokestore.Deadline{d("a", "x", 1), d("b", "x", 2), d("c", "x", 3)})
	})
	inTx(t, s, func(tx evokestore.Tx) error {
		// a gets two, b none, c is not listed and keeps its deadline.
		return tx.ReplaceDeadlines(ctx, "pm", []string{"a", "b"}, []evokestore.Deadline{d("a", "y", 4), d("a", "z", 5)})
	})
	due, err := s.DueDeadlines(ctx, t0.Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range due {
		got = append(got, fmt.Sprintf("%s/%s@%d", x.InstanceID, x.Name, x.Version))
	}
	if want := "c/x@3 a/y@4 a/z@5"; strings.Join(got, " ") != want {
		t.Fatalf("deadlines after replacing a and b: %v, want %s", got, want)
	}
	inTx(t, s, func(tx evokestore.Tx) error { return tx.ReplaceDeadlines(ctx, "pm", nil, nil) })
	if due, _ := s.DueDeadlines(ctx, t0.Add(time.Hour), 100); len(due) != 3 {
		t.Fatalf("replacing no instances changed deadlines: %v", due)
	}
}
