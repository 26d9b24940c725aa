package cli_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
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
	code, out, errs = run(t, "bench", "--store", db, "--orders", "10", "--force", "--calibrate")
	if code != 0 || !strings.Contains(out, "sagas/s") || !strings.Contains(out, "step p99 ms") || !strings.Contains(out, "after OrderPlaced: p50 / p99 ms") || !strings.Contains(out, "CPU µs per saga") || !strings.Contains(out, "machine: 1-row tx/s") || !strings.Contains(out, "writer busy") || !strings.Contains(out, "per batch: prepare / wait / write ms") || !strings.Contains(out, "orders' appends: p50 / p99 / max ms") {
		t.Errorf("--force --calibrate table (exit %d): %s %s", code, out, errs)
	}
	// --timeline draws the run; with --json its windows are in the result.
	svg := filepath.Join(t.TempDir(), "timeline.svg")
	code, out, errs = run(t, "bench", "--store", db, "--orders", "20", "--force", "--timeline", svg, "--json")
	if code != 0 {
		t.Fatalf("--timeline: exit %d: %s", code, errs)
	}
	var tl struct {
		Timeline []struct{ Steps int } `json:"timeline"`
		CPU      float64               `json:"cpu_us_per_saga"`
		ByType   map[string]any        `json:"step_latency_by_trigger_ms"`
		Runtime  struct {
			Writes int     `json:"writes"`
			Busy   float64 `json:"writer_busy"`
		} `json:"runtime"`
	}
	if err := json.Unmarshal([]byte(out), &tl); err != nil || len(tl.Timeline) == 0 || tl.CPU <= 0 || tl.ByType["OrderPlaced"] == nil ||
		tl.Runtime.Writes <= 0 || tl.Runtime.Busy <= 0 {
		t.Errorf("--timeline --json result (%v): %s", err, out)
	}
	if b, err := os.ReadFile(svg); err != nil || !bytes.HasPrefix(b, []byte("<svg")) || !bytes.Contains(b, []byte("20 orders on sqlite")) {
		t.Errorf("timeline SVG (%v): %.200s", err, b)
	}
	fresh := filepath.Join(t.TempDir(), "fresh.db")
	if code, _, errs := run(t, "bench", "--store", fresh, "--orders", "5", "--timeline", filepath.Join(t.TempDir(), "missing", "t.svg")); code != 1 || !strings.Contains(errs, "missing") {
		t.Errorf("unwritable timeline path: exit %d, %s", code, errs)
	}
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an unwritable timeline path failed after the store was opened (%v)", err)
	}
	for _, args := range [][]string{{"bench", "--orders", "0"}, {"bench", "--inflight", "-1"}, {"bench", "extra"}} {
		if code, _, _ := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// --cpuprofile, --memprofile and --trace cover the timed run: the files
// are written and are what go tool pprof and go tool trace read.
func TestBenchProfiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prof, mem, tr := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof"), filepath.Join(dir, "run.trace")
	code, _, errs := run(t, "bench", "--store", filepath.Join(dir, "bench.db"), "--orders", "50", "--cpuprofile", prof, "--memprofile", mem, "--trace", tr, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, f := range []string{prof, mem} {
		p, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// A pprof profile is a gzipped protocol buffer.
		if len(p) < 2 || p[0] != 0x1f || p[1] != 0x8b {
			t.Errorf("%s is not gzipped: % x", filepath.Base(f), p[:min(len(p), 8)])
		}
	}
	trace, err := os.ReadFile(tr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(trace, []byte("go 1.")) {
		t.Errorf("trace does not start with its header: %q", trace[:min(len(trace), 16)])
	}
	b2 := filepath.Join(dir, "b2.db")
	if code, _, errs := run(t, "bench", "--store", b2, "--orders", "5", "--trace", filepath.Join(dir, "missing", "t")); code != 1 || !strings.Contains(errs, "missing") {
		t.Errorf("unwritable trace path: exit %d, %s", code, errs)
	}
	if _, err := os.Stat(b2); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an unwritable trace path failed after the store was opened (%v): it must fail before any work", err)
	}
}
