// Package evokehttp sends evoke's commands to an HTTP endpoint.
//
// A Sink POSTs each command's payload as JSON with the command's
// deterministic ID in the Idempotency-Key header, so that the endpoint
// drops a duplicate, and the command's type, aggregate and lineage in
// Evoke- headers (CommandOf reads them back). The response is the answer:
// a 2xx accepts the command; a 4xx other than 408 and 429 rejects it with
// the response body (trimmed) as the reason, and its process manager
// compensates; a 408, 429 or 5xx, or no response, is a transient failure,
// after which the command is sent again.
package evokehttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/internal/wire"
)

// Headers evoke writes and reads.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderCommandType    = wire.CommandType
	HeaderAggregateType  = wire.AggregateType
	HeaderAggregateID    = wire.AggregateID
	HeaderCorrelationID  = wire.CorrelationID
	HeaderCausationID    = wire.CausationID
	// HeaderValues holds a command's metadata values as a JSON object.
	HeaderValues = wire.Values
)

// headers carries the command's ID in the Idempotency-Key header and the
// rest in the canonical Evoke- headers.
var headers = wire.Names{ID: HeaderIdempotencyKey, Type: HeaderCommandType, AggregateType: HeaderAggregateType,
	AggregateID: HeaderAggregateID, CorrelationID: HeaderCorrelationID, CausationID: HeaderCausationID, Values: HeaderValues}

// maxReason bounds the bytes of a response body read as a reason.
const maxReason = 4096

// Sink POSTs commands to an HTTP endpoint.
type Sink struct {
	// URL returns the URL a command is posted to.
	URL func(cmd evoke.Command) string
	// Client sends the requests. Defaults to http.DefaultClient.
	Client *http.Client
}

var _ evoke.Sink = (*Sink)(nil)

// NewSink returns a sink that posts every command to url.
func NewSink(url string) *Sink {
	return &Sink{URL: func(evoke.Command) string { return url }}
}

// Send posts cmd and maps the response (see the package documentation).
func (s *Sink) Send(ctx context.Context, cmd evoke.Command) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL(cmd), bytes.NewReader(cmd.Payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	headers.Encode(cmd, req.Header.Set)
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxReason))
	_, _ = io.Copy(io.Discard, resp.Body)
	reason := strings.TrimSpace(string(body))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests:
		if reason == "" {
			reason = resp.Status
		}
		return evoke.Reject(reason)
	default:
		return fmt.Errorf("evokehttp: %s: %s", resp.Status, reason)
	}
}

// CommandOf reads the command a sink posted in r (reading its body).
func CommandOf(r *http.Request) (evoke.Command, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20+1))
	if err != nil {
		return evoke.Command{}, err
	}
	c := evoke.Command{Payload: body}
	if err := headers.Decode(r.Header.Get, &c); err != nil {
		return c, fmt.Errorf("evokehttp: request: %w", err)
	}
	return c, nil
}

// Respond writes the answer to a command posted by a sink: 204 for nil,
// 422 with the reason for an error made by evoke.Reject, and 503 with the
// error's text for any other error.
func Respond(w http.ResponseWriter, answer error) {
	if answer == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if re, ok := errors.AsType[*evoke.RejectError](answer); ok {
		http.Error(w, re.Reason, http.StatusUnprocessableEntity)
		return
	}
	http.Error(w, answer.Error(), http.StatusServiceUnavailable)
}
