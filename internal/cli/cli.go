// Package cli implements the evoke command-line tool, one file a command;
// cmd/evoke only calls Main. It is internal to the binary: the demo and
// bench workloads it runs (internal/demo, internal/bench) are the examples'
// process managers, which no public package imports. Every command names its store with --store: a SQLite file path (also
// written sqlite:PATH; the default is ./evoke.db) or a postgres:// URL, whose
// optional evoke_schema parameter names the schema holding evoke's tables
// (default public; ^[a-z_][a-z0-9_]{0,62}$). Only demo, bench and worker
// create a store; the other commands open an existing one and fail, creating
// nothing, when there is none.
//
// A command's flags may come before or after its arguments ("--" ends
// them); --help and -h print its usage on stdout. Every flag and the form of
// --store are checked before a store is opened. Main's exit codes: 0 on
// success and for help, 1 for an error, 2 for a usage error, 130 for a
// command that SIGINT or SIGTERM stopped after saying what it did.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"

	"github.com/evoke-go/evoke/evokepg"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/bench"
)

// DefaultStore is the store commands use without --store.
const DefaultStore = "./evoke.db"

// Errors that Main turns into exit codes.
var (
	// errUsage marks a usage error (exit code 2); the message was
	// printed.
	errUsage = errors.New("usage")
	// errInterrupted marks a command that stopped on SIGINT or SIGTERM
	// after saying what it did (exit code 130, as a shell reports a
	// process that SIGINT ended).
	errInterrupted = errors.New("interrupted")
)

// Exit codes of Main.
const (
	exitError       = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// usageError is a usage error whose message Main prints (exit code 2).
type usageError struct{ msg string }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errUsage }

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
		{"replay", "replay a demo process manager's instances through this binary's code; exit 1 if any differs", runReplay},
		{"serve", "serve the inspection web UI (instances, timelines, state machines, actions)", runServe},
		{"version", "print evoke's module version and VCS revision", runVersion},
	}
}

// Main runs the evoke command line with args (without the program name) and
// returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// The runtime logs from its goroutines while a command writes its
	// progress: one write at a time, as a process's own files take them.
	stdout, stderr = &lockedWriter{w: stdout}, &lockedWriter{w: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		usage(stdout)
		return 0
	}
	if args[0] == "help" { // evoke help [COMMAND]
		if len(args) == 1 {
			usage(stdout)
			return 0
		}
		args = []string{args[1], "--help"}
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				if ue := (*usageError)(nil); errors.As(err, &ue) {
					fmt.Fprintf(stderr, "evoke %s: %v\n", c.name, ue)
				}
				return exitUsage
			case errors.Is(err, errInterrupted):
				return exitInterrupted
			default:
				fmt.Fprintf(stderr, "evoke %s: %v\n", c.name, err)
				return exitError
			}
		}
	}
	fmt.Fprintf(stderr, "evoke: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "evoke runs process managers (sagas) for event-sourced systems.")
	fmt.Fprintln(w, "\nUsage: evoke <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery command takes --store: a SQLite file (PATH, sqlite:PATH or sqlite://PATH; default ./evoke.db)")
	fmt.Fprintln(w, "or a PostgreSQL URL (postgres://user@host/db?evoke_schema=NAME). Only demo, bench and")
	fmt.Fprintln(w, "worker create a store; the other commands open an existing one.")
	fmt.Fprintln(w, "Flags may come before or after a command's arguments.")
	fmt.Fprintln(w, "Run `evoke <command> --help` (or `evoke help <command>`) for its flags.")
}

// OpenOpts are OpenStore's options.
type OpenOpts struct {
	// Create creates the store (the SQLite file, or the PostgreSQL schema,
	// and evoke's tables) if it is missing, as demo, bench and worker do.
	// Defaults to false: OpenStore opens an existing store only, and fails
	// with an error wrapping evokestore.ErrStoreNotFound, creating
	// nothing, when there is none.
	Create bool
}

// OpenStore opens the store named by spec: a SQLite file path, also written
// sqlite:PATH, or a postgres:// URL whose evoke_schema parameter names the
// schema (see evokepg.Options.Schema for the names it accepts). opts may be
// nil. A malformed spec (a URL that does not parse, a query with a ';', a
// schema name evokepg refuses) is a usage error, found before anything is
// opened.
func OpenStore(ctx context.Context, spec string, opts *OpenOpts) (evokestore.Store, error) {
	var o OpenOpts
	if opts != nil {
		o = *opts
	}
	if spec == "" {
		spec = DefaultStore
	}
	if err := checkStoreSpec(spec); err != nil {
		return nil, err
	}
	if bench.IsPostgres(spec) {
		dsn, schema, err := splitSchema(spec)
		if err != nil {
			return nil, err
		}
		st, err := evokepg.Open(ctx, dsn, &evokepg.Options{Schema: schema, MustExist: !o.Create})
		switch {
		case errors.Is(err, evokepg.ErrInvalidSchema):
			return nil, usageErrorf("--store %s: evoke_schema: %v", redact(spec), err)
		case err != nil:
			return nil, fmt.Errorf("open store %s: %w%s", redact(spec), err, createHint(err))
		}
		return st, nil
	}
	// (evokesqlite.Open takes PATH, sqlite:PATH and sqlite://PATH itself.)
	st, err := evokesqlite.Open(ctx, spec, &evokesqlite.Options{MustExist: !o.Create})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w%s", spec, err, createHint(err))
	}
	return st, nil
}

// checkStoreSpec refuses a --store that names no store evoke can open,
// before anything is opened: a URL of another scheme (mysql://) and a
// malformed postgres:// URL are usage errors; a SQLite path that is a
// directory, or whose directory is missing, is an error of its own (SQLite
// itself says "unable to open database file" to all three).
func checkStoreSpec(spec string) error {
	if bench.IsPostgres(spec) {
		_, _, err := splitSchema(spec)
		return err
	}
	path, ok := strings.CutPrefix(spec, "sqlite://")
	if !ok {
		path, ok = strings.CutPrefix(spec, "sqlite:")
	}
	if scheme, _, found := strings.Cut(spec, "://"); !ok && found {
		return usageErrorf("--store %s: evoke has no %s store; --store takes a SQLite file (PATH or sqlite:PATH) or a postgres:// URL", redact(spec), scheme)
	}
	switch {
	case path == "":
		return usageErrorf("--store %q: empty SQLite path", spec)
	case strings.ContainsRune(path, '?'):
		return usageErrorf("--store %s: a SQLite path must not contain '?'", spec)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("--store %s is a directory, not a SQLite file: name a file in it, such as %s", spec, filepath.Join(path, "evoke.db"))
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		return fmt.Errorf("--store %s: directory %s does not exist (evoke creates the store file, not its directory)", spec, dir)
	} else if !fi.IsDir() {
		return fmt.Errorf("--store %s: %s is not a directory", spec, dir)
	}
	return nil
}

// splitSchema takes the evoke_schema parameter out of a postgres:// URL.
// The query must parse whole: Go's URL parser drops a pair holding a ';'
// (evoke_schema=a;b), which would silently select the default schema.
func splitSchema(spec string) (dsn, schema string, err error) {
	u, err := url.Parse(spec)
	if err != nil {
		return "", "", usageErrorf("--store %s: %v", redact(spec), errors.Unwrap(err))
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", "", usageErrorf("--store %s: malformed query: %v", redact(spec), err)
	}
	if vs := q["evoke_schema"]; len(vs) > 1 {
		return "", "", usageErrorf("--store %s: evoke_schema given %d times", redact(spec), len(vs))
	}
	schema = q.Get("evoke_schema")
	q.Del("evoke_schema")
	u.RawQuery = q.Encode()
	return u.String(), schema, nil
}

// createHint tells the user which commands create a store, after an error
// that says there is none.
func createHint(err error) string {
	if errors.Is(err, evokestore.ErrStoreNotFound) {
		return " (evoke demo, bench and worker create a store; the other commands open an existing one)"
	}
	return ""
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

// flagSet is a command's flags: its usage goes to stdout when asked for
// (-h, --help) and to stderr after a usage error.
type flagSet struct {
	*flag.FlagSet
	synopsis       string
	stdout, stderr io.Writer
}

// newFlags returns the flag set of command name, whose synopsis follows
// "evoke name" in its usage.
func newFlags(name, synopsis string, stdout, stderr io.Writer) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), synopsis: synopsis, stdout: stdout, stderr: stderr}
	fs.SetOutput(stderr)
	fs.FlagSet.Usage = func() {} // parse prints the usage where it belongs
	return fs
}

// printUsage writes the command's usage: what it does, its synopsis and its
// flags with their defaults.
func (fs *flagSet) printUsage(w io.Writer) {
	for _, c := range commands() {
		if c.name == fs.Name() {
			fmt.Fprintf(w, "evoke %s: %s\n\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(w, "Usage: evoke %s %s\n\nFlags may come before or after the arguments; -- ends them.\n\nFlags:\n", fs.Name(), fs.synopsis)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(fs.stderr)
}

// parse parses args, whose flags may come before, between or after the
// positional arguments (up to a "--"), and returns the positional
// arguments. -h and --help print the usage on stdout and return
// flag.ErrHelp (exit code 0); a bad flag prints the problem and the usage
// on stderr and returns errUsage.
func (fs *flagSet) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.printUsage(fs.stdout)
				return nil, flag.ErrHelp
			}
			fmt.Fprintln(fs.stderr)
			fs.printUsage(fs.stderr)
			return nil, errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// parseNoArgs parses args for a command that takes flags only.
func (fs *flagSet) parseNoArgs(args []string) error {
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected arguments %q (evoke %s takes flags only; see evoke %s --help)", pos, fs.Name(), fs.Name())
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

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// fileOf returns the file w writes to, if it is one.
func fileOf(w io.Writer) (*os.File, bool) {
	if l, ok := w.(*lockedWriter); ok {
		w = l.w
	}
	f, ok := w.(*os.File)
	return f, ok
}
