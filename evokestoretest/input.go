package evokestoretest

import (
	"errors"
	"strings"
	"testing"

	"github.com/evoke-go/evoke/evokestore"
)

// testInputRefused checks that every store refuses the same input: each
// event outside the input contract fails AppendEvents (and
// AppendEventsAfter) with ErrInvalid, and appends nothing, not even the
// valid events before it.
func testInputRefused(t *testing.T, s evokestore.Store) {
	long := strings.Repeat("x", evokestore.MaxIDLen+1)
	for _, c := range []struct {
		name string
		edit func(e *evokestore.NewEvent)
	}{
		{"empty id", func(e *evokestore.NewEvent) { e.ID = "" }},
		{"id with NUL", func(e *evokestore.NewEvent) { e.ID = "e\x00" }},
		{"id too long", func(e *evokestore.NewEvent) { e.ID = long }},
		{"empty stream", func(e *evokestore.NewEvent) { e.StreamID = "" }},
		{"stream not UTF-8", func(e *evokestore.NewEvent) { e.StreamID = "s\xff" }},
		{"stream with NUL", func(e *evokestore.NewEvent) { e.StreamID = "s\x00" }},
		{"stream too long", func(e *evokestore.NewEvent) { e.StreamID = long }},
		{"empty type", func(e *evokestore.NewEvent) { e.Type = "" }},
		{"type not UTF-8", func(e *evokestore.NewEvent) { e.Type = "T\xc3" }},
		{"correlation with NUL", func(e *evokestore.NewEvent) { e.CorrelationID = "c\x00" }},
		{"causation not UTF-8", func(e *evokestore.NewEvent) { e.CausationID = "c\xfe" }},
		{"causation too long", func(e *evokestore.NewEvent) { e.CausationID = long }},
		{"data not JSON", func(e *evokestore.NewEvent) { e.Data = []byte(`{"id":`) }},
		{"data not UTF-8", func(e *evokestore.NewEvent) { e.Data = []byte("{\"id\":\"u\xff\"}") }},
		{"data with a lone surrogate", func(e *evokestore.NewEvent) { e.Data = []byte(`{"id":"\ud800"}`) }},
		{"data too long", func(e *evokestore.NewEvent) {
			e.Data = []byte(`"` + strings.Repeat("x", evokestore.MaxPayloadLen-1) + `"`)
		}},
		{"values not an object", func(e *evokestore.NewEvent) { e.Values = []byte(`["k"]`) }},
		{"values not UTF-8", func(e *evokestore.NewEvent) { e.Values = []byte("{\"k\":\"\xff\"}") }},
	} {
		good := newEvent("good", "s-good", 1, "T")
		bad := newEvent("bad", "s-bad", 1, "T")
		c.edit(&bad)
		// The transactions are committed, so that a store that appended
		// the valid event before refusing the bad one shows it below.
		// (One that failed the transaction instead refuses the commit.)
		tx := begin(t, s)
		_, err := tx.AppendEvents(t.Context(), []evokestore.NewEvent{good, bad})
		_ = tx.Commit()
		if !errors.Is(err, evokestore.ErrInvalid) {
			t.Errorf("%s: AppendEvents = %v, want ErrInvalid", c.name, err)
		}
		tx = begin(t, s)
		if ar, ok := tx.(evokestore.AppendReader); ok {
			_, _, err := ar.AppendEventsAfter(t.Context(), evokestore.LogQuery{}, nil, []evokestore.NewEvent{good, bad})
			if !errors.Is(err, evokestore.ErrInvalid) {
				t.Errorf("%s: AppendEventsAfter = %v, want ErrInvalid", c.name, err)
			}
		}
		_ = tx.Commit()
	}
	if evs := readAll(t, s); len(evs) != 0 {
		t.Fatalf("refused appends left %d events", len(evs))
	}
}

// testInputAccepted checks that every store takes the input at the edges
// of the contract and reads it back byte for byte.
func testInputAccepted(t *testing.T, s evokestore.Store) {
	longest := strings.Repeat("é", evokestore.MaxIDLen/2) // 2 bytes each
	big := []byte(`"` + strings.Repeat("x", evokestore.MaxPayloadLen-2) + `"`)
	evs := []evokestore.NewEvent{
		{ID: longest, StreamID: longest, StreamVersion: 1, Type: longest, Data: big,
			CorrelationID: longest, CausationID: longest, Values: []byte(`{"clé":"valeur \u0000 ✓"}`), RecordedAt: t0},
		{ID: "注文-1", StreamID: "ストリーム", StreamVersion: 1, Type: "Événement",
			Data: []byte(`{"id":"job-\u0000","emoji":"\ud83d\ude00","raw":"✓"}`), RecordedAt: t0},
		{ID: "no-data", StreamID: "s", StreamVersion: 1, Type: "T", RecordedAt: t0},
	}
	got := appendEvents(t, s, evs...)
	if len(got) != len(evs) {
		t.Fatalf("appended %d events, want %d", len(got), len(evs))
	}
	all := readAll(t, s)
	if len(all) != len(evs) {
		t.Fatalf("read %d events, want %d", len(all), len(evs))
	}
	for i := range evs {
		checkEvent(t, all[i], evs[i])
	}
	stream, err := s.ReadStream(t.Context(), longest, 0)
	if err != nil || len(stream) != 1 || stream[0].ID != longest {
		t.Fatalf("ReadStream of the longest stream id: %d events, %v", len(stream), err)
	}
}
