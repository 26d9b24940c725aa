package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// evoke bench runs from an empty file, prints the documented JSON keys,
// and refuses a used file without --force.
func TestBench(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "bench.db")
	code, out, errs := run(t, "bench", "--store", db, "--orders", "100", "--inflight", "50", "--batch", "32", "--dispatch-batch", "32", "--workers", "2", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	for _, k := range []string{"store", "orders", "completed", "sagas_per_sec", "events_per_sec", "step_latency_ms", "peak_rss_mb"} {
		if _, ok := res[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, out)
		}
	}
	if res["completed"] != 100.0 || res["inflight"] != 50.0 || res["batch"] != 32.0 || res["workers"] != 2.0 {
		t.Errorf("result %s", out)
	}
	if code, _, errs := run(t, "bench", "--store", db, "--orders", "10"); code != 1 || !strings.Contains(errs, "--force") {
		t.Errorf("used file without --force: exit %d, %s", code, errs)
	}
	code, out, errs = run(t, "bench", "--store", db, "--orders", "10", "--force")
	if code != 0 || !strings.Contains(out, "sagas/s") || !strings.Contains(out, "step p99 ms") {
		t.Errorf("--force table (exit %d): %s %s", code, out, errs)
	}
	for _, args := range [][]string{{"bench", "--orders", "0"}, {"bench", "--inflight", "-1"}, {"bench", "extra"}} {
		if code, _, _ := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
