package evokeui_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evoke-go/evoke/evokepg"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evokeui"
)

// On a store that leases partitions (PostgreSQL), an instance's page names
// the node that steps it and whether it is alive, or says that none does.
func TestInstancePageNamesItsRunner(t *testing.T) {
	t.Parallel()
	url := os.Getenv("EVOKE_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("set EVOKE_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
	}
	ctx := context.Background()
	schema := fmt.Sprintf("evoke_ui_%d", time.Now().UnixNano())
	st, err := evokepg.Open(ctx, url, &evokepg.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Close()
		if conn, err := pgx.Connect(ctx, url); err == nil {
			_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			_ = conn.Close(ctx)
		}
	})
	err = evokestore.WithTx(ctx, st, func(tx evokestore.Tx) error {
		return tx.PutInstances(ctx, []evokestore.InstanceWrite{{PrevVersion: -1, Instance: evokestore.Instance{ProcessManager: "pm", ID: "x",
			Partition: 1, Version: 1, Status: evokestore.StatusFailing, LastError: "boom", Attempts: 1, NextAttemptAt: time.Now(),
			State: []byte(`{}`), CreatedAt: time.Now(), UpdatedAt: time.Now()}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(evokeui.Handler(st, evokeui.Options{}))
	t.Cleanup(srv.Close)
	runner := func() string {
		t.Helper()
		_, body := get(t, srv.Client(), srv.URL+"/instance?pm=pm&id=x")
		i := strings.Index(body, `<p id="runner"`)
		if i < 0 {
			t.Fatalf("no runner on the page:\n%s", body)
		}
		return body[i : i+strings.Index(body[i:], "</p>")]
	}
	if got := runner(); !strings.Contains(got, "No node leases partition 1: <b>no runtime is stepping this instance</b>") {
		t.Errorf("before any node: %s", got)
	}
	if _, err := st.Balance(ctx, "node-a", 2, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := runner(); !strings.Contains(got, "leased to node <b>node-a</b>, alive") || strings.Contains(got, "no runtime") {
		t.Errorf("with node-a: %s", got)
	}
	if err := st.Leave(ctx, "node-a"); err != nil {
		t.Fatal(err)
	}
	if got := runner(); !strings.Contains(got, "no runtime is stepping this instance") {
		t.Errorf("after node-a left: %s", got)
	}
}
