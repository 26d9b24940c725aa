package evoke_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/evoke-go/evoke/internal/testnote"
)

// The runtime starts goroutines; none may outlive a test's Stop.
func TestMain(m *testing.M) {
	testnote.Postgres("evoke")
	goleak.VerifyTestMain(m)
}
