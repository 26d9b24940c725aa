package evokenats

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/remotetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m)
}

var seq atomic.Int64

// connect connects to the NATS server at EVOKE_TEST_NATS_URL.
func connect(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	url := remotetest.ServiceURL(t, "EVOKE_TEST_NATS_URL", "nats://127.0.0.1:4222")
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// newStream creates a stream of its own for the test, on subjects
// "<name>.>", deleted after it.
func newStream(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	name := fmt.Sprintf("T%d_%d", time.Now().UnixNano(), seq.Add(1))
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
	return name
}

// publish publishes an event of the remote process manager to stream.
func publish(t *testing.T, js jetstream.JetStream, stream, typ string, d remotetest.Data) {
	t.Helper()
	m := nats.NewMsg(stream + ".orders." + typ)
	m.Data = fmt.Appendf(nil, `{"id":%q,"verdict":%q,"n":%d}`, d.ID, d.Verdict, d.N)
	m.Header.Set("tenant", "t-1")
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// publishOrder publishes an order and ticks 1..n.
func publishOrder(t *testing.T, js jetstream.JetStream, stream, id string, from, to int) {
	t.Helper()
	if from == 0 {
		publish(t, js, stream, remotetest.EventOrdered, remotetest.Data{ID: id, Verdict: remotetest.Accept})
		from = 1
	}
	for n := from; n <= to; n++ {
		publish(t, js, stream, remotetest.EventTick, remotetest.Data{ID: id, N: n})
	}
}

// waitPosition waits until the source has ingested up to pos.
func waitPosition(t *testing.T, rt *evoke.Runtime, name string, pos int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		p, _, err := rt.SourcePosition(context.Background(), name, 0)
		if err != nil {
			t.Fatal(err)
		}
		if p == pos {
			return
		}
		if p > pos || time.Now().After(deadline) {
			t.Fatalf("source %s at %d, want %d", name, p, pos)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkOnce checks that the instance id stepped its order and ticks
// 1..n once each, and that the log holds want events of the source.
func checkOnce(t *testing.T, st evokestore.Store, source, id string, n, want int) {
	t.Helper()
	in := remotetest.WaitStatus(t, st, id, evokestore.StatusCompleted)
	wantState := fmt.Sprintf(`{"id":%q,"status":"done","ticks":%d,"sum":%d}`, id, n, n*(n+1)/2)
	if string(in.State) != wantState {
		t.Fatalf("state %s, want %s", in.State, wantState)
	}
	evs, err := st.ReadStream(context.Background(), source, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for i, e := range evs {
		ids[e.ID] = true
		if e.StreamVersion != int64(i+1) || e.ID != evoke.SourceEventID(source, 0, int64(i+1)) {
			t.Fatalf("event %d: version %d id %s", i, e.StreamVersion, e.ID)
		}
		if !strings.Contains(string(e.Values), `"tenant":"t-1"`) {
			t.Fatalf("event %d values %s", i, e.Values)
		}
	}
	if len(evs) != want || len(ids) != want {
		t.Fatalf("the log holds %d events of the source (%d IDs), want %d", len(evs), len(ids), want)
	}
}
