package evokeui_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The runtimes the tests start stop with them: no goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
