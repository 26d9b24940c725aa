package evoke

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/engine"
)

// SourcePrefix begins the name under which the store keeps an external
// source's position, beside the process managers' checkpoints: a source
// named "orders" keeps its position under "$source:orders". No process
// manager's name begins with it.
const SourcePrefix = "$source:"

// SourcedEvent is an event read from an external source (a NATS JetStream
// stream, a Kafka partition; see packages evokenats and evokekafka) at its
// position there, to be appended to the runtime's log by Ingest.
type SourcedEvent struct {
	// Position is the message's position in its source partition (a
	// stream sequence, a partition offset plus one): greater than 0, and
	// growing with each message.
	Position int64
	// StreamID is the stream of the runtime's log the event is appended to.
	StreamID string
	// StreamVersion is the event's version in StreamID, or 0 to append it
	// after the stream's last event. The adapters use Position when the
	// stream holds one source partition's events only, which saves a read.
	StreamVersion int64
	// Event is the event. An empty ID is set to SourceEventID's.
	Event Event
}

// SourceEventID returns the deterministic ID of the event read at position
// of partition of source: a UUID (version 8) whose first 48 bits are the
// position. A message delivered twice gets the same ID each time.
func SourceEventID(source string, partition int, position int64) string {
	return engine.SortableID(uint64(position), "source", source, strconv.Itoa(partition), strconv.FormatInt(position, 10))
}

// SourcePosition returns the position of source's partition that Ingest
// stored last; ok is false before the first Ingest. A source adapter reads
// the source from the message after it.
func (rt *Runtime) SourcePosition(ctx context.Context, source string, partition int) (position int64, ok bool, err error) {
	cp, ok, err := rt.store.Checkpoint(ctx, SourcePrefix+source, partition)
	if err != nil {
		return 0, false, fmt.Errorf("source %s partition %d: %w", source, partition, err)
	}
	return cp.Position, ok, nil
}

// Ingest appends events read from partition of an external source to the
// log, in one transaction that also stores the source's position there
// (the greatest Position of events), so that the log holds each message
// once however often the source delivers it: an event at or below the
// stored position is dropped, and so is one whose ID the log holds
// already. Two ingesters of one partition (two nodes on one PostgreSQL
// store) cannot append a message twice either: the second one's append
// collides with the first one's event IDs, and Ingest retries on the
// position the first one stored. appended counts the events appended.
//
// Events must come in position order. Ingest does not need a started
// runtime: a process of its own can ingest for runtimes elsewhere.
func (rt *Runtime) Ingest(ctx context.Context, source string, partition int, events []SourcedEvent) (appended int, err error) {
	name := SourcePrefix + source
	if err := evokestore.CheckID("source name", name); err != nil {
		return 0, err
	}
	if len(events) == 0 {
		return 0, nil
	}
	news := make([]evokestore.NewEvent, len(events))
	positions := make([]int64, len(events))
	now := rt.cfg.Clock.Now()
	for i, se := range events {
		if se.Position <= 0 || i > 0 && se.Position <= events[i-1].Position {
			return 0, fmt.Errorf("%w: source %s: positions must be positive and growing, got %d", ErrInvalid, source, se.Position)
		}
		e := se.Event
		if e.ID == "" {
			e.ID = SourceEventID(source, partition, se.Position)
		}
		if err := evokestore.CheckID("stream id", se.StreamID); err != nil {
			return 0, fmt.Errorf("ingest from %s at %d: %w", source, se.Position, err)
		}
		ne, err := storeEvent(e, se.StreamID, max(se.StreamVersion, 1), now)
		if err != nil {
			return 0, fmt.Errorf("ingest from %s at %d: %w", source, se.Position, err)
		}
		news[i], positions[i] = ne, se.Position
	}
	var exists map[string]bool
	for attempt := 1; ; attempt++ {
		appended = 0
		err = evokestore.WithTx(ctx, rt.store, func(tx evokestore.Tx) error {
			cp, _, err := tx.Checkpoint(ctx, name, partition)
			if err != nil {
				return err
			}
			var batch []evokestore.NewEvent
			versions := map[string]int64{}
			for i := range news {
				if positions[i] <= cp.Position || exists[news[i].ID] {
					continue
				}
				ne := news[i]
				if events[i].StreamVersion == 0 {
					v, ok := versions[ne.StreamID]
					if !ok {
						if v, err = streamVersion(ctx, tx, ne.StreamID); err != nil {
							return err
						}
					}
					ne.StreamVersion = v + 1
					versions[ne.StreamID] = ne.StreamVersion
				}
				batch = append(batch, ne)
			}
			last := positions[len(positions)-1]
			if last <= cp.Position {
				return nil
			}
			if len(batch) > 0 {
				if _, err := tx.AppendEvents(ctx, batch); err != nil {
					return err
				}
			}
			appended = len(batch)
			return tx.PutCheckpoint(ctx, evokestore.Checkpoint{ProcessManager: name, Partition: partition, Position: last})
		})
		if err == nil || attempt == 10 || ctx.Err() != nil {
			break
		}
		switch {
		case errors.Is(err, ErrDuplicateEvent):
			// Another ingester, or an earlier run, appended some of these
			// messages: the next attempt reads the position it stored, and
			// drops the events the log holds.
			if exists, err = rt.existing(ctx, news); err != nil {
				return 0, err
			}
		case errors.Is(err, ErrVersionConflict), evokestore.IsConflict(err):
		default:
			return 0, fmt.Errorf("ingest from %s: %w", source, err)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("ingest from %s: %w", source, err)
	}
	return appended, nil
}

// existing returns which of news's IDs the log holds.
func (rt *Runtime) existing(ctx context.Context, news []evokestore.NewEvent) (map[string]bool, error) {
	er, ok := rt.store.(evokestore.EventsReader)
	if !ok {
		return nil, nil
	}
	ids := make([]string, len(news))
	for i := range news {
		ids[i] = news[i].ID
	}
	evs, err := er.ReadEvents(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	out := make(map[string]bool, len(evs))
	for _, e := range evs {
		out[e.ID] = true
	}
	return out, nil
}

// reservedName reports whether a process manager's name is reserved.
func reservedName(name string) bool { return strings.HasPrefix(name, SourcePrefix) }
