package evoke_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The runtime starts goroutines; none may outlive a test's Stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
