package engine

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/evoke-go/evoke/evokestore"
)

// PartitionOf returns the partition of an instance ID among n.
func PartitionOf(instanceID string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(instanceID))
	return int(h.Sum32() % uint32(n))
}

// leaseSet is the partitions a node owns now, with their lease tokens. It
// is replaced as a whole, never changed.
type leaseSet struct {
	parts  []int
	tokens map[int]int64
}

// owns reports whether p is in ls; a nil ls (a runtime not started) owns
// nothing.
func (ls *leaseSet) owns(p int) bool {
	if ls == nil {
		return false
	}
	_, ok := ls.tokens[p]
	return ok
}

// allPartitions is the lease set of a store without leases: one node owns
// every partition, and nothing is fenced.
func allPartitions(n int) *leaseSet {
	ls := &leaseSet{tokens: make(map[int]int64, n)}
	for p := range n {
		ls.parts = append(ls.parts, p)
		ls.tokens[p] = 0
	}
	return ls
}

// fence makes tx fail unless this node still holds the leases of parts as
// ls has them (nothing without leases).
func (en *Engine) fence(ctx context.Context, tx evokestore.Tx, ls *leaseSet, parts []int) error {
	if en.leaser == nil || len(parts) == 0 {
		return nil
	}
	lc, ok := tx.(evokestore.LeaseChecker)
	if !ok {
		return fmt.Errorf("store %s leases partitions but cannot check them in a transaction", en.store.Backend())
	}
	leases := make([]evokestore.Lease, 0, len(parts))
	for _, p := range parts {
		tok, ok := ls.tokens[p]
		if !ok {
			return fmt.Errorf("%w: partition %d is not this node's", evokestore.ErrLeaseLost, p)
		}
		leases = append(leases, evokestore.Lease{Partition: p, Node: en.cfg.NodeID, Token: tok})
	}
	if err := lc.CheckLeases(ctx, en.cfg.NodeID, leases); err != nil {
		en.counters.LeaseLost.Add(1)
		return err
	}
	return nil
}

// balance takes this node's fair share of the partitions and renews it.
func (en *Engine) balance(ctx context.Context) error {
	leases, err := en.leaser.Balance(ctx, en.cfg.NodeID, en.cfg.Partitions, en.cfg.LeaseTTL)
	if err != nil {
		return err
	}
	ls := &leaseSet{tokens: make(map[int]int64, len(leases))}
	for _, l := range leases {
		ls.parts = append(ls.parts, l.Partition)
		ls.tokens[l.Partition] = l.Token
	}
	old := en.leases.Load()
	en.leases.Store(ls)
	en.lastBalance = time.Now()
	if old == nil || !slices.Equal(old.parts, ls.parts) || !mapsEqual(old.tokens, ls.tokens) {
		en.log.Info("partition leases", "node", en.cfg.NodeID, "partitions", ls.parts)
		en.kickAll()
	}
	return nil
}

func mapsEqual(a, b map[int]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// leaseLoop renews and rebalances the node's leases every third of the
// lease time. If it cannot for a whole lease time, the node stops working
// on any partition until it can again: another node may own them by then.
func (en *Engine) leaseLoop(ctx context.Context) {
	every := en.cfg.LeaseTTL / 3
	for {
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := en.leaser.Leave(lctx, en.cfg.NodeID); err != nil {
				en.log.Warn("could not release leases on stop", "node", en.cfg.NodeID, "err", err)
			}
			cancel()
			return
		case <-t.C:
		}
		if err := en.balance(ctx); err != nil && ctx.Err() == nil {
			en.log.Error("lease renewal failed", "node", en.cfg.NodeID, "err", err)
			if time.Since(en.lastBalance) > en.cfg.LeaseTTL {
				en.leases.Store(&leaseSet{tokens: map[int]int64{}})
			}
		}
	}
}

// kickAll wakes every router and the dispatcher after the leases changed.
func (en *Engine) kickAll() {
	for _, r := range en.routers {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}
