package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// The inspection commands read a store the demo wrote: list, show (with
// the timeline of steps, commands and their outcomes), and the state
// machine drawn from the recorded transitions.
func TestInspect(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "demo.db")
	if code, _, errs := run(t, "demo", "--store", db, "--orders", "200", "--fail-rate", "0.1"); code != 0 {
		t.Fatalf("demo: exit %d: %s", code, errs)
	}

	code, out, errs := run(t, "list", "--store", db, "--pm", "order_fulfillment", "--limit", "5")
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 7 || !strings.HasPrefix(lines[0], "PROCESS MANAGER") || !strings.Contains(lines[1], "order-0000001") ||
		!strings.Contains(lines[6], "more with --after order-0000005") {
		t.Errorf("list --limit 5:\n%s", out)
	}
	// Without --pm, the hint names the process manager --after pages in.
	if code, out, _ := run(t, "list", "--store", db, "--limit", "5"); code != 0 || !strings.Contains(out, "more with --pm order_fulfillment --after order-0000005") {
		t.Errorf("list --limit 5 without --pm (exit %d):\n%s", code, out)
	}
	code, out, _ = run(t, "list", "--store", db, "--pm", "order_fulfillment", "--status", "completed", "--limit", "1000", "--json")
	if code != 0 {
		t.Fatalf("list --json: exit %d", code)
	}
	var declined string
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var in map[string]any
		if err := json.Unmarshal([]byte(l), &in); err != nil {
			t.Fatalf("list --json line %q: %v", l, err)
		}
		if in["status"] != "completed" {
			t.Errorf("list --status completed gave %v", in)
		}
		if in["phase"] == "payment_failed" && declined == "" {
			declined = in["id"].(string)
		}
		n++
	}
	if n != 200 || declined == "" {
		t.Fatalf("list --json: %d completed, declined %q", n, declined)
	}
	if code, out, _ := run(t, "list", "--store", db, "--status", "parked"); code != 0 || strings.TrimSpace(out) != "no instances" {
		t.Errorf("list --status parked: exit %d, %q", code, out)
	}
	if code, _, _ := run(t, "list", "--store", db, "--status", "sleepy"); code != 2 {
		t.Errorf("unknown status: exit %d, want 2", code)
	}

	// A clean order: four steps, three commands accepted, each with its event.
	code, out, errs = run(t, "show", "--store", db, "--pm", "order_fulfillment", "order-0000002")
	if code != 0 {
		t.Fatalf("show: exit %d: %s", code, errs)
	}
	for _, want := range []string{"order_fulfillment order-0000002: completed (completed), version 4",
		"step OrderPlaced @", "- -> awaiting_payment", "=> process_payment to payment-order-0000002", "accepted",
		"step ItemShipped", "awaiting_shipment -> completed", `"order_id": "order-0000002"`} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	// A declined one: the rejection and its reason.
	code, out, _ = run(t, "show", "--store", db, "--pm", "order_fulfillment", "--json", declined)
	if code != 0 {
		t.Fatalf("show --json: exit %d", code)
	}
	var v struct {
		Instance map[string]any `json:"instance"`
		Timeline []struct {
			Kind      string `json:"kind"`
			EventType string `json:"event_type"`
			Commands  []struct {
				Type    string `json:"type"`
				Outcome string `json:"outcome"`
				Reason  string `json:"reason"`
			} `json:"commands"`
		} `json:"timeline"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Timeline) != 2 || len(v.Timeline[0].Commands) != 1 || v.Timeline[0].Commands[0].Outcome != "rejected" ||
		v.Timeline[0].Commands[0].Reason == "" || v.Timeline[1].EventType != "$rejected" {
		t.Errorf("declined order's timeline: %+v", v.Timeline)
	}
	if code, _, errs := run(t, "show", "--store", db, "--pm", "order_fulfillment", "order-9999999"); code != 1 || !strings.Contains(errs, "no instance") {
		t.Errorf("show of a missing instance: exit %d, %q", code, errs)
	}
	if code, _, _ := run(t, "show", "--store", db, "order-0000002"); code != 2 {
		t.Errorf("show without --pm: exit %d, want 2", code)
	}

	code, out, errs = run(t, "graph", "--store", db, "--pm", "order_fulfillment")
	if code != 0 {
		t.Fatalf("graph: exit %d: %s", code, errs)
	}
	for _, want := range []string{"stateDiagram-v2", "from the history of 200 instances",
		"[*] --> awaiting_payment: OrderPlaced (200)", "awaiting_payment --> payment_failed: $rejected",
		"awaiting_shipment --> completed: ItemShipped", "completed --> [*]", "payment_failed --> [*]"} {
		if !strings.Contains(out, want) {
			t.Errorf("mermaid graph lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run(t, "graph", "--store", db, "--pm", "order_fulfillment", "--format", "dot")
	if code != 0 || !strings.HasPrefix(out, `digraph "order_fulfillment" {`) || !strings.Contains(out, `"(start)" -> "awaiting_payment" [label="OrderPlaced (200)"];`) {
		t.Errorf("dot graph (exit %d):\n%s", code, out)
	}
	if code, _, errs := run(t, "graph", "--store", db, "--pm", "nobody"); code != 1 || !strings.Contains(errs, "no instances") {
		t.Errorf("graph of an unknown process manager: exit %d, %q", code, errs)
	}
}
