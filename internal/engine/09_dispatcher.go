package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/evoke-go/evoke/evokestore"
)

// dispatcher moves commands from the outbox to their aggregates, a batch per
// transaction, in outbox order (so in order per instance).
type dispatcher struct {
	en *Engine
	// attempts counts the failed dispatches of commands that failed on
	// their own (not as part of a batch).
	attempts map[string]int
}

// parkedSet holds the instances (process manager, ID) parked because one
// of their commands could not be dispatched: their commands stay in the
// outbox until an operator retries the instance. The dispatcher changes
// it; Idle reads it.
type parkedSet struct {
	mu  sync.Mutex
	ids map[[2]string]bool
}

func (p *parkedSet) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids = map[[2]string]bool{}
}

func (p *parkedSet) add(pm, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids[[2]string{pm, id}] = true
}

func (p *parkedSet) drop(pm, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.ids, [2]string{pm, id})
}

// byPM returns the instances by process manager.
func (p *parkedSet) byPM() map[string][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]string{}
	for key := range p.ids {
		out[key[0]] = append(out[key[0]], key[1])
	}
	return out
}

// others returns the commands of cmds whose instances are not parked.
func (p *parkedSet) others(cmds []evokestore.OutboxCommand) []evokestore.OutboxCommand {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := cmds[:0:0]
	for _, c := range cmds {
		if !p.ids[[2]string{c.ProcessManager, c.InstanceID}] {
			out = append(out, c)
		}
	}
	return out
}

func (d *dispatcher) run(ctx context.Context) {
	wake, cancel := d.en.store.Subscribe(evokestore.TopicOutbox)
	defer cancel()
	d.attempts = map[string]int{}
	d.en.parked.reset()
	failures, remembered := 0, false
	for ctx.Err() == nil {
		d.en.busy.Add(1)
		n, err := 0, error(nil)
		if !remembered {
			err = d.remember(ctx)
			remembered = err == nil
		}
		if err == nil {
			n, err = d.pass(ctx)
		}
		d.en.busy.Add(-1)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			delay := d.en.backoff(failures)
			d.en.log.Log(ctx, d.en.retryLevel(err, failures), "dispatch failed; retrying", "err", err, "retry_in", delay)
			if !sleep(ctx, delay) {
				return
			}
			continue
		}
		failures = 0
		if n >= d.en.cfg.DispatchBatchSize {
			continue
		}
		if !d.en.wait(ctx, wake, d.en.cfg.PollInterval) {
			return
		}
	}
}

// pass dispatches one batch and returns how many commands it dispatched. If
// the batch as a whole fails, its commands are tried one by one so that one
// bad command cannot hold up the others; an instance whose command fails
// keeps its later commands back, to keep them in order. A command that
// fails on its own MaxAttempts times (a transient error that does not go
// away: the store refusing its events, a timeout) parks its instance.
func (d *dispatcher) pass(ctx context.Context) (int, error) {
	ls := d.en.leases.Load()
	cmds, err := d.read(ctx, ls)
	if err != nil || len(cmds) == 0 {
		return 0, err
	}
	_, err = d.en.execute(ctx, cmds, ls)
	if err == nil {
		d.en.counters.Dispatched.Add(int64(len(cmds)))
		return len(cmds), nil
	}
	if ctx.Err() != nil {
		return 0, err
	}
	d.en.conflict(err)
	d.en.log.Warn("dispatch batch failed; dispatching its commands one by one", "commands", len(cmds), "err", err)
	return d.oneByOne(ctx, cmds, ls)
}

// read returns the next batch of commands of the partitions ls holds,
// whole steps only, without those of parked instances. It reads on past a
// batch that holds only parked instances' commands, so that they hold back
// no other instance's, however many they are.
func (d *dispatcher) read(ctx context.Context, ls *leaseSet) ([]evokestore.OutboxCommand, error) {
	q := evokestore.OutboxQuery{Limit: d.en.cfg.DispatchBatchSize}
	if d.en.leaser != nil {
		if len(ls.parts) == 0 {
			return nil, nil
		}
		q.Partitions = ls.parts
	}
	if err := d.unpark(ctx); err != nil {
		return nil, err
	}
	for {
		all, err := d.en.store.Outbox(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		full := len(all) == q.Limit
		if full {
			all = wholeSteps(all)
		}
		cmds := d.en.parked.others(all)
		if len(cmds) > 0 || !full {
			return cmds, nil
		}
		q.After = all[len(all)-1].Seq
	}
}

// wholeSteps drops the commands of the step a full read ends in, unless
// that step is all it read: a step's commands are decided in one
// transaction, so that a rejected one can discard the later ones
// (Discarder), and the next read takes that step whole.
func wholeSteps(all []evokestore.OutboxCommand) []evokestore.OutboxCommand {
	last := stepKey(&all[len(all)-1])
	n := len(all)
	for n > 0 && stepKey(&all[n-1]) == last {
		n--
	}
	if n == 0 {
		return all
	}
	return all[:n]
}

// oneByOne dispatches cmds a step at a time, after their batch failed, so
// that one bad command cannot hold up the others: an instance whose
// command fails keeps its later commands back, in order, and one whose
// command keeps failing is parked. It returns how many were dispatched.
func (d *dispatcher) oneByOne(ctx context.Context, cmds []evokestore.OutboxCommand, ls *leaseSet) (int, error) {
	blocked := map[string]bool{}
	var firstErr error
	n := 0
	for i := 0; i < len(cmds); {
		// One step's commands at a time (see read).
		j := i + 1
		for j < len(cmds) && stepKey(&cmds[j]) == stepKey(&cmds[i]) {
			j++
		}
		c := cmds[i]
		step := cmds[i:j]
		i = j
		key := c.ProcessManager + "\x00" + c.InstanceID
		if blocked[key] {
			continue
		}
		if _, err := d.en.execute(ctx, step, ls); err != nil {
			if ctx.Err() != nil {
				return n, err
			}
			blocked[key] = true
			// A conflict with another transaction is no fault of the
			// command's: it does not count towards parking its instance.
			// (It is counted as a conflict once, by run's retryLevel, when
			// the pass returns it.)
			if !evokestore.IsConflict(err) {
				d.attempts[c.ID]++
			}
			if d.attempts[c.ID] >= d.en.cfg.MaxAttempts && c.ProcessManager != "" {
				if perr := d.park(ctx, ls, &c, err); perr != nil {
					firstErr = cmp.Or(firstErr, perr)
				}
				continue
			}
			firstErr = cmp.Or(firstErr, fmt.Errorf("command %s (%s) of %s %s: %w", c.ID, c.Type, c.ProcessManager, c.InstanceID, err))
			continue
		}
		delete(d.attempts, c.ID)
		d.en.counters.Dispatched.Add(int64(len(step)))
		n += len(step)
	}
	return n, firstErr
}

// dispatchPark is the event type of the history record of a park by the
// dispatcher, and parkReason the start of the last error it gives the
// instance.
const (
	dispatchPark = "$dispatch"
	parkReason   = "dispatch of command "
)

// park parks the instance of a command that could not be dispatched.
func (d *dispatcher) park(ctx context.Context, ls *leaseSet, c *evokestore.OutboxCommand, cause error) error {
	en := d.en
	now := en.cfg.Clock.Now()
	reason := evokestore.Text(fmt.Sprintf(parkReason+"%s (%s) failed %d times: %v", c.ID, c.Type, d.attempts[c.ID], cause))
	var tel Telemetry
	err := evokestore.WithTx(ctx, en.store, func(tx evokestore.Tx) error {
		if err := en.fence(ctx, tx, ls, []int{c.Partition}); err != nil {
			return err
		}
		insts, err := tx.Instances(ctx, c.ProcessManager, []string{c.InstanceID})
		if err != nil || len(insts) == 0 {
			return err
		}
		in := insts[0]
		if in.Status.Done() || in.Status == evokestore.StatusParked {
			return nil
		}
		prev := in.Version
		in.Status, in.LastError, in.UpdatedAt, in.NextAttemptAt = evokestore.StatusParked, reason, now, time.Time{}
		// The version moves on, so that the router, which may hold the
		// instance as running (in a batch committing, or cached), cannot
		// commit over the park: its write is fenced off. The instance's
		// deadlines move with it, to fire once it runs again. (A store
		// that cannot list an instance's deadlines keeps the version; the
		// router then caches no instances, see New.)
		if dr, ok := deadlinesReader(tx, en.store); ok {
			in.Version++
			dls, err := dr.InstanceDeadlines(ctx, c.ProcessManager, []string{c.InstanceID})
			if err != nil {
				return err
			}
			if len(dls) > 0 {
				for i := range dls {
					dls[i].Version = in.Version
				}
				if err := tx.ReplaceDeadlines(ctx, c.ProcessManager, []string{c.InstanceID}, dls); err != nil {
					return err
				}
			}
		}
		if err := tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: in, PrevVersion: prev}}); err != nil {
			return err
		}
		tel = Telemetry{Kind: TelemetryPark, SystemTime: now, ProcessManager: c.ProcessManager, InstanceID: c.InstanceID,
			CommandType: c.Type, CommandID: c.ID, Attempt: d.attempts[c.ID], Err: reason}
		return tx.InsertHistory(ctx, []evokestore.HistoryRecord{{ProcessManager: c.ProcessManager, InstanceID: c.InstanceID,
			Kind: evokestore.KindParked, Version: in.Version, EventType: dispatchPark, PhaseBefore: in.Phase, PhaseAfter: in.Phase,
			Error: reason, RecordedAt: now, Node: en.cfg.NodeID, LeaseToken: ls.tokens[c.Partition]}})
	})
	if err != nil {
		return fmt.Errorf("park %s %s: %w", c.ProcessManager, c.InstanceID, err)
	}
	d.en.parked.add(c.ProcessManager, c.InstanceID)
	delete(d.attempts, c.ID)
	if tel.Kind != "" {
		en.counters.Parked.Add(1)
		en.log.Error("instance parked: its command cannot be dispatched", "process_manager", c.ProcessManager, "instance", c.InstanceID, "command", c.ID, "err", cause)
		en.cfg.Hooks.Telemetry(tel)
	}
	return nil
}

// unpark forgets parked instances an operator has retried or cancelled,
// reading them a process manager at a time.
func (d *dispatcher) unpark(ctx context.Context) error {
	for pm, ids := range d.en.parked.byPM() {
		insts, err := d.en.store.Instances(ctx, pm, ids)
		if err != nil {
			return fmt.Errorf("load parked instances: %w", err)
		}
		still := make(map[string]bool, len(insts))
		for _, in := range insts {
			still[in.ID] = in.Status == evokestore.StatusParked
		}
		for _, id := range ids {
			if !still[id] {
				d.en.parked.drop(pm, id)
			}
		}
	}
	return nil
}

// remember finds the instances a dispatcher parked before this one
// started: parked instances whose last history record is a dispatch's
// park. Their commands stay back across a restart, as they did before it.
// Only the instances whose last error is a dispatch's have their history
// read: the others were parked by a step.
func (d *dispatcher) remember(ctx context.Context) error {
	q := evokestore.InstanceQuery{Status: evokestore.StatusParked, Limit: 1000}
	for {
		insts, err := d.en.store.ListInstances(ctx, q)
		if err != nil {
			return fmt.Errorf("list parked instances: %w", err)
		}
		for i := range insts {
			in := &insts[i]
			if !strings.HasPrefix(in.LastError, parkReason) {
				continue
			}
			hist, err := d.en.store.History(ctx, in.ProcessManager, in.ID)
			if err != nil {
				return fmt.Errorf("read history of %s %s: %w", in.ProcessManager, in.ID, err)
			}
			if n := len(hist); n > 0 && hist[n-1].Kind == evokestore.KindParked && hist[n-1].EventType == dispatchPark {
				d.en.parked.add(in.ProcessManager, in.ID)
			}
		}
		if len(insts) < q.Limit {
			return nil
		}
		q.AfterProcessManager, q.AfterID = insts[len(insts)-1].ProcessManager, insts[len(insts)-1].ID
	}
}

// Execute runs commands (not from the outbox) against their aggregates in
// one transaction: each command's events and its outcome (its deduplication
// record) commit together. A version conflict (another writer appended to
// one of the streams) retries the whole batch on fresh state.
func (en *Engine) Execute(ctx context.Context, cmds []evokestore.OutboxCommand) ([]CommandResult, error) {
	return en.execute(ctx, cmds, nil)
}

// execute is Execute; with ls, the commands come from the outbox of the
// partitions ls holds, leave it in the same transaction, and the
// transaction is fenced by those partitions' leases.
func (en *Engine) execute(ctx context.Context, cmds []evokestore.OutboxCommand, ls *leaseSet) ([]CommandResult, error) {
	for attempt := 1; ; attempt++ {
		res, err := en.executeOnce(ctx, cmds, ls)
		if err != nil && (errors.Is(err, evokestore.ErrVersionConflict) || errors.Is(err, evokestore.ErrDuplicateCommand)) && attempt < 10 {
			continue
		}
		return res, err
	}
}

func (en *Engine) executeOnce(ctx context.Context, cmds []evokestore.OutboxCommand, ls *leaseSet) ([]CommandResult, error) {
	fromOutbox := ls != nil
	answers, err := en.send(ctx, cmds)
	if err != nil {
		return nil, err
	}
	var x *execution
	err = evokestore.WithTx(ctx, en.store, func(tx evokestore.Tx) error {
		lookup := lookupAll
		if fromOutbox {
			lookup = lookupRecords
		}
		var err error
		if x, err = en.decideAll(ctx, tx, cmds, nil, lookup, answers); err != nil {
			return err
		}
		// The fence is the first write: on PostgreSQL it takes the append
		// lock, so the reads of the decisions come before it.
		var seqs []int64
		if fromOutbox {
			parts := make([]int, 0, len(cmds))
			seqs = make([]int64, 0, len(cmds))
			for i := range cmds {
				parts = append(parts, cmds[i].Partition)
				seqs = append(seqs, cmds[i].Seq)
			}
			slices.Sort(parts)
			if err := en.fence(ctx, tx, ls, slices.Compact(parts)); err != nil {
				return err
			}
		}
		return x.write(ctx, tx, seqs)
	})
	if err != nil {
		return nil, err
	}
	en.answers.forget(answers)
	en.counters.Rejected.Add(int64(x.rejected))
	return x.results, nil
}
