package demo

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/examples/orderfulfillment"
)

// replayers replays the demo's process managers by name.
var replayers = map[string]func(ctx context.Context, q evokestore.Querier, opts *evoke.ReplayOpts) (evoke.ReplayReport, error){
	orderfulfillment.Name: func(ctx context.Context, q evokestore.Querier, opts *evoke.ReplayOpts) (evoke.ReplayReport, error) {
		return evoke.Replay(ctx, q, orderfulfillment.Fulfillment{}, opts)
	},
}

// ProcessManagers names the demo's process managers, the ones Replay
// knows.
func ProcessManagers() []string {
	names := make([]string, 0, len(replayers))
	for n := range replayers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Replay replays the stored instances of the demo's process manager pm
// through the code of this binary (evoke.Replay).
func Replay(ctx context.Context, q evokestore.Querier, pm string, opts *evoke.ReplayOpts) (evoke.ReplayReport, error) {
	r := replayers[pm]
	if r == nil {
		return evoke.ReplayReport{}, fmt.Errorf("%w: this binary has the code of %s only, not of %q: replay other process managers with evoke.Replay from a program that has their code",
			evoke.ErrNotFound, strings.Join(ProcessManagers(), ", "), pm)
	}
	return r(ctx, q, opts)
}
