package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evoke-go/evoke/internal/cli"
)

// run runs evoke with args; what it writes to stdout and stderr it returns.
// (Main serialises its own writes: the runtime logs from its goroutines.)
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// The README's main job: evoke demo runs to completion, prints a JSON
// summary with the documented keys, and a second run on the same file
// places new orders without redoing anything.
func TestDemoJSONAndRerun(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "demo.db")
	code, out, errs := run(t, "demo", "--store", db, "--orders", "300", "--fail-rate", "0.1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(out), &first); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	for _, k := range []string{"orders", "completed", "events", "commands", "seconds", "compensated", "timed_out", "parked"} {
		if _, ok := first[k]; !ok {
			t.Errorf("JSON summary lacks %q: %s", k, out)
		}
	}
	if first["orders"] != 300.0 || first["completed"] != 300.0 || first["parked"] != 0.0 {
		t.Errorf("summary %s", out)
	}
	if c := first["compensated"].(float64); c < 15 || c > 45 {
		t.Errorf("compensated %v of 300 at a 10%% fail rate", c)
	}
	// Each clean order: placed + 3 commands with an event each; each
	// declined order: placed + 1 rejected command and its rejection record;
	// plus the run's own record.
	c := first["compensated"].(float64)
	if first["events"] != 300+(300-c)*3+c+1 || first["commands"] != (300-c)*3+c {
		t.Errorf("events %v, commands %v with %v compensated", first["events"], first["commands"], c)
	}

	code, out, errs = run(t, "demo", "--store", "sqlite:"+db, "--orders", "100", "--json")
	if code != 0 {
		t.Fatalf("second run: exit %d: %s", code, errs)
	}
	var second map[string]any
	if err := json.Unmarshal([]byte(out), &second); err != nil {
		t.Fatal(err)
	}
	if second["first_order"] != 301.0 || second["completed"] != 100.0 || second["commands"] != 300.0 {
		t.Errorf("second run %s: want orders 301.. completed with 300 new commands", out)
	}
}

func TestDemoTableAndUsageErrors(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "demo.db")
	code, out, _ := run(t, "demo", "--store", db, "--orders", "20")
	if code != 0 || !strings.Contains(out, "completed") || !strings.Contains(out, "sagas/s") {
		t.Errorf("table output (exit %d):\n%s", code, out)
	}
	for _, args := range [][]string{
		{"demo", "--orders", "0"},
		{"demo", "--bogus"},
		{"demo", "extra"},
		{"nosuchcommand"},
	} {
		if code, _, _ := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, _, errs := run(t, "demo", "--store", db, "--fail-rate", "0.8", "--timeout-rate", "0.5"); code != 2 || !strings.Contains(errs, "fractions") {
		t.Errorf("bad rates: exit %d, %s", code, errs)
	}
	if code, _, errs := run(t, "demo", "--store", "postgres://u:secret@127.0.0.1:1/x?connect_timeout=1"); code != 1 || strings.Contains(errs, "secret") || !strings.Contains(errs, "u:***@") {
		t.Errorf("unreachable postgres store: exit %d, %q (must fail clearly without showing the password)", code, errs)
	}
}

// The demo on PostgreSQL, in a schema of its own.
func TestDemoOnPostgres(t *testing.T) {
	t.Parallel()
	_, store, _ := pgSchema(t, "evoke_cli")
	code, out, errs := run(t, "demo", "--store", store, "--orders", "200", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var sum map[string]any
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	if sum["store"] != "postgres" || sum["completed"] != 200.0 || sum["commands"] != 600.0 {
		t.Errorf("summary %s", out)
	}
}

// pgSchema returns the test PostgreSQL's URL, a --store URL naming a new
// schema on it, and the schema, dropped when t ends; or skips t.
func pgSchema(t *testing.T, prefix string) (base, store, schema string) {
	t.Helper()
	base = os.Getenv("EVOKE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("set EVOKE_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
	}
	schema = fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		if conn, err := pgx.Connect(ctx, base); err == nil {
			_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			_ = conn.Close(ctx)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base, base + sep + "evoke_schema=" + schema, schema
}
