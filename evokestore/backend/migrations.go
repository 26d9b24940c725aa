package backend

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migration is one versioned schema change of a backend, for backends that
// embed their migrations as NNNN_name.sql files.
type Migration struct {
	Version int64
	Name    string
	SQL     string
}

// LoadMigrations reads the NNNN_name.sql files of dir in fsys, in version
// order; versions must be positive and distinct, and there must be at least
// one.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, n := range names {
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		if !ok {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", base)
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: bad version", base)
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s share a version", ms[i-1].Name, ms[i].Name)
		}
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations embedded")
	}
	return ms, nil
}

// Apply applies the migrations of ms after version cur, in order, through
// exec, and records each with the statement record (its parameters: the
// version and the time in Unix nanoseconds). It returns how many it
// applied. A schema newer than the newest of ms fails with tooNew: a binary
// never runs against a schema it does not know.
func Apply(ms []Migration, cur int64, tooNew error, exec func(sql string, args ...any) error, record string) (int, error) {
	latest := ms[len(ms)-1].Version
	if cur > latest {
		return 0, fmt.Errorf("migrate: %w: the schema is at version %d, this binary knows up to %d; upgrade evoke", tooNew, cur, latest)
	}
	n := 0
	for _, m := range ms {
		if m.Version <= cur {
			continue
		}
		if err := exec(m.SQL); err != nil {
			return n, fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
		if err := exec(record, m.Version, time.Now().UnixNano()); err != nil {
			return n, fmt.Errorf("migrate: record %s: %w", m.Name, err)
		}
		n++
	}
	return n, nil
}
