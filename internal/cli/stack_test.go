package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evoketest"
)

// bomb is a process manager whose Handle panics.
type bomb struct{}

func (bomb) Name() string                             { return "bomb" }
func (bomb) InterestedIn() []string                   { return []string{"Lit"} }
func (bomb) Apply(s struct{}, _ evoke.Event) struct{} { return s }
func (bomb) Correlate(e evoke.Event) evoke.Correlation {
	return evoke.ByField(e, "id", evoke.Start)
}
func (bomb) Handle(struct{}, evoke.Event) (struct{}, []evoke.Command, error) {
	explode()
	return struct{}{}, nil, nil
}

func explode() { panic("fuse burnt") }

// evoke show prints a parked instance's panic with its stack, from the
// panicking function on; show --json has it in last_error.
func TestShowPanicStack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "bomb.db")
	st, err := evokesqlite.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := evoke.New(st, &evoke.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxAttempts: 1, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := evoke.RegisterProcessManager(rt, bomb{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Append(ctx, "lit-1", evoke.NoStream, evoke.NewEvent("Lit", map[string]string{"id": "b1"})); err != nil {
		t.Fatal(err)
	}
	evoketest.Eventually(t, 0, "the instance parks", func() bool { return rt.Stats().Parked == 1 })
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()

	code, out, errs := run(t, "show", "--store", db, "--pm", "bomb", "b1")
	if code != 0 {
		t.Fatalf("show: exit %d: %s", code, errs)
	}
	for _, want := range []string{"last error (attempt 1): bomb.Handle(Lit): panic in bomb.Handle: fuse burnt\n", "panic stack:\n  goroutine ", "cli_test.explode("} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "runtime/debug.Stack") {
		t.Errorf("show prints the recovery's own frames:\n%s", out)
	}
	code, out, _ = run(t, "show", "--store", db, "--pm", "bomb", "--json", "b1")
	var v struct {
		Instance struct {
			LastError string `json:"last_error"`
		} `json:"instance"`
	}
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil {
		t.Fatalf("show --json: exit %d, %v", code, err)
	}
	if !strings.HasPrefix(v.Instance.LastError, "bomb.Handle(Lit): panic in bomb.Handle: fuse burnt\n\ngoroutine ") ||
		!strings.Contains(v.Instance.LastError, "cli_test.explode(") {
		t.Errorf("show --json last_error %q: want the message and the stack", v.Instance.LastError)
	}
}
