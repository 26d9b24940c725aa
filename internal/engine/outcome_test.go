package engine

import (
	"testing"

	"github.com/evoke-go/evoke/evokestore"
)

// An instance that completes ends compensated if it stepped a rejection,
// else timed out if a deadline completed it, else completed.
func TestEndOutcome(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		event string
		had   evokestore.InstanceOutcome
		want  evokestore.InstanceOutcome
	}{
		{"Shipped", "", evokestore.EndCompleted},
		{TypeDeadline, "", evokestore.EndTimedOut},
		{TypeCommandRejected, evokestore.EndCompensated, evokestore.EndCompensated},
		{"Shipped", evokestore.EndCompensated, evokestore.EndCompensated},
		{TypeDeadline, evokestore.EndCompensated, evokestore.EndCompensated},
	} {
		if got := endOutcome(&evokestore.Event{Type: c.event}, c.had); got != c.want {
			t.Errorf("completing on %s having %q: %q, want %q", c.event, c.had, got, c.want)
		}
	}
}
