package cli_test

import (
	"context"
	"go.uber.org/goleak"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/evoke-go/evoke/internal/cli"
	"github.com/evoke-go/evoke/internal/testnote"
)

// asEvokeEnv makes the test binary run as the evoke command (as
// cmd/evoke's main does) instead of running the tests: the tests that send
// signals run it as a process of its own.
const asEvokeEnv = "EVOKE_CLI_TEST_AS_EVOKE"

func TestMain(m *testing.M) {
	if os.Getenv(asEvokeEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	testnote.Postgres("cli")
	goleak.VerifyTestMain(m) // the commands' runtimes and servers stop with them

}
