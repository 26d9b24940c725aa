package evoketest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
)

// instanceStore is a store holding only instances; its other methods are
// not called.
type instanceStore struct {
	evokestore.Store
	insts map[string]evokestore.Instance // by process manager + "/" + id
	err   error
}

func (s instanceStore) Instances(ctx context.Context, pm string, ids []string) ([]evokestore.Instance, error) {
	var out []evokestore.Instance
	for _, id := range ids {
		if in, ok := s.insts[pm+"/"+id]; ok {
			out = append(out, in)
		}
	}
	return out, s.err
}

func TestInstance(t *testing.T) {
	st := instanceStore{insts: map[string]evokestore.Instance{"pm/a": {ProcessManager: "pm", ID: "a", Version: 2}}}
	if in, ok := evoketest.Instance(t, st, "pm", "a"); !ok || in.ID != "a" || in.Version != 2 {
		t.Errorf("pm/a = %+v %v, want it at version 2", in, ok)
	}
	if in, ok := evoketest.Instance(t, st, "other", "a"); ok {
		t.Errorf("other/a = %+v, want none", in)
	}
	st.err = errors.New("store down")
	if msg := run(func(tb testing.TB) { evoketest.Instance(tb, st, "pm", "a") }); !strings.Contains(msg, "store down") {
		t.Errorf("unreadable store: failed with %q", msg)
	}
}
