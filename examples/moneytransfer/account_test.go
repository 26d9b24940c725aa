package moneytransfer_test

import (
	"errors"
	"testing"

	"github.com/evoke-go/evoke"
	mt "github.com/evoke-go/evoke/examples/moneytransfer"
)

func acmd(typ string, p any) evoke.Command {
	return evoke.NewCommand(typ, mt.AggregateAccount, "acc-a", p)
}

func TestAccount(t *testing.T) {
	t.Parallel()
	deposit := acmd(mt.CommandDeposit, mt.Deposit{Amount: 1000})
	freeze := acmd(mt.CommandFreeze, nil)
	for _, tc := range []struct {
		name    string
		limit   int64
		cmds    []evoke.Command
		want    string // event type of the last command
		wantErr error
		balance int64
	}{
		{"deposit", 0, []evoke.Command{deposit}, mt.EventDeposited, nil, 1000},
		{"debit", 0, []evoke.Command{deposit, acmd("debit", mt.Debit{Amount: 300})}, mt.EventAccountDebited, nil, 700},
		{"transfer debit", 0, []evoke.Command{deposit, acmd("debit", mt.Debit{Amount: 300, TransferID: "t"})}, mt.EventSourceDebited, nil, 700},
		{"credit", 0, []evoke.Command{acmd("credit", mt.Credit{Amount: 5})}, mt.EventAccountCredited, nil, 5},
		{"transfer credit", 0, []evoke.Command{acmd("credit", mt.Credit{Amount: 5, TransferID: "t"})}, mt.EventDestinationCredited, nil, 5},
		{"refund", 0, []evoke.Command{acmd("credit", mt.Credit{Amount: 5, TransferID: "t", Reason: "transfer_failed"})}, mt.EventSourceRefunded, nil, 5},
		{"refund ignores limit", 1, []evoke.Command{acmd("credit", mt.Credit{Amount: 5, TransferID: "t", Reason: "x"})}, mt.EventSourceRefunded, nil, 5},
		{"freeze", 0, []evoke.Command{freeze}, mt.EventAccountFrozen, nil, 0},

		{"zero deposit", 0, []evoke.Command{acmd("deposit", mt.Deposit{})}, "", mt.ErrAmountNotPositive, 0},
		{"overdraw", 0, []evoke.Command{deposit, acmd("debit", mt.Debit{Amount: 1001})}, "", mt.ErrInsufficientFunds, 1000},
		{"debit frozen", 0, []evoke.Command{deposit, freeze, acmd("debit", mt.Debit{Amount: 1})}, "", mt.ErrFrozen, 1000},
		{"credit frozen", 0, []evoke.Command{freeze, acmd("credit", mt.Credit{Amount: 1, TransferID: "t"})}, "", mt.ErrFrozen, 0},
		{"credit above limit", 100, []evoke.Command{acmd("credit", mt.Credit{Amount: 101, TransferID: "t"})}, "", mt.ErrCreditLimit, 0},
		{"freeze twice", 0, []evoke.Command{freeze, freeze}, "", mt.ErrAlreadyFrozen, 0},
		{"debit twice", 0, []evoke.Command{deposit, acmd("debit", mt.Debit{Amount: 1, TransferID: "t"}),
			acmd("debit", mt.Debit{Amount: 1, TransferID: "t"})}, "", mt.ErrDuplicate, 999},
		{"credit twice", 0, []evoke.Command{acmd("credit", mt.Credit{Amount: 1, TransferID: "t"}),
			acmd("credit", mt.Credit{Amount: 1, TransferID: "t"})}, "", mt.ErrDuplicate, 1},
		{"refund twice", 0, []evoke.Command{acmd("credit", mt.Credit{Amount: 1, TransferID: "t", Reason: "r"}),
			acmd("credit", mt.Credit{Amount: 1, TransferID: "t", Reason: "r"})}, "", mt.ErrDuplicate, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			agg := mt.Account{CreditLimit: tc.limit}
			var s mt.AccountState
			var evs []evoke.Event
			var err error
			for _, c := range tc.cmds {
				if evs, err = agg.Execute(s, c); err != nil {
					break
				}
				for _, e := range evs {
					s = agg.Apply(s, e)
				}
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			} else if err != nil || len(evs) != 1 || evs[0].Type != tc.want {
				t.Fatalf("events %+v, err %v; want %s", evs, err, tc.want)
			}
			if s.Balance != tc.balance {
				t.Fatalf("balance = %d, want %d", s.Balance, tc.balance)
			}
		})
	}
}

func TestAccountApplyDoesNotShareMaps(t *testing.T) {
	t.Parallel()
	agg := mt.Account{}
	evs, err := agg.Execute(mt.AccountState{}, acmd("credit", mt.Credit{Amount: 1, TransferID: "t1"}))
	if err != nil {
		t.Fatal(err)
	}
	s1 := agg.Apply(mt.AccountState{}, evs[0])
	evs, err = agg.Execute(s1, acmd("credit", mt.Credit{Amount: 1, TransferID: "t2"}))
	if err != nil {
		t.Fatal(err)
	}
	s2 := agg.Apply(s1, evs[0])
	if len(s1.Applied) != 1 || len(s2.Applied) != 2 {
		t.Fatalf("applied: %v then %v", s1.Applied, s2.Applied)
	}
}

func TestAccountUnknownCommand(t *testing.T) {
	t.Parallel()
	if _, err := (mt.Account{}).Execute(mt.AccountState{}, acmd("close", nil)); err == nil {
		t.Fatal("accepted an unknown command")
	}
}
