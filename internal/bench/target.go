package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evoke-go/evoke/evokestore"
)

// Target is an empty store opened for a bench run.
type Target struct {
	Store evokestore.Store
	// Schema is the PostgreSQL schema of the run ("" for SQLite).
	Schema string
	// created is set when OpenEmpty made the schema up, so Close may drop
	// it; adminURL connects without evoke_schema.
	created  bool
	adminURL string
}

// Opener opens the store named by a --store spec (cli.OpenStore).
type Opener func(ctx context.Context, spec string) (evokestore.Store, error)

// sqlitePath is the file a SQLite spec (PATH or sqlite:PATH) names.
func sqlitePath(spec string) string { return strings.TrimPrefix(spec, "sqlite:") }

// IsPostgres reports whether spec names a PostgreSQL store.
func IsPostgres(spec string) bool {
	return strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://")
}

// OpenEmpty opens an empty store for spec with open.
//
// A SQLite file that exists and is not empty is refused unless force is
// set; then it is deleted with its -wal and -shm files first. For a
// postgres:// URL without an evoke_schema parameter, a fresh schema
// evoke_bench_<unix nanos> is created (Close drops it unless asked to keep
// it); a schema named by the URL is used as is and must be empty.
func OpenEmpty(ctx context.Context, spec string, force bool, open Opener) (*Target, error) {
	t := &Target{}
	if IsPostgres(spec) {
		u, err := url.Parse(spec)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		q := u.Query()
		t.Schema = q.Get("evoke_schema")
		if t.Schema == "" {
			t.Schema = fmt.Sprintf("evoke_bench_%d", time.Now().UnixNano())
			t.created = true
			q.Set("evoke_schema", t.Schema)
			u.RawQuery = q.Encode()
			spec = u.String()
		}
		q.Del("evoke_schema")
		u.RawQuery = q.Encode()
		t.adminURL = u.String()
	} else {
		path := sqlitePath(spec)
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			if !force {
				return nil, fmt.Errorf("%w: %s exists (pass --force to delete it)", ErrNotEmpty, path)
			}
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return nil, err
				}
			}
		}
	}
	st, err := open(ctx, spec)
	if err != nil {
		if t.created {
			_ = t.dropSchema(ctx)
		}
		return nil, err
	}
	t.Store = st
	if err := checkEmpty(ctx, st); err != nil {
		_ = t.Close(ctx, true)
		return nil, err
	}
	return t, nil
}

// Close closes the store and, unless keep is set, drops the schema
// OpenEmpty created.
func (t *Target) Close(ctx context.Context, keep bool) error {
	err := t.Store.Close()
	if t.created && !keep {
		err = errors.Join(err, t.dropSchema(ctx))
	}
	return err
}

// Settle brings a PostgreSQL schema to the state a long-lived database
// with these instances would be in: VACUUM (ANALYZE) of the instances table
// sets the freshly seeded rows' hint bits and visibility map and gives the
// planner statistics (autovacuum would, in time). It does nothing for
// SQLite. Run uses it through Options.AfterSeed.
func (t *Target) Settle(ctx context.Context) error {
	if t.adminURL == "" {
		return nil
	}
	conn, err := pgx.Connect(ctx, t.adminURL)
	if err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	defer conn.Close(ctx)
	table := pgx.Identifier{t.Schema, "instances"}.Sanitize()
	if _, err := conn.Exec(ctx, `VACUUM (ANALYZE) `+table); err != nil {
		return fmt.Errorf("vacuum %s: %w", table, err)
	}
	return nil
}

func (t *Target) dropSchema(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, t.adminURL)
	if err != nil {
		return fmt.Errorf("drop schema %s: %w", t.Schema, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{t.Schema}.Sanitize()+` CASCADE`); err != nil {
		return fmt.Errorf("drop schema %s: %w", t.Schema, err)
	}
	return nil
}
