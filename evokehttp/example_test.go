package evokehttp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokehttp"
)

// A service answers the commands a sink posts: it accepts one and rejects
// another, and the sink reports the rejection as evoke.Reject's error.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cmd, err := evokehttp.CommandOf(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if cmd.AggregateID == "empty-shelf" {
			evokehttp.Respond(w, evoke.Reject("out of stock"))
			return
		}
		evokehttp.Respond(w, nil)
	}))
	defer srv.Close()

	sink := evokehttp.NewSink(srv.URL)
	for _, id := range []string{"full-shelf", "empty-shelf"} {
		cmd := evoke.NewCommand("reserve", "inventory", id, map[string]int{"qty": 1})
		cmd.ID = "cmd-" + id
		err := sink.Send(context.Background(), cmd)
		var rejected *evoke.RejectError
		switch {
		case err == nil:
			fmt.Println(id, "accepted")
		case errors.As(err, &rejected):
			fmt.Println(id, "rejected:", rejected.Reason)
		default:
			fmt.Println(id, "failed:", err)
		}
	}
	// Output:
	// full-shelf accepted
	// empty-shelf rejected: out of stock
}
