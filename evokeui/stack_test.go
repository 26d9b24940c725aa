package evokeui_test

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evokeui"
)

// An instance parked by a panic shows the message, and the stack in a
// <details> block under it.
func TestInstancePageShowsPanicStack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := evokesqlite.Open(ctx, filepath.Join(t.TempDir(), "ui.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const (
		msg   = "pm.Handle(Lit): panic in pm.Handle: fuse <burnt>"
		stack = "goroutine 7 [running]:\nexample.com/app.explode(...)\n\t/app/pm.go:12\nexample.com/app.pm.Handle(...)\n\t/app/pm.go:20 +0x1d"
	)
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.PutInstances(ctx, []evokestore.InstanceWrite{{PrevVersion: -1, Instance: evokestore.Instance{ProcessManager: "pm", ID: "b1",
		Version: 1, Status: evokestore.StatusParked, Attempts: 3, LastError: msg + "\n\n" + stack, CreatedAt: time.Now(), UpdatedAt: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(evokeui.Handler(st, evokeui.Options{}))
	defer srv.Close()
	code, body := get(t, http.DefaultClient, srv.URL+"/instance?pm=pm&id=b1")
	if code != http.StatusOK {
		t.Fatalf("instance page: %d\n%s", code, body)
	}
	for _, want := range []string{
		`<pre id="last-error">` + html.EscapeString(msg) + `</pre>`,
		`<details id="stack"><summary>panic stack</summary><pre>goroutine 7 [running]:` + "\n" + `example.com/app.explode(...)`,
		"/app/pm.go:20 &#43;0x1d</pre></details>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("instance page lacks %q:\n%s", want, body)
		}
	}
}
