// Package evokekafka ingests a Kafka topic into evoke's log, with the
// franz-go client.
//
// A Source reads the partitions of a topic by direct assignment, not as a
// member of a consumer group, and appends each record to the runtime's log
// as an event (evoke.Runtime.Ingest): a batch per partition per
// transaction, which also stores the partition's offset in evoke's store,
// under the source's name and the partition's number. Offsets are never
// committed to Kafka: after a restart the source reads each partition on
// from the offset evoke stored, and a record delivered twice, or again
// after the process was killed between delivery and commit, is appended
// once, as its event ID derives from the source's name, the partition and
// the offset (evoke.SourceEventID). The stored position is the offset of
// the next record to read (the last record's offset plus one).
//
// Several nodes may run a source for the same topic on one PostgreSQL
// store: each record is still appended once, because a second ingester's
// append collides with the first one's event IDs and Ingest then goes on
// from the offset the first one stored. They repeat each other's reads,
// though; to spread the partitions over nodes, give each node's source its
// own Partitions.
//
// A record becomes an event by SourceConfig.Map, DefaultMap by default:
// the event type is the Evoke-Event-Type header, or else the topic's name;
// the data is the value (JSON; an empty value is {}); the correlation and
// causation IDs are the Evoke-Correlation-Id and Evoke-Causation-Id
// headers; every other header not beginning with Evoke- becomes a metadata
// value. The event goes to the stream the Evoke-Stream-Id header names,
// after its last event, or else to the stream "<source>-<partition>" at a
// version equal to the stored position. The event is recorded at the
// time of its ingest, by the runtime's clock, as an appended event is.
//
// The tests of this package run against franz-go's in-process Kafka
// cluster (package kfake), not against a Kafka broker.
package evokekafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/loop"
)

// Headers evoke reads.
const (
	HeaderEventType     = "Evoke-Event-Type"
	HeaderStreamID      = "Evoke-Stream-Id"
	HeaderCorrelationID = "Evoke-Correlation-Id"
	HeaderCausationID   = "Evoke-Causation-Id"
)

// SourceConfig configures a Source.
type SourceConfig struct {
	// Topic is the topic to read. Required.
	Topic string
	// Name names the source in evoke's store and in its events' IDs.
	// Defaults to Topic.
	Name string
	// Partitions lists the partitions to read. Defaults to all of the
	// topic's, as the brokers report them when Run begins.
	Partitions []int32
	// Map turns a record into an event. Defaults to DefaultMap.
	Map func(name string, r *kgo.Record) (evoke.SourcedEvent, error)
	// RetryDelay is how long Start waits before reading again after an
	// error. Defaults to 1 s.
	RetryDelay time.Duration
	// Logger receives the errors Start retries after. Defaults to
	// slog.Default().
	Logger *slog.Logger
}

// Source ingests a Kafka topic into a runtime's log.
type Source struct {
	rt   *evoke.Runtime
	opts []kgo.Opt
	cfg  SourceConfig

	loop loop.Loop

	// beforeIngest, if set, runs before each batch is ingested (tests).
	beforeIngest func(partition int32, batch []evoke.SourcedEvent)
}

// NewSource returns a source that ingests cfg.Topic into rt's log, reading
// with a client made of opts (kgo.SeedBrokers, TLS, SASL; the source adds
// the partitions and offsets to consume).
func NewSource(rt *evoke.Runtime, opts []kgo.Opt, cfg SourceConfig) (*Source, error) {
	if cfg.Topic == "" {
		return nil, fmt.Errorf("%w: evokekafka: no topic", evoke.ErrInvalid)
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Topic
	}
	if cfg.Map == nil {
		cfg.Map = DefaultMap
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Source{rt: rt, opts: opts, cfg: cfg}, nil
}

// Position returns the stored position of a partition: the offset of the
// next record to read (0 for none read).
func (s *Source) Position(ctx context.Context, partition int32) (int64, error) {
	p, _, err := s.rt.SourcePosition(ctx, s.cfg.Name, int(partition))
	return p, err
}

// Start ingests in the background until Stop, reading again after
// RetryDelay when reading or ingesting fails.
func (s *Source) Start(ctx context.Context) error {
	return s.loop.Start(ctx, s.Run, func(err error) {
		s.cfg.Logger.Error("evokekafka: source failed; reading again", "source", s.cfg.Name, "err", err, "retry_in", s.cfg.RetryDelay)
	}, s.cfg.RetryDelay)
}

// Stop stops a started source and waits for its batch to finish, or for
// ctx. A batch not committed is read again after the next Start.
func (s *Source) Stop(ctx context.Context) error { return s.loop.Stop(ctx) }

// Run ingests until ctx is done or reading or ingesting fails: it reads
// each partition from its stored offset, and appends each partition's
// share of a fetch with the offset it reaches in one transaction.
func (s *Source) Run(ctx context.Context) error {
	parts := s.cfg.Partitions
	if len(parts) == 0 {
		var err error
		if parts, err = s.partitions(ctx); err != nil {
			return err
		}
	}
	offsets := make(map[int32]kgo.Offset, len(parts))
	for _, p := range parts {
		pos, err := s.Position(ctx, p)
		if err != nil {
			return err
		}
		offsets[p] = kgo.NewOffset().At(pos)
	}
	opts := append(append([]kgo.Opt(nil), s.opts...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.cfg.Topic: offsets}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("evokekafka: client: %w", err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("evokekafka: fetch %s/%d: %w", topic, p, err))
		})
		if ferr != nil {
			return ferr
		}
		var ierr error
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if ierr == nil && len(p.Records) > 0 {
				ierr = s.ingest(ctx, p.Partition, p.Records)
			}
		})
		if ierr != nil {
			return ierr
		}
	}
}

// partitions asks the brokers for the topic's partitions.
func (s *Source) partitions(ctx context.Context) ([]int32, error) {
	cl, err := kgo.NewClient(s.opts...)
	if err != nil {
		return nil, fmt.Errorf("evokekafka: client: %w", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(s.cfg.Topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("evokekafka: metadata of %s: %w", s.cfg.Topic, err)
	}
	var out []int32
	for _, rt := range resp.Topics {
		if rt.ErrorCode != 0 {
			return nil, fmt.Errorf("evokekafka: metadata of %s: error code %d", s.cfg.Topic, rt.ErrorCode)
		}
		for _, p := range rt.Partitions {
			out = append(out, p.Partition)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("evokekafka: topic %s has no partitions", s.cfg.Topic)
	}
	return out, nil
}

// ingest maps one partition's records and appends them with its offset.
func (s *Source) ingest(ctx context.Context, partition int32, recs []*kgo.Record) error {
	batch := make([]evoke.SourcedEvent, 0, len(recs))
	for _, r := range recs {
		se, err := s.cfg.Map(s.cfg.Name, r)
		if err != nil {
			return fmt.Errorf("evokekafka: map record %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		se.Position = r.Offset + 1
		batch = append(batch, se)
	}
	if s.beforeIngest != nil {
		s.beforeIngest(partition, batch)
	}
	_, err := s.rt.Ingest(ctx, s.cfg.Name, int(partition), batch)
	return err
}

// DefaultMap makes the event of a record of the source named name (see
// the package documentation).
func DefaultMap(name string, r *kgo.Record) (evoke.SourcedEvent, error) {
	e := evoke.Event{Type: r.Topic, Data: r.Value}
	var stream string
	for _, h := range r.Headers {
		v := string(h.Value)
		switch {
		case strings.EqualFold(h.Key, HeaderEventType):
			e.Type = v
		case strings.EqualFold(h.Key, HeaderStreamID):
			stream = v
		case strings.EqualFold(h.Key, HeaderCorrelationID):
			e.Metadata.CorrelationID = v
		case strings.EqualFold(h.Key, HeaderCausationID):
			e.Metadata.CausationID = v
		case v == "" || len(h.Key) >= 6 && strings.EqualFold(h.Key[:6], "Evoke-"):
		default:
			if e.Metadata.Values == nil {
				e.Metadata.Values = map[string]string{}
			}
			e.Metadata.Values[h.Key] = v
		}
	}
	if len(e.Data) == 0 {
		e.Data = []byte("{}")
	}
	se := evoke.SourcedEvent{StreamID: name + "-" + strconv.Itoa(int(r.Partition)), StreamVersion: r.Offset + 1, Event: e}
	if stream != "" {
		se.StreamID, se.StreamVersion = stream, 0
	}
	// The input contract of evoke's log, checked here for a clearer
	// error than the append's.
	if len(e.Data) == 0 {
		return se, errors.New("the value is empty, not JSON")
	}
	if err := evokestore.CheckJSON("the value", e.Data); err != nil {
		return se, err
	}
	return se, nil
}
