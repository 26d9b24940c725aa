package moneytransfer_test

import (
	"reflect"
	"testing"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokestore"
	"github.com/evoke-go/evoke/evoketest"
	mt "github.com/evoke-go/evoke/examples/moneytransfer"
)

func initiated() evoke.Event {
	return evoke.NewEvent(mt.EventTransferInitiated, mt.TransferInitiated{
		TransferID: "tr-1", SourceID: "acc-a", DestID: "acc-b", Amount: 500,
	})
}

// step is one Correlate/Apply/Handle round, as evoq's
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

// account is an event of an account's stream, given to a fixture.
func account(id, typ string, data any) evoke.Event {
	e := evoke.NewEvent(typ, data)
	e.StreamID = evoke.StreamID(mt.AggregateAccount, id)
	return e
}

func newFixture(t *testing.T) *evoketest.Fixture[mt.State] {
	return evoketest.NewFixture(t, mt.Transfer{}, &evoketest.FixtureOpts{
		Aggregates: []evoketest.Aggregate{evoketest.NewAggregate(mt.AggregateAccount, mt.Account{})},
	})
}

func TestFullWorkflow(t *testing.T) {
	t.Parallel()
	newFixture(t).
		Given(account("acc-a", mt.EventDeposited, mt.Deposited{AccountID: "acc-a", Amount: 1000})).
		When(initiated()).
		ThenCommands(
			evoke.NewCommand(mt.CommandDebit, mt.AggregateAccount, "acc-a", mt.Credit{Amount: 500, TransferID: "tr-1"}),
			evoke.NewCommand(mt.CommandCredit, mt.AggregateAccount, "acc-b", mt.Credit{Amount: 500, TransferID: "tr-1"}),
		).
		ThenPhase(mt.StatusCompleted).
		ThenStatus(evokestore.StatusCompleted)
}

// TestCompensationWorkflow freezes the destination: the credit is rejected,
// Compensate refunds the source, and the refund's event ends the transfer.
func TestCompensationWorkflow(t *testing.T) {
	t.Parallel()
	f := newFixture(t).Given(
		account("acc-a", mt.EventDeposited, mt.Deposited{AccountID: "acc-a", Amount: 1000}),
		account("acc-b", mt.EventAccountFrozen, mt.AccountFrozen{AccountID: "acc-b"}),
	)
	f.When(initiated()).
		ThenCommands(
			evoke.NewCommand(mt.CommandDebit, mt.AggregateAccount, "acc-a", mt.Credit{Amount: 500, TransferID: "tr-1"}),
			evoke.NewCommand(mt.CommandCredit, mt.AggregateAccount, "acc-b", mt.Credit{Amount: 500, TransferID: "tr-1"}),
			evoke.NewCommand(mt.CommandCredit, mt.AggregateAccount, "acc-a", mt.Credit{Amount: 500, TransferID: "tr-1", Reason: "transfer_failed"}),
		).
		ThenPhase(mt.StatusRefunded).
		ThenStatus(evokestore.StatusCompleted)
	if s := f.State(); s.RefundReason != mt.ReasonTransferFailed {
		t.Errorf("refund reason %q", s.RefundReason)
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
