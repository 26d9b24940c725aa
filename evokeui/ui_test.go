package evokeui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"html/template"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evokeui"
	"github.com/evoke-go/evoke/internal/cli"
)

const token = "t0k3n"

// heldError is the error of the event stuck-2 holds: long, on several
// lines, its useful part at the end.
const heldError = "order_fulfillment.Handle(PaymentReceived): decode event 0192-payment (PaymentReceived at position 3): " +
	"json: cannot unmarshal string into Go struct field PaymentReceived.amount of type int64\n" +
	"\tat step 2 of 2\nthe useful part: amount was \"12.50\""

// demoStore runs the demo (200 orders, 10% declined, 5% timed out) into a
// new SQLite file and adds two parked instances (stuck-2 holding an event)
// and a failing one whose next attempt is long overdue, then serves the UI
// for it, recording the status of every action request.
func demoStore(t *testing.T) (*evokesqlite.Store, *httptest.Server, *actionLog) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "ui.db")
	var out, errb bytes.Buffer
	if code := cli.Main(context.Background(), []string{"demo", "--store", db, "--orders", "200", "--fail-rate", "0.1", "--timeout-rate", "0.05"}, &out, &errb); code != 0 {
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
			State: []byte(`{"order_id":"` + id + `","note":"a\u003cb \u0026 c\u003ed"}`), CreatedAt: time.Now(), UpdatedAt: time.Now()}})
	}
	ws = append(ws, evokestore.InstanceWrite{PrevVersion: -1, Instance: evokestore.Instance{ProcessManager: "order_fulfillment", ID: "late-1",
		Version: 1, Status: evokestore.StatusFailing, Phase: "awaiting_payment", Attempts: 1, LastError: "payment service unavailable",
		NextAttemptAt: time.Now().Add(-10 * time.Minute), State: []byte(`{}`), CreatedAt: time.Now(), UpdatedAt: time.Now()}})
	if err := tx.PutInstances(ctx, ws); err != nil {
		t.Fatal(err)
	}
	if err := tx.Hold(ctx, []evokestore.HeldEvent{{ProcessManager: "order_fulfillment", Position: 5, Error: "correlate exploded"},
		{ProcessManager: "order_fulfillment", InstanceID: "stuck-2", Position: 3, Error: heldError}}); err != nil {
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
	log := &actionLog{h: evokeui.Handler(st, evokeui.Options{Token: token})}
	srv := httptest.NewServer(log)
	t.Cleanup(srv.Close)
	return st, srv, log
}

// actionLog serves the UI and records the status it answered each POST
// with.
type actionLog struct {
	h        http.Handler
	mu       sync.Mutex
	statuses []int
}

func (l *actionLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		l.h.ServeHTTP(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	l.h.ServeHTTP(sw, r)
	l.mu.Lock()
	l.statuses = append(l.statuses, sw.status)
	l.mu.Unlock()
}

// Statuses returns the statuses of the POSTs so far.
func (l *actionLog) Statuses() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.statuses)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, c, req)
}

// send sends req with c and returns the answer's status and body.
func send(t *testing.T, c *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := c.Do(req)
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
	st, srv, _ := demoStore(t)
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
	if n := strings.Count(body, `">completed</td>`); code != 200 || n != 100 || !strings.Contains(body, "next page") {
		t.Errorf("completed instances page %d: %d rows", code, n)
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
	post := func(c *http.Client, formToken string) int {
		resp, err := c.PostForm(srv.URL+"/action", url.Values{"pm": {"order_fulfillment"}, "id": {"stuck-1"}, "action": {"cancel"}, "confirmed": {"yes"}, "form_token": {formToken}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(c, ""); code != http.StatusForbidden {
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
	if code := post(op, formToken(t, op, srv.URL+"/instance?pm=order_fulfillment&id=stuck-1")); code != 200 { // followed the redirect to the instance page
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
	resp, err := op.PostForm(srv.URL+"/action", url.Values{"pm": {"order_fulfillment"}, "position": {"5"}, "action": {"skip-event"},
		"form_token": {formToken(t, op, srv.URL+"/instances?pm=order_fulfillment")}})
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

// formTokenRE finds the anti-forgery token in a page's forms.
var formTokenRE = regexp.MustCompile(`<input type="hidden" name="form_token" value="([^"]+)">`)

// formToken returns the anti-forgery token of the forms of the page at u.
func formToken(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	_, body := get(t, c, u)
	m := formTokenRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no anti-forgery token in %s:\n%s", u, body)
	}
	return m[1]
}

// operator returns a client holding the token's cookie.
func operator(t *testing.T, srv *httptest.Server) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	op := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := op.Get(srv.URL + "/?token=" + token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("opening the UI with the token: %d", resp.StatusCode)
	}
	return op
}

// Each action needs the cookie, the page's anti-forgery token and a request
// from the UI's own origin (or from no browser); anything else is 403 and
// changes nothing.
func TestActionsRefuseForgery(t *testing.T) {
	t.Parallel()
	st, srv, _ := demoStore(t)
	op := operator(t, srv)
	page := srv.URL + "/instance?pm=order_fulfillment&id=stuck-1"
	good := formToken(t, op, page)
	status := func(id string) evokestore.InstanceStatus {
		in, err := st.Instances(context.Background(), "order_fulfillment", []string{id})
		if err != nil || len(in) != 1 {
			t.Fatalf("instance %s: %v", id, err)
		}
		return in[0].Status
	}
	post := func(form url.Values, header http.Header, query string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/action"+query, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		maps.Copy(req.Header, header)
		return send(t, op, req)
	}
	cancel := func(formToken string) url.Values {
		v := url.Values{"pm": {"order_fulfillment"}, "id": {"stuck-1"}, "action": {"cancel"}}
		if formToken != "" {
			v.Set("form_token", formToken)
		}
		return v
	}
	h := func(kv ...string) http.Header {
		hd := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			hd.Set(kv[i], kv[i+1])
		}
		return hd
	}
	other := strings.Replace(srv.URL, "127.0.0.1:", "127.0.0.1:1", 1) // the same host, another port
	for _, c := range []struct {
		name   string
		form   url.Values
		header http.Header
		query  string
		want   string
	}{
		{"no anti-forgery token", cancel(""), nil, "", "anti-forgery token is missing or wrong"},
		{"a wrong anti-forgery token", cancel("x" + good[1:]), nil, "", "anti-forgery token is missing or wrong"},
		{"the token itself", cancel(token), nil, "", "anti-forgery token is missing or wrong"},
		{"the anti-forgery token in the address", cancel(""), nil, "?form_token=" + url.QueryEscape(good), "anti-forgery token is missing or wrong"},
		{"a foreign Origin", cancel(good), h("Origin", "http://evil.example"), "", "cross-origin request"},
		{"another port's Origin", cancel(good), h("Origin", other), "", "cross-origin request"},
		{"Sec-Fetch-Site same-site", cancel(good), h("Sec-Fetch-Site", "same-site", "Origin", other), "", "cross-origin request"},
		{"Sec-Fetch-Site cross-site", cancel(good), h("Sec-Fetch-Site", "cross-site"), "", "cross-origin request"},
		{"Sec-Fetch-Site cross-site with the UI's Origin", cancel(good), h("Sec-Fetch-Site", "cross-site", "Origin", srv.URL), "", "cross-origin request"},
		{"the UI's Origin without a token", cancel(""), h("Origin", srv.URL), "", "anti-forgery token is missing or wrong"},
	} {
		if code, body := post(c.form, c.header, c.query); code != http.StatusForbidden || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %q, want 403 saying %q", c.name, code, body, c.want)
		}
	}
	if s := status("stuck-1"); s != evokestore.StatusParked {
		t.Fatalf("a refused request changed stuck-1: %s", s)
	}

	// The UI's own origin, as a browser says it, with the page's token.
	for _, hd := range []http.Header{h("Origin", srv.URL, "Sec-Fetch-Site", "same-origin"), h("Origin", srv.URL)} {
		if code, _ := post(url.Values{"pm": {"order_fulfillment"}, "id": {"stuck-2"}, "action": {"retry"}, "form_token": {good}}, hd, ""); code != http.StatusSeeOther {
			t.Errorf("a same-origin retry with %v: %d, want 303", hd, code)
		}
	}
	// No browser (no Origin, no Sec-Fetch-Site) with the cookie and the
	// anti-forgery token: allowed, once confirmed. Unconfirmed, a cancel
	// leads to the page that asks first.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/action", strings.NewReader(cancel(good).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := op.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "confirm=cancel") || status("stuck-1") != evokestore.StatusParked {
		t.Errorf("an unconfirmed cancel: %d to %q, stuck-1 %s; want 303 to the question, stuck-1 parked", resp.StatusCode, loc, status("stuck-1"))
	}
	confirmed := cancel(good)
	confirmed.Set("confirmed", "yes")
	if code, _ := post(confirmed, nil, ""); code != http.StatusSeeOther || status("stuck-1") != evokestore.StatusCancelled {
		t.Errorf("a confirmed request from no browser with both tokens: %d, stuck-1 %s", code, status("stuck-1"))
	}
	// The pages refuse to be framed.
	resp, err = op.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("the page may be framed: CSP %q, X-Frame-Options %q", csp, resp.Header.Get("X-Frame-Options"))
	}
}

// A page shows only the messages the UI itself issued after an action, not
// text put in its address.
func TestMessagesOnlyFromTheUI(t *testing.T) {
	t.Parallel()
	_, srv, _ := demoStore(t)
	op := operator(t, srv)
	for _, page := range []string{"/instance?pm=order_fulfillment&id=stuck-2&", "/instances?pm=order_fulfillment&"} {
		for _, q := range []string{
			"msg=" + url.QueryEscape("<script>alert(1)</script>"),
			"msg=" + url.QueryEscape("Your session expired: call +1 555 0100"),
			"msg=" + url.QueryEscape("retry done") + "&sig=AAAA",
			"msg=" + url.QueryEscape("retry done") + "&sig=",
		} {
			_, body := get(t, op, srv.URL+page+q)
			if strings.Contains(body, `id="msg"`) || strings.Contains(body, "alert(1)") || strings.Contains(body, "session expired") || strings.Contains(body, "retry done") {
				t.Errorf("%s%s shows the text:\n%s", page, q, body)
			}
		}
	}
	// The message of an action is shown on the page the action leads to.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/action", strings.NewReader(url.Values{"pm": {"order_fulfillment"}, "id": {"stuck-2"},
		"action": {"retry"}, "form_token": {formToken(t, op, srv.URL+"/instance?pm=order_fulfillment&id=stuck-2")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := op.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	next := resp.Header.Get("Location")
	_, body := get(t, op, srv.URL+next)
	if !strings.Contains(body, `<p class="msg" id="msg">retry requested`) {
		t.Errorf("after the retry (%d, to %s) the page does not show its message:\n%s", resp.StatusCode, next, body)
	}
	// The same message with its text changed, or on another instance's
	// page, is not.
	u, _ := url.Parse(next)
	q := u.Query()
	q.Set("msg", q.Get("msg")+" <b>and more</b>")
	if _, body := get(t, op, srv.URL+u.Path+"?"+q.Encode()); strings.Contains(body, `id="msg"`) {
		t.Errorf("a changed message is shown:\n%s", body)
	}
	q = u.Query()
	q.Set("id", "stuck-1")
	if _, body := get(t, op, srv.URL+u.Path+"?"+q.Encode()); strings.Contains(body, `id="msg"`) {
		t.Errorf("stuck-2's message is shown on stuck-1's page:\n%s", body)
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

// browser starts a headless chromium for t (or skips t) and returns its
// context, a function that runs steps and one that returns an element's
// text; each fails t on error.
func browser(t *testing.T) (ctx context.Context, do func(...chromedp.Action[chromedp.Void]), text func(sel string) string) {
	t.Helper()
	bin := chromium(t)
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900))
	t.Cleanup(cancel)
	ctx, cancel = chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel)
	do = func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	text = func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	return ctx, do, text
}

// A real browser: the operator opens the printed address; the overview
// draws its charts; the instances list tells the outcomes apart by colour;
// a parked instance shows the payload it holds and its error in full, its
// state readable; Cancel asks first; the state machine fits the window.
// With EVOKE_UI_SCREENSHOTS=DIR the pages are saved there as PNG (the
// README's docs/ui-*.png).
func TestBrowser(t *testing.T) {
	t.Parallel()
	ctx, do, text := browser(t)
	st, srv, _ := demoStore(t)
	shots := os.Getenv("EVOKE_UI_SCREENSHOTS")
	// shot saves the page (whole, or the window's worth if long).
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		grab := chromedp.FullScreenshot(100)
		if name == "ui-instances" {
			grab = chromedp.CaptureScreenshot()
		}
		png, err := chromedp.Run(ctx, grab)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}

	// The overview: the counts, and per process manager three charts.
	do(chromedp.Navigate(srv.URL + "/?token=" + token))
	pms := text("#pms")
	if !strings.Contains(pms, "order_fulfillment") {
		t.Errorf("overview: %q", pms)
	}
	charts := eval(`[...document.querySelectorAll("#charts-order_fulfillment svg.chart")].map(c =>
		c.dataset.metric + ":" + c.querySelectorAll("rect.bar").length + ":" + c.querySelectorAll("circle.sample").length).join(" ")`)
	if charts != "ended:15:0 lag:0:1 parked:0:1" {
		t.Errorf("charts (metric:bars:samples:width) = %q, want the ended bars and a sample of the lag and the parked", charts)
	}
	if got := eval(`String([...document.querySelectorAll("svg.chart[data-metric=ended] rect.bar")].some(r => r.getAttribute("height") > 0))`); got != "true" {
		t.Error("no instance ended in the last 15 minutes, by the chart")
	}
	shot("ui-overview")

	// The instances: outcomes in their own colours.
	do(chromedp.Navigate(srv.URL + "/instances?pm=order_fulfillment"))
	colours := eval(`JSON.stringify(Object.fromEntries(["completed", "compensated", "timed_out"].map(o =>
		[o, [...new Set([...document.querySelectorAll("td.outcome .badge.o-" + o)].map(e => getComputedStyle(e).color))]])))`)
	var byOutcome map[string][]string
	if err := json.Unmarshal([]byte(colours), &byOutcome); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for o, cs := range byOutcome {
		if len(cs) != 1 {
			t.Errorf("outcome %s shown in colours %v, want one", o, cs)
			continue
		}
		if other, ok := seen[cs[0]]; ok {
			t.Errorf("outcomes %s and %s share the colour %s", o, other, cs[0])
		}
		seen[cs[0]] = o
	}
	shot("ui-instances")

	// A parked instance holding an event: its payload, its whole error,
	// its state readable; no runtime is said to step it.
	do(chromedp.Navigate(srv.URL+"/instances?pm=order_fulfillment&status=parked"), chromedp.Click(chromedp.CSS(`#instances a[href*="stuck-2"]`)),
		chromedp.WaitVisible(chromedp.CSS("#held")))
	if got := text("#held .payload"); !strings.HasPrefix(got, "{") || !strings.Contains(got, `"`) {
		t.Errorf("held payload: %q", got)
	}
	do(chromedp.Click(chromedp.CSS("#held details.error summary")), chromedp.WaitVisible(chromedp.CSS("#held details.error pre")))
	if got := text("#held details.error pre"); !strings.Contains(got, `the useful part: amount was "12.50"`) {
		t.Errorf("held event's error, expanded: %q", got)
	}
	if got := text("#state"); !strings.Contains(got, `"a<b & c>d"`) || strings.Contains(got, `\u00`) {
		t.Errorf("state: %q", got)
	}
	if got := text("#runner"); !strings.Contains(got, "does not record which runtime") {
		t.Errorf("runner: %q", got)
	}
	shot("ui-parked")

	// Cancel asks first; only the answer cancels.
	do(chromedp.Click(chromedp.CSS("#cancel")), chromedp.WaitVisible(chromedp.CSS("#confirm")))
	status := func() evokestore.InstanceStatus {
		in, _ := st.Instances(context.Background(), "order_fulfillment", []string{"stuck-2"})
		if len(in) != 1 {
			t.Fatalf("stuck-2: %+v", in)
		}
		return in[0].Status
	}
	if s := status(); s != evokestore.StatusParked {
		t.Fatalf("asked to cancel, stuck-2 is already %s", s)
	}
	do(chromedp.Click(chromedp.CSS("#confirm-cancel")), chromedp.WaitVisible(chromedp.CSS("#msg")))
	if msg, st, class := text("#msg"), text("#status"), eval(`document.querySelector("#status").className`); st != "cancelled" || class != "o-cancelled" || !strings.Contains(msg, "cancel done") {
		t.Errorf("after confirming Cancel: status %q (class %q), message %q", st, class, msg)
	}
	if s := status(); s != evokestore.StatusCancelled {
		t.Errorf("store after confirming: %s", s)
	}

	// A failing instance whose next attempt is long overdue.
	do(chromedp.Navigate(srv.URL + "/instances?q=late-1"))
	if got := text("#runner"); !strings.Contains(got, "no runtime seems to be stepping this instance") {
		t.Errorf("overdue instance: %q", got)
	}

	do(chromedp.Navigate(srv.URL + "/instance?pm=order_fulfillment&id=order-0000002"))
	timeline := text("#timeline")
	if !strings.Contains(timeline, "process_payment to payment-order-0000002") || !strings.Contains(timeline, "accepted") {
		t.Errorf("timeline: %q", timeline)
	}
	shot("ui-instance")

	// The state machine, wider than the window, scaled to fit it.
	do(chromedp.Navigate(srv.URL + "/graph?pm=order_fulfillment"))
	svg, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("#graph svg")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(svg, "awaiting_shipment") || !strings.Contains(svg, "ItemShipped") {
		t.Errorf("graph: %s", svg)
	}
	fit := eval(`(() => { const s = document.querySelector("#graph svg"), r = s.getBoundingClientRect();
		return [s.width.baseVal.value > document.documentElement.clientWidth, r.right <= document.documentElement.clientWidth].join() })()`)
	if fit != "true,true" {
		t.Errorf("graph wider than the window (drawn, fits) = %s, want true,true", fit)
	}
	shot("ui-graph")
}

// hostilePages are pages of another origin (the same host, another port)
// that try to cancel an instance with the operator's cookie: a form that
// submits itself, and fetch POSTs with credentials. They carry the UI's
// real anti-forgery token, as if it had leaked: the browser's word on
// where the request comes from must stop them on its own.
const hostilePages = `<!doctype html>
{{define "form"}}<form id="f" method="post" action="{{.UI}}/action">
<input name="pm" value="order_fulfillment"><input name="id" value="stuck-1"><input name="action" value="cancel">
<input name="form_token" value="{{.FormToken}}"></form>
<script>document.getElementById("f").submit()</script>{{end}}
{{define "fetch"}}<script>
const body = () => new URLSearchParams({pm: "order_fulfillment", id: "stuck-1", action: "cancel", form_token: "{{.FormToken}}"});
Promise.allSettled([
  fetch("{{.UI}}/action", {method: "POST", credentials: "include", mode: "no-cors", body: body()}),
  fetch("{{.UI}}/action", {method: "POST", credentials: "include", body: body()}),
]).then(() => document.body.insertAdjacentHTML("beforeend", '<p id="sent">sent</p>'));
</script>{{end}}`

// A page of another origin cannot act in the operator's browser: its
// form post and its fetch POSTs get 403 and the instance is unchanged; the
// UI's own Cancel button, confirmed, still works.
func TestBrowserCrossOriginRefused(t *testing.T) {
	t.Parallel()
	ctx, do, text := browser(t)
	st, srv, log := demoStore(t)
	do(chromedp.Navigate(srv.URL+"/?token="+token), chromedp.Navigate(srv.URL+"/instance?pm=order_fulfillment&id=stuck-1"))
	formToken, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`input[name="form_token"]`)))
	if err != nil || formToken == "" {
		t.Fatalf("the anti-forgery token of the page: %q, %v", formToken, err)
	}
	pages := template.Must(template.New("").Parse(hostilePages))
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = pages.ExecuteTemplate(w, strings.TrimPrefix(r.URL.Path, "/"), map[string]string{"UI": srv.URL, "FormToken": formToken})
	}))
	defer hostile.Close()
	if hostile.URL == srv.URL || !strings.HasPrefix(hostile.URL, "http://127.0.0.1:") {
		t.Fatalf("the hostile server %s is not another port of the UI's host %s", hostile.URL, srv.URL)
	}
	parked := func(when string) {
		t.Helper()
		in, _ := st.Instances(context.Background(), "order_fulfillment", []string{"stuck-1"})
		if len(in) != 1 || in[0].Status != evokestore.StatusParked {
			t.Fatalf("%s: stuck-1 is %+v, want it parked still", when, in)
		}
	}

	do(chromedp.Navigate(hostile.URL+"/fetch"), chromedp.WaitReady(chromedp.CSS("#sent")))
	if got := log.Statuses(); !slices.Equal(got, []int{403, 403}) {
		t.Errorf("the fetch POSTs were answered %v, want 403 twice", got)
	}
	parked("after the fetch POSTs")

	do(chromedp.Navigate(hostile.URL + "/form"))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`location.href === "`+srv.URL+`/action" && document.readyState === "complete"`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the form post did not land on the UI: %v", err)
	}
	if got := text("body"); !strings.Contains(got, "cross-origin request") {
		t.Errorf("the form post's answer: %q", got)
	}
	if got := log.Statuses(); !slices.Equal(got, []int{403, 403, 403}) {
		t.Errorf("the POSTs were answered %v, want 403 three times", got)
	}
	parked("after the form post")

	do(chromedp.Navigate(srv.URL+"/instance?pm=order_fulfillment&id=stuck-1"), chromedp.Click(chromedp.CSS("#cancel")),
		chromedp.WaitVisible(chromedp.CSS("#confirm")), chromedp.Click(chromedp.CSS("#confirm-cancel")), chromedp.WaitVisible(chromedp.CSS("#msg")))
	if msg, status := text("#msg"), text("#status"); status != "cancelled" || !strings.Contains(msg, "cancel done") {
		t.Errorf("after clicking Cancel: status %q, message %q", status, msg)
	}
	if got := log.Statuses(); !slices.Equal(got, []int{403, 403, 403, http.StatusSeeOther}) {
		t.Errorf("the POSTs were answered %v, want the UI's own 303 last", got)
	}
}
