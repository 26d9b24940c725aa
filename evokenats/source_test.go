package evokenats

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/remotetest"
)

// A message delivered again, and a consumer restarted, change no state
// twice and lose nothing.
func TestSourceRedeliveryAndRestart(t *testing.T) {
	t.Parallel()
	_, js := connect(t)
	remotetest.EachStore(t, func(t *testing.T, spec remotetest.StoreSpec, st evokestore.Store) {
		ctx := context.Background()
		stream := newStream(t, js)
		rt := remotetest.StartRuntime(t, st)
		publishOrder(t, js, stream, "x", 0, 20)
		src, err := NewSource(rt, js, SourceConfig{Stream: stream, BatchSize: 7})
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitPosition(t, rt, stream, 21)
		if err := src.Stop(ctx); err != nil {
			t.Fatal(err)
		}

		// Redelivery: every message, read again from the start, is
		// handed to the source twice.
		publishOrder(t, js, stream, "x", 21, 30)
		cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if len(msgs) != 31 {
			t.Fatalf("fetched %d messages, want 31", len(msgs))
		}
		for range 2 {
			if err := src.ingest(ctx, msgs); err != nil {
				t.Fatal(err)
			}
		}
		waitPosition(t, rt, stream, 31)

		// Restart: a new source reads on from the stored position.
		publishOrder(t, js, stream, "x", 31, 40)
		publish(t, js, stream, remotetest.EventDone, remotetest.Data{ID: "x"})
		src2, err := NewSource(rt, js, SourceConfig{Stream: stream})
		if err != nil {
			t.Fatal(err)
		}
		if err := src2.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer src2.Stop(ctx)
		waitPosition(t, rt, stream, 42)
		checkOnce(t, st, stream, "x", 40, 42)
	})
}

const (
	childEnv  = "EVOKE_NATS_CHILD"
	childStop = 3 // the child stops before ingesting its third batch
)

// runChild is the child process of TestSourceSIGKILL: it ingests the
// stream named in childEnv into the store it names, in batches of 5, and
// before the third batch's commit reports the batch's last sequence on
// stdout and waits to be killed.
func runChild() int {
	parts := strings.SplitN(os.Getenv(childEnv), "#", 3)
	spec, err := remotetest.ParseSpec(parts[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	st, err := spec.Open(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	rt, err := evoke.New(st, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	nc, err := nats.Connect(parts[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	js, _ := jetstream.New(nc)
	src, _ := NewSource(rt, js, SourceConfig{Stream: parts[1], BatchSize: 5})
	batches := 0
	src.beforeIngest = func(b []evoke.SourcedEvent) {
		if batches++; batches == childStop {
			fmt.Printf("delivered %d %d\n", b[0].Position, b[len(b)-1].Position)
			select {}
		}
	}
	err = src.Run(ctx)
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// A runtime killed with SIGKILL between the source's delivery and the
// commit ingests, once restarted, every message once.
func TestSourceSIGKILL(t *testing.T) {
	t.Parallel()
	_, js := connect(t)
	remotetest.EachStore(t, func(t *testing.T, spec remotetest.StoreSpec, st evokestore.Store) {
		ctx := context.Background()
		stream := newStream(t, js)
		publishOrder(t, js, stream, "k", 0, 30)
		publish(t, js, stream, remotetest.EventDone, remotetest.Data{ID: "k"})

		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+os.Getenv("EVOKE_TEST_NATS_URL")+"#"+stream+"#"+spec.String())
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			_ = cmd.Process.Kill()
			t.Fatalf("child: %v", err)
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		_ = cmd.Wait()
		// The batch in flight when the child was killed: its first and last
		// positions. (JetStream may deliver fewer than BatchSize at a time,
		// so where it starts depends on the earlier batches.)
		var first, last int64
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "delivered %d %d", &first, &last); err != nil {
			t.Fatalf("child said %q: %v", line, err)
		}

		rt := remotetest.StartRuntime(t, st)
		pos, _, err := rt.SourcePosition(ctx, stream, 0)
		if err != nil {
			t.Fatal(err)
		}
		if pos != first-1 || pos <= 0 {
			t.Fatalf("after the kill: position %d, want %d: every batch before the one in flight (%d..%d) committed, and not that one", pos, first-1, first, last)
		}
		src, err := NewSource(rt, js, SourceConfig{Stream: stream})
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer src.Stop(ctx)
		waitPosition(t, rt, stream, 32)
		checkOnce(t, st, stream, "k", 30, 32)
	})
}

// Two sources of one stream on one store, as on two nodes, append each
// message once.
func TestTwoSourcesOneStore(t *testing.T) {
	t.Parallel()
	_, js := connect(t)
	remotetest.EachStore(t, func(t *testing.T, spec remotetest.StoreSpec, st evokestore.Store) {
		ctx := context.Background()
		stream := newStream(t, js)
		publishOrder(t, js, stream, "two", 0, 200)
		publish(t, js, stream, remotetest.EventDone, remotetest.Data{ID: "two"})
		rt := remotetest.StartRuntime(t, st)
		for k := range 2 {
			// Each with a runtime (and, on PostgreSQL, a store) of its own.
			node := rt
			if k == 1 {
				var err error
				if node, err = evoke.New(remotetest.OpenSpec(t, spec), remotetest.Config()); err != nil {
					t.Fatal(err)
				}
			}
			src, err := NewSource(node, js, SourceConfig{Stream: stream, BatchSize: 3 + k*4})
			if err != nil {
				t.Fatal(err)
			}
			if err := src.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer src.Stop(ctx)
		}
		waitPosition(t, rt, stream, 202)
		checkOnce(t, st, stream, "two", 200, 202)
	})
}
