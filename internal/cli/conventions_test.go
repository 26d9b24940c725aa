package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/evoke-go/evoke"
)

// commandNames are every command of evoke.
var commandNames = []string{"demo", "worker", "bench", "list", "show", "graph", "retry", "skip", "cancel", "serve", "version"}

// Bad flags and arguments: each exits with its code and a message saying
// what is wrong, before any store is opened or created.
func TestUsageErrorsBeforeOpening(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "never.db")
	missingDir := filepath.Join(dir, "no", "such", "dir", "evoke.db")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"demo", "--fail-rate", "2"}, 2, "--fail-rate 2, --timeout-rate 0 and --poison-rate 0 must be fractions from 0 to 1 adding up to at most 1"},
		{[]string{"demo", "--fail-rate", "-0.1"}, 2, "must be fractions from 0 to 1"},
		{[]string{"demo", "--fail-rate", "0.6", "--timeout-rate", "0.6"}, 2, "adding up to at most 1"},
		{[]string{"demo", "--poison-rate", "1.5"}, 2, "--poison-rate 1.5 must be fractions"},
		{[]string{"demo", "--timeout-rate", "NaN"}, 2, "must be fractions"},
		{[]string{"demo", "--rate", "-3"}, 2, "--rate must be a number of orders per second, 0 or more (0: all at once), not -3"},
		{[]string{"demo", "--rate", "NaN"}, 2, "--rate must be a number of orders per second"},
		{[]string{"demo", "--orders", "0"}, 2, "--orders must be positive, not 0"},
		{[]string{"demo", "--first-order", "-1"}, 2, "--first-order must not be negative"},
		{[]string{"demo", "--stall", "0s"}, 2, "--stall must be positive"},
		{[]string{"demo", "--batch", "0"}, 2, "--batch and --dispatch-batch must be positive"},
		{[]string{"demo", "--dispatch-batch", "-1"}, 2, "--batch and --dispatch-batch must be positive"},
		{[]string{"demo", "--lease", "0s"}, 2, "--lease must be positive"},
		{[]string{"demo", "--log-level", "loud"}, 2, `--log-level "loud": want debug, info, warn or error`},
		{[]string{"demo", "--orders", "x"}, 2, `invalid value "x" for flag -orders`},
		{[]string{"demo", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"demo", "extra"}, 2, `unexpected arguments ["extra"] (evoke demo takes flags only`},
		{[]string{"worker", "--partitions", "0"}, 2, "--partitions must be positive"},
		{[]string{"worker", "--timeout", "-1s"}, 2, "--timeout must not be negative"},
		{[]string{"bench", "--rate", "-3"}, 2, "--rate must be a number of orders per second"},
		{[]string{"bench", "--batch", "0"}, 2, "must be positive"},
		{[]string{"skip", "--pm", "pm", "--event", "5", "order-1"}, 2, "--event 5 and instance order-1 do not combine"},
		{[]string{"skip", "--pm", "pm", "order-1", "--event", "5"}, 2, "--event 5 and instance order-1 do not combine"},
		{[]string{"skip", "--pm", "pm", "--event", "-3"}, 2, "--event must be a positive log position, not -3"},
		{[]string{"skip", "--pm", "pm", "--event", "0"}, 2, "--event must be a positive log position, not 0"},
		{[]string{"skip", "--event", "5"}, 2, "--event 5 needs --pm NAME"},
		{[]string{"retry", "order-1"}, 2, "needs --pm NAME: the process manager of instance order-1"},
		{[]string{"cancel", "--pm", "pm"}, 2, "needs --pm NAME and one instance ID, not 0 arguments"},
		{[]string{"show", "--pm", "pm", "a", "b"}, 2, "needs --pm NAME and one instance ID, not 2 arguments"},
		{[]string{"list", "--status", "done"}, 2, `--status: unknown status "done"`},
		{[]string{"list", "--limit", "0"}, 2, "--limit must be positive"},
		{[]string{"list", "--outcome", "done"}, 2, `--outcome: unknown outcome "done" (want one of [completed compensated timed_out cancelled])`},
		{[]string{"list", "--outcome", "timed_out", "--status", "running"}, 2, "--status running and --outcome timed_out do not combine"},
		{[]string{"list", "--after", "order-1"}, 2, "--after pages within one process manager: give --pm too"},
		{[]string{"graph"}, 2, "needs --pm NAME"},
		{[]string{"serve", "--addr", "7070"}, 2, `--addr "7070": want HOST:PORT`},
		{[]string{"graph", "--pm", "pm", "--format", "png"}, 2, `--format "png": want mermaid or dot`},
		{[]string{"graph", "--pm", "pm", "--instances", "0"}, 2, "--instances must be positive"},
		{[]string{"version", "extra"}, 2, "unexpected arguments"},
		{[]string{"nosuchcommand"}, 2, `unknown command "nosuchcommand"`},
	} {
		args := c.args
		if len(args) > 0 && args[0] != "nosuchcommand" && args[0] != "version" {
			args = append([]string{args[0], "--store", db}, args[1:]...)
		}
		code, out, errs := runBounded(t, args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d saying %q", args, code, errs, c.code, c.want)
		}
		if out != "" {
			t.Errorf("%v: printed %q on stdout", args, out)
		}
	}
	// Stores evoke cannot open, each with its own message: a URL of
	// another scheme, a directory, a path whose directory is missing.
	for _, cmd := range [][]string{{"demo"}, {"worker"}, {"bench"}, {"list"}, {"show", "--pm", "pm", "id"}, {"serve"}, {"cancel", "--pm", "pm", "id"}} {
		for _, c := range []struct {
			store string
			code  int
			want  string
		}{
			{"mysql://u:secret@127.0.0.1/db", 2, "--store mysql://u:***@127.0.0.1/db: evoke has no mysql store; --store takes a SQLite file (PATH or sqlite:PATH) or a postgres:// URL"},
			{dir, 1, fmt.Sprintf("--store %s is a directory, not a SQLite file", dir)},
			{"sqlite:" + dir, 1, "is a directory, not a SQLite file"},
			{missingDir, 1, fmt.Sprintf("directory %s does not exist", filepath.Dir(missingDir))},
		} {
			args := withStore(cmd, c.store)
			code, _, errs := runBounded(t, args...)
			if code != c.code || !strings.Contains(errs, c.want) || strings.Contains(errs, "unable to open database file") {
				t.Errorf("%v: exit %d, stderr %q; want exit %d saying %q", args, code, errs, c.code, c.want)
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the refused commands made %v", entries)
	}
}

// Help is asked for with --help, -h or `evoke help COMMAND`: it goes to
// stdout and exits 0, for every command; a bad flag prints the usage on
// stderr and exits 2.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{}, {"help"}, {"--help"}, {"-h"}} {
		code, out, errs := run(t, args...)
		if code != 0 || !strings.Contains(out, "Usage: evoke <command>") || errs != "" {
			t.Errorf("evoke %v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	for _, name := range commandNames {
		for _, args := range [][]string{{name, "--help"}, {name, "-h"}, {name, "-help"}, {"help", name}, {name, "x", "--help"}} {
			if name == "version" && len(args) > 2 {
				continue
			}
			code, out, errs := run(t, args...)
			if code != 0 || !strings.Contains(out, "Usage: evoke "+name) || errs != "" {
				t.Errorf("evoke %v: exit %d, stdout %q, stderr %q; want the usage on stdout, exit 0", args, code, out, errs)
			}
		}
		if name == "version" {
			continue
		}
		code, out, errs := run(t, name, "--no-such-flag")
		if code != 2 || out != "" || !strings.Contains(errs, "flag provided but not defined: -no-such-flag") || !strings.Contains(errs, "Usage: evoke "+name) {
			t.Errorf("evoke %s --no-such-flag: exit %d, stdout %q, stderr %q; want the usage on stderr, exit 2", name, code, out, errs)
		}
	}
}

// The defaults the help shows are the library's (evoke.DefaultConfig).
func TestHelpShowsLibraryDefaults(t *testing.T) {
	t.Parallel()
	def := evoke.DefaultConfig()
	for _, c := range []struct {
		cmd, flag string
		value     any
	}{
		{"demo", "-batch int", def.BatchSize},
		{"demo", "-dispatch-batch int", def.DispatchBatchSize},
		{"demo", "-lease duration", def.LeaseTTL},
		{"bench", "-batch int", def.BatchSize},
		{"bench", "-dispatch-batch int", def.DispatchBatchSize},
		{"bench", "-workers int", runtime.GOMAXPROCS(0)},
		{"worker", "-partitions int", def.Partitions},
		{"worker", "-lease duration", def.LeaseTTL},
	} {
		_, out, _ := run(t, c.cmd, "--help")
		_, after, ok := strings.Cut(out, "  "+c.flag+"\n")
		line, _, _ := strings.Cut(after, "\n")
		if want := fmt.Sprintf("(default %v)", c.value); !ok || !strings.HasSuffix(line, want) {
			t.Errorf("evoke %s --help: %s is documented as %q, want it to end %q", c.cmd, c.flag, line, want)
		}
	}
	if def.BatchSize != 2048 || def.DispatchBatchSize != 1024 {
		t.Errorf("DefaultConfig %+v disagrees with Config's documented defaults", def)
	}
}

// Flags may follow the arguments; "--" ends the flags.
func TestFlagsAnywhere(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "anywhere.db")
	if code, _, errs := run(t, "demo", "--orders", "3", "--store", db); code != 0 {
		t.Fatalf("demo: exit %d: %s", code, errs)
	}
	for _, args := range [][]string{
		{"show", "order-0000001", "--pm", "order_fulfillment", "--store", db},
		{"show", "--store", db, "order-0000001", "--pm", "order_fulfillment"},
		{"show", "--store", db, "--pm", "order_fulfillment", "--", "order-0000001"},
		{"show", "--json", "--store", db, "order-0000001", "--pm=order_fulfillment"},
	} {
		code, out, errs := run(t, args...)
		if code != 0 || !strings.Contains(out, "order-0000001") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	// After "--" a flag is an argument.
	code, _, errs := run(t, "show", "--store", db, "--pm", "order_fulfillment", "--", "order-0000001", "--json")
	if code != 2 || !strings.Contains(errs, "not 2 arguments") {
		t.Errorf("show … -- ID --json: exit %d, %q", code, errs)
	}
}

// evoke version names the module version, the VCS revision (or why there
// is none) and the Go version.
func TestVersion(t *testing.T) {
	t.Parallel()
	code, out, errs := run(t, "version")
	if code != 0 || errs != "" || !strings.HasPrefix(out, "evoke ") || !strings.Contains(out, runtime.Version()) ||
		!(strings.Contains(out, "revision ") || strings.Contains(out, "no VCS revision") || strings.Contains(out, "a dependency of")) {
		t.Errorf("version: exit %d, %q %q", code, out, errs)
	}
}

// evoke list --outcome selects finished instances by how they ended, and
// --json shows the outcome; the counts agree with the demo's summary.
func TestListOutcome(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "outcome.db")
	code, out, errs := run(t, "demo", "--store", db, "--orders", "100", "--fail-rate", "0.1", "--timeout-rate", "0.1", "--json")
	if code != 0 {
		t.Fatalf("demo: exit %d: %s", code, errs)
	}
	var sum map[string]any
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	compensated, timedOut := int(sum["compensated"].(float64)), int(sum["timed_out"].(float64))
	if compensated == 0 || timedOut == 0 {
		t.Fatalf("demo summary %s: want compensated and timed-out orders", out)
	}
	for outcome, want := range map[string]int{"compensated": compensated, "timed_out": timedOut, "completed": 100 - compensated - timedOut, "cancelled": 0} {
		code, out, errs := run(t, "list", "--store", db, "--outcome", outcome, "--limit", "7", "--json")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if out == "" {
			lines = nil
		}
		if code != 0 || len(lines) != min(want, 7) {
			t.Errorf("list --outcome %s --limit 7: exit %d, %d instances, want %d (%s)", outcome, code, len(lines), min(want, 7), errs)
		}
		for _, l := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil || m["outcome"] != outcome {
				t.Errorf("list --outcome %s: %s (%v)", outcome, l, err)
			}
		}
	}
	code, out, _ = run(t, "list", "--store", db, "--outcome", "timed_out", "--limit", "1000")
	rows := 0
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 3 && f[3] == "timed_out" {
			rows++ // the OUTCOME column
		}
	}
	if code != 0 || rows != timedOut {
		t.Errorf("list --outcome timed_out: exit %d:\n%s", code, out)
	}
}
