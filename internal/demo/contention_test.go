package demo_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokeops"
	"github.com/evoke-go/evoke/evokepg"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/examples/orderfulfillment"
	"github.com/evoke-go/evoke/internal/demo"
	"github.com/evoke-go/evoke/internal/engine"
)

// contentionEnv sets how long TestContention produces orders (a Go
// duration); it defaults to 10s.
const contentionEnv = "EVOKE_TEST_CONTENTION"

// TestContention runs every kind of PostgreSQL transaction of the runtime
// at once on one dedicated database, and checks that the server detected
// no deadlock: three nodes share the partitions with short leases, one of
// them stopped and started again now and then (its partitions handed over);
// a producer appends orders whose payments are sometimes declined (an
// aggregate rejects) and whose shipments are sometimes lost (an inactivity
// timeout fires); a second process manager sets, moves and clears named
// deadlines and fails on some orders until an operator, on a runtime of its
// own, retries, skips and cancels them; the operator also cancels running
// orders and purges. Every saga ends exactly once.
func TestContention(t *testing.T) {
	base := os.Getenv("EVOKE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("set EVOKE_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
	}
	produce := 10 * time.Second
	if v := os.Getenv(contentionEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", contentionEnv, v, err)
		}
		produce = d
	}
	ctx := context.Background()
	dbURL, stats := contentionDB(t, base)
	begin := time.Now()

	logs := &errorLog{}
	logger := slog.New(logs)
	ends := &endCounter{ends: map[string]int{}}
	open := func() *evokepg.Store {
		s, err := evokepg.Open(ctx, dbURL, &evokepg.Options{MaxConns: 6})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	newRuntime := func(s *evokepg.Store, node string) *evoke.Runtime {
		rt, err := evoke.New(s, &evoke.Config{
			NodeID: node, LeaseTTL: time.Second, Partitions: 8, MaxAttempts: 2,
			BackoffBase: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
			PollInterval: 100 * time.Millisecond, Logger: logger, Hooks: ends,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(demo.Register(rt, 300*time.Millisecond), evoke.RegisterProcessManager(rt, watch{}, nil)); err != nil {
			t.Fatal(err)
		}
		return rt
	}

	// The nodes: node 0 is stopped and started again (with a new store,
	// as a restarted process would) every second.
	type node struct {
		store *evokepg.Store
		rt    *evoke.Runtime
	}
	nodes := make([]*node, 3)
	start := func(i, gen int) {
		n := &node{store: open()}
		n.rt = newRuntime(n.store, fmt.Sprintf("node-%d-%d", i, gen))
		if err := n.rt.Start(ctx); err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
	}
	stop := func(n *node) {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := n.rt.Stop(sctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		n.store.Close()
	}
	for i := range nodes {
		start(i, 0)
	}

	// The operator: its own store, through evokeops, as the command line's
	// retry, skip and cancel; and a runtime, not started, that purges.
	opStore := open()
	defer opStore.Close()
	op := newRuntime(opStore, "operator")

	stage := map[string]int{} // the operator's, see operate
	var placed atomic.Int64
	var actions, handovers atomic.Int64
	var wg sync.WaitGroup
	pctx, stopProducing := context.WithTimeout(ctx, produce)
	defer stopProducing()
	producer := nodes[1].rt
	wg.Add(3)
	go func() { // the producer
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for k := 1; pctx.Err() == nil; k += 25 {
			if err := demo.Place(ctx, producer, k, 25, false, 0.1, 0.1); err != nil {
				t.Errorf("place orders %d..%d: %v", k, k+24, err)
				return
			}
			placed.Store(int64(k + 24))
			select {
			case <-pctx.Done():
			case <-tick.C:
			}
		}
	}()
	go func() { // the operator
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		for pctx.Err() == nil {
			if n := placed.Load(); n > 0 {
				id := demo.OrderID(1 + rng.IntN(int(n)))
				if err := evokeops.Cancel(ctx, opStore, orderfulfillment.Name, id); err == nil {
					actions.Add(1)
				}
			}
			actions.Add(int64(operate(ctx, t, opStore, stage)))
			if err := op.Purge(ctx); err != nil {
				t.Errorf("purge: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	go func() { // the hand-overs
		defer wg.Done()
		for gen := 1; ; gen++ {
			select {
			case <-pctx.Done():
				return
			case <-time.After(time.Second):
			}
			stop(nodes[0])
			start(0, gen)
			handovers.Add(1)
		}
	}()
	wg.Wait()

	// Every saga ends: the operator goes on until none is left running.
	deadline := time.Now().Add(60 * time.Second)
	for {
		actions.Add(int64(operate(ctx, t, opStore, stage)))
		left, err := unfinished(ctx, opStore)
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d instances did not end", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, n := range nodes {
		stop(n)
	}

	var fired int
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM events WHERE type = $1`, engine.TypeDeadline).Scan(&fired); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(ctx)
	var insts []evokestore.Instance
	for q := (evokestore.InstanceQuery{Limit: 1000}); ; {
		page, err := opStore.ListInstances(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		insts = append(insts, page...)
		if len(page) < q.Limit {
			break
		}
		q.AfterProcessManager, q.AfterID = page[len(page)-1].ProcessManager, page[len(page)-1].ID
	}
	// Every order ended once: its history holds one step into its final
	// phase, and no node reported its end twice.
	unreported := 0
	for _, in := range insts {
		if in.ProcessManager != orderfulfillment.Name || in.Status != evokestore.StatusCompleted {
			continue
		}
		hist, err := opStore.History(ctx, in.ProcessManager, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, h := range hist {
			if h.Kind == evokestore.KindStep && h.PhaseAfter == in.Phase && h.PhaseBefore != in.Phase {
				n++
			}
		}
		if n != 1 {
			t.Errorf("order %s ended %d times", in.ID, n)
		}
		if ends.count(in.ID) == 0 {
			unreported++
		}
	}
	for id, n := range ends.snapshot() {
		if n > 1 {
			t.Errorf("order %s reported ended %d times", id, n)
		}
	}
	if unreported > 0 {
		t.Logf("%d completed orders were not reported ended (TelemetryStop) by any node", unreported)
	}
	opStore.Close()
	deadlocks := stats()
	t.Logf("%d nodes, %d lease hand-overs, %d orders, %d instances, %d deadlines fired, %d operator actions, %d deadlocks, %d conflicts logged below ERROR, in %v",
		len(nodes), handovers.Load(), placed.Load(), len(insts), fired, actions.Load(), deadlocks, logs.retried.Load(), time.Since(begin).Round(time.Millisecond))
	if deadlocks != 0 {
		t.Errorf("the server detected %d deadlocks", deadlocks)
	}
	for _, msg := range logs.errors() {
		t.Errorf("logged at ERROR: %s", msg)
	}
}

// contentionDB creates a database of its own for TestContention, and
// returns its URL and a function that returns how many deadlocks the server
// detected in it, once every connection to it has ended (a backend reports
// its counts when it exits).
func contentionDB(t *testing.T, base string) (string, func() int64) {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("evoke_contention_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		_ = admin.Close(context.Background())
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String(), func() int64 {
		for range 100 {
			var n int
			if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, name).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		var d int64
		if _, err := admin.Exec(ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
			t.Fatal(err)
		}
		if err := admin.QueryRow(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = $1`, name).Scan(&d); err != nil {
			t.Fatal(err)
		}
		return d
	}
}

// operate acts on the parked and failing instances of the watch process
// manager: it retries each once (the step fails again), then cancels every
// other one and skips the rest's failed event, then cancels those (an
// instance whose OrderPlaced was skipped has no deadline to end it). It
// returns how many actions succeeded; stage remembers what it did.
func operate(ctx context.Context, t *testing.T, s evokestore.Store, stage map[string]int) int {
	n := 0
	act := func(err error) {
		if err == nil {
			n++
		}
	}
	for id, st := range stage {
		if st == 2 {
			act(evokeops.Cancel(ctx, s, watchName, id))
			stage[id] = 3
		}
	}
	for _, st := range []evokestore.InstanceStatus{evokestore.StatusParked, evokestore.StatusFailing} {
		insts, err := s.ListInstances(ctx, evokestore.InstanceQuery{ProcessManager: watchName, Status: st, Limit: 100})
		if err != nil {
			t.Errorf("list %s instances: %v", st, err)
			return n
		}
		for _, in := range insts {
			switch {
			case stage[in.ID] == 0:
				act(evokeops.Retry(ctx, s, watchName, in.ID))
				stage[in.ID] = 1
			case len(in.ID)%2 == 0:
				act(evokeops.Cancel(ctx, s, watchName, in.ID))
				stage[in.ID] = 3
			default:
				act(evokeops.Skip(ctx, s, watchName, in.ID))
				stage[in.ID] = 2
			}
		}
	}
	return n
}

// unfinished counts the instances that have not ended, cancelling the
// watch instances that idle after a skip.
func unfinished(ctx context.Context, s evokestore.Querier) (int, error) {
	n := 0
	for _, st := range []evokestore.InstanceStatus{evokestore.StatusRunning, evokestore.StatusCompensating, evokestore.StatusFailing, evokestore.StatusParked} {
		insts, err := s.ListInstances(ctx, evokestore.InstanceQuery{Status: st, Limit: 10000})
		if err != nil {
			return 0, err
		}
		n += len(insts)
	}
	return n, nil
}

const watchName = "watch"

// watch follows each order with two named deadlines: on OrderPlaced it sets
// "first" and "second"; when "first" passes it clears it and moves
// "second"; when "second" passes it completes (clearing it). It fails on
// every 20th order's OrderPlaced.
type watch struct{}

type watchState struct {
	Order  string    `json:"order"`
	First  time.Time `json:"first,omitzero"`
	Second time.Time `json:"second,omitzero"`
	Done   bool      `json:"done"`
}

func (watch) Name() string           { return watchName }
func (watch) InterestedIn() []string { return []string{orderfulfillment.EventOrderPlaced} }
func (watch) Correlate(e evoke.Event) evoke.Correlation {
	return evoke.Start(e.StreamID)
}
func (watch) Apply(s watchState, e evoke.Event) watchState { return s }

func (watch) Handle(s watchState, e evoke.Event) (watchState, []evoke.Command, error) {
	switch e.Type {
	case orderfulfillment.EventOrderPlaced:
		var k int
		if _, err := fmt.Sscanf(e.StreamID, "order-%d", &k); err == nil && k%20 == 0 {
			return s, nil, errors.New("refused until skipped")
		}
		s.Order, s.First, s.Second = e.StreamID, e.RecordedAt.Add(100*time.Millisecond), e.RecordedAt.Add(150*time.Millisecond)
	case evoke.DeadlineEvent:
		var d evoke.Deadline
		if err := e.Decode(&d); err != nil {
			return s, nil, err
		}
		switch d.Name {
		case "first":
			s.First, s.Second = time.Time{}, d.At.Add(200*time.Millisecond)
		case "second":
			s.Second, s.Done = time.Time{}, true
		}
	}
	return s, nil, nil
}

func (watch) Deadlines(s watchState) []evoke.Deadline {
	var out []evoke.Deadline
	if !s.First.IsZero() {
		out = append(out, evoke.Deadline{Name: "first", At: s.First})
	}
	if !s.Second.IsZero() {
		out = append(out, evoke.Deadline{Name: "second", At: s.Second})
	}
	return out
}

func (watch) Completed(s watchState) bool { return s.Done }

// endCounter counts the completions of orders, on every node.
type endCounter struct {
	mu   sync.Mutex
	ends map[string]int
}

func (c *endCounter) Telemetry(t evoke.Telemetry) {
	if t.Kind != evoke.TelemetryStop || t.Name != orderfulfillment.Name {
		return
	}
	c.mu.Lock()
	c.ends[t.ProcessID]++
	c.mu.Unlock()
}

func (c *endCounter) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ends[id]
}

func (c *endCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.ends))
	for k, v := range c.ends {
		out[k] = v
	}
	return out
}

// errorLog keeps the transaction conflicts logged at ERROR, and counts
// those logged below it.
type errorLog struct {
	mu      sync.Mutex
	errs    []string
	retried atomic.Int64
}

func (l *errorLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *errorLog) WithGroup(string) slog.Handler            { return l }

func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	msg := b.String()
	conflict := strings.Contains(msg, "40P01") || strings.Contains(msg, "40001") || strings.Contains(msg, "deadlock")
	switch {
	case conflict && r.Level >= slog.LevelError:
		l.mu.Lock()
		l.errs = append(l.errs, msg)
		l.mu.Unlock()
	case conflict:
		l.retried.Add(1)
	}
	return nil
}

func (l *errorLog) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}
