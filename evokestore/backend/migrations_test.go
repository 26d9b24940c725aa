package backend_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/evoke-go/evoke/evokestore/backend"
)

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	ms, err := backend.LoadMigrations(fstest.MapFS{
		"m/0010_later.sql": {Data: []byte("B")},
		"m/0002_first.sql": {Data: []byte("A")},
		"m/readme.txt":     {Data: []byte("ignored")},
	}, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Version != 2 || ms[0].SQL != "A" || ms[1].Name != "0010_later.sql" {
		t.Fatalf("migrations %+v, want 0002 then 0010", ms)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"no underscore": {"m/0001.sql": {}},
		"bad version":   {"m/x_a.sql": {}},
		"zero version":  {"m/0000_a.sql": {}},
		"duplicate":     {"m/0001_a.sql": {}, "m/1_b.sql": {}},
		"none":          {},
	} {
		if _, err := backend.LoadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestApplyRunsWhatIsNewAndRecordsIt(t *testing.T) {
	ms := []backend.Migration{{Version: 1, Name: "0001_a.sql", SQL: "A"}, {Version: 2, Name: "0002_b.sql", SQL: "B"}, {Version: 3, Name: "0003_c.sql", SQL: "C"}}
	var ran []string
	exec := func(q string, args ...any) error {
		if q == "REC" {
			q = fmt.Sprintf("REC %d", args[0])
		}
		ran = append(ran, q)
		return nil
	}
	n, err := backend.Apply(ms, 1, errTooNew, exec, "REC")
	if err != nil || n != 2 || strings.Join(ran, ",") != "B,REC 2,C,REC 3" {
		t.Errorf("Apply from 1 = %d, %v, ran %v; want 2 applied: B,REC 2,C,REC 3", n, err, ran)
	}
	ran = nil
	if n, err := backend.Apply(ms, 3, errTooNew, exec, "REC"); n != 0 || err != nil || len(ran) != 0 {
		t.Errorf("Apply at the newest = %d, %v, ran %v; want nothing", n, err, ran)
	}
	if _, err := backend.Apply(ms, 4, errTooNew, exec, "REC"); !errors.Is(err, errTooNew) {
		t.Errorf("Apply on a newer schema = %v, want errTooNew", err)
	}
	failing := func(q string, args ...any) error {
		if q == "C" {
			return errors.New("syntax")
		}
		return nil
	}
	if n, err := backend.Apply(ms, 0, errTooNew, failing, "REC"); n != 2 || err == nil || !strings.Contains(err.Error(), "0003_c.sql") {
		t.Errorf("Apply with a failing migration = %d, %v; want 2 applied and an error naming 0003_c.sql", n, err)
	}
}

var errTooNew = errors.New("too new")
