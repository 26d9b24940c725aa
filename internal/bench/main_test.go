package bench_test

import (
	"os"
	"testing"

	"github.com/evoke-go/evoke/internal/testnote"
)

func TestMain(m *testing.M) {
	testnote.Postgres("internal/bench")
	os.Exit(m.Run())
}
