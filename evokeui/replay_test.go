package evokeui_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokeui"
	of "github.com/evoke-go/evoke/examples/orderfulfillment"
	"github.com/evoke-go/evoke/internal/cli"
)

// skipShipping changes the order process: an order is complete once its
// inventory is reserved, without shipping it.
type skipShipping struct{ of.Fulfillment }

func (p skipShipping) Handle(s of.State, e evoke.Event) (of.State, []evoke.Command, error) {
	if e.Type == of.EventInventoryReserved {
		s.Status = of.StatusCompleted
		return s, nil, nil
	}
	return p.Fulfillment.Handle(s, e)
}

// The replay page shows the report of the Replayer, or says there is none.
func TestReplayPage(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "replay.db")
	var out, errb bytes.Buffer
	if code := cli.Main(context.Background(), []string{"demo", "--store", db, "--orders", "5"}, &out, &errb); code != 0 {
		t.Fatalf("demo: exit %d: %s", code, errb.String())
	}
	st, err := evokesqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, tc := range []struct {
		name   string
		replay evokeui.Replayer
		want   []string
	}{
		{"unchanged", func(ctx context.Context, pm string) (evoke.ReplayReport, error) {
			return evoke.Replay(ctx, st, of.Fulfillment{}, nil)
		}, []string{"5 instances, 20 steps replayed", "none differs"}},
		{"changed", func(ctx context.Context, pm string) (evoke.ReplayReport, error) {
			return evoke.Replay(ctx, st, skipShipping{}, nil)
		}, []string{"5 differ", `<table id="differences">`, "InventoryReserved", "ship_item to shipping", "no commands"}},
		{"no replayer", nil, []string{"This UI has no code to replay order_fulfillment with"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(evokeui.Handler(st, evokeui.Options{Replay: tc.replay}))
			defer srv.Close()
			code, body := get(t, http.DefaultClient, srv.URL+"/replay?pm=order_fulfillment")
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q:\n%s", w, body)
				}
			}
		})
	}
}
