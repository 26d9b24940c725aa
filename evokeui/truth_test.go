package evokeui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evokeui"
)

// The overview's numbers are the store's: every executed command counted
// (those executed with their step too), the ended instances by outcome;
// the list filters by status, outcome, age and ID, and an ID found whole
// opens its page; /metrics says the same in the Prometheus format.
func TestNumbersTellTheTruth(t *testing.T) {
	t.Parallel()
	st, srv, _ := demoStore(t)
	ctx := context.Background()
	c := srv.Client()
	tally, err := st.Tally(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ended := tally.Outcomes["order_fulfillment"]
	// 200 orders: a payment each; the 184 paid an inventory reservation
	// and a shipment; the timed-out ones a refund.
	if want := 200 + 2*(200-ended[evokestore.EndCompensated]) + ended[evokestore.EndTimedOut]; tally.Executed != want ||
		tally.Rejected != ended[evokestore.EndCompensated] || ended[evokestore.EndTimedOut] == 0 || ended[evokestore.EndCompensated] == 0 {
		t.Fatalf("tally %+v, want %d executed, as many rejected as compensated, some timed out", tally, want)
	}

	_, body := get(t, c, srv.URL+"/")
	if want := fmt.Sprintf(`<span id="executed">%d commands executed (%d rejected)</span>`, tally.Executed, tally.Rejected); !strings.Contains(body, want) {
		t.Errorf("overview does not say %s:\n%s", want, body)
	}
	for _, o := range evokestore.Outcomes {
		if ended[o] == 0 {
			continue
		}
		want := fmt.Sprintf(`<a class="o-%s" href="/instances?pm=order_fulfillment&amp;outcome=%s">%d</a>`, o, o, ended[o])
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %s", want)
		}
	}

	rows := regexp.MustCompile(`<td><a href="/instance\?pm=order_fulfillment&amp;id=([^"]+)">`)
	list := func(query string) []string {
		t.Helper()
		code, body := get(t, c, srv.URL+"/instances?"+query)
		if code != http.StatusOK {
			t.Fatalf("/instances?%s: %d %s", query, code, body)
		}
		var ids []string
		for _, m := range rows.FindAllStringSubmatch(body, -1) {
			ids = append(ids, m[1])
		}
		return ids
	}
	for _, o := range []evokestore.InstanceOutcome{evokestore.EndCompensated, evokestore.EndTimedOut} {
		ids := list("pm=order_fulfillment&outcome=" + string(o))
		if int64(len(ids)) != ended[o] {
			t.Errorf("outcome %s lists %d instances, want %d", o, len(ids), ended[o])
		}
		insts, _ := st.Instances(ctx, "order_fulfillment", ids)
		for _, in := range insts {
			if in.FinalOutcome() != o {
				t.Errorf("outcome %s lists %s, which ended %s", o, in.ID, in.FinalOutcome())
			}
		}
		// Its page says so, in the outcome's colour.
		want := fmt.Sprintf(`<span id="status" class="o-%s">completed</span> <span id="outcome" class="badge o-%s">%s</span>`, o, o, strings.ReplaceAll(string(o), "_", " "))
		if _, body := get(t, c, srv.URL+"/instance?pm=order_fulfillment&id="+ids[0]); !strings.Contains(body, want) {
			t.Errorf("the page of %s lacks %s", ids[0], want)
		}
	}
	for _, c := range []struct {
		query string
		want  int
	}{
		{"pm=order_fulfillment&status=parked", 2},
		{"pm=order_fulfillment&status=failing", 1},
		{"status=parked&age=%3C1h", 2},
		{"pm=order_fulfillment&age=%3E1h", 0},
		{"q=order-000019", 10},
		{"pm=order_fulfillment&q=stuck-&status=parked", 2},
		{"q=stuck-&outcome=completed", 0},
	} {
		if got := list(c.query); len(got) != c.want {
			t.Errorf("/instances?%s lists %v, want %d", c.query, got, c.want)
		}
	}
	if code, _ := get(t, c, srv.URL+"/instances?age=soon"); code != http.StatusBadRequest {
		t.Errorf("a bad age: %d", code)
	}
	// An ID found whole opens its page (the client follows the redirect).
	if _, body := get(t, c, srv.URL+"/instances?q=order-0000002"); !strings.Contains(body, `<span id="instance-id">order-0000002</span>`) {
		t.Errorf("searching an ID does not open its page:\n%s", body)
	}

	// /metrics.
	code, metrics := get(t, c, srv.URL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, metrics)
	}
	value := func(series string) int64 {
		t.Helper()
		for _, line := range strings.Split(metrics, "\n") {
			if v, ok := strings.CutPrefix(line, series+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				return int64(f)
			}
		}
		t.Errorf("/metrics has no %s", series)
		return -1
	}
	if got := value("evoke_commands_executed"); got != tally.Executed {
		t.Errorf("evoke_commands_executed %d, want %d", got, tally.Executed)
	}
	if got := value("evoke_commands_rejected"); got != tally.Rejected {
		t.Errorf("evoke_commands_rejected %d, want %d", got, tally.Rejected)
	}
	for _, o := range evokestore.Outcomes {
		if got := value(fmt.Sprintf(`evoke_instances_ended{outcome="%s",process_manager="order_fulfillment"}`, o)); got != ended[o] {
			t.Errorf("ended %s: %d, want %d", o, got, ended[o])
		}
	}
	if got := value(`evoke_instances{process_manager="order_fulfillment",status="parked"}`); got != 2 {
		t.Errorf("parked instances: %d", got)
	}
	if got := value(`evoke_parked_events{process_manager="order_fulfillment"}`); got != 1 {
		t.Errorf("parked events: %d", got)
	}
	value(`evoke_checkpoint_lag_events{process_manager="order_fulfillment"}`)
	value("evoke_store_up")
	if !strings.Contains(metrics, "# TYPE evoke_commands_executed gauge") || !strings.Contains(metrics, "go_goroutines") {
		t.Errorf("/metrics exposition:\n%s", metrics)
	}
}

func TestReadableJSON(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{`{"a":"x\u003cy\u003e\u0026z"}`, "{\n  \"a\": \"x<y>&z\"\n}"},
		{`{"a":"\u003C"}`, "{\n  \"a\": \"<\"\n}"},
		{`{"a":"\\u003c"}`, "{\n  \"a\": \"\\\\u003c\"\n}"}, // an escaped backslash, then text
		{`{"a":"\"\u003c\""}`, "{\n  \"a\": \"\\\"<\\\"\"\n}"},
		{`{"a":"\u00e9\n"}`, "{\n  \"a\": \"\\u00e9\\n\"\n}"},
		{`[1,2]`, "[\n  1,\n  2\n]"},
		{`not json`, "not json"},
	} {
		if got := evokeui.ReadableJSON([]byte(c.in)); got != c.want {
			t.Errorf("ReadableJSON(%s) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Mounted with the runtime, /metrics adds the runtime's counters.
func TestMetricsWithTheRuntime(t *testing.T) {
	t.Parallel()
	st, _, _ := demoStore(t)
	rt, err := evoke.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(evokeui.Handler(st, evokeui.Options{Actions: rt}))
	t.Cleanup(srv.Close)
	code, body := get(t, srv.Client(), srv.URL+"/metrics")
	for _, want := range []string{"# TYPE evoke_runtime_steps_total counter", "evoke_runtime_steps_total 0", "evoke_runtime_write_seconds_total 0", "evoke_commands_executed "} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("/metrics %d lacks %q:\n%s", code, want, body)
		}
	}
}
