package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evoke-go/evoke/evokestore"
)

func TestSortableID(t *testing.T) {
	t.Parallel()
	a := SortableID(5, "cmd", "pm", "i", "e", "0")
	if a != SortableID(5, "cmd", "pm", "i", "e", "0") {
		t.Fatal("not deterministic")
	}
	if len(a) != 36 || a[14] != '8' || !strings.ContainsRune("89ab", rune(a[19])) {
		t.Fatalf("%s is not a version 8, RFC 9562 UUID", a)
	}
	// Length-prefixed parts: no collision by concatenation.
	if SortableID(5, "ab", "c") == SortableID(5, "a", "bc") {
		t.Fatal("parts collide by concatenation")
	}
	// IDs made in key order sort in key order.
	prev := ""
	for k := uint64(1); k < 1<<20; k *= 3 {
		id := SortableID(k, "x")
		if id <= prev {
			t.Fatalf("SortableID(%d) = %s sorts before %s", k, id, prev)
		}
		if got := sortKey(id); got != k {
			t.Fatalf("sortKey(%s) = %d, want %d", id, got, k)
		}
		prev = id
	}
	if sortKey("not-a-uuid") != 0 || sortKey("") != 0 {
		t.Fatal("sortKey of a foreign ID is not 0")
	}
	// Events of a command sort with it.
	cmd := CommandID("pm", "i", "e", 42, 0)
	if sortKey(EventID(cmd, 3)) != 42 {
		t.Fatal("an event ID does not inherit its command's sort key")
	}
}

func TestPartitionOf(t *testing.T) {
	t.Parallel()
	counts := make([]int, 16)
	for i := range 16000 {
		p := PartitionOf("order-"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune(i)), 16)
		if p < 0 || p >= 16 {
			t.Fatalf("partition %d out of range", p)
		}
		counts[p]++
	}
	for p, c := range counts {
		if c < 500 || c > 1500 {
			t.Errorf("partition %d got %d of 16000 IDs: badly spread", p, c)
		}
	}
	if PartitionOf("x", 1) != 0 || PartitionOf("x", 0) != 0 {
		t.Error("one partition is not partition 0")
	}
	// Partitions must never move: a stored instance is found, leased and
	// checkpointed by its partition. These values are pinned for good.
	for id, want := range map[string][2]int{"order-1": {16, 13}, "order-0000007": {16, 11}, "transfer|a|b": {64, 35}} {
		if got := PartitionOf(id, want[0]); got != want[1] {
			t.Errorf("PartitionOf(%q, %d) = %d, want %d: partitions moved", id, want[0], got, want[1])
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	en := &Engine{cfg: Config{BackoffBase: 100 * time.Millisecond, BackoffMax: 2 * time.Second}}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 10: 2 * time.Second} {
		for range 50 {
			d := en.backoff(n)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, want/2, want)
			}
		}
	}
}

func TestGapsAndRanges(t *testing.T) {
	rs := rangesOf([]int64{9, 3, 4, 5, 11, 10, 20})
	if want := [][2]int64{{3, 5}, {9, 11}, {20, 20}}; !slices.Equal(rs, want) {
		t.Fatalf("rangesOf = %v, want %v", rs, want)
	}
	cases := []struct {
		after, before int64
		covered       [][2]int64
		want          [][2]int64
	}{
		{0, 10, nil, [][2]int64{{1, 9}}},
		{0, 25, rs, [][2]int64{{1, 2}, {6, 8}, {12, 19}, {21, 24}}},
		{4, 21, rs, [][2]int64{{6, 8}, {12, 19}}},
		{2, 6, [][2]int64{{3, 5}}, nil},
		{5, 5, nil, nil},
	}
	for _, c := range cases {
		if got := gaps(c.after, c.before, slices.Clone(c.covered)); !slices.Equal(got, c.want) {
			t.Errorf("gaps(%d, %d, %v) = %v, want %v", c.after, c.before, c.covered, got, c.want)
		}
	}
}

type sqlStateErr string

func (e sqlStateErr) Error() string    { return "server error " + string(e) }
func (e sqlStateErr) SQLState() string { return string(e) }

// A conflict is counted and logged as a warning within its retry budget,
// and as an error past it; any other failure is an error and not counted.
func TestRetryLevel(t *testing.T) {
	t.Parallel()
	en := New(Config{})
	conflict := fmt.Errorf("commit: %w", sqlStateErr("40P01"))
	for failures := 1; failures <= conflictRetries; failures++ {
		if l := en.retryLevel(conflict, failures); l != slog.LevelWarn {
			t.Errorf("conflict, failure %d: level %v, want WARN", failures, l)
		}
	}
	if l := en.retryLevel(conflict, conflictRetries+1); l != slog.LevelError {
		t.Errorf("conflict past its budget: level %v, want ERROR", l)
	}
	if l := en.retryLevel(errors.New("broken"), 1); l != slog.LevelError {
		t.Errorf("other failure: level %v, want ERROR", l)
	}
	if n := en.Counters().Conflicts.Load(); n != conflictRetries+1 {
		t.Errorf("%d conflicts counted, want %d", n, conflictRetries+1)
	}
}

// A write fenced off by a lost lease (a partition handed over) is logged
// as routine within the retry budget, and is not counted as a conflict.
func TestRetryLevelLeaseLost(t *testing.T) {
	t.Parallel()
	en := New(Config{})
	lease := fmt.Errorf("commit: %w", evokestore.ErrLeaseLost)
	for failures := 1; failures <= conflictRetries; failures++ {
		if l := en.retryLevel(lease, failures); l != slog.LevelWarn {
			t.Errorf("lease lost, failure %d: level %v, want WARN", failures, l)
		}
	}
	if l := en.retryLevel(lease, conflictRetries+1); l != slog.LevelError {
		t.Errorf("lease lost past the budget: level %v, want ERROR", l)
	}
	if n := en.Counters().Conflicts.Load(); n != 0 {
		t.Errorf("%d conflicts counted for lost leases", n)
	}
}
