// Package loop runs a function in the background until it is stopped,
// running it again after a delay whenever it returns early: the Start and
// Stop of the source adapters (evokenats, evokekafka).
package loop

import (
	"context"
	"sync"
	"time"

	"github.com/evoke-go/evoke"
)

// Loop runs one function at a time in the background. Its zero value is
// stopped.
type Loop struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs run in the background, with a context that ends at Stop (not
// with ctx's cancellation, only its values). When run returns before Stop,
// failed is told its error and run starts again after retry. Start on a
// started Loop fails with evoke.ErrStarted.
func (l *Loop) Start(ctx context.Context, run func(context.Context) error, failed func(error), retry time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel != nil {
		return evoke.ErrStarted
	}
	ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	l.done = make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		for {
			err := run(ctx)
			if ctx.Err() != nil {
				return
			}
			failed(err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
		}
	}(l.done)
	return nil
}

// Stop stops a started Loop and waits for run to return, or for ctx.
func (l *Loop) Stop(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel == nil {
		return nil
	}
	l.cancel()
	l.cancel = nil
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
