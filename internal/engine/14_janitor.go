package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/evoke-go/evoke/evokestore"
)

// janitor purges tombstones, their history and old command outcomes once
// they are older than the retention.
type janitor struct{ en *Engine }

const purgeLimit = 1000

func (j *janitor) run(ctx context.Context) {
	cfg := j.en.cfg
	if cfg.Retention <= 0 || cfg.PurgeInterval <= 0 {
		return
	}
	for {
		if err := j.en.Purge(ctx); err != nil && ctx.Err() == nil {
			j.en.log.Error("purge failed", "err", err)
		}
		due, stop := cfg.Clock.NewTimer(cfg.PurgeInterval)
		select {
		case <-ctx.Done():
			stop()
			return
		case <-due:
		}
	}
}

// Purge deletes what is older than the retention now, in transactions of
// up to purgeLimit rows, and returns what it deleted.
func (en *Engine) Purge(ctx context.Context) error {
	if en.cfg.Retention <= 0 {
		return nil
	}
	before := en.cfg.Clock.Now().Add(-en.cfg.Retention)
	for {
		var res evokestore.PurgeResult
		supported := true
		err := evokestore.WithTx(ctx, en.store, func(tx evokestore.Tx) error {
			p, ok := tx.(evokestore.Purger)
			if !ok {
				supported = false
				return nil
			}
			var err error
			res, err = p.Purge(ctx, before, purgeLimit)
			return err
		})
		if err != nil {
			return fmt.Errorf("purge before %s: %w", before.Format(time.RFC3339), err)
		}
		if !supported {
			return nil
		}
		en.counters.Purged.Add(int64(res.Instances))
		if res.Instances < purgeLimit && res.CommandOutcomes < purgeLimit {
			return nil
		}
	}
}
