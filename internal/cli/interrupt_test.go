package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evoke-go/evoke/internal/cli"
)

// evokeProcess starts the test binary as the evoke command with args.
func evokeProcess(t *testing.T, args ...string) (*exec.Cmd, *strings.Builder, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asEvokeEnv+"=1")
	var out strings.Builder
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out, bufio.NewScanner(stderr)
}

// The demo interrupted with SIGINT mid-run lands what is in flight, says
// what it did and exits 130; run again on the same orders without
// --timeout-rate, it finishes every one of them, the lost shipments timing
// out with the timeout the first run recorded in the store.
func TestDemoInterruptedAndResumed(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "interrupted.db")
	// Placing 2000 orders at 200/s takes 10 s: the run is interrupted at
	// its first progress line (about 2 s in), long before it can end.
	cmd, out, stderr := evokeProcess(t, "demo", "--store", db, "--orders", "2000", "--rate", "200",
		"--timeout-rate", "0.5", "--fail-rate", "0.1", "--json")
	var errLines []string
	signalled := false
	for stderr.Scan() {
		line := stderr.Text()
		errLines = append(errLines, line)
		if !signalled && strings.HasPrefix(line, "progress: ") {
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			signalled = true
		}
	}
	err := cmd.Wait()
	errs := strings.Join(errLines, "\n")
	if ee, ok := err.(*exec.ExitError); !signalled || !ok || ee.ExitCode() != 130 {
		t.Fatalf("interrupted demo (signalled %v): %v, want exit 130; stderr:\n%s", signalled, err, errs)
	}
	if strings.Contains(errs, "context canceled") || !strings.Contains(errs, "evoke demo: interrupted:") ||
		!strings.Contains(errs, "--first-order 1 --orders 2000` resumes them") {
		t.Errorf("interrupted demo's stderr:\n%s", errs)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(out.String()), &first); err != nil {
		t.Fatalf("interrupted demo's summary %q: %v", out, err)
	}
	placed := first["placed"].(float64)
	if first["interrupted"] != true || placed <= 0 || placed >= 2000 || first["timeout_seconds"] != 1.0 {
		t.Errorf("interrupted demo's summary: %s", out)
	}
	if first["completed"].(float64) > placed {
		t.Errorf("interrupted demo's summary: more orders completed than placed: %s", out)
	}

	// Resumed without --timeout-rate: every order finishes, timeouts
	// included.
	code, out2, errs2 := run(t, "demo", "--store", db, "--first-order", "1", "--orders", "2000", "--json")
	if code != 0 {
		t.Fatalf("resumed demo: exit %d: %s", code, errs2)
	}
	var second map[string]any
	if err := json.Unmarshal([]byte(out2), &second); err != nil {
		t.Fatal(err)
	}
	if second["completed"] != 2000.0 || second["in_flight"] != 0.0 || second["placed"] != 2000.0 || second["timeout_seconds"] != 1.0 {
		t.Errorf("resumed demo: %s", out2)
	}
	if timedOut := second["timed_out"].(float64); timedOut < 1 || timedOut > placed {
		t.Errorf("resumed demo: %v orders timed out of the %v placed with a timeout rate: %s", timedOut, placed, out2)
	}
}

// --poison-rate parks poison orders, which the demo counts as settled; the
// operator commands act on them.
func TestDemoPoisonOrdersPark(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "poison.db")
	code, out, errs := run(t, "demo", "--store", db, "--orders", "40", "--poison-rate", "0.1", "--json")
	if code != 0 {
		t.Fatalf("demo: exit %d: %s", code, errs)
	}
	var sum map[string]any
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	parked := sum["parked"].(float64)
	if parked < 1 || sum["completed"].(float64)+parked != 40 || sum["in_flight"] != 0.0 {
		t.Fatalf("summary %s: want some parked orders, the others completed", out)
	}
	code, out, errs = run(t, "list", "--store", db, "--status", "parked", "--json")
	if code != 0 || strings.Count(out, "\n") != int(parked) || !strings.Contains(out, "poison order") {
		t.Fatalf("list --status parked: exit %d, %q %q", code, out, errs)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &first); err != nil {
		t.Fatal(err)
	}
	id, _ := first["id"].(string)
	if code, out, errs := run(t, "cancel", id, "--store", db, "--pm", "order_fulfillment"); code != 0 || !strings.Contains(out, "cancelled") {
		t.Errorf("cancel %s: exit %d, %q %q", id, code, out, errs)
	}
}

// evoke worker keeps the inactivity timeout a demo run recorded in the
// store, without --timeout.
func TestWorkerKeepsRecordedTimeout(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "worker.db")
	if code, _, errs := run(t, "demo", "--store", db, "--orders", "10", "--timeout-rate", "0.2"); code != 0 {
		t.Fatalf("demo: exit %d: %s", code, errs)
	}
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{nil, "timeout=1s"},
		{[]string{"--timeout", "3s"}, "timeout=3s"},
		{[]string{"--timeout", "10ms"}, "timeout=1s"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		errs := &cancelOnMatch{match: "worker running", cancel: cancel}
		var out strings.Builder
		code := cli.Main(ctx, append([]string{"worker", "--store", db}, c.flags...), &out, errs)
		cancel()
		if code != 0 || !strings.Contains(errs.String(), c.want) {
			t.Errorf("worker %v: exit %d, stderr %q; want %q", c.flags, code, errs.String(), c.want)
		}
	}
}

// cancelOnMatch is a stderr that ends the command once it wrote match.
type cancelOnMatch struct {
	mu     sync.Mutex
	b      strings.Builder
	match  string
	cancel context.CancelFunc
}

func (w *cancelOnMatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.b.Write(p)
	if strings.Contains(w.b.String(), w.match) {
		w.cancel()
	}
	return n, err
}

func (w *cancelOnMatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
