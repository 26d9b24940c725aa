package evoke_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

// relay is a process manager whose every step's command is executed by an
// aggregate of this runtime whose event the same instance handles next: a
// chain of hops, as in order fulfilment. Begin starts it; each "hop"
// command appends Relayed; the third Relayed completes it. Poke, from
// outside, is recorded in between. Seen records the events in the order
// Handle saw them.
type relay struct{}

type relayState struct {
	Seen   []string `json:"seen"`
	Hops   int      `json:"hops"`
	Status string   `json:"status"`
}

type relayData struct {
	ID  string `json:"id"`
	Hop int    `json:"hop,omitempty"`
}

func (relay) Name() string                                 { return "relay" }
func (relay) InterestedIn() []string                       { return []string{"Begin", "Relayed", "Poke"} }
func (relay) Strict() bool                                 { return false }
func (relay) Apply(s relayState, _ evoke.Event) relayState { return s }
func (relay) Completed(s relayState) bool                  { return s.Status == "done" }
func (relay) Phase(s relayState) string                    { return s.Status }

func (relay) Correlate(e evoke.Event) evoke.Correlation {
	if e.Type == "Begin" {
		return evoke.ByField(e, "id", evoke.Start)
	}
	return evoke.ByField(e, "id", evoke.Continue)
}

func (relay) Handle(s relayState, e evoke.Event) (relayState, []evoke.Command, error) {
	var d relayData
	if err := e.Decode(&d); err != nil {
		return s, nil, err
	}
	s.Seen = append(slices.Clip(s.Seen), e.Type)
	switch e.Type {
	case "Poke":
		return s, nil, nil
	case "Relayed":
		s.Hops = d.Hop
	}
	if s.Hops == 3 {
		s.Status = "done"
		return s, nil, nil
	}
	s.Status = fmt.Sprintf("hop-%d", s.Hops+1)
	return s, []evoke.Command{evoke.NewCommand("hop", "relayer", d.ID, relayData{ID: d.ID, Hop: s.Hops + 1})}, nil
}

// relayer is relay's aggregate: a hop appends Relayed.
type relayer struct{}

func (relayer) Execute(_ struct{}, c evoke.Command) ([]evoke.Event, error) {
	var d relayData
	if err := c.Decode(&d); err != nil {
		return nil, err
	}
	return []evoke.Event{evoke.NewEvent("Relayed", d)}, nil
}

func (relayer) Apply(s struct{}, _ evoke.Event) struct{} { return s }

// relayRuntime returns an unstarted runtime on st with the relayer
// aggregate and pm.
func relayRuntime[S any](t *testing.T, st evokestore.Store, cfg *evoke.Config, pm evoke.ProcessManager[S]) *evoke.Runtime {
	t.Helper()
	rt := newRuntime(t, st, cfg)
	if err := evoke.RegisterAggregate(rt, "relayer", relayer{}); err != nil {
		t.Fatal(err)
	}
	if err := evoke.RegisterProcessManager(rt, pm, nil); err != nil {
		t.Fatal(err)
	}
	return rt
}

// begins returns the appends of n relays' Begin events, r00 and on.
func begins(n int) []evoke.StreamAppend {
	batch := make([]evoke.StreamAppend, n)
	for k := range n {
		id := fmt.Sprintf("r%02d", k)
		batch[k] = evoke.StreamAppend{StreamID: "begin-" + id, ExpectedVersion: evoke.NoStream,
			Events: []evoke.Event{evoke.NewEvent("Begin", relayData{ID: id})}}
	}
	return batch
}

func startRelay(t *testing.T, st evokestore.Store, cfg *evoke.Config) *evoke.Runtime {
	t.Helper()
	rt := relayRuntime(t, st, cfg, relay{})
	start(t, rt)
	return rt
}

// verifyRelay checks that instance id completed having seen want, in log
// order: each history record at its event's log position, the instance's
// last position its last event's, and every command under the ID
// evoke.CommandID gives for its trigger, with exactly one event.
func verifyRelay(t *testing.T, st evokestore.Store, id string, want []string) {
	t.Helper()
	ctx := context.Background()
	inst, ok := instance(t, st, "relay", id)
	if !ok || inst.Status != evokestore.StatusCompleted {
		t.Fatalf("%s: %+v, want completed", id, inst)
	}
	var s relayState
	if err := json.Unmarshal(inst.State, &s); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Seen, want) {
		t.Fatalf("%s saw %v, want %v", id, s.Seen, want)
	}
	hist, err := st.History(ctx, "relay", id)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != len(want) {
		t.Fatalf("%s: %d history records, want %d", id, len(hist), len(want))
	}
	evs, err := st.ReadLog(ctx, evokestore.LogQuery{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int64{}
	causes := map[string]int{}
	for _, e := range evs {
		pos[e.ID] = e.Position
		causes[e.CausationID]++
	}
	for i, h := range hist {
		if p, ok := pos[h.EventID]; !ok || p != h.Position || (i > 0 && h.Position <= hist[i-1].Position) || h.Version != int64(i+1) {
			t.Fatalf("%s: history %d = %+v; the event is at %d", id, i, h, p)
		}
		var refs []struct {
			ID string `json:"id"`
		}
		if len(h.Commands) > 0 {
			if err := json.Unmarshal(h.Commands, &refs); err != nil {
				t.Fatal(err)
			}
		}
		for k, ref := range refs {
			if want := evoke.CommandID("relay", id, evoke.Event{ID: h.EventID, Position: h.Position}, k); ref.ID != want || causes[ref.ID] != 1 {
				t.Fatalf("%s: command %s on %s (caused %d events), want ID %s", id, ref.ID, h.EventType, causes[ref.ID], want)
			}
		}
	}
	if last := hist[len(hist)-1].Position; inst.LastPosition != last {
		t.Fatalf("%s: last position %d, want %d", id, inst.LastPosition, last)
	}
}

// A saga whose steps all run inline completes in the batch that read its
// first event (Config.ChainDepth), and is stored as if each step had run
// in a batch of its own: positions, versions, command IDs. With chaining
// off, the same.
func TestChainedStepsAreStoredAsUnchained(t *testing.T) {
	t.Parallel()
	for _, depth := range []int{0, -1} {
		t.Run(fmt.Sprintf("depth=%d", depth), func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			cfg := quietConfig()
			cfg.ChainDepth = depth
			tel := &telemetryLog{}
			cfg.Hooks = tel
			rt := startRelay(t, st, cfg)
			const n = 40
			if _, err := rt.AppendBatch(context.Background(), begins(n)); err != nil {
				t.Fatal(err)
			}
			evoketest.Eventually(t, 10*time.Second, "every relay completes", func() bool { return rt.Stats().Completed == n })
			for k := range n {
				verifyRelay(t, st, fmt.Sprintf("r%02d", k), []string{"Begin", "Relayed", "Relayed", "Relayed"})
				// Telemetry, chained or not: started, three commands, four
				// steps and transitions in order, stopped.
				want := []string{"start", "command", "step", "transition", "command", "step", "transition", "command", "step", "transition", "step", "transition", "stop"}
				if got := tel.kinds(fmt.Sprintf("r%02d", k)); !slices.Equal(got, want) {
					t.Fatalf("r%02d telemetry %v, want %v", k, got, want)
				}
			}
			// The checkpoints end past the chained events (stored, as Idle
			// reads them).
			evoketest.WaitIdle(t, rt, 10*time.Second)
			stats := rt.Stats()
			if depth < 0 && stats.Chained != 0 {
				t.Fatalf("chaining off, yet %d steps chained", stats.Chained)
			}
			if depth == 0 && stats.Chained != 3*n {
				// One batch reads the Begin events (the log holds nothing
				// else) and chains every hop.
				t.Fatalf("%d steps chained, want %d (stats %+v)", stats.Chained, 3*n, stats)
			}
		})
	}
}

// pokingStore is fault injection: once armed, the first read of the log
// that returns the Begin of instance target commits a Poke for it before
// returning, so that the Poke falls between the batch's end and its
// appends.
type pokingStore struct {
	evokestore.Store
	target string
	armed  atomic.Bool
}

func (s *pokingStore) ReadLog(ctx context.Context, q evokestore.LogQuery) ([]evokestore.Event, error) {
	evs, err := s.Store.ReadLog(ctx, q)
	if err != nil || !s.armed.Load() {
		return evs, err
	}
	for _, e := range evs {
		var d relayData
		if e.Type == "Begin" && json.Unmarshal(e.Data, &d) == nil && d.ID == s.target && s.armed.CompareAndSwap(true, false) {
			data, _ := json.Marshal(relayData{ID: s.target})
			tx, err := s.Store.Begin(ctx)
			if err != nil {
				return nil, err
			}
			if _, err := tx.AppendEvents(ctx, []evokestore.NewEvent{{ID: "poke-" + s.target, StreamID: "poke-" + s.target, StreamVersion: 1, Type: "Poke", Data: data, RecordedAt: time.Now()}}); err != nil {
				_ = tx.Rollback()
				return nil, err
			}
			if err := tx.Commit(); err != nil {
				return nil, err
			}
		}
	}
	return evs, nil
}

// Log order with chaining: an event another writer commits after a batch
// read the log, for an instance the batch chains, comes before the chained
// events in the log, so the instance must see it first: the batch is
// written without its chain, and the instance steps Poke before its hops.
// On PostgreSQL the router reads what was committed meanwhile in the
// round trip of its appends (evokestore.AppendReader); on SQLite after them.
func TestChainYieldsToAnEventCommittedMeanwhile(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); testChainYields(t, openStore(t)) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); testChainYields(t, openPGStore(t)) })
}

func testChainYields(t *testing.T, base evokestore.Store) {
	st := &pokingStore{Store: base, target: "x"}
	st.armed.Store(true)
	rt := startRelay(t, st, nil)
	appendEvent(t, rt, "begin-x", "Begin", relayData{ID: "x"})
	evoketest.Eventually(t, 10*time.Second, "the relay completes", func() bool { return rt.Stats().Completed == 1 })
	if st.armed.Load() {
		t.Fatal("the poke was never injected")
	}
	verifyRelay(t, st.Store, "x", []string{"Begin", "Poke", "Relayed", "Relayed", "Relayed"})
	if stats := rt.Stats(); stats.ChainFallbacks == 0 || stats.Steps != 5 {
		// Steps: the chain's steps that were not written are not counted.
		t.Fatalf("no batch was written without its chain, or steps miscounted (want 5): %+v", stats)
	}
}

// A backlog chains too (the router reads the log ahead of its batches):
// forty relays begin before the runtime starts, in batches of eight steps,
// and most hops are chained, without a batch written again. (Not all: a
// batch reads fewer events once it knows how many steps each brings, and
// the first batch learns it.) The one instance with a later event in the
// backlog sees its events in log order: Begin, then the Poke that is five
// batches behind it, then its hops.
func TestChainReadsAheadOfABacklog(t *testing.T) {
	t.Parallel()
	st := &stepCountingStore{Store: openStore(t)}
	cfg := quietConfig()
	cfg.BatchSize = 8
	rt := relayRuntime(t, st, cfg, relay{})
	const n = 40
	batch := append(begins(n), evoke.StreamAppend{StreamID: "poke-r03", ExpectedVersion: evoke.NoStream,
		Events: []evoke.Event{evoke.NewEvent("Poke", relayData{ID: "r03"})}})
	if _, err := rt.AppendBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	start(t, rt)
	evoketest.Eventually(t, 10*time.Second, "every relay completes", func() bool { return rt.Stats().Completed == n })
	for k := range n {
		want := []string{"Begin", "Relayed", "Relayed", "Relayed"}
		if k == 3 {
			want = []string{"Begin", "Poke", "Relayed", "Relayed", "Relayed"}
		}
		verifyRelay(t, st.Store, fmt.Sprintf("r%02d", k), want)
	}
	if most := st.most.Load(); most > int64(cfg.BatchSize) {
		t.Fatalf("a transaction stepped %d events, more than the batch size %d", most, cfg.BatchSize)
	}
	if stats := rt.Stats(); stats.Chained < 2*n || stats.ChainFallbacks != 0 {
		t.Fatalf("%d steps chained with %d fallbacks, want at least %d and none (stats %+v)", stats.Chained, stats.ChainFallbacks, 2*n, stats)
	}
}

// stepCountingStore records the most steps (history records of kind
// "step") one transaction wrote.
type stepCountingStore struct {
	evokestore.Store
	most atomic.Int64
}

func (s *stepCountingStore) Begin(ctx context.Context) (evokestore.Tx, error) {
	tx, err := s.Store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &stepCountingTx{Tx: tx, s: s}, nil
}

type stepCountingTx struct {
	evokestore.Tx
	s     *stepCountingStore
	steps int64
}

func (t *stepCountingTx) InsertHistory(ctx context.Context, records []evokestore.HistoryRecord) error {
	for _, r := range records {
		if r.Kind == evokestore.KindStep {
			t.steps++
		}
	}
	return t.Tx.InsertHistory(ctx, records)
}

func (t *stepCountingTx) Commit() error {
	err := t.Tx.Commit()
	for err == nil {
		most := t.s.most.Load()
		if t.steps <= most || t.s.most.CompareAndSwap(most, t.steps) {
			break
		}
	}
	return err
}

// tally counts the events it handles in a map it changes in place, and
// fails on the second Relayed: a chained step that fails after changing
// its in-memory state must leave the instance as its last good step did.
type tally struct{}

type tallyState struct {
	Counts map[string]int `json:"counts"`
}

func (tally) Name() string                                 { return "tally" }
func (tally) InterestedIn() []string                       { return []string{"Begin", "Relayed"} }
func (tally) Apply(s tallyState, _ evoke.Event) tallyState { return s }
func (tally) Correlate(e evoke.Event) evoke.Correlation {
	return evoke.ByField(e, "id", evoke.Continue)
}

func (tally) Handle(s tallyState, e evoke.Event) (tallyState, []evoke.Command, error) {
	var d relayData
	if err := e.Decode(&d); err != nil {
		return s, nil, err
	}
	if s.Counts == nil {
		s.Counts = map[string]int{}
	}
	s.Counts[e.Type]++ // in place: the map is shared with the state before
	if d.Hop == 2 {
		return s, nil, fmt.Errorf("hop %d fails", d.Hop)
	}
	return s, []evoke.Command{evoke.NewCommand("hop", "relayer", d.ID, relayData{ID: d.ID, Hop: d.Hop + 1})}, nil
}

func TestChainedFailureKeepsTheLastGoodState(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	rt := relayRuntime(t, st, nil, tally{})
	start(t, rt)
	appendEvent(t, rt, "begin-t", "Begin", relayData{ID: "t"})
	evoketest.Eventually(t, 10*time.Second, "the instance parks", func() bool { return rt.Stats().Parked == 1 })
	inst, ok := instance(t, st, "tally", "t")
	if !ok || inst.Status != evokestore.StatusParked {
		t.Fatalf("instance: %+v, want parked", inst)
	}
	var s tallyState
	if err := json.Unmarshal(inst.State, &s); err != nil {
		t.Fatal(err)
	}
	if s.Counts["Begin"] != 1 || s.Counts["Relayed"] != 1 {
		t.Fatalf("state %+v, want one Begin and one Relayed (the failing step's change is not kept)", s.Counts)
	}
	if stats := rt.Stats(); stats.Chained == 0 {
		t.Fatalf("nothing chained: %+v", stats)
	}
}

// Relays begun one by one while the runtime runs: batches pass over the
// events the batches before them chained while those are written, and the
// router stores its checkpoints past them before it idles.
func TestChainedCheckpointsStoredBeforeIdle(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	rt := startRelay(t, st, nil)
	const n = 150
	for k := range n {
		appendEvent(t, rt, fmt.Sprintf("begin-r%03d", k), "Begin", relayData{ID: fmt.Sprintf("r%03d", k)})
	}
	evoketest.Eventually(t, 10*time.Second, "every relay completes", func() bool { return rt.Stats().Completed == n })
	evoketest.WaitIdle(t, rt, 10*time.Second)
	if stats := rt.Stats(); stats.Chained == 0 {
		t.Fatalf("nothing chained: %+v", stats)
	}
}

// telemetryLog records the kinds of telemetry each instance emitted, in
// order.
type telemetryLog struct {
	mu  sync.Mutex
	got map[string][]string
}

// TimesSteps asks for the step events too (evoke.StepHooks).
func (l *telemetryLog) TimesSteps() bool { return true }

func (l *telemetryLog) Telemetry(t evoke.Telemetry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.got == nil {
		l.got = map[string][]string{}
	}
	l.got[t.ProcessID] = append(l.got[t.ProcessID], string(t.Kind))
}

func (l *telemetryLog) kinds(id string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got[id])
}
