package evoke

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// ProcessManager reacts to events, keeps state of type S across them, and
// dispatches commands. S is stored as JSON, so its exported fields (or its
// json.Marshaler) must capture all of it; the zero S is the state of a new
// instance.
//
// Apply and Handle are pure: no I/O and no clock reads (time comes in on the
// event's RecordedAt), so that an instance can be replayed and tested with
// plain function calls. For each event the runtime calls Apply, then Handle
// with Apply's result, and commits the state Handle returns together with
// its commands, atomically.
type ProcessManager[S any] interface {
	// Name is stable: it is stored with every instance and keys them.
	Name() string
	// InterestedIn lists the event types the process manager reacts to.
	InterestedIn() []string
	// Correlate routes an event to an instance. An instance ID outside the
	// input contract (see the package documentation) fails the correlation:
	// the event is parked for the process manager.
	Correlate(e Event) Correlation
	// Apply evolves the state from the event.
	Apply(state S, e Event) S
	// Handle reacts to the event: it returns the new state and the commands
	// to dispatch. An error (or panic) fails the step for this instance only.
	//
	// Besides the types of InterestedIn, Apply and Handle receive the
	// runtime's own events: CommandRejectedEvent when an aggregate rejected
	// one of the instance's commands (read it with Rejected), TimeoutEvent
	// when the inactivity timeout of a Timeouter passed (IsTimeout) and
	// DeadlineEvent when a named deadline of a Deadliner passed
	// (DeadlineOf).
	Handle(state S, e Event) (S, []Command, error)
}

// Compensator is implemented by process managers that undo work when one of
// their commands is rejected by its aggregate. It returns the compensating
// commands and true, or false to skip (evoq's skip). The instance is
// marked compensating while its compensations are outstanding.
type Compensator[S any] interface {
	Compensate(state S, failed FailedCommand) ([]Command, bool)
}

// Timeouter is implemented by process managers with an inactivity timeout:
// when no event was handled for Timeout, Handle receives an event of type
// TimeoutEvent (evoq's handle(State, timeout, Meta)).
type Timeouter interface {
	Timeout() time.Duration
}

// Completer is the explicit signal with which Handle completes an instance:
// after each step the runtime asks Completed of the new state, and an
// instance whose state is complete leaves a tombstone and takes no further
// events (evoq's basic example only knows it is done from its state:
// status => completed).
type Completer[S any] interface {
	Completed(state S) bool
}

// PhaseReporter is implemented by process managers whose state moves
// through named phases (evoq's status field: awaiting_payment,
// awaiting_inventory, ...). A phase is the process's own word for where it
// is; the runtime's status of the instance (running, failing, parked,
// completed) is another thing. The runtime records the phase before
// and after each step in the instance history, logs transitions
// ("process X: a -> b on EventType") and draws state machines from them.
type PhaseReporter[S any] interface {
	Phase(state S) string
}

// Strict is implemented by process managers that only accept Continue for
// existing instances: a Continue for a missing instance is dropped, logged
// and counted instead of creating it.
type Strict interface {
	Strict() bool
}

// Deadliner is implemented by process managers that set named deadlines of
// their own. After each step the runtime stores exactly the deadlines
// Deadlines returns (so a deadline is cancelled by no longer returning it),
// in the same transaction as the state. When one passes, Handle receives an
// event of type DeadlineEvent whose data names it.
type Deadliner[S any] interface {
	Deadlines(state S) []Deadline
}

// Deadline is a named point in time of one instance: what Deadlines
// returns, and the data of the DeadlineEvent that Handle receives when it
// passes (DeadlineOf).
type Deadline struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

// Event types the runtime delivers to Handle itself.
const (
	// TimeoutEvent is delivered when an instance's inactivity timeout
	// passes.
	TimeoutEvent = "$timeout"
	// DeadlineEvent is delivered when a named deadline passes; its data is
	// the Deadline (DeadlineOf).
	DeadlineEvent = "$deadline"
	// CommandRejectedEvent is delivered to Apply and Handle right after
	// Compensate (or instead of it, for a process manager without one)
	// when an aggregate rejected one of the instance's commands, so that
	// the state can record the failure (evoq's status => payment_failed)
	// and Handle can complete the instance. Rejected returns the command
	// and the reason it carries.
	CommandRejectedEvent = "$rejected"
)

// rejectedData is the data of a CommandRejectedEvent (Rejected reads it).
type rejectedData struct {
	CommandID     string          `json:"command_id"`
	CommandType   string          `json:"command_type"`
	AggregateType string          `json:"aggregate_type"`
	AggregateID   string          `json:"aggregate_id"`
	Payload       json.RawMessage `json:"payload,omitempty"`
	Reason        string          `json:"reason"`
}

// FailedCommand describes a command its aggregate rejected.
type FailedCommand struct {
	Command Command
	// Reason is the aggregate's error message.
	Reason string
}

// CorrelationKind says what a Correlation does with its event.
type CorrelationKind uint8

// Correlation kinds.
const (
	// KindIgnore: nothing happens.
	KindIgnore CorrelationKind = iota
	// KindStart: the event starts the instance, or goes to it if it runs.
	KindStart
	// KindContinue: the event goes to the instance, created if absent
	// (unless the process manager is Strict).
	KindContinue
	// KindStop: the event is applied and handled, then the instance
	// completes.
	KindStop
	// KindError: correlation failed; the event is parked for the process
	// manager.
	KindError
	// KindStartNew: the event starts a new instance; for an instance that
	// has stepped already it is an error of that instance's step
	// (ErrAlreadyStarted), as a failed Handle is.
	KindStartNew
	// KindEach: the event goes to several instances, each as one of
	// Targets says.
	KindEach
)

var kindNames = [...]string{"ignore", "start", "continue", "stop", "error", "start-new", "each"}

// String names the kind: ignore, start, continue, stop, error, start-new
// or each.
func (k CorrelationKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("CorrelationKind(%d)", k)
}

// Correlation routes an event to a process-manager instance, or to
// several (Each).
type Correlation struct {
	kind CorrelationKind
	id   string
	err  error
	each []Correlation
}

// Start routes the event to instance id, creating it if absent. A start for
// a running instance goes to it: a duplicate start is not a second instance.
func Start(id string) Correlation { return Correlation{kind: KindStart, id: id} }

// StartNew routes the event to a new instance id, as Start does, for
// events that must start an instance and never reach a running one (a
// duplicated or replayed start event): for an instance that has stepped
// already, the event fails that instance's step with ErrAlreadyStarted,
// which its OnFailure (or the runtime's default: retry, then park) handles.
// An instance that is done (completed or cancelled) takes no events: the
// event is dropped for it.
func StartNew(id string) Correlation { return Correlation{kind: KindStartNew, id: id} }

// Continue routes the event to instance id, creating it if absent.
func Continue(id string) Correlation { return Correlation{kind: KindContinue, id: id} }

// ContinueEach routes the event to every instance of ids, as Continue does
// to one (Each(Continue(ids[0]), Continue(ids[1]), ...)).
func ContinueEach(ids ...string) Correlation {
	cs := make([]Correlation, len(ids))
	for i, id := range ids {
		cs[i] = Continue(id)
	}
	return Each(cs...)
}

// Each routes one event to several instances, each as its correlation says
// (Start, StartNew, Continue or Stop): "account frozen" for every transfer
// of the account, "product recalled" for every open order of the product.
// Each instance steps the event once, in log order with its other events,
// with its own history, failures and parking, as if the event were routed
// to it alone. An instance named twice gets the event once, as the first
// correlation naming it says; Ignore correlations are left out, so that
// Each() is Ignore; a failed correlation (CorrelationFailed) fails the
// whole event, which is parked for the process manager. The instances may
// be in different partitions, and so stepped by different nodes.
func Each(cs ...Correlation) Correlation {
	var out []Correlation
	seen := make(map[string]bool, len(cs))
	var add func(c Correlation) *Correlation
	add = func(c Correlation) *Correlation {
		switch c.kind {
		case KindIgnore:
		case KindError:
			return &c
		case KindEach:
			for _, t := range c.each {
				if bad := add(t); bad != nil {
					return bad
				}
			}
		default:
			if !seen[c.id] {
				seen[c.id] = true
				out = append(out, c)
			}
		}
		return nil
	}
	for _, c := range cs {
		if bad := add(c); bad != nil {
			return *bad
		}
	}
	switch len(out) {
	case 0:
		return Ignore()
	case 1:
		return out[0]
	}
	return Correlation{kind: KindEach, each: out}
}

// Stop routes the event to instance id, which completes after handling it.
func Stop(id string) Correlation { return Correlation{kind: KindStop, id: id} }

// Ignore routes the event nowhere.
func Ignore() Correlation { return Correlation{} }

// CorrelationFailed reports that the event cannot be routed: it is parked
// for the process manager, visible and retryable, and later events go on.
func CorrelationFailed(err error) Correlation { return Correlation{kind: KindError, err: err} }

// Kind returns what the correlation does.
func (c Correlation) Kind() CorrelationKind { return c.kind }

// ID returns the instance ID (empty for Each).
func (c Correlation) ID() string { return c.id }

// Targets returns the single-instance correlations of c: those of Each, c
// itself for one that names an instance, none for Ignore and a failed
// correlation.
func (c Correlation) Targets() []Correlation {
	switch c.kind {
	case KindEach:
		return append([]Correlation(nil), c.each...)
	case KindIgnore, KindError:
		return nil
	}
	return []Correlation{c}
}

// Err returns the error of a failed correlation.
func (c Correlation) Err() error { return c.err }

// String shows the correlation as kind(id), e.g. continue(order-7).
func (c Correlation) String() string {
	if c.kind == KindError {
		return "error(" + c.err.Error() + ")"
	}
	if c.kind == KindIgnore {
		return "ignore"
	}
	if c.kind == KindEach {
		parts := make([]string, len(c.each))
		for i, t := range c.each {
			parts[i] = t.String()
		}
		return "each(" + strings.Join(parts, ", ") + ")"
	}
	return c.kind.String() + "(" + c.id + ")"
}

// ByField correlates by entity ID, evoq's most common strategy: the
// instance ID is the event data's top-level field (a string or number), and
// as says what to do with it, e.g. ByField(e, "order_id", Continue). An
// event without the field fails correlation with a clear error.
func ByField(e Event, field string, as func(id string) Correlation) Correlation {
	id, err := Field(e, field)
	if err != nil {
		return CorrelationFailed(err)
	}
	return as(id)
}

// ByFields correlates by a composite key built from several top-level data
// fields, e.g. ByFields(e, Continue, "source", "dest").
func ByFields(e Event, as func(id string) Correlation, fields ...string) Correlation {
	parts := make([]string, len(fields))
	for i, f := range fields {
		v, err := Field(e, f)
		if err != nil {
			return CorrelationFailed(err)
		}
		parts[i] = v
	}
	return as(Key(parts...))
}

// ByCorrelationID correlates by the event's metadata correlation ID, for
// processes that span aggregates with no shared entity ID.
func ByCorrelationID(e Event, as func(id string) Correlation) Correlation {
	if e.Metadata.CorrelationID == "" {
		return CorrelationFailed(fmt.Errorf("%w: event %s (%s) has no correlation id", ErrInvalid, e.ID, e.Type))
	}
	return as(e.Metadata.CorrelationID)
}

// Key builds a composite instance ID from parts, such as {transfer, Src,
// Dst}, so that different part lists never give the same key: parts are
// joined with '|', a '|' or '%' inside a part is written as %7C or %25, and
// an empty part as %- (which no other part gives), so that Key() is "" and
// Key("") is "%-". Bytes are kept as they are otherwise: a key of parts
// outside the input contract (invalid UTF-8, a NUL byte) is refused where
// it is used.
func Key(parts ...string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('|')
		}
		if p == "" {
			b.WriteString("%-")
		}
		for j := 0; j < len(p); j++ {
			switch c := p[j]; c {
			case '|', '%':
				fmt.Fprintf(&b, "%%%02X", c)
			default:
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

// Field returns a top-level field of the event's JSON data as a string; a
// number is returned as written. (It scans the top-level keys instead of
// decoding the whole object: correlation reads one field of every event.)
func Field(e Event, field string) (string, error) {
	raw, found, err := topLevelField(e.Data, field)
	if err != nil {
		return "", &DecodeError{EventID: e.ID, EventType: e.Type, Position: e.Position, Err: err}
	}
	if !found {
		return "", fmt.Errorf("%w: event %s (%s) has no field %q", ErrInvalid, e.ID, e.Type, field)
	}
	s, plain := plainJSONString(raw)
	if plain || json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return "", fmt.Errorf("%w: event %s (%s) has an empty %q", ErrInvalid, e.ID, e.Type, field)
		}
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf("%w: event %s (%s) field %q is neither a string nor a number", ErrInvalid, e.ID, e.Type, field)
}

// plainJSONString returns the string raw encodes when it is a JSON string
// of printable ASCII without escapes (most IDs): the common case, without
// encoding/json's reflection.
func plainJSONString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return "", false
		}
	}
	return string(body), true
}

// topLevelField returns the raw value of data's top-level key field (the
// last one, as decoding into a map would keep), reporting invalid JSON or
// a value that is not an object (null is an object without fields).
func topLevelField(data []byte, field string) (raw []byte, found bool, err error) {
	if !json.Valid(data) {
		var v any
		return nil, false, json.Unmarshal(data, &v) // the decoder's error, with its offset
	}
	i := skipSpace(data, 0)
	switch {
	case bytes.HasPrefix(data[i:], []byte("null")):
		return nil, false, nil
	case data[i] != '{':
		return nil, false, fmt.Errorf("event data is not a JSON object")
	}
	i = skipSpace(data, i+1)
	for i < len(data) && data[i] == '"' {
		kEnd := skipValue(data, i)
		key := data[i:kEnd]
		vStart := skipSpace(data, skipSpace(data, kEnd)+1) // past the colon
		vEnd := skipValue(data, vStart)
		if keyIs(key, field) {
			raw, found = data[vStart:vEnd], true
		}
		i = skipSpace(data, vEnd)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	return raw, found, nil
}

// keyIs reports whether the quoted JSON string key is field.
func keyIs(key []byte, field string) bool {
	if bytes.IndexByte(key, '\\') < 0 {
		return len(key) == len(field)+2 && string(key[1:len(key)-1]) == field
	}
	var k string
	return json.Unmarshal(key, &k) == nil && k == field
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the valid JSON value starting at data[i].
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		for i++; i < len(data); i++ {
			switch data[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return i
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			case '"':
				i = skipValue(data, i) - 1
			}
		}
		return i
	}
	for i < len(data) && !strings.ContainsRune(" \t\n\r,}]", rune(data[i])) {
		i++
	}
	return i
}
