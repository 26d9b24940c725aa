package evoke_test

import (
	"context"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/remotetest"
)

// A sink's answers map onto a local aggregate's outcomes: accepted,
// rejected (compensated, $rejected), and a transient failure retried and
// then parked.
func TestSinkAnswers(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st evokestore.Store) {
		rt, err := evoke.New(st, remotetest.Config())
		if err != nil {
			t.Fatal(err)
		}
		var r remotetest.Receiver
		sink := evoke.SinkFunc(func(ctx context.Context, cmd evoke.Command) error { return r.Answer(cmd) })
		if err := evoke.RegisterSink(rt, remotetest.Aggregate, sink); err != nil {
			t.Fatal(err)
		}
		if err := evoke.RegisterSink(rt, remotetest.Aggregate, sink); err == nil {
			t.Fatal("a second sink for one aggregate type was registered")
		}
		remotetest.RunSink(t, rt, st, r.Got)
	})
}
