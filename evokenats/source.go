package evokenats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/loop"
)

// SourceConfig configures a Source.
type SourceConfig struct {
	// Stream is the JetStream stream to read. Required.
	Stream string
	// Name names the source in evoke's store, which keeps its position
	// under it, and in its events' IDs. Defaults to Stream.
	Name string
	// Subjects, if not empty, restricts the source to these subjects of
	// the stream.
	Subjects []string
	// Map turns a message into an event. Defaults to DefaultMap.
	Map func(name string, msg jetstream.Msg) (evoke.SourcedEvent, error)
	// BatchSize is the most messages ingested in one transaction.
	// Defaults to 256.
	BatchSize int
	// BatchWait is how long a batch waits for more messages once it has
	// one. Defaults to 5 ms.
	BatchWait time.Duration
	// RetryDelay is how long Start waits before reading again after an
	// error. Defaults to 1 s.
	RetryDelay time.Duration
	// Logger receives the errors Start retries after. Defaults to
	// slog.Default().
	Logger *slog.Logger
}

// Source ingests a JetStream stream into a runtime's log.
type Source struct {
	rt  *evoke.Runtime
	js  jetstream.JetStream
	cfg SourceConfig

	loop loop.Loop

	// beforeIngest, if set, runs before each batch is ingested (tests).
	beforeIngest func(batch []evoke.SourcedEvent)
}

// NewSource returns a source that ingests from js into rt's log.
func NewSource(rt *evoke.Runtime, js jetstream.JetStream, cfg SourceConfig) (*Source, error) {
	if cfg.Stream == "" {
		return nil, fmt.Errorf("%w: evokenats: no stream", evoke.ErrInvalid)
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Stream
	}
	if cfg.Map == nil {
		cfg.Map = DefaultMap
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 256
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = 5 * time.Millisecond
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Source{rt: rt, js: js, cfg: cfg}, nil
}

// Name returns the source's name in evoke's store.
func (s *Source) Name() string { return s.cfg.Name }

// Position returns the last stream sequence ingested (0 for none).
func (s *Source) Position(ctx context.Context) (uint64, error) {
	p, _, err := s.rt.SourcePosition(ctx, s.cfg.Name, 0)
	return uint64(p), err
}

// Start ingests in the background until Stop, reading again after
// RetryDelay when reading or ingesting fails.
func (s *Source) Start(ctx context.Context) error {
	return s.loop.Start(ctx, s.Run, func(err error) {
		s.cfg.Logger.Error("evokenats: source failed; reading again", "source", s.cfg.Name, "err", err, "retry_in", s.cfg.RetryDelay)
	}, s.cfg.RetryDelay)
}

// Stop stops a started source and waits for its batch to finish, or for
// ctx. A batch not committed is read again after the next Start.
func (s *Source) Stop(ctx context.Context) error { return s.loop.Stop(ctx) }

// Run ingests until ctx is done or reading or ingesting fails: it reads
// the stream from the message after the stored position, a batch at a
// time, each batch appended with the position it reaches in one
// transaction.
func (s *Source) Run(ctx context.Context) error {
	pos, err := s.Position(ctx)
	if err != nil {
		return err
	}
	cc := jetstream.OrderedConsumerConfig{FilterSubjects: s.cfg.Subjects, DeliverPolicy: jetstream.DeliverAllPolicy}
	if pos > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, pos+1
	}
	cons, err := s.js.OrderedConsumer(ctx, s.cfg.Stream, cc)
	if err != nil {
		return fmt.Errorf("evokenats: consume %s: %w", s.cfg.Stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(s.cfg.BatchSize))
	if err != nil {
		return fmt.Errorf("evokenats: consume %s: %w", s.cfg.Stream, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("evokenats: read %s: %w", s.cfg.Stream, err)
		}
		msgs := []jetstream.Msg{msg}
		for len(msgs) < s.cfg.BatchSize {
			m, err := it.Next(jetstream.NextMaxWait(s.cfg.BatchWait))
			if err != nil {
				break // nothing more for now; a lasting error shows on the next read
			}
			msgs = append(msgs, m)
		}
		if err := s.ingest(ctx, msgs); err != nil {
			return err
		}
	}
}

// ingest maps msgs and appends them with their position.
func (s *Source) ingest(ctx context.Context, msgs []jetstream.Msg) error {
	batch := make([]evoke.SourcedEvent, 0, len(msgs))
	for _, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("evokenats: message of %s: %w", s.cfg.Stream, err)
		}
		se, err := s.cfg.Map(s.cfg.Name, m)
		if err != nil {
			return fmt.Errorf("evokenats: map message %d of %s: %w", md.Sequence.Stream, s.cfg.Stream, err)
		}
		se.Position = int64(md.Sequence.Stream)
		batch = append(batch, se)
	}
	if s.beforeIngest != nil {
		s.beforeIngest(batch)
	}
	_, err := s.rt.Ingest(ctx, s.cfg.Name, 0, batch)
	return err
}

// DefaultMap makes the event of a message of the source named name (see
// the package documentation).
func DefaultMap(name string, msg jetstream.Msg) (evoke.SourcedEvent, error) {
	md, err := msg.Metadata()
	if err != nil {
		return evoke.SourcedEvent{}, err
	}
	h := msg.Headers()
	typ := h.Get(HeaderEventType)
	if typ == "" {
		typ = msg.Subject()
		if i := strings.LastIndexByte(typ, '.'); i >= 0 {
			typ = typ[i+1:]
		}
	}
	data := msg.Data()
	if len(data) == 0 {
		data = []byte("{}")
	}
	e := evoke.Event{Type: typ, Data: data,
		Metadata: evoke.Metadata{CorrelationID: h.Get(HeaderCorrelationID), CausationID: h.Get(HeaderCausationID)}}
	for k, vs := range h {
		if len(vs) == 0 || vs[0] == "" || hasPrefixFold(k, "Nats-") || hasPrefixFold(k, "Evoke-") {
			continue
		}
		if e.Metadata.Values == nil {
			e.Metadata.Values = map[string]string{}
		}
		e.Metadata.Values[k] = vs[0]
	}
	se := evoke.SourcedEvent{StreamID: name, StreamVersion: int64(md.Sequence.Stream), Event: e}
	if id := h.Get(HeaderStreamID); id != "" {
		se.StreamID, se.StreamVersion = id, 0
	}
	// The input contract of evoke's log, checked here for a clearer
	// error than the append's.
	if len(data) == 0 {
		return se, errors.New("the body is empty, not JSON")
	}
	if err := evokestore.CheckJSON("the body", data); err != nil {
		return se, err
	}
	return se, nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
