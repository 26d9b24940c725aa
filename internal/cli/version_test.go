package cli

import (
	"runtime/debug"
	"testing"
)

func TestVersionLine(t *testing.T) {
	t.Parallel()
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}}
	for _, c := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"checkout", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: modulePath, Version: "(devel)"}, Settings: vcs},
			true, "evoke (devel) (revision 0123abcd, 2026-01-02T03:04:05Z) go1.26.0"},
		{"modified", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: modulePath, Version: "(devel)"},
			Settings: append(vcs, debug.BuildSetting{Key: "vcs.modified", Value: "true"})},
			true, "evoke (devel) (revision 0123abcd+modified, 2026-01-02T03:04:05Z) go1.26.0"},
		{"installed", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: modulePath, Version: "v1.2.3"}},
			true, "evoke v1.2.3 (no VCS revision: built with -buildvcs=false or outside a repository) go1.26.0"},
		{"dependency", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "example.com/app"},
			Deps: []*debug.Module{{Path: modulePath, Version: "v1.2.4"}}, Settings: vcs},
			true, "evoke v1.2.4 (a dependency of example.com/app) go1.26.0"},
	} {
		if got := versionLine(c.bi, c.ok); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
