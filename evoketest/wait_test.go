package evoketest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evoke-go/evoke/evoketest"
)

type idler struct {
	busy int // how many calls report busy before one reports idle
	err  error
}

func (i *idler) Idle(ctx context.Context) (bool, error) {
	if i.err != nil {
		return false, i.err
	}
	if i.busy > 0 {
		i.busy--
		return false, nil
	}
	return true, nil
}

func TestWaitIdle(t *testing.T) {
	rt := &idler{busy: 3}
	evoketest.WaitIdle(t, rt, time.Second)
	if rt.busy != 0 {
		t.Fatalf("returned with %d busy answers left", rt.busy)
	}
	if msg := run(func(tb testing.TB) { evoketest.WaitIdle(tb, &idler{busy: 1 << 30}, 20*time.Millisecond) }); !strings.Contains(msg, "still busy") {
		t.Errorf("busy runtime: failed with %q", msg)
	}
	if msg := run(func(tb testing.TB) { evoketest.WaitIdle(tb, &idler{err: fmt.Errorf("store down")}, time.Second) }); !strings.Contains(msg, "store down") {
		t.Errorf("failing idle check: failed with %q", msg)
	}
}
