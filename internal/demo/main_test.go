package demo_test

import (
	"os"
	"testing"

	"github.com/evoke-go/evoke/internal/testnote"
)

func TestMain(m *testing.M) {
	testnote.Postgres("internal/demo")
	os.Exit(m.Run())
}
