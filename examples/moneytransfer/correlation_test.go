package moneytransfer_test

import (
	"errors"
	"testing"

	"github.com/evoke-go/evoke"
	mt "github.com/evoke-go/evoke/examples/moneytransfer"
)

// TestCorrelationStrategies exercises evoq's three strategies: by
// entity ID, by correlation ID and by composite key.
func TestCorrelationStrategies(t *testing.T) {
	t.Parallel()
	withCorrelation := func(e evoke.Event, id string) evoke.Event {
		e.Metadata.CorrelationID = id
		return e
	}
	debited := evoke.NewEvent(mt.EventSourceDebited, mt.Debited{AccountID: "acc-a", Amount: 5, TransferID: "tr-1"})
	noFields := evoke.NewEvent(mt.EventAccountFrozen, mt.AccountFrozen{AccountID: "acc-a"})

	for _, tc := range []struct {
		name     string
		strategy func(evoke.Event) evoke.Correlation
		event    evoke.Event
		want     string // instance ID; "" means correlation fails
	}{
		{"entity id", mt.ByTransferID, initiated(), "tr-1"},
		{"entity id of a later event", mt.ByTransferID, debited, "tr-1"},
		{"entity id missing", mt.ByTransferID, noFields, ""},
		{"correlation id", mt.ByCorrelation, withCorrelation(initiated(), "corr-9"), "corr-9"},
		{"correlation id of a later event", mt.ByCorrelation, withCorrelation(noFields, "corr-9"), "corr-9"},
		{"correlation id missing", mt.ByCorrelation, initiated(), ""},
		{"composite key", mt.ByAccountPair, initiated(), evoke.Key("acc-a", "acc-b")},
		{"composite key missing a part", mt.ByAccountPair, debited, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tc.strategy(tc.event)
			if tc.want == "" {
				if c.Kind() != evoke.KindError || !errors.Is(c.Err(), evoke.ErrInvalid) {
					t.Fatalf("correlation = %v, want an error", c)
				}
				return
			}
			if c.Kind() != evoke.KindContinue || c.ID() != tc.want {
				t.Fatalf("correlation = %v, want continue(%s)", c, tc.want)
			}
		})
	}
}

// TestCompositeKeyIsUnambiguous shows why evoke.Key escapes its parts.
func TestCompositeKeyIsUnambiguous(t *testing.T) {
	t.Parallel()
	pair := func(src, dst string) string {
		return mt.ByAccountPair(evoke.NewEvent(mt.EventTransferInitiated,
			mt.TransferInitiated{SourceID: src, DestID: dst})).ID()
	}
	if a, b := pair("a|b", "c"), pair("a", "b|c"); a == b {
		t.Fatalf("pairs collide: %q", a)
	}
	if pair("a", "b") == pair("b", "a") {
		t.Fatal("direction lost")
	}
}
