package evoke

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Versioned is implemented by process managers whose state type changed
// while instances of it were stored. StateVersion is the version of the
// state type the code has (the first is 1); Upcasters holds, for each older
// version v, the function that turns a state stored at v into one at v+1.
//
// The runtime upgrades a stored state when it loads it, by applying the
// upcasters in turn, and writes the instance back at StateVersion with its
// next step. A state it cannot load parks its instance at once, with a
// *StateError, instead of stepping a zero state: a state that does not
// decode into S, a version with no upcaster on the way, an upcaster's
// error, or a version newer than StateVersion (code rolled back).
//
// A state at version 1 is stored as the JSON of S, as the state of a
// process manager that is not Versioned is. A state at a later version is
// stored in an envelope, {"$version":2,"$state":…}, which the inspection UI
// and CLI show as stored; S must not have a top-level field "$version".
type Versioned interface {
	StateVersion() int
	Upcasters() map[int]Upcaster
}

// Upcaster turns the JSON of a state stored at one version into the JSON of
// the next version.
type Upcaster func(state json.RawMessage) (json.RawMessage, error)

// StateError reports a stored state that the process manager's code cannot
// load. The runtime parks the instance at once: retrying the step cannot
// help until the code changes (then Retry runs it again).
type StateError struct {
	ProcessManager string
	// Version is the version the state is stored at, and CodeVersion the
	// process manager's StateVersion.
	Version, CodeVersion int
	Err                  error
}

// Error describes the state and why it does not load.
func (e *StateError) Error() string {
	return fmt.Sprintf("state of %s at version %d (code at version %d): %v", e.ProcessManager, e.Version, e.CodeVersion, e.Err)
}

// Unwrap returns the cause.
func (e *StateError) Unwrap() error { return e.Err }

// Permanent reports that retrying the step cannot help: the runtime parks
// the instance without retrying it.
func (e *StateError) Permanent() bool { return true }

// Keys of the envelope of a state stored at a version above 1.
const (
	versionKey = "$version"
	stateKey   = "$state"
)

// stateCodec stores a process manager's state at its version.
type stateCodec[S any] struct {
	name     string
	version  int
	upcaster map[int]Upcaster
}

func newStateCodec[S any](pm ProcessManager[S]) stateCodec[S] {
	c := stateCodec[S]{name: pm.Name(), version: 1}
	if v, ok := pm.(Versioned); ok {
		c.version, c.upcaster = v.StateVersion(), v.Upcasters()
	}
	return c
}

// check refuses a version below 1.
func (c stateCodec[S]) check() error {
	if c.version < 1 {
		return fmt.Errorf("%w: process manager %q: StateVersion %d, want 1 or more", ErrInvalid, c.name, c.version)
	}
	return nil
}

// unwrap returns the version and the state's JSON of stored bytes.
func unwrapState(b []byte) (int, []byte, error) {
	if !bytes.Contains(b, []byte(`"`+versionKey+`"`)) {
		return 1, b, nil
	}
	raw, found, err := topLevelField(b, versionKey)
	if err != nil || !found {
		return 1, b, nil // not an envelope: decoding tells whether it is a state
	}
	v, err := strconv.Atoi(string(raw))
	if err != nil || v < 1 {
		return 0, nil, fmt.Errorf("stored %s is %s, want a version number", versionKey, raw)
	}
	st, found, err := topLevelField(b, stateKey)
	if err != nil || !found {
		return v, nil, fmt.Errorf("stored state at version %d has no %s", v, stateKey)
	}
	return v, st, nil
}

// decode loads stored bytes as S, upgraded to the code's version; empty
// bytes are the zero S (a new instance).
func (c stateCodec[S]) decode(b []byte) (S, error) {
	var s S
	if len(b) == 0 {
		return s, nil
	}
	v, raw, err := unwrapState(b)
	fail := func(err error) (S, error) {
		var zero S
		return zero, &StateError{ProcessManager: c.name, Version: v, CodeVersion: c.version, Err: err}
	}
	if err != nil {
		return fail(err)
	}
	if v > c.version {
		return fail(fmt.Errorf("stored at a version newer than the code"))
	}
	for from := v; from < c.version; from++ {
		up := c.upcaster[from]
		if up == nil {
			return fail(fmt.Errorf("no upcaster from version %d", from))
		}
		if raw, err = up(raw); err != nil {
			return fail(fmt.Errorf("upcast from version %d: %w", from, err))
		}
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return fail(fmt.Errorf("decode: %w", err))
	}
	return s, nil
}

// encode stores s at the code's version.
func (c stateCodec[S]) encode(s S) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil || c.version == 1 {
		return b, err
	}
	return json.Marshal(struct {
		Version int             `json:"$version"`
		State   json.RawMessage `json:"$state"`
	}{c.version, b})
}
