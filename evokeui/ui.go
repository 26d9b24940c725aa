package evokeui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evoke-go/evoke/evokeops"
	"github.com/evoke-go/evoke/evokestore"
)

// Actions are the operator's actions on a stuck instance. *evoke.Runtime
// has them (acting at once, between its steps); the default, StoreActions,
// acts on the store from any process (package evokeops).
type Actions interface {
	Retry(ctx context.Context, processManager, instanceID string) error
	Skip(ctx context.Context, processManager, instanceID string) error
	Cancel(ctx context.Context, processManager, instanceID string) error
}

// StoreActions are Actions on a store through package evokeops: retry and
// skip are carried out by the runtime running the process manager within
// its poll interval; cancel at once.
type StoreActions struct{ Store evokestore.Store }

func (a StoreActions) Retry(ctx context.Context, pm, id string) error {
	return evokeops.Retry(ctx, a.Store, pm, id)
}
func (a StoreActions) Skip(ctx context.Context, pm, id string) error {
	return evokeops.Skip(ctx, a.Store, pm, id)
}
func (a StoreActions) Cancel(ctx context.Context, pm, id string) error {
	return evokeops.Cancel(ctx, a.Store, pm, id)
}

// EventActions are the actions on events parked for a process manager
// because its Correlate failed; *evoke.Runtime has them. Without them the
// UI can skip such an event (evokeops.SkipEvent) but not retry it, which
// needs the process manager's code.
type EventActions interface {
	RetryEvent(ctx context.Context, processManager string, position int64) error
	SkipEvent(ctx context.Context, processManager string, position int64) error
}

// Options configure the UI.
type Options struct {
	// Token guards the actions: a browser that opened any page with
	// ?token=<Token> gets it as a cookie (HttpOnly, SameSite=Strict) and
	// may then retry, skip and cancel. Empty: the UI is read-only. Use a
	// long random token (`evoke serve` makes one of 32 hex digits and
	// refuses one shorter than 16 characters).
	//
	// The cookie alone does not allow an action: SameSite does not tell
	// ports apart, so a page served from another port of the same host
	// would get it sent along. An action is a POST that carries the
	// anti-forgery token the UI's pages put in their forms (an HMAC of the
	// token) and that the browser says comes from the UI's own origin
	// (Sec-Fetch-Site, or else Origin, checked by
	// net/http.CrossOriginProtection). A request with neither header comes
	// from no browser (a browser sends Origin with every POST): it is
	// allowed with the cookie and the anti-forgery token, which only a
	// holder of the token can compute. Anything else gets 403 and changes
	// nothing. The pages also refuse to be framed by another site.
	Token string
	// Actions carries them out; nil: StoreActions on the store.
	Actions Actions
	// GraphInstances bounds how many instances' histories the state
	// machine is drawn from. Default 10000.
	GraphInstances int
	// Replay replays a process manager for the replay page (/replay?pm=);
	// nil: the page says the UI has no code to replay with.
	Replay Replayer
	// SampleEvery is the least time between two readings of the
	// checkpoint lag and the parked instances that the overview charts:
	// the UI reads them when the overview or /metrics is requested, and
	// keeps the last 15 minutes. Defaults to 5s.
	SampleEvery time.Duration
}

const (
	tokenCookie = "evoke_token"
	// formTokenField is the forms' hidden field holding the anti-forgery
	// token.
	formTokenField = "form_token"
)

// Handler returns the UI for st, with its metrics at /metrics. Serve it on
// localhost (`evoke serve` binds 127.0.0.1 by default): it shows instance
// states, which may hold personal data, to anyone who can reach it.
func Handler(st evokestore.Store, opts Options) http.Handler {
	if opts.Actions == nil {
		opts.Actions = StoreActions{Store: st}
	}
	if opts.GraphInstances <= 0 {
		opts.GraphInstances = 10000
	}
	if opts.SampleEvery <= 0 {
		opts.SampleEvery = 5 * time.Second
	}
	u := &ui{st: st, opts: opts, msgKey: make([]byte, 32), now: time.Now}
	rand.Read(u.msgKey) // never fails (crypto/rand)
	if opts.Token != "" {
		m := hmac.New(sha256.New, []byte(opts.Token))
		m.Write([]byte("evoke UI form token"))
		u.formToken = base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", u.overview)
	mux.HandleFunc("GET /instances", u.instances)
	mux.HandleFunc("GET /instance", u.instance)
	mux.HandleFunc("GET /graph", u.graph)
	mux.HandleFunc("GET /replay", u.replay)
	mux.HandleFunc("POST /action", u.action)
	mux.Handle("GET /metrics", u.metricsHandler())
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "refused: actions come from the UI's own pages only (cross-origin request)", http.StatusForbidden)
	}))
	return u.withToken(cop.Handler(mux))
}

type ui struct {
	st   evokestore.Store
	opts Options
	// formToken is the anti-forgery token of the forms ("" without a
	// Token): an HMAC of the token, which a page of another origin can
	// neither read nor compute.
	formToken string
	// msgKey signs the messages the UI passes to the page it redirects to
	// after an action, so that a page shows only messages the UI issued.
	msgKey []byte
	// samples are the overview's sampled series.
	samples samples
	// tallied is the store's last tally, which the next one adds to.
	tallied struct {
		mu   sync.Mutex
		last *evokestore.Tally
	}
	now func() time.Time
}

// withToken turns ?token= into the cookie, then redirects to the same page
// without it (so that the token does not stay in the address bar).
func (u *ui) withToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if t := q.Get("token"); t != "" && r.Method == http.MethodGet {
			if u.opts.Token == "" || subtle.ConstantTimeCompare([]byte(t), []byte(u.opts.Token)) != 1 {
				http.Error(w, "wrong token", http.StatusForbidden)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: t, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			q.Del("token")
			r.URL.RawQuery = q.Encode()
			http.Redirect(w, r, r.URL.String(), http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (u *ui) authorized(r *http.Request) bool {
	c, err := r.Cookie(tokenCookie)
	return u.opts.Token != "" && err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(u.opts.Token)) == 1
}

// sign returns the signature of a message the UI issued about the
// instance pm/id (id "" for a process manager's page).
func (u *ui) sign(pm, id, msg string) string {
	m := hmac.New(sha256.New, u.msgKey)
	for _, s := range []string{pm, id, msg} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// withMsg returns the address of path with q (its pm and id) and a signed
// message.
func (u *ui) withMsg(path string, q url.Values, msg string) string {
	q.Set("msg", msg)
	q.Set("sig", u.sign(q.Get("pm"), q.Get("id"), msg))
	return path + "?" + q.Encode()
}

// msg returns the page's message if the UI signed it for this page's
// process manager and instance, else "".
func (u *ui) msg(q url.Values) string {
	msg := q.Get("msg")
	if msg == "" || !hmac.Equal([]byte(q.Get("sig")), []byte(u.sign(q.Get("pm"), q.Get("id"), msg))) {
		return ""
	}
	return msg
}

// statuses in the order the overview shows them.
var statuses = evokestore.Statuses

func (u *ui) overview(w http.ResponseWriter, r *http.Request) {
	snap, err := u.snapshot(r.Context())
	if err != nil {
		u.fail(w, err)
		return
	}
	charts, err := u.charts(r.Context(), snap)
	if err != nil {
		u.fail(w, err)
		return
	}
	refresh := 0
	if n, err := strconv.Atoi(r.URL.Query().Get("refresh")); err == nil && n > 0 {
		refresh = max(n, 2)
	}
	u.render(w, r, "overview", "evoke", map[string]any{"S": snap, "Live": liveStatuses, "Outcomes": evokestore.Outcomes,
		"Backend": u.st.Backend(), "Charts": charts, "Refresh": refresh, "Samples": len(u.sampled())})
}

// ages are the age filter's choices: created within, or before, a time
// ago.
var ages = []struct{ Value, Label string }{
	{"<1m", "created in the last minute"}, {"<10m", "in the last 10 minutes"}, {"<1h", "in the last hour"}, {"<24h", "in the last day"},
	{">1m", "older than a minute"}, {">10m", "older than 10 minutes"}, {">1h", "older than an hour"}, {">24h", "older than a day"},
}

// listFilter is the instances page's filter, from its query.
type listFilter struct {
	PM, Status, Outcome, Age, Q string
}

func filterOf(q url.Values) listFilter {
	return listFilter{PM: q.Get("pm"), Status: q.Get("status"), Outcome: q.Get("outcome"), Age: q.Get("age"), Q: strings.TrimSpace(q.Get("q"))}
}

// values is the filter as a query.
func (f listFilter) values() url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"pm": f.PM, "status": f.Status, "outcome": f.Outcome, "age": f.Age, "q": f.Q} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v
}

// query is the filter as a store query, as of now.
func (f listFilter) query(now time.Time) (evokestore.InstanceQuery, error) {
	iq := evokestore.InstanceQuery{ProcessManager: f.PM, Status: evokestore.InstanceStatus(f.Status),
		Outcome: evokestore.InstanceOutcome(f.Outcome), IDPrefix: f.Q}
	if f.Age != "" {
		d, err := time.ParseDuration(f.Age[1:])
		if err != nil || d <= 0 || f.Age[0] != '<' && f.Age[0] != '>' {
			return iq, fmt.Errorf("bad age %q: want <DURATION or >DURATION", f.Age)
		}
		if f.Age[0] == '<' {
			iq.CreatedAfter = now.Add(-d)
		} else {
			iq.CreatedBefore = now.Add(-d)
		}
	}
	return iq, nil
}

func (u *ui) instances(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := filterOf(q)
	now := u.now()
	iq, err := f.query(now)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if f.Q != "" && q.Get("after") == "" {
		// An instance ID searched for in full: its page.
		if pm, ok, err := u.findExact(r.Context(), f.PM, f.Q); err != nil {
			u.fail(w, err)
			return
		} else if ok {
			http.Redirect(w, r, "/instance?"+url.Values{"pm": {pm}, "id": {f.Q}}.Encode(), http.StatusSeeOther)
			return
		}
	}
	const limit = 100
	iq.Limit, iq.AfterProcessManager, iq.AfterID = limit, q.Get("after_pm"), q.Get("after")
	if iq.AfterProcessManager == "" {
		iq.AfterProcessManager = f.PM
	}
	insts, err := u.st.ListInstances(r.Context(), iq)
	if err != nil {
		u.fail(w, err)
		return
	}
	type row struct {
		evokestore.Instance
		Outcome                      evokestore.InstanceOutcome
		Age, Updated, Next, Deadline string
	}
	rows := make([]row, len(insts))
	for i, in := range insts {
		rows[i] = row{Instance: in, Outcome: in.FinalOutcome(), Age: age(now, in.CreatedAt), Updated: age(now, in.UpdatedAt)}
		if !in.NextAttemptAt.IsZero() {
			rows[i].Next = until(now, in.NextAttemptAt)
			if late := now.Sub(in.NextAttemptAt); late > overdueAfter {
				rows[i].Next = "overdue by " + late.Round(time.Second).String()
			}
		}
	}
	next, err := u.nextDeadlines(r.Context(), insts)
	if err != nil {
		u.fail(w, err)
		return
	}
	for i := range rows {
		if d, ok := next[[2]string{rows[i].ProcessManager, rows[i].ID}]; ok {
			rows[i].Deadline = d.Name + " " + until(now, d.DueAt)
		}
	}
	nextPage := ""
	if len(insts) == limit {
		v := f.values()
		last := insts[len(insts)-1]
		v.Set("after_pm", last.ProcessManager)
		v.Set("after", last.ID)
		nextPage = "/instances?" + v.Encode()
	}
	var parked []evokestore.HeldEvent
	if f.PM != "" {
		if parked, err = evokeops.ParkedEvents(r.Context(), u.st, f.PM); err != nil {
			u.fail(w, err)
			return
		}
	}
	pms, err := u.processManagers(r.Context())
	if err != nil {
		u.fail(w, err)
		return
	}
	_, canRetryEvents := u.opts.Actions.(EventActions)
	title := "instances"
	if f.PM != "" {
		title = f.PM
	}
	for _, x := range []string{f.Status, f.Outcome} {
		if x != "" {
			title += " · " + x
		}
	}
	if f.Q != "" {
		title += " · ID " + f.Q + "…"
	}
	u.render(w, r, "instances", title, map[string]any{"PM": f.PM, "F": f, "Rows": rows, "Next": nextPage, "Statuses": statuses,
		"Outcomes": evokestore.Outcomes, "Ages": ages, "PMs": pms,
		"Parked": parked, "CanRetryEvents": canRetryEvents, "Msg": u.msg(q)})
}

// processManagers lists the process managers with instances.
func (u *ui) processManagers(ctx context.Context) ([]string, error) {
	s, err := u.st.Stats(ctx)
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(s.Instances)), nil
}

// findExact looks for the instance id of pm, or of any process manager if
// pm is "": it returns the process manager when exactly one has it.
func (u *ui) findExact(ctx context.Context, pm, id string) (string, bool, error) {
	pms := []string{pm}
	if pm == "" {
		var err error
		if pms, err = u.processManagers(ctx); err != nil {
			return "", false, err
		}
	}
	found := ""
	for _, p := range pms {
		insts, err := u.st.Instances(ctx, p, []string{id})
		if err != nil {
			return "", false, err
		}
		if len(insts) == 1 {
			if found != "" {
				return "", false, nil // several: list them
			}
			found = p
		}
	}
	return found, found != "", nil
}

// nextDeadlines returns each listed instance's earliest deadline, if the
// store can tell (evokestore.DeadlinesReader).
func (u *ui) nextDeadlines(ctx context.Context, insts []evokestore.Instance) (map[[2]string]evokestore.Deadline, error) {
	out := map[[2]string]evokestore.Deadline{}
	dr, ok := u.st.(evokestore.DeadlinesReader)
	if !ok {
		return out, nil
	}
	byPM := map[string][]string{}
	for _, in := range insts {
		if !in.Status.Done() {
			byPM[in.ProcessManager] = append(byPM[in.ProcessManager], in.ID)
		}
	}
	for pm, ids := range byPM {
		dls, err := dr.InstanceDeadlines(ctx, pm, ids)
		if err != nil {
			return nil, err
		}
		for _, d := range dls { // by instance, then due time: the first is the next
			k := [2]string{pm, d.InstanceID}
			if _, seen := out[k]; !seen {
				out[k] = d
			}
		}
	}
	return out, nil
}

// until says when t comes, from now.
func until(now, t time.Time) string {
	if d := t.Sub(now).Round(time.Second); d > 0 {
		return "in " + d.String()
	}
	return "due"
}

func (u *ui) instance(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pm, id := q.Get("pm"), q.Get("id")
	insts, err := u.st.Instances(r.Context(), pm, []string{id})
	if err != nil {
		u.fail(w, err)
		return
	}
	v, err := LoadInstance(r.Context(), u.st, pm, id)
	if err != nil || len(insts) == 0 {
		if errors.Is(err, evokestore.ErrNotFound) || err == nil {
			http.Error(w, fmt.Sprintf("no instance %q of process manager %q", id, pm), http.StatusNotFound)
			return
		}
		u.fail(w, err)
		return
	}
	in := &insts[0]
	runner, err := u.runner(r.Context(), in, v)
	if err != nil {
		u.fail(w, err)
		return
	}
	state := ""
	if s, ok := v.Instance["state"].(json.RawMessage); ok {
		state = ReadableJSON(s)
	}
	type held struct {
		HeldEvent
		Payload string
	}
	var hs []held
	for _, h := range v.Held {
		hs = append(hs, held{HeldEvent: h, Payload: ReadableJSON(h.Payload)})
	}
	stuck := in.Status.Stuck()
	u.render(w, r, "instance", pm+" "+id, map[string]any{
		"PM": pm, "ID": id, "V": v, "In": v.Instance, "Inst": in, "Outcome": in.FinalOutcome(), "State": state, "Held": hs,
		"Runner": runner, "Msg": u.msg(q), "Confirm": q.Get("confirm") == "cancel" && !in.Status.Done(),
		"CanRetry": stuck, "CanSkip": stuck && len(v.Held) > 0, "CanCancel": !in.Status.Done(),
	})
}

// runnerView says what steps an instance: the node that leases its
// partition and whether it is alive, or that none does.
type runnerView struct {
	// Leased: the store leases partitions (evokestore.LeaseReader).
	Leased bool
	Node   string
	Alive  bool
	// Until is when the node's heartbeat expires (or expired).
	Until string
	// Overdue: the instance's next attempt is overdue by this much, a
	// sign that no runtime runs its process manager.
	Overdue string
	// LastNode and LastAt: the last node that wrote the instance's history
	// and when.
	LastNode, LastAt string
}

// overdueAfter is how late a next attempt may be before the instance page
// says that no runtime seems to be stepping the instance (the runtime's
// poll interval is 1s by default).
const overdueAfter = 30 * time.Second

func (u *ui) runner(ctx context.Context, in *evokestore.Instance, v *InstanceView) (runnerView, error) {
	var rv runnerView
	now := u.now()
	if in.Status.Done() {
		return rv, nil
	}
	if lr, ok := u.st.(evokestore.LeaseReader); ok {
		leases, err := lr.PartitionLeases(ctx)
		if err != nil {
			return rv, err
		}
		rv.Leased = true
		for _, l := range leases {
			if l.Partition == in.Partition && l.Node != "" {
				rv.Node, rv.Alive = l.Node, l.Alive
				if !l.AliveUntil.IsZero() {
					rv.Until = l.AliveUntil.Local().Format("2006-01-02 15:04:05") + " (" + relative(now, l.AliveUntil) + ")"
				}
			}
		}
	}
	if !in.NextAttemptAt.IsZero() && now.Sub(in.NextAttemptAt) > overdueAfter {
		rv.Overdue = now.Sub(in.NextAttemptAt).Round(time.Second).String()
	}
	for i := len(v.Timeline) - 1; i >= 0; i-- {
		if s := v.Timeline[i]; s.Node != "" && s.Node != "evokeops" {
			rv.LastNode, rv.LastAt = s.Node, s.At.Local().Format("2006-01-02 15:04:05")+" ("+relative(now, s.At)+")"
			break
		}
	}
	return rv, nil
}

// relative says when t is from now: "in 5s" or "3m0s ago".
func relative(now, t time.Time) string {
	if d := t.Sub(now).Round(time.Second); d > 0 {
		return "in " + d.String()
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}

func (u *ui) graph(w http.ResponseWriter, r *http.Request) {
	pm := r.URL.Query().Get("pm")
	g, err := Transitions(r.Context(), u.st, pm, u.opts.GraphInstances)
	if err != nil {
		u.fail(w, err)
		return
	}
	var mermaid strings.Builder
	g.Mermaid(&mermaid)
	u.render(w, r, "graph", pm+" · state machine", map[string]any{"PM": pm, "G": g, "SVG": template.HTML(g.SVG()), "Mermaid": mermaid.String()})
}

func (u *ui) action(w http.ResponseWriter, r *http.Request) {
	if !u.authorized(r) {
		http.Error(w, "actions need the token: open the address `evoke serve` printed", http.StatusForbidden)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue(formTokenField)), []byte(u.formToken)) != 1 {
		http.Error(w, "refused: the anti-forgery token is missing or wrong (actions come from the UI's own pages)", http.StatusForbidden)
		return
	}
	pm, id, act := r.FormValue("pm"), r.FormValue("id"), r.FormValue("action")
	var err error
	if act == "retry-event" || act == "skip-event" {
		u.eventAction(w, r, pm, act)
		return
	}
	switch act {
	case "retry":
		err = u.opts.Actions.Retry(r.Context(), pm, id)
	case "skip":
		err = u.opts.Actions.Skip(r.Context(), pm, id)
	case "cancel":
		if r.PostFormValue("confirmed") != "yes" { // ask first
			http.Redirect(w, r, "/instance?"+url.Values{"pm": {pm}, "id": {id}, "confirm": {"cancel"}}.Encode(), http.StatusSeeOther)
			return
		}
		err = u.opts.Actions.Cancel(r.Context(), pm, id)
	default:
		http.Error(w, "unknown action "+html.EscapeString(act), http.StatusBadRequest)
		return
	}
	msg := act + " done"
	if _, viaStore := u.opts.Actions.(StoreActions); err != nil {
		msg = act + " failed: " + err.Error()
	} else if viaStore && act != "cancel" {
		msg = act + " requested: the runtime running " + pm + " takes it up within its poll interval"
	}
	http.Redirect(w, r, u.withMsg("/instance", url.Values{"pm": {pm}, "id": {id}}, msg), http.StatusSeeOther)
}

// eventAction retries or skips an event parked for pm.
func (u *ui) eventAction(w http.ResponseWriter, r *http.Request, pm, act string) {
	var pos int64
	if _, err := fmt.Sscan(r.FormValue("position"), &pos); err != nil {
		http.Error(w, "bad position", http.StatusBadRequest)
		return
	}
	ea, hasEvents := u.opts.Actions.(EventActions)
	var err error
	switch {
	case act == "retry-event" && hasEvents:
		err = ea.RetryEvent(r.Context(), pm, pos)
	case act == "retry-event":
		err = fmt.Errorf("retrying an event needs the process manager's code: use Runtime.RetryEvent, or mount the UI with the runtime as its Actions")
	case hasEvents:
		err = ea.SkipEvent(r.Context(), pm, pos)
	default:
		err = evokeops.SkipEvent(r.Context(), u.st, pm, pos)
	}
	msg := fmt.Sprintf("%s %d done", act, pos)
	if err != nil {
		msg = fmt.Sprintf("%s %d failed: %v", act, pos, err)
	}
	http.Redirect(w, r, u.withMsg("/instances", url.Values{"pm": {pm}}, msg), http.StatusSeeOther)
}

func (u *ui) fail(w http.ResponseWriter, err error) {
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

func (u *ui) render(w http.ResponseWriter, r *http.Request, page, title string, data map[string]any) {
	authorized := u.authorized(r)
	data["Title"], data["Authorized"], data["ReadOnly"] = title, authorized, u.opts.Token == ""
	if authorized {
		data["FormToken"] = u.formToken
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// No framing: a page of another site (or port) must not overlay the
	// operator's buttons.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	if err := pages.ExecuteTemplate(w, page, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
