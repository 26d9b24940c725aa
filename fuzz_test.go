package evoke_test

import (
	"encoding/json"
	"testing"

	"github.com/evoke-go/evoke"
)

// Correlation helpers read untrusted event data: they must return a value or
// a clear error, never panic, and a found ID must round-trip.
func FuzzField(f *testing.F) {
	for _, seed := range []string{`{"id":"a"}`, `{"id":7}`, `{"id":""}`, `{"id":null}`, `[]`, `{`, `{"id":{"x":1}}`, `{"id":1e400}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := evoke.Event{ID: "e", Type: "T", Data: data}
		id, err := evoke.Field(e, "id")
		c := evoke.ByField(e, "id", evoke.Continue)
		if err != nil {
			if c.Kind() != evoke.KindError || c.Err() == nil {
				t.Fatalf("Field failed (%v) but ByField gave %v", err, c)
			}
			return
		}
		if id == "" || c.ID() != id || c.Kind() != evoke.KindContinue {
			t.Fatalf("Field = %q, ByField = %v", id, c)
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(data, &m) != nil {
			t.Fatalf("Field found %q in invalid JSON %q", id, data)
		}
	})
}

// Key must be injective: different part lists never give the same key.
func FuzzKey(f *testing.F) {
	f.Add("a", "b", "a|b", "")
	f.Add("%7C", "|", "%", "x")
	f.Fuzz(func(t *testing.T, a, b, c, d string) {
		if (a != c || b != d) && evoke.Key(a, b) == evoke.Key(c, d) {
			t.Fatalf("Key(%q, %q) == Key(%q, %q)", a, b, c, d)
		}
	})
}
