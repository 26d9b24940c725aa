package payload

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/evoke-go/evoke/evokestore"
)

// AppendJSONString writes what encoding/json reads back as the same
// string (invalid UTF-8 as U+FFFD, as encoding/json writes it).
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "nl\n cr\r tab\t nul\x00 bell\x07 del\x7f", "é ✓ 𝄞", "bad\xffutf8\xc3", "</script>&"} {
		b := AppendJSONString(nil, s)
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
	if err := ParseHistoryRecord(AppendHistoryRecord(nil, &h, 1234567890123456789), &got); err != nil {
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
		if err := ParseHistoryRecord(AppendHistoryRecord(nil, &h, 0), &got); err != nil || string(got.Commands) != c {
			t.Errorf("commands %q read back %q, %v", c, got.Commands, err)
		}
	}
	for _, bad := range []string{`[]`, `{"kind":"step"}`, `["step","one",  "", "", "", "", null, "", 0, "", 0]`, `not json`} {
		if err := ParseHistoryRecord([]byte(bad), &got); err == nil {
			t.Errorf("payload %s parsed", bad)
		}
	}
}

// An outcome's payload reads back as it was written.
func TestOutcomeRecordRoundTrip(t *testing.T) {
	o := evokestore.CommandOutcome{Type: "T\"", AggregateType: "a", AggregateID: "id\\x", ProcessManager: "pm", InstanceID: "i",
		Status: evokestore.OutcomeRejected, Error: "no\u2028way", Events: 3}
	var got evokestore.CommandOutcome
	if err := ParseOutcomeRecord(AppendOutcomeRecord(nil, &o), &got); err != nil || got != o {
		t.Fatalf("read back %+v, %v; want %+v", got, err, o)
	}
	for _, bad := range []string{`[]`, `["a","b","c","d","e","f","g","three"]`, `{}`} {
		if err := ParseOutcomeRecord([]byte(bad), &got); err == nil {
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
		if err := ParseHistoryRecord(AppendHistoryRecord(nil, &h, n), &got); err != nil {
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
		if err := ParseOutcomeRecord(AppendOutcomeRecord(nil, &o), &gotO); err != nil {
			t.Fatalf("outcome %+v: %v", o, err)
		}
		if gotO.Type != valid(kind) || gotO.AggregateID != valid(eventID) || gotO.Error != valid(errText) || gotO.Events != o.Events {
			t.Fatalf("outcome read back %+v, want %+v", gotO, o)
		}
		// A run of two: each reads back with its position and ID.
		h2 := h
		h2.Kind, h2.Version = evokestore.KindStep, n+1
		run, err := ParseHistoryRow(nil, evokestore.HistoryRecord{ProcessManager: "pm", InstanceID: "i"},
			AppendHistoryRun(nil, []evokestore.HistoryRecord{h, h2}, []int64{n, n}, []int64{n, n + 1}))
		if err != nil || len(run) != 2 || run[0].Kind != valid(kind) || run[1].Kind != evokestore.KindStep || run[1].Version != n+1 ||
			run[1].ID != n+1 || run[0].EventID != valid(eventID) || string(run[1].Commands) != wantCommands || run[1].InstanceID != "i" {
			t.Fatalf("run read back %+v, %v", run, err)
		}
		_ = ParseHistoryRecord(stored, &got)
		_, _ = ParseHistoryRow(nil, evokestore.HistoryRecord{}, stored)
		_ = ParseOutcomeRecord(stored, &gotO)
	})
}

// A row holding a run of one instance's steps reads back as the records,
// each with its own position and ID, and a row of one record as before.
func TestHistoryRunRoundTrip(t *testing.T) {
	hs := []evokestore.HistoryRecord{
		{Kind: evokestore.KindStep, Version: 1, Position: 10, EventID: "e1", EventType: "Placed", PhaseAfter: "paying", Commands: []byte(`[{"id":"c1"}]`)},
		{Kind: evokestore.KindStep, Version: 2, Position: 12, EventID: "e2", EventType: "Paid", PhaseBefore: "paying", PhaseAfter: "done", Error: "x\"y"},
	}
	ats, ids := []int64{100, 200}, []int64{7, 8}
	row := evokestore.HistoryRecord{ProcessManager: "pm", InstanceID: "i", Position: 10, ID: 7}
	got, err := ParseHistoryRow(nil, row, AppendHistoryRun(nil, hs, ats, ids))
	if err != nil || len(got) != 2 {
		t.Fatalf("%+v %v", got, err)
	}
	for i, g := range got {
		w := hs[i]
		w.ProcessManager, w.InstanceID, w.ID, w.RecordedAt = "pm", "i", ids[i], fromNanos(ats[i])
		if g.ProcessManager != w.ProcessManager || g.InstanceID != w.InstanceID || g.ID != w.ID || g.Position != w.Position || g.Kind != w.Kind ||
			g.Version != w.Version || g.EventID != w.EventID || g.EventType != w.EventType || g.PhaseBefore != w.PhaseBefore ||
			g.PhaseAfter != w.PhaseAfter || string(g.Commands) != string(w.Commands) || g.Error != w.Error || !g.RecordedAt.Equal(w.RecordedAt) {
			t.Errorf("record %d read back %+v, want %+v", i, g, w)
		}
	}
	one, err := ParseHistoryRow(nil, row, AppendHistoryRun(nil, hs[:1], ats, ids))
	if err != nil || len(one) != 1 || one[0].Position != 10 || one[0].ID != 7 || one[0].EventID != "e1" {
		t.Errorf("a row of one record: %+v %v", one, err)
	}
	if string(AppendHistoryRun(nil, hs[:1], ats, ids)) != string(AppendHistoryRecord(nil, &hs[0], ats[0])) {
		t.Error("a row of one record is not written as before runs")
	}
}

// An evokepg row's further records read back with their positions, the
// row's instance and IDs following the row's.
func TestHistoryMoreRoundTrip(t *testing.T) {
	hs := []evokestore.HistoryRecord{
		{Kind: evokestore.KindStep, Version: 2, Position: 12, EventID: "e2", EventType: "Paid", PhaseBefore: "paying", PhaseAfter: "packing", Commands: []byte(`[{"id":"c2"}]`)},
		{Kind: evokestore.KindStep, Version: 3, Position: 15, EventID: "e3", EventType: "Packed", PhaseBefore: "packing", Error: "x\"y", Node: "n", LeaseToken: 4},
	}
	ats := []int64{200, 300}
	row := evokestore.HistoryRecord{ProcessManager: "pm", InstanceID: "i", ID: 640}
	first := evokestore.HistoryRecord{EventID: "before"}
	got, err := ParseHistoryMore([]evokestore.HistoryRecord{first}, &row, AppendHistoryMore(nil, hs, ats))
	if err != nil || len(got) != 3 || got[0].EventID != "before" {
		t.Fatalf("%+v %v", got, err)
	}
	for i, g := range got[1:] {
		w := hs[i]
		w.ProcessManager, w.InstanceID, w.ID, w.RecordedAt = "pm", "i", 641+int64(i), fromNanos(ats[i])
		if g.ProcessManager != w.ProcessManager || g.InstanceID != w.InstanceID || g.ID != w.ID || g.Position != w.Position || g.Kind != w.Kind ||
			g.Version != w.Version || g.EventID != w.EventID || g.EventType != w.EventType || g.PhaseBefore != w.PhaseBefore ||
			g.PhaseAfter != w.PhaseAfter || string(g.Commands) != string(w.Commands) || g.Error != w.Error || !g.RecordedAt.Equal(w.RecordedAt) ||
			g.Node != w.Node || g.LeaseToken != w.LeaseToken {
			t.Errorf("record %d read back %+v, want %+v", i, g, w)
		}
	}
	if _, err := ParseHistoryMore(nil, &row, []byte(`[[1]]`)); err == nil {
		t.Error("a malformed record was read")
	}
}

// Rows are runs of one instance's consecutive steps, cut at max records;
// every other record is a row of its own.
func TestStepRuns(t *testing.T) {
	rec := func(pm, id, kind string) evokestore.HistoryRecord {
		return evokestore.HistoryRecord{ProcessManager: pm, InstanceID: id, Kind: kind}
	}
	step, failed := evokestore.KindStep, evokestore.KindFailed
	records := []evokestore.HistoryRecord{
		rec("pm", "i", step), rec("pm", "i", step), rec("pm", "i", step), // 0: a run
		rec("pm", "j", step),                             // 3: another instance
		rec("other", "j", step),                          // 4: another process manager
		rec("other", "j", failed),                        // 5: not a step
		rec("other", "j", step), rec("other", "j", step), // 6: a run after it
	}
	if got, want := StepRuns(records, 0), []int{0, 3, 4, 5, 6}; !slices.Equal(got, want) {
		t.Errorf("StepRuns(no bound) = %v, want %v", got, want)
	}
	if got, want := StepRuns(records, 2), []int{0, 2, 3, 4, 5, 6}; !slices.Equal(got, want) {
		t.Errorf("StepRuns(2) = %v, want %v", got, want)
	}
	if got := StepRuns(nil, 0); len(got) != 0 {
		t.Errorf("StepRuns(nil) = %v", got)
	}
}
