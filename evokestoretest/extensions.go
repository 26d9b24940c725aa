package evokestoretest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/internal/engine"
)

// This file holds the subtests of LogQuery.Until, Tx.PutCheckpoints,
// OutboxQuery.Partitions, HistoryRecord.Node and LeaseToken, and of the
// optional extensions a backend may implement (StreamsReader, EventsReader,
// DeadlinesReader, AppendReader, Purger, Leaser, LeaseChecker, TallyReader
// and LeaseReader). A subtest of an optional extension skips when the store
// does not implement it.

func testReadLogUntil(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	types := []string{"A", "B"}
	var news []evokestore.NewEvent
	for i := range 6 {
		news = append(news, newEvent(fmt.Sprintf("e%d", i+1), "s", int64(i+1), types[i%2]))
	}
	// Three commits, so that positions need not be contiguous.
	p := appendEvents(t, s, news[:2]...)
	p = append(p, appendEvents(t, s, news[2:5]...)...)
	p = append(p, appendEvents(t, s, news[5])...)
	checkIncreasing(t, p)

	cases := []struct {
		name string
		q    evokestore.LogQuery
		want []string
	}{
		{"until e3", evokestore.LogQuery{Until: p[2].Position}, []string{"e1", "e2", "e3"}},
		{"(e1, e4]", evokestore.LogQuery{After: p[0].Position, Until: p[3].Position}, []string{"e2", "e3", "e4"}},
		{"until e4 of type A", evokestore.LogQuery{Until: p[3].Position, Types: []string{"A"}}, []string{"e1", "e3"}},
		{"(e2, e5] of type B", evokestore.LogQuery{After: p[1].Position, Until: p[4].Position, Types: []string{"B"}}, []string{"e4"}},
		{"(e1, e5] of types A, B, limit 2", evokestore.LogQuery{After: p[0].Position, Until: p[4].Position, Types: []string{"B", "A"}, Limit: 2}, []string{"e2", "e3"}},
		{"(e1, e5] limit 3", evokestore.LogQuery{After: p[0].Position, Until: p[4].Position, Limit: 3}, []string{"e2", "e3", "e4"}},
		{"until e3 of an unknown type", evokestore.LogQuery{Until: p[2].Position, Types: []string{"nope"}}, nil},
		{"empty window (e4, e4]", evokestore.LogQuery{After: p[3].Position, Until: p[3].Position}, nil},
		{"Until below After", evokestore.LogQuery{After: p[3].Position, Until: p[1].Position}, nil},
		{"Until beyond the head", evokestore.LogQuery{Until: p[5].Position + 1000}, []string{"e1", "e2", "e3", "e4", "e5", "e6"}},
		{"Until 0 is unbounded", evokestore.LogQuery{After: p[3].Position, Until: 0}, []string{"e5", "e6"}},
	}
	for _, c := range cases {
		got, err := s.ReadLog(ctx, c.q)
		if err != nil {
			t.Errorf("ReadLog %s: %v", c.name, err)
			continue
		}
		if ids := eventIDs(got); !slices.Equal(ids, c.want) && !(len(ids) == 0 && len(c.want) == 0) {
			t.Errorf("ReadLog %s (%+v) = %v, want %v", c.name, c.q, ids, c.want)
		}
	}

	// Inside a Tx, Until bounds the tx's own uncommitted events too.
	tx := begin(t, s)
	defer tx.Rollback()
	e7, err := tx.AppendEvents(ctx, []evokestore.NewEvent{newEvent("e7", "s", 7, "B")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := tx.ReadLog(ctx, evokestore.LogQuery{After: p[4].Position, Until: p[5].Position})
	if err != nil || !slices.Equal(eventIDs(got), []string{"e6"}) {
		t.Errorf("ReadLog in tx (e5, e6] = %v, %v; want [e6]", eventIDs(got), err)
	}
	got, err = tx.ReadLog(ctx, evokestore.LogQuery{After: p[4].Position, Until: e7[0].Position, Types: []string{"B"}})
	if err != nil || !slices.Equal(eventIDs(got), []string{"e6", "e7"}) {
		t.Errorf("ReadLog in tx (e5, e7] of type B = %v, %v; want [e6 e7]", eventIDs(got), err)
	}
}

func testPutCheckpoints(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	cp := func(pm string, partition int, pos, catchup int64) evokestore.Checkpoint {
		return evokestore.Checkpoint{ProcessManager: pm, Partition: partition, Position: pos, CatchupUntil: catchup}
	}
	check := func(q evokestore.Querier, where string, want ...evokestore.Checkpoint) {
		t.Helper()
		for _, w := range want {
			got, ok, err := q.Checkpoint(ctx, w.ProcessManager, w.Partition)
			if err != nil || !ok || got != w {
				t.Errorf("%s: Checkpoint(%s, %d) = %+v, %v, %v; want %+v", where, w.ProcessManager, w.Partition, got, ok, err, w)
			}
		}
	}

	tx := begin(t, s)
	if err := tx.PutCheckpoints(ctx, nil); err != nil {
		t.Fatalf("PutCheckpoints(nil): %v", err)
	}
	first := []evokestore.Checkpoint{cp("pm", 0, 5, 9), cp("pm", 1, 7, 9), cp("other", 0, 3, 0)}
	if err := tx.PutCheckpoints(ctx, first); err != nil {
		t.Fatalf("PutCheckpoints: %v", err)
	}
	check(tx, "in the tx", first...)
	if _, ok, err := s.Checkpoint(ctx, "pm", 1); err != nil || ok {
		t.Errorf("uncommitted checkpoint visible outside the tx (ok=%v, %v)", ok, err)
	}
	commit(t, tx)
	check(s, "after commit", first...)

	// Overwrite some, add one; PutCheckpoint and PutCheckpoints mix; a
	// checkpoint named twice in one call keeps the last.
	inTx(t, s, func(tx evokestore.Tx) error {
		if err := tx.PutCheckpoint(ctx, cp("pm", 1, 8, 9)); err != nil {
			return err
		}
		return tx.PutCheckpoints(ctx, []evokestore.Checkpoint{cp("pm", 0, 12, 9), cp("pm", 2, 1, 9), cp("pm", 1, 10, 11), cp("pm", 2, 4, 9)})
	})
	check(s, "after overwrite", cp("pm", 0, 12, 9), cp("pm", 1, 10, 11), cp("pm", 2, 4, 9), cp("other", 0, 3, 0))
	if _, ok, err := s.Checkpoint(ctx, "other", 1); err != nil || ok {
		t.Errorf("Checkpoint(other, 1) never written: ok=%v err=%v", ok, err)
	}

	// A rolled back PutCheckpoints leaves the committed ones.
	tx = begin(t, s)
	if err := tx.PutCheckpoints(ctx, []evokestore.Checkpoint{cp("pm", 0, 99, 9), cp("pm", 3, 1, 9)}); err != nil {
		t.Fatal(err)
	}
	rollback(t, tx)
	check(s, "after rollback", cp("pm", 0, 12, 9))
	if _, ok, err := s.Checkpoint(ctx, "pm", 3); err != nil || ok {
		t.Errorf("rolled back checkpoint stored (ok=%v, %v)", ok, err)
	}
}

func testOutboxPartitions(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	parts := []int{0, 1, 2, 3, 1, 0}
	var cmds []evokestore.OutboxCommand
	for i, p := range parts {
		c := command(fmt.Sprintf("c%d", i), "pm", fmt.Sprintf("i%d", i))
		c.Partition = p
		cmds = append(cmds, c)
	}
	inTx(t, s, func(tx evokestore.Tx) error { return tx.InsertOutbox(ctx, cmds[:3]) })
	inTx(t, s, func(tx evokestore.Tx) error { return tx.InsertOutbox(ctx, cmds[3:]) })

	ids := func(q evokestore.OutboxQuery) []string {
		t.Helper()
		got, err := s.Outbox(ctx, q)
		if err != nil {
			t.Fatalf("Outbox(%+v): %v", q, err)
		}
		var out []string
		for i, c := range got {
			if i > 0 && c.Seq <= got[i-1].Seq {
				t.Errorf("Outbox(%+v) not in seq order: %+v", q, got)
			}
			if q.Partitions != nil && !slices.Contains(q.Partitions, c.Partition) {
				t.Errorf("Outbox(%+v) returned %s of partition %d", q, c.ID, c.Partition)
			}
			if c.Partition != parts[c.ID[1]-'0'] {
				t.Errorf("command %s read back with partition %d, want %d", c.ID, c.Partition, parts[c.ID[1]-'0'])
			}
			out = append(out, c.ID)
		}
		return out
	}
	all, err := s.Outbox(ctx, evokestore.OutboxQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(evokestore.OutboxQuery{Partitions: nil}); !slices.Equal(got, []string{"c0", "c1", "c2", "c3", "c4", "c5"}) {
		t.Errorf("Partitions nil (all) = %v", got)
	}
	if got := ids(evokestore.OutboxQuery{Partitions: []int{}}); len(got) != 0 {
		t.Errorf("Partitions empty (none) = %v, want nothing", got)
	}
	if got := ids(evokestore.OutboxQuery{Partitions: []int{3, 1}}); !slices.Equal(got, []string{"c1", "c3", "c4"}) {
		t.Errorf("Partitions [3 1] = %v, want [c1 c3 c4]", got)
	}
	if got := ids(evokestore.OutboxQuery{Partitions: []int{0}}); !slices.Equal(got, []string{"c0", "c5"}) {
		t.Errorf("Partitions [0] = %v, want [c0 c5]", got)
	}
	if got := ids(evokestore.OutboxQuery{Partitions: []int{9}}); len(got) != 0 {
		t.Errorf("Partitions [9] = %v, want nothing", got)
	}
	if got := ids(evokestore.OutboxQuery{Partitions: []int{1, 3}, Limit: 2}); !slices.Equal(got, []string{"c1", "c3"}) {
		t.Errorf("Partitions [1 3] limit 2 = %v, want [c1 c3]", got)
	}
	if len(all) == 6 {
		if got := ids(evokestore.OutboxQuery{Partitions: []int{1, 3}, After: all[3].Seq}); !slices.Equal(got, []string{"c4"}) {
			t.Errorf("Partitions [1 3] after c3 = %v, want [c4]", got)
		}
		if got := ids(evokestore.OutboxQuery{Partitions: []int{}, After: all[0].Seq, Limit: 3}); len(got) != 0 {
			t.Errorf("Partitions empty after c0 = %v, want nothing", got)
		}
	} else {
		t.Errorf("outbox holds %d commands, want 6", len(all))
	}
}

func testHistoryNodeAndLeaseToken(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	with := record("pm", "i", evokestore.KindStep, 1, 5)
	with.Node, with.LeaseToken = "node-a", 42
	big := record("pm", "i", evokestore.KindFailed, 1, 6)
	big.Node, big.LeaseToken = "node-b", 1<<40+3
	without := record("pm", "i", evokestore.KindStep, 2, 7)
	inTx(t, s, func(tx evokestore.Tx) error {
		return tx.InsertHistory(ctx, []evokestore.HistoryRecord{with, big, without})
	})
	got, err := s.History(ctx, "pm", "i")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("history has %d records, want 3", len(got))
	}
	for i, w := range []evokestore.HistoryRecord{with, big, without} {
		if got[i].Node != w.Node || got[i].LeaseToken != w.LeaseToken || got[i].Position != w.Position {
			t.Errorf("history[%d] node %q token %d (position %d), want node %q token %d (position %d)",
				i, got[i].Node, got[i].LeaseToken, got[i].Position, w.Node, w.LeaseToken, w.Position)
		}
	}
}

func testReadStreams(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	// The dispatcher asserts it on a Tx, the inspection tools on the Store.
	srStore, storeOK, txOK := onStoreAndTx[evokestore.StreamsReader](t, s, StreamsReader)

	news, add := eventMaker()
	// Interleaved across commits, so that position order differs from
	// stream order.
	var stored []evokestore.Event
	stored = append(stored, appendEvents(t, s, add("b1", "b", 1), add("a1", "a", 1), add("c1", "c", 1))...)
	stored = append(stored, appendEvents(t, s, add("a2", "a", 2), add("b2", "b", 2))...)
	stored = append(stored, appendEvents(t, s, add("a3", "a", 3))...)
	positions := positionsOf(stored)
	check := func(where string, sr evokestore.StreamsReader, streams []string, want []string) {
		t.Helper()
		got, err := sr.ReadStreams(ctx, streams)
		checkEventsRead(t, fmt.Sprintf("%s: ReadStreams(%q)", where, streams), got, err, want, news, positions)
	}
	if storeOK {
		check("store", srStore, []string{"c", "missing", "a"}, []string{"a1", "a2", "a3", "c1"})
		check("store", srStore, []string{"b", "a", "c"}, []string{"a1", "a2", "a3", "b1", "b2", "c1"})
		check("store", srStore, []string{"b"}, []string{"b1", "b2"})
		check("store", srStore, []string{"missing"}, nil)
		check("store", srStore, nil, nil)
	}
	if !txOK {
		return
	}
	tx := begin(t, s)
	defer tx.Rollback()
	if _, err := tx.AppendEvents(ctx, []evokestore.NewEvent{add("a4", "a", 4), add("0a", "0", 1)}); err != nil {
		t.Fatal(err)
	}
	sr := tx.(evokestore.StreamsReader)
	check("tx", sr, []string{"a", "0", "missing"}, []string{"0a", "a1", "a2", "a3", "a4"})
	check("tx", sr, []string{"c", "b"}, []string{"b1", "b2", "c1"})
	check("tx", sr, nil, nil)
	if storeOK {
		// The store does not see the tx's uncommitted events.
		check("store during tx", srStore, []string{"a", "0"}, []string{"a1", "a2", "a3"})
	}
}

func testPurge(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	tx0 := begin(t, s)
	_, ok := tx0.(evokestore.Purger)
	rollback(t, tx0)
	optional(t, s, Purger, ok)

	before := t0.Add(time.Hour)
	type inst struct {
		pm, id    string
		status    evokestore.InstanceStatus
		completed time.Time
		purged    bool
	}
	insts := []inst{
		{"pm", "old-done", evokestore.StatusCompleted, t0, true},
		{"pm", "old-cancelled", evokestore.StatusCancelled, t0.Add(time.Minute), true},
		{"pm", "recent-done", evokestore.StatusCompleted, t0.Add(48 * time.Hour), false},
		{"pm", "just-after", evokestore.StatusCancelled, before.Add(time.Nanosecond), false},
		{"pm", "running", evokestore.StatusRunning, time.Time{}, false},
		{"pm", "parked", evokestore.StatusParked, time.Time{}, false},
		// Same id as a purged instance, of another process manager.
		{"pm2", "old-done", evokestore.StatusRunning, time.Time{}, false},
	}
	outcomes := []struct {
		id     string
		at     time.Time
		purged bool
	}{
		{"o-old1", t0.Add(-time.Hour), true},
		{"o-old2", t0, true},
		{"o-old3", t0.Add(time.Minute), true},
		{"o-new", t0.Add(48 * time.Hour), false},
	}
	inTx(t, s, func(tx evokestore.Tx) error {
		var ws []evokestore.InstanceWrite
		for _, in := range insts {
			i := instance(in.pm, in.id, 1)
			i.Status, i.CompletedAt = in.status, in.completed
			ws = append(ws, evokestore.InstanceWrite{Instance: i, PrevVersion: -1})
		}
		if err := tx.PutInstances(ctx, ws); err != nil {
			return err
		}
		for _, in := range insts {
			if err := tx.InsertHistory(ctx, []evokestore.HistoryRecord{record(in.pm, in.id, evokestore.KindStep, 1, 4)}); err != nil {
				return err
			}
			if err := tx.Hold(ctx, []evokestore.HeldEvent{{ProcessManager: in.pm, InstanceID: in.id, Position: 5}}); err != nil {
				return err
			}
			if err := tx.ReplaceDeadlines(ctx, in.pm, []string{in.id}, []evokestore.Deadline{{ProcessManager: in.pm, InstanceID: in.id, Name: "d", DueAt: t0, Version: 1}}); err != nil {
				return err
			}
		}
		if err := tx.Hold(ctx, []evokestore.HeldEvent{{ProcessManager: "pm", InstanceID: "", Position: 6, Error: "uncorrelated"}}); err != nil {
			return err
		}
		var os []evokestore.CommandOutcome
		for _, o := range outcomes {
			oc := outcome(o.id, evokestore.OutcomeAccepted)
			oc.RecordedAt = o.at
			os = append(os, oc)
		}
		return tx.PutCommandOutcomes(ctx, os)
	})

	purge := func(limit int, commitIt bool) evokestore.PurgeResult {
		t.Helper()
		tx := begin(t, s)
		res, err := tx.(evokestore.Purger).Purge(ctx, before, limit)
		if err != nil {
			_ = tx.Rollback()
			t.Fatalf("Purge(limit %d): %v", limit, err)
		}
		if commitIt {
			commit(t, tx)
		} else {
			rollback(t, tx)
		}
		return res
	}
	countInstances := func() int {
		t.Helper()
		ins, err := s.ListInstances(ctx, evokestore.InstanceQuery{})
		if err != nil {
			t.Fatal(err)
		}
		return len(ins)
	}
	countOutcomes := func() int {
		t.Helper()
		var ids []string
		for _, o := range outcomes {
			ids = append(ids, o.id)
		}
		got, err := s.CommandOutcomes(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}

	// A rolled back Purge deletes nothing.
	if res := purge(10, false); res != (evokestore.PurgeResult{Instances: 2, CommandOutcomes: 3}) {
		t.Errorf("Purge (rolled back) = %+v, want 2 instances and 3 outcomes", res)
	}
	if n, m := countInstances(), countOutcomes(); n != len(insts) || m != len(outcomes) {
		t.Fatalf("after a rolled back Purge: %d instances and %d outcomes, want %d and %d", n, m, len(insts), len(outcomes))
	}
	// The limit caps instances and outcomes.
	if res := purge(1, true); res != (evokestore.PurgeResult{Instances: 1, CommandOutcomes: 1}) {
		t.Errorf("Purge(limit 1) = %+v, want 1 instance and 1 outcome", res)
	}
	if n, m := countInstances(), countOutcomes(); n != len(insts)-1 || m != len(outcomes)-1 {
		t.Errorf("after Purge(limit 1): %d instances and %d outcomes, want %d and %d", n, m, len(insts)-1, len(outcomes)-1)
	}
	if res := purge(10, true); res != (evokestore.PurgeResult{Instances: 1, CommandOutcomes: 2}) {
		t.Errorf("second Purge = %+v, want the remaining 1 instance and 2 outcomes", res)
	}
	if res := purge(10, true); res != (evokestore.PurgeResult{}) {
		t.Errorf("third Purge = %+v, want nothing left to purge", res)
	}

	for _, in := range insts {
		want := 1
		if in.purged {
			want = 0
		}
		if _, found := loadOne(t, s, in.pm, in.id); found != !in.purged {
			t.Errorf("instance %s/%s stored = %v, want %v", in.pm, in.id, found, !in.purged)
		}
		if h, err := s.History(ctx, in.pm, in.id); err != nil || len(h) != want {
			t.Errorf("history of %s/%s = %d records, %v; want %d", in.pm, in.id, len(h), err, want)
		}
		if h, err := s.Held(ctx, in.pm, in.id); err != nil || len(h) != want {
			t.Errorf("held events of %s/%s = %d, %v; want %d", in.pm, in.id, len(h), err, want)
		}
	}
	if h, err := s.Held(ctx, "pm", ""); err != nil || len(h) != 1 {
		t.Errorf("uncorrelated held events after purge = %d, %v; want 1", len(h), err)
	}
	due, err := s.DueDeadlines(ctx, t0.Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	var dueOf []string
	for _, d := range due {
		dueOf = append(dueOf, d.ProcessManager+"/"+d.InstanceID)
	}
	slices.Sort(dueOf)
	if want := []string{"pm/just-after", "pm/parked", "pm/recent-done", "pm/running", "pm2/old-done"}; !slices.Equal(dueOf, want) {
		t.Errorf("deadlines after purge belong to %v, want %v", dueOf, want)
	}
	for _, o := range outcomes {
		got, err := s.CommandOutcomes(ctx, []string{o.id})
		if err != nil {
			t.Fatal(err)
		}
		if (len(got) == 0) != o.purged {
			t.Errorf("command outcome %s stored = %v, want %v", o.id, len(got) == 1, !o.purged)
		}
	}
}

// leaser returns s as an evokestore.Leaser or skips t.
func leaser(t *testing.T, s evokestore.Store) evokestore.Leaser {
	t.Helper()
	l, ok := s.(evokestore.Leaser)
	optional(t, s, Leaser, ok)
	return l
}

// balance calls Balance and checks the shape of its result.
func balance(t *testing.T, l evokestore.Leaser, node string, partitions int, ttl time.Duration) []evokestore.Lease {
	t.Helper()
	ls, err := l.Balance(t.Context(), node, partitions, ttl)
	if err != nil {
		t.Fatalf("Balance(%s): %v", node, err)
	}
	for i, le := range ls {
		if le.Node != node || le.Partition < 0 || le.Partition >= partitions || le.Token <= 0 {
			t.Errorf("Balance(%s) returned lease %+v", node, le)
		}
		if i > 0 && le.Partition <= ls[i-1].Partition {
			t.Errorf("Balance(%s) leases not in partition order: %+v", node, ls)
		}
	}
	return ls
}

// checkLeases runs CheckLeases in a Tx, which it commits if the check
// passed and rolls back otherwise.
func checkLeases(t *testing.T, s evokestore.Store, node string, leases []evokestore.Lease) error {
	t.Helper()
	tx := begin(t, s)
	lc, ok := tx.(evokestore.LeaseChecker)
	if !ok {
		_ = tx.Rollback()
		t.Fatalf("%s Store implements evokestore.Leaser but its Tx does not implement evokestore.LeaseChecker", s.Backend())
	}
	err := lc.CheckLeases(t.Context(), node, leases)
	if err != nil {
		rollback(t, tx)
		return err
	}
	commit(t, tx)
	return nil
}

func wantLeaseLost(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, evokestore.ErrLeaseLost) {
		t.Errorf("CheckLeases %s: err = %v, want ErrLeaseLost", what, err)
	}
}

func partitionsOf(ls []evokestore.Lease) []int {
	var ps []int
	for _, l := range ls {
		ps = append(ps, l.Partition)
	}
	return ps
}

func tokenOf(ls []evokestore.Lease, partition int) (int64, bool) {
	for _, l := range ls {
		if l.Partition == partition {
			return l.Token, true
		}
	}
	return 0, false
}

func testLeaseBalance(t *testing.T, s evokestore.Store) {
	l := leaser(t, s)
	const parts, ttl = 5, 30 * time.Second

	l1 := balance(t, l, "n1", parts, ttl)
	if ps := partitionsOf(l1); !slices.Equal(ps, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("a lone node holds partitions %v, want all of [0 1 2 3 4]", ps)
	}
	if again := balance(t, l, "n1", parts, ttl); !slices.Equal(again, l1) {
		t.Errorf("renewing Balance changed the leases: %+v, then %+v", l1, again)
	}

	// A second node joins: all partitions are held, so it gets none until
	// the first node's next Balance releases those above its fair share.
	if l2 := balance(t, l, "n2", parts, ttl); len(l2) != 0 {
		t.Errorf("joining node took %+v from a live node", l2)
	}
	l1b := balance(t, l, "n1", parts, ttl)
	if len(l1b) != 3 {
		t.Errorf("with 2 live nodes and 5 partitions the first node holds %v, want 3 (5/2 rounded up)", partitionsOf(l1b))
	}
	for _, le := range l1b {
		if tok, _ := tokenOf(l1, le.Partition); tok != le.Token {
			t.Errorf("partition %d kept by n1 changed token from %d to %d", le.Partition, tok, le.Token)
		}
	}
	l2 := balance(t, l, "n2", parts, ttl)
	if len(l2) != 2 {
		t.Errorf("second node holds %v, want the 2 released partitions", partitionsOf(l2))
	}
	union := append(partitionsOf(l1b), partitionsOf(l2)...)
	slices.Sort(union)
	if !slices.Equal(union, []int{0, 1, 2, 3, 4}) {
		t.Errorf("n1 holds %v and n2 holds %v: not a partition of [0 1 2 3 4]", partitionsOf(l1b), partitionsOf(l2))
	}
	for _, le := range l2 {
		if old, _ := tokenOf(l1, le.Partition); le.Token <= old {
			t.Errorf("partition %d moved from n1 to n2 but its token went from %d to %d", le.Partition, old, le.Token)
		}
	}
	// Balanced: further rounds change nothing.
	if again := balance(t, l, "n1", parts, ttl); !slices.Equal(again, l1b) {
		t.Errorf("n1 rebalanced from %+v to %+v", l1b, again)
	}
	if again := balance(t, l, "n2", parts, ttl); !slices.Equal(again, l2) {
		t.Errorf("n2 rebalanced from %+v to %+v", l2, again)
	}

	// Leave releases all of n2's leases at once (no waiting for the ttl)
	// and forgets n2, so n1's fair share is everything again.
	if err := l.Leave(t.Context(), "n2"); err != nil {
		t.Fatalf("Leave(n2): %v", err)
	}
	wantLeaseLost(t, checkLeases(t, s, "n2", l2), "of a node that left")
	l1c := balance(t, l, "n1", parts, ttl)
	if ps := partitionsOf(l1c); !slices.Equal(ps, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("after n2 left, n1 holds %v, want all", ps)
	}
	for _, le := range l2 {
		if tok, _ := tokenOf(l1c, le.Partition); tok <= le.Token {
			t.Errorf("partition %d moved back from n2 to n1 but its token went from %d to %d", le.Partition, le.Token, tok)
		}
	}

	// A third node arriving after n1 left takes everything at once.
	if err := l.Leave(t.Context(), "n1"); err != nil {
		t.Fatalf("Leave(n1): %v", err)
	}
	l3 := balance(t, l, "n3", parts, ttl)
	if ps := partitionsOf(l3); !slices.Equal(ps, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("after n1 and n2 left, n3 holds %v, want all", ps)
	}
	for _, le := range l3 {
		if old, _ := tokenOf(l1c, le.Partition); le.Token <= old {
			t.Errorf("partition %d moved from n1 to n3 but its token went from %d to %d", le.Partition, old, le.Token)
		}
	}
	if err := checkLeases(t, s, "n3", l3); err != nil {
		t.Errorf("CheckLeases of n3's leases: %v", err)
	}
}

func testCheckLeases(t *testing.T, s evokestore.Store) {
	l := leaser(t, s)
	const parts, ttl = 3, 30 * time.Second

	l1 := balance(t, l, "n1", parts, ttl)
	if len(l1) != parts {
		t.Fatalf("lone node holds %v, want all %d partitions", partitionsOf(l1), parts)
	}
	if err := checkLeases(t, s, "n1", l1); err != nil {
		t.Errorf("CheckLeases of held leases: %v", err)
	}
	if err := checkLeases(t, s, "n1", l1[1:2]); err != nil {
		t.Errorf("CheckLeases of one held lease: %v", err)
	}
	if err := checkLeases(t, s, "n1", nil); err != nil {
		t.Errorf("CheckLeases of no leases: %v", err)
	}
	stale := l1[0]
	stale.Token--
	wantLeaseLost(t, checkLeases(t, s, "n1", []evokestore.Lease{stale}), "with an older token")
	stale.Token += 2
	wantLeaseLost(t, checkLeases(t, s, "n1", []evokestore.Lease{stale}), "with a newer token")
	wantLeaseLost(t, checkLeases(t, s, "n1", append(slices.Clone(l1[1:]), stale)), "of held leases and one stale")
	wantLeaseLost(t, checkLeases(t, s, "n1", []evokestore.Lease{{Partition: parts + 4, Node: "n1", Token: 1}}), "of a partition never leased")
	wantLeaseLost(t, checkLeases(t, s, "n2", l1), "of another node's leases")

	// n2 joins and takes one partition from n1.
	balance(t, l, "n2", parts, ttl)
	l1b := balance(t, l, "n1", parts, ttl)
	l2 := balance(t, l, "n2", parts, ttl)
	if len(l1b) != 2 || len(l2) != 1 {
		t.Fatalf("after n2 joined, n1 holds %v and n2 %v; want 2 and 1", partitionsOf(l1b), partitionsOf(l2))
	}
	wantLeaseLost(t, checkLeases(t, s, "n1", l1), "of n1's leases from before n2 took one")
	moved := l2[0]
	moved.Node = "n1"
	wantLeaseLost(t, checkLeases(t, s, "n1", []evokestore.Lease{moved}), "by n1 of n2's lease with its current token")
	if err := checkLeases(t, s, "n1", l1b); err != nil {
		t.Errorf("CheckLeases of n1's remaining leases: %v", err)
	}
	if err := checkLeases(t, s, "n2", l2); err != nil {
		t.Errorf("CheckLeases of n2's lease: %v", err)
	}

	// A lease checked in an open Tx does not change hands before that Tx
	// ends: either taking it over waits for the Tx, or the Tx cannot commit.
	ctx := t.Context()
	tx := begin(t, s)
	defer tx.Rollback()
	if err := tx.(evokestore.LeaseChecker).CheckLeases(ctx, "n2", l2); err != nil {
		t.Fatalf("CheckLeases in the open tx: %v", err)
	}
	if _, err := tx.AppendEvents(ctx, []evokestore.NewEvent{newEvent("under-lease", "s", 1, "T")}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		leases []evokestore.Lease
		err    error
	}
	taken := make(chan result, 1)
	go func() {
		if err := l.Leave(ctx, "n2"); err != nil {
			taken <- result{err: err}
			return
		}
		ls, err := l.Balance(ctx, "n1", parts, ttl)
		taken <- result{ls, err}
	}()
	select {
	case r := <-taken:
		// The lease changed hands while the tx was open: the tx must not
		// commit.
		if r.err != nil {
			t.Fatalf("Leave(n2) and Balance(n1): %v", r.err)
		}
		if err := tx.Commit(); err == nil {
			t.Errorf("a Tx that checked n2's lease committed after the lease passed to n1 (%+v)", r.leases)
		}
		if evs, err := s.ReadStream(ctx, "s", 0); err != nil || len(evs) != 0 {
			t.Errorf("write under a lost lease is visible: %v, %v", eventIDs(evs), err)
		}
	case <-time.After(300 * time.Millisecond):
		// The takeover waits for the tx, which still commits.
		commit(t, tx)
		select {
		case r := <-taken:
			if r.err != nil {
				t.Fatalf("Leave(n2) and Balance(n1) after the tx: %v", r.err)
			}
			if tok, ok := tokenOf(r.leases, l2[0].Partition); !ok || tok <= l2[0].Token {
				t.Errorf("after n2 left, n1 holds %+v; want partition %d with a token above %d", r.leases, l2[0].Partition, l2[0].Token)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Leave(n2) still blocked after the tx that checked its lease committed")
		}
		if evs, err := s.ReadStream(ctx, "s", 0); err != nil || len(evs) != 1 {
			t.Errorf("write under a held lease = %v, %v; want it committed", eventIDs(evs), err)
		}
	}
}

func testLeaseExpiry(t *testing.T, s evokestore.Store) {
	l := leaser(t, s)
	const parts, short, long = 2, 300 * time.Millisecond, 30 * time.Second

	started := time.Now()
	l1 := balance(t, l, "n1", parts, short)
	if len(l1) != parts {
		t.Fatalf("lone node holds %v, want all %d partitions", partitionsOf(l1), parts)
	}
	first := balance(t, l, "n2", parts, long)
	if time.Since(started) < short && len(first) != 0 {
		// n1's leases, taken at or after started, cannot have expired yet.
		t.Errorf("n2 took %+v from n1 before n1's ttl passed", first)
	}

	// n1 never balances again. Once its ttl has passed, its leases no
	// longer check, even before another node takes them.
	time.Sleep(time.Until(started.Add(short + 100*time.Millisecond)))
	wantLeaseLost(t, checkLeases(t, s, "n1", l1), "of expired leases")

	deadline := time.Now().Add(10 * time.Second)
	var l2 []evokestore.Lease
	for {
		l2 = balance(t, l, "n2", parts, long)
		if len(l2) == parts || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(l2) != parts {
		t.Fatalf("10s after n1's %v ttl passed, n2 holds %v; want all %d partitions", short, partitionsOf(l2), parts)
	}
	for _, le := range l2 {
		if old, _ := tokenOf(l1, le.Partition); le.Token <= old {
			t.Errorf("partition %d passed from n1 to n2 but its token went from %d to %d", le.Partition, old, le.Token)
		}
	}
	wantLeaseLost(t, checkLeases(t, s, "n1", l1), "of leases taken over after expiry")
	if err := checkLeases(t, s, "n2", l2); err != nil {
		t.Errorf("CheckLeases of the leases n2 took over: %v", err)
	}
	// n1 comes back: it is live again and gets its share on later rounds,
	// with new tokens.
	balance(t, l, "n1", parts, long)
	balance(t, l, "n2", parts, long)
	back := balance(t, l, "n1", parts, long)
	if len(back) != 1 {
		t.Errorf("returning n1 holds %v, want 1 of 2 partitions", partitionsOf(back))
	}
	for _, le := range back {
		if old, _ := tokenOf(l2, le.Partition); le.Token <= old {
			t.Errorf("partition %d passed back to n1 but its token went from %d to %d", le.Partition, old, le.Token)
		}
	}
}

func testInstanceDeadlines(t *testing.T, s evokestore.Store) {
	dr, ok := s.(evokestore.DeadlinesReader)
	optional(t, s, DeadlinesReader, ok)
	ctx := t.Context()
	d := func(pm, id, name string, due time.Duration) evokestore.Deadline {
		return evokestore.Deadline{ProcessManager: pm, InstanceID: id, Name: name, DueAt: t0.Add(due), Version: 3}
	}
	inTx(t, s, func(tx evokestore.Tx) error {
		if err := tx.ReplaceDeadlines(ctx, "pm", []string{"a", "b", "c"}, []evokestore.Deadline{
			d("pm", "a", "late", time.Hour), d("pm", "a", "$timeout", time.Minute), d("pm", "b", "x", time.Second), d("pm", "c", "y", 0),
		}); err != nil {
			return err
		}
		return tx.ReplaceDeadlines(ctx, "other", []string{"a"}, []evokestore.Deadline{d("other", "a", "z", 0)})
	})
	got, err := dr.InstanceDeadlines(ctx, "pm", []string{"b", "a", "absent"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range got {
		names = append(names, g.InstanceID+"/"+g.Name)
		if g.Version != 3 || g.ProcessManager != "pm" {
			t.Errorf("deadline %+v", g)
		}
	}
	if !slices.Equal(names, []string{"a/$timeout", "a/late", "b/x"}) {
		t.Fatalf("InstanceDeadlines(a, b) = %v, want a's by due time, then b's", names)
	}
	if !got[0].DueAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("due at %v", got[0].DueAt)
	}
	if got, err := dr.InstanceDeadlines(ctx, "pm", nil); err != nil || len(got) != 0 {
		t.Errorf("InstanceDeadlines(none) = %v, %v", got, err)
	}
}

func testReadEvents(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	erStore, storeOK, txOK := onStoreAndTx[evokestore.EventsReader](t, s, EventsReader)
	news, add := eventMaker()
	stored := appendEvents(t, s, add("e-b1", "b", 1), add("e-a1", "a", 1))
	stored = append(stored, appendEvents(t, s, add("e-a2", "a", 2))...)
	positions := positionsOf(stored)
	check := func(where string, er evokestore.EventsReader, ids []string, want []string) {
		t.Helper()
		got, err := er.ReadEvents(ctx, ids)
		checkEventsRead(t, fmt.Sprintf("%s: ReadEvents(%q) (log order)", where, ids), got, err, want, news, positions)
	}
	if storeOK {
		check("store", erStore, []string{"e-a2", "missing", "e-b1", "e-a1"}, []string{"e-b1", "e-a1", "e-a2"})
		check("store", erStore, []string{"e-a2", "e-a2"}, []string{"e-a2"})
		check("store", erStore, []string{"missing"}, nil)
		check("store", erStore, nil, nil)
	}
	if !txOK {
		return
	}
	tx := begin(t, s)
	defer tx.Rollback()
	if _, err := tx.AppendEvents(ctx, []evokestore.NewEvent{add("e-a3", "a", 3)}); err != nil {
		t.Fatal(err)
	}
	check("tx", tx.(evokestore.EventsReader), []string{"e-a3", "e-a1"}, []string{"e-a1", "e-a3"})
	if storeOK {
		check("store beside an open tx", erStore, []string{"e-a3"}, nil)
	}
}

// testAppendReader: AppendEventsAfter reads the log after a position, but for
// the ranges to skip, restricted to types if given, and appends after what it
// read; a failed append rolls back with the Tx.
func testAppendReader(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	tx0 := begin(t, s)
	_, ok := tx0.(evokestore.AppendReader)
	_ = tx0.Rollback()
	optional(t, s, AppendReader, ok)
	types := []string{"A", "B"}
	var news []evokestore.NewEvent
	for i := range 8 {
		news = append(news, newEvent(fmt.Sprintf("e%d", i+1), "s", int64(i+1), types[i%2]))
	}
	p := appendEvents(t, s, news[:3]...)
	p = append(p, appendEvents(t, s, news[3:6]...)...)
	cases := []struct {
		name string
		q    evokestore.LogQuery
		skip [][2]int64
		want []string
	}{
		{"after e1", evokestore.LogQuery{After: p[0].Position}, nil, []string{"e2", "e3", "e4", "e5", "e6"}},
		{"after e1, skipping e3..e4", evokestore.LogQuery{After: p[0].Position}, [][2]int64{{p[2].Position, p[3].Position}}, []string{"e2", "e5", "e6"}},
		{"skipping e2 and e5 alone", evokestore.LogQuery{}, [][2]int64{{p[1].Position, p[1].Position}, {p[4].Position, p[4].Position}}, []string{"e1", "e3", "e4", "e6"}},
		{"type A, skipping e3", evokestore.LogQuery{Types: []string{"A"}}, [][2]int64{{p[2].Position, p[2].Position}}, []string{"e1", "e5"}},
		{"limit 2 after e2", evokestore.LogQuery{After: p[1].Position, Limit: 2}, nil, []string{"e3", "e4"}},
		{"Until is ignored", evokestore.LogQuery{After: p[4].Position, Until: p[4].Position}, nil, []string{"e6"}},
	}
	for _, c := range cases {
		tx := begin(t, s)
		read, appended, err := tx.(evokestore.AppendReader).AppendEventsAfter(ctx, c.q, c.skip, nil)
		_ = tx.Rollback()
		if err != nil || len(appended) != 0 || !slices.Equal(eventIDs(read), c.want) {
			t.Errorf("%s: read %v, appended %v, %v; want %v", c.name, eventIDs(read), eventIDs(appended), err, c.want)
		}
	}
	// With events to append: they follow what was read, and commit.
	tx := begin(t, s)
	read, appended, err := tx.(evokestore.AppendReader).AppendEventsAfter(ctx, evokestore.LogQuery{After: p[3].Position}, nil, news[6:8])
	if err != nil {
		_ = tx.Rollback()
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(eventIDs(read), []string{"e5", "e6"}) || !slices.Equal(eventIDs(appended), []string{"e7", "e8"}) ||
		appended[0].Position <= p[5].Position || appended[1].Position <= appended[0].Position {
		t.Errorf("read %v, appended %v at %d, %d (e6 at %d)", eventIDs(read), eventIDs(appended), appended[0].Position, appended[1].Position, p[5].Position)
	}
	if got := readAll(t, s); len(got) != 8 || got[7].ID != "e8" || got[6].Position != appended[0].Position {
		t.Errorf("the log after the append: %v", eventIDs(got))
	}
	// A conflicting append fails, and nothing of it stays.
	tx = begin(t, s)
	if _, _, err := tx.(evokestore.AppendReader).AppendEventsAfter(ctx, evokestore.LogQuery{}, nil,
		[]evokestore.NewEvent{newEvent("e9", "other", 1, "A"), newEvent("e10", "s", 3, "A")}); !errors.Is(err, evokestore.ErrVersionConflict) {
		t.Errorf("an append at a taken stream version: %v, want ErrVersionConflict", err)
	}
	_ = tx.Rollback()
	if got := readAll(t, s); len(got) != 8 {
		t.Errorf("%d events after the failed append, want 8", len(got))
	}
}

// positionsOf returns the positions of evs by event ID.
func positionsOf(evs []evokestore.Event) map[string]int64 {
	m := make(map[string]int64, len(evs))
	for _, e := range evs {
		m[e.ID] = e.Position
	}
	return m
}

// checkEventsRead checks what a read (what) returned: the events want, by ID
// and in that order, each as it was appended (news) and at its position
// (positions).
func checkEventsRead(t *testing.T, what string, got []evokestore.Event, err error, want []string, news map[string]evokestore.NewEvent, positions map[string]int64) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if ids := eventIDs(got); !slices.Equal(ids, want) && !(len(ids) == 0 && len(want) == 0) {
		t.Errorf("%s = %v, want %v", what, ids, want)
		return
	}
	for _, e := range got {
		if w, ok := news[e.ID]; ok {
			checkEvent(t, e, w)
		}
		if p, ok := positions[e.ID]; ok && e.Position != p {
			t.Errorf("%s: event %s at position %d, want %d", what, e.ID, e.Position, p)
		}
		if e.Position <= 0 {
			t.Errorf("%s: event %s has position %d", what, e.ID, e.Position)
		}
	}
}

// onStoreAndTx reports whether s and its Tx implement the optional
// extension T (named name), and returns s as one: it skips the test if
// neither does, and fails it if only one does.
func onStoreAndTx[T any](t *testing.T, s evokestore.Store, name Extension) (store T, storeOK, txOK bool) {
	t.Helper()
	store, storeOK = s.(T)
	tx := begin(t, s)
	_, txOK = tx.(T)
	rollback(t, tx)
	optional(t, s, name, storeOK || txOK)
	if !storeOK || !txOK {
		t.Errorf("%s: %s on the Store %v, on its Tx %v: want both", s.Backend(), name, storeOK, txOK)
	}
	return store, storeOK, txOK
}

// eventMaker returns add, which makes an event of type "T"+stream, and the
// events it made by ID.
func eventMaker() (news map[string]evokestore.NewEvent, add func(id, stream string, v int64) evokestore.NewEvent) {
	news = map[string]evokestore.NewEvent{}
	return news, func(id, stream string, v int64) evokestore.NewEvent {
		e := newEvent(id, stream, v, "T"+stream)
		news[id] = e
		return e
	}
}

// testTally counts executed commands, inline ones included, and how done
// instances ended.
func testTally(t *testing.T, s evokestore.Store) {
	tr, ok := s.(evokestore.TallyReader)
	optional(t, s, TallyReader, ok)
	ctx := t.Context()
	cmd := func(n int) string {
		return engine.CommandID("pm", fmt.Sprintf("i%d", n), fmt.Sprintf("ev%d", n), int64(n), 0)
	}
	caused := func(id, stream, typ, command string) evokestore.NewEvent {
		e := newEvent(id, stream, 1, typ)
		e.CausationID = command
		return e
	}
	rec := func(command, status, pm string, events int) evokestore.CommandOutcome {
		o := outcome(command, status)
		o.ProcessManager, o.Events = pm, events
		if status == evokestore.OutcomeRejected {
			o.Error = "no"
		}
		return o
	}
	const rejected = "$evoke.CommandRejected" // engine.TypeCommandRejected
	a, b, c, d, e, f := cmd(1), cmd(2), cmd(3), cmd(4), cmd(5), cmd(6)
	appendEvents(t, s,
		// a: executed inline, two events, no record.
		caused(engine.EventID(a, 0), "agg-a", "Done", a), caused(engine.EventID(a, 1), "agg-a2", "Done", a),
		// b: rejected inline: its rejection, no record.
		caused(engine.RejectionEventID(b), engine.RejectionStreamID(b), rejected, b),
		// c: from the outbox with an event, recorded.
		caused(engine.EventID(c, 0), "agg-c", "Done", c),
		// d: rejected from the outbox: recorded, and its rejection.
		caused(engine.RejectionEventID(d), engine.RejectionStreamID(d), rejected, d),
		// A user's event that names a command as its cause is no command.
		caused("user-1", "user", "Note", a),
	)
	inTx(t, s, func(tx evokestore.Tx) error {
		return tx.PutCommandOutcomes(ctx, []evokestore.CommandOutcome{
			rec(c, evokestore.OutcomeAccepted, "pm", 1), rec(d, evokestore.OutcomeRejected, "pm", 0),
			rec(e, evokestore.OutcomeAccepted, "pm", 0), // e: accepted, appended nothing
			rec(f, evokestore.OutcomeRejected, "", 0),   // f: dispatched directly, rejected
		})
	})
	var ws []evokestore.InstanceWrite
	for i, o := range []struct {
		status  evokestore.InstanceStatus
		outcome evokestore.InstanceOutcome
	}{
		{evokestore.StatusCompleted, evokestore.EndCompleted}, {evokestore.StatusCompleted, ""}, {evokestore.StatusCompleted, evokestore.EndTimedOut},
		{evokestore.StatusCompleted, evokestore.EndCompensated}, {evokestore.StatusCancelled, evokestore.EndCancelled},
		{evokestore.StatusRunning, evokestore.EndCompensated},
	} {
		in := instance("pm", fmt.Sprintf("i%d", i), 1)
		in.Status, in.Outcome = o.status, o.outcome
		if o.status.Done() {
			in.CompletedAt = t0.Add(30 * time.Second)
		}
		ws = append(ws, evokestore.InstanceWrite{Instance: in, PrevVersion: -1})
	}
	late := instance("pm", "late", 1)
	late.Status, late.Outcome, late.CompletedAt = evokestore.StatusCompleted, evokestore.EndCompleted, t0.Add(2*time.Minute)
	ws = append(ws, evokestore.InstanceWrite{Instance: late, PrevVersion: -1})
	inTx(t, s, func(tx evokestore.Tx) error { return tx.PutInstances(ctx, ws) })
	got, err := tr.Tally(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Executed != 6 || got.Rejected != 3 || got.ByEvents != 2 || got.RejectedByEvents != 2 {
		t.Errorf("Tally: %d executed, %d rejected (%d and %d by their events); want 6 and 3 (2 and 2)", got.Executed, got.Rejected, got.ByEvents, got.RejectedByEvents)
	}
	if head, err := s.Head(ctx); err != nil || got.Until != head {
		t.Errorf("Tally read the log up to %d, want its head %d (%v)", got.Until, head, err)
	}
	// Another command executed inline, and one rejected; the next tally
	// reads the log after the first's and adds up.
	g, h := cmd(7), cmd(8)
	appendEvents(t, s, caused(engine.EventID(g, 0), "agg-g", "Done", g),
		caused(engine.RejectionEventID(h), engine.RejectionStreamID(h), rejected, h))
	again, err := tr.Tally(ctx, &got)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := tr.Tally(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Executed != 8 || again.Rejected != 4 || again.Executed != fresh.Executed || again.Rejected != fresh.Rejected || again.Until != fresh.Until {
		t.Errorf("Tally after the first: %+v; from scratch: %+v; want 8 executed, 4 rejected both", again, fresh)
	}
	// A tally of a longer log (another store's) is not added to.
	longer := fresh
	longer.Until, longer.ByEvents = fresh.Until+100, 1000
	if t2, err := tr.Tally(ctx, &longer); err != nil || t2.Executed != fresh.Executed {
		t.Errorf("Tally after one of a longer log: %+v, %v; want %d executed", t2, err, fresh.Executed)
	}
	// Ended: by minute from t0, the instances above ended at t0+30s and
	// one more at t0+2m; running ones have no end.
	ended, err := tr.Ended(ctx, t0, time.Minute, 3)
	if err != nil || !slices.Equal(ended["pm"], []int64{5, 0, 1}) || len(ended) != 1 {
		t.Errorf("Ended = %v, %v; want pm: [5 0 1]", ended, err)
	}
	if ended, err := tr.Ended(ctx, t0.Add(time.Minute), time.Minute, 1); err != nil || len(ended) != 0 {
		t.Errorf("Ended over a minute when none ended = %v, %v", ended, err)
	}
	want := map[evokestore.InstanceOutcome]int64{evokestore.EndCompleted: 3, evokestore.EndTimedOut: 1, evokestore.EndCompensated: 1, evokestore.EndCancelled: 1}
	if !maps.Equal(got.Outcomes["pm"], want) || len(got.Outcomes) != 1 {
		t.Errorf("Tally outcomes = %v, want pm: %v", got.Outcomes, want)
	}
}

// testPartitionLeases reads the leases as nodes balanced them: who holds
// each partition, and whether it is alive.
func testPartitionLeases(t *testing.T, s evokestore.Store) {
	lr, ok := s.(evokestore.LeaseReader)
	optional(t, s, LeaseReader, ok)
	l := leaser(t, s)
	ctx := t.Context()
	if got, err := lr.PartitionLeases(ctx); err != nil || len(got) != 0 {
		t.Fatalf("before any node: %+v, %v", got, err)
	}
	held := balance(t, l, "n1", 3, time.Hour)
	got, err := lr.PartitionLeases(ctx)
	if err != nil || len(got) != 3 {
		t.Fatalf("PartitionLeases = %+v, %v; want 3", got, err)
	}
	for i, pl := range got {
		if pl.Lease != held[i] || !pl.Alive || !pl.AliveUntil.After(time.Now().Add(30*time.Minute)) {
			t.Errorf("partition %d: %+v, want %+v alive for about an hour", i, pl, held[i])
		}
	}
	if err := l.Leave(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	got, err = lr.PartitionLeases(ctx)
	if err != nil || len(got) != 3 {
		t.Fatalf("after Leave: %+v, %v", got, err)
	}
	for _, pl := range got {
		if pl.Node != "" || pl.Alive || !pl.AliveUntil.IsZero() {
			t.Errorf("after Leave: %+v, want no node", pl)
		}
	}
}

// testDeferWrites checks evokestore.WriteDeferrer: writes held back after
// DeferWrites commit with the transaction, as written, and vanish with a
// rollback; a held-back write that fails (a fenced instance) fails a later
// call or Commit with its own sentinel, and nothing of the transaction
// commits.
func testDeferWrites(t *testing.T, s evokestore.Store) {
	ctx := t.Context()
	tx0 := begin(t, s)
	_, ok := tx0.(evokestore.WriteDeferrer)
	rollback(t, tx0)
	optional(t, s, WriteDeferrer, ok)
	deferred := func() evokestore.Tx {
		tx := begin(t, s)
		tx.(evokestore.WriteDeferrer).DeferWrites()
		return tx
	}

	// Committed as written.
	tx := deferred()
	if err := tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: instance("pm", "a", 1), PrevVersion: -1}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.InsertOutbox(ctx, []evokestore.OutboxCommand{command("c1", "pm", "a")}); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.AppendEvents(ctx, []evokestore.NewEvent{newEvent("e1", "s1", 1, "T")}); err != nil {
		t.Fatal(err)
	}
	commit(t, tx)
	if got, ok := loadOne(t, s, "pm", "a"); !ok || got.Version != 1 {
		t.Fatalf("deferred instance write: found %v, version %d; want version 1", ok, got.Version)
	}
	if cmds, err := s.Outbox(ctx, evokestore.OutboxQuery{}); err != nil || len(cmds) != 1 {
		t.Fatalf("deferred outbox write: %d commands (%v), want 1", len(cmds), err)
	}
	if evs := readAll(t, s); len(evs) != 1 {
		t.Fatalf("%d events after the deferred transaction, want 1", len(evs))
	}

	// Rolled back: nothing of it.
	tx = deferred()
	if err := tx.PutInstances(ctx, []evokestore.InstanceWrite{{Instance: instance("pm", "b", 1), PrevVersion: -1}}); err != nil {
		t.Fatal(err)
	}
	rollback(t, tx)
	if _, ok := loadOne(t, s, "pm", "b"); ok {
		t.Fatal("a rolled back deferred write committed")
	}

	// A fenced write fails a later call or the commit, with ErrFenced.
	tx = deferred()
	werr := tx.PutInstances(ctx, []evokestore.InstanceWrite{
		{Instance: instance("pm", "c", 1), PrevVersion: -1},
		{Instance: instance("pm", "a", 5), PrevVersion: 4}, // stale: a is at version 1
	})
	if werr == nil {
		_, werr = tx.AppendEvents(ctx, []evokestore.NewEvent{newEvent("e2", "s2", 1, "T")})
	}
	if werr == nil {
		werr = tx.Commit()
	} else {
		rollback(t, tx)
	}
	if !errors.Is(werr, evokestore.ErrFenced) {
		t.Fatalf("a fenced deferred write gave %v, want ErrFenced from a later call or Commit", werr)
	}
	if _, ok := loadOne(t, s, "pm", "c"); ok {
		t.Fatal("a transaction with a fenced deferred write committed its other writes")
	}
	if evs := readAll(t, s); len(evs) != 1 {
		t.Fatalf("%d events after the fenced transaction, want 1", len(evs))
	}
}
