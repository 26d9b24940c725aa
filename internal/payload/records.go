// Package payload encodes the stores' history records and command outcomes
// as JSON arrays without reflection, on the writer's path: evokesqlite keeps
// each record's payload so (its migrations 0011, 0012), evokepg the further
// records of a history row holding a run of steps (its migration 0009).
package payload

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/evoke-go/evoke/evokestore"
)

// A history record's payload is a JSON array (evokesqlite's migration 0011):
//
//	[kind, version, event_id, event_type, phase_before, phase_after,
//	 commands, error, recorded_at, node, lease_token]
//
// commands is the record's Commands as they are (a JSON array), null for
// none, or a JSON string of them when they would not read back byte for
// byte as a JSON value (not JSON, padded, a string, null).
// It is written by AppendHistoryRecord, without reflection, on the
// writer's path.
//
// A row may hold a run of one instance's steps written together (a saga's
// chained steps): its payload is then an array of such arrays, each with
// the record's position and ID after the eleven fields (AppendHistoryRun),
// and the row's key columns are the first record's.

// HistoryRecordSize estimates how many bytes AppendHistoryRecord writes for
// h (a capacity hint).
func HistoryRecordSize(h *evokestore.HistoryRecord) int {
	return 2*6 + 12 + 3*20 + len(h.Kind) + len(h.EventID) + len(h.EventType) + len(h.PhaseBefore) + len(h.PhaseAfter) +
		len(h.Commands) + len(h.Error) + len(h.Node) + 4
}

// AppendHistoryRecord appends h's payload, recorded at nanoseconds at.
func AppendHistoryRecord(p []byte, h *evokestore.HistoryRecord, at int64) []byte {
	return append(AppendHistoryFields(p, h, at), ']')
}

// StepRuns splits records into history rows: runs of consecutive steps
// of one instance (a saga's chained steps), of at most max records (no
// bound if max <= 0), and every other record alone. It returns the index
// of each row's first record; a row ends where the next begins, the last
// at len(records).
func StepRuns(records []evokestore.HistoryRecord, max int) []int {
	var runs []int
	for i := range records {
		if i == 0 || records[i].Kind != evokestore.KindStep || records[i-1].Kind != evokestore.KindStep ||
			records[i].InstanceID != records[i-1].InstanceID || records[i].ProcessManager != records[i-1].ProcessManager ||
			max > 0 && i-runs[len(runs)-1] == max {
			runs = append(runs, i)
		}
	}
	return runs
}

// AppendHistoryRun appends the payload of a row holding the records hs,
// recorded at ats[i], with IDs ids[i]: one record's as AppendHistoryRecord
// writes it, several as an array of their fields followed by position and
// ID.
func AppendHistoryRun(p []byte, hs []evokestore.HistoryRecord, ats, ids []int64) []byte {
	if len(hs) == 1 {
		return AppendHistoryRecord(p, &hs[0], ats[0])
	}
	return appendHistoryArray(p, hs, ats, ids)
}

// AppendHistoryMore appends the further records of an evokepg history row:
// a JSON array holding, for each of hs (recorded at ats[i]), its eleven
// payload fields followed by its position.
func AppendHistoryMore(p []byte, hs []evokestore.HistoryRecord, ats []int64) []byte {
	return appendHistoryArray(p, hs, ats, nil)
}

// appendHistoryArray appends a JSON array of hs's payload fields, each
// followed by its position and, if ids is not nil, ids[i].
func appendHistoryArray(p []byte, hs []evokestore.HistoryRecord, ats, ids []int64) []byte {
	p = append(p, '[')
	for i := range hs {
		if i > 0 {
			p = append(p, ',')
		}
		p = AppendHistoryFields(p, &hs[i], ats[i])
		p = append(p, ',')
		p = strconv.AppendInt(p, hs[i].Position, 10)
		if ids != nil {
			p = append(p, ',')
			p = strconv.AppendInt(p, ids[i], 10)
		}
		p = append(p, ']')
	}
	return append(p, ']')
}

// ParseHistoryMore appends to out the records AppendHistoryMore wrote, of
// row's process manager and instance, with IDs row.ID+1, row.ID+2, ...
func ParseHistoryMore(out []evokestore.HistoryRecord, row *evokestore.HistoryRecord, more []byte) ([]evokestore.HistoryRecord, error) {
	return parseHistoryArray(out, row, more, 1)
}

// parseHistoryArray appends to out the records of a JSON array
// appendHistoryArray wrote, of row's process manager and instance: their
// IDs are row.ID+from, row.ID+from+1, ..., or, with from < 0, read from
// the array.
func parseHistoryArray(out []evokestore.HistoryRecord, row *evokestore.HistoryRecord, arr []byte, from int) ([]evokestore.HistoryRecord, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(arr, &elems); err != nil {
		return out, fmt.Errorf("payload: %w", err)
	}
	for i, e := range elems {
		h := evokestore.HistoryRecord{ProcessManager: row.ProcessManager, InstanceID: row.InstanceID}
		more := []any{&h.Position, &h.ID}
		if from >= 0 {
			h.ID, more = row.ID+int64(from+i), more[:1]
		}
		if err := ParseHistoryRecord(e, &h, more...); err != nil {
			return out, fmt.Errorf("record %d of the row: %w", max(from, 0)+i, err)
		}
		out = append(out, h)
	}
	return out, nil
}

// AppendHistoryFields appends '[' and h's eleven payload fields.
func AppendHistoryFields(p []byte, h *evokestore.HistoryRecord, at int64) []byte {
	p = append(p, '[')
	p = AppendJSONString(p, h.Kind)
	p = append(p, ',')
	p = strconv.AppendInt(p, h.Version, 10)
	for _, s := range [...]string{h.EventID, h.EventType, h.PhaseBefore, h.PhaseAfter} {
		p = append(p, ',')
		p = AppendJSONString(p, s)
	}
	p = append(p, ',')
	if c := h.Commands; len(c) > 0 && json.Valid(c) && len(bytes.TrimSpace(c)) == len(c) && c[0] != '"' && string(c) != "null" {
		p = append(p, c...)
	} else if len(c) > 0 {
		// Not JSON, or JSON that would not read back byte for byte (the
		// store does not own its shape): kept as a string.
		p = AppendJSONString(p, string(c))
	} else {
		p = append(p, "null"...)
	}
	p = append(p, ',')
	p = AppendJSONString(p, h.Error)
	p = append(p, ',')
	p = strconv.AppendInt(p, at, 10)
	p = append(p, ',')
	p = AppendJSONString(p, h.Node)
	p = append(p, ',')
	return strconv.AppendInt(p, h.LeaseToken, 10)
}

// ParseHistoryRow appends to out the records of a history row: row holds
// its key columns (process manager, instance, position, ID) and record its
// payload, of one record or a run (AppendHistoryRun).
func ParseHistoryRow(out []evokestore.HistoryRecord, row evokestore.HistoryRecord, record []byte) ([]evokestore.HistoryRecord, error) {
	if len(record) < 2 || record[0] != '[' || record[1] != '[' {
		if err := ParseHistoryRecord(record, &row); err != nil {
			return out, err
		}
		return append(out, row), nil
	}
	return parseHistoryArray(out, &row, record, -1)
}

// ParseHistoryRecord fills in h from a payload AppendHistoryRecord wrote
// (or migration 0011 converted), and more from fields after its eleven (a
// run's position and ID).
func ParseHistoryRecord(record []byte, h *evokestore.HistoryRecord, more ...any) error {
	var at int64
	var commands json.RawMessage
	if err := UnmarshalArray(record, append([]any{&h.Kind, &h.Version, &h.EventID, &h.EventType, &h.PhaseBefore, &h.PhaseAfter,
		&commands, &h.Error, &at, &h.Node, &h.LeaseToken}, more...)...); err != nil {
		return err
	}
	switch {
	case string(commands) == "null":
	case commands[0] == '"': // Commands that were not kept as JSON
		var s string
		if err := json.Unmarshal(commands, &s); err != nil {
			return fmt.Errorf("payload commands: %w", err)
		}
		h.Commands = []byte(s)
	default:
		h.Commands = commands
	}
	h.RecordedAt = fromNanos(at)
	return nil
}

// A command outcome's payload is a JSON array too (evokesqlite's migration 0012):
//
//	[type, aggregate_type, aggregate_id, process_manager, instance_id,
//	 status, error, events]

// OutcomeRecordSize is about how many bytes AppendOutcomeRecord writes.
func OutcomeRecordSize(o *evokestore.CommandOutcome) int {
	return 2*7 + 12 + len(o.Type) + len(o.AggregateType) + len(o.AggregateID) + len(o.ProcessManager) + len(o.InstanceID) +
		len(o.Status) + len(o.Error) + 2
}

// AppendOutcomeRecord appends o's payload.
func AppendOutcomeRecord(p []byte, o *evokestore.CommandOutcome) []byte {
	p = append(p, '[')
	for i, s := range [...]string{o.Type, o.AggregateType, o.AggregateID, o.ProcessManager, o.InstanceID, o.Status, o.Error} {
		if i > 0 {
			p = append(p, ',')
		}
		p = AppendJSONString(p, s)
	}
	p = append(p, ',')
	p = strconv.AppendInt(p, int64(o.Events), 10)
	return append(p, ']')
}

// ParseOutcomeRecord fills in o from a payload AppendOutcomeRecord wrote
// (or migration 0012 converted).
func ParseOutcomeRecord(record []byte, o *evokestore.CommandOutcome) error {
	return UnmarshalArray(record, &o.Type, &o.AggregateType, &o.AggregateID, &o.ProcessManager, &o.InstanceID, &o.Status, &o.Error, &o.Events)
}

// UnmarshalArray decodes a JSON array of exactly len(dsts) values into
// dsts, in order.
func UnmarshalArray(record []byte, dsts ...any) error {
	var a []json.RawMessage
	if err := json.Unmarshal(record, &a); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	if len(a) != len(dsts) {
		return fmt.Errorf("payload has %d fields, want %d", len(a), len(dsts))
	}
	for i, dst := range dsts {
		if err := json.Unmarshal(a[i], dst); err != nil {
			return fmt.Errorf("payload field %d: %w", i, err)
		}
	}
	return nil
}

// AppendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func AppendJSONString(p []byte, s string) []byte {
	const hex = "0123456789abcdef"
	p = append(p, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				p = append(p, '\\', c)
			case c < 0x20:
				p = append(p, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				p = append(p, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			p = append(p, `\ufffd`...)
		} else {
			p = append(p, s[i:i+n]...)
		}
		i += n
	}
	return append(p, '"')
}

// fromNanos is the time of Unix nanoseconds n, in UTC; zero for 0.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
