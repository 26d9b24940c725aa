// Command evoke runs, inspects and benchmarks evoke process managers; see
// `evoke help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/evoke-go/evoke/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
