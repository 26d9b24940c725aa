package cli

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// modulePath is evoke's module path.
const modulePath = "github.com/evoke-go/evoke"

// runVersion prints the evoke module's version, the VCS revision the binary
// was built from (with "+modified" when the work tree had changes) and the
// Go version that built it.
func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "", stdout, stderr)
	if err := fs.parseNoArgs(args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, versionLine(debug.ReadBuildInfo()))
	return nil
}

// versionLine describes the build: "evoke VERSION (revision REV, TIME)
// GOVERSION", or, in a program that imports evoke, "evoke VERSION (a
// dependency of PATH) GOVERSION". The version is the module's as the go command recorded it:
// a tag or pseudo-version when evoke is a dependency or was installed with
// go install …@version, "(devel)" when built from a checkout.
func versionLine(bi *debug.BuildInfo, ok bool) string {
	if !ok {
		return "evoke (no build information) " + runtime.Version()
	}
	version := bi.Main.Version
	if bi.Main.Path != modulePath { // a program that imports evoke's cli
		version = "(unknown)"
		for _, d := range bi.Deps {
			if d.Path == modulePath {
				version = d.Version
			}
		}
		return fmt.Sprintf("evoke %s (a dependency of %s) %s", version, bi.Main.Path, bi.GoVersion)
	}
	var rev, at, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+modified"
			}
		}
	}
	vcs := "no VCS revision: built with -buildvcs=false or outside a repository"
	if rev != "" {
		vcs = "revision " + rev + modified
		if at != "" {
			vcs += ", " + at
		}
	}
	return fmt.Sprintf("evoke %s (%s) %s", version, vcs, bi.GoVersion)
}
