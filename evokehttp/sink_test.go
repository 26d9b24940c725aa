package evokehttp_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokehttp"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/remotetest"
)

// An HTTP endpoint's answers map onto accepted, rejected (compensated) and
// transient (parked); the command's ID is the idempotency key.
func TestSink(t *testing.T) {
	t.Parallel()
	remotetest.EachStore(t, func(t *testing.T, spec remotetest.StoreSpec, st evokestore.Store) {
		var r remotetest.Receiver
		var mu sync.Mutex
		keys := map[string]bool{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			cmd, err := evokehttp.CommandOf(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			mu.Lock()
			keys[req.Header.Get("Idempotency-Key")] = true
			mu.Unlock()
			evokehttp.Respond(w, r.Answer(cmd))
		}))
		defer srv.Close()
		rt, err := evoke.New(st, remotetest.Config())
		if err != nil {
			t.Fatal(err)
		}
		if err := evoke.RegisterSink(rt, remotetest.Aggregate, evokehttp.NewSink(srv.URL)); err != nil {
			t.Fatal(err)
		}
		remotetest.RunSink(t, rt, st, r.Got)
		mu.Lock()
		defer mu.Unlock()
		for _, c := range r.Got() {
			if !keys[c.ID] {
				t.Fatalf("command %s arrived without its ID as the idempotency key", c.ID)
			}
		}
	})
}
