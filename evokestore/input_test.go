package evokestore_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/evoke-go/evoke/evokestore"
)

func TestCheckID(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		id       string
		ok, opt  bool // opt: accepted by CheckOptionalID
		contains string
	}{
		{id: "order-7", ok: true, opt: true},
		{id: "commande-é-注文", ok: true, opt: true},
		{id: strings.Repeat("x", evokestore.MaxIDLen), ok: true, opt: true},
		{id: "", opt: true, contains: "empty"},
		{id: strings.Repeat("x", evokestore.MaxIDLen+1), contains: "longer than 1024"},
		{id: "job-\x00", contains: `"job-\x00" contains a NUL byte`},
		{id: "u\xff", contains: `"u\xff" is not valid UTF-8`},
		{id: "\xed\xa0\x80", contains: "not valid UTF-8"}, // an encoded surrogate
	} {
		err := evokestore.CheckID("stream id", c.id)
		if (err == nil) != c.ok || err != nil && (!errors.Is(err, evokestore.ErrInvalid) || !strings.Contains(err.Error(), c.contains)) {
			t.Errorf("CheckID(%q) = %v, want ok %v (mentioning %q)", c.id, err, c.ok, c.contains)
		}
		if err := evokestore.CheckOptionalID("correlation id", c.id); (err == nil) != c.opt {
			t.Errorf("CheckOptionalID(%q) = %v, want ok %v", c.id, err, c.opt)
		}
		if err != nil && (!utf8.ValidString(err.Error()) || strings.ContainsRune(err.Error(), 0)) {
			t.Errorf("CheckID(%q): error text %q is not storable text", c.id, err.Error())
		}
	}
}

func TestCheckJSON(t *testing.T) {
	t.Parallel()
	big := `"` + strings.Repeat("x", evokestore.MaxPayloadLen-2) + `"`
	for _, c := range []struct {
		payload string
		ok      bool
		object  bool // accepted by CheckJSONObject
	}{
		{payload: "", ok: true, object: true},
		{payload: `{"id":"a"}`, ok: true, object: true},
		{payload: ` {"id":"a"}`, ok: true, object: true},
		{payload: `[1,2]`, ok: true},
		{payload: `"x"`, ok: true},
		{payload: big, ok: true},
		{payload: big + " "},
		{payload: `{"id":"job-\u0000"}`, ok: true, object: true},
		{payload: `{"id":"\ud83d\ude00"}`, ok: true, object: true}, // a pair
		{payload: `{"id":"\\ud800"}`, ok: true, object: true},      // an escaped backslash, then text
		{payload: `{"id":"\ud800"}`},
		{payload: `{"id":"\udc00\ud800"}`},
		{payload: `{"id":"\ud800x"}`},
		{payload: `{"id":"\ud800\u0041"}`},
		{payload: "{\"id\":\"u\xff\"}"},
		{payload: `{"id":`},
		{payload: `{"id":1}{}`},
	} {
		err := evokestore.CheckJSON("event data", []byte(c.payload))
		if (err == nil) != c.ok || err != nil && !errors.Is(err, evokestore.ErrInvalid) {
			t.Errorf("CheckJSON(%.40q) = %v, want ok %v", c.payload, err, c.ok)
		}
		if err := evokestore.CheckJSONObject("values", []byte(c.payload)); (err == nil) != c.object {
			t.Errorf("CheckJSONObject(%.40q) = %v, want ok %v", c.payload, err, c.object)
		}
	}
}

func TestCheckNewEvents(t *testing.T) {
	t.Parallel()
	good := evokestore.NewEvent{ID: "e1", StreamID: "s", StreamVersion: 1, Type: "T", Data: []byte(`{}`)}
	if err := evokestore.CheckNewEvents([]evokestore.NewEvent{good}); err != nil {
		t.Fatal(err)
	}
	bad := good
	bad.CausationID = "c\x00"
	err := evokestore.CheckNewEvents([]evokestore.NewEvent{good, bad})
	if !errors.Is(err, evokestore.ErrInvalid) || !strings.Contains(err.Error(), "event 1 of 2") || !strings.Contains(err.Error(), "causation id") {
		t.Fatalf("CheckNewEvents = %v, want event 1's causation id refused", err)
	}
}

func TestTextAndQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain": "plain", "é": "é", "a\x00b": "a\uFFFDb", "u\xff\xfe": "u\uFFFD",
	} {
		if got := evokestore.Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
	if q := evokestore.Quote("job-\x00"); q != `"job-\x00"` {
		t.Errorf("Quote = %s", q)
	}
	if q := evokestore.Quote(strings.Repeat("x", 100)); q != `"`+strings.Repeat("x", 64)+`"...` {
		t.Errorf("Quote of a long id = %s", q)
	}
}
