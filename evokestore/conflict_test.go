package evokestore_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/evoke-go/evoke/evokestore"
)

type sqlStateErr string

func (e sqlStateErr) Error() string    { return "server error " + string(e) }
func (e sqlStateErr) SQLState() string { return string(e) }

func TestIsConflict(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want bool
	}{
		{sqlStateErr("40P01"), true},
		{fmt.Errorf("append events: %w", sqlStateErr("40001")), true},
		{sqlStateErr("23505"), false},
		{errors.New("deadlock detected"), false},
		{nil, false},
	} {
		if got := evokestore.IsConflict(c.err); got != c.want {
			t.Errorf("IsConflict(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
