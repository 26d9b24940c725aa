package remotetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evoke-go/evoke/evokepg"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
)

// StoreSpec names a store a child process can open too: a SQLite file, or
// a PostgreSQL schema.
type StoreSpec struct {
	Backend string // "sqlite" or "postgres"
	Path    string // SQLite file
	Schema  string // PostgreSQL schema, at EVOKE_TEST_POSTGRES_URL
}

// String encodes the spec for an environment variable.
func (s StoreSpec) String() string { return s.Backend + "|" + s.Path + "|" + s.Schema }

// ParseSpec decodes String's encoding.
func ParseSpec(v string) (StoreSpec, error) {
	var s StoreSpec
	parts := strings.SplitN(v, "|", 3)
	if len(parts) != 3 {
		return s, fmt.Errorf("bad store spec %q", v)
	}
	s.Backend, s.Path, s.Schema = parts[0], parts[1], parts[2]
	return s, nil
}

// Open opens the store of spec.
func (s StoreSpec) Open(ctx context.Context) (evokestore.Store, error) {
	if s.Backend == "sqlite" {
		return evokesqlite.Open(ctx, s.Path, nil)
	}
	return evokepg.Open(ctx, os.Getenv("EVOKE_TEST_POSTGRES_URL"), &evokepg.Options{Schema: s.Schema})
}

// NewSpec returns a fresh store spec for backend, removed after the test.
// PostgreSQL needs EVOKE_TEST_POSTGRES_URL: without it, the test is
// skipped, saying how to enable it.
func NewSpec(t *testing.T, backend string) StoreSpec {
	t.Helper()
	if backend == "sqlite" {
		return StoreSpec{Backend: backend, Path: filepath.Join(t.TempDir(), "evoke.db")}
	}
	url := os.Getenv("EVOKE_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("set EVOKE_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
	}
	schema := fmt.Sprintf("evoke_remote_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		if conn, err := pgx.Connect(ctx, url); err == nil {
			_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			_ = conn.Close(ctx)
		}
	})
	return StoreSpec{Backend: backend, Schema: schema}
}

// OpenSpec opens spec's store, closed after the test.
func OpenSpec(t *testing.T, spec StoreSpec) evokestore.Store {
	t.Helper()
	st, err := spec.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// EachStore runs f as a parallel subtest on a fresh SQLite file and on a
// fresh PostgreSQL schema.
func EachStore(t *testing.T, f func(t *testing.T, spec StoreSpec, st evokestore.Store)) {
	t.Helper()
	for _, b := range []string{"sqlite", "postgres"} {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			spec := NewSpec(t, b)
			f(t, spec, OpenSpec(t, spec))
		})
	}
}

// ServiceURL returns the URL of a service the test needs from the
// environment variable env (set by .ci/run, which starts the service). A
// test outside CI without it is skipped, saying how to enable it; in CI
// (CI set) it fails.
func ServiceURL(t *testing.T, env, example string) string {
	t.Helper()
	url := os.Getenv(env)
	if url == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set in CI", env)
		}
		t.Skipf("set %s (e.g. %s) to run this test against the real service", env, example)
	}
	return url
}
