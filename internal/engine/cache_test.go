package engine

import (
	"fmt"
	"testing"

	"github.com/evoke-go/evoke/evokestore"
)

func TestInstCache(t *testing.T) {
	t.Parallel()
	ls := &leaseSet{parts: []int{0, 1}, tokens: map[int]int64{0: 7, 1: 9}}
	c := newInstCache(4) // two generations of 2
	put := func(id string, part int, st evokestore.InstanceStatus) {
		c.put(&evokestore.Instance{ID: id, Partition: part, Status: st, Version: 1}, ls.tokens[part])
	}
	has := func(id string) bool { _, ok := c.get(id, ls); return ok }

	put("a", 0, evokestore.StatusRunning)
	put("b", 1, evokestore.StatusCompensating)
	if !has("a") || !has("b") {
		t.Fatal("running and compensating instances are kept")
	}
	// Stopped instances are not kept, and replace what was.
	for _, st := range []evokestore.InstanceStatus{evokestore.StatusFailing, evokestore.StatusParked, evokestore.StatusCompleted, evokestore.StatusCancelled} {
		put("a", 0, evokestore.StatusRunning)
		put("a", 0, st)
		if has("a") {
			t.Fatalf("a %s instance was kept", st)
		}
	}
	// Bounded: the third and fourth puts start a new generation, the
	// fifth drops the oldest one.
	c.reset()
	for i := range 5 {
		put(fmt.Sprint("i", i), 0, evokestore.StatusRunning)
	}
	var kept []bool
	for i := range 5 {
		kept = append(kept, has(fmt.Sprint("i", i)))
	}
	if fmt.Sprint(kept) != "[false false true true true]" {
		t.Fatalf("kept %v, want the newest three", kept)
	}
	if n := len(c.cur) + len(c.old); n > 4 {
		t.Fatalf("%d entries, more than the size", n)
	}
	// An entry is valid under its partition's lease token only.
	put("x", 1, evokestore.StatusRunning)
	regained := &leaseSet{parts: []int{0, 1}, tokens: map[int]int64{0: 7, 1: 10}}
	if _, ok := c.get("x", regained); ok {
		t.Fatal("an instance cached under an older lease of its partition was returned")
	}
	if _, ok := c.get("x", &leaseSet{tokens: map[int]int64{0: 7}}); ok {
		t.Fatal("an instance of a partition no longer owned was returned")
	}
	if in, ok := c.get("x", ls); !ok || in.ID != "x" {
		t.Fatal("x is gone under the same lease")
	}
	c.drop("x")
	if has("x") {
		t.Fatal("dropped instance still there")
	}
	var none *instCache // disabled: nothing kept, nothing fails
	none.put(&evokestore.Instance{ID: "a", Status: evokestore.StatusRunning}, 0)
	if _, ok := none.get("a", ls); ok || newInstCache(0) != nil {
		t.Fatal("a disabled cache keeps instances")
	}
}
