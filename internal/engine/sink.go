package engine

import (
	"cmp"
	"context"
	"fmt"
	"sync"

	"github.com/evoke-go/evoke/evokestore"
)

// Sink delivers the commands of an aggregate type that lives outside this
// process (a message bus, an HTTP service). Send returns a rejection reason
// ("" when the receiver accepted the command) or an error, a transient
// failure that the dispatcher retries with backoff and, past MaxAttempts,
// parks the command's instance over.
type Sink interface {
	Send(ctx context.Context, c *evokestore.OutboxCommand) (reason string, err error)
}

// sinkConcurrency bounds the commands of different instances sent at once.
const sinkConcurrency = 64

// answers keeps the answers of commands sent whose outcomes are not
// recorded yet, so that a batch that fails for another reason (another
// command's transient failure, a store error) does not send them again
// when it is retried. A restart forgets them: a command is sent at least
// once.
type answers struct {
	mu sync.Mutex
	m  map[string]string
}

func (a *answers) get(id string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.m[id]
	return r, ok
}

func (a *answers) put(id, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]string{}
	}
	a.m[id] = reason
}

// forget drops the answers of commands whose outcomes are recorded.
func (a *answers) forget(m map[string]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id := range m {
		delete(a.m, id)
	}
}

// AddSink registers the sink of an aggregate type not registered here.
func (en *Engine) AddSink(aggregateType string, s Sink) {
	if en.sinks == nil {
		en.sinks = map[string]Sink{}
	}
	en.sinks[aggregateType] = s
}

// Sink returns the sink registered for an aggregate type, or nil.
func (en *Engine) Sink(aggregateType string) Sink { return en.sinks[aggregateType] }

// send delivers the commands of cmds that go to a sink, before the
// transaction that records their outcomes opens: a network call never holds
// the store's writer. Commands with an outcome recorded already are not
// sent again. It returns the rejection reason of each command sent ("" for
// accepted), or the first transient failure: the batch then fails as a
// whole, and the dispatcher retries its commands one by one (those answered
// already are not sent again, see answers). Commands of one instance are
// sent in order, those of different instances concurrently.
func (en *Engine) send(ctx context.Context, cmds []evokestore.OutboxCommand) (map[string]string, error) {
	var ids []string
	for i := range cmds {
		if en.sinks[cmds[i].AggregateType] != nil {
			ids = append(ids, cmds[i].ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	done, err := en.store.CommandOutcomes(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("load command outcomes: %w", err)
	}
	recorded := make(map[string]bool, len(done))
	for _, o := range done {
		recorded[o.CommandID] = true
	}
	// Commands of one instance are sent in order, one at a time; those
	// of different instances concurrently, up to sinkConcurrency at once.
	var groups [][]*evokestore.OutboxCommand
	index := map[[2]string]int{}
	queued := make(map[string]bool, len(ids))
	for i := range cmds {
		c := &cmds[i]
		if en.sinks[c.AggregateType] == nil || recorded[c.ID] || queued[c.ID] {
			continue
		}
		queued[c.ID] = true
		key := [2]string{c.ProcessManager, c.InstanceID}
		if c.ProcessManager == "" {
			key[1] = c.ID // not an instance's: on its own
		}
		k, ok := index[key]
		if !ok {
			k = len(groups)
			index[key] = k
			groups = append(groups, nil)
		}
		groups[k] = append(groups[k], c)
	}
	var (
		mu       sync.Mutex
		out      = make(map[string]string, len(ids))
		firstErr error
		wg       sync.WaitGroup
		slots    = make(chan struct{}, sinkConcurrency)
	)
	for _, g := range groups {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			for _, c := range g {
				reason, ok := en.answers.get(c.ID)
				if !ok {
					var err error
					if reason, err = en.sendOne(ctx, en.sinks[c.AggregateType], c); err != nil {
						mu.Lock()
						firstErr = cmp.Or(firstErr, fmt.Errorf("send command %s (%s) to %s: %w", c.ID, c.Type, c.AggregateType, err))
						mu.Unlock()
						return // the instance's later commands wait for this one
					}
					en.answers.put(c.ID, reason)
				}
				mu.Lock()
				out[c.ID] = reason
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// sendOne sends one command, bounded by StepTimeout.
func (en *Engine) sendOne(ctx context.Context, s Sink, c *evokestore.OutboxCommand) (string, error) {
	if en.cfg.StepTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, en.cfg.StepTimeout)
		defer cancel()
	}
	return s.Send(ctx, c)
}
