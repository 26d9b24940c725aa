package cli_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evoke-go/evoke/internal/cli"
)

// The commands that read or act on a store, with their arguments after
// --store: each opens an existing store only.
var existingStoreCommands = [][]string{
	{"list"},
	{"show", "--pm", "pm", "id"},
	{"graph", "--pm", "pm"},
	{"serve", "--addr", "127.0.0.1:0"},
	{"retry", "--pm", "pm", "id"},
	{"skip", "--pm", "pm", "id"},
	{"skip", "--pm", "pm", "--event", "3"},
	{"cancel", "--pm", "pm", "id"},
	{"replay", "--pm", "order_fulfillment"},
}

// runBounded runs a command line like run, ending it after 10 seconds: a
// serve that wrongly started must not hang the test.
func runBounded(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errb strings.Builder
	code := cli.Main(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// withStore returns the command line of cmd on store.
func withStore(cmd []string, store string) []string {
	return append([]string{cmd[0], "--store", store}, cmd[1:]...)
}

// Bad command lines: each exits with its code and says what is wrong,
// before it opens (or creates) anything. The store URLs name an unreachable
// server: a command that tried to connect would fail differently.
func TestBadInput(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "never.db")
	const pg = "postgres://u:secret@127.0.0.1:1/postgres"
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve", "--store", db, "--token", "a"}, 2, "--token must be at least 16 characters"},
		{[]string{"serve", "--store", db, "--token", "0123456789abcde"}, 2, "--token must be at least 16 characters"},
		{[]string{"serve", "--store", db, "--read-only", "--token", "abc"}, 2, "--read-only and --token do not combine"},
		{[]string{"serve", "--store", db, "--read-only", "--token", "0123456789abcdef"}, 2, "--read-only and --token do not combine"},
		{[]string{"list", "--store", pg + "?evoke_schema=weird;x"}, 2, "malformed query: invalid semicolon separator in query"},
		{[]string{"list", "--store", pg + "?sslmode=disable;evoke_schema=x"}, 2, "malformed query"},
		{[]string{"list", "--store", pg + "?evoke_schema=weird%3Bx"}, 2, `invalid schema name "weird;x"`},
		{[]string{"list", "--store", pg + "?evoke_schema=Has-Dash"}, 2, `invalid schema name "Has-Dash"`},
		{[]string{"list", "--store", pg + "?evoke_schema=Upper"}, 2, `invalid schema name "Upper"`},
		{[]string{"list", "--store", pg + "?evoke_schema=" + strings.Repeat("x", 64)}, 2, "invalid schema name"},
		{[]string{"list", "--store", pg + "?evoke_schema=a&evoke_schema=b"}, 2, "evoke_schema given 2 times"},
		{[]string{"list", "--store", "postgres://u:secret@[::1/x"}, 2, "--store postgres://u:***@[::1/x"},
		{[]string{"show", "--store", pg + "?evoke_schema=Has-Dash", "--pm", "pm", "id"}, 2, "invalid schema name"},
		{[]string{"serve", "--store", pg + "?evoke_schema=weird;x"}, 2, "malformed query"},
		{[]string{"cancel", "--store", pg + "?evoke_schema=1st", "--pm", "pm", "id"}, 2, "invalid schema name"},
		{[]string{"demo", "--store", pg + "?evoke_schema=Has-Dash"}, 2, "invalid schema name"},
		{[]string{"worker", "--store", pg + "?evoke_schema=weird;x"}, 2, "malformed query"},
		{[]string{"bench", "--store", pg + "?evoke_schema=weird;x"}, 2, "malformed query"},
	} {
		code, out, errs := runBounded(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d saying %q", c.args, code, errs, c.code, c.want)
		}
		if strings.Contains(errs, "secret") || out != "" {
			t.Errorf("%v: shows the password or prints %q", c.args, out)
		}
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("a refused serve made %s (%v)", db, err)
	}
}

// Every command but demo, bench and worker opens an existing SQLite store
// only: a mistyped path is an error, and no file appears.
func TestMissingSQLiteStoreIsNotCreated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, cmd := range existingStoreCommands {
		for _, db := range []string{filepath.Join(dir, "typo.db"), "sqlite:" + filepath.Join(dir, "typo.db")} {
			code, out, errs := runBounded(t, withStore(cmd, db)...)
			if code != 1 || !strings.Contains(errs, "no such file: evokestore: no evoke store") || !strings.Contains(errs, "evoke demo, bench and worker create a store") {
				t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 naming the missing store", cmd, code, out, errs)
			}
		}
	}
	// A file that is not an evoke store is refused, and left as it was.
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run(t, "list", "--store", empty); code != 1 || !strings.Contains(errs, "holds no evoke tables") {
		t.Errorf("list on an empty file: exit %d, %q", code, errs)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files after the refused commands: %v, want only empty.db", entries)
	}
	if fi, _ := os.Stat(empty); fi.Size() != 0 {
		t.Errorf("empty.db was written: %d bytes", fi.Size())
	}
}

// On PostgreSQL the same commands neither create a missing schema nor
// evoke's tables in public.
func TestMissingPostgresSchemaIsNotCreated(t *testing.T) {
	t.Parallel()
	base, store, schema := pgSchema(t, "evoke_cli_missing") // dropped at the end if the test fails
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// evoke's tables and functions in public or in the schema.
	evokeTables := func() (n int) {
		t.Helper()
		names := []string{"evoke_migrations", "events", "instances", "outbox", "history", "checkpoints", "command_outcomes",
			"deadlines", "held_events", "leases", "nodes"}
		if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = $1 OR schemaname = 'public' AND tablename = ANY($2))
	+ (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname IN ('public', $1) AND p.proname LIKE 'evoke%')`,
			schema, names).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := evokeTables()
	for _, cmd := range existingStoreCommands {
		code, out, errs := runBounded(t, withStore(cmd, store)...)
		if code != 1 || !strings.Contains(errs, "the schema does not exist: evokestore: no evoke store") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 naming the missing schema", cmd, code, out, errs)
		}
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil || exists {
		t.Errorf("schema %s exists after the commands (%v)", schema, err)
	}
	if n := evokeTables(); n != before {
		t.Errorf("%d of evoke's tables and functions in public and %s, %d before", n, schema, before)
	}
}

// serve warns on stderr when it listens on an address other computers can
// reach.
func TestServeWarnsOffLoopback(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "serve.db")
	if code, _, errs := run(t, "demo", "--store", db, "--orders", "5"); code != 0 {
		t.Fatalf("demo: exit %d: %s", code, errs)
	}
	serve := func(addr string) (code int, out, errs string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		o := &cancelOnWrite{cancel: cancel}
		var e strings.Builder
		code = cli.Main(ctx, []string{"serve", "--store", db, "--addr", addr}, o, &e)
		return code, o.String(), e.String()
	}
	code, out, errs := serve("0.0.0.0:0")
	if code != 0 || !strings.Contains(out, "?token=") || !strings.Contains(errs, "WARNING") || !strings.Contains(errs, "not a loopback address") ||
		!strings.Contains(errs, "plain HTTP") {
		t.Errorf("serve on 0.0.0.0: exit %d, stdout %q, stderr %q; want a warning", code, out, errs)
	}
	if code, out, errs := serve("127.0.0.1:0"); code != 0 || !strings.Contains(out, "?token=") || errs != "" {
		t.Errorf("serve on 127.0.0.1: exit %d, stdout %q, stderr %q; want no warning", code, out, errs)
	}
}

// cancelOnWrite is a stdout that ends the command once it printed its
// first line (serve's address).
type cancelOnWrite struct {
	mu     sync.Mutex
	b      strings.Builder
	cancel context.CancelFunc
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.cancel()
	return w.b.Write(p)
}

func (w *cancelOnWrite) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

var _ io.Writer = (*cancelOnWrite)(nil)

// A relative SQLite path is opened where it is named, in every spelling
// --store takes: PATH, sqlite:PATH and sqlite://PATH.
func TestRelativeSQLiteSpellings(t *testing.T) {
	t.Chdir(t.TempDir())
	if code, _, errs := run(t, "demo", "--store", "rel.db", "--orders", "5"); code != 0 {
		t.Fatalf("demo: exit %d: %s", code, errs)
	}
	for _, spec := range []string{"rel.db", "sqlite:rel.db", "sqlite://rel.db"} {
		if code, out, errs := run(t, "list", "--store", spec, "--limit", "1"); code != 0 || !strings.Contains(out, "order_fulfillment") {
			t.Errorf("list --store %s: exit %d, %q %q; want the demo's instances", spec, code, out, errs)
		}
	}
}
