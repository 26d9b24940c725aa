package demo_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokepg"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/examples/orderfulfillment"
	"github.com/evoke-go/evoke/internal/demo"
	"github.com/evoke-go/evoke/internal/engine"
)

// pgSchema returns a fresh schema on the test PostgreSQL, its --store URL,
// and the server's URL; or skips the test.
func pgSchema(t *testing.T, prefix string) (store, base, schema string) {
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
	if slices.Contains([]byte(base), '?') {
		sep = "&"
	}
	return base + sep + "evoke_schema=" + schema, base, schema
}

func buildEvoke(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "evoke")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/evoke-go/evoke/cmd/evoke").CombinedOutput(); err != nil {
		t.Fatalf("build evoke: %v\n%s", err, out)
	}
	return bin
}

// Three worker processes share one PostgreSQL database and 5,000
// orders; one is killed with SIGKILL mid-run, another paused (SIGSTOP) past
// its lease and resumed. Every saga completes exactly once, no command takes
// effect twice, and no write under a lease commits after the lease moved
// on: in every partition, lease tokens only grow in commit order.
func TestMultiNodeKillAndPause(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test skipped in -short mode")
	}
	url, base, schema := pgSchema(t, "evoke_multinode")
	const orders, partitions = 5000, 16
	const lease = 2 * time.Second
	ctx := context.Background()
	bin := buildEvoke(t)

	st, err := evokepg.Open(ctx, base, &evokepg.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	placer, err := evoke.New(st, &evoke.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.Register(placer, 0); err != nil {
		t.Fatal(err)
	}

	logs := t.TempDir()
	workers := map[string]*exec.Cmd{}
	for _, n := range []string{"w1", "w2", "w3"} {
		cmd := exec.Command(bin, "worker", "--store", url, "--node", n, "--partitions", fmt.Sprint(partitions), "--lease", lease.String())
		f, err := os.Create(filepath.Join(logs, n+".log"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		workers[n] = cmd
	}
	defer func() {
		for _, c := range workers {
			_ = c.Process.Signal(syscall.SIGCONT)
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		if t.Failed() {
			for _, n := range []string{"w1", "w2", "w3"} {
				b, _ := os.ReadFile(filepath.Join(logs, n+".log"))
				t.Logf("%s log (tail):\n%s", n, tail(b, 3000))
			}
		}
	}()
	completed := func() int64 {
		s, err := st.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s.Instances[orderfulfillment.Name][evokestore.StatusCompleted]
	}
	waitFor := func(what string, limit time.Duration, cond func() bool) {
		t.Helper()
		end := time.Now().Add(limit)
		for !cond() {
			if time.Now().After(end) {
				t.Fatalf("timed out after %v waiting until %s (completed %d)", limit, what, completed())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// The orders are placed once every worker holds partitions: the first
	// worker up takes them all and hands them out as the others show up,
	// and a fast worker could otherwise finish the run alone.
	waitFor("every worker holds partitions", time.Minute, func() bool {
		for _, n := range []string{"w1", "w2", "w3"} {
			b, _ := os.ReadFile(filepath.Join(logs, n+".log"))
			if !regexp.MustCompile(`msg="partition leases" node=` + n + ` partitions="?\[[0-9]`).Match(b) {
				return false
			}
		}
		return true
	})
	if err := demo.Place(ctx, placer, 1, orders, false, 0, 0); err != nil {
		t.Fatal(err)
	}
	waitFor("10% completed", time.Minute, func() bool { return completed() >= orders/10 })
	if err := workers["w1"].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = workers["w1"].Wait()
	delete(workers, "w1")
	t.Logf("killed w1 at %d completed", completed())

	waitFor("30% completed", time.Minute, func() bool { return completed() >= 3*orders/10 })
	if err := workers["w2"].Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stoppedAt := completed()
	// Paused past its lease: w3 takes every partition over meanwhile.
	waitFor("w3 works on without w1 and w2", time.Minute, func() bool { return completed() >= stoppedAt+int64(orders/10) })
	time.Sleep(2 * lease)
	if err := workers["w2"].Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("paused w2 from %d to %d completed", stoppedAt, completed())

	waitFor("every order completed", 2*time.Minute, func() bool { return completed() == orders })
	for n, c := range workers {
		if err := c.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := c.Wait(); err != nil {
			t.Errorf("%s exited with %v", n, err)
		}
		delete(workers, n)
	}
	// Outcomes of the last commands may still be in the outbox of a
	// stopped worker; run a last node to drain it.
	rt := startNode(t, st, &evoke.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NodeID: "drain", Partitions: partitions, LeaseTTL: lease})
	waitFor("the outbox drained", time.Minute, func() bool {
		idle, err := rt.Idle(ctx)
		return err == nil && idle
	})
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	histories := verifyOrders(t, st, orders)

	// Fencing: per partition, history in commit (id) order carries
	// non-decreasing lease tokens, and each token belongs to one node.
	type rec struct {
		id    int64
		token int64
		node  string
	}
	byPart := map[int][]rec{}
	nodes := map[string]bool{}
	for id, hs := range histories {
		p := engine.PartitionOf(id, partitions)
		for _, h := range hs {
			byPart[p] = append(byPart[p], rec{h.ID, h.LeaseToken, h.Node})
			nodes[h.Node] = true
		}
	}
	for p, rs := range byPart {
		slices.SortFunc(rs, func(a, b rec) int { return int(a.id - b.id) })
		owner := map[int64]string{}
		for i, r := range rs {
			if r.token == 0 {
				t.Fatalf("partition %d: a step without a lease token", p)
			}
			if i > 0 && r.token < rs[i-1].token {
				t.Fatalf("partition %d: %s committed under token %d after %s had token %d: a fenced-off node wrote", p, r.node, r.token, rs[i-1].node, rs[i-1].token)
			}
			if o, ok := owner[r.token]; ok && o != r.node {
				t.Fatalf("partition %d: token %d used by %s and %s", p, r.token, o, r.node)
			}
			owner[r.token] = r.node
		}
	}
	t.Logf("steps by nodes %v", keys(nodes))
	w2, _ := os.ReadFile(filepath.Join(logs, "w2.log"))
	for _, line := range strings.Split(string(w2), "\n") {
		if strings.Contains(line, "lease") {
			t.Logf("w2: %s", line)
		}
	}
	if !nodes["w1"] || !nodes["w2"] || !nodes["w3"] {
		t.Errorf("not every worker did work: %v", keys(nodes))
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
