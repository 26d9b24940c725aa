package moneytransfer_test

// End-to-end tests: the Transfer process manager and the Account aggregate
// run through the evoke runtime on a real SQLite file. Each test has its own
// store and runs in parallel.

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	mt "github.com/evoke-go/evoke/examples/moneytransfer"
	"github.com/evoke-go/evoke/internal/engine"
)

// e2eHarness is one test's runtime on a store file of its own
// (evoketest.Harness), the process manager value it registers, and the
// transfer's helpers.
type e2eHarness struct {
	*evoketest.Harness
	pm evoke.ProcessManager[mt.State]
}

// e2eStart starts a runtime with the Account aggregate and pm.
func e2eStart(t *testing.T, pm evoke.ProcessManager[mt.State]) *e2eHarness {
	t.Helper()
	h := &e2eHarness{pm: pm}
	h.Harness = evoketest.NewHarness(t, h.register, nil)
	return h
}

func (h *e2eHarness) register(rt *evoke.Runtime) error {
	return registerTransfer(rt, h.pm)
}

// registerTransfer registers the Account aggregate and pm, a Transfer or a
// test's wrapper of one.
func registerTransfer(rt *evoke.Runtime, pm evoke.ProcessManager[mt.State]) error {
	if err := evoke.RegisterAggregate(rt, mt.AggregateAccount, mt.Account{}); err != nil {
		return err
	}
	return evoke.RegisterProcessManager(rt, pm, nil)
}

// restartWith stops the runtime and closes the store, as a process exit
// would, runs between (if not nil) and starts a runtime with pm instead.
func (h *e2eHarness) restartWith(pm evoke.ProcessManager[mt.State], between func()) {
	h.TB.Helper()
	h.pm = pm
	h.Restart(between)
}

// logInstance logs the transfer's instance as the store file holds it;
// it runs while no runtime is on the file (Restart's between).
func (h *e2eHarness) logInstance(when, id string) {
	h.TB.Helper()
	st, err := evokesqlite.Open(context.Background(), h.Path, nil)
	if err != nil {
		h.TB.Fatal(err)
	}
	defer st.Close()
	if in, ok := evoketest.Instance(h.TB, st, mt.Name, id); ok {
		h.TB.Logf("%s: instance %s/%s version %d", when, in.Status, in.Phase, in.Version)
	}
}

func (h *e2eHarness) dispatch(typ, account string, payload any) {
	h.TB.Helper()
	if _, err := h.Runtime.Dispatch(context.Background(), evoke.NewCommand(typ, mt.AggregateAccount, account, payload)); err != nil {
		h.TB.Fatal(err)
	}
}

func (h *e2eHarness) initiate(tr mt.TransferInitiated) {
	h.TB.Helper()
	if _, err := h.Runtime.Append(context.Background(), "transfer-"+tr.TransferID, evoke.NoStream,
		evoke.NewEvent(mt.EventTransferInitiated, tr)); err != nil {
		h.TB.Fatal(err)
	}
}

func (h *e2eHarness) instance(id string) (evokestore.Instance, bool) {
	h.TB.Helper()
	return h.Instance(mt.Name, id)
}

func (h *e2eHarness) waitDone(id string) evokestore.Instance {
	h.TB.Helper()
	return h.WaitDone(mt.Name, id)
}

func (h *e2eHarness) stream(account string) []evokestore.Event {
	h.TB.Helper()
	return h.Stream(evoke.StreamID(mt.AggregateAccount, account))
}

// balance replays an account's stream through the aggregate.
func (h *e2eHarness) balance(account string) int64 {
	h.TB.Helper()
	var s mt.AccountState
	for _, r := range h.stream(account) {
		s = mt.Account{}.Apply(s, evoke.Event{ID: r.ID, Type: r.Type, StreamID: r.StreamID, Data: r.Data})
	}
	return s.Balance
}

func TestE2ETransferCompletes(t *testing.T) {
	t.Parallel()
	h := e2eStart(t, mt.Transfer{})
	h.dispatch(mt.CommandDeposit, "alice", mt.Deposit{Amount: 10000})
	h.dispatch(mt.CommandDeposit, "bob", mt.Deposit{Amount: 500})
	h.initiate(mt.TransferInitiated{TransferID: "t1", SourceID: "alice", DestID: "bob", Amount: 2500})
	in := h.waitDone("t1")
	if in.Status != evokestore.StatusCompleted || in.Phase != mt.StatusCompleted {
		t.Fatalf("t1: %s/%s, want completed/completed", in.Status, in.Phase)
	}
	if a, b := h.balance("alice"), h.balance("bob"); a != 7500 || b != 3000 {
		t.Errorf("balances alice %d bob %d, want 7500 and 3000", a, b)
	}
	if n := evoketest.Count(h.stream("alice"), mt.EventSourceDebited); n != 1 {
		t.Errorf("%d debits, want 1", n)
	}
	if n := evoketest.Count(h.stream("bob"), mt.EventDestinationCredited); n != 1 {
		t.Errorf("%d credits, want 1", n)
	}
	if s := h.Runtime.Stats(); s.Rejected != 0 || s.Failures != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestE2ETransferToFrozenAccountIsRefunded(t *testing.T) {
	t.Parallel()
	h := e2eStart(t, mt.Transfer{})
	h.dispatch(mt.CommandDeposit, "alice", mt.Deposit{Amount: 10000})
	h.dispatch(mt.CommandFreeze, "carol", nil)
	h.initiate(mt.TransferInitiated{TransferID: "t2", SourceID: "alice", DestID: "carol", Amount: 4000})
	in := h.waitDone("t2")
	h.checkRefunded(in, "t2", "alice", "carol", 10000)
	if s := h.Runtime.Stats(); s.Rejected != 1 || s.Failures != 0 || s.Parked != 0 {
		t.Errorf("stats %+v, want one rejection and no failures", s)
	}
}

func (h *e2eHarness) checkRefunded(in evokestore.Instance, id, source, dest string, initial int64) {
	h.TB.Helper()
	if in.Status != evokestore.StatusCompleted || in.Phase != mt.StatusRefunded {
		h.TB.Errorf("%s: %s/%s, want completed/refunded", id, in.Status, in.Phase)
	}
	src := h.stream(source)
	if n := evoketest.Count(src, mt.EventSourceRefunded); n != 1 {
		h.TB.Errorf("%s: %d SourceRefunded events, want exactly 1", id, n)
	}
	if n := evoketest.Count(src, mt.EventSourceDebited); n != 1 {
		h.TB.Errorf("%s: %d SourceDebited events, want exactly 1", id, n)
	}
	if b := h.balance(source); b != initial {
		h.TB.Errorf("%s: source balance %d, want the initial %d", id, b, initial)
	}
	if evs := h.stream(dest); evoketest.Count(evs, mt.EventDestinationCredited) != 0 {
		h.TB.Errorf("%s: destination was credited: %v", id, evs)
	}
}

// creditCommandID waits for the transfer's SourceDebited and returns the
// deterministic ID of the credit command the process manager issues on it.
func (h *e2eHarness) creditCommandID(transfer, source string) string {
	h.TB.Helper()
	var debited evoke.Event
	evoketest.Eventually(h.TB, evoketest.HarnessWait, "the source is debited", func() bool {
		for _, e := range h.stream(source) {
			if e.Type == mt.EventSourceDebited {
				debited = evoke.Event{ID: e.ID, Position: e.Position}
				return true
			}
		}
		return false
	})
	return evoke.CommandID(mt.Name, transfer, debited, 0)
}

func (h *e2eHarness) outcome(cmdID string) (evokestore.CommandOutcome, bool) {
	h.TB.Helper()
	outs, err := engine.Outcomes(context.Background(), h.Store, []evokestore.OutboxCommand{{ID: cmdID}})
	if err != nil {
		h.TB.Fatal(err)
	}
	o, ok := outs[cmdID]
	return o, ok
}

// The runtime is stopped as soon as the store shows the credit rejected, and
// a new runtime on the same file finishes the transfer: one refund.
func TestE2ERefundOnceAcrossRestartAfterRejection(t *testing.T) {
	t.Parallel()
	h := e2eStart(t, mt.Transfer{})
	h.dispatch(mt.CommandDeposit, "alice", mt.Deposit{Amount: 10000})
	h.dispatch(mt.CommandFreeze, "carol", nil)
	h.initiate(mt.TransferInitiated{TransferID: "t3", SourceID: "alice", DestID: "carol", Amount: 4000})
	credit := h.creditCommandID("t3", "alice")
	evoketest.Eventually(t, evoketest.HarnessWait, "the credit is rejected", func() bool {
		o, ok := h.outcome(credit)
		return ok && o.Status == evokestore.OutcomeRejected
	})
	h.Restart(func() { h.logInstance("at the restart", "t3") })
	in := h.waitDone("t3")
	h.checkRefunded(in, "t3", "alice", "carol", 10000)
	if s := h.Runtime.Stats(); s.Failures != 0 || s.Parked != 0 {
		t.Errorf("stats after the restart %+v", s)
	}
}

// gatedTransfer is Transfer whose Compensate, the first time, reports that
// it was called and waits to be released, so that the test can stop the
// runtime while the rejection's step is in flight (not committed yet).
type gatedTransfer struct {
	mt.Transfer
	entered chan struct{}
	release chan struct{}
	once    *sync.Once
}

func (g gatedTransfer) Compensate(s mt.State, failed evoke.FailedCommand) ([]evoke.Command, bool) {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.release
	}
	return g.Transfer.Compensate(s, failed)
}

// The runtime is stopped while the rejection's step is running: whatever it
// did is redone by the next runtime at most once.
func TestE2ERefundOnceWhenStoppedDuringCompensation(t *testing.T) {
	t.Parallel()
	g := gatedTransfer{entered: make(chan struct{}), release: make(chan struct{}), once: &sync.Once{}}
	h := e2eStart(t, g)
	h.dispatch(mt.CommandDeposit, "alice", mt.Deposit{Amount: 10000})
	h.dispatch(mt.CommandFreeze, "carol", nil)
	h.initiate(mt.TransferInitiated{TransferID: "t4", SourceID: "alice", DestID: "carol", Amount: 4000})
	select {
	case <-g.entered:
	case <-time.After(evoketest.HarnessWait):
		t.Fatal("Compensate was not called")
	}
	// Let Restart's Stop cancel the runtime's context before the step goes
	// on to commit (this delay orders two goroutines; it waits for no
	// deadline).
	time.AfterFunc(20*time.Millisecond, func() { close(g.release) })
	h.restartWith(mt.Transfer{}, func() { h.logInstance("after the stop", "t4") })
	in := h.waitDone("t4")
	h.checkRefunded(in, "t4", "alice", "carol", 10000)
	if s := h.Runtime.Stats(); s.Failures != 0 || s.Parked != 0 {
		t.Errorf("stats after the restart %+v", s)
	}
}

// A rejected debit moves no money and fails the transfer.
func TestE2EInsufficientFundsFails(t *testing.T) {
	t.Parallel()
	h := e2eStart(t, mt.Transfer{})
	h.dispatch(mt.CommandDeposit, "alice", mt.Deposit{Amount: 100})
	h.initiate(mt.TransferInitiated{TransferID: "t5", SourceID: "alice", DestID: "bob", Amount: 4000})
	in := h.waitDone("t5")
	if in.Status != evokestore.StatusCompleted || in.Phase != mt.StatusFailed {
		t.Fatalf("t5: %s/%s, want completed/failed", in.Status, in.Phase)
	}
	if a, b := h.balance("alice"), h.balance("bob"); a != 100 || b != 0 {
		t.Errorf("balances alice %d bob %d, want 100 and 0", a, b)
	}
	_, err := h.Runtime.Dispatch(context.Background(), evoke.NewCommand(mt.CommandDebit, mt.AggregateAccount, "alice", mt.Debit{Amount: 1000}))
	var re *evoke.RejectedError
	if !errors.As(err, &re) {
		t.Errorf("debit over the balance: %v, want a rejection", err)
	}
}
