package evokeui_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/evoke-go/evoke/cli"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evokeui"
)

const token = "t0k3n"

// demoStore runs the demo (200 orders, 10% declined) into a new SQLite
// file and adds two parked instances, then serves the UI for it.
func demoStore(t *testing.T) (*evokesqlite.Store, *httptest.Server) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "ui.db")
	var out, errb bytes.Buffer
	if code := cli.Main(context.Background(), []string{"demo", "--store", db, "--orders", "200", "--fail-rate", "0.1"}, &out, &errb); code != 0 {
		t.Fatalf("demo: exit %d: %s", code, errb.String())
	}
	ctx := context.Background()
	st, err := evokesqlite.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ws []evokestore.InstanceWrite
	for _, id := range []string{"stuck-1", "stuck-2"} {
		ws = append(ws, evokestore.InstanceWrite{PrevVersion: -1, Instance: evokestore.Instance{ProcessManager: "order_fulfillment", ID: id,
			Version: 1, Status: evokestore.StatusParked, Phase: "awaiting_payment", Attempts: 5, LastError: "handle exploded",
			State: []byte(`{"order_id":"` + id + `"}`), CreatedAt: time.Now(), UpdatedAt: time.Now()}})
	}
	if err := tx.PutInstances(ctx, ws); err != nil {
		t.Fatal(err)
	}
	if err := tx.Hold(ctx, []evokestore.HeldEvent{{ProcessManager: "order_fulfillment", Position: 5, Error: "correlate exploded"}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.ReplaceDeadlines(ctx, "order_fulfillment", []string{"stuck-2"}, []evokestore.Deadline{
		{ProcessManager: "order_fulfillment", InstanceID: "stuck-2", Name: "$timeout", DueAt: time.Now().Add(time.Hour), Version: 1},
		{ProcessManager: "order_fulfillment", InstanceID: "stuck-2", Name: "reminder", DueAt: time.Now().Add(2 * time.Hour), Version: 1},
	}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(evokeui.Handler(st, evokeui.Options{Token: token}))
	t.Cleanup(srv.Close)
	return st, srv
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// The pages over HTTP, and the token guarding the actions.
func TestPagesAndToken(t *testing.T) {
	t.Parallel()
	st, srv := demoStore(t)
	c := srv.Client()
	code, body := get(t, c, srv.URL+"/")
	if code != 200 || !strings.Contains(body, `href="/instances?pm=order_fulfillment&amp;status=parked">2</a>`) {
		t.Fatalf("overview %d:\n%s", code, body)
	}
	code, body = get(t, c, srv.URL+"/instances?pm=order_fulfillment&status=parked")
	if code != 200 || !strings.Contains(body, "<td>$timeout in ") {
		t.Errorf("parked instances page %d: no next deadline:\n%s", code, body)
	}
	code, body = get(t, c, srv.URL+"/instances?pm=order_fulfillment&status=completed")
	if code != 200 || strings.Count(body, `<td class="s-completed">completed</td>`) != 100 || !strings.Contains(body, "next page") {
		t.Errorf("completed instances page %d: %d rows", code, strings.Count(body, `<td class="s-completed">completed</td>`))
	}
	code, body = get(t, c, srv.URL+"/instance?pm=order_fulfillment&id=order-0000002")
	if code != 200 || !strings.Contains(body, "⇒ process_payment to payment-order-0000002") || !strings.Contains(body, "awaiting_shipment → completed") {
		t.Errorf("instance page %d:\n%s", code, body)
	}
	if strings.Contains(body, `id="actions"`) {
		t.Error("a completed instance is offered actions")
	}
	_, body = get(t, c, srv.URL+"/instance?pm=order_fulfillment&id=stuck-2")
	if !strings.Contains(body, `<table id="deadlines">`) || !strings.Contains(body, "<td>reminder</td>") {
		t.Errorf("stuck-2's page does not list its deadlines:\n%s", body)
	}
	if !strings.Contains(body, "open the address <code>evoke serve</code> printed") || strings.Contains(body, `id="cancel"`) {
		t.Errorf("a visitor without the token is offered actions:\n%s", body)
	}
	if code, _ := get(t, c, srv.URL+"/instance?pm=order_fulfillment&id=nope"); code != 404 {
		t.Errorf("missing instance: %d", code)
	}
	code, body = get(t, c, srv.URL+"/graph?pm=order_fulfillment")
	if code != 200 || !strings.Contains(body, "<svg") || !strings.Contains(body, ">awaiting_payment</text>") || !strings.Contains(body, "OrderPlaced (200)") {
		t.Errorf("graph page %d:\n%s", code, body)
	}

	// Actions: refused without the token or with a wrong one.
	post := func(c *http.Client) int {
		resp, err := c.PostForm(srv.URL+"/action", url.Values{"pm": {"order_fulfillment"}, "id": {"stuck-1"}, "action": {"cancel"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(c); code != http.StatusForbidden {
		t.Errorf("action without the token: %d", code)
	}
	if code, _ := get(t, c, srv.URL+"/?token=wrong"); code != http.StatusForbidden {
		t.Errorf("wrong token: %d", code)
	}
	jar, _ := cookiejar.New(nil)
	op := &http.Client{Jar: jar}
	if code, body := get(t, op, srv.URL+"/?token="+token); code != 200 || !strings.Contains(body, "<span>operator</span>") {
		t.Fatalf("with the token: %d", code)
	}
	if code := post(op); code != 200 { // followed the redirect to the instance page
		t.Errorf("action with the token: %d", code)
	}

	// An event parked for the process manager (its Correlate failed):
	// shown on the overview and the instances page, and skipped.
	if _, body := get(t, op, srv.URL+"/"); !strings.Contains(body, `href="/instances?pm=order_fulfillment#parked">1</a>`) {
		t.Errorf("overview does not count the parked event:\n%s", body)
	}
	if _, body := get(t, op, srv.URL+"/instances?pm=order_fulfillment"); !strings.Contains(body, `<table id="parked-events">`) ||
		!strings.Contains(body, "correlate exploded") || !strings.Contains(body, `id="skip-event-5"`) || strings.Contains(body, `value="retry-event"`) {
		t.Errorf("instances page does not offer to skip the parked event (and only that):\n%s", body)
	}
	resp, err := op.PostForm(srv.URL+"/action", url.Values{"pm": {"order_fulfillment"}, "position": {"5"}, "action": {"skip-event"}})
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	_, _ = page.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(page.String(), "skip-event 5 done") {
		t.Errorf("after skipping the event:\n%s", page.String())
	}
	if held, _ := st.Held(context.Background(), "order_fulfillment", ""); len(held) != 0 {
		t.Errorf("still parked: %+v", held)
	}
	hist, _ := st.History(context.Background(), "order_fulfillment", "")
	if len(hist) != 1 || hist[0].Kind != evokestore.KindSkipped || hist[0].Position != 5 || hist[0].EventType == "" {
		t.Errorf("history of the process manager's parked events: %+v", hist)
	}
	in, _ := st.Instances(context.Background(), "order_fulfillment", []string{"stuck-1"})
	if len(in) != 1 || in[0].Status != evokestore.StatusCancelled {
		t.Errorf("after cancel: %+v", in)
	}
}

// chromium finds the browser; EVOKE_TEST_BROWSER=1 (CI) makes its absence
// an error instead of a skip.
func chromium(t *testing.T) string {
	for _, p := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("EVOKE_TEST_BROWSER") == "1" {
		t.Fatal("EVOKE_TEST_BROWSER=1 but no chromium on PATH")
	}
	t.Skip("no chromium on PATH (apt-get install chromium)")
	return ""
}

// A real browser: the operator opens the printed address, walks from the
// overview to a parked instance and cancels it; the state machine is drawn.
// With EVOKE_UI_SCREENSHOTS=DIR the pages are saved there as PNG.
func TestBrowser(t *testing.T) {
	t.Parallel()
	bin := chromium(t)
	st, srv := demoStore(t)
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900))
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	shots := os.Getenv("EVOKE_UI_SCREENSHOTS")
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	do(chromedp.Navigate(srv.URL + "/?token=" + token))
	pms := text("#pms")
	shot("ui-overview")
	do(chromedp.Click(chromedp.CSS("a.s-parked")), chromedp.WaitVisible(chromedp.CSS("#instances")))
	parked := text("#instances")
	do(chromedp.Click(chromedp.CSS("#instances a")), chromedp.WaitVisible(chromedp.CSS("#cancel")))
	shot("ui-parked")
	do(chromedp.Click(chromedp.CSS("#cancel")), chromedp.WaitVisible(chromedp.CSS("#msg")))
	msg, status := text("#msg"), text("#status")
	do(chromedp.Navigate(srv.URL + "/instance?pm=order_fulfillment&id=order-0000002"))
	timeline := text("#timeline")
	shot("ui-instance")
	do(chromedp.Navigate(srv.URL + "/graph?pm=order_fulfillment"))
	svg, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("#graph svg")))
	if err != nil {
		t.Fatal(err)
	}
	shot("ui-graph")
	if !strings.Contains(pms, "order_fulfillment") {
		t.Errorf("overview: %q", pms)
	}
	if !strings.Contains(parked, "stuck-1") || !strings.Contains(parked, "stuck-2") || strings.Contains(parked, "order-0000001") {
		t.Errorf("parked list: %q", parked)
	}
	if status != "cancelled" || !strings.Contains(msg, "cancel done") {
		t.Errorf("after clicking Cancel: status %q, message %q", status, msg)
	}
	in, _ := st.Instances(context.Background(), "order_fulfillment", []string{"stuck-1"})
	if len(in) != 1 || in[0].Status != evokestore.StatusCancelled {
		t.Errorf("store after the click: %+v", in)
	}
	if !strings.Contains(timeline, "process_payment to payment-order-0000002") || !strings.Contains(timeline, "accepted") {
		t.Errorf("timeline: %q", timeline)
	}
	if !strings.Contains(svg, "awaiting_shipment") || !strings.Contains(svg, "ItemShipped") {
		t.Errorf("graph: %s", svg)
	}
}
