package evokekafka

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	"github.com/evoke-go/evoke/internal/remotetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m)
}

const topic = "orders"

// cluster starts franz-go's in-process Kafka cluster with topic in two
// partitions, and returns a producer and the options to reach it.
func cluster(t *testing.T) (*kgo.Client, []kgo.Opt) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.FetchMaxWait(50 * time.Millisecond)}
	pr, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pr.Close)
	return pr, opts
}

// produce produces events of the remote process manager for instance id
// to partition p: Ordered if from is 0, then ticks from..to.
func produce(t *testing.T, pr *kgo.Client, p int32, id string, from, to int) {
	t.Helper()
	rec := func(typ string, d remotetest.Data) *kgo.Record {
		return &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, `{"id":%q,"verdict":%q,"n":%d}`, d.ID, d.Verdict, d.N),
			Headers: []kgo.RecordHeader{{Key: HeaderEventType, Value: []byte(typ)}, {Key: "tenant", Value: []byte("t-1")}}}
	}
	var recs []*kgo.Record
	if from == 0 {
		recs = append(recs, rec(remotetest.EventOrdered, remotetest.Data{ID: id, Verdict: remotetest.Accept}))
		from = 1
	}
	for n := from; n <= to; n++ {
		recs = append(recs, rec(remotetest.EventTick, remotetest.Data{ID: id, N: n}))
	}
	if to < 0 {
		recs = append(recs, rec(remotetest.EventDone, remotetest.Data{ID: id}))
	}
	if err := pr.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func waitPosition(t *testing.T, s *Source, p int32, pos int64) {
	t.Helper()
	evoketest.Eventually(t, 60*time.Second, fmt.Sprintf("partition %d at %d", p, pos), func() bool {
		got, err := s.Position(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		return got == pos
	})
}

// A record delivered again and a restarted source change no state twice
// and lose nothing; each partition's offset is stored in evoke's store,
// with its events.
func TestSourceRedeliveryAndRestart(t *testing.T) {
	t.Parallel()
	remotetest.EachStore(t, func(t *testing.T, spec remotetest.StoreSpec, st evokestore.Store) {
		ctx := context.Background()
		pr, opts := cluster(t)
		rt := remotetest.StartRuntime(t, st)
		produce(t, pr, 0, "x", 0, 20)
		produce(t, pr, 1, "y", 0, 10)
		src, err := NewSource(rt, opts, SourceConfig{Topic: topic})
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitPosition(t, src, 0, 21)
		waitPosition(t, src, 1, 11)
		if err := src.Stop(ctx); err != nil {
			t.Fatal(err)
		}

		// Redelivery: partition 0's records, read from the start, are
		// handed to the source twice.
		produce(t, pr, 0, "x", 21, 30)
		cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))...)
		if err != nil {
			t.Fatal(err)
		}
		var recs []*kgo.Record
		for len(recs) < 31 {
			fs := cl.PollFetches(ctx)
			if err := fs.Err(); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, fs.Records()...)
		}
		cl.Close()
		for range 2 {
			if err := src.ingest(ctx, 0, recs); err != nil {
				t.Fatal(err)
			}
		}
		if pos, _ := src.Position(ctx, 0); pos != 31 {
			t.Fatalf("partition 0 at %d, want 31", pos)
		}

		// Restart: a new source reads on from the stored offsets.
		produce(t, pr, 0, "x", 31, 40)
		produce(t, pr, 0, "x", 41, -1)
		produce(t, pr, 1, "y", 11, -1)
		src2, err := NewSource(rt, opts, SourceConfig{Topic: topic})
		if err != nil {
			t.Fatal(err)
		}
		if err := src2.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer src2.Stop(ctx)
		waitPosition(t, src2, 0, 42)
		waitPosition(t, src2, 1, 12)
		for _, c := range []struct {
			id     string
			p, n   int
			events int
		}{{"x", 0, 40, 42}, {"y", 1, 10, 12}} {
			in := remotetest.WaitStatus(t, st, c.id, evokestore.StatusCompleted)
			want := fmt.Sprintf(`{"id":%q,"status":"done","ticks":%d,"sum":%d}`, c.id, c.n, c.n*(c.n+1)/2)
			if string(in.State) != want {
				t.Fatalf("%s: state %s, want %s", c.id, in.State, want)
			}
			stream := fmt.Sprintf("%s-%d", topic, c.p)
			evs, err := st.ReadStream(ctx, stream, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != c.events {
				t.Fatalf("stream %s holds %d events, want %d", stream, len(evs), c.events)
			}
			for i, e := range evs {
				if e.ID != evoke.SourceEventID(topic, c.p, int64(i+1)) || !strings.Contains(string(e.Values), `"tenant":"t-1"`) {
					t.Fatalf("event %d of %s: %+v", i, stream, e)
				}
			}
		}
	})
}

const childEnv = "EVOKE_KAFKA_CHILD"

// runChild is the child process of TestSourceSIGKILL: it ingests the topic
// from the cluster and into the store that childEnv names, and before
// committing its second batch (there is one a partition at least) reports
// the batch's partition and position on stdout and waits to be killed.
func runChild() int {
	parts := strings.SplitN(os.Getenv(childEnv), "#", 2)
	spec, err := remotetest.ParseSpec(parts[1])
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
	opts := []kgo.Opt{kgo.SeedBrokers(strings.Split(parts[0], ",")...)}
	src, _ := NewSource(rt, opts, SourceConfig{Topic: topic})
	batches := 0
	src.beforeIngest = func(p int32, b []evoke.SourcedEvent) {
		if batches++; batches == 2 {
			fmt.Printf("%d %d\n", p, b[len(b)-1].Position)
			select {}
		}
	}
	err = src.Run(ctx)
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// A process killed with SIGKILL between the delivery of a batch and its
// commit ingests, once restarted, every record once.
func TestSourceSIGKILL(t *testing.T) {
	t.Parallel()
	remotetest.EachStore(t, func(t *testing.T, spec remotetest.StoreSpec, st evokestore.Store) {
		ctx := context.Background()
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.FetchMaxWait(50 * time.Millisecond)}
		pr, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		produce(t, pr, 0, "k", 0, 20)
		produce(t, pr, 0, "k", 21, -1)
		produce(t, pr, 1, "m", 0, 20)
		produce(t, pr, 1, "m", 21, -1)

		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(c.ListenAddrs(), ",")+"#"+spec.String())
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
		f := strings.Fields(line)
		p, _ := strconv.Atoi(f[0])
		delivered, _ := strconv.ParseInt(f[1], 10, 64)

		rt := remotetest.StartRuntime(t, st)
		src, err := NewSource(rt, opts, SourceConfig{Topic: topic})
		if err != nil {
			t.Fatal(err)
		}
		if pos, err := src.Position(ctx, int32(p)); err != nil || pos >= delivered {
			t.Fatalf("after the kill, partition %d at %d (%v), but the batch up to %d was not committed", p, pos, err, delivered)
		}
		if err := src.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer src.Stop(ctx)
		waitPosition(t, src, 0, 22)
		waitPosition(t, src, 1, 22)
		for k, id := range []string{"k", "m"} {
			in := remotetest.WaitStatus(t, st, id, evokestore.StatusCompleted)
			if want := `{"id":"` + id + `","status":"done","ticks":20,"sum":210}`; string(in.State) != want {
				t.Fatalf("%s: state %s, want %s", id, in.State, want)
			}
			evs, err := st.ReadStream(ctx, fmt.Sprintf("%s-%d", topic, k), 0)
			if err != nil || len(evs) != 22 {
				t.Fatalf("partition %d: %d events in the log (%v), want 22", k, len(evs), err)
			}
		}
	})
}
