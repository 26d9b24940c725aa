package evokesqlite

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/evoke-go/evoke/evokestore"
)

// appendJSONString writes what encoding/json reads back as the same
// string (invalid UTF-8 as U+FFFD, as encoding/json writes it).
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "nl\n cr\r tab\t nul\x00 bell\x07 del\x7f", "é ✓ 𝄞", "bad\xffutf8\xc3", "</script>&"} {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("%q: %s does not parse: %v", s, b, err)
			continue
		}
		want := strings.ToValidUTF8(s, string(utf8.RuneError))
		if got != want {
			t.Errorf("%q: read back %q, want %q", s, got, want)
		}
	}
}

// A record's payload reads back as it was written.
func TestHistoryRecordRoundTrip(t *testing.T) {
	h := evokestore.HistoryRecord{Kind: evokestore.KindParked, Version: -3, EventID: "e", EventType: "$timeout", PhaseBefore: "a\"b",
		PhaseAfter: "ç", Commands: []byte(` [ {"id": "x"} ] `), Error: "line1\nline2", Node: "n", LeaseToken: 1 << 40}
	var got evokestore.HistoryRecord
	if err := parseHistoryRecord(appendHistoryRecord(nil, &h, 1234567890123456789), &got); err != nil {
		t.Fatal(err)
	}
	if got.RecordedAt.UnixNano() != 1234567890123456789 {
		t.Errorf("recorded at %v", got.RecordedAt)
	}
	got.RecordedAt = h.RecordedAt
	if string(got.Commands) != string(h.Commands) {
		t.Errorf("commands %s, want %s", got.Commands, h.Commands)
	}
	got.Commands = h.Commands
	if got.Kind != h.Kind || got.Version != h.Version || got.EventID != h.EventID || got.EventType != h.EventType || got.PhaseBefore != h.PhaseBefore ||
		got.PhaseAfter != h.PhaseAfter || got.Error != h.Error || got.Node != h.Node || got.LeaseToken != h.LeaseToken {
		t.Errorf("read back %+v, want %+v", got, h)
	}
	for _, bad := range []string{`[]`, `{"kind":"step"}`, `["step","one",  "", "", "", "", null, "", 0, "", 0]`, `not json`} {
		if err := parseHistoryRecord([]byte(bad), &got); err == nil {
			t.Errorf("payload %s parsed", bad)
		}
	}
}

// An outcome's payload reads back as it was written.
func TestOutcomeRecordRoundTrip(t *testing.T) {
	o := evokestore.CommandOutcome{Type: "T\"", AggregateType: "a", AggregateID: "id\\x", ProcessManager: "pm", InstanceID: "i",
		Status: evokestore.OutcomeRejected, Error: "no\u2028way", Events: 3}
	var got evokestore.CommandOutcome
	if err := parseOutcomeRecord(appendOutcomeRecord(nil, &o), &got); err != nil || got != o {
		t.Fatalf("read back %+v, %v; want %+v", got, err, o)
	}
	for _, bad := range []string{`[]`, `["a","b","c","d","e","f","g","three"]`, `{}`} {
		if err := parseOutcomeRecord([]byte(bad), &got); err == nil {
			t.Errorf("payload %s parsed", bad)
		}
	}
}
