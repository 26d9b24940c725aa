package wire_test

import (
	"errors"
	"net/http"
	"reflect"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/internal/wire"
)

func command() evoke.Command {
	return evoke.Command{ID: "c1", Type: "reserve", AggregateType: "inventory", AggregateID: "sku-1",
		Metadata: evoke.Metadata{CorrelationID: "order-1", CausationID: "e7", Values: map[string]string{"tenant": "acme"}}}
}

func TestCanonicalRoundTrip(t *testing.T) {
	h := http.Header{}
	wire.Canonical.Encode(command(), h.Set)
	if got := h.Get("Evoke-Values"); got != `{"tenant":"acme"}` {
		t.Errorf("values header %q", got)
	}
	var got evoke.Command
	if err := wire.Canonical.Decode(h.Get, &got); err != nil {
		t.Fatal(err)
	}
	if want := command(); !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
}

func TestEmptyLineageIsNotWritten(t *testing.T) {
	h := http.Header{}
	cmd := command()
	cmd.Metadata = evoke.Metadata{}
	wire.Canonical.Encode(cmd, h.Set)
	for _, k := range []string{wire.CorrelationID, wire.CausationID, wire.Values} {
		if _, ok := h[k]; ok {
			t.Errorf("%s written for a command without it", k)
		}
	}
}

// A part without a name is left to the transport: neither written nor read.
func TestUnnamedPartsAreLeftAlone(t *testing.T) {
	n := wire.Names{AggregateType: "agg", Values: "vals"}
	set := map[string]string{}
	n.Encode(command(), func(k, v string) { set[k] = v })
	if want := map[string]string{"agg": "inventory", "vals": `{"tenant":"acme"}`}; !reflect.DeepEqual(set, want) {
		t.Errorf("wrote %v, want %v", set, want)
	}
	got := evoke.Command{ID: "c1", Type: "reserve"}
	if err := n.Decode(func(k string) string { return set[k] }, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "c1" || got.AggregateType != "inventory" || got.Metadata.Values["tenant"] != "acme" {
		t.Errorf("decoded %+v", got)
	}
}

func TestDecodeRefusesWhatIsNotACommand(t *testing.T) {
	for name, h := range map[string]http.Header{
		"no headers": {},
		"no type":    {wire.CommandID: {"c1"}},
		"bad values": {wire.CommandID: {"c1"}, wire.CommandType: {"t"}, wire.Values: {`["tenant"]`}},
	} {
		var c evoke.Command
		if err := wire.Canonical.Decode(h.Get, &c); !errors.Is(err, evoke.ErrInvalid) {
			t.Errorf("%s: %v, want evoke.ErrInvalid", name, err)
		}
	}
}
