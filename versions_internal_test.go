package evoke

import (
	"encoding/json"
	"errors"
	"testing"
)

// An envelope is recognised by a top-level "$version" only: a state that
// mentions it elsewhere, or is not an object, is a state at version 1.
func TestStateEnvelope(t *testing.T) {
	t.Parallel()
	words := stateCodec[[]string]{name: "words", version: 1}
	for _, b := range []string{`["$version"]`, `{"$version":1}`} {
		_, err := words.decode([]byte(b))
		var se *StateError
		if b == `["$version"]` && err != nil || b != `["$version"]` && !errors.As(err, &se) {
			t.Errorf("decode %s as []string: %v", b, err)
		}
	}
	type meta struct {
		Meta map[string]int `json:"meta"`
	}
	c := stateCodec[meta]{name: "meta", version: 2, upcaster: map[int]Upcaster{1: func(b json.RawMessage) (json.RawMessage, error) { return b, nil }}}
	got, err := c.decode([]byte(`{"meta":{"$version":7}}`))
	if err != nil || got.Meta["$version"] != 7 {
		t.Errorf("decode a nested $version: %+v, %v", got, err)
	}
	enc, _ := c.encode(got)
	if string(enc) != `{"$version":2,"$state":{"meta":{"$version":7}}}` {
		t.Errorf("encode at version 2: %s", enc)
	}
	if back, err := c.decode(enc); err != nil || back.Meta["$version"] != 7 {
		t.Errorf("decode %s: %+v, %v", enc, back, err)
	}
	for _, b := range []string{`{"$version":"2","$state":{}}`, `{"$version":2}`, `{"$version":3,"$state":{}}`} {
		var se *StateError
		if _, err := c.decode([]byte(b)); !errors.As(err, &se) {
			t.Errorf("decode %s: %v, want a *StateError", b, err)
		}
	}
}

// FuzzStateDecode: decoding any stored bytes returns a state or a
// *StateError, and a decoded state encodes to bytes that decode to it.
func FuzzStateDecode(f *testing.F) {
	for _, s := range []string{`{"n":1}`, `{"$version":2,"$state":{"n":3}}`, `{"$version":1}`, `[]`, `{"$version":"x"}`, `{"$version":9,"$state":null}`} {
		f.Add([]byte(s))
	}
	type state struct {
		N int `json:"n"`
	}
	c := stateCodec[state]{name: "fuzz", version: 2, upcaster: map[int]Upcaster{1: func(b json.RawMessage) (json.RawMessage, error) { return b, nil }}}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := c.decode(b)
		if err != nil {
			var se *StateError
			if !errors.As(err, &se) {
				t.Fatalf("decode %q: %v is not a *StateError", b, err)
			}
			return
		}
		enc, err := c.encode(s)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := c.decode(enc); err != nil || back != s {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", b, back, err, s)
		}
	})
}
