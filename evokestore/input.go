package evokestore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of the input contract.
const (
	// MaxIDLen is the longest identifier in bytes: an event ID, type or
	// stream ID, a correlation or causation ID, an instance ID, a
	// process-manager name, a command ID or type, an aggregate type or ID,
	// a deadline name, a metadata key.
	MaxIDLen = 1024
	// MaxPayloadLen is the longest JSON payload in bytes: an event's data
	// or metadata values, a command's payload or metadata values.
	MaxPayloadLen = 4 << 20
)

// CheckID reports, as an error wrapping ErrInvalid, whether id breaks the
// rules for identifiers: between 1 and MaxIDLen bytes of valid UTF-8
// without a NUL byte. what names the identifier in the error, which quotes
// id (so that the error text is itself valid UTF-8 without NUL).
func CheckID(what, id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	return CheckOptionalID(what, id)
}

// CheckOptionalID is CheckID for identifiers that may be empty, such as a
// correlation or causation ID.
func CheckOptionalID(what, id string) error {
	switch {
	case len(id) > MaxIDLen:
		return fmt.Errorf("%w: %s %s is %d bytes long, longer than %d", ErrInvalid, what, Quote(id), len(id), MaxIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: %s %s is not valid UTF-8", ErrInvalid, what, Quote(id))
	case strings.IndexByte(id, 0) >= 0:
		return fmt.Errorf("%w: %s %s contains a NUL byte", ErrInvalid, what, Quote(id))
	}
	return nil
}

// CheckJSON reports, as an error wrapping ErrInvalid, whether payload
// breaks the rules for JSON payloads: at most MaxPayloadLen bytes of valid
// JSON and valid UTF-8, whose \u escapes of UTF-16 surrogates come in
// pairs (a lone surrogate decodes to U+FFFD, so two different payloads
// would give one string). A \u0000 escape is allowed: payloads are stored
// as bytes. An empty payload is allowed too (a store keeps it as none).
func CheckJSON(what string, payload []byte) error {
	switch {
	case len(payload) == 0:
		return nil
	case len(payload) > MaxPayloadLen:
		return fmt.Errorf("%w: %s is %d bytes long, longer than %d", ErrInvalid, what, len(payload), MaxPayloadLen)
	case !utf8.Valid(payload):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	case !json.Valid(payload):
		return fmt.Errorf("%w: %s is not valid JSON", ErrInvalid, what)
	case loneSurrogate(payload):
		return fmt.Errorf("%w: %s escapes a lone UTF-16 surrogate", ErrInvalid, what)
	}
	return nil
}

// CheckJSONObject is CheckJSON for payloads that, when not empty, must be
// a JSON object, such as metadata values.
func CheckJSONObject(what string, payload []byte) error {
	if err := CheckJSON(what, payload); err != nil || len(payload) == 0 {
		return err
	}
	if trimmed := bytes.TrimLeft(payload, " \t\r\n"); trimmed[0] != '{' {
		return fmt.Errorf("%w: %s is not a JSON object", ErrInvalid, what)
	}
	return nil
}

// loneSurrogate reports whether valid JSON escapes a UTF-16 surrogate
// (\uD800 to \uDFFF) outside a high-low pair.
func loneSurrogate(b []byte) bool {
	for {
		i := bytes.IndexByte(b, '\\')
		if i < 0 || i+1 >= len(b) {
			return false
		}
		if b[i+1] != 'u' {
			b = b[i+2:] // an escaped character, possibly a backslash
			continue
		}
		r := hex4(b[i+2:])
		b = b[i+6:]
		switch {
		case r < 0xD800 || r > 0xDFFF:
		case r >= 0xDC00:
			return true // a low surrogate first
		case len(b) < 6 || b[0] != '\\' || b[1] != 'u':
			return true
		default:
			if lo := hex4(b[2:]); lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			b = b[6:]
		}
	}
}

// hex4 decodes the 4 hex digits valid JSON has after \u.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= 'a':
			c -= 'a' - 10
		case c >= 'A':
			c -= 'A' - 10
		default:
			c -= '0'
		}
		r = r<<4 | rune(c)
	}
	return r
}

// CheckNewEvent reports, as an error wrapping ErrInvalid, whether e breaks
// the input contract: its ID, stream ID and type are identifiers, its
// correlation and causation IDs identifiers or empty, its data a JSON
// payload (or empty) and its values a JSON object (or empty).
func CheckNewEvent(e *NewEvent) error {
	return errors.Join(
		CheckID("event id", e.ID),
		CheckID("stream id", e.StreamID),
		CheckID("event type", e.Type),
		CheckOptionalID("correlation id", e.CorrelationID),
		CheckOptionalID("causation id", e.CausationID),
		CheckJSON("event data", e.Data),
		CheckJSONObject("event metadata values", e.Values),
	)
}

// CheckNewEvents is CheckNewEvent for each of events, naming the first
// that breaks the contract.
func CheckNewEvents(events []NewEvent) error {
	for i := range events {
		if err := CheckNewEvent(&events[i]); err != nil {
			return fmt.Errorf("event %d of %d: %w", i, len(events), err)
		}
	}
	return nil
}

// Quote quotes s for an error text, as %q does (so that the text is valid
// UTF-8 without NUL whatever s holds), shortened to its first 64 bytes.
func Quote(s string) string {
	const max = 64
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q...", s[:max])
}

// Text returns s as free text every store keeps as it is: invalid UTF-8
// and NUL bytes replaced by U+FFFD. The runtime passes error texts and
// phases through it before it stores them, so that a user's error message
// cannot fail the write that records it.
func Text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
