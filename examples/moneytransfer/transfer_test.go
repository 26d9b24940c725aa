package moneytransfer_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/evoke-go/evoke"
	mt "github.com/evoke-go/evoke/examples/moneytransfer"
)

func initiated() evoke.Event {
	return evoke.NewEvent(mt.EventTransferInitiated, mt.TransferInitiated{
		TransferID: "tr-1", SourceID: "acc-a", DestID: "acc-b", Amount: 500,
	})
}

// step is one Correlate/Apply/Handle round, as the seed's
// full_workflow_test does by hand.
func step(t *testing.T, s mt.State, e evoke.Event) (mt.State, []evoke.Command) {
	t.Helper()
	pm := mt.Transfer{}
	if c := pm.Correlate(e); c.Kind() != evoke.KindContinue || c.ID() != "tr-1" {
		t.Fatalf("Correlate(%s) = %v, want continue(tr-1)", e.Type, c)
	}
	s = pm.Apply(s, e)
	s, cmds, err := pm.Handle(s, e)
	if err != nil {
		t.Fatalf("Handle(%s): %v", e.Type, err)
	}
	return s, cmds
}

func credit(t *testing.T, c evoke.Command) mt.Credit {
	t.Helper()
	var p mt.Credit
	if err := c.Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// bank executes commands against accounts kept in memory, as the runtime
// would.
type bank struct {
	agg      mt.Account
	accounts map[string]mt.AccountState
}

func newBank() *bank { return &bank{accounts: map[string]mt.AccountState{}} }

func (b *bank) exec(c evoke.Command) ([]evoke.Event, error) {
	s := b.accounts[c.AggregateID]
	evs, err := b.agg.Execute(s, c)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		s = b.agg.Apply(s, e)
	}
	b.accounts[c.AggregateID] = s
	return evs, nil
}

func (b *bank) must(t *testing.T, c evoke.Command) []evoke.Event {
	t.Helper()
	evs, err := b.exec(c)
	if err != nil {
		t.Fatalf("%s %s: %v", c.Type, c.AggregateID, err)
	}
	return evs
}

func TestFullWorkflow(t *testing.T) {
	t.Parallel()
	pm := mt.Transfer{}
	if pm.Name() != "money_transfer" {
		t.Fatalf("Name = %q", pm.Name())
	}
	b := newBank()
	b.must(t, evoke.NewCommand(mt.CommandDeposit, mt.AggregateAccount, "acc-a", mt.Deposit{Amount: 1000}))

	s, cmds := step(t, mt.State{}, initiated())
	if s.Status != mt.StatusDebitingSource || len(cmds) != 1 {
		t.Fatalf("status %q, commands %v", s.Status, cmds)
	}
	c := cmds[0]
	if c.Type != "debit" || c.AggregateType != "account" || c.AggregateID != "acc-a" {
		t.Fatalf("command = %+v", c)
	}
	if p := credit(t, c); p != (mt.Credit{Amount: 500, TransferID: "tr-1"}) {
		t.Fatalf("debit payload = %+v", p)
	}

	evs := b.must(t, c)
	if len(evs) != 1 || evs[0].Type != mt.EventSourceDebited {
		t.Fatalf("debit events = %+v", evs)
	}
	s, cmds = step(t, s, evs[0])
	if s.Status != mt.StatusCreditingDest || len(cmds) != 1 {
		t.Fatalf("status %q, commands %v", s.Status, cmds)
	}
	c = cmds[0]
	if c.Type != "credit" || c.AggregateID != "acc-b" || credit(t, c) != (mt.Credit{Amount: 500, TransferID: "tr-1"}) {
		t.Fatalf("command = %+v", c)
	}

	evs = b.must(t, c)
	if len(evs) != 1 || evs[0].Type != mt.EventDestinationCredited {
		t.Fatalf("credit events = %+v", evs)
	}
	s, cmds = step(t, s, evs[0])
	if s.Status != mt.StatusCompleted || len(cmds) != 0 || !pm.Completed(s) {
		t.Fatalf("status %q, commands %v", s.Status, cmds)
	}
	if a, d := b.accounts["acc-a"].Balance, b.accounts["acc-b"].Balance; a != 500 || d != 500 {
		t.Fatalf("balances %d, %d", a, d)
	}
}

// TestCompensationWorkflow freezes the destination: the credit is rejected,
// Compensate refunds the source, and the refund's event ends the transfer.
func TestCompensationWorkflow(t *testing.T) {
	t.Parallel()
	pm := mt.Transfer{}
	b := newBank()
	b.must(t, evoke.NewCommand(mt.CommandDeposit, mt.AggregateAccount, "acc-a", mt.Deposit{Amount: 1000}))
	b.must(t, evoke.NewCommand(mt.CommandFreeze, mt.AggregateAccount, "acc-b", nil))

	s, cmds := step(t, mt.State{}, initiated())
	s, cmds = step(t, s, b.must(t, cmds[0])[0])
	_, err := b.exec(cmds[0])
	if !errors.Is(err, mt.ErrFrozen) {
		t.Fatalf("credit to frozen account: %v", err)
	}

	refund, ok := pm.Compensate(s, evoke.FailedCommand{Command: cmds[0], Reason: err.Error()})
	if !ok || len(refund) != 1 {
		t.Fatalf("Compensate = %v, %v", refund, ok)
	}
	r := refund[0]
	if r.Type != "credit" || r.AggregateType != "account" || r.AggregateID != "acc-a" {
		t.Fatalf("refund = %+v", r)
	}
	if p := credit(t, r); p != (mt.Credit{Amount: 500, TransferID: "tr-1", Reason: "transfer_failed"}) {
		t.Fatalf("refund payload = %+v", p)
	}
	if pm.Completed(s) {
		t.Fatal("completed before the refund's event")
	}

	evs := b.must(t, r)
	if len(evs) != 1 || evs[0].Type != mt.EventSourceRefunded {
		t.Fatalf("refund events = %+v", evs)
	}
	s, cmds = step(t, s, evs[0])
	if s.Status != mt.StatusRefunded || s.RefundReason != mt.ReasonTransferFailed || len(cmds) != 0 || !pm.Completed(s) {
		t.Fatalf("state %+v, commands %v", s, cmds)
	}
	if a := b.accounts["acc-a"].Balance; a != 1000 {
		t.Fatalf("source balance %d after refund", a)
	}
}

func TestDestinationCreditFailed(t *testing.T) {
	t.Parallel()
	s, _ := step(t, mt.State{}, initiated())
	s, cmds := step(t, s, evoke.NewEvent(mt.EventDestinationCreditFailed, mt.DestinationCreditFailed{TransferID: "tr-1"}))
	if s.Status != mt.StatusCompensating || len(cmds) != 0 || (mt.Transfer{}).Completed(s) {
		t.Fatalf("status %q, commands %v", s.Status, cmds)
	}
}

func TestDuplicateInitiatedDispatchesOnce(t *testing.T) {
	t.Parallel()
	s, _ := step(t, mt.State{}, initiated())
	s2, cmds := step(t, s, initiated())
	if len(cmds) != 0 || s2 != s {
		t.Fatalf("state %+v, commands %v", s2, cmds)
	}
}

func TestCompensate(t *testing.T) {
	t.Parallel()
	running := mt.State{TransferID: "tr-1", SourceID: "acc-a", DestID: "acc-b", Amount: 500, Status: mt.StatusCreditingDest}
	cmd := func(typ, acc string, p mt.Credit) evoke.Command {
		return evoke.NewCommand(typ, mt.AggregateAccount, acc, p)
	}
	for _, tc := range []struct {
		name   string
		state  mt.State
		failed evoke.Command
		want   []evoke.Command
	}{
		{"credit rejected", running, cmd("credit", "acc-b", mt.Credit{Amount: 500, TransferID: "tr-1"}),
			[]evoke.Command{cmd("credit", "acc-a", mt.Credit{Amount: 500, TransferID: "tr-1", Reason: "transfer_failed"})}},
		{"debit rejected", running, cmd("debit", "acc-a", mt.Credit{Amount: 500, TransferID: "tr-1"}), nil},
		{"refund rejected", running, cmd("credit", "acc-a", mt.Credit{Amount: 500, TransferID: "tr-1", Reason: "transfer_failed"}), nil},
		{"no source", mt.State{Amount: 500}, cmd("credit", "acc-b", mt.Credit{Amount: 500}), nil},
		{"no amount", mt.State{SourceID: "acc-a"}, cmd("credit", "acc-b", mt.Credit{Amount: 500}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := mt.Transfer{}.Compensate(tc.state, evoke.FailedCommand{Command: tc.failed, Reason: "rejected"})
			if ok != (tc.want != nil) || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Compensate = %+v, %v; want %+v", got, ok, tc.want)
			}
		})
	}
}
