package evoke_test

import (
	"encoding/json"
	"testing"

	"github.com/evoke-go/evoke"
)

// Correlation helpers read untrusted event data: they must return a value or
// a clear error, never panic, and a found ID must round-trip.
func FuzzField(f *testing.F) {
	for _, seed := range []string{`{"id":"a"}`, `{"id":7}`, `{"id":""}`, `{"id":null}`, `[]`, `{`, `{"id":{"x":1}}`, `{"id":1e400}`,
		`{"a":{"id":"x"},"id":"b"}`, `{"id":"a","id":"b"}`, `{"i\u0064":"c"}`, `{"x":"\"id\":","id" : 5 }`, `null`, `"id"`, ` {"a":[1,{"id":2}],"b":"]}"} `} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := evoke.Event{ID: "e", Type: "T", Data: data}
		id, err := evoke.Field(e, "id")
		// Field scans the top-level keys; it must agree with decoding the
		// whole object into a map.
		if refID, refOK := referenceField(data, "id"); refOK != (err == nil) || refID != id {
			t.Fatalf("Field(%q) = %q, %v; decoding into a map gives %q, ok %v", data, id, err, refID, refOK)
		}
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

// referenceField is Field by decoding the whole object into a map.
func referenceField(data []byte, field string) (string, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return "", false
	}
	raw, ok := m[field]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, s != ""
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	return "", false
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

// BenchmarkField reads the correlation field of an order-placed event:
// Field (a scan of the top-level keys) against decoding into a map.
func BenchmarkField(b *testing.B) {
	data := []byte(`{"order_id":"order-0000042","customer_id":"customer-42","items":[{"sku":"sku-3","qty":1},{"sku":"sku-9","qty":2}],"amount":1042,"decline_payment":false}`)
	e := evoke.Event{ID: "e", Type: "OrderPlaced", Data: data}
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := evoke.Field(e, "order_id"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := referenceField(data, "order_id"); !ok {
				b.Fatal("not found")
			}
		}
	})
}
