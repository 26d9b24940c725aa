package demo_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/evoke-go/evoke/internal/demo"
	"github.com/evoke-go/evoke/internal/remotetest"
)

// The demo over NATS (`evoke demo --source`) runs its orders to the same
// outcomes as over the built-in log, twice on one store.
func TestRunOverNATS(t *testing.T) {
	t.Parallel()
	url := remotetest.ServiceURL(t, "EVOKE_TEST_NATS_URL", "nats://127.0.0.1:4222")
	local, err := demo.Run(context.Background(), remotetest.OpenSpec(t, remotetest.NewSpec(t, "sqlite")),
		demo.Options{Orders: 200, FailRate: 0.1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	st := remotetest.OpenSpec(t, remotetest.NewSpec(t, "sqlite"))
	for run := range 2 {
		sum, err := demo.Run(context.Background(), st, demo.Options{Orders: 200, FailRate: 0.1, Stall: 30 * time.Second,
			Source: url, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("run %d: %v (summary %+v)", run, err, sum)
		}
		if sum.Completed != 200 || sum.Parked != 0 || sum.FirstOrder != 1+200*run || run == 0 && sum.Compensated != local.Compensated {
			t.Fatalf("run %d: summary %+v; over the built-in log %+v", run, sum, local)
		}
	}
}
