package evokeui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
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
}

const (
	tokenCookie = "evoke_token"
	// formTokenField is the forms' hidden field holding the anti-forgery
	// token.
	formTokenField = "form_token"
)

// Handler returns the UI for st. Serve it on localhost (`evoke serve` binds
// 127.0.0.1 by default): it shows instance states, which may hold personal
// data, to anyone who can reach it.
func Handler(st evokestore.Store, opts Options) http.Handler {
	if opts.Actions == nil {
		opts.Actions = StoreActions{Store: st}
	}
	if opts.GraphInstances <= 0 {
		opts.GraphInstances = 10000
	}
	u := &ui{st: st, opts: opts, msgKey: make([]byte, 32)}
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
	s, err := u.st.Stats(r.Context())
	if err != nil {
		u.fail(w, err)
		return
	}
	type row struct {
		PM           string
		Counts       []int64
		Total        int64
		ParkedEvents int
	}
	var rows []row
	for pm, by := range s.Instances {
		held, err := evokeops.ParkedEvents(r.Context(), u.st, pm)
		if err != nil {
			u.fail(w, err)
			return
		}
		rw := row{PM: pm, ParkedEvents: len(held)}
		for _, st := range statuses {
			rw.Counts = append(rw.Counts, by[st])
			rw.Total += by[st]
		}
		rows = append(rows, rw)
	}
	slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.PM, b.PM) })
	u.render(w, r, "overview", "evoke", map[string]any{"Stats": s, "Rows": rows, "Statuses": statuses, "Backend": u.st.Backend()})
}

func (u *ui) instances(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pm, status, after := q.Get("pm"), evokestore.InstanceStatus(q.Get("status")), q.Get("after")
	const limit = 100
	insts, err := u.st.ListInstances(r.Context(), evokestore.InstanceQuery{ProcessManager: pm, Status: status, Limit: limit,
		AfterProcessManager: pm, AfterID: after})
	if err != nil {
		u.fail(w, err)
		return
	}
	type row struct {
		evokestore.Instance
		Age, Updated, Next, Deadline string
	}
	now := time.Now()
	rows := make([]row, len(insts))
	for i, in := range insts {
		rows[i] = row{Instance: in, Age: age(now, in.CreatedAt), Updated: age(now, in.UpdatedAt)}
		if !in.NextAttemptAt.IsZero() {
			rows[i].Next = until(now, in.NextAttemptAt)
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
	if len(insts) == limit && pm != "" {
		nextPage = "/instances?" + url.Values{"pm": {pm}, "status": {string(status)}, "after": {insts[len(insts)-1].ID}}.Encode()
	}
	var parked []evokestore.HeldEvent
	if pm != "" {
		if parked, err = evokeops.ParkedEvents(r.Context(), u.st, pm); err != nil {
			u.fail(w, err)
			return
		}
	}
	_, canRetryEvents := u.opts.Actions.(EventActions)
	title := "instances"
	if pm != "" {
		title = pm
	}
	if status != "" {
		title += " · " + string(status)
	}
	u.render(w, r, "instances", title, map[string]any{"PM": pm, "Status": string(status), "Rows": rows, "Next": nextPage, "Statuses": statuses,
		"Parked": parked, "CanRetryEvents": canRetryEvents, "Msg": u.msg(q)})
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
	v, err := LoadInstance(r.Context(), u.st, pm, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		u.fail(w, err)
		return
	}
	status := evokestore.InstanceStatus(fmt.Sprint(v.Instance["status"]))
	stuck := status.Stuck()
	state := ""
	if s, ok := v.Instance["state"]; ok {
		var b strings.Builder
		if err := writeIndented(&b, s); err == nil {
			state = b.String()
		}
	}
	u.render(w, r, "instance", pm+" "+id, map[string]any{
		"PM": pm, "ID": id, "V": v, "In": v.Instance, "State": state, "Msg": u.msg(q),
		"CanRetry": stuck, "CanSkip": stuck && len(v.Held) > 0, "CanCancel": !status.Done(),
	})
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
