package backend_test

import (
	"github.com/evoke-go/evoke/evokestore/backend"
	"testing"
	"testing/fstest"
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
