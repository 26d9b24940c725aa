package evokesqlite

import (
	"bytes"
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
		want := validUTF8(s)
		if got != want {
			t.Errorf("%q: read back %q, want %q", s, got, want)
		}
	}
}

// validUTF8 is s with each byte of invalid UTF-8 replaced by U+FFFD, as
// encoding/json writes and reads it.
func validUTF8(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
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
	for _, c := range []string{"null", `"s"`, " [] ", "x"} {
		h := evokestore.HistoryRecord{Kind: evokestore.KindStep, Commands: []byte(c)}
		if err := parseHistoryRecord(appendHistoryRecord(nil, &h, 0), &got); err != nil || string(got.Commands) != c {
			t.Errorf("commands %q read back %q, %v", c, got.Commands, err)
		}
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

// FuzzRecords: any strings survive a history record's and an outcome's
// payload (as encoding/json reads them: invalid UTF-8 as U+FFFD), and no
// stored bytes make the parsers panic.
func FuzzRecords(f *testing.F) {
	f.Add("step", "e", "Paid", "a", "b", `[{"id":"c"}]`, "", "node", int64(3), []byte(`["step",1,"","","","",null,"",0,"",0]`))
	f.Add("failed\x00", "\xff", `"q"`, "é", "\n", "not json", "boom\\", "", int64(-1), []byte(`[`))
	f.Fuzz(func(t *testing.T, kind, eventID, eventType, before, after, commands, errText, node string, n int64, stored []byte) {
		valid := validUTF8
		h := evokestore.HistoryRecord{Kind: kind, Version: n, EventID: eventID, EventType: eventType, PhaseBefore: before,
			PhaseAfter: after, Commands: []byte(commands), Error: errText, Node: node, LeaseToken: n}
		var got evokestore.HistoryRecord
		if err := parseHistoryRecord(appendHistoryRecord(nil, &h, n), &got); err != nil {
			t.Fatalf("history record %+v: %v", h, err)
		}
		wantCommands := commands
		if !json.Valid([]byte(commands)) || len(bytes.TrimSpace([]byte(commands))) != len(commands) || strings.HasPrefix(commands, `"`) {
			wantCommands = valid(commands)
		}
		if got.Kind != valid(kind) || got.Version != n || got.EventID != valid(eventID) || got.EventType != valid(eventType) ||
			got.PhaseBefore != valid(before) || got.PhaseAfter != valid(after) || string(got.Commands) != wantCommands ||
			got.Error != valid(errText) || got.Node != valid(node) || got.LeaseToken != n || !got.RecordedAt.Equal(fromNanos(n)) {
			t.Fatalf("history record read back %+v, want %+v", got, h)
		}
		o := evokestore.CommandOutcome{Type: kind, AggregateType: eventType, AggregateID: eventID, ProcessManager: node, InstanceID: before,
			Status: after, Error: errText, Events: int(n % 1000)}
		var gotO evokestore.CommandOutcome
		if err := parseOutcomeRecord(appendOutcomeRecord(nil, &o), &gotO); err != nil {
			t.Fatalf("outcome %+v: %v", o, err)
		}
		if gotO.Type != valid(kind) || gotO.AggregateID != valid(eventID) || gotO.Error != valid(errText) || gotO.Events != o.Events {
			t.Fatalf("outcome read back %+v, want %+v", gotO, o)
		}
		_ = parseHistoryRecord(stored, &got)
		_ = parseOutcomeRecord(stored, &gotO)
	})
}
