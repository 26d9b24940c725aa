package evoketest

import (
	"context"
	"testing"

	"github.com/evoke-go/evoke/evokestore"
)

// Instance reads one process manager instance from st, reporting whether it
// exists; it fails the test if the store cannot be read.
func Instance(tb testing.TB, st evokestore.Store, processManager, id string) (evokestore.Instance, bool) {
	tb.Helper()
	insts, err := st.Instances(context.Background(), processManager, []string{id})
	if err != nil {
		tb.Fatalf("evoketest: reading instance %s/%s: %v", processManager, id, err)
	}
	if len(insts) == 0 {
		return evokestore.Instance{}, false
	}
	return insts[0], true
}
