package evoke_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	"github.com/evoke-go/evoke/internal/engine"
)

// recall is a process manager of orders: OrderOpened starts one, and
// ProductRecalled, which lists the open orders of the product, reaches
// every one of them (ContinueEach). Its state records what it saw and the
// instance ID Handle was given. With recalls set, Handle counts the recalls
// it is called with and takes a millisecond each, so that a test can stop
// the runtime while they are being stepped.
type recall struct{ recalls *atomic.Int64 }

type recallState struct {
	Self     string   `json:"self"`
	Seen     []string `json:"seen"`
	Recalled int      `json:"recalled"`
}

func (recall) Name() string           { return "recall" }
func (recall) InterestedIn() []string { return []string{"OrderOpened", "ProductRecalled"} }

func (recall) Correlate(e evoke.Event) evoke.Correlation {
	if e.Type == "ProductRecalled" {
		var d struct{ Orders []string }
		if err := e.Decode(&d); err != nil {
			return evoke.CorrelationFailed(err)
		}
		return evoke.ContinueEach(d.Orders...)
	}
	return evoke.ByField(e, "order", evoke.StartNew)
}

func (recall) Apply(s recallState, e evoke.Event) recallState {
	s.Seen = append(slices.Clip(s.Seen), e.Type)
	if e.Type == "ProductRecalled" {
		s.Recalled++
	}
	return s
}

func (r recall) Handle(s recallState, e evoke.Event) (recallState, []evoke.Command, error) {
	if r.recalls != nil && e.Type == "ProductRecalled" {
		r.recalls.Add(1)
		time.Sleep(time.Millisecond)
	}
	s.Self = e.InstanceID
	return s, nil, nil
}

// stateOf decodes an instance's stored state.
func stateOf[S any](t *testing.T, in evokestore.Instance) S {
	t.Helper()
	var s S
	if len(in.State) > 0 {
		if err := json.Unmarshal(in.State, &s); err != nil {
			t.Fatalf("state of %s: %v", in.ID, err)
		}
	}
	return s
}

func orderIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("order-%04d", i)
	}
	return ids
}

// TestOneEventReachesAThousandInstances routes one event to 1,000 running
// instances and stops the runtime once it has stepped 300 of them (their
// batch then commits whole or not at all) and starts another: each instance
// steps the event once, with its own ID.
func TestOneEventReachesAThousandInstances(t *testing.T) {
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		ctx := context.Background()
		ids := orderIDs(1000)
		cfg := quietConfig()
		cfg.Workers = 4
		var recalls atomic.Int64
		run := func() *evoke.Runtime {
			rt := newRuntime(t, st, cfg)
			if err := evoke.RegisterProcessManager(rt, recall{&recalls}, nil); err != nil {
				t.Fatal(err)
			}
			if err := rt.Start(ctx); err != nil {
				t.Fatal(err)
			}
			return rt
		}
		rt := run()
		batch := make([]evoke.StreamAppend, len(ids))
		for i, id := range ids {
			batch[i] = evoke.StreamAppend{StreamID: id, ExpectedVersion: evoke.NoStream,
				Events: []evoke.Event{evoke.NewEvent("OrderOpened", map[string]string{"order": id})}}
		}
		if _, err := rt.AppendBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
		evoketest.WaitIdle(t, rt, 60*time.Second)
		if _, err := rt.Append(ctx, "product-7", evoke.NoStream, evoke.NewEvent("ProductRecalled", map[string]any{"orders": ids})); err != nil {
			t.Fatal(err)
		}
		for recalls.Load() < 300 {
			time.Sleep(time.Millisecond)
		}
		if err := rt.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		stepped := 0
		for _, id := range ids[:10] {
			if in, _ := instance(t, st, "recall", id); in.Version == 2 {
				stepped++
			}
		}
		t.Logf("stopped after %d recall steps; %d of the first 10 instances had committed theirs", recalls.Load(), stepped)
		rt = run()
		defer func() { _ = rt.Stop(ctx) }()
		evoketest.WaitIdle(t, rt, 60*time.Second)
		for _, id := range ids {
			in, ok := instance(t, st, "recall", id)
			if !ok {
				t.Fatalf("instance %s missing", id)
			}
			s := stateOf[recallState](t, in)
			if s.Recalled != 1 || in.Version != 2 || s.Self != id || !slices.Equal(s.Seen, []string{"OrderOpened", "ProductRecalled"}) {
				t.Fatalf("%s: version %d, state %+v; want the recall stepped once, by itself", id, in.Version, s)
			}
			hist, err := st.History(ctx, "recall", id)
			if err != nil {
				t.Fatal(err)
			}
			steps := 0
			for _, h := range hist {
				if h.Kind == evokestore.KindStep && h.EventType == "ProductRecalled" {
					steps++
				}
			}
			if steps != 1 {
				t.Fatalf("%s: %d recall steps in its history, want 1", id, steps)
			}
		}
	})
}

// TestStartNewFailsOnARunningInstance: a duplicated start event correlated
// with StartNew is an error of that instance's step, which OnFailure sees
// as ErrAlreadyStarted; a running instance's later events go on.
func TestStartNewFailsOnARunningInstance(t *testing.T) {
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		cfg := quietConfig()
		cfg.MaxAttempts = 1
		rt := newRuntime(t, st, cfg)
		if err := evoke.RegisterProcessManager(rt, recall{}, nil); err != nil {
			t.Fatal(err)
		}
		start(t, rt)
		appendEvent(t, rt, "o-1", "OrderOpened", map[string]string{"order": "o-1"})
		evoketest.WaitIdle(t, rt, 20*time.Second)
		appendEvent(t, rt, "o-1b", "OrderOpened", map[string]string{"order": "o-1"})
		evoketest.WaitIdle(t, rt, 20*time.Second)
		in, _ := instance(t, st, "recall", "o-1")
		if in.Status != evokestore.StatusParked || !strings.Contains(in.LastError, evoke.ErrAlreadyStarted.Error()) || in.Version != 1 {
			t.Fatalf("instance %+v; want parked with %q after one step", in, evoke.ErrAlreadyStarted)
		}
	})
}

// payments decides what each failure means: an expired card skips the
// event, fraud stops the instance, a bank that is down retries after 30 s.
type payments struct{ bankDown *atomic.Bool }

var (
	errCardExpired = errors.New("card expired")
	errFraud       = errors.New("fraud suspected")
	errBankDown    = errors.New("bank unavailable")
)

type payState struct {
	Charged []string `json:"charged"`
}

func (payments) Name() string           { return "payments" }
func (payments) InterestedIn() []string { return []string{"Charge"} }
func (payments) Correlate(e evoke.Event) evoke.Correlation {
	return evoke.ByField(e, "account", evoke.Continue)
}
func (payments) Apply(s payState, _ evoke.Event) payState { return s }

func (p payments) Handle(s payState, e evoke.Event) (payState, []evoke.Command, error) {
	var d struct{ Ref, Fail string }
	if err := e.Decode(&d); err != nil {
		return s, nil, err
	}
	switch d.Fail {
	case "expired":
		return s, nil, fmt.Errorf("charge %s: %w", d.Ref, errCardExpired)
	case "fraud":
		return s, nil, fmt.Errorf("charge %s: %w", d.Ref, errFraud)
	case "down":
		if p.bankDown.Load() {
			return s, nil, fmt.Errorf("charge %s: %w", d.Ref, errBankDown)
		}
	}
	s.Charged = append(slices.Clip(s.Charged), d.Ref)
	return s, nil, nil
}

func (payments) OnFailure(f evoke.Failure) evoke.FailureAction {
	switch {
	case errors.Is(f.Err, errCardExpired):
		return f.Skip()
	case errors.Is(f.Err, errFraud):
		return f.Stop()
	case errors.Is(f.Err, errBankDown):
		return f.RetryAfter(30 * time.Second)
	}
	return f.RetryWithBackoff()
}

// TestFailurePolicy: the process manager skips one error type, stops on
// another and retries a third after a delay on the virtual clock.
func TestFailurePolicy(t *testing.T) {
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		ctx := context.Background()
		clock := evoketest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
		cfg := quietConfig()
		cfg.Clock = clock
		var down atomic.Bool
		down.Store(true)
		rt := newRuntime(t, st, cfg)
		if err := evoke.RegisterProcessManager(rt, payments{&down}, nil); err != nil {
			t.Fatal(err)
		}
		start(t, rt)
		charge := func(account, ref, fail string) {
			appendEvent(t, rt, "charges-"+ref, "Charge", map[string]string{"account": account, "ref": ref, "fail": fail})
			evoketest.WaitIdle(t, rt, 20*time.Second)
		}
		charged := func(id string) (evokestore.Instance, []string) {
			in, _ := instance(t, st, "payments", id)
			return in, stateOf[payState](t, in).Charged
		}

		// Skip: the event is passed over, the next one steps.
		charge("a", "a1", "expired")
		charge("a", "a2", "")
		in, got := charged("a")
		if in.Status != evokestore.StatusRunning || !slices.Equal(got, []string{"a2"}) || in.LastError != "" {
			t.Fatalf("after a skipped failure: %s %v %q; want running, charged [a2]", in.Status, got, in.LastError)
		}
		hist, err := st.History(ctx, "payments", "a")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(hist, func(h evokestore.HistoryRecord) bool {
			return h.Kind == evokestore.KindSkipped && strings.Contains(h.Error, "card expired")
		}) {
			t.Fatalf("history %+v has no skipped record with the error", hist)
		}

		// Stop: the instance ends, cancelled, with the error; later events
		// are dropped.
		charge("b", "b1", "fraud")
		charge("b", "b2", "")
		in, got = charged("b")
		if in.Status != evokestore.StatusCancelled || len(got) != 0 || !strings.Contains(in.LastError, "fraud") {
			t.Fatalf("after a stopping failure: %s %v %q; want cancelled with the error", in.Status, got, in.LastError)
		}

		// Retry after 30 s on the runtime's clock, whatever MaxAttempts.
		charge("c", "c1", "down")
		in, _ = charged("c")
		if in.Status != evokestore.StatusFailing || !in.NextAttemptAt.Equal(clock.Now().Add(30*time.Second)) {
			t.Fatalf("after a failure to retry: %s next %v; want failing, next attempt in 30s", in.Status, in.NextAttemptAt)
		}
		charge("c", "c2", "") // held behind c1
		clock.Advance(29 * time.Second)
		evoketest.WaitIdle(t, rt, 20*time.Second)
		if in, _ = charged("c"); in.Status != evokestore.StatusFailing || in.Attempts != 1 {
			t.Fatalf("29 s later: %s, %d attempts; want failing, not retried yet", in.Status, in.Attempts)
		}
		clock.Advance(time.Second)
		evoketest.WaitIdle(t, rt, 20*time.Second)
		if in, _ = charged("c"); in.Status != evokestore.StatusFailing || in.Attempts != 2 {
			t.Fatalf("30 s later, the bank still down: %s, %d attempts; want failing, tried again", in.Status, in.Attempts)
		}
		down.Store(false)
		clock.Advance(30 * time.Second)
		evoketest.WaitIdle(t, rt, 20*time.Second)
		in, got = charged("c")
		if in.Status != evokestore.StatusRunning || !slices.Equal(got, []string{"c1", "c2"}) {
			t.Fatalf("after the bank came back: %s %v; want running, charged [c1 c2] in order", in.Status, got)
		}
	})
}

// fulfil issues "reserve" then "charge" on OrderPlaced; with discard, a
// rejected reserve discards the charge.
type fulfil struct{ discard bool }

func (fulfil) Name() string           { return "fulfil" }
func (fulfil) InterestedIn() []string { return []string{"OrderPlaced"} }
func (fulfil) Correlate(e evoke.Event) evoke.Correlation {
	return evoke.ByField(e, "order", evoke.Start)
}
func (fulfil) Apply(s struct{}, _ evoke.Event) struct{} { return s }
func (fulfil) Handle(s struct{}, e evoke.Event) (struct{}, []evoke.Command, error) {
	id, _ := evoke.Field(e, "order")
	return s, []evoke.Command{
		evoke.NewCommand("reserve", "stock", "sku-1", map[string]string{"order": id}),
		evoke.NewCommand("charge", "wallet", id, map[string]string{"order": id}),
	}, nil
}
func (f fulfil) DiscardPending(rejected evoke.FailedCommand) bool {
	return f.discard && rejected.Command.Type == "reserve"
}

// stock rejects every reservation: it is out of stock.
type stock struct{}

func (stock) Execute(struct{}, evoke.Command) ([]evoke.Event, error) {
	return nil, errors.New("out of stock")
}
func (stock) Apply(s struct{}, _ evoke.Event) struct{} { return s }

// wallet charges.
type wallet struct{}

func (wallet) Execute(_ struct{}, c evoke.Command) ([]evoke.Event, error) {
	return []evoke.Event{evoke.NewEvent("Charged", c.Payload)}, nil
}
func (wallet) Apply(s struct{}, _ evoke.Event) struct{} { return s }

// TestRejectedCommandDiscardsTheRestOfItsStep: "reserve" is rejected, so
// "charge" of the same step never runs (inline and through the outbox);
// without discarding, it runs.
func TestRejectedCommandDiscardsTheRestOfItsStep(t *testing.T) {
	for _, tc := range []struct {
		name           string
		discard, queue bool
	}{{"discard inline", true, false}, {"discard queued", true, true}, {"continue", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, st evokestore.Store) {
				ctx := context.Background()
				cfg := quietConfig()
				cfg.QueueCommands = tc.queue
				rt := newRuntime(t, st, cfg)
				for _, err := range []error{
					evoke.RegisterProcessManager(rt, fulfil{tc.discard}, nil),
					evoke.RegisterAggregate(rt, "stock", stock{}),
					evoke.RegisterAggregate(rt, "wallet", wallet{}),
				} {
					if err != nil {
						t.Fatal(err)
					}
				}
				start(t, rt)
				placed := appendEvent(t, rt, "orders-1", "OrderPlaced", map[string]string{"order": "o-1"})
				evoketest.WaitIdle(t, rt, 20*time.Second)
				charges, err := st.ReadStream(ctx, evoke.StreamID("wallet", "o-1"), 0)
				if err != nil {
					t.Fatal(err)
				}
				chargeID := evoke.CommandID("fulfil", "o-1", placed, 1)
				outcomes, err := rt.CommandOutcomes(ctx, chargeID)
				if err != nil {
					t.Fatal(err)
				}
				o := outcomes[chargeID]
				if !tc.discard {
					if len(charges) != 1 || o.Status != evokestore.OutcomeAccepted {
						t.Fatalf("continue: %d charges, outcome %+v; want the charge to run", len(charges), o)
					}
					return
				}
				if len(charges) != 0 || o.Status != evokestore.OutcomeDiscarded || !strings.Contains(o.Error, "was rejected") {
					t.Fatalf("discard: %d charges, outcome %+v; want no charge, recorded as discarded", len(charges), o)
				}
			})
		})
	}
}

// hanger's Handle blocks on the event of instance "stuck" until release is
// closed.
type hanger struct{ release chan struct{} }

func (hanger) Name() string           { return "hanger" }
func (hanger) InterestedIn() []string { return []string{"Go"} }
func (hanger) Correlate(e evoke.Event) evoke.Correlation {
	return evoke.ByField(e, "id", evoke.Continue)
}
func (hanger) Apply(s int, _ evoke.Event) int { return s + 1 }
func (h hanger) Handle(s int, e evoke.Event) (int, []evoke.Command, error) {
	if e.InstanceID == "stuck" {
		<-h.release
	}
	return s, nil, nil
}

// TestStepTimeBound: a Handle that does not return is failed after the time
// bound and its instance parked, while the other instances go on.
func TestStepTimeBound(t *testing.T) {
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		release := make(chan struct{})
		var once sync.Once
		t.Cleanup(func() { once.Do(func() { close(release) }) })
		cfg := quietConfig()
		cfg.StepTimeout = 200 * time.Millisecond
		rt := newRuntime(t, st, cfg)
		if err := evoke.RegisterProcessManager(rt, hanger{release}, nil); err != nil {
			t.Fatal(err)
		}
		start(t, rt)
		for _, id := range []string{"a", "stuck", "b"} {
			appendEvent(t, rt, "go-"+id, "Go", map[string]string{"id": id})
		}
		evoketest.WaitIdle(t, rt, 20*time.Second)
		appendEvent(t, rt, "go-a2", "Go", map[string]string{"id": "a"})
		evoketest.WaitIdle(t, rt, 20*time.Second)
		in, _ := instance(t, st, "hanger", "stuck")
		if in.Status != evokestore.StatusParked || !strings.Contains(in.LastError, evoke.ErrStepTimeout.Error()) {
			t.Fatalf("stuck: %s %q; want parked with %q", in.Status, in.LastError, evoke.ErrStepTimeout)
		}
		for id, want := range map[string]int64{"a": 2, "b": 1} {
			if in, _ := instance(t, st, "hanger", id); in.Status != evokestore.StatusRunning || in.Version != want {
				t.Fatalf("%s: %s version %d; want running at version %d", id, in.Status, in.Version, want)
			}
		}
		if n := rt.Stats().StepTimeouts; n != 1 {
			t.Fatalf("Stats.StepTimeouts %d, want 1", n)
		}
		once.Do(func() { close(release) })
	})
}

// poker sends "poke" to the slowpoke aggregate of its instance on Go.
type poker struct{}

func (poker) Name() string           { return "poker" }
func (poker) InterestedIn() []string { return []string{"Go"} }
func (poker) Correlate(e evoke.Event) evoke.Correlation {
	return evoke.ByField(e, "id", evoke.Continue)
}
func (poker) Apply(s int, _ evoke.Event) int { return s }
func (poker) Handle(s int, e evoke.Event) (int, []evoke.Command, error) {
	return s + 1, []evoke.Command{evoke.NewCommand("poke", "slowpoke", e.InstanceID, nil)}, nil
}

// slowpoke's Execute blocks for aggregate "stuck" until release is closed.
type slowpoke struct{ release chan struct{} }

func (a slowpoke) Execute(_ struct{}, c evoke.Command) ([]evoke.Event, error) {
	if c.AggregateID == "stuck" {
		<-a.release
	}
	return []evoke.Event{evoke.NewEvent("Poked", nil)}, nil
}
func (slowpoke) Apply(s struct{}, _ evoke.Event) struct{} { return s }

// TestExecuteTimeBound: an aggregate's Execute that does not return fails
// its command after the time bound, inline and from the outbox, until the
// command's instance is parked; the other instances' commands go on.
func TestExecuteTimeBound(t *testing.T) {
	for _, queue := range []bool{false, true} {
		t.Run(fmt.Sprintf("queue=%v", queue), func(t *testing.T) {
			eachStore(t, func(t *testing.T, st evokestore.Store) {
				ctx := context.Background()
				release := make(chan struct{})
				var once sync.Once
				t.Cleanup(func() { once.Do(func() { close(release) }) })
				cfg := quietConfig()
				cfg.StepTimeout = 200 * time.Millisecond
				cfg.MaxAttempts = 2
				cfg.QueueCommands = queue
				rt := newRuntime(t, st, cfg)
				if err := evoke.RegisterProcessManager(rt, poker{}, nil); err != nil {
					t.Fatal(err)
				}
				if err := evoke.RegisterAggregate(rt, "slowpoke", slowpoke{release}); err != nil {
					t.Fatal(err)
				}
				start(t, rt)
				for _, id := range []string{"a", "stuck", "b"} {
					appendEvent(t, rt, "go-"+id, "Go", map[string]string{"id": id})
				}
				evoketest.Eventually(t, 20*time.Second, "the stuck instance parked", func() bool {
					in, _ := instance(t, st, "poker", "stuck")
					return in.Status == evokestore.StatusParked
				})
				in, _ := instance(t, st, "poker", "stuck")
				if !strings.Contains(in.LastError, evoke.ErrStepTimeout.Error()) {
					t.Fatalf("stuck: last error %q; want %q", in.LastError, evoke.ErrStepTimeout)
				}
				for _, id := range []string{"a", "b"} {
					// (The dispatcher may still be on its way to them.)
					evoketest.Eventually(t, 20*time.Second, id+" poked", func() bool {
						evs, err := st.ReadStream(ctx, evoke.StreamID("slowpoke", id), 0)
						return err == nil && len(evs) > 0
					})
					evs, err := st.ReadStream(ctx, evoke.StreamID("slowpoke", id), 0)
					if err != nil {
						t.Fatal(err)
					}
					if in, _ := instance(t, st, "poker", id); len(evs) != 1 || in.Status != evokestore.StatusRunning {
						t.Fatalf("%s: %d events, %s; want poked once, running", id, len(evs), in.Status)
					}
				}
				if rt.Stats().StepTimeouts < 2 {
					t.Fatalf("Stats.StepTimeouts %d, want at least 2", rt.Stats().StepTimeouts)
				}
				once.Do(func() { close(release) })
			})
		})
	}
}

// TestOperatorActionOnAnotherNodesInstance: through a runtime whose node
// does not lease the instance's partition, an operator action fails with
// ErrNotOwner, which a caller can match; through the owner it acts.
func TestOperatorActionOnAnotherNodesInstance(t *testing.T) {
	st := openPGStore(t)
	ctx := context.Background()
	cfg := func(node string) *evoke.Config {
		c := quietConfig()
		c.NodeID, c.Partitions, c.LeaseTTL, c.MaxAttempts = node, 2, time.Second, 1
		return c
	}
	nodes := map[string]*evoke.Runtime{}
	for _, node := range []string{"n1", "n2"} {
		rt := newRuntime(t, st, cfg(node))
		if err := evoke.RegisterProcessManager(rt, recall{}, nil); err != nil {
			t.Fatal(err)
		}
		start(t, rt)
		nodes[node] = rt
	}
	owner := map[int]string{}
	evoketest.Eventually(t, 30*time.Second, "each node leasing one partition", func() bool {
		leases, err := st.PartitionLeases(ctx)
		if err != nil {
			return false
		}
		for _, l := range leases {
			owner[l.Partition] = l.Node
		}
		return len(leases) == 2 && owner[0] != "" && owner[1] != "" && owner[0] != owner[1]
	})
	// Two orders opened twice (StartNew), so that both park, one in
	// each partition.
	var ids []string
	for i := 0; len(ids) < 2; i++ {
		id := fmt.Sprintf("o-%d", i)
		if len(ids) == 1 && engine.PartitionOf(id, 2) == engine.PartitionOf(ids[0], 2) {
			continue
		}
		ids = append(ids, id)
		appendEvent(t, nodes["n1"], id+"-a", "OrderOpened", map[string]string{"order": id})
		appendEvent(t, nodes["n1"], id+"-b", "OrderOpened", map[string]string{"order": id})
	}
	for _, id := range ids {
		evoketest.Eventually(t, 30*time.Second, id+" parked", func() bool {
			in, _ := instance(t, st, "recall", id)
			return in.Status == evokestore.StatusParked
		})
		p := engine.PartitionOf(id, 2)
		other := map[string]string{"n1": "n2", "n2": "n1"}[owner[p]]
		if err := nodes[other].Skip(ctx, "recall", id); !errors.Is(err, evoke.ErrNotOwner) {
			t.Fatalf("Skip of %s through %s (partition %d is %s's): %v, want ErrNotOwner", id, other, p, owner[p], err)
		}
		if err := nodes[owner[p]].Skip(ctx, "recall", id); err != nil {
			t.Fatalf("Skip of %s through its owner %s: %v", id, owner[p], err)
		}
	}
}
