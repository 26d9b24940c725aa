// Package cli implements the evoke command-line tool; cmd/evoke only calls
// Main. Every command names its store with --store: a SQLite file path (also
// written sqlite:PATH; the default is ./evoke.db) or a postgres:// URL, whose
// optional evoke_schema parameter names the schema holding evoke's tables
// (default public).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/evoke-go/evoke/evokepg"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
)

// DefaultStore is the store commands use without --store.
const DefaultStore = "./evoke.db"

// errUsage marks a usage error (exit code 2); the message was printed.
var errUsage = errors.New("usage")

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"demo", "run the order-fulfilment workload and print a summary", runDemo},
		{"worker", "run one node of the demo's process managers (several share a PostgreSQL store)", runWorker},
		{"bench", "benchmark the order-fulfilment workload on an empty store", runBench},
		{"list", "list instances by process manager and status", runList},
		{"show", "show one instance: state, held events, timeline of steps and commands", runShow},
		{"graph", "draw a process manager's state machine from recorded transitions (Mermaid or DOT)", runGraph},
		{"retry", "run a failing or parked instance's held events again (by the runtime running it)", runRetry},
		{"skip", "drop the event a failing or parked instance is stuck on", runSkip},
		{"cancel", "end an instance that has not completed", runCancel},
		{"serve", "serve the inspection web UI (instances, timelines, state machines, actions)", runServe},
	}
}

// Main runs the evoke command line with args (without the program name) and
// returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
				return 2
			default:
				fmt.Fprintf(stderr, "evoke %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "evoke: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "evoke runs process managers (sagas) for event-sourced systems.")
	fmt.Fprintln(w, "\nUsage: evoke <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery command takes --store: a SQLite file (PATH or sqlite:PATH, default ./evoke.db)")
	fmt.Fprintln(w, "or a PostgreSQL URL (postgres://user@host/db?evoke_schema=NAME).")
	fmt.Fprintln(w, "Run `evoke <command> -h` for its flags.")
}

// OpenStore opens the store named by spec: a SQLite file path, also written
// sqlite:PATH, or a postgres:// URL.
func OpenStore(ctx context.Context, spec string) (evokestore.Store, error) {
	switch {
	case spec == "":
		spec = DefaultStore
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		u, err := url.Parse(spec)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", redact(spec), err)
		}
		// evoke_schema picks the schema holding evoke's tables.
		q := u.Query()
		schema := q.Get("evoke_schema")
		q.Del("evoke_schema")
		u.RawQuery = q.Encode()
		st, err := evokepg.Open(ctx, u.String(), &evokepg.Options{Schema: schema})
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", redact(spec), err)
		}
		return st, nil
	}
	st, err := evokesqlite.Open(ctx, strings.TrimPrefix(spec, "sqlite:"), nil)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", spec, err)
	}
	return st, nil
}

// redact hides a URL's password.
func redact(spec string) string {
	at := strings.LastIndex(spec, "@")
	scheme := strings.Index(spec, "://")
	if at < 0 || scheme < 0 {
		return spec
	}
	cred := spec[scheme+3 : at]
	if i := strings.Index(cred, ":"); i >= 0 {
		return spec[:scheme+3] + cred[:i] + ":***" + spec[at:]
	}
	return spec
}

// newFlags returns a flag set that prints its usage to stderr.
func newFlags(name, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: evoke %s %s\n\nFlags:\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		fs.Usage()
		return errUsage
	}
	return nil
}

// startCPUProfile writes a CPU profile to path until the returned function
// is called; an empty path profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	r, err := openRecording(path, pprof.StartCPUProfile, pprof.StopCPUProfile)
	if err != nil {
		return nil, err
	}
	return r.begin()
}

// recording is the file a CPU profile or an execution trace goes to,
// created before the work it records starts, so that a bad path fails at
// once.
type recording struct {
	f     *os.File
	start func(io.Writer) error
	stop  func()
}

// openRecording creates path; an empty path records nothing (a nil
// recording, whose methods do nothing).
func openRecording(path string, start func(io.Writer) error, stop func()) (*recording, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &recording{f: f, start: start, stop: stop}, nil
}

// begin starts recording; the function it returns stops and closes the
// file. On error the file is closed.
func (r *recording) begin() (end func(), err error) {
	if r == nil {
		return func() {}, nil
	}
	if err := r.start(r.f); err != nil {
		r.f.Close()
		return nil, err
	}
	return func() {
		r.stop()
		r.f.Close()
	}, nil
}

// close closes the file (again, harmlessly, after begin's end).
func (r *recording) close() {
	if r != nil {
		r.f.Close()
	}
}
