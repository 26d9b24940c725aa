package demo_test

import (
	"go.uber.org/goleak"
	"testing"

	"github.com/evoke-go/evoke/internal/testnote"
)

func TestMain(m *testing.M) {
	testnote.Postgres("internal/demo")
	goleak.VerifyTestMain(m) // the demo's runtimes stop with it

}
