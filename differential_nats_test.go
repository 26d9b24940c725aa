package evoke_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokenats"
	"github.com/evoke-go/evoke/evokestore"
)

// feedFunc places the events of an Append operation of the differential
// test elsewhere than by AppendBatch, and returns once the log holds them.
type feedFunc func(ctx context.Context, rt *evoke.Runtime, batch []evoke.StreamAppend) error

// feeds maps a store of the differential test to its feed, if it has one.
var feeds sync.Map

// headerEventID names an event's ID on JetStream, for the differential
// test's mapping: the model names events by their IDs.
const headerEventID = "Evoke-Event-Id"

// jetStreamDiffStore opens stores as open does, each fed from a JetStream
// stream of its own: an Append operation publishes its events there, and
// an evokenats.Source ingests them, all of them in one batch as
// AppendBatch would append them.
func jetStreamDiffStore(js jetstream.JetStream, open diffStore) diffStore {
	var n atomic.Int64
	prefix := fmt.Sprintf("DIFF%d", time.Now().UnixNano())
	return func(ctx context.Context) (evokestore.Store, func(), error) {
		st, closeStore, err := open(ctx)
		if err != nil {
			return nil, nil, err
		}
		stream := fmt.Sprintf("%s_%d", prefix, n.Add(1))
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{stream + ".>"}}); err != nil {
			closeStore()
			return nil, nil, err
		}
		published := int64(0)
		feeds.Store(st, feedFunc(func(ctx context.Context, rt *evoke.Runtime, batch []evoke.StreamAppend) error {
			n := 0
			for _, a := range batch {
				for _, e := range a.Events {
					m := nats.NewMsg(stream + ".events")
					m.Data = e.Data
					m.Header.Set(evokenats.HeaderEventType, e.Type)
					m.Header.Set(evokenats.HeaderStreamID, a.StreamID)
					m.Header.Set(headerEventID, e.ID)
					if _, err := js.PublishMsg(ctx, m); err != nil {
						return err
					}
					published++
					n++
				}
			}
			src, err := evokenats.NewSource(rt, js, evokenats.SourceConfig{Stream: stream, BatchSize: n, BatchWait: time.Minute,
				Map: func(name string, msg jetstream.Msg) (evoke.SourcedEvent, error) {
					se, err := evokenats.DefaultMap(name, msg)
					se.Event.ID = msg.Headers().Get(headerEventID)
					return se, err
				}})
			if err != nil {
				return err
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- src.Run(rctx) }()
			defer func() { cancel(); <-done }()
			deadline := time.Now().Add(20 * time.Second)
			for {
				pos, _, err := rt.SourcePosition(ctx, stream, 0)
				if err != nil || pos == published {
					return err
				}
				select {
				case err := <-done:
					done <- err
					return fmt.Errorf("source stopped at %d of %d: %w", pos, published, err)
				case <-time.After(2 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					return errors.New("the source did not ingest its messages in 20s")
				}
			}
		}))
		return st, func() {
			feeds.Delete(st)
			_ = js.DeleteStream(context.Background(), stream)
			closeStore()
		}, nil
	}
}

// TestDifferentialJetStream runs the differential test with every event
// coming from a JetStream stream through evokenats.Source instead of
// AppendBatch: the runtime, reading its own log, gives the model's outcome
// either way.
func TestDifferentialJetStream(t *testing.T) {
	url := os.Getenv("EVOKE_TEST_NATS_URL")
	if url == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("EVOKE_TEST_NATS_URL is not set in CI")
		}
		t.Skip("set EVOKE_TEST_NATS_URL (e.g. nats://127.0.0.1:4222) to run the differential test with a JetStream source")
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	first, n := diffCases()
	n = max(n/3, 1)
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		runDifferential(t, jetStreamDiffStore(js, sqliteDiffStore(t.TempDir())), first, n)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		url := os.Getenv("EVOKE_TEST_POSTGRES_URL")
		if url == "" {
			t.Skip("set EVOKE_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
		}
		runDifferential(t, jetStreamDiffStore(js, pgDiffStore(url)), first, n)
	})
}
