package evoke_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

// picky is a process manager interested in Begin and in the types of
// listen only; Begin sends one "emit" command whose aggregate appends the
// events named in the command. It records every event Correlate, Apply and
// Handle see, so that a test can tell that no other type reached it.
type picky struct {
	listen []string
	emits  []string
	mu     *sync.Mutex
	seen   *[]string
}

type pickyState struct {
	Applied []string `json:"applied"`
	Handled []string `json:"handled"`
}

func (p picky) Name() string { return "picky" }
func (p picky) InterestedIn() []string {
	return append([]string{"Begin"}, p.listen...)
}

func (p picky) note(where string, e evoke.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	*p.seen = append(*p.seen, where+":"+e.Type)
}

func (p picky) Correlate(e evoke.Event) evoke.Correlation {
	p.note("correlate", e)
	return evoke.ByField(e, "id", evoke.Continue)
}

func (p picky) Apply(s pickyState, e evoke.Event) pickyState {
	p.note("apply", e)
	s.Applied = append(slices.Clip(s.Applied), e.Type)
	return s
}

func (p picky) Handle(s pickyState, e evoke.Event) (pickyState, []evoke.Command, error) {
	p.note("handle", e)
	s.Handled = append(slices.Clip(s.Handled), e.Type)
	if e.Type != "Begin" {
		return s, nil, nil
	}
	id, _ := evoke.Field(e, "id")
	return s, []evoke.Command{evoke.NewCommand("emit", "emitter", id, map[string]any{"id": id, "types": p.emits})}, nil
}

// emitter appends one event of each type its command names.
type emitter struct{}

func (emitter) Execute(_ struct{}, c evoke.Command) ([]evoke.Event, error) {
	var p struct {
		ID    string   `json:"id"`
		Types []string `json:"types"`
	}
	if err := c.Decode(&p); err != nil {
		return nil, err
	}
	evs := make([]evoke.Event, len(p.Types))
	for i, t := range p.Types {
		evs[i] = evoke.NewEvent(t, map[string]string{"id": p.ID})
	}
	return evs, nil
}

func (emitter) Apply(s struct{}, _ evoke.Event) struct{} { return s }

// An event that a process manager's own command appends reaches it only
// when its type is one the process manager is interested in, whichever
// path steps it: chained in the batch that appends it, or read from the
// log by a later batch.
func TestOnlyInterestingEventsReachAProcessManager(t *testing.T) {
	cases := []struct {
		name           string
		listen, emits  []string
		wantStepsTypes []string
	}{
		{name: "not interested", emits: []string{"Acked"}, wantStepsTypes: []string{"Begin"}},
		{name: "some interesting", listen: []string{"Zed"}, emits: []string{"Noise", "Zed"}, wantStepsTypes: []string{"Begin", "Zed"}},
	}
	for _, tc := range cases {
		for _, depth := range []int{-1, 1, 8} {
			t.Run(tc.name+"/chain="+strconv.Itoa(depth), func(t *testing.T) {
				eachStore(t, func(t *testing.T, st evokestore.Store) {
					var mu sync.Mutex
					var seen []string
					pm := picky{listen: tc.listen, emits: tc.emits, mu: &mu, seen: &seen}
					cfg := quietConfig()
					cfg.ChainDepth = depth
					rt := newRuntime(t, st, cfg)
					if err := evoke.RegisterAggregate(rt, "emitter", emitter{}); err != nil {
						t.Fatal(err)
					}
					if err := evoke.RegisterProcessManager(rt, pm, nil); err != nil {
						t.Fatal(err)
					}
					start(t, rt)
					appendEvent(t, rt, "job-1", "Begin", map[string]string{"id": "j1"})
					evoketest.WaitIdle(t, rt, 0)

					// User code may see an event more than once (the router
					// correlates what it reads ahead, and steps again what a
					// dropped chain stepped), but never one of a type the
					// process manager is not interested in.
					mu.Lock()
					got := slices.Clone(seen)
					mu.Unlock()
					for _, call := range got {
						_, typ, _ := strings.Cut(call, ":")
						if !slices.Contains(tc.wantStepsTypes, typ) {
							t.Fatalf("user code saw %s (all calls: %v); interested in %v", call, got, pm.InterestedIn())
						}
					}
					inst, ok := instance(t, st, "picky", "j1")
					if !ok {
						t.Fatal("no instance j1")
					}
					hist, err := st.History(context.Background(), "picky", "j1")
					if err != nil {
						t.Fatal(err)
					}
					var stepped []string
					for _, h := range hist {
						stepped = append(stepped, h.EventType)
					}
					if !slices.Equal(stepped, tc.wantStepsTypes) {
						t.Fatalf("history %v, want %v (instance %+v)", stepped, tc.wantStepsTypes, inst)
					}
					evs, err := st.ReadStream(context.Background(), evoke.StreamID("emitter", "j1"), 0)
					if err != nil {
						t.Fatal(err)
					}
					if len(evs) != len(tc.emits) {
						t.Fatalf("the emitter appended %d events, want %d: one command took effect", len(evs), len(tc.emits))
					}
				})
			})
		}
	}
}

// positions is a process manager that records the Position Handle saw for
// each event: Begin sends a hop command whose Relayed event it handles
// (chained, with the default ChainDepth), which completes it.
type positions struct{}

type positionsState struct {
	Seen []int64 `json:"seen"`
	Done bool    `json:"done"`
}

func (positions) Name() string           { return "positions" }
func (positions) InterestedIn() []string { return []string{"Begin", "Relayed"} }
func (positions) Correlate(e evoke.Event) evoke.Correlation {
	return evoke.ByField(e, "id", evoke.Continue)
}
func (positions) Apply(s positionsState, _ evoke.Event) positionsState { return s }
func (positions) Completed(s positionsState) bool                      { return s.Done }

func (positions) Handle(s positionsState, e evoke.Event) (positionsState, []evoke.Command, error) {
	s.Seen = append(slices.Clip(s.Seen), e.Position)
	if e.Type == "Relayed" {
		s.Done = true
		return s, nil, nil
	}
	id, _ := evoke.Field(e, "id")
	return s, []evoke.Command{evoke.NewCommand("hop", "relayer", id, relayData{ID: id})}, nil
}

// Handle sees Position 0 for an event chained in the transaction that
// appends it, as Event.Position documents, and the event's real position
// otherwise; the instance's history has the real positions either way.
func TestHandleSeesPositionZeroOnlyForChainedEvents(t *testing.T) {
	doc, err := os.ReadFile("event.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "Apply and Handle see 0") && !strings.Contains(string(doc), "Handle sees 0") {
		t.Fatalf("Event.Position's doc does not say that a chained step sees Position 0")
	}
	for _, depth := range []int{-1, 8} {
		t.Run("chain="+strconv.Itoa(depth), func(t *testing.T) {
			eachStore(t, func(t *testing.T, st evokestore.Store) {
				cfg := quietConfig()
				cfg.ChainDepth = depth
				rt := relayRuntime(t, st, cfg, positions{})
				start(t, rt)
				appendEvent(t, rt, "begin-p1", "Begin", relayData{ID: "p1"})
				evoketest.WaitIdle(t, rt, 0)
				inst, ok := instance(t, st, "positions", "p1")
				if !ok || inst.Status != evokestore.StatusCompleted {
					t.Fatalf("instance %+v, want completed", inst)
				}
				var s positionsState
				if err := json.Unmarshal(inst.State, &s); err != nil {
					t.Fatal(err)
				}
				hist, err := st.History(context.Background(), "positions", "p1")
				if err != nil {
					t.Fatal(err)
				}
				if len(hist) != 2 || len(s.Seen) != 2 {
					t.Fatalf("history %+v, seen %v: want two steps", hist, s.Seen)
				}
				for i, h := range hist {
					if h.Position <= 0 {
						t.Fatalf("history record %d has position %d", i, h.Position)
					}
				}
				chained := rt.Stats().Chained > 0
				if chained != (depth > 0) {
					t.Fatalf("chained steps: %d, with ChainDepth %d", rt.Stats().Chained, depth)
				}
				want := []int64{hist[0].Position, hist[1].Position}
				if chained {
					want[1] = 0
				}
				if !slices.Equal(s.Seen, want) {
					t.Fatalf("Handle saw positions %v, want %v (chained: %v)", s.Seen, want, chained)
				}
			})
		})
	}
}
