package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var updateREADME = flag.Bool("update-readme", false, "copy main.go into the README's quick start")

// The quick start runs: each run places an order and prints its completed
// saga's typed state.
func TestQuickStart(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "orders.db")
	want := regexp.MustCompile(`^order-\d+: completed after 4 steps; status completed, 1999 cents paid for 1 item\(s\)\n$`)
	for range 2 { // a second run on the same file places another order
		var out bytes.Buffer
		if err := run(context.Background(), db, &out); err != nil {
			t.Fatal(err)
		}
		if !want.MatchString(out.String()) {
			t.Errorf("quick start printed %q", out.String())
		}
	}
}

// The README's quick start is this package's main.go, character for
// character (go test -run TestREADMEQuickStart -update-readme rewrites it).
func TestREADMEQuickStart(t *testing.T) {
	t.Parallel()
	const begin, end = "<!-- begin examples/quickstart/main.go -->\n```go\n", "```\n<!-- end examples/quickstart/main.go -->"
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	code, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := strings.Cut(string(readme), begin)
	block, after, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatalf("README.md has no block between %q and %q", begin, end)
	}
	if block == string(code) {
		return
	}
	if *updateREADME {
		if err := os.WriteFile("../../README.md", []byte(before+begin+string(code)+end+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's quick start differs from examples/quickstart/main.go; go test ./examples/quickstart -run TestREADMEQuickStart -update-readme copies it")
}
