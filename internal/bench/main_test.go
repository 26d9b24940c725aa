package bench_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/evoke-go/evoke/internal/testnote"
)

// The benchmark runtimes stop with their runs: no goroutine outlives them.
func TestMain(m *testing.M) {
	testnote.Postgres("internal/bench")
	goleak.VerifyTestMain(m)
}
