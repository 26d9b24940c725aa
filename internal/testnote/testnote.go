// Package testnote tells whoever runs evoke's tests which integration tests
// a package skips and how to enable them. go test shows a passing
// package's output only with -v, so a skipped test is otherwise silent; a
// package's TestMain calls Postgres (or Skipped) to print one line.
package testnote

import (
	"fmt"
	"io"
	"os"
)

// PostgresEnv is the environment variable naming the PostgreSQL database
// the integration tests may create schemas in.
const PostgresEnv = "EVOKE_TEST_POSTGRES_URL"

// Postgres notes that pkg's PostgreSQL tests are skipped, unless
// PostgresEnv is set.
func Postgres(pkg string) {
	if os.Getenv(PostgresEnv) != "" {
		return
	}
	Skipped(pkg, "PostgreSQL tests", fmt.Sprintf("set %s to a database they may create schemas in, e.g. %s='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'",
		PostgresEnv, PostgresEnv))
}

// Skipped prints one line saying that pkg's tests of what are skipped and
// how to enable them. The line goes to the terminal go test runs in, where
// there is one (go test hides a passing package's output), and to stderr
// otherwise (shown with -v and when the package fails).
func Skipped(pkg, what, how string) {
	write(fmt.Sprintf("%s: %s skipped: %s\n", pkg, what, how))
}

func write(line string) {
	var w io.Writer = os.Stderr
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		w = tty
	}
	_, _ = io.WriteString(w, line)
}
